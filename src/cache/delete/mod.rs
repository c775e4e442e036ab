//! Deleting from the hub cache, for `prune` and `rm`: revisions with the blobs only they used,
//! orphaned blobs, shared-store payloads nothing links any more, and abandoned partial downloads.
//!
//! In stages: [`index`] reads what one scan needs once, [`plan`] computes the whole deletion
//! from a selection (so `--dry-run` shows what a real run does), [`execute`] carries it out and
//! [`report`] says what happened. Execution removes each snapshot before its refs and blobs (a
//! ref never names a missing snapshot, a link never dangles), takes huggingface_hub's lock
//! before each blob or partial and keeps it when the lock is held, refuses any path that is not
//! inside the cache dir, and stops only between items when asked to.
//!
//! Commands take [`crate::cache::lock::RepoLockSet`] before they scan: a repo a pull is writing
//! into is left alone, and no pull can start writing into the others until the deletion is done.

mod execute;
mod index;
mod paths;
mod plan;
mod report;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime};

use index::Index;
use plan::DeletionPlan;
pub use report::{KeptEntry, Report};

use super::scan::{Blob, CacheScan, Partial};

/// A partial download is abandoned when nobody holds its lock and it has not changed for this
/// long, unless `prune.partials_after` says otherwise. huggingface_hub holds the blob's lock for
/// a whole download and `pull` does too; the wait also covers writers that take no lock and
/// clock skew on network filesystems, and leaves a pull that was cut off a day to resume.
pub const PARTIAL_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// An orphaned blob (no snapshot links it) is collected only once it has not changed for this
/// long, as git gc spares recent unreachable objects: a blob a writer has just moved into place
/// looks orphaned until that writer links it from a snapshot (huggingface_hub does both under the
/// blob's lock, pulls under their repo lock, but not every writer takes one).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(60 * 60);

const BUSY: &str = "a pull is writing into this repo: left alone until it finishes";

const LOCKED: &str = "its lock is held: a download is in progress";

/// What to delete, by index into the scan's repos.
#[derive(Debug, Default, Clone)]
struct Selection {
    /// (repo, commit) → why, and the bytes it added when it was chosen.
    revisions: BTreeMap<(usize, String), Chosen>,
    /// Repos removed whole, whatever their revisions.
    repos: BTreeMap<usize, Chosen>,
    orphans: bool,
    stale_partials: bool,
}

#[derive(Debug, Clone)]
struct Chosen {
    reason: String,
    bytes: u64,
    /// Order of choice: reports list revisions in it (for prune, least recently used first).
    seq: usize,
}

/// Plans deletions from one scan, one choice at a time, and carries them out.
pub struct Planner {
    index: Index,
    selection: Selection,
    plan: DeletionPlan,
}

impl Planner {
    /// Reads what planning needs (file identities, lock states, the shared store). Blocking.
    /// `orphans` and `stale_partials` add every repo's orphaned blobs and abandoned partial
    /// downloads to the plan.
    #[cfg(test)]
    pub fn new(
        scan: CacheScan,
        now: SystemTime,
        orphans: bool,
        stale_partials: Option<Duration>,
    ) -> Planner {
        Planner::with_busy(scan, now, orphans, stale_partials, &HashSet::new())
    }

    /// Like [`Planner::new`], leaving alone the repos whose folders are in `busy` (see
    /// [`crate::cache::lock::RepoLockSet`]): nothing in them is planned, and each is reported
    /// as kept. Takes the scan: a planner can move to a blocking thread and back.
    pub fn with_busy(
        scan: CacheScan,
        now: SystemTime,
        orphans: bool,
        stale_partials: Option<Duration>,
        busy: &HashSet<String>,
    ) -> Planner {
        let mut index = Index::build(scan, now);
        if let Some(age) = stale_partials {
            index.partial_age = age;
        }
        index.busy = index
            .scan
            .repos
            .iter()
            .enumerate()
            .filter(|(_, r)| busy.contains(&r.folder))
            .map(|(ri, _)| ri)
            .collect();
        let selection = Selection {
            orphans,
            stale_partials: stale_partials.is_some(),
            ..Default::default()
        };
        let plan = index.plan(&selection);
        Planner {
            index,
            selection,
            plan,
        }
    }

    /// The scan the plan is made from.
    pub fn scan(&self) -> &CacheScan {
        &self.index.scan
    }

    /// The part of the bytes the current plan frees that [`CacheScan::blob_bytes`] counts: what a disk
    /// budget is measured against.
    pub fn blob_bytes_freed(&self) -> u64 {
        self.plan.blob_bytes_freed
    }

    pub fn is_selected(&self, repo: usize, commit: &str) -> bool {
        self.selection.repos.contains_key(&repo)
            || self
                .selection
                .revisions
                .contains_key(&(repo, commit.to_string()))
    }

