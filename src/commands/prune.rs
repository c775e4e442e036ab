//! `prune`: frees disk space in the local cache.
//!
//! Always removes orphaned blobs and abandoned partial downloads. With `--detached`, removes every
//! revision no ref points at (as `hf cache prune` does). Then, as hf-cache-sync 0.1 does, evicts
//! revisions least recently accessed first until the cache's distinct blob bytes fit the budget,
//! never one a ref points at. `--older-than` spares revisions accessed more recently.
//! `--remote --detached` prunes the remote's detached manifests instead ([`remote`]).

mod remote;

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;

use super::deletion::{
    ask, execute, interrupted_before_deleting, lock_and_scan, plural, refuse_without_consent,
    report_lines, say_interrupted,
};
use super::{parse_age, App, Outcome};
use crate::cache::delete::{Planner, Report};
use crate::cache::scan::{self, CacheScan, FileSource, Repo, Revision};
use crate::cancel::Cancel;
use crate::config::ConfigError;
use crate::report::{gib, human_bytes};

/// `--max-gb` and `cache.max_local_gb` count GiB (2^30 bytes), as 0.1 does.
const GIB: f64 = (1u64 << 30) as f64;

#[derive(Debug)]
pub struct PruneOptions {
    pub max_gb: Option<f64>,
    pub detached: bool,
    pub older_than: Option<String>,
    pub dry_run: bool,
    pub yes: bool,
    /// Prune the remote's detached manifests instead of the local cache.
    pub remote: super::RemoteChoice,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DetachedKept {
    pub revisions: usize,
    /// The bytes of the blobs only they use.
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct PruneSummary {
    pub command: &'static str,
    pub cache_dir: String,
    pub dry_run: bool,
    pub detached: bool,
    /// `--older-than` as given.
    pub older_than: Option<String>,
    /// The budget as given, in GiB.
    pub max_gb: f64,
    pub budget_bytes: u64,
    /// Distinct blob bytes before, and after (expected after, for a dry run).
    pub size_before: u64,
    pub size_after: u64,
    /// False when the revisions left that refs point at still exceed the budget.
    pub within_budget: bool,
    /// Without `--detached`: the revisions no ref points at that stay, and what removing them
    /// would free.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detached_kept: Option<DetachedKept>,
    #[serde(flatten)]
    pub report: Report,
}

pub async fn run(app: &App, opts: PruneOptions) -> Result<Outcome> {
    if opts.remote.asked() {
        refuse_without_consent(opts.yes, opts.dry_run)?;
        return remote::run(app, &opts).await;
    }
    let max_gb = opts.max_gb.unwrap_or(app.settings.max_local_gb);
    if !(max_gb.is_finite() && max_gb >= 0.0) {
        return Err(ConfigError::Usage {
            message: format!("--max-gb must be a non-negative number of GiB, got {max_gb}"),
            hint: "e.g. --max-gb 100 for 100 GiB (2^30 bytes each), as cache.max_local_gb".into(),
        }
        .into());
    }
    let older_than = opts.older_than.as_deref().map(parse_age).transpose()?;
    refuse_without_consent(opts.yes, opts.dry_run)?;
    let (locks, scan) = lock_and_scan(app).await?;
    let budget = (max_gb * GIB) as u64;
    let size_before = scan.blob_bytes();
    let root = scan.root.clone();
    let busy = locks.busy().clone();
    let choice = Choice {
        budget,
        detached: opts.detached,
        older_than,
        now: SystemTime::now(),
    };
    let cancel = app.cancel.clone();
    let (planner, detached_kept) = tokio::task::spawn_blocking(move || {
        let planner = plan(scan, &busy, &choice, &cancel);
        let kept = (!choice.detached).then(|| detached_kept(&planner));
        (planner, kept)
    })
    .await?;
    if app.cancel.requested() {
        return Ok(interrupted_before_deleting(app));
    }
    let expected_after = size_before.saturating_sub(planner.blob_bytes_freed());

    let preview = planner.preview();
    let (report, size_after) = if opts.dry_run || preview.is_empty() {
        (preview, expected_after)
    } else {
        let question = format!(
            "Remove {}, freeing {}?",
            what(&preview),
            human_bytes(preview.bytes_freed)
        );
        let lines = report_lines(&preview, true, true);
        if !ask(app, &lines, &question, opts.yes).await? {
            return Ok(Outcome::Failed);
        }
        let report = execute(planner, locks, &app.cancel).await?;
        let after = if report.interrupted {
            // Ctrl-C wants the run over: count rather than scan again.
            size_before.saturating_sub(report.blob_bytes_freed)
        } else {
            tokio::task::spawn_blocking(move || scan::scan(&root).blob_bytes()).await?
        };
        (report, after)
    };
    say_interrupted(app, &report);
    let outcome = Outcome::from_failures(report.failures.len());
    let summary = PruneSummary {
        command: "prune",
        cache_dir: app.settings.cache_dir.display().to_string(),
        dry_run: opts.dry_run,
        detached: opts.detached,
        older_than: opts.older_than.clone(),
        max_gb,
        budget_bytes: budget,
        size_before,
        size_after,
        within_budget: size_after <= budget,
        detached_kept: detached_kept.filter(|k| k.revisions > 0),
        report,
    };
    if !summary.within_budget && !summary.report.interrupted {
        app.printer.warn(&format!(
            "the cache still takes {} of blobs, over the {} budget: what is left is pointed \
                 at by refs{} (remove it with `hf-cache-sync rm`)",
            human_bytes(summary.size_after),
            gib(max_gb),
            if older_than.is_some() {
                " or was used too recently for --older-than"
            } else {
                ""
            }
        ));
    }
    app.printer.result(&summary, || human(&summary));
    Ok(outcome)
}

/// When a revision was last used: its blobs' latest access, else its snapshot's modification.
fn last_used(scan: &CacheScan, ri: usize, vi: usize) -> SystemTime {
    let repo = &scan.repos[ri];
    let rev = &repo.revisions[vi];
    rev.last_accessed(repo)
        .or(rev.modified)
        .unwrap_or(UNIX_EPOCH)
}

/// What a prune chooses by.
struct Choice {
    budget: u64,
    detached: bool,
    older_than: Option<Duration>,
    now: SystemTime,
}

/// Plans the prune: orphans and stale partials always; with `detached`, every revision no ref
/// points at; then unreferenced revisions least recently used first until the blobs fit
/// `budget`. Revisions used more recently than `older_than` stay. Ctrl-C (`cancel`) cuts it
/// short. Blocking.
fn plan(scan: CacheScan, busy: &HashSet<String>, choice: &Choice, cancel: &Cancel) -> Planner {
    let &Choice {
        budget,
        detached,
        older_than,
        now,
    } = choice;
    let size_before = scan.blob_bytes();
    // With --older-than, a revision may be evicted only if not used since the cutoff.
    let old_enough = |t: SystemTime| match older_than {
        None => true,
        Some(age) => now.checked_sub(age).is_some_and(|cutoff| t <= cutoff),
    };
    // Unreferenced revisions, least recently used first.
    let mut candidates: Vec<(SystemTime, usize, usize)> = Vec::new();
    for (ri, repo) in scan.repos.iter().enumerate() {
        if busy.contains(&repo.folder) {
            continue;
        }
        for (vi, rev) in repo.revisions.iter().enumerate() {
            let t = last_used(&scan, ri, vi);
            if repo.refs_to(&rev.commit).is_empty() && old_enough(t) {
                candidates.push((t, ri, vi));
            }
        }
    }
    candidates.sort_by(|a, b| {
        let key = |(t, ri, vi): &(SystemTime, usize, usize)| {
            let repo = &scan.repos[*ri];
            (*t, repo.qualified_id(), repo.revisions[*vi].commit.clone())
        };
        key(a).cmp(&key(b))
    });
    let commits: Vec<(usize, String)> = candidates
        .iter()
        .map(|(_, ri, vi)| (*ri, scan.repos[*ri].revisions[*vi].commit.clone()))
        .collect();

    let mut planner = Planner::with_busy(scan, now, true, true, busy);
    if detached {
        for (ri, commit) in commits.iter().take_while(|_| !cancel.requested()) {
            planner.add_revision(*ri, commit, "detached");
        }
    }
    for (ri, commit) in &commits {
        if cancel.requested() || size_before.saturating_sub(planner.blob_bytes_freed()) <= budget {
            break;
        }
        planner.add_revision(*ri, commit, "budget");
    }
    planner
}

/// The revisions no ref points at that the plan keeps, and the bytes of the blobs only they
/// use (none a kept revision also uses): what `--detached` would add.
fn detached_kept(planner: &Planner) -> DetachedKept {
    let scan = planner.scan();
    let mut kept_files: HashSet<&std::path::Path> = HashSet::new();
    let mut detached: Vec<(&Repo, &Revision)> = Vec::new();
    for (ri, repo) in scan.repos.iter().enumerate() {
        for rev in &repo.revisions {
            if planner.is_selected(ri, &rev.commit) {
                continue;
            }
            if repo.refs_to(&rev.commit).is_empty() {
                detached.push((repo, rev));
            } else {
                kept_files.extend(files_of(repo, rev).map(|(p, _)| p));
            }
        }
    }
    let mut freed: HashSet<&std::path::Path> = HashSet::new();
    let mut bytes = 0;
    for (repo, rev) in &detached {
        for (path, size) in files_of(repo, rev) {
            if !kept_files.contains(path) && freed.insert(path) {
                bytes += size;
            }
        }
    }
    DetachedKept {
        revisions: detached.len(),
        bytes,
    }
}

/// The files holding a revision's bytes (blobs, or snapshot copies), with their sizes.
fn files_of<'a>(
    repo: &'a Repo,
    rev: &'a Revision,
) -> impl Iterator<Item = (&'a std::path::Path, u64)> + 'a {
    rev.files.iter().filter_map(|f| match &f.source {
        FileSource::Blob(etag) => repo
            .blobs
            .get(etag)
            .map(|b| (b.content_path.as_path(), b.size)),
        FileSource::Copy(path) => Some((path.as_path(), f.size)),
    })
}

/// "3 revisions, 2 orphaned blobs and 1 stale partial download"
fn what(report: &Report) -> String {
    let mut parts = Vec::new();
    if !report.revisions.is_empty() {
        parts.push(plural(report.revisions.len(), "revision", "revisions"));
    }
    let orphans = report.orphans();
    if orphans > 0 {
        parts.push(plural(orphans, "orphaned blob", "orphaned blobs"));
    }
    if !report.shared_blobs.is_empty() {
        parts.push(plural(
            report.shared_blobs.len(),
            "shared-store payload",
            "shared-store payloads",
        ));
    }
    if !report.partials.is_empty() {
        parts.push(plural(
            report.partials.len(),
            "stale partial download",
            "stale partial downloads",
        ));
    }
    match parts.len() {
        0 => "nothing".into(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    }
}

fn human(s: &PruneSummary) -> String {
    let mut lines = vec![format!(
        "Cache at {}: {} of blobs, budget {}.",
        s.cache_dir,
        human_bytes(s.size_before),
        gib(s.max_gb)
    )];
    if let Some(k) = s.detached_kept {
        lines.push(format!(
            "Kept {} no ref points at ({}): --detached removes {}, as `hf cache prune` does.",
            plural(k.revisions, "revision", "revisions"),
            human_bytes(k.bytes),
            if k.revisions == 1 { "it" } else { "them" }
        ));
    }
    if s.report.is_empty() && s.report.kept.is_empty() && s.report.failures.is_empty() {
        lines.push(if s.size_before <= s.budget_bytes {
            format!(
                "Nothing to prune: under budget ({} of {}), and no orphaned blob or stale \
                 partial download.",
                human_bytes(s.size_before),
                gib(s.max_gb)
            )
        } else {
            format!(
                "Nothing to prune: over budget ({} of {}), but every revision is pointed at by \
                 a ref{}.",
                human_bytes(s.size_before),
                gib(s.max_gb),
                if s.older_than.is_some() {
                    " or was used too recently for --older-than"
                } else {
                    ""
                }
            )
        });
        return lines.join("\n");
    }
    lines.extend(report_lines(&s.report, s.dry_run, true));
    lines.push(if s.dry_run {
        format!(
            "Would free {}; blobs would take {}. Nothing was deleted (dry run).",
            human_bytes(s.report.bytes_freed),
            human_bytes(s.size_after)
        )
    } else {
        format!(
            "Freed {}; blobs now take {}.",
            human_bytes(s.report.bytes_freed),
            human_bytes(s.size_after)
        )
    });
    if s.report.interrupted {
        lines.push("Interrupted before the end: run the same prune again to finish.".into());
    }
    lines.join("\n")
}
