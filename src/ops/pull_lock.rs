//! `pull --lock FILE`: every pinned revision of a lock file. Pins the cache already holds whole
//! need no remote (nor credentials) at all: only their ref is pointed at the pinned commit. The
//! others are resolved by commit through the source list and fetched and landed together by
//! [`fetch_and_land`]; each pin that fails is named and the others still land. Pins that name a
//! folder are laid out there.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::pull::{fetch_and_land, lay_out, resolve_all, Landing};
use super::repos::{require_on_remote, RepoRef};
use super::{Env, FallbackOptions, RevisionName, TransferOptions};
use crate::cache::repo_folder_name;
use crate::cache::scan::scan_repo;
use crate::cache::write::write_ref;
use crate::lockfile::{LockFile, Pin};
use crate::remote::catalog::Catalog;
use crate::transfer::local_dir;
use crate::transfer::pinned::{covered, manifest_files};
use crate::transfer::pull::{Counts, PullError, Resolution, Target};
use crate::transfer::source::{Fallback, Sources};
use crate::transfer::write_through::Written;

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
    /// What a fallback served, written to the remotes before it (`--write-through`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_through: Vec<Written>,
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
    pub bytes_transferred: u64,
    pub bytes_resumed: u64,
    pub warnings: Vec<String>,
    pub seconds: f64,
}

