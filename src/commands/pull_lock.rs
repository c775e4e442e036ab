//! `pull --lock FILE`: every pinned revision of a lock file. Pins the cache already holds whole
//! need no remote (nor credentials) at all: only their ref is pointed at the pinned commit. The
//! others are resolved by commit through the source list and fetched together through one
//! pool, verified; each pin that fails is named and the others still land.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;

use super::lockfile::{LockEntry, LockFile};
use super::{short, App, FallbackOptions, Outcome, RevisionName, TransferOptions};
use crate::cache::repo_folder_name;
use crate::cache::scan::scan_repo;
use crate::cache::write::write_ref;
use crate::report::human_bytes;
use crate::text::plural;
use crate::transfer::local_dir;
use crate::transfer::pinned::{covered, manifest_files};
use crate::transfer::pull::{self, Counts, Plan, PullError, Resolution, Target};
use crate::transfer::source::{Fallback, Sources};

pub struct PullLockOptions {
    pub lock: PathBuf,
    /// Any remote call is an error: pins not already complete fail.
    pub offline: bool,
    pub transfer: TransferOptions,
    pub fallback: FallbackOptions,
}

/// How one pin ended.
#[derive(Debug, Serialize)]
pub struct PinResult {
    #[serde(flatten)]
    pub pin: RevisionName,
    /// The lock file's line.
    pub line: usize,
    /// `present` (nothing fetched), `pulled`, `would_pull` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// The pin's `local-dir=` folder: what was laid out there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_dir: Option<local_dir::Report>,
}

