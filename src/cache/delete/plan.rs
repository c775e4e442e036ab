//! The second stage of a deletion: from a selection (revisions, repos, whether to collect
//! orphans and stale partials) to the complete list of what goes and what stays, computed from
//! the [`Index`] alone. A plan is recomputed from scratch after each choice, so the bytes a
//! choice adds are exact.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::index::{repo_path, FileId, Index, Pinner};
use super::report::{Done, KeptEntry};
use super::{is_stale, orphan_settled, Selection, BUSY};
use crate::cache::scan::Partial;
use crate::cache::{lock_path, store};

/// The deletion for one repo.
#[derive(Debug, Default, Clone)]
pub(super) struct RepoPlan {
    pub revisions: Vec<String>,
    /// (name, commit) of refs removed.
    pub refs: Vec<(String, String)>,
    /// (etag, was an orphan before this run)
    pub blobs: Vec<(String, bool)>,
    pub partials: Vec<Partial>,
    /// Folders an interrupted run left in the repo's trash.
    pub trash: Vec<PathBuf>,
    /// Remove the whole folder once its contents are gone.
    pub whole: bool,
}

/// The complete deletion computed from a selection.
#[derive(Debug, Default, Clone)]
pub(super) struct DeletionPlan {
    pub repos: BTreeMap<usize, RepoPlan>,
    /// Store payloads to collect: (path, size).
    pub store: Vec<(PathBuf, u64)>,
    pub kept: Vec<KeptEntry>,
    pub bytes_freed: u64,
    /// The part of `bytes_freed` that [`crate::cache::scan::CacheScan::blob_bytes`] counts.
    pub blob_bytes_freed: u64,
}

impl DeletionPlan {
    /// What carrying out the plan in full would do: a preview, and the start of an execution.
    pub fn as_done(&self, index: &Index) -> Done {
        let mut done = Done {
            kept: self.kept.clone(),
            store: self.store.clone(),
            ..Default::default()
        };
        for (ri, rp) in &self.repos {
            let repo = &index.scan.repos[*ri];
            for commit in &rp.revisions {
                done.revisions.push((*ri, commit.clone()));
                if let Some(vi) = repo.revisions.iter().position(|r| &r.commit == commit) {
                    if let Some(copies) = index.copies.get(&(*ri, vi)) {
                        done.deleted.extend(copies.iter().cloned());
                    }
                }
            }
            for (name, commit) in &rp.refs {
                done.refs.push((*ri, name.clone(), commit.clone()));
            }
            for (etag, orphan) in &rp.blobs {
                done.blobs.push((*ri, etag.clone(), *orphan));
                done.deleted.insert(repo.blobs[etag].path.clone());
            }
            for p in &rp.partials {
                done.partials.push((p.path.clone(), p.size));
            }
            done.leftovers.extend(rp.trash.iter().cloned());
            if rp.whole {
                done.repos.push(*ri);
            }
        }
        done.deleted
            .extend(self.store.iter().map(|(p, _)| p.clone()));
        done
    }
}

/// Blob candidates: (repo, etag) → was an orphan before the run.
type Candidates = BTreeMap<(usize, String), bool>;

/// A plan being worked out, stage by stage.
struct Draft<'i> {
    index: &'i Index,
    sel: &'i Selection,
    plan: DeletionPlan,
    /// Which revisions go, per repo (by revision index).
    removed: Vec<BTreeSet<usize>>,
    /// Repos that go whole (all their revisions, or chosen as a repo).
    whole: BTreeSet<usize>,
    /// Repos removed whole that keep files, and so their folder.
    repos_with_kept: BTreeSet<usize>,
    /// Every name the plan deletes.
    deleted: HashSet<PathBuf>,
}