    /// Adds a revision (by repo index and commit); returns the bytes this adds to the plan.
    pub fn add_revision(&mut self, repo: usize, commit: &str, reason: &str) -> u64 {
        if self.is_selected(repo, commit) {
            return 0;
        }
        let key = (repo, commit.to_string());
        let seq = self.selection.revisions.len() + self.selection.repos.len();
        self.selection.revisions.insert(
            key.clone(),
            Chosen {
                reason: reason.into(),
                bytes: 0,
                seq,
            },
        );
        let delta = self.replan();
        if let Some(c) = self.selection.revisions.get_mut(&key) {
            c.bytes = delta;
        }
        delta
    }

    /// Adds a whole repo; returns the bytes this adds to the plan.
    pub fn add_repo(&mut self, repo: usize, reason: &str) -> u64 {
        if self.selection.repos.contains_key(&repo) {
            return 0;
        }
        let seq = self.selection.revisions.len() + self.selection.repos.len();
        self.selection.repos.insert(
            repo,
            Chosen {
                reason: reason.into(),
                bytes: 0,
                seq,
            },
        );
        let delta = self.replan();
        if let Some(c) = self.selection.repos.get_mut(&repo) {
            c.bytes = delta;
        }
        delta
    }

    fn replan(&mut self) -> u64 {
        let before = self.plan.bytes_freed;
        self.plan = self.index.plan(&self.selection);
        self.plan.bytes_freed.saturating_sub(before)
    }

    /// What a real run would delete, deleting nothing.
    pub fn preview(&self) -> Report {
        let done = self.plan.as_done(&self.index);
        done.into_report(&self.index, &self.selection)
    }

    /// Deletes what the plan says, under locks; keeps going past failures. `stop` is asked
    /// between items (a revision with its refs and blobs, a blob, a partial, a folder, a
    /// payload): once it says yes, nothing more is deleted and the report is marked
    /// interrupted. Blocking.
    pub fn execute(&self, stop: &dyn Fn() -> bool) -> Report {
        let done = self.index.execute(&self.plan, stop);
        done.into_report(&self.index, &self.selection)
    }
}

/// Has the file at `path` been left unchanged for `grace`? Unknown times count as recent.
fn unchanged_for(modified: Option<SystemTime>, now: SystemTime, grace: Duration) -> bool {
    modified
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age >= grace)
}

/// An orphan old enough to collect ([`ORPHAN_GRACE`]).
fn orphan_settled(blob: &Blob, now: SystemTime) -> bool {
    unchanged_for(blob.modified, now, ORPHAN_GRACE)
}

