//! `pull`: fetch one revision through the pull engine, from the remote or the fallbacks after
//! it, write what a fallback served through to the nearer remotes if asked, and say what
//! happened.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::{short, App, Failure, FallbackOptions, Outcome, TransferOptions};
use crate::cache::RepoType;
use crate::report::human_bytes;
use crate::transfer::pull::{
    fetch_plans, finish, resolve_through, Counts, Fetched, PullError, Resolution, Target,
};
use crate::transfer::source::Sources;
use crate::transfer::write_through::{write_through, Written};

#[derive(Debug, Serialize)]
pub struct PullSummary {
    pub command: &'static str,
    pub remote: String,
    /// Where the revision came from: the remote, or the fallback that had it.
    pub source: String,
    pub dry_run: bool,
    pub repo: String,
    pub repo_type: RepoType,
    pub revision: String,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub files: usize,
    #[serde(flatten)]
    pub counts: Counts,
    pub seconds: f64,
    pub failures: Vec<Failure>,
    /// What made the pull turn to a later source (a missing revision, a corrupt blob by key).
    pub warnings: Vec<String>,
    /// What a fallback served, written to the remotes before it (`--write-through`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_through: Vec<Written>,
}

pub struct PullOptions {
    pub target: Target,
    pub transfer: TransferOptions,
    pub fallback: FallbackOptions,
}

/// The error that ends a pull before anything is fetched, with what it was about.
pub fn resolve_error(e: PullError, repo_id: &str) -> anyhow::Error {
    match e {
        PullError::Remote(e) => e.into(),
        PullError::Hub(e) => {
            anyhow::Error::new(e).context(format!("cannot pull {repo_id} from the Hub"))
        }
        e => anyhow::Error::new(e).context(format!("cannot pull {repo_id}")),
    }
}

pub async fn run(app: &App, opts: PullOptions) -> Result<Outcome> {
    let started = Instant::now();
    let sources = app.open_sources(opts.transfer.remote.as_deref(), &opts.fallback)?;
    let ctx = app.transfer_ctx(&opts.transfer, "pull");
    let cache_dir = &app.settings.cache_dir;
    let dry_run = opts.transfer.dry_run;
    let mut warnings = Vec::new();
    let resolved = resolve_through(
        &sources,
        0,
        cache_dir,
        &opts.target,
        dry_run,
        &ctx,
        &mut warnings,
    )
    .await;
    let mut plan = match resolved.map_err(|e| resolve_error(e, &opts.target.repo_id))? {
        Resolution::Plan(p) => *p,
        Resolution::WouldFallBack { to, why } => {
            return Ok(would_fall_back(app, &sources, &opts.target, &to, &why));
        }
    };
    let plans = std::slice::from_mut(&mut plan);
    let Fetched {
        mut counts,
        mut failures,
        leases,
        notes,
    } = fetch_plans(&sources, cache_dir, &ctx, plans, dry_run).await?;
    warnings.extend(notes);
    if !dry_run && failures.is_empty() {
        if let Err(e) = finish(cache_dir, &plan) {
            let item = format!("{}@{}", plan.repo_id, short(&plan.commit));
            failures.push((0, Failure::new(item, e)));
        }
    }
    let mut written = Vec::new();
    if !dry_run && failures.is_empty() && app.write_through(&opts.fallback) {
        written = write_through(&sources, &plan, cache_dir, &app.write_policy(), || {
            app.transfer_ctx(&opts.transfer, "write-through")
        })
        .await;
    }
    drop(leases);
    let summary = PullSummary {
        command: "pull",
        remote: sources.primary().describe(),
        source: sources.get(plan.tier).describe(),
        dry_run: opts.transfer.dry_run,
        repo: plan.repo_id.clone(),
        repo_type: plan.repo_type,
        revision: plan.commit.clone(),
        ref_name: plan.ref_name.clone(),
        files: plan.manifest.files.len(),
        counts: counts.remove(0),
        seconds: started.elapsed().as_secs_f64(),
        failures: failures.into_iter().map(|(_, f)| f).collect(),
        warnings,
        write_through: written,
    };
    let outcome = Outcome::from_failures(summary.failures.len());
    app.printer.result(&summary, || {
        let verb = if summary.dry_run {
            "Would pull"
        } else if outcome == Outcome::Success {
            "Pulled"
        } else {
            "Failed to pull"
        };
        let mut text = format!(
            "{verb} {} {}@{}{}: {} files, {} blobs downloaded ({}{}), {} already present, in {:.1}s",
            summary.repo_type,
            summary.repo,
            short(&summary.revision),
            summary
                .ref_name
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            summary.files,
            summary.counts.downloaded,
            human_bytes(summary.counts.bytes_downloaded),
            summary.counts.by_source(),
            summary.counts.skipped_existing,
            summary.seconds
        );
        for w in summary.write_through.iter().filter(|w| w.is_written()) {
            text.push_str(&format!("\n{}", w.describe()));
        }
        text
    });
    for w in summary.write_through.iter().filter(|w| !w.is_written()) {
        app.printer.warn(&w.describe());
    }
    report_failures(app, &summary.failures, cache_dir);
    Ok(outcome)
}

/// A dry run whose remote lacks the revision: what a pull would fetch, and from where.
fn would_fall_back(app: &App, sources: &Sources, target: &Target, to: &str, why: &str) -> Outcome {
    let revision = target.revision.as_deref().unwrap_or("main");
    let summary = serde_json::json!({
        "command": "pull",
        "remote": sources.primary().describe(),
        "dry_run": true,
        "repo": target.repo_id,
        "revision": revision,
        "would_fetch_from": to,
        "reason": why,
    });
    app.printer.result(&summary, || {
        format!(
            "Would fetch {}@{revision} from {to} ({why}); a dry run fetches nothing",
            target.repo_id
        )
    });
    Outcome::Success
}

/// Each failure on stderr, then what to do about it.
fn report_failures(app: &App, failures: &[Failure], cache_dir: &Path) {
    for f in failures {
        app.printer.error(&f.to_string());
    }
    if failures.is_empty() {
        return;
    }
    if failures.iter().any(Failure::is_disk_full) {
        app.printer.hint(&format!(
            "the disk holding {} is full: free space (hf-cache-sync prune) or pull into \
                 another --cache-dir, then run the same command again",
            cache_dir.display()
        ));
    } else {
        app.printer
            .hint("run the same command again to retry; verified blobs are kept");
    }
}
