//! `pull`: fetch one revision through the pull engine and say what happened.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::repos::require_on_remote;
use super::{
    planned_downloads, planned_lines, short, App, Failure, Outcome, RepoRef, TransferOptions,
};
use crate::cache::RepoType;
use crate::remote::catalog::Catalog;
use crate::report::human_bytes;
use crate::text::plural;
use crate::transfer::pull::{fetch_plans, finish, resolve, Counts, Fetched, PullError, Target};
use crate::transfer::PlannedRevision;

#[derive(Debug, Serialize)]
pub struct PullSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    /// `type/org/name`, as every JSON document names a repo.
    pub repo: String,
    pub repo_type: RepoType,
    pub repo_id: String,
    pub revision: String,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub files: usize,
    #[serde(flatten)]
    pub counts: Counts,
    pub seconds: f64,
    pub failures: Vec<Failure>,
    /// Dry run only: what the revision would download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Vec<PlannedRevision>>,
}

pub struct PullOptions {
    pub target: Target,
    pub transfer: TransferOptions,
}

pub async fn run(app: &App, opts: PullOptions) -> Result<Outcome> {
    let started = Instant::now();
    let named = RepoRef::parse(&opts.target.repo_id)?.with_type_flag(opts.target.repo_type)?;
    let target = Target {
        repo_id: named.repo_id.clone(),
        repo_type: named.repo_type,
        revision: opts.target.revision,
    };
    let (remote, layout) = app.open_remote(opts.transfer.remote.as_deref())?;
    let ctx = app.transfer_ctx(&opts.transfer, "pull");
    let cache_dir = &app.settings.cache_dir;
    let mut plan = match resolve(&remote, &layout, cache_dir, &target).await {
        Ok(p) => p,
        Err(PullError::Remote(e)) => return Err(e.into()),
        Err(e) => {
            if matches!(e, PullError::Missing(_)) {
                // Nothing at all under the repo's key: say so as every command does.
                let catalog = Catalog::list(&remote, &layout, false).await?;
                require_on_remote(&catalog, &[named], &remote.describe())?;
            }
            return Err(anyhow::Error::new(e).context(format!("cannot pull {}", target.repo_id)));
        }
    };
    plan.copies = app.settings.disable_symlinks;
    let plans = std::slice::from_ref(&plan);
    let dry_run = opts.transfer.dry_run;
    let Fetched {
        mut counts,
        mut failures,
        leases,
    } = fetch_plans(&remote, &layout, cache_dir, &ctx, plans, dry_run).await?;
    if !dry_run && failures.is_empty() {
        if let Err(e) = finish(cache_dir, &plan) {
            let item = format!("{}@{}", plan.repo_id, short(&plan.commit));
            failures.push((0, Failure::new(item, e)));
        }
    }
    drop(leases);
    let summary = PullSummary {
        command: "pull",
        remote: remote.describe(),
        dry_run: opts.transfer.dry_run,
        repo: format!("{}/{}", plan.repo_type, plan.repo_id),
        repo_type: plan.repo_type,
        repo_id: plan.repo_id.clone(),
        revision: plan.commit.clone(),
        ref_name: plan.ref_name.clone(),
        files: plan.manifest.files.len(),
        counts: counts.remove(0),
        seconds: started.elapsed().as_secs_f64(),
        failures: failures.into_iter().map(|(_, f)| f).collect(),
        planned: dry_run.then(|| planned_downloads(plans)),
    };
    let outcome = Outcome::from_failures(summary.failures.len());
    app.printer.result(&summary, || {
        let planned = summary.planned.as_deref().unwrap_or_default();
        // The summary line is the revision's: only the blobs, with -v.
        let words = ("would download", "already present");
        let mut lines = planned_lines(planned, words, false, app.printer.verbose);
        let verb = if summary.dry_run {
            "Would pull"
        } else if outcome == Outcome::Success {
            "Pulled"
        } else {
            "Failed to pull"
        };
        lines.push(format!(
            "{verb} {}@{}{}: {}, {} downloaded ({}), {} already present, in {:.1}s",
            summary.repo,
            short(&summary.revision),
            summary
                .ref_name
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            plural(summary.files, "file", "files"),
            plural(summary.counts.downloaded, "blob", "blobs"),
            human_bytes(summary.counts.bytes_downloaded),
            summary.counts.skipped_existing,
            summary.seconds
        ));
        lines.join("\n")
    });
    report_failures(app, &summary.failures, cache_dir);
    Ok(outcome)
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
