//! `pull`: fetch one revision through the pull engine, from the remote or the fallbacks after
//! it, write what a fallback served through to the nearer remotes if asked, lay it out in a
//! project folder if asked (`--local-dir`), and say what happened.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use super::repos::require_on_remote;
use super::{
    file_filter, planned_downloads, planned_lines, short, App, Failure, FallbackOptions, Outcome,
    RepoRef, RevisionName, TransferOptions,
};
use crate::remote::catalog::Catalog;
use crate::report::human_bytes;
use crate::text::plural;
use crate::transfer::local_dir::{self, LocalDirError};
use crate::transfer::pull::{
    fetch_plans, finish, resolve_through, Counts, Fetched, Plan, PullError, Resolution, Target,
};
use crate::transfer::source::{Source, Sources};
use crate::transfer::write_through::{write_through, Written};
use crate::transfer::PlannedRevision;

#[derive(Debug, Serialize)]
pub struct PullSummary {
    pub command: &'static str,
    pub remote: String,
    /// Where the revision came from: the remote, or the fallback that had it.
    pub source: String,
    pub dry_run: bool,
    #[serde(flatten)]
    pub pulled: RevisionName,
    /// The files pulled: all of the revision's, or those the file patterns chose.
    pub files: usize,
    pub files_in_revision: usize,
    /// `--include-files` / `--exclude-files`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_patterns: Option<FilePatterns>,
    #[serde(flatten)]
    pub counts: Counts,
    pub seconds: f64,
    pub failures: Vec<Failure>,
    /// What made the pull turn to a later source (a missing revision, a corrupt blob by key).
    pub warnings: Vec<String>,
    /// What a fallback served, written to the remotes before it (`--write-through`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_through: Vec<Written>,
    /// Dry run only: what the revision would download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Vec<PlannedRevision>>,
    /// `--local-dir`: the folder the revision's files were laid out in (a dry run: would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_dir: Option<local_dir::Report>,
}

#[derive(Debug, Serialize)]
pub struct FilePatterns {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

pub struct PullOptions {
    pub target: Target,
    /// `--include-files` / `--exclude-files`.
    pub include_files: Vec<String>,
    pub exclude_files: Vec<String>,
    /// Also lay the revision out as real files in this folder.
    pub local_dir: Option<PathBuf>,
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
    let named = RepoRef::parse(&opts.target.repo_id)?.with_type_flag(opts.target.repo_type)?;
    let target = Target {
        repo_id: named.repo_id.clone(),
        repo_type: named.repo_type,
        revision: opts.target.revision,
        files: file_filter(&opts.include_files, &opts.exclude_files)?,
    };
    let sources = app.open_sources(opts.transfer.remote.as_deref(), &opts.fallback)?;
    let ctx = app.transfer_ctx(&opts.transfer, "pull");
    let cache_dir = &app.settings.cache_dir;
    let dry_run = opts.transfer.dry_run;
    let mut warnings = Vec::new();
    let resolved = resolve_through(
        &sources,
        0,
        cache_dir,
        &target,
        dry_run,
        &ctx,
        &mut warnings,
    )
    .await;
    let mut plan = match resolved {
        Ok(Resolution::Plan(p)) => *p,
        Ok(Resolution::WouldFallBack { to, why }) => {
            return Ok(would_fall_back(app, &sources, &target, &to, &why));
        }
        Err(e) => {
            if let (PullError::Missing(_), Source::Remote { remote, layout }) = (&e, sources.get(0))
            {
                // Nothing at all under the repo's key: say so as every command does.
                let catalog = Catalog::list(remote, layout, false).await?;
                require_on_remote(&catalog, &[named], &remote.describe())?;
            }
            return Err(resolve_error(e, &target.repo_id));
        }
    };
    plan.copies = app.settings.disable_symlinks;
    // A folder that cannot take the files is refused before anything is fetched.
    let local_dir = match &opts.local_dir {
        Some(dir) => Some(local_dir::prepare(dir, dry_run)?),
        None => None,
    };
    let Fetched {
        mut counts,
        mut failures,
        leases,
        notes,
    } = fetch_plans(
        &sources,
        cache_dir,
        &ctx,
        std::slice::from_mut(&mut plan),
        dry_run,
    )
    .await?;
    warnings.extend(notes);
    if !dry_run && failures.is_empty() {
        if let Err(e) = finish(cache_dir, &plan) {
            let item = format!("{}@{}", plan.repo_id, short(&plan.commit));
            failures.push((0, Failure::new(item, e)));
        }
    }
    let laid_out = match local_dir.filter(|_| failures.is_empty()) {
        Some(dir) => lay_out(app, &plan, dir, dry_run, ctx.lock_timeout, &mut failures).await,
        None => None,
    };
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
        pulled: RevisionName::new(
            plan.repo_type,
            &plan.repo_id,
            &plan.commit,
            plan.ref_name.as_deref(),
        ),
        files: plan.manifest.files.len(),
        files_in_revision: plan.files_in_revision,
        file_patterns: (!target.files.is_all()).then(|| FilePatterns {
            include: target.files.include().to_vec(),
            exclude: target.files.exclude().to_vec(),
        }),
        counts: counts.remove(0),
        seconds: started.elapsed().as_secs_f64(),
        failures: failures.into_iter().map(|(_, f)| f).collect(),
        warnings,
        write_through: written,
        planned: dry_run.then(|| planned_downloads(std::slice::from_ref(&plan))),
        local_dir: laid_out,
    };
    let outcome = Outcome::from_failures(summary.failures.len());
    let (ok, verbose) = (outcome == Outcome::Success, app.printer.verbose);
    app.printer
        .result(&summary, || human(&summary, ok, verbose));
    for w in summary.write_through.iter().filter(|w| !w.is_written()) {
        app.printer.warn(&w.describe());
    }
    report_failures(app, &summary.failures, cache_dir);
    Ok(outcome)
}

