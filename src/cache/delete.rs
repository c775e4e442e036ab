//! Deleting from the hub cache, for `prune` and `rm`: revisions with the blobs only they used,
//! orphaned blobs, shared-store payloads nothing links any more, and abandoned partial downloads.
//!
//! A [`Planner`] computes the whole deletion from one scan, so `--dry-run` shows what a real run
//! does. Execution removes snapshots and refs before blobs (a ref never names a missing snapshot,
//! a link never dangles), takes huggingface_hub's lock before each blob or partial and keeps it
//! when the lock is held, and refuses any path that is not inside the cache dir.
//!
//! Commands take [`RepoLocks`] before they scan: a repo a pull is writing into is left alone, and
//! no pull can start writing into the others until the deletion is done.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::scan::{file_id, Blob, CacheScan, FileSource, Partial, Repo};
use super::{lock_path, parse_repo_folder, ref_path, repo_lock_path, snapshot_path, RepoType};

/// A partial download is abandoned when nobody holds its lock and it has not changed for this
/// long. huggingface_hub holds the blob's lock for a whole download and `pull` does too; the
/// grace period also covers writers that take no lock and clock skew on network filesystems.
pub const PARTIAL_GRACE: Duration = Duration::from_secs(60 * 60);

/// An orphaned blob (no snapshot links it) is collected only once it has not changed for this
/// long, as git gc spares recent unreachable objects: a blob a writer has just moved into place
/// looks orphaned until that writer links it from a snapshot (huggingface_hub does both under the
/// blob's lock, pulls under their repo lock, but not every writer takes one).
pub const ORPHAN_GRACE: Duration = PARTIAL_GRACE;

const BUSY: &str = "a pull is writing into this repo: left alone until it finishes";

/// The cache-wide shared store huggingface_hub ≥ 1.x keeps at `<cache>/blobs/`, recognised by
/// this marker file and its content. Without it, nothing in the store is touched.
const STORE_DIR: &str = "blobs";
const STORE_MARKER: &str = ".huggingface-shared-blobs";
const STORE_MARKER_CONTENT: &str = "1\n";
/// Beside each payload: `<hash>.refs` lists the repo blob links to it, `<hash>.lock` guards it.
const STORE_REFS_SUFFIX: &str = ".refs";
const STORE_LOCK_SUFFIX: &str = ".lock";

const LOCKED: &str = "its lock is held: a download is in progress";

type FileId = (u64, u64);

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

/// Everything one scan needs for planning, read once: file identities, lock states, links that
/// pass through blobs, and the shared store.
struct Index<'a> {
    scan: &'a CacheScan,
    /// The cache dir, canonical: every path deleted must be inside it.
    root: PathBuf,
    now: SystemTime,
    sizes: HashMap<FileId, u64>,
    /// Every known name of each distinct file: repo blobs, snapshot copies, store payloads. Its
    /// bytes are freed only when all of them are deleted.
    names: HashMap<FileId, BTreeSet<PathBuf>>,
    /// Store payload → its file id.
    payload_ids: HashMap<PathBuf, FileId>,
    /// Files some repo's `blobs/<etag>` is (or links to): what [`CacheScan::blob_bytes`] counts.
    blob_ids: HashSet<FileId>,
    /// (repo, etag) → the blob path with its folder resolved, as links are compared.
    blob_canon: HashMap<(usize, String), PathBuf>,
    /// (repo, revision index) → regular files inside that snapshot (the no-symlink layout).
    copies: HashMap<(usize, usize), Vec<PathBuf>>,
    /// (repo, revision index) → file ids of those copies: a blob hard-linked from a snapshot
    /// (where symlinks are unavailable) is in use even though no symlink names it.
    copy_ids: HashMap<(usize, usize), Vec<FileId>>,
    /// (repo, etag) → file id of the blob's content.
    blob_ids_by_etag: HashMap<(usize, String), FileId>,
    /// Paths that unusual links pass through (a snapshot link into another repo's blobs, a blob
    /// linking to another blob), with who links: deleting such a path would break the link.
    pins: Vec<(Pinner, PathBuf)>,
    /// Lock files someone else holds, or that could not be checked (with why).
    held: HashMap<PathBuf, String>,
    store_marked: bool,
    /// Store payloads some scanned blob links to, and whether a `.refs` manifest is beside them.
    store_manifest: HashSet<PathBuf>,
    /// Store payloads no scanned blob links to and whose manifest lists no live link.
    store_orphans: Vec<(PathBuf, u64)>,
    /// Lock files of each repo folder under `.locks/` (for removing a whole repo).
    repo_locks: HashMap<usize, Vec<PathBuf>>,
    /// Repos a pull is writing into ([`RepoLocks::busy`]): nothing in them is touched.
    busy: HashSet<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pinner {
    Revision(usize, usize),
    Blob(usize, String),
}

/// The deletion for one repo.
#[derive(Debug, Default, Clone)]
struct RepoPlan {
    revisions: Vec<String>,
    /// (name, commit) of refs removed.
    refs: Vec<(String, String)>,
    /// (etag, was an orphan before this run)
    blobs: Vec<(String, bool)>,
    partials: Vec<Partial>,
    /// Remove the whole folder once its contents are gone.
    whole: bool,
}

/// The complete deletion computed from a selection.
#[derive(Debug, Default, Clone)]
struct Plan {
    repos: BTreeMap<usize, RepoPlan>,
    /// Store payloads to collect: (path, size).
    store: Vec<(PathBuf, u64)>,
    kept: Vec<KeptEntry>,
    bytes_freed: u64,
    /// The part of `bytes_freed` that [`CacheScan::blob_bytes`] counts.
    blob_bytes_freed: u64,
}

