//! The first stage of a deletion: everything planning needs from one scan, read once (file
//! identities, lock states, links that pass through blobs, the shared store), so replanning
//! after each choice touches no file.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::paths::{link_hops, trash_dir};
use super::LOCKED;
use crate::cache::lock::{self, Probe};
use crate::cache::scan::{CacheScan, FileSource, Repo};
use crate::cache::{file_id, link_count};
use crate::cache::{lock_path, store};

pub(super) type FileId = (u64, u64);

/// Everything one scan needs for planning. Owns the scan, so a plan can move between threads.
pub(super) struct Index {
    pub scan: CacheScan,
    /// The cache dir, canonical: every path deleted must be inside it.
    pub root: PathBuf,
    pub now: SystemTime,
    /// How long a partial download must be untouched before a prune removes it.
    pub partial_age: std::time::Duration,
    pub sizes: HashMap<FileId, u64>,
    /// Every known name of each distinct file: repo blobs, snapshot copies, store payloads. Its
    /// bytes are freed only when all of them are deleted.
    pub names: HashMap<FileId, BTreeSet<PathBuf>>,
    /// Store payload → its file id.
    pub payload_ids: HashMap<PathBuf, FileId>,
    /// Files some repo's `blobs/<etag>` is (or links to): what [`CacheScan::blob_bytes`] counts.
    pub blob_ids: HashSet<FileId>,
    /// (repo, etag) → the blob path with its folder resolved, as links are compared.
    pub blob_canon: HashMap<(usize, String), PathBuf>,
    /// (repo, revision index) → regular files inside that snapshot (the no-symlink layout).
    pub copies: HashMap<(usize, usize), Vec<PathBuf>>,
    /// (repo, revision index) → file ids of those copies: a blob hard-linked from a snapshot
    /// (where symlinks are unavailable) is in use even though no symlink names it.
    pub copy_ids: HashMap<(usize, usize), Vec<FileId>>,
    /// (repo, etag) → file id of the blob's content.
    pub blob_ids_by_etag: HashMap<(usize, String), FileId>,
    /// Paths that unusual links pass through (a snapshot link into another repo's blobs, a blob
    /// linking to another blob), with who links: deleting such a path would break the link.
    pub pins: Vec<(Pinner, PathBuf)>,
    /// Lock files someone else holds, or that could not be checked (with why).
    pub held: HashMap<PathBuf, String>,
    pub store_marked: bool,
    /// Store payloads some scanned blob links to, and whether a `.refs` manifest is beside them.
    pub store_manifest: HashSet<PathBuf>,
    /// Store payloads no scanned blob links to and whose manifest lists no live link.
    pub store_orphans: Vec<(PathBuf, u64)>,
    /// Lock files of each repo folder under `.locks/` (for removing a whole repo).
    pub repo_locks: HashMap<usize, Vec<PathBuf>>,
    /// (repo) → folders an interrupted run left in the repo's trash, to delete.
    pub trash: HashMap<usize, Vec<PathBuf>>,
    /// Repos a pull is writing into ([`crate::cache::lock::RepoLockSet::busy`]): nothing in
    /// them is touched.
    pub busy: HashSet<usize>,
    /// Files with hard links outside what the scan saw (another cache dir `dedupe` linked them
    /// into): deleting every name here frees none of their bytes.
    pub linked_elsewhere: HashSet<FileId>,
    /// Identities handed out to files the platform cannot tell apart.
    synthetic: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Pinner {
    Revision(usize, usize),
    Blob(usize, String),
}

/// Why the lock at `path` keeps what it guards, if it does.
fn held_reason(path: &Path) -> Option<String> {
    match lock::probe(path) {
        Probe::Free => None,
        Probe::Held => Some(LOCKED.into()),
        Probe::Unknown(e) => Some(format!("cannot check its lock {}: {e}", path.display())),
    }
}

pub(super) fn repo_path(repo: &Repo, rel: &str) -> String {
    repo.dir.join(rel).display().to_string()
}

impl Index {
    /// Reads the index for `scan`. Blocking.
    pub fn build(scan: CacheScan, now: SystemTime) -> Index {
        let root = fs::canonicalize(&scan.root).unwrap_or_else(|_| scan.root.clone());
        let store_marked = store::is_marked(&root);
        let mut index = Index {
            scan,
            root,
            now,
            partial_age: super::PARTIAL_AGE,
            sizes: HashMap::new(),
            names: HashMap::new(),
            payload_ids: HashMap::new(),
            blob_ids: HashSet::new(),
            blob_canon: HashMap::new(),
            copies: HashMap::new(),
            copy_ids: HashMap::new(),
            blob_ids_by_etag: HashMap::new(),
            pins: Vec::new(),
            held: HashMap::new(),
            store_marked,
            store_manifest: HashSet::new(),
            store_orphans: Vec::new(),
            repo_locks: HashMap::new(),
            trash: HashMap::new(),
            busy: HashSet::new(),
            linked_elsewhere: HashSet::new(),
            synthetic: 0,
        };
        let mut linked_payloads = HashSet::new();
        for ri in 0..index.scan.repos.len() {
            index.index_blobs(ri, &mut linked_payloads);
            index.index_copies(ri);
            index.index_repo_locks(ri);
            index.index_trash(ri);
        }
        for payload in &linked_payloads {
            if fs::symlink_metadata(store::refs_path(payload)).is_ok_and(|m| m.is_file()) {
                index.store_manifest.insert(payload.clone());
            }
            index.note_lock(store::lock_path(payload));
        }
        if index.store_marked {
            index.find_store_orphans(&linked_payloads);
        }
        index.find_links_elsewhere();
        index
    }

