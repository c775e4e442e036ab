//! `prune` on the local cache: orphaned blobs and abandoned partial downloads always; with
//! `detached`, every revision no ref points at; then revisions least recently used first until
//! the blobs fit the budget, never one a ref points at, none used within `older_than`.

pub mod remote;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use serde::Serialize;

use crate::cache::delete::{Planner, Report};
use crate::cache::scan::{self, CacheScan, FileSource, Repo, Revision};
use crate::cancel::Cancel;
use crate::ops::delete::{Deletion, Locked};

/// `--max-gb` and `cache.max_local_gb` count GiB (2^30 bytes), as 0.1 does.
const GIB: f64 = (1u64 << 30) as f64;

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct DetachedKept {
    pub revisions: usize,
    /// The bytes of the blobs only they use.
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
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

/// What a local prune removes.
#[derive(Debug, Clone)]
pub struct PruneOptions {
    /// The budget, in GiB.
    pub max_gb: f64,
    pub detached: bool,
    /// Revisions used within this long stay; the text as given, and the age it reads as.
    pub older_than: Option<(String, Duration)>,
    /// Partial downloads untouched for this long go (`cache.partial_max_age`).
    pub partial_max_age: Duration,
}

/// A local prune planned, its repos locked.
pub struct LocalPrune {
    pub deletion: Deletion,
    opts: PruneOptions,
    root: PathBuf,
    budget: u64,
    size_before: u64,
    detached_kept: Option<DetachedKept>,
}

/// Plans the prune from the locked scan; `cancel` cuts the planning short.
pub async fn plan_prune(
    locked: Locked,
    opts: &PruneOptions,
    cancel: &Cancel,
) -> Result<LocalPrune> {
    let budget = (opts.max_gb * GIB) as u64;
    let size_before = locked.scan.blob_bytes();
    let root = locked.scan.root.clone();
    let choice = Choice {
        budget,
        detached: opts.detached,
        older_than: opts.older_than.as_ref().map(|(_, age)| *age),
        partial_max_age: opts.partial_max_age,
        now: SystemTime::now(),
    };
    let cancel = cancel.clone();
    let (deletion, detached_kept) = locked
        .plan(move |scan, busy| {
            let planner = plan(scan, busy, &choice, &cancel);
            let kept = (!choice.detached).then(|| detached_kept(&planner));
            (planner, kept)
        })
        .await?;
    Ok(LocalPrune {
        deletion,
        opts: opts.clone(),
        root,
        budget,
        size_before,
        detached_kept,
    })
}

impl LocalPrune {
    /// Carries out the prune (for a dry run, or when there is nothing to remove, reports what
    /// it would remove), then measures the blobs left: counted after Ctrl-C, scanned otherwise.
    pub async fn execute(self, dry_run: bool, cancel: &Cancel) -> Result<PruneReport> {
        let preview = self.deletion.preview();
        let (report, size_after) = if dry_run || preview.is_empty() {
            let expected = self
                .size_before
                .saturating_sub(self.deletion.blob_bytes_freed());
            (preview, expected)
        } else {
            let report = self.deletion.execute(cancel).await?;
            let after = if report.interrupted {
                // Ctrl-C wants the run over: count rather than scan again.
                self.size_before.saturating_sub(report.blob_bytes_freed)
            } else {
                let root = self.root.clone();
                tokio::task::spawn_blocking(move || scan::scan(&root).blob_bytes()).await?
            };
            (report, after)
        };
        Ok(PruneReport {
            command: "prune",
            cache_dir: self.root.display().to_string(),
            dry_run,
            detached: self.opts.detached,
            older_than: self.opts.older_than.map(|(text, _)| text),
            max_gb: self.opts.max_gb,
            budget_bytes: self.budget,
            size_before: self.size_before,
            size_after,
            within_budget: size_after <= self.budget,
            detached_kept: self.detached_kept.filter(|k| k.revisions > 0),
            report,
        })
    }
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
    partial_max_age: Duration,
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
        partial_max_age,
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

    let mut planner = Planner::with_busy(scan, now, true, Some(partial_max_age), busy);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{commit, Cache};

    /// Three revisions of 100 bytes each, used a, b, c from oldest to newest; only c has a ref.
    fn cache() -> Cache {
        let cache = Cache::new();
        let now = SystemTime::now();
        for (i, digit) in ['a', 'b', 'c'].into_iter().enumerate() {
            let etag = cache.file("org/m", &commit(digit), "w.bin", &[i as u8; 100]);
            let blob = cache.repo_dir("org/m").join("blobs").join(etag);
            let used = now - Duration::from_secs(86400 * (3 - i as u64));
            let times = std::fs::FileTimes::new()
                .set_accessed(used)
                .set_modified(used);
            std::fs::File::options()
                .write(true)
                .open(blob)
                .unwrap()
                .set_times(times)
                .unwrap();
        }
        cache.reference("org/m", "main", &commit('c'));
        cache
    }

    /// The revisions a prune by `choice` removes, by first digit, and the bytes it frees.
    fn pruned(choice: &Choice) -> (Vec<char>, u64) {
        let cache = cache();
        let planner = plan(cache.scan(), &HashSet::new(), choice, &Cancel::default());
        let report = planner.preview();
        let revisions = report
            .revisions
            .iter()
            .map(|r| r.commit.chars().next().unwrap())
            .collect();
        (revisions, planner.blob_bytes_freed())
    }

    fn choice(budget: u64, detached: bool, older_than: Option<Duration>) -> Choice {
        Choice {
            budget,
            detached,
            older_than,
            partial_max_age: crate::cache::delete::PARTIAL_AGE,
            now: SystemTime::now(),
        }
    }

    #[test]
    fn the_least_recently_used_revisions_go_until_the_blobs_fit() {
        assert_eq!(pruned(&choice(250, false, None)), (vec!['a'], 100));
        assert_eq!(pruned(&choice(150, false, None)), (vec!['a', 'b'], 200));
        assert_eq!(pruned(&choice(300, false, None)), (vec![], 0));
    }

    #[test]
    fn a_revision_a_ref_points_at_stays_whatever_the_budget() {
        assert_eq!(pruned(&choice(0, false, None)), (vec!['a', 'b'], 200));
    }

    #[test]
    fn detached_takes_every_unreferenced_revision_and_older_than_spares_recent_ones() {
        assert_eq!(pruned(&choice(1000, true, None)), (vec!['a', 'b'], 200));
        let two_and_a_half_days = Some(Duration::from_secs(86400 * 5 / 2));
        assert_eq!(
            pruned(&choice(0, false, two_and_a_half_days)),
            (vec!['a'], 100)
        );
    }
}
