//! The last stage of a deletion: carrying out a [`DeletionPlan`] under locks, item by item.
//!
//! An item is a revision (its snapshot, its refs, then the blobs no other revision needs), a
//! leftover blob, a partial download, a repo folder, or a shared-store payload. A stop request
//! (Ctrl-C) is honoured only between items, so an interrupted run never leaves a ref naming a
//! missing snapshot or a link to a missing blob, and a re-run finishes the job.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::index::Index;
use super::paths::{
    move_to_trash, remove_dir_in, remove_empty_parents, remove_file_in, remove_tree, trash_dir,
};
use super::plan::{DeletionPlan, RepoPlan};
use super::report::Done;
use super::{is_stale, LOCKED};
use crate::cache::lock::{self, TransientLock};
use crate::cache::scan::{Partial, Repo};
use crate::cache::trees::tree_path;
use crate::cache::{lock_path, ref_path, repo_lock_path, snapshot_path, store};

/// One repo's part of the run: what failed so far decides what must stay.
struct RepoRun<'p> {
    ri: usize,
    rp: &'p RepoPlan,
    /// Revisions whose snapshot could not be removed: their blobs and refs stay.
    failed: HashSet<&'p str>,
    /// False once anything of the repo stays: then its folder stays too.
    clean: bool,
}

impl Index {
    /// Carries out a plan. Order per repo: each revision with its refs and the blobs it alone
    /// used, then other blobs, partials, and the folder; store payloads last, once every link to
    /// them is gone. `stop` is asked between items; once it says yes, nothing more is deleted
    /// and the result says it was interrupted.
    pub(super) fn execute(&self, plan: &DeletionPlan, stop: &dyn Fn() -> bool) -> Done {
        let mut done = Done {
            kept: plan.kept.clone(),
            ..Default::default()
        };
        for (ri, rp) in &plan.repos {
            if !self.execute_repo(*ri, rp, stop, &mut done) {
                done.interrupted = true;
                return done;
            }
        }
        for (payload, size) in &plan.store {
            if stop() {
                done.interrupted = true;
                return done;
            }
            self.collect_payload(payload, *size, &mut done);
        }
        done
    }