    /// Files whose link count is higher than the names of them the scan found.
    fn find_links_elsewhere(&mut self) {
        for (id, names) in &self.names {
            let mut known = 0;
            let mut links = 0;
            for name in names {
                if let Ok(meta) = fs::symlink_metadata(name) {
                    if !meta.file_type().is_symlink() {
                        known += 1;
                        links = link_count(&meta);
                    }
                }
            }
            if links > known {
                self.linked_elsewhere.insert(*id);
            }
        }
    }

    /// Files without an identity (no inode numbers on this platform) each get their own.
    fn identify(&mut self, id: FileId) -> FileId {
        if id == (0, 0) {
            self.synthetic += 1;
            (u64::MAX, self.synthetic)
        } else {
            id
        }
    }

    fn note_lock(&mut self, lock: PathBuf) {
        if let Some(why) = held_reason(&lock) {
            self.held.insert(lock, why);
        }
    }

    /// A repo's blobs and partial downloads: names, sizes, links into the store, lock states.
    fn index_blobs(&mut self, ri: usize, linked_payloads: &mut HashSet<PathBuf>) {
        let repo = &self.scan.repos[ri];
        let blobs_canon = fs::canonicalize(repo.dir.join("blobs")).ok();
        let mut locks = Vec::new();
        let mut entries = Vec::new();
        for (etag, blob) in &repo.blobs {
            locks.push(lock_path(&self.root, &repo.folder, etag));
            entries.push((etag.clone(), blob.clone()));
        }
        for p in &repo.partials {
            if let Some(etag) = &p.etag {
                locks.push(lock_path(&self.root, &repo.folder, etag));
            }
        }
        for (etag, blob) in entries {
            let id = self.identify(blob.file_id);
            self.sizes.insert(id, blob.size);
            self.blob_ids.insert(id);
            self.blob_ids_by_etag.insert((ri, etag.clone()), id);
            let names = self.names.entry(id).or_default();
            names.insert(blob.path.clone());
            if blob.shared {
                names.insert(blob.content_path.clone());
                linked_payloads.insert(blob.content_path.clone());
                self.payload_ids.insert(blob.content_path.clone(), id);
            } else if blob.content_path != blob.path {
                // A blob that links to another file in the cache depends on that file.
                for hop in link_hops(&blob.path) {
                    self.pins.push((Pinner::Blob(ri, etag.clone()), hop));
                }
            }
            if let Some(dir) = &blobs_canon {
                self.blob_canon.insert((ri, etag.clone()), dir.join(&etag));
            }
        }
        for lock in locks {
            self.note_lock(lock);
        }
    }