/// A partial download nobody has written to for `age` ([`PARTIAL_AGE`] unless configured):
/// abandoned.
pub fn is_stale(partial: &Partial, now: SystemTime, age: Duration) -> bool {
    partial
        .modified
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|untouched| untouched >= age)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::lock::RepoLockSet;
    use crate::cache::scan::scan;
    use crate::cache::{lock_path, repo_lock_path};
    use std::fs::{self, File};
    use std::os::unix::fs::symlink;
    use std::path::{Path, PathBuf};

    const C1: &str = "1111111111111111111111111111111111111111";
    const C2: &str = "2222222222222222222222222222222222222222";

    fn etag(n: u8) -> String {
        format!("{n:x}").repeat(64)
    }

    /// Written long enough ago that an orphan would be collected.
    fn age(path: &Path) {
        File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(SystemTime::now() - ORPHAN_GRACE - Duration::from_secs(60))
            .unwrap();
    }

    /// A repo with two revisions: C1 uses blobs 1 and 2, C2 uses blobs 2 and 3; blob 4 is an
    /// orphan; `main` points at C2.
    fn fixture(root: &Path) -> PathBuf {
        let repo = root.join("models--org--m");
        for sub in ["blobs", "refs"] {
            fs::create_dir_all(repo.join(sub)).unwrap();
        }
        for (n, len) in [(1u8, 100usize), (2, 20), (3, 300), (4, 4)] {
            let path = repo.join("blobs").join(etag(n));
            fs::write(&path, vec![b'x'; len]).unwrap();
            age(&path);
        }
        for (commit, blobs) in [(C1, [1u8, 2]), (C2, [2, 3])] {
            let snap = repo.join("snapshots").join(commit);
            fs::create_dir_all(&snap).unwrap();
            for n in blobs {
                symlink(
                    format!("../../blobs/{}", etag(n)),
                    snap.join(format!("f{n}")),
                )
                .unwrap();
            }
        }
        fs::write(repo.join("refs/main"), C2).unwrap();
        repo
    }

    #[test]
    fn removing_a_revision_frees_only_blobs_no_survivor_uses() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        let scan = scan(dir.path());
        let mut p = Planner::new(scan, SystemTime::now(), false, None);
        assert_eq!(p.preview().bytes_freed, 0);
        assert_eq!(p.add_revision(0, C1, "test"), 100);
        let report = p.execute(&|| false);
        assert_eq!(report.bytes_freed, 100);
        assert_eq!(report.blobs.len(), 1);
        assert!(!repo.join("snapshots").join(C1).exists());
        assert!(!repo.join("blobs").join(etag(1)).exists());
        assert!(repo.join("blobs").join(etag(2)).exists());
        assert!(
            repo.join("blobs").join(etag(4)).exists(),
            "orphans only on request"
        );
    }

    #[test]
    fn the_last_revision_takes_the_folder_and_its_refs() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        let scan = scan(dir.path());
        let mut p = Planner::new(scan, SystemTime::now(), false, None);
        p.add_revision(0, C1, "test");
        p.add_revision(0, C2, "test");
        assert_eq!(p.blob_bytes_freed(), 424);
        let preview = p.preview();
        assert_eq!(preview.repos.len(), 1);
        assert_eq!(preview.refs.len(), 1);
        assert!(repo.exists(), "a preview deletes nothing");
        let report = p.execute(&|| false);
        assert_eq!(report.bytes_freed, 424);
        assert!(!repo.exists());
    }

    #[test]
    fn held_locks_keep_blobs_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        let partial = repo.join("blobs").join(format!("{}.incomplete", etag(5)));
        fs::write(&partial, b"part").unwrap();
        let old = SystemTime::now() - PARTIAL_AGE - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&partial)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let lock = |n: u8| {
            let path = lock_path(dir.path(), "models--org--m", &etag(n));
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let f = File::create(&path).unwrap();
            f.lock().unwrap();
            f
        };
        let _l4 = lock(4);
        let _l5 = lock(5);
        let scan = scan(dir.path());
        let p = Planner::new(scan, SystemTime::now(), true, Some(PARTIAL_AGE));
        let report = p.execute(&|| false);
        assert!(report.blobs.is_empty(), "{report:?}");
        assert!(report.partials.is_empty(), "{report:?}");
        assert_eq!(report.kept.len(), 2, "{report:?}");
        assert!(repo.join("blobs").join(etag(4)).exists());
        assert!(partial.exists());
    }

    #[test]
    fn stale_unlocked_partials_and_orphans_go() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        let stale = repo.join("blobs").join(format!("{}.incomplete", etag(5)));
        let fresh = repo.join("blobs").join(format!("{}.incomplete", etag(6)));
        // No blob name, so no lock anyone could hold: age alone decides.
        let nameless = repo.join("blobs").join("download.incomplete");
        for p in [&stale, &fresh, &nameless] {
            fs::write(p, b"part").unwrap();
        }
        for p in [&stale, &nameless] {
            File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(SystemTime::now() - PARTIAL_AGE - Duration::from_secs(60))
                .unwrap();
        }
        let scan = scan(dir.path());
        let report =
            Planner::new(scan, SystemTime::now(), true, Some(PARTIAL_AGE)).execute(&|| false);
        assert_eq!(report.orphans(), 1);
        assert_eq!(report.partials.len(), 2);
        assert_eq!(report.bytes_freed, 4 + 4 + 4);
        assert!(!stale.exists());
        assert!(!nameless.exists());
        assert!(fresh.exists());
    }

    #[test]
    fn a_blob_hard_linked_from_a_snapshot_is_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        // Where symlinks are unavailable, a snapshot file is a hard link to its blob.
        let snap = repo.join("snapshots").join(C2);
        fs::remove_file(snap.join("f3")).unwrap();
        fs::hard_link(repo.join("blobs").join(etag(3)), snap.join("f3")).unwrap();
        let scan = scan(dir.path());
        let p = Planner::new(scan, SystemTime::now(), true, None);
        assert_eq!(p.preview().orphans(), 1, "only blob 4");
        let report = p.execute(&|| false);
        assert!(repo.join("blobs").join(etag(3)).exists());

        // Once its revision goes, the blob goes with it, and its bytes are freed once.
        let scan = crate::cache::scan::scan(dir.path());
        let mut p = Planner::new(scan, SystemTime::now(), false, None);
        p.add_revision(0, C1, "test");
        assert_eq!(p.add_revision(0, C2, "test"), 20 + 300);
        assert!(report.failures.is_empty());
        p.execute(&|| false);
        assert!(!repo.exists());
    }

    #[test]
    fn a_fresh_orphan_is_left_for_its_writer_to_link() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        // Just moved into place by a download that has not linked it yet.
        let fresh = repo.join("blobs").join(etag(6));
        fs::write(&fresh, b"new").unwrap();
        let scan = scan(dir.path());
        let p = Planner::new(scan, SystemTime::now(), true, None);
        let preview = p.preview();
        assert_eq!(preview.orphans(), 1, "only the old orphan: {preview:?}");
        assert!(
            preview.kept.is_empty(),
            "nothing worth reporting: {preview:?}"
        );
        p.execute(&|| false);
        assert!(fresh.exists());
        assert!(!repo.join("blobs").join(etag(4)).exists());

        // Rewritten after the scan that found it old: kept, whatever the plan said.
        age(&fresh);
        let scan = crate::cache::scan::scan(dir.path());
        let p = Planner::new(scan, SystemTime::now(), true, None);
        assert_eq!(p.preview().orphans(), 1);
        fs::write(&fresh, b"new").unwrap();
        let report = p.execute(&|| false);
        assert!(fresh.exists(), "{report:?}");
        assert_eq!(report.kept.len(), 1, "{report:?}");
    }

    #[test]
    fn a_repo_a_pull_is_writing_into_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        let lock = repo_lock_path(dir.path(), "models--org--m");
        fs::create_dir_all(lock.parent().unwrap()).unwrap();
        let pull = File::create(&lock).unwrap();
        pull.lock_shared().unwrap();

        let locks = RepoLockSet::take(dir.path());
        assert!(locks.busy().contains("models--org--m"));
        let scan = scan(dir.path());
        let mut p = Planner::with_busy(
            scan,
            SystemTime::now(),
            true,
            Some(PARTIAL_AGE),
            locks.busy(),
        );
        assert_eq!(p.add_revision(0, C1, "test"), 0);
        let report = p.execute(&|| false);
        assert!(report.is_empty(), "{report:?}");
        assert_eq!(report.kept.len(), 1, "{report:?}");
        assert!(repo.join("snapshots").join(C1).exists());
        assert!(repo.join("blobs").join(etag(4)).exists());
        drop(locks);

        // Once the pull is done, the same plan goes through, and only its lock file is left.
        drop(pull);
        let locks = RepoLockSet::take(dir.path());
        assert!(locks.busy().is_empty());
        let scan = crate::cache::scan::scan(dir.path());
        let mut p = Planner::with_busy(
            scan,
            SystemTime::now(),
            true,
            Some(PARTIAL_AGE),
            locks.busy(),
        );
        assert_eq!(p.add_revision(0, C1, "test"), 100);
        p.execute(&|| false);
        assert!(!repo.join("snapshots").join(C1).exists());
        assert!(!repo.join("blobs").join(etag(4)).exists());
        drop(locks);
        assert!(lock.exists(), "a lock file it did not create stays");
    }

    #[test]
    fn a_stop_request_ends_the_run_between_revisions_and_a_new_plan_finishes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        fs::write(repo.join("refs/old"), C1).unwrap();
        let mut p = Planner::new(scan(dir.path()), SystemTime::now(), false, None);
        p.add_repo(0, "test");
        // Stops as soon as the first revision is out of sight, while its files are deleted.
        let first_gone = || !repo.join("snapshots").join(C1).exists();
        let report = p.execute(&first_gone);
        assert!(report.interrupted, "{report:?}");
        assert_eq!(report.revisions.len(), 1, "{report:?}");
        assert!(report.repos.is_empty(), "{report:?}");
        // The first revision went with its ref; its files wait in the trash.
        assert!(!repo.join("snapshots").join(C1).exists());
        assert!(!repo.join("refs/old").exists());
        assert_eq!(report.refs.len(), 1, "{report:?}");
        assert!(report.blobs.is_empty(), "{report:?}");
        assert!(paths::trash_dir(&repo).exists());
        // The second is untouched, its ref included.
        assert!(repo.join("snapshots").join(C2).join("f2").exists());
        assert_eq!(fs::read_to_string(repo.join("refs/main")).unwrap(), C2);

        let mut p = Planner::new(scan(dir.path()), SystemTime::now(), false, None);
        p.add_repo(0, "test");
        assert_eq!(p.preview().leftovers.len(), 1);
        let report = p.execute(&|| false);
        assert!(!report.interrupted);
        assert_eq!(report.leftovers.len(), 1, "{report:?}");
        assert!(!repo.exists(), "{report:?}");
    }

    #[test]
    fn removing_a_revision_leaves_no_trash_behind() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        let mut p = Planner::new(scan(dir.path()), SystemTime::now(), false, None);
        p.add_revision(0, C1, "test");
        let report = p.execute(&|| false);
        assert_eq!(report.revisions.len(), 1, "{report:?}");
        assert!(!paths::trash_dir(&repo).exists());
        assert!(repo.join("snapshots").join(C2).exists());
    }
}