#[derive(Debug, Serialize)]
pub struct PullLockSummary {
    pub command: &'static str,
    pub lock: PathBuf,
    /// The remote asked, when any pin needed one.
    pub remote: Option<String>,
    pub dry_run: bool,
    pub offline: bool,
    pub pins: Vec<PinResult>,
    pub present: usize,
    pub pulled: usize,
    pub failed: usize,
    pub downloaded: usize,
    pub bytes_downloaded: u64,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

pub async fn run(app: &App, opts: PullLockOptions) -> Result<Outcome> {
    let started = Instant::now();
    let lock = LockFile::read(&opts.lock)?;
    if lock.entries.is_empty() {
        app.printer.warn(&format!(
            "{} pins nothing: `hf-cache-sync lock -o {}` pins what the cache holds",
            lock.path.display(),
            lock.path.display()
        ));
    }
    let cache_dir = app.settings.cache_dir.clone();
    let dry_run = opts.transfer.dry_run;
    let mut results = Vec::new();
    let mut wanting: Vec<&LockEntry> = Vec::new();
    for entry in &lock.entries {
        match local_state(&cache_dir, entry) {
            Ok(()) => {
                let mut r = result(entry, "present");
                if !dry_run {
                    if let Err(e) = point_ref(&cache_dir, entry) {
                        r.status = "failed";
                        r.error = Some(e.to_string());
                    }
                }
                results.push(r);
            }
            Err(why) if opts.offline => {
                let mut r = result(entry, "failed");
                r.error = Some(format!("{why}, and --offline forbids fetching it"));
                results.push(r);
            }
            Err(_) => wanting.push(entry),
        }
    }
    let mut warnings = Vec::new();
    let mut remote = None;
    if !wanting.is_empty() {
        let sources = app.open_sources(opts.transfer.remote.as_deref(), &opts.fallback)?;
        remote = Some(sources.primary().describe());
        let fetched = fetch(app, &opts, &sources, &wanting, &mut warnings).await?;
        results.extend(fetched);
    }
    results.sort_by_key(|r| r.line);
    lay_out_pins(app, &lock, &mut results, dry_run).await;
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    let summary = PullLockSummary {
        command: "pull",
        lock: lock.path.clone(),
        remote,
        dry_run,
        offline: opts.offline,
        present: count("present"),
        pulled: count("pulled") + count("would_pull"),
        failed: count("failed"),
        downloaded: results.iter().map(|r| r.counts.downloaded).sum(),
        bytes_downloaded: results.iter().map(|r| r.counts.bytes_downloaded).sum(),
        pins: results,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
    };
    app.printer.result(&summary, || human(&summary));
    for r in summary.pins.iter().filter(|r| r.status == "failed") {
        app.printer.error(&format!(
            "{}:{}: {}@{}: {}",
            summary.lock.display(),
            r.line,
            r.pin.repo,
            short(&r.pin.revision),
            r.error.as_deref().unwrap_or("failed")
        ));
    }
    if summary.failed > 0 && opts.offline {
        app.printer
            .hint("run without --offline to fetch what the cache lacks from the remote");
    }
    Ok(Outcome::from_failures(summary.failed))
}

/// Whether the cache holds the pin whole (the files its tree listing names, or its snapshot's
/// files, matching the pin's patterns, each with its blob).
fn local_state(cache_dir: &Path, entry: &LockEntry) -> Result<(), String> {
    let folder = repo_folder_name(entry.repo_type, &entry.repo_id);
    let scanned = scan_repo(cache_dir, &folder).map(|(repo, _)| repo);
    covered(scanned.as_ref(), &entry.commit, &entry.files)
        .map(|_| ())
        .map_err(|gap| gap.describe())
}

/// Points the ref the pin was locked from at the pinned commit.
fn point_ref(cache_dir: &Path, entry: &LockEntry) -> Result<(), crate::cache::write::WriteError> {
    match &entry.ref_name {
        Some(name) => {
            let folder = repo_folder_name(entry.repo_type, &entry.repo_id);
            write_ref(&cache_dir.join(folder), name, &entry.commit)
        }
        None => Ok(()),
    }
}

fn result(entry: &LockEntry, status: &'static str) -> PinResult {
    PinResult {
        pin: RevisionName::new(
            entry.repo_type,
            &entry.repo_id,
            &entry.commit,
            entry.ref_name.as_deref(),
        ),
        line: entry.line,
        status,
        error: None,
        source: None,
        counts: Counts::default(),
        local_dir: None,
    }
}

/// The pins that name a folder, once in the cache: their files laid out there (in a dry run,
/// what would be, for those already cached). A folder that fails fails its pin.
async fn lay_out_pins(app: &App, lock: &LockFile, results: &mut [PinResult], dry_run: bool) {
    let cache_dir = &app.settings.cache_dir;
    for entry in &lock.entries {
        let Some(dir) = &entry.local_dir else {
            continue;
        };
        let Some(r) = results.iter_mut().find(|r| r.line == entry.line) else {
            continue;
        };
        if !matches!(r.status, "present" | "pulled") {
            continue;
        }
        let folder = repo_folder_name(entry.repo_type, &entry.repo_id);
        let scanned = scan_repo(cache_dir, &folder).map(|(repo, _)| repo);
        let laid_out = match manifest_files(scanned.as_ref(), &entry.commit, &entry.files) {
            Ok(files) => local_dir::lay_out(
                cache_dir.join(&folder),
                entry.commit.clone(),
                files,
                dir.clone(),
                app.settings.transfer.lock_timeout,
                (!dry_run).then(|| app.progress("local dir")),
            )
            .await
            .map_err(|e| match e.hint() {
                Some(hint) => format!("{e} ({hint})"),
                None => e.to_string(),
            }),
            Err(why) => Err(why),
        };
        match laid_out {
            Ok(report) => {
                if !report.failures.is_empty() {
                    let failed: Vec<String> =
                        report.failures.iter().map(|f| f.to_string()).collect();
                    r.status = "failed";
                    r.error = Some(failed.join("; "));
                }
                r.local_dir = Some(report);
            }
            Err(why) => {
                r.status = "failed";
                r.error = Some(format!("laying it out in {}: {why}", dir.display()));
            }
        }
    }
}

/// Resolves the pins the cache lacks by commit (concurrently), then fetches them all through
/// one pool and builds each snapshot. A set-up error (credentials, a missing bucket) ends the
/// run; anything else fails only its pin.
async fn fetch(
    app: &App,
    opts: &PullLockOptions,
    sources: &Sources,
    wanting: &[&LockEntry],
    warnings: &mut Vec<String>,
) -> Result<Vec<PinResult>> {
    let cache_dir = &app.settings.cache_dir;
    let dry_run = opts.transfer.dry_run;
    let ctx = app.transfer_ctx(&opts.transfer, "pull");
    let resolved: Vec<(&LockEntry, Result<Resolution, PullError>, Vec<String>)> =
        futures::stream::iter(wanting.iter().copied())
            .map(|entry| {
                let ctx = &ctx;
                async move {
                    let target = Target {
                        repo_id: entry.repo_id.clone(),
                        repo_type: Some(entry.repo_type),
                        revision: Some(entry.commit.clone()),
                        files: entry.files.clone(),
                    };
                    let mut notes = Vec::new();
                    let got = pull::resolve_through(
                        sources, 0, cache_dir, &target, dry_run, ctx, &mut notes,
                    )
                    .await;
                    (entry, got, notes)
                }
            })
            .buffered(ctx.workers.max(1))
            .collect()
            .await;
    let mut results = Vec::new();
    let mut plans: Vec<Plan> = Vec::new();
    let mut planned: Vec<&LockEntry> = Vec::new();
    for (entry, got, notes) in resolved {
        warnings.extend(notes);
        match got {
            Ok(Resolution::Plan(plan)) => {
                let mut plan = *plan;
                plan.ref_name = entry.ref_name.clone();
                plan.copies = app.settings.disable_symlinks;
                plans.push(plan);
                planned.push(entry);
            }
            Ok(Resolution::WouldFallBack { to, why }) => {
                let mut r = result(entry, "would_pull");
                r.source = Some(to);
                r.error = Some(why);
                results.push(r);
            }
            Err(PullError::Remote(e)) if Fallback::of_remote(&e).is_none() => {
                return Err(e.into());
            }
            Err(e) => {
                let mut r = result(entry, "failed");
                r.error = Some(crate::text::error_chain(&e));
                results.push(r);
            }
        }
    }
    let pull::Fetched {
        counts,
        failures,
        leases,
        notes,
    } = pull::fetch_plans(sources, cache_dir, &ctx, &mut plans, dry_run).await?;
    warnings.extend(notes);
    let landed = app
        .land(sources, &plans, &failures, &opts.transfer, &opts.fallback)
        .await;
    for (i, ((plan, entry), errors)) in plans.iter().zip(planned).zip(landed).enumerate() {
        let status = match (errors.is_empty(), dry_run) {
            (false, _) => "failed",
            (true, true) => "would_pull",
            (true, false) => "pulled",
        };
        let mut r = result(entry, status);
        r.error = (!errors.is_empty()).then(|| errors.join("; "));
        r.source = Some(sources.get(plan.tier).describe());
        r.counts = counts[i].clone();
        results.push(r);
    }
    drop(leases);
    Ok(results)
}

/// A line a pin, then the totals.
fn human(s: &PullLockSummary) -> String {
    let mut lines: Vec<String> = s
        .pins
        .iter()
        .map(|r| {
            let what = r.pin.describe();
            match r.status {
                "present" => format!("  present     {what}"),
                "failed" => format!("  failed      {what}"),
                "would_pull" => format!(
                    "  would pull  {what}: {} ({})",
                    plural(r.counts.downloaded, "blob", "blobs"),
                    human_bytes(r.counts.bytes_downloaded)
                ),
                _ => format!(
                    "  pulled      {what}: {} ({}){}",
                    plural(r.counts.downloaded, "blob", "blobs"),
                    human_bytes(r.counts.bytes_downloaded),
                    r.counts.by_source()
                ),
            }
        })
        .collect();
    lines.push(format!(
        "{} {}: {} already present, {} {}, {} failed; {} downloaded ({}) in {:.1}s",
        if s.dry_run { "Would pull" } else { "Pulled" },
        s.lock.display(),
        s.present,
        s.pulled,
        if s.dry_run { "to pull" } else { "pulled" },
        s.failed,
        plural(s.downloaded, "blob", "blobs"),
        human_bytes(s.bytes_downloaded),
        s.seconds
    ));
    lines.join("\n")
}