impl Index {
    /// Computes the full deletion for a selection, from scratch.
    pub(super) fn plan(&self, sel: &Selection) -> DeletionPlan {
        let removed = self
            .scan
            .repos
            .iter()
            .enumerate()
            .map(|(ri, repo)| {
                repo.revisions
                    .iter()
                    .enumerate()
                    .filter(|(_, rev)| {
                        !self.busy.contains(&ri)
                            && (sel.repos.contains_key(&ri)
                                || sel.revisions.contains_key(&(ri, rev.commit.clone())))
                    })
                    .map(|(vi, _)| vi)
                    .collect()
            })
            .collect();
        let mut draft = Draft {
            index: self,
            sel,
            plan: DeletionPlan::default(),
            removed,
            whole: BTreeSet::new(),
            repos_with_kept: BTreeSet::new(),
            deleted: HashSet::new(),
        };
        let candidates = draft.blob_candidates();
        let kept = draft.pinned_or_locked(&candidates);
        draft.plan_blobs(&candidates, &kept);
        draft.plan_partials();
        draft.plan_revisions();
        draft.plan_store();
        draft.finish()
    }
}

impl Draft<'_> {
    /// Blobs no surviving revision uses that a removed revision used (or that are orphans to
    /// collect); marks whole repos and the snapshot copies that go.
    fn blob_candidates(&mut self) -> Candidates {
        let index = self.index;
        let sel = self.sel;
        let mut candidates = Candidates::new();
        for (ri, repo) in index.scan.repos.iter().enumerate() {
            if index.busy.contains(&ri) {
                self.plan.kept.push(KeptEntry {
                    path: repo.dir.display().to_string(),
                    reason: BUSY.into(),
                });
                continue;
            }
            let gone = &self.removed[ri];
            let is_whole = sel.repos.contains_key(&ri)
                || (!gone.is_empty() && gone.len() == repo.revisions.len());
            if is_whole {
                self.whole.insert(ri);
            }
            let mut surviving: HashSet<&str> = HashSet::new();
            let mut used_by_gone: HashSet<&str> = HashSet::new();
            let mut surviving_copies: HashSet<FileId> = HashSet::new();
            let mut all_copies: HashSet<FileId> = HashSet::new();
            for (vi, rev) in repo.revisions.iter().enumerate() {
                let ids = index.copy_ids.get(&(ri, vi)).into_iter().flatten();
                all_copies.extend(ids.clone());
                if gone.contains(&vi) {
                    used_by_gone.extend(rev.etags());
                    if let Some(copies) = index.copies.get(&(ri, vi)) {
                        self.deleted.extend(copies.iter().cloned());
                    }
                } else {
                    surviving.extend(rev.etags());
                    surviving_copies.extend(ids);
                }
            }
            let referenced = repo.referenced();
            for (etag, blob) in &repo.blobs {
                let id = index.blob_ids_by_etag.get(&(ri, etag.clone()));
                let hard_linked = id.is_some_and(|id| all_copies.contains(id));
                let orphan = !referenced.contains(etag.as_str()) && !hard_linked;
                let in_use = surviving.contains(etag.as_str())
                    || id.is_some_and(|id| surviving_copies.contains(id));
                // Not in use, and either a removed revision used it or it is an orphan to clean.
                let wanted = is_whole
                    || (!in_use
                        && (used_by_gone.contains(etag.as_str())
                            || hard_linked
                            || (sel.orphans && orphan && orphan_settled(blob, index.now))));
                if wanted {
                    candidates.insert((ri, etag.clone()), orphan);
                }
            }
        }
        candidates
    }

    /// Candidates that must stay, with why: their lock is held, or a link that survives passes
    /// through them. Dropping a pinned blob can pin more (a blob that links elsewhere survives),
    /// so this repeats until nothing changes.
    fn pinned_or_locked(&self, candidates: &Candidates) -> BTreeMap<(usize, String), String> {
        let index = self.index;
        let repos = &index.scan.repos;
        let mut kept: BTreeMap<(usize, String), String> = BTreeMap::new();
        for (ri, etag) in candidates.keys() {
            let lock = lock_path(&index.root, &repos[*ri].folder, etag);
            if let Some(why) = index.held(&lock) {
                kept.insert((*ri, etag.clone()), why.clone());
            }
        }
        loop {
            let mut active: HashMap<&Path, String> = HashMap::new();
            for (who, path) in &index.pins {
                let alive = match who {
                    Pinner::Revision(ri, vi) => !self.removed[*ri].contains(vi),
                    Pinner::Blob(ri, etag) => {
                        let key = (*ri, etag.clone());
                        !candidates.contains_key(&key) || kept.contains_key(&key)
                    }
                };
                if alive {
                    let by = match who {
                        Pinner::Revision(ri, vi) => {
                            let repo = &repos[*ri];
                            format!("{}@{}", repo.qualified_id(), repo.revisions[*vi].commit)
                        }
                        Pinner::Blob(ri, etag) => repo_path(&repos[*ri], &format!("blobs/{etag}")),
                    };
                    active.insert(path.as_path(), by);
                }
            }
            let mut changed = false;
            for key in candidates.keys() {
                if kept.contains_key(key) {
                    continue;
                }
                if let Some(by) = index
                    .blob_canon
                    .get(key)
                    .and_then(|c| active.get(c.as_path()))
                {
                    kept.insert(key.clone(), format!("{by} links to it"));
                    changed = true;
                }
            }
            if !changed {
                return kept;
            }
        }
    }

    fn plan_blobs(&mut self, candidates: &Candidates, kept: &BTreeMap<(usize, String), String>) {
        for ((ri, etag), orphan) in candidates {
            let blob = &self.index.scan.repos[*ri].blobs[etag];
            if let Some(why) = kept.get(&(*ri, etag.clone())) {
                self.plan.kept.push(KeptEntry {
                    path: blob.path.display().to_string(),
                    reason: why.clone(),
                });
                self.repos_with_kept.insert(*ri);
                continue;
            }
            self.deleted.insert(blob.path.clone());
            self.plan
                .repos
                .entry(*ri)
                .or_default()
                .blobs
                .push((etag.clone(), *orphan));
        }
    }

    /// Partial downloads: all of a repo removed whole, else the stale ones when asked; never
    /// one whose lock is held.
    fn plan_partials(&mut self) {
        let index = self.index;
        for (ri, repo) in index.scan.repos.iter().enumerate() {
            let is_whole = self.whole.contains(&ri);
            if index.busy.contains(&ri) {
                continue;
            }
            // What an interrupted run left goes with any deletion in the repo.
            if is_whole || !self.removed[ri].is_empty() || self.sel.stale_partials {
                if let Some(left) = index.trash.get(&ri) {
                    self.plan.repos.entry(ri).or_default().trash = left.clone();
                }
            }
            if !is_whole && !self.sel.stale_partials {
                continue;
            }
            for p in &repo.partials {
                // Removing the whole repo takes its partials, whatever their age.
                let stale = is_whole || is_stale(p, index.now, index.partial_age);
                let lock = p
                    .etag
                    .as_ref()
                    .map(|e| lock_path(&index.root, &repo.folder, e));
                let held = lock.as_deref().and_then(|l| index.held(l));
                // A partial whose name carries no blob name has no lock to check: age decides.
                let keep = match (stale, held) {
                    (_, Some(why)) => Some(why.clone()),
                    (false, None) => Some(format!(
                        "partial download changed within the last {}",
                        humantime::format_duration(index.partial_age)
                    )),
                    (true, None) => None,
                };
                match keep {
                    None => self
                        .plan
                        .repos
                        .entry(ri)
                        .or_default()
                        .partials
                        .push(p.clone()),
                    Some(reason) => {
                        // Outside a whole-repo removal, fresh partials are ongoing downloads:
                        // nothing worth reporting.
                        if is_whole || (stale && held.is_some()) {
                            self.plan.kept.push(KeptEntry {
                                path: p.path.display().to_string(),
                                reason,
                            });
                        }
                        if is_whole {
                            self.repos_with_kept.insert(ri);
                        }
                    }
                }
            }
        }
    }

    /// Revisions, the refs that name them, and whole folders.
    fn plan_revisions(&mut self) {
        let index = self.index;
        for (ri, repo) in index.scan.repos.iter().enumerate() {
            let gone = &self.removed[ri];
            let is_whole = self.whole.contains(&ri);
            if gone.is_empty() && !is_whole {
                continue;
            }
            let rp = self.plan.repos.entry(ri).or_default();
            let commits: BTreeSet<&str> = gone
                .iter()
                .map(|vi| repo.revisions[*vi].commit.as_str())
                .collect();
            rp.revisions = commits.iter().map(|c| c.to_string()).collect();
            rp.refs = repo
                .refs
                .iter()
                .filter(|(_, c)| is_whole || commits.contains(c.as_str()))
                .map(|(n, c)| (n.clone(), c.clone()))
                .collect();
            if !is_whole {
                continue;
            }
            let held_lock = index
                .repo_locks
                .get(&ri)
                .into_iter()
                .flatten()
                .find_map(|l| index.held(l).map(|w| (l, w)));
            if self.repos_with_kept.contains(&ri) {
                self.plan.kept.push(KeptEntry {
                    path: repo.dir.display().to_string(),
                    reason: "folder kept (empty snapshots/) for the files kept in it".into(),
                });
            } else if let Some((lock, why)) = held_lock {
                self.plan.kept.push(KeptEntry {
                    path: repo.dir.display().to_string(),
                    reason: format!("folder kept: {} ({})", why, lock.display()),
                });
            } else {
                rp.whole = true;
            }
        }
    }

    /// The shared store: a payload goes when every repo link to it goes; with orphans asked
    /// for, so do payloads nothing links to.
    fn plan_store(&mut self) {
        let index = self.index;
        let repos = &index.scan.repos;
        let mut payloads: BTreeSet<&Path> = BTreeSet::new();
        for (ri, rp) in &self.plan.repos {
            for (etag, _) in &rp.blobs {
                let blob = &repos[*ri].blobs[etag];
                if blob.shared {
                    payloads.insert(blob.content_path.as_path());
                }
            }
        }
        let active_pins: HashSet<&Path> = index
            .pins
            .iter()
            .filter(|(who, _)| match who {
                Pinner::Revision(ri, vi) => !self.removed[*ri].contains(vi),
                Pinner::Blob(ri, etag) => !self.deleted.contains(&repos[*ri].blobs[etag].path),
            })
            .map(|(_, p)| p.as_path())
            .collect();
        for payload in payloads {
            let Some(names) = index.payload_names(payload) else {
                continue;
            };
            if !names
                .iter()
                .all(|n| n == payload || self.deleted.contains(n))
            {
                continue;
            }
            let keep = if !index.store_marked {
                Some("the shared store has no huggingface_hub marker; left in place".to_string())
            } else if !index.store_manifest.contains(payload) {
                Some("no .refs manifest beside it; left in place, as huggingface_hub does".into())
            } else if active_pins.contains(payload) {
                Some("a snapshot links to it directly".into())
            } else {
                index.held(&store::lock_path(payload)).cloned()
            };
            match keep {
                Some(reason) => self.plan.kept.push(KeptEntry {
                    path: payload.display().to_string(),
                    reason,
                }),
                None => {
                    let size = fs::symlink_metadata(payload).map(|m| m.len()).unwrap_or(0);
                    self.plan.store.push((payload.to_path_buf(), size));
                    self.deleted.insert(payload.to_path_buf());
                }
            }
        }
        if !self.sel.orphans {
            return;
        }
        for (payload, size) in &index.store_orphans {
            if active_pins.contains(payload.as_path()) {
                continue;
            }
            match index.held(&store::lock_path(payload)) {
                Some(why) => self.plan.kept.push(KeptEntry {
                    path: payload.display().to_string(),
                    reason: why.clone(),
                }),
                None => {
                    self.plan.store.push((payload.clone(), *size));
                    self.deleted.insert(payload.clone());
                }
            }
        }
    }

    /// The plan with the bytes it frees.
    fn finish(mut self) -> DeletionPlan {
        let partial_bytes: u64 = self
            .plan
            .repos
            .values()
            .flat_map(|rp| rp.partials.iter())
            .map(|p| p.size)
            .sum();
        let (all, blobs) = self.index.freed(&self.deleted);
        self.plan.bytes_freed = all + partial_bytes;
        self.plan.blob_bytes_freed = blobs;
        self.plan
    }
}