    /// Regular files inside a repo's snapshots (the no-symlink layout) and the links among them
    /// that pass through other files.
    fn index_copies(&mut self, ri: usize) {
        let mut found = Vec::new();
        let repo = &self.scan.repos[ri];
        for (vi, rev) in repo.revisions.iter().enumerate() {
            // A snapshot folder that is itself a link goes as a link: nothing seen through it
            // is deleted.
            if !fs::symlink_metadata(&rev.dir).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            for f in &rev.files {
                if let FileSource::Copy(_) = &f.source {
                    found.push((vi, rev.dir.join(&f.path)));
                }
            }
        }
        for (vi, entry) in found {
            let Ok(meta) = fs::symlink_metadata(&entry) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                for hop in link_hops(&entry) {
                    self.pins.push((Pinner::Revision(ri, vi), hop));
                }
            } else {
                let id = self.identify(file_id(&meta));
                self.sizes.insert(id, meta.len());
                self.names.entry(id).or_default().insert(entry.clone());
                self.copies.entry((ri, vi)).or_default().push(entry);
                self.copy_ids.entry((ri, vi)).or_default().push(id);
            }
        }
    }

    /// The lock files under `.locks/<repo folder>/`, which go when the repo goes whole.
    fn index_repo_locks(&mut self, ri: usize) {
        let locks_dir = self.root.join(".locks").join(&self.scan.repos[ri].folder);
        let mut locks = Vec::new();
        if let Ok(entries) = fs::read_dir(&locks_dir) {
            for e in entries.filter_map(Result::ok) {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let path = e.path();
                    self.note_lock(path.clone());
                    locks.push(path);
                }
            }
        }
        self.repo_locks.insert(ri, locks);
    }

    /// What an interrupted run left in the repo's trash.
    fn index_trash(&mut self, ri: usize) {
        let Ok(entries) = fs::read_dir(trash_dir(&self.scan.repos[ri].dir)) else {
            return;
        };
        let mut left: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        left.sort();
        if !left.is_empty() {
            self.trash.insert(ri, left);
        }
    }

    /// Payloads in the marked store that no scanned blob links to and whose manifest names no
    /// live link.
    fn find_store_orphans(&mut self, linked: &HashSet<PathBuf>) {
        for payload in store::payloads(&self.root) {
            if linked.contains(&payload.path) {
                continue;
            }
            if !store::live_refs(&self.root, &payload.path).is_some_and(|live| live.is_empty()) {
                continue;
            }
            let id = self.identify(payload.file_id);
            self.sizes.insert(id, payload.size);
            self.names
                .entry(id)
                .or_default()
                .insert(payload.path.clone());
            self.payload_ids.insert(payload.path.clone(), id);
            self.note_lock(store::lock_path(&payload.path));
            self.store_orphans.push((payload.path, payload.size));
        }
    }

    pub fn payload_names(&self, payload: &Path) -> Option<&BTreeSet<PathBuf>> {
        self.payload_ids
            .get(payload)
            .and_then(|id| self.names.get(id))
    }

    pub fn held(&self, lock: &Path) -> Option<&String> {
        self.held.get(lock)
    }

    /// Bytes of the files whose every name is in `deleted`: all of them, and those that are blobs.
    pub fn freed(&self, deleted: &HashSet<PathBuf>) -> (u64, u64) {
        let mut all = 0;
        let mut blobs = 0;
        for (id, names) in &self.names {
            if names.iter().all(|n| deleted.contains(n)) {
                let size = self.sizes.get(id).copied().unwrap_or(0);
                // Gone from this cache, still on disk through a name elsewhere.
                if !self.linked_elsewhere.contains(id) {
                    all += size;
                }
                if self.blob_ids.contains(id) {
                    blobs += size;
                }
            }
        }
        (all, blobs)
    }
}