/// What was (or, for a dry run, would be) deleted. Commands flatten it into their summary.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Repo folders removed whole.
    pub repos: Vec<RepoEntry>,
    pub revisions: Vec<RevisionEntry>,
    pub refs: Vec<RefEntry>,
    pub blobs: Vec<BlobEntry>,
    /// Payloads of the cache-wide shared store.
    pub shared_blobs: Vec<FileEntry>,
    pub partials: Vec<FileEntry>,
    /// Things that would have been deleted but were left alone, and why.
    pub kept: Vec<KeptEntry>,
    pub failures: Vec<FailureEntry>,
    /// Distinct bytes released: a file linked from several places counts once, and only when
    /// its last name goes.
    pub bytes_freed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoEntry {
    pub repo_type: RepoType,
    pub repo: String,
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevisionEntry {
    pub repo_type: RepoType,
    pub repo: String,
    pub commit: String,
    /// Refs that pointed at it.
    pub refs: Vec<String>,
    /// `budget`, `detached`, `rm`, …
    pub reason: String,
    /// Bytes it added to the total when it was chosen (revisions chosen earlier may share blobs).
    pub bytes: u64,
    /// Latest access of its blobs, RFC 3339.
    pub last_accessed: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefEntry {
    pub repo_type: RepoType,
    pub repo: String,
    pub name: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobEntry {
    pub repo_type: RepoType,
    pub repo: String,
    pub etag: String,
    pub size: u64,
    /// No snapshot linked it before this run.
    pub orphan: bool,
    /// A link into the shared store (its payload is listed in `shared_blobs` if collected).
    pub shared: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptEntry {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureEntry {
    pub item: String,
    pub error: String,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.repos.is_empty()
            && self.revisions.is_empty()
            && self.refs.is_empty()
            && self.blobs.is_empty()
            && self.shared_blobs.is_empty()
            && self.partials.is_empty()
    }

    /// Blobs removed that were orphans before the run.
    pub fn orphans(&self) -> usize {
        self.blobs.iter().filter(|b| b.orphan).count()
    }
}

/// Plans deletions from one scan, one choice at a time, and carries them out.
pub struct Planner<'a> {
    index: Index<'a>,
    selection: Selection,
    plan: Plan,
}

impl<'a> Planner<'a> {
    /// Reads what planning needs (file identities, lock states, the shared store). Blocking.
    /// `orphans` and `stale_partials` add every repo's orphaned blobs and abandoned partial
    /// downloads to the plan.
    #[cfg(test)]
    pub fn new(
        scan: &'a CacheScan,
        now: SystemTime,
        orphans: bool,
        stale_partials: bool,
    ) -> Planner<'a> {
        Planner::with_busy(scan, now, orphans, stale_partials, &HashSet::new())
    }

    /// Like [`Planner::new`], leaving alone the repos whose folders are in `busy` (see
    /// [`RepoLocks`]): nothing in them is planned, and each is reported as kept.
    pub fn with_busy(
        scan: &'a CacheScan,
        now: SystemTime,
        orphans: bool,
        stale_partials: bool,
        busy: &HashSet<String>,
    ) -> Planner<'a> {
        let mut index = Index::build(scan, now);
        index.busy = scan
            .repos
            .iter()
            .enumerate()
            .filter(|(_, r)| busy.contains(&r.folder))
            .map(|(ri, _)| ri)
            .collect();
        let selection = Selection {
            orphans,
            stale_partials,
            ..Default::default()
        };
        let plan = index.plan(&selection);
        Planner {
            index,
            selection,
            plan,
        }
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
        let done = Done::planned(&self.index, &self.plan);
        done.into_report(&self.index, &self.selection)
    }

    /// Deletes what the plan says, under locks; keeps going past failures. Blocking.
    pub fn execute(&self) -> Report {
        let done = self.index.execute(&self.plan);
        done.into_report(&self.index, &self.selection)
    }
}

/// `p` with its parent folder resolved through links: the form in which paths are compared.
fn canonical_name(p: &Path) -> Option<PathBuf> {
    let parent = fs::canonicalize(p.parent()?).ok()?;
    Some(parent.join(p.file_name()?))
}

/// Removes `.` and `..` without touching the filesystem.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Each hop of the link chain starting at `link` (not `link` itself), as canonical names.
fn link_hops(link: &Path) -> Vec<PathBuf> {
    let mut hops = Vec::new();
    let mut cur = link.to_path_buf();
    for _ in 0..16 {
        let Ok(target) = fs::read_link(&cur) else {
            break;
        };
        let Some(parent) = cur.parent() else { break };
        let next = normalize(&parent.join(target));
        match canonical_name(&next) {
            Some(c) => hops.push(c),
            None => break,
        }
        cur = next;
    }
    hops
}

/// Is `path` strictly inside `root` (canonical), with its parent resolved through links? The
/// last check before anything is unlinked.
fn inside_root(root: &Path, path: &Path) -> bool {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(_)) => fs::canonicalize(parent).is_ok_and(|p| p.starts_with(root)),
        _ => false,
    }
}

fn outside_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is not inside the cache dir; refusing to delete it",
        path.display()
    ))
}