/// Pulls what the lock file pins: see the module doc.
pub async fn pull_lock(env: &Env<'_>, opts: PullLockOptions) -> Result<PullLockSummary> {
    let started = Instant::now();
    let lock = LockFile::read(&opts.lock)?;
    let cache_dir = env.settings.cache_dir.clone();
    let dry_run = opts.transfer.dry_run;
    let mut results = Vec::new();
    let mut wanting: Vec<&Pin> = Vec::new();
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
                if r.status == "present" {
                    lay_out_present(env, entry, &mut r, dry_run).await;
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
        let sources = env.open_sources(opts.transfer.remote.as_deref(), &opts.fallback)?;
        remote = Some(sources.primary().url());
        let fetched = fetch(env, &opts, &sources, &wanting, &mut warnings).await?;
        results.extend(fetched);
    }
    results.sort_by_key(|r| r.line);
    let count = |s: &str| results.iter().filter(|r| r.status == s).count();
    Ok(PullLockSummary {
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
        bytes_transferred: results.iter().map(|r| r.counts.bytes_transferred).sum(),
        bytes_resumed: results.iter().map(|r| r.counts.bytes_resumed).sum(),
        pins: results,
        warnings,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Whether the cache holds the pin whole (the files its tree listing names, or its snapshot's
/// files, matching the pin's patterns, each with its blob).
fn local_state(cache_dir: &Path, entry: &Pin) -> Result<(), String> {
    let folder = repo_folder_name(entry.repo_type, &entry.repo_id);
    let scanned = scan_repo(cache_dir, &folder).map(|(repo, _)| repo);
    covered(scanned.as_ref(), &entry.commit, &entry.files)
        .map(|_| ())
        .map_err(|gap| gap.describe())
}

/// Points the ref the pin was locked from at the pinned commit.
fn point_ref(cache_dir: &Path, entry: &Pin) -> Result<(), crate::cache::write::WriteError> {
    match &entry.ref_name {
        Some(name) => {
            let folder = repo_folder_name(entry.repo_type, &entry.repo_id);
            write_ref(&cache_dir.join(folder), name, &entry.commit)
        }
        None => Ok(()),
    }
}

fn result(entry: &Pin, status: &'static str) -> PinResult {
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
        write_through: Vec::new(),
    }
}

/// A pin the cache already holds whole, laid out in its folder (a dry run: what would be). A
/// folder that fails fails its pin.
async fn lay_out_present(env: &Env<'_>, entry: &Pin, r: &mut PinResult, dry_run: bool) {
    let Some(dir) = &entry.local_dir else {
        return;
    };
    let cache_dir = &env.settings.cache_dir;
    let folder = repo_folder_name(entry.repo_type, &entry.repo_id);
    let scanned = scan_repo(cache_dir, &folder).map(|(repo, _)| repo);
    let laid_out = match manifest_files(scanned.as_ref(), &entry.commit, &entry.files) {
        Ok(files) => lay_out(
            env,
            cache_dir.join(&folder),
            &entry.commit,
            files,
            dir.clone(),
            dry_run,
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
                let failed: Vec<String> = report.failures.iter().map(|f| f.to_string()).collect();
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

/// Resolves the pins the cache lacks by commit (concurrently), then fetches and lands them all
/// through one pool. A set-up error (credentials, a missing bucket) ends the run; anything
/// else fails only its pin.
async fn fetch(
    env: &Env<'_>,
    opts: &PullLockOptions,
    sources: &Sources,
    wanting: &[&Pin],
    warnings: &mut Vec<String>,
) -> Result<Vec<PinResult>> {
    let dry_run = opts.transfer.dry_run;
    let ctx = env.transfer_ctx(&opts.transfer, "pull");
    let targets = wanting
        .iter()
        .map(|entry| Target {
            repo_id: entry.repo_id.clone(),
            repo_type: Some(entry.repo_type),
            revision: Some(entry.commit.clone()),
            files: entry.files.clone(),
        })
        .collect();
    let resolved = resolve_all(env, sources, targets, &ctx, dry_run).await;
    let mut results = Vec::new();
    let mut catalog = None;
    let mut landings = Vec::new();
    let mut planned: Vec<&Pin> = Vec::new();
    for (entry, (_, got, notes)) in wanting.iter().copied().zip(resolved) {
        warnings.extend(notes);
        match got {
            Ok(Resolution::Plan(plan)) => {
                let mut plan = *plan;
                plan.ref_name = entry.ref_name.clone();
                landings.push(Landing {
                    plan,
                    local_dir: entry.local_dir.clone(),
                });
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
                let mut error = crate::text::error_chain(&e);
                if matches!(e, PullError::Missing(_)) {
                    error.extend(close_matches(sources, entry, &mut catalog).await);
                }
                r.error = Some(error);
                results.push(r);
            }
        }
    }
    let write_through = env.write_through(&opts.fallback);
    let (landed, notes) =
        fetch_and_land(env, sources, landings, &ctx, &opts.transfer, write_through).await?;
    warnings.extend(notes);
    for landed in landed {
        let plan = &landed.plan;
        let entry = planned
            .iter()
            .find(|e| {
                e.repo_type == plan.repo_type
                    && e.repo_id == plan.repo_id
                    && e.commit == plan.commit
            })
            .expect("every landing is a pin's");
        let status = match (landed.failures.is_empty(), dry_run) {
            (false, _) => "failed",
            (true, true) => "would_pull",
            (true, false) => "pulled",
        };
        let mut r = result(entry, status);
        r.error = landed.error_text();
        r.source = Some(sources.get(plan.tier).url());
        r.counts = landed.counts;
        r.local_dir = landed.local_dir;
        r.write_through = landed.written;
        results.push(r);
    }
    Ok(results)
}

/// `; did you mean org/name? …` for a pin whose repo the remote has no key for (a typo in the
/// lock file), as a plain pull says it. The remote's catalog is listed once, for the first pin
/// that needs it.
async fn close_matches<'s>(
    sources: &'s Sources,
    entry: &Pin,
    catalog: &mut Option<Option<(Catalog<'s>, String)>>,
) -> Option<String> {
    if catalog.is_none() {
        let listed = match sources.remote(0) {
            Some((remote, layout)) => Catalog::list(remote, layout, false)
                .await
                .ok()
                .map(|c| (c, remote.describe())),
            None => None,
        };
        *catalog = Some(listed);
    }
    let (catalog, place) = catalog.as_ref()?.as_ref()?;
    let named = RepoRef {
        repo_type: Some(entry.repo_type),
        repo_id: entry.repo_id.clone(),
    };
    let missing = require_on_remote(catalog, &[named], place).err()?;
    (!missing.close.is_empty()).then(|| format!("; {}", missing.hint()))
}