    /// One repo's part of the plan; false when stopped part-way.
    fn execute_repo(
        &self,
        ri: usize,
        rp: &RepoPlan,
        stop: &dyn Fn() -> bool,
        done: &mut Done,
    ) -> bool {
        let repo = &self.scan.repos[ri];
        let mut run = RepoRun {
            ri,
            rp,
            failed: HashSet::new(),
            clean: true,
        };
        // Each blob goes with the last removed revision that uses it.
        let mut users: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, commit) in rp.revisions.iter().enumerate() {
            for etag in repo.revision(commit).into_iter().flat_map(|r| r.etags()) {
                users.entry(etag).or_default().push(i);
            }
        }
        let mut with_revision: Vec<Vec<(&str, bool)>> = vec![Vec::new(); rp.revisions.len()];
        let mut leftovers = Vec::new();
        for (etag, orphan) in &rp.blobs {
            match users.get(etag.as_str()).and_then(|u| u.last()) {
                Some(&last) => with_revision[last].push((etag.as_str(), *orphan)),
                None => leftovers.push((etag.as_str(), *orphan)),
            }
        }
        if !self.empty_trash(rp, stop, done) {
            return false;
        }
        for (i, commit) in rp.revisions.iter().enumerate() {
            if stop() || !self.remove_revision(repo, &mut run, commit, stop, done) {
                return false;
            }
            for (etag, orphan) in &with_revision[i] {
                self.remove_blob(repo, &mut run, &users, etag, *orphan, done);
            }
        }
        // Refs that name no revision removed here (a whole repo's dangling refs).
        let commits: HashSet<&str> = rp.revisions.iter().map(String::as_str).collect();
        for (name, commit) in &rp.refs {
            if !commits.contains(commit.as_str()) {
                self.remove_ref(repo, &mut run, name, commit, done);
            }
        }
        for (etag, orphan) in leftovers {
            if stop() {
                return false;
            }
            self.remove_blob(repo, &mut run, &users, etag, orphan, done);
        }
        for p in &rp.partials {
            if stop() {
                return false;
            }
            self.remove_partial(repo, &mut run, p, rp.whole, done);
        }
        if rp.whole && run.clean {
            if stop() {
                return false;
            }
            self.remove_repo_folder(ri, done);
        }
        true
    }

    /// A revision's snapshot (and its `.no_exist/` markers), then the refs that name it. The
    /// folders are moved aside in one rename each and deleted after the refs, entry by entry;
    /// false when `stop` cut that short (the rest is left for a later run).
    fn remove_revision<'p>(
        &self,
        repo: &Repo,
        run: &mut RepoRun<'p>,
        commit: &'p str,
        stop: &dyn Fn() -> bool,
        done: &mut Done,
    ) -> bool {
        let dir = snapshot_path(&repo.dir, commit);
        let snapshot = match self.set_aside(repo, &dir) {
            Ok(moved) => moved,
            Err(e) => {
                done.fail(&dir, e);
                run.failed.insert(commit);
                run.clean = false;
                return true;
            }
        };
        done.revisions.push((run.ri, commit.to_string()));
        let no_exist = repo.dir.join(".no_exist").join(commit);
        let markers = match fs::symlink_metadata(&no_exist) {
            Ok(_) => self.set_aside(repo, &no_exist).unwrap_or_else(|e| {
                done.fail(&no_exist, e);
                None
            }),
            Err(_) => None,
        };
        for (name, c) in &run.rp.refs {
            if c == commit {
                self.remove_ref(repo, run, name, c, done);
            }
        }
        // The commit's tree listing goes with it: kept, it would tell huggingface_hub which
        // files to fetch for a snapshot that is gone, and keep the folder from looking unused.
        let listing = tree_path(&repo.dir, commit);
        if fs::symlink_metadata(&listing).is_ok() {
            match remove_file_in(&self.root, &listing) {
                Ok(()) => {
                    let _ = fs::remove_dir(listing.parent().expect("a listing has a folder"));
                }
                Err(e) => done.fail(&listing, e),
            }
        }
        for moved in [snapshot, markers].into_iter().flatten() {
            match remove_tree(&self.root, &moved, stop) {
                Ok(true) => {}
                Ok(false) => return false,
                Err(e) => done.fail(&moved, e),
            }
        }
        let _ = fs::remove_dir(trash_dir(&repo.dir));
        // Only now are a copied snapshot's bytes gone.
        if let Some(vi) = repo.revisions.iter().position(|r| r.commit == commit) {
            if let Some(copies) = self.copies.get(&(run.ri, vi)) {
                done.deleted.extend(copies.iter().cloned());
            }
        }
        true
    }

    /// Moves the folder `path` of `repo` into its trash (`Some`), or where that rename is not
    /// possible, deletes it in place (`None`).
    fn set_aside(&self, repo: &Repo, path: &Path) -> io::Result<Option<PathBuf>> {
        match move_to_trash(&self.root, &repo.dir, path) {
            Ok(moved) => Ok(Some(moved)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(_) => remove_dir_in(&self.root, path).map(|()| None),
        }
    }

    /// Deletes what an interrupted run left in the repo's trash; false when stopped.
    fn empty_trash(&self, rp: &RepoPlan, stop: &dyn Fn() -> bool, done: &mut Done) -> bool {
        for left in &rp.trash {
            match remove_tree(&self.root, left, stop) {
                Ok(true) => done.leftovers.push(left.clone()),
                Ok(false) => return false,
                Err(e) => done.fail(left, e),
            }
        }
        if let Some(trash) = rp.trash.first().and_then(|p| p.parent()) {
            let _ = fs::remove_dir(trash);
        }
        true
    }

    fn remove_ref(
        &self,
        repo: &Repo,
        run: &mut RepoRun<'_>,
        name: &str,
        commit: &str,
        done: &mut Done,
    ) {
        if run.failed.contains(commit) {
            run.clean = false;
            return;
        }
        let path = ref_path(&repo.dir, name);
        match remove_file_in(&self.root, &path) {
            Ok(()) => {
                done.refs
                    .push((run.ri, name.to_string(), commit.to_string()));
                if let Some(parent) = path.parent() {
                    remove_empty_parents(parent, &repo.dir.join("refs"));
                }
            }
            Err(e) => {
                done.fail(&path, e);
                run.clean = false;
            }
        }
    }

    /// A blob, under its lock, unless a revision that could not be removed still links it.
    fn remove_blob(
        &self,
        repo: &Repo,
        run: &mut RepoRun<'_>,
        users: &HashMap<&str, Vec<usize>>,
        etag: &str,
        orphan: bool,
        done: &mut Done,
    ) {
        let blob = &repo.blobs[etag];
        let still_linked = users
            .get(etag)
            .into_iter()
            .flatten()
            .any(|&i| run.failed.contains(run.rp.revisions[i].as_str()));
        if still_linked {
            run.clean = false;
            return;
        }
        let lock = lock_path(&self.root, &repo.folder, etag);
        match lock::try_lock(&lock) {
            // Looked at again under the lock: a writer may have put a new file there since the
            // scan, to link it next.
            Ok(Some(_guard))
                if orphan
                    && fs::metadata(&blob.path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|m| Some(m) != blob.modified) =>
            {
                done.keep(
                    &blob.path,
                    "changed since the scan: it may be about to be linked",
                );
                run.clean = false;
            }
            Ok(Some(_guard)) => match remove_file_in(&self.root, &blob.path) {
                Ok(()) => {
                    done.deleted.insert(blob.path.clone());
                    done.blobs.push((run.ri, etag.to_string(), orphan));
                }
                Err(e) => {
                    done.fail(&blob.path, e);
                    run.clean = false;
                }
            },
            Ok(None) => {
                done.keep(&blob.path, LOCKED);
                run.clean = false;
            }
            Err(e) => {
                done.fail(&lock, e);
                run.clean = false;
            }
        }
    }

    /// A partial download, under its blob's lock when its name carries one, if still stale.
    /// Removing the `whole` repo takes it whatever its age.
    fn remove_partial(
        &self,
        repo: &Repo,
        run: &mut RepoRun<'_>,
        p: &Partial,
        whole: bool,
        done: &mut Done,
    ) {
        let _guard: Option<TransientLock> = match &p.etag {
            Some(etag) => {
                let lock = lock_path(&self.root, &repo.folder, etag);
                match lock::try_lock(&lock) {
                    Ok(Some(g)) => Some(g),
                    Ok(None) => {
                        done.keep(&p.path, LOCKED);
                        run.clean = false;
                        return;
                    }
                    Err(e) => {
                        done.fail(&lock, e);
                        run.clean = false;
                        return;
                    }
                }
            }
            None => None,
        };
        // Looked at again under the lock: it may have changed since the scan.
        let still_stale = fs::symlink_metadata(&p.path)
            .ok()
            .map(|m| Partial {
                modified: m.modified().ok(),
                ..p.clone()
            })
            .is_none_or(|fresh| whole || is_stale(&fresh, self.now, self.partial_age));
        if !still_stale {
            done.keep(&p.path, "partial download changed since the scan");
            run.clean = false;
            return;
        }
        match remove_file_in(&self.root, &p.path) {
            Ok(()) => done.partials.push((p.path.clone(), p.size)),
            Err(e) => {
                done.fail(&p.path, e);
                run.clean = false;
            }
        }
    }

    /// Removes a repo folder whose revisions, refs, blobs and partials are gone, under every lock
    /// of that repo, then those lock files.
    fn remove_repo_folder(&self, ri: usize, done: &mut Done) {
        let repo = &self.scan.repos[ri];
        let locks_dir = self.root.join(".locks").join(&repo.folder);
        let mut guards = Vec::new();
        let mut lock_files = Vec::new();
        if let Ok(entries) = fs::read_dir(&locks_dir) {
            for e in entries.filter_map(Result::ok) {
                if !e.file_type().is_ok_and(|t| t.is_file()) {
                    continue;
                }
                let path = e.path();
                match lock::try_lock(&path) {
                    Ok(Some(g)) => {
                        guards.push(g);
                        lock_files.push(path);
                    }
                    Ok(None) => {
                        done.keep(
                            &repo.dir,
                            &format!("folder kept: {LOCKED} ({})", path.display()),
                        );
                        return;
                    }
                    Err(e) => {
                        done.fail(&path, e);
                        return;
                    }
                }
            }
        }
        if let Err(e) = remove_dir_in(&self.root, &repo.dir) {
            done.fail(&repo.dir, e);
            return;
        }
        for blob in repo.blobs.values() {
            done.deleted.insert(blob.path.clone());
        }
        done.repos.push(ri);
        // Deleted while held, so a waiting process that wins it next sees the file is gone
        // (filelock checks) rather than locking an orphaned inode unawares.
        for path in &lock_files {
            let _ = remove_file_in(&self.root, path);
        }
        drop(guards);
        let _ = fs::remove_dir(&locks_dir);
        // Held by the command ([`crate::cache::lock::RepoLockSet`]); a pull waiting on it sees
        // the file go and locks the next one.
        let _ = remove_file_in(&self.root, &repo_lock_path(&self.root, &repo.folder));
    }

    /// Deletes a store payload under its lock, if the manifest confirms no live link remains.
    fn collect_payload(&self, payload: &Path, size: u64, done: &mut Done) {
        if let Some(names) = self.payload_names(payload) {
            if !names
                .iter()
                .all(|n| n == payload || done.deleted.contains(n))
            {
                // A link to it could not be removed: it is still in use.
                return;
            }
        }
        let _guard = match lock::try_lock(&store::lock_path(payload)) {
            Ok(Some(g)) => g,
            Ok(None) => {
                done.keep(payload, LOCKED);
                return;
            }
            Err(e) => {
                done.fail(payload, e);
                return;
            }
        };
        match store::live_refs(&self.root, payload) {
            None => done.keep(payload, "its .refs manifest is missing or unreadable"),
            Some(live) if !live.is_empty() => {
                let names: Vec<String> = live.iter().map(|p| p.display().to_string()).collect();
                done.keep(payload, &format!("still linked from {}", names.join(", ")));
            }
            Some(_) => match remove_file_in(&self.root, payload) {
                Ok(()) => {
                    let _ = remove_file_in(&self.root, &store::refs_path(payload));
                    done.deleted.insert(payload.to_path_buf());
                    done.store.push((payload.to_path_buf(), size));
                }
                Err(e) => done.fail(payload, e),
            },
        }
    }
}