fn remove_file_in(root: &Path, path: &Path) -> io::Result<()> {
    if !inside_root(root, path) {
        return Err(outside_error(path));
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes a folder and everything in it, never following links out of it.
fn remove_dir_in(root: &Path, path: &Path) -> io::Result<()> {
    if !inside_root(root, path) {
        return Err(outside_error(path));
    }
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes empty folders from `dir` up to, not including, `stop`.
fn remove_empty_parents(dir: &Path, stop: &Path) {
    let mut cur = dir.to_path_buf();
    while cur.starts_with(stop) && cur != stop {
        if fs::remove_dir(&cur).is_err() {
            break;
        }
        if !cur.pop() {
            break;
        }
    }
}

/// Whether someone holds the lock at `path`, checked without creating anything.
fn probe_lock(path: &Path) -> Option<String> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => return Some(format!("cannot check its lock {}: {e}", path.display())),
    };
    match file.try_lock() {
        Ok(()) => None,
        Err(fs::TryLockError::WouldBlock) => Some(LOCKED.into()),
        Err(fs::TryLockError::Error(e)) => {
            Some(format!("cannot check its lock {}: {e}", path.display()))
        }
    }
}

/// A lock taken without waiting. A lock file, or `.locks/` folders, that taking it created are
/// removed again on release (the file while still held), so a deletion leaves no new files.
struct Held {
    _file: File,
    path: PathBuf,
    created_file: bool,
    /// Folders created for the lock file, innermost first.
    created_dirs: Vec<PathBuf>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.created_file {
            let _ = fs::remove_file(&self.path);
        }
        for dir in &self.created_dirs {
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Takes the lock at `path` without waiting, creating the lock file as huggingface_hub does.
/// `Ok(None)` when someone else holds it.
fn try_lock(path: &Path) -> io::Result<Option<Held>> {
    let mut created_dirs = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() || fs::symlink_metadata(d).is_ok() {
            break;
        }
        created_dirs.push(d.to_path_buf());
        dir = d.parent();
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let created_file = fs::symlink_metadata(path).is_err();
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
    {
        Ok(f) => f,
        // Another user's lock file: a read-only descriptor locks just as well.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path)?,
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => Ok(Some(Held {
            _file: file,
            path: path.to_path_buf(),
            created_file,
            created_dirs,
        })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

fn store_refs_path(payload: &Path) -> PathBuf {
    let mut name = payload.file_name().unwrap_or_default().to_os_string();
    name.push(STORE_REFS_SUFFIX);
    payload.with_file_name(name)
}

fn store_lock_path(payload: &Path) -> PathBuf {
    let mut name = payload.file_name().unwrap_or_default().to_os_string();
    name.push(STORE_LOCK_SUFFIX);
    payload.with_file_name(name)
}

fn is_store_hash(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The repo blob links a store payload's `.refs` manifest lists that still point at it, as
/// huggingface_hub validates them. `None` when the manifest is missing or unreadable: then the
/// payload must be left alone.
fn live_store_refs(root: &Path, payload: &Path) -> Option<Vec<PathBuf>> {
    let manifest = store_refs_path(payload);
    let meta = fs::symlink_metadata(&manifest).ok()?;
    if !meta.is_file() {
        return None;
    }
    let text = fs::read_to_string(&manifest).ok()?;
    let mut live = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('/').collect();
        if parts.len() != 3
            || parse_repo_folder(parts[0]).is_none()
            || parts[1] != "blobs"
            || parts[2].is_empty()
            || parts[2] == ".."
            || parts[2] == "."
        {
            continue;
        }
        let candidate = root.join(line);
        let target = match fs::read_link(&candidate) {
            Ok(t) => t,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
                ) =>
            {
                continue
            }
            Err(_) => return None,
        };
        let resolved = normalize(&candidate.parent()?.join(target));
        if resolved == payload || canonical_name(&resolved).as_deref() == Some(payload) {
            live.push(candidate);
        }
    }
    Some(live)
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

fn is_stale(partial: &Partial, now: SystemTime) -> bool {
    partial
        .modified
        .and_then(|m| now.duration_since(m).ok())
        .is_some_and(|age| age >= PARTIAL_GRACE)
}

fn repo_path(repo: &Repo, rel: &str) -> String {
    repo.dir.join(rel).display().to_string()
}

impl<'a> Index<'a> {
    fn build(scan: &'a CacheScan, now: SystemTime) -> Index<'a> {
        let root = fs::canonicalize(&scan.root).unwrap_or_else(|_| scan.root.clone());
        let mut index = Index {
            scan,
            root,
            now,
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
            store_marked: false,
            store_manifest: HashSet::new(),
            store_orphans: Vec::new(),
            repo_locks: HashMap::new(),
            busy: HashSet::new(),
        };
        let store_dir = index.root.join(STORE_DIR);
        index.store_marked = fs::symlink_metadata(store_dir.join(STORE_MARKER))
            .is_ok_and(|m| m.is_file())
            && fs::read_to_string(store_dir.join(STORE_MARKER))
                .is_ok_and(|s| s == STORE_MARKER_CONTENT);
        // Files without an identity (no inode numbers on this platform) each get their own.
        let mut synthetic = 0u64;
        let mut identify = |id: FileId| {
            if id == (0, 0) {
                synthetic += 1;
                (u64::MAX, synthetic)
            } else {
                id
            }
        };
        let mut linked_payloads = HashSet::new();
        for (ri, repo) in scan.repos.iter().enumerate() {
            let blobs_canon = fs::canonicalize(repo.dir.join("blobs")).ok();
            for (etag, blob) in &repo.blobs {
                let id = identify(blob.file_id);
                index.sizes.insert(id, blob.size);
                index.blob_ids.insert(id);
                index.blob_ids_by_etag.insert((ri, etag.clone()), id);
                let names = index.names.entry(id).or_default();
                names.insert(blob.path.clone());
                if blob.shared {
                    names.insert(blob.content_path.clone());
                    linked_payloads.insert(blob.content_path.clone());
                    index.payload_ids.insert(blob.content_path.clone(), id);
                } else if blob.content_path != blob.path {
                    // A blob that links to another file in the cache depends on that file.
                    for hop in link_hops(&blob.path) {
                        index.pins.push((Pinner::Blob(ri, etag.clone()), hop));
                    }
                }
                if let Some(dir) = &blobs_canon {
                    index.blob_canon.insert((ri, etag.clone()), dir.join(etag));
                }
                let lock = lock_path(&index.root, &repo.folder, etag);
                if let Some(why) = probe_lock(&lock) {
                    index.held.insert(lock, why);
                }
            }
            for p in &repo.partials {
                if let Some(etag) = &p.etag {
                    let lock = lock_path(&index.root, &repo.folder, etag);
                    if let Some(why) = probe_lock(&lock) {
                        index.held.insert(lock, why);
                    }
                }
            }
            for (vi, rev) in repo.revisions.iter().enumerate() {
                // A snapshot folder that is itself a link goes as a link: nothing seen through
                // it is deleted.
                let real_dir = fs::symlink_metadata(&rev.dir).is_ok_and(|m| m.is_dir());
                for f in rev.files.iter().filter(|_| real_dir) {
                    let FileSource::Copy(_) = &f.source else {
                        continue;
                    };
                    let entry = rev.dir.join(&f.path);
                    let Ok(meta) = fs::symlink_metadata(&entry) else {
                        continue;
                    };
                    if meta.file_type().is_symlink() {
                        for hop in link_hops(&entry) {
                            index.pins.push((Pinner::Revision(ri, vi), hop));
                        }
                    } else {
                        let id = identify(file_id(&meta));
                        index.sizes.insert(id, meta.len());
                        index.names.entry(id).or_default().insert(entry.clone());
                        index.copies.entry((ri, vi)).or_default().push(entry);
                        index.copy_ids.entry((ri, vi)).or_default().push(id);
                    }
                }
            }
            let locks_dir = index.root.join(".locks").join(&repo.folder);
            let mut locks = Vec::new();
            if let Ok(entries) = fs::read_dir(&locks_dir) {
                for e in entries.filter_map(Result::ok) {
                    if e.file_type().is_ok_and(|t| t.is_file()) {
                        let path = e.path();
                        if let Some(why) = probe_lock(&path) {
                            index.held.insert(path.clone(), why);
                        }
                        locks.push(path);
                    }
                }
            }
            index.repo_locks.insert(ri, locks);
        }
        for payload in &linked_payloads {
            if fs::symlink_metadata(store_refs_path(payload)).is_ok_and(|m| m.is_file()) {
                index.store_manifest.insert(payload.clone());
            }
            let lock = store_lock_path(payload);
            if let Some(why) = probe_lock(&lock) {
                index.held.insert(lock, why);
            }
        }
        if index.store_marked {
            index.find_store_orphans(&store_dir, &linked_payloads, &mut identify);
        }
        index
    }

    /// Payloads in the marked store that no scanned blob links to and whose manifest names no
    /// live link.
    fn find_store_orphans(
        &mut self,
        store_dir: &Path,
        linked: &HashSet<PathBuf>,
        identify: &mut impl FnMut(FileId) -> FileId,
    ) {
        let Ok(prefixes) = fs::read_dir(store_dir) else {
            return;
        };
        for prefix in prefixes.filter_map(Result::ok) {
            let Ok(pname) = prefix.file_name().into_string() else {
                continue;
            };
            if pname.len() != 2 || !prefix.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Ok(entries) = fs::read_dir(prefix.path()) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if !is_store_hash(&name) || !name.starts_with(&pname) {
                    continue;
                }
                let path = entry.path();
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                if !meta.is_file() || linked.contains(&path) {
                    continue;
                }
                if live_store_refs(&self.root, &path).is_some_and(|live| live.is_empty()) {
                    let id = identify(file_id(&meta));
                    self.sizes.insert(id, meta.len());
                    self.names.entry(id).or_default().insert(path.clone());
                    self.payload_ids.insert(path.clone(), id);
                    self.store_orphans.push((path.clone(), meta.len()));
                    let lock = store_lock_path(&path);
                    if let Some(why) = probe_lock(&lock) {
                        self.held.insert(lock, why);
                    }
                }
            }
        }
    }

    fn payload_names(&self, payload: &Path) -> Option<&BTreeSet<PathBuf>> {
        self.payload_ids
            .get(payload)
            .and_then(|id| self.names.get(id))
    }

    fn held(&self, lock: &Path) -> Option<&String> {
        self.held.get(lock)
    }

    /// Computes the full deletion for a selection, from scratch.
    fn plan(&self, sel: &Selection) -> Plan {
        let scan = self.scan;
        let mut plan = Plan::default();
        // Which revisions go, per repo.
        let removed: Vec<BTreeSet<usize>> = scan
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
        let mut deleted: HashSet<PathBuf> = HashSet::new();
        // Blob candidates: (repo, etag) → was an orphan before the run.
        let mut candidates: BTreeMap<(usize, String), bool> = BTreeMap::new();
        let mut whole: BTreeSet<usize> = BTreeSet::new();
        for (ri, repo) in scan.repos.iter().enumerate() {
            if self.busy.contains(&ri) {
                plan.kept.push(KeptEntry {
                    path: repo.dir.display().to_string(),
                    reason: BUSY.into(),
                });
                continue;
            }
            let gone = &removed[ri];
            let is_whole = sel.repos.contains_key(&ri)
                || (!gone.is_empty() && gone.len() == repo.revisions.len());
            if is_whole {
                whole.insert(ri);
            }
            let mut surviving: HashSet<&str> = HashSet::new();
            let mut used_by_gone: HashSet<&str> = HashSet::new();
            let mut surviving_copies: HashSet<FileId> = HashSet::new();
            let mut all_copies: HashSet<FileId> = HashSet::new();
            for (vi, rev) in repo.revisions.iter().enumerate() {
                let ids = self.copy_ids.get(&(ri, vi)).into_iter().flatten();
                all_copies.extend(ids.clone());
                if gone.contains(&vi) {
                    used_by_gone.extend(rev.etags());
                    if let Some(copies) = self.copies.get(&(ri, vi)) {
                        deleted.extend(copies.iter().cloned());
                    }
                } else {
                    surviving.extend(rev.etags());
                    surviving_copies.extend(ids);
                }
            }
            let referenced = repo.referenced();
            for (etag, blob) in &repo.blobs {
                let id = self.blob_ids_by_etag.get(&(ri, etag.clone()));
                let hard_linked = id.is_some_and(|id| all_copies.contains(id));
                let orphan = !referenced.contains(etag.as_str()) && !hard_linked;
                let in_use = surviving.contains(etag.as_str())
                    || id.is_some_and(|id| surviving_copies.contains(id));
                // Not in use, and either a removed revision used it or it is an orphan to clean.
                let wanted = is_whole
                    || (!in_use
                        && (used_by_gone.contains(etag.as_str())
                            || hard_linked
                            || (sel.orphans && orphan && orphan_settled(blob, self.now))));
                if wanted {
                    candidates.insert((ri, etag.clone()), orphan);
                }
            }
        }
        // Links that survive keep what they pass through. Dropping a pinned blob can pin more
        // (a blob that links elsewhere survives), so repeat until nothing changes.
        let mut kept_blobs: BTreeMap<(usize, String), String> = BTreeMap::new();
        for (ri, etag) in candidates.keys() {
            let repo = &scan.repos[*ri];
            let lock = lock_path(&self.root, &repo.folder, etag);
            if let Some(why) = self.held(&lock) {
                kept_blobs.insert((*ri, etag.clone()), why.clone());
            }
        }
        loop {
            let mut active: HashMap<&Path, String> = HashMap::new();
            for (who, path) in &self.pins {
                let alive = match who {
                    Pinner::Revision(ri, vi) => !removed[*ri].contains(vi),
                    Pinner::Blob(ri, etag) => {
                        let key = (*ri, etag.clone());
                        !candidates.contains_key(&key) || kept_blobs.contains_key(&key)
                    }
                };
                if alive {
                    let by = match who {
                        Pinner::Revision(ri, vi) => {
                            let repo = &scan.repos[*ri];
                            format!("{}@{}", repo.qualified_id(), repo.revisions[*vi].commit)
                        }
                        Pinner::Blob(ri, etag) => {
                            repo_path(&scan.repos[*ri], &format!("blobs/{etag}"))
                        }
                    };
                    active.insert(path.as_path(), by);
                }
            }
            let mut changed = false;
            for key in candidates.keys() {
                if kept_blobs.contains_key(key) {
                    continue;
                }
                if let Some(by) = self
                    .blob_canon
                    .get(key)
                    .and_then(|c| active.get(c.as_path()))
                {
                    kept_blobs.insert(key.clone(), format!("{by} links to it"));
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Blobs and partials, per repo.
        let mut repos_with_kept: BTreeSet<usize> = BTreeSet::new();
        for ((ri, etag), orphan) in &candidates {
            let repo = &scan.repos[*ri];
            let blob = &repo.blobs[etag];
            if let Some(why) = kept_blobs.get(&(*ri, etag.clone())) {
                plan.kept.push(KeptEntry {
                    path: blob.path.display().to_string(),
                    reason: why.clone(),
                });
                repos_with_kept.insert(*ri);
                continue;
            }
            deleted.insert(blob.path.clone());
            plan.repos
                .entry(*ri)
                .or_default()
                .blobs
                .push((etag.clone(), *orphan));
        }
        for (ri, repo) in scan.repos.iter().enumerate() {
            let is_whole = whole.contains(&ri);
            if (!is_whole && !sel.stale_partials) || self.busy.contains(&ri) {
                continue;
            }
            for p in &repo.partials {
                let stale = is_stale(p, self.now);
                let lock = p
                    .etag
                    .as_ref()
                    .map(|e| lock_path(&self.root, &repo.folder, e));
                let held = lock.as_deref().and_then(|l| self.held(l));
                // A partial whose name carries no blob name has no lock to check: age decides.
                let keep = match (stale, held) {
                    (_, Some(why)) => Some(why.clone()),
                    (false, None) => Some(format!(
                        "partial download changed within the last {}",
                        humantime::format_duration(PARTIAL_GRACE)
                    )),
                    (true, None) => None,
                };
                match keep {
                    None => plan.repos.entry(ri).or_default().partials.push(p.clone()),
                    Some(reason) => {
                        // Outside a whole-repo removal, fresh partials are ongoing downloads:
                        // nothing worth reporting.
                        if is_whole || (stale && held.is_some()) {
                            plan.kept.push(KeptEntry {
                                path: p.path.display().to_string(),
                                reason,
                            });
                        }
                        if is_whole {
                            repos_with_kept.insert(ri);
                        }
                    }
                }
            }
        }
        // Revisions, refs and whole folders.
        for (ri, repo) in scan.repos.iter().enumerate() {
            let gone = &removed[ri];
            let is_whole = whole.contains(&ri);
            if gone.is_empty() && !is_whole {
                continue;
            }
            let rp = plan.repos.entry(ri).or_default();
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
            if is_whole {
                if repos_with_kept.contains(&ri) {
                    plan.kept.push(KeptEntry {
                        path: repo.dir.display().to_string(),
                        reason: "folder kept (empty snapshots/) for the files kept in it".into(),
                    });
                } else if let Some((lock, why)) = self
                    .repo_locks
                    .get(&ri)
                    .into_iter()
                    .flatten()
                    .find_map(|l| self.held(l).map(|w| (l, w)))
                {
                    plan.kept.push(KeptEntry {
                        path: repo.dir.display().to_string(),
                        reason: format!("folder kept: {} ({})", why, lock.display()),
                    });
                } else {
                    rp.whole = true;
                }
            }
        }
        // The shared store: a payload goes when every repo link to it goes.
        let mut payloads: BTreeSet<&Path> = BTreeSet::new();
        for (ri, rp) in &plan.repos {
            for (etag, _) in &rp.blobs {
                let blob = &scan.repos[*ri].blobs[etag];
                if blob.shared {
                    payloads.insert(blob.content_path.as_path());
                }
            }
        }
        let active_pins: HashSet<&Path> = self
            .pins
            .iter()
            .filter(|(who, _)| match who {
                Pinner::Revision(ri, vi) => !removed[*ri].contains(vi),
                Pinner::Blob(ri, etag) => !deleted.contains(&scan.repos[*ri].blobs[etag].path),
            })
            .map(|(_, p)| p.as_path())
            .collect();
        for payload in payloads {
            let Some(names) = self.payload_names(payload) else {
                continue;
            };
            if !names.iter().all(|n| n == payload || deleted.contains(n)) {
                continue;
            }
            let keep = if !self.store_marked {
                Some("the shared store has no huggingface_hub marker; left in place".to_string())
            } else if !self.store_manifest.contains(payload) {
                Some("no .refs manifest beside it; left in place, as huggingface_hub does".into())
            } else if active_pins.contains(payload) {
                Some("a snapshot links to it directly".into())
            } else {
                self.held(&store_lock_path(payload)).cloned()
            };
            match keep {
                Some(reason) => plan.kept.push(KeptEntry {
                    path: payload.display().to_string(),
                    reason,
                }),
                None => {
                    let size = fs::symlink_metadata(payload).map(|m| m.len()).unwrap_or(0);
                    plan.store.push((payload.to_path_buf(), size));
                    deleted.insert(payload.to_path_buf());
                }
            }
        }
        if sel.orphans {
            for (payload, size) in &self.store_orphans {
                if active_pins.contains(payload.as_path()) {
                    continue;
                }
                match self.held(&store_lock_path(payload)) {
                    Some(why) => plan.kept.push(KeptEntry {
                        path: payload.display().to_string(),
                        reason: why.clone(),
                    }),
                    None => {
                        plan.store.push((payload.clone(), *size));
                        deleted.insert(payload.clone());
                    }
                }
            }
        }
        let partial_bytes: u64 = plan
            .repos
            .values()
            .flat_map(|rp| rp.partials.iter())
            .map(|p| p.size)
            .sum();
        let (all, blobs) = self.freed(&deleted);
        plan.bytes_freed = all + partial_bytes;
        plan.blob_bytes_freed = blobs;
        plan
    }

    /// Bytes of the files whose every name is in `deleted`: all of them, and those that are blobs.
    fn freed(&self, deleted: &HashSet<PathBuf>) -> (u64, u64) {
        let mut all = 0;
        let mut blobs = 0;
        for (id, names) in &self.names {
            if names.iter().all(|n| deleted.contains(n)) {
                let size = self.sizes.get(id).copied().unwrap_or(0);
                all += size;
                if self.blob_ids.contains(id) {
                    blobs += size;
                }
            }
        }
        (all, blobs)
    }

    /// Carries out a plan. Order per repo: snapshots, refs, blobs, partials, then the folder;
    /// store payloads last, once every link to them is gone.
    fn execute(&self, plan: &Plan) -> Done {
        let scan = self.scan;
        let root = &self.root;
        let mut done = Done {
            kept: plan.kept.clone(),
            ..Default::default()
        };
        for (ri, rp) in &plan.repos {
            let repo = &scan.repos[*ri];
            let mut failed_revisions: HashSet<&str> = HashSet::new();
            let mut repo_clean = true;
            for commit in &rp.revisions {
                let dir = snapshot_path(&repo.dir, commit);
                match remove_dir_in(root, &dir) {
                    Ok(()) => done.revisions.push((*ri, commit.clone())),
                    Err(e) => {
                        done.fail(&dir, e);
                        failed_revisions.insert(commit);
                        repo_clean = false;
                        continue;
                    }
                }
                if let Some(rev) = repo.revisions.iter().position(|r| &r.commit == commit) {
                    if let Some(copies) = self.copies.get(&(*ri, rev)) {
                        done.deleted.extend(copies.iter().cloned());
                    }
                }
                let no_exist = repo.dir.join(".no_exist").join(commit);
                if fs::symlink_metadata(&no_exist).is_ok() {
                    if let Err(e) = remove_dir_in(root, &no_exist) {
                        done.fail(&no_exist, e);
                    }
                }
            }
            for (name, commit) in &rp.refs {
                if failed_revisions.contains(commit.as_str()) {
                    repo_clean = false;
                    continue;
                }
                let path = ref_path(&repo.dir, name);
                match remove_file_in(root, &path) {
                    Ok(()) => {
                        done.refs.push((*ri, name.clone(), commit.clone()));
                        if let Some(parent) = path.parent() {
                            remove_empty_parents(parent, &repo.dir.join("refs"));
                        }
                    }
                    Err(e) => {
                        done.fail(&path, e);
                        repo_clean = false;
                    }
                }
            }
            // Blobs a revision that could not be removed still links must stay.
            let still_linked: HashSet<&str> = repo
                .revisions
                .iter()
                .filter(|r| failed_revisions.contains(r.commit.as_str()))
                .flat_map(|r| r.etags())
                .collect();
            for (etag, orphan) in &rp.blobs {
                let blob = &repo.blobs[etag];
                if still_linked.contains(etag.as_str()) {
                    repo_clean = false;
                    continue;
                }
                let lock = lock_path(root, &repo.folder, etag);
                match try_lock(&lock) {
                    // Looked at again under the lock: a writer may have put a new file there
                    // since the scan, to link it next.
                    Ok(Some(_guard))
                        if *orphan
                            && fs::metadata(&blob.path)
                                .and_then(|m| m.modified())
                                .is_ok_and(|m| Some(m) != blob.modified) =>
                    {
                        done.keep(
                            &blob.path,
                            "changed since the scan: it may be about to be linked",
                        );
                        repo_clean = false;
                    }
                    Ok(Some(_guard)) => match remove_file_in(root, &blob.path) {
                        Ok(()) => {
                            done.deleted.insert(blob.path.clone());
                            done.blobs.push((*ri, etag.clone(), *orphan));
                        }
                        Err(e) => {
                            done.fail(&blob.path, e);
                            repo_clean = false;
                        }
                    },
                    Ok(None) => {
                        done.keep(&blob.path, LOCKED);
                        repo_clean = false;
                    }
                    Err(e) => {
                        done.fail(&lock, e);
                        repo_clean = false;
                    }
                }
            }
            for p in &rp.partials {
                let _guard = match &p.etag {
                    Some(etag) => match try_lock(&lock_path(root, &repo.folder, etag)) {
                        Ok(Some(g)) => Some(g),
                        Ok(None) => {
                            done.keep(&p.path, LOCKED);
                            repo_clean = false;
                            continue;
                        }
                        Err(e) => {
                            done.fail(&lock_path(root, &repo.folder, etag), e);
                            repo_clean = false;
                            continue;
                        }
                    },
                    None => None,
                };
                // Looked at again under the lock: it may have changed since the scan.
                let still_stale = fs::symlink_metadata(&p.path)
                    .ok()
                    .map(|m| Partial {
                        modified: m.modified().ok(),
                        ..p.clone()
                    })
                    .is_none_or(|fresh| is_stale(&fresh, self.now));
                if !still_stale {
                    done.keep(&p.path, "partial download changed since the scan");
                    repo_clean = false;
                    continue;
                }
                match remove_file_in(root, &p.path) {
                    Ok(()) => done.partials.push((p.path.clone(), p.size)),
                    Err(e) => {
                        done.fail(&p.path, e);
                        repo_clean = false;
                    }
                }
            }
            if rp.whole && repo_clean {
                self.remove_repo_folder(*ri, &mut done);
            }
        }
        for (payload, size) in &plan.store {
            self.collect_payload(payload, *size, &mut done);
        }
        done
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
                match try_lock(&path) {
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
        // Held by the command ([`RepoLocks`]); a pull waiting on it sees the file go and locks
        // the next one.
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
        let _guard = match try_lock(&store_lock_path(payload)) {
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
        match live_store_refs(&self.root, payload) {
            None => done.keep(payload, "its .refs manifest is missing or unreadable"),
            Some(live) if !live.is_empty() => {
                let names: Vec<String> = live.iter().map(|p| p.display().to_string()).collect();
                done.keep(payload, &format!("still linked from {}", names.join(", ")));
            }
            Some(_) => match remove_file_in(&self.root, payload) {
                Ok(()) => {
                    let _ = remove_file_in(&self.root, &store_refs_path(payload));
                    done.deleted.insert(payload.to_path_buf());
                    done.store.push((payload.to_path_buf(), size));
                }
                Err(e) => done.fail(payload, e),
            },
        }
    }
}

/// Exclusive locks on every repo of a cache ([`repo_lock_path`]), taken before the scan that
/// plans a deletion and held until it is carried out. A pull holds its repo's lock shared while
/// it writes there, so a repo locked here is one no pull changes meanwhile: the plan stays true.
/// Repos whose lock is held are [`RepoLocks::busy`] and must be left alone.
///
/// Lock files (and `.locks/`) that taking the locks created are removed again on release.
pub struct RepoLocks {
    held: Vec<Held>,
    busy: HashSet<String>,
}

impl RepoLocks {
    /// Locks each repo folder in `cache_dir` without waiting. Blocking.
    pub fn take(cache_dir: &Path) -> RepoLocks {
        let mut locks = RepoLocks {
            held: Vec::new(),
            busy: HashSet::new(),
        };
        let Ok(entries) = fs::read_dir(cache_dir) else {
            return locks;
        };
        let mut folders: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| parse_repo_folder(name).is_some())
            .collect();
        folders.sort();
        for folder in folders {
            match try_lock(&repo_lock_path(cache_dir, &folder)) {
                Ok(Some(held)) => locks.held.push(held),
                Ok(None) => {
                    locks.busy.insert(folder);
                }
                // No lock file and no right to create one (a read-only cache): no pull can be
                // writing there either.
                Err(_) => {}
            }
        }
        locks
    }

    /// Folders of the repos a pull is writing into.
    pub fn busy(&self) -> &HashSet<String> {
        &self.busy
    }
}

impl Drop for RepoLocks {
    fn drop(&mut self) {
        // Newest first: the first lock may have created `.locks/`, which can go only once the
        // others' files are gone.
        while let Some(held) = self.held.pop() {
            drop(held);
        }
    }
}

/// What was actually deleted (or, for a preview, what the plan deletes).
#[derive(Debug, Default)]
struct Done {
    repos: Vec<usize>,
    revisions: Vec<(usize, String)>,
    refs: Vec<(usize, String, String)>,
    blobs: Vec<(usize, String, bool)>,
    store: Vec<(PathBuf, u64)>,
    partials: Vec<(PathBuf, u64)>,
    kept: Vec<KeptEntry>,
    failures: Vec<FailureEntry>,
    /// Names deleted, for counting freed bytes.
    deleted: HashSet<PathBuf>,
}

impl Done {
    fn planned(index: &Index<'_>, plan: &Plan) -> Done {
        let mut done = Done {
            kept: plan.kept.clone(),
            store: plan.store.clone(),
            ..Default::default()
        };
        for (ri, rp) in &plan.repos {
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
            if rp.whole {
                done.repos.push(*ri);
            }
        }
        done.deleted
            .extend(plan.store.iter().map(|(p, _)| p.clone()));
        done
    }

    fn fail(&mut self, path: &Path, err: io::Error) {
        self.failures.push(FailureEntry {
            item: path.display().to_string(),
            error: err.to_string(),
        });
    }

    fn keep(&mut self, path: &Path, reason: &str) {
        self.kept.push(KeptEntry {
            path: path.display().to_string(),
            reason: reason.to_string(),
        });
    }

    fn into_report(mut self, index: &Index<'_>, sel: &Selection) -> Report {
        let repos = &index.scan.repos;
        let seq = |ri: usize, commit: &str| {
            sel.revisions
                .get(&(ri, commit.to_string()))
                .or_else(|| sel.repos.get(&ri))
                .map_or(usize::MAX, |c| c.seq)
        };
        self.revisions
            .sort_by_key(|(ri, commit)| (seq(*ri, commit), *ri, commit.clone()));
        let partial_bytes: u64 = self.partials.iter().map(|(_, s)| s).sum();
        let bytes_freed = index.freed(&self.deleted).0 + partial_bytes;
        let mut report = Report {
            bytes_freed,
            kept: self.kept,
            failures: self.failures,
            ..Default::default()
        };
        for ri in self.repos {
            let repo = &repos[ri];
            report.repos.push(RepoEntry {
                repo_type: repo.repo_type,
                repo: repo.repo_id.clone(),
                path: repo.dir.display().to_string(),
            });
        }
        for (ri, commit) in self.revisions {
            let repo = &repos[ri];
            // Revisions chosen one by one carry their own bytes; those that go only because
            // their whole repo does carry none (the repo's extra bytes are its orphans).
            let (reason, bytes) = match sel.revisions.get(&(ri, commit.clone())) {
                Some(c) => (c.reason.clone(), c.bytes),
                None => (
                    sel.repos
                        .get(&ri)
                        .map_or_else(|| "repo removed".to_string(), |c| c.reason.clone()),
                    0,
                ),
            };
            let last_accessed = repo
                .revision(&commit)
                .and_then(|r| r.last_accessed(repo))
                .map(|t| humantime::format_rfc3339_seconds(t).to_string());
            report.revisions.push(RevisionEntry {
                repo_type: repo.repo_type,
                repo: repo.repo_id.clone(),
                refs: repo
                    .refs_to(&commit)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                commit,
                reason,
                bytes,
                last_accessed,
            });
        }
        for (ri, name, commit) in self.refs {
            let repo = &repos[ri];
            report.refs.push(RefEntry {
                repo_type: repo.repo_type,
                repo: repo.repo_id.clone(),
                name,
                commit,
            });
        }
        for (ri, etag, orphan) in self.blobs {
            let repo = &repos[ri];
            let blob = &repo.blobs[&etag];
            report.blobs.push(BlobEntry {
                repo_type: repo.repo_type,
                repo: repo.repo_id.clone(),
                size: blob.size,
                shared: blob.shared,
                etag,
                orphan,
            });
        }
        report.shared_blobs = self
            .store
            .into_iter()
            .map(|(p, size)| FileEntry {
                path: p.display().to_string(),
                size,
            })
            .collect();
        report.partials = self
            .partials
            .into_iter()
            .map(|(p, size)| FileEntry {
                path: p.display().to_string(),
                size,
            })
            .collect();
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::scan::scan;
    use std::os::unix::fs::symlink;

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
        let mut p = Planner::new(&scan, SystemTime::now(), false, false);
        assert_eq!(p.preview().bytes_freed, 0);
        assert_eq!(p.add_revision(0, C1, "test"), 100);
        let report = p.execute();
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
        let mut p = Planner::new(&scan, SystemTime::now(), false, false);
        p.add_revision(0, C1, "test");
        p.add_revision(0, C2, "test");
        assert_eq!(p.blob_bytes_freed(), 424);
        let preview = p.preview();
        assert_eq!(preview.repos.len(), 1);
        assert_eq!(preview.refs.len(), 1);
        assert!(repo.exists(), "a preview deletes nothing");
        let report = p.execute();
        assert_eq!(report.bytes_freed, 424);
        assert!(!repo.exists());
    }

    #[test]
    fn held_locks_keep_blobs_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let repo = fixture(dir.path());
        let partial = repo.join("blobs").join(format!("{}.incomplete", etag(5)));
        fs::write(&partial, b"part").unwrap();
        let old = SystemTime::now() - Duration::from_secs(2 * 3600);
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
        let p = Planner::new(&scan, SystemTime::now(), true, true);
        let report = p.execute();
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
                .set_modified(SystemTime::now() - PARTIAL_GRACE - Duration::from_secs(60))
                .unwrap();
        }
        let scan = scan(dir.path());
        let report = Planner::new(&scan, SystemTime::now(), true, true).execute();
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
        let p = Planner::new(&scan, SystemTime::now(), true, false);
        assert_eq!(p.preview().orphans(), 1, "only blob 4");
        let report = p.execute();
        assert!(repo.join("blobs").join(etag(3)).exists());

        // Once its revision goes, the blob goes with it, and its bytes are freed once.
        let scan = crate::cache::scan::scan(dir.path());
        let mut p = Planner::new(&scan, SystemTime::now(), false, false);
        p.add_revision(0, C1, "test");
        assert_eq!(p.add_revision(0, C2, "test"), 20 + 300);
        assert!(report.failures.is_empty());
        p.execute();
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
        let p = Planner::new(&scan, SystemTime::now(), true, false);
        let preview = p.preview();
        assert_eq!(preview.orphans(), 1, "only the old orphan: {preview:?}");
        assert!(
            preview.kept.is_empty(),
            "nothing worth reporting: {preview:?}"
        );
        p.execute();
        assert!(fresh.exists());
        assert!(!repo.join("blobs").join(etag(4)).exists());

        // Rewritten after the scan that found it old: kept, whatever the plan said.
        age(&fresh);
        let scan = crate::cache::scan::scan(dir.path());
        let p = Planner::new(&scan, SystemTime::now(), true, false);
        assert_eq!(p.preview().orphans(), 1);
        fs::write(&fresh, b"new").unwrap();
        let report = p.execute();
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

        let locks = RepoLocks::take(dir.path());
        assert!(locks.busy().contains("models--org--m"));
        let scan = scan(dir.path());
        let mut p = Planner::with_busy(&scan, SystemTime::now(), true, true, locks.busy());
        assert_eq!(p.add_revision(0, C1, "test"), 0);
        let report = p.execute();
        assert!(report.is_empty(), "{report:?}");
        assert_eq!(report.kept.len(), 1, "{report:?}");
        assert!(repo.join("snapshots").join(C1).exists());
        assert!(repo.join("blobs").join(etag(4)).exists());
        drop(locks);

        // Once the pull is done, the same plan goes through, and only its lock file is left.
        drop(pull);
        let locks = RepoLocks::take(dir.path());
        assert!(locks.busy().is_empty());
        let scan = crate::cache::scan::scan(dir.path());
        let mut p = Planner::with_busy(&scan, SystemTime::now(), true, true, locks.busy());
        assert_eq!(p.add_revision(0, C1, "test"), 100);
        p.execute();
        assert!(!repo.join("snapshots").join(C1).exists());
        assert!(!repo.join("blobs").join(etag(4)).exists());
        drop(locks);
        assert!(lock.exists(), "a lock file it did not create stays");
    }

    #[test]
    fn repo_locks_leave_no_files_behind() {
        let dir = tempfile::tempdir().unwrap();
        fixture(dir.path());
        let other = dir.path().join("datasets--org--d");
        fs::create_dir_all(other.join("snapshots")).unwrap();
        let locks = RepoLocks::take(dir.path());
        assert!(repo_lock_path(dir.path(), "models--org--m").exists());
        assert!(repo_lock_path(dir.path(), "datasets--org--d").exists());
        // A second taker sees every repo busy.
        assert_eq!(RepoLocks::take(dir.path()).busy().len(), 2);
        drop(locks);
        assert!(!dir.path().join(".locks").exists());
    }

    #[test]
    fn paths_outside_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::write(outside.path().join("f"), b"x").unwrap();
        symlink(outside.path(), dir.path().join("link")).unwrap();
        assert!(!inside_root(&root, &dir.path().join("link/f")));
        assert!(remove_file_in(&root, &dir.path().join("link/f")).is_err());
        assert!(outside.path().join("f").exists());
        assert!(!inside_root(&root, &root));
        assert!(inside_root(&root, &dir.path().join("link")));
    }

    #[test]
    fn store_paths() {
        let p = Path::new("/c/blobs/ab/abcd");
        assert_eq!(store_refs_path(p), PathBuf::from("/c/blobs/ab/abcd.refs"));
        assert_eq!(store_lock_path(p), PathBuf::from("/c/blobs/ab/abcd.lock"));
        assert!(is_store_hash(&"a".repeat(64)));
        assert!(!is_store_hash(&"a".repeat(40)));
    }
}