/// The revision's line for people (what a dry run would download before it, with -v), then
/// what was written through.
fn human(s: &PullSummary, ok: bool, verbose: bool) -> String {
    let planned = s.planned.as_deref().unwrap_or_default();
    // The summary line is the revision's: only the blobs, with -v.
    let words = ("would download", "already present");
    let mut lines = planned_lines(planned, words, false, verbose);
    let verb = if s.dry_run {
        "Would pull"
    } else if ok {
        "Pulled"
    } else {
        "Failed to pull"
    };
    lines.push(format!(
        "{verb} {}: {}, {} downloaded ({}{}), {} already present, in {:.1}s",
        s.pulled.describe(),
        files_pulled(s),
        plural(s.counts.downloaded, "blob", "blobs"),
        human_bytes(s.counts.bytes_downloaded),
        s.counts.by_source(),
        s.counts.skipped_existing,
        s.seconds
    ));
    if let Some(d) = &s.local_dir {
        lines.push(local_dir_line(d, s.dry_run));
    }
    for w in s.write_through.iter().filter(|w| w.is_written()) {
        lines.push(w.describe());
    }
    lines.join("\n")
}

/// `3 files`, or `1 of 20 files` when file patterns chose.
fn files_pulled(s: &PullSummary) -> String {
    if s.files == s.files_in_revision {
        return plural(s.files, "file", "files");
    }
    format!(
        "{} of {}",
        s.files,
        plural(s.files_in_revision, "file", "files")
    )
}

/// `--local-dir`: the revision's files laid out in the folder (in a dry run, what would be),
/// off the async workers; what failed goes to `failures`.
async fn lay_out(
    app: &App,
    plan: &Plan,
    dir: PathBuf,
    dry_run: bool,
    lock_timeout: Duration,
    failures: &mut Vec<(usize, Failure)>,
) -> Option<local_dir::Report> {
    let progress = (!dry_run).then(|| app.progress("local dir"));
    let laid_out = local_dir::lay_out(
        plan.repo_dir.clone(),
        plan.commit.clone(),
        plan.manifest.files.clone(),
        dir,
        lock_timeout,
        progress,
    )
    .await;
    match laid_out {
        Ok(mut report) => {
            failures.extend(report.failures.drain(..).map(|f| (0, f)));
            Some(report)
        }
        Err(e) => {
            let item = format!("{}@{}", plan.repo_id, short(&plan.commit));
            failures.push((0, Failure::new(item, e)));
            None
        }
    }
}

/// The summary's line for `--local-dir`.
fn local_dir_line(d: &local_dir::Report, dry_run: bool) -> String {
    let (verb, how) = if dry_run {
        ("Would place", format!("({})", human_bytes(d.bytes_placed)))
    } else {
        (
            "Placed",
            format!("({} reflinked, {} copied)", d.reflinked, d.copied),
        )
    };
    format!(
        "{verb} {} in {} {how}, {} already current",
        plural(d.placed, "file", "files"),
        d.path.display(),
        d.already_current
    )
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
    let folder_hint = failures.iter().find_map(|f| {
        (*f.error)
            .downcast_ref::<LocalDirError>()
            .and_then(LocalDirError::hint)
    });
    if failures.iter().any(Failure::is_disk_full) {
        app.printer.hint(&format!(
            "the disk holding {} is full: free space (hf-cache-sync prune) or pull into \
                 another --cache-dir, then run the same command again",
            cache_dir.display()
        ));
    } else if let Some(hint) = folder_hint {
        app.printer.hint(&hint);
    } else {
        app.printer
            .hint("run the same command again to retry; verified blobs are kept");
    }
}
