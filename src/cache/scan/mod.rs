//! Reads a hub cache into plain data. Odd entries become warnings, never errors: a cache that
//! huggingface_hub half-wrote or a user half-deleted must still be listable and fixable.

use super::file_id;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

mod walk;

use walk::Scanner;

use super::{is_blob_name, parse_repo_folder, RepoType};

#[derive(Debug, Default)]
pub struct CacheScan {
    pub root: PathBuf,
    pub exists: bool,
    pub repos: Vec<Repo>,
    pub warnings: Vec<ScanWarning>,
}

#[derive(Debug)]
pub struct Repo {
    pub repo_type: RepoType,
    pub repo_id: String,
    /// `models--org--name`
    pub folder: String,
    pub dir: PathBuf,
    pub blobs: BTreeMap<String, Blob>,
    pub revisions: Vec<Revision>,
    /// ref name (`main`, `pr/1`) → commit
    pub refs: BTreeMap<String, String>,
    /// Partial downloads in `blobs/`: huggingface_hub's `.incomplete` files and this tool's
    /// temporary files.
    pub partials: Vec<Partial>,
    /// commit → its tree listing file, `trees/<commit>.json`.
    pub trees: BTreeMap<String, TreeFile>,
}

/// A tree listing in `trees/`: the listing when it is valid and describes the commit's snapshot
/// (if there is one), else `None` (with an advisory warning): never trusted.
#[derive(Debug, Clone)]
pub struct TreeFile {
    pub path: PathBuf,
    pub listing: Option<super::trees::TreeListing>,
}

#[derive(Debug, Clone)]
pub struct Partial {
    pub path: PathBuf,
    /// The blob it is becoming, when the name says so.
    pub etag: Option<String>,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

#[derive(Debug, Clone)]
pub struct Blob {
    /// `blobs/<etag>` inside the repo folder.
    pub path: PathBuf,
    /// Where the bytes are: `blobs/<etag>` itself, or its target in the cache-wide shared store.
    pub content_path: PathBuf,
    pub size: u64,
    /// True when `path` links into the cache-wide shared store.
    pub shared: bool,
    /// (device, inode) of the content: a blob linked from several repos is counted once.
    pub file_id: (u64, u64),
    /// Hard links to the content (more than one once `dedupe` linked copies together).
    pub links: u64,
    pub accessed: Option<SystemTime>,
    pub modified: Option<SystemTime>,
}

#[derive(Debug)]
pub struct Revision {
    pub commit: String,
    pub dir: PathBuf,
    pub files: Vec<SnapshotFile>,
    /// Snapshot links (relative, `/`-separated) that lead to no usable file: a missing blob, a
    /// dangling link, a target outside the cache or not a file. Left out of `files`.
    pub broken: Vec<String>,
    /// The snapshot folder's mtime, as huggingface_hub reports a revision's last modification.
    pub modified: Option<SystemTime>,
}

#[derive(Debug, Clone)]
pub struct SnapshotFile {
    /// Relative to the snapshot root, `/`-separated.
    pub path: String,
    pub size: u64,
    pub source: FileSource,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource {
    /// A link to `blobs/<etag>` of the same repo.
    Blob(String),
    /// A regular file (the no-symlink layout) or a link elsewhere inside the cache; its blob
    /// name is the sha256 of its content, computed when needed.
    Copy(PathBuf),
}

impl SnapshotFile {
    /// The blob it links to, when it is a link to one (a copy's name is unknown unhashed).
    pub fn etag(&self) -> Option<&str> {
        match &self.source {
            FileSource::Blob(e) => Some(e),
            FileSource::Copy(_) => None,
        }
    }
}

impl Repo {
    pub fn revision(&self, commit: &str) -> Option<&Revision> {
        self.revisions.iter().find(|r| r.commit == commit)
    }

    /// `model/org/name`, the identifier `list` prints and `rm` accepts.
    pub fn qualified_id(&self) -> String {
        format!("{}/{}", self.repo_type, self.repo_id)
    }

    /// Blobs some snapshot links to.
    pub fn referenced(&self) -> BTreeSet<&str> {
        self.revisions.iter().flat_map(|r| r.etags()).collect()
    }

    /// Blobs no snapshot links to.
    pub fn orphans(&self) -> Vec<&Blob> {
        let referenced = self.referenced();
        self.blobs
            .iter()
            .filter(|(etag, _)| !referenced.contains(etag.as_str()))
            .map(|(_, b)| b)
            .collect()
    }

    /// Bytes of the blobs its revisions use, each counted once, as `scan_cache_dir` counts them.
    pub fn size_on_disk(&self) -> u64 {
        let mut seen = HashSet::new();
        self.revisions
            .iter()
            .map(|r| r.unique_size(self, &mut seen))
            .sum()
    }

    /// Bytes of the given revisions' blobs, each counted once.
    pub fn size_of<'a>(&self, revisions: impl IntoIterator<Item = &'a Revision>) -> u64 {
        let mut seen = HashSet::new();
        revisions
            .into_iter()
            .map(|r| r.unique_size(self, &mut seen))
            .sum()
    }

    /// Latest access of a blob some revision uses; orphans do not count, as in `scan_cache_dir`.
    pub fn last_accessed(&self) -> Option<SystemTime> {
        self.used_blobs().filter_map(|b| b.accessed).max()
    }

    /// Latest modification of a blob some revision uses.
    pub fn last_modified(&self) -> Option<SystemTime> {
        self.used_blobs().filter_map(|b| b.modified).max()
    }

    fn used_blobs(&self) -> impl Iterator<Item = &Blob> {
        let referenced = self.referenced();
        self.blobs
            .iter()
            .filter(move |(etag, _)| referenced.contains(etag.as_str()))
            .map(|(_, b)| b)
    }

    /// Refs pointing at `commit`.
    pub fn refs_to(&self, commit: &str) -> Vec<&str> {
        self.refs
            .iter()
            .filter(|(_, c)| c.as_str() == commit)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

impl Revision {
    /// Blobs this revision links to.
    pub fn etags(&self) -> impl Iterator<Item = &str> {
        self.files.iter().filter_map(|f| match &f.source {
            FileSource::Blob(e) => Some(e.as_str()),
            FileSource::Copy(_) => None,
        })
    }

    /// Bytes of this revision's files not already in `seen` (file ids), adding them.
    fn unique_size(&self, repo: &Repo, seen: &mut HashSet<(u64, u64)>) -> u64 {
        let mut total = 0;
        for f in &self.files {
            match &f.source {
                FileSource::Blob(e) => {
                    if let Some(b) = repo.blobs.get(e) {
                        if seen.insert(b.file_id) {
                            total += b.size;
                        }
                    }
                }
                FileSource::Copy(path) => {
                    let id = fs::metadata(path).map(|m| file_id(&m)).unwrap_or((0, 0));
                    if id == (0, 0) || seen.insert(id) {
                        total += f.size;
                    }
                }
            }
        }
        total
    }

    /// The files the commit's tree listing names that the snapshot lacks, in path order; `None`
    /// when the cache holds no listing of the commit it trusts (one it trusts lists every file
    /// the snapshot has, with the same blob and size).
    pub fn missing_listed<'a>(&self, repo: &'a Repo) -> Option<Vec<&'a str>> {
        let listing = repo.trees.get(&self.commit)?.listing.as_ref()?;
        let have: HashSet<&str> = self.files.iter().map(|f| f.path.as_str()).collect();
        Some(
            listing
                .files
                .keys()
                .map(String::as_str)
                .filter(|p| !have.contains(p))
                .collect(),
        )
    }

    /// Partial by its tree listing: the snapshot lacks files the listing names, and every file
    /// it has is listed with the same content and none of its links is broken. What a download
    /// of some of the commit's files leaves (`hf download --include`, `pull --include-files`).
    pub fn is_partial(&self, repo: &Repo) -> bool {
        self.broken.is_empty() && self.missing_listed(repo).is_some_and(|m| !m.is_empty())
    }

    /// Latest access of any of its blobs.
    pub fn last_accessed(&self, repo: &Repo) -> Option<SystemTime> {
        self.etags()
            .filter_map(|e| repo.blobs.get(e).and_then(|b| b.accessed))
            .max()
    }
}

impl CacheScan {
    /// Bytes of every blob in the cache, each file counted once however many repos link it.
    pub fn blob_bytes(&self) -> u64 {
        let mut seen = HashSet::new();
        self.repos
            .iter()
            .flat_map(|r| r.blobs.values())
            .filter(|b| seen.insert(b.file_id))
            .map(|b| b.size)
            .sum()
    }

    /// Distinct blob files in the cache.
    pub fn blob_count(&self) -> usize {
        self.repos
            .iter()
            .flat_map(|r| r.blobs.values())
            .map(|b| b.file_id)
            .collect::<HashSet<_>>()
            .len()
    }
}

/// Removes `.` and `..` components without touching the filesystem.
pub fn normalize_lexically(path: &Path) -> PathBuf {
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

/// Something odd the scanner found and left out: the repo folder it is in (none for the cache
/// dir's own entries), the file or folder concerned, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanWarning {
    /// `models--org--name`, when the path is inside a repo folder.
    pub repo: Option<String>,
    pub path: PathBuf,
    pub message: String,
    /// Worth telling, but no fault of the cache: huggingface_hub ignores what it concerns (a
    /// malformed tree listing), and so does every command.
    pub advisory: bool,
}

impl fmt::Display for ScanWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.message)
    }
}

/// Scans the cache at `root`. A missing root is an empty cache (`exists == false`).
pub fn scan(root: &Path) -> CacheScan {
    let mut result = CacheScan {
        root: root.to_path_buf(),
        ..Default::default()
    };
    let entries = match fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return result,
        Err(e) => {
            result.exists = true;
            result.warnings.push(ScanWarning {
                repo: None,
                path: root.to_path_buf(),
                message: format!("cannot read: {e}"),
                advisory: false,
            });
            return result;
        }
    };
    result.exists = true;
    let mut scanner = Scanner {
        canonical_root: fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
        repo: None,
        warnings: Vec::new(),
    };
    let mut folders: Vec<(String, RepoType, String)> = Vec::new();
    for entry in entries.filter_map(Result::ok) {
        let Ok(ft) = entry.file_type() else { continue };
        let path = entry.path();
        let Ok(name) = entry.file_name().into_string() else {
            if ft.is_dir() {
                scanner.warn(&path, "folder name is not UTF-8; ignored".into());
            }
            continue;
        };
        let Some((t, id)) = parse_repo_folder(&name) else {
            if let Some(prefix) = super::unknown_repo_folder(&name).filter(|_| ft.is_dir()) {
                scanner.warn(
                    &path,
                    format!(
                        "unknown repo type {prefix:?} (known: models, datasets, spaces, \
                         kernels); ignored"
                    ),
                );
            }
            continue;
        };
        if ft.is_symlink() {
            // A repo folder is never followed through a link: what it holds is not this cache's.
            if !scanner.escapes(&path) {
                scanner.warn(&path, "repo folder is a link; ignored".into());
            }
            continue;
        }
        if ft.is_dir() {
            folders.push((name, t, id));
        }
    }
    folders.sort();
    let mut warnings = scanner.warnings;
    for (repo, repo_warnings) in scan_repos(root, &scanner.canonical_root, folders) {
        result.repos.push(repo);
        warnings.extend(repo_warnings);
    }
    result.warnings = warnings;
    result
}

/// Scans one repo folder of the cache at `root` (`models--org--name`), with its warnings.
pub fn scan_repo(root: &Path, folder: &str) -> Option<(Repo, Vec<ScanWarning>)> {
    let (repo_type, repo_id) = parse_repo_folder(folder)?;
    let mut scanner = Scanner {
        canonical_root: fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
        repo: Some(folder.to_string()),
        warnings: Vec::new(),
    };
    let repo = scanner.scan_repo(root.join(folder), folder.to_string(), repo_type, repo_id);
    Some((repo, scanner.warnings))
}

/// Scans repo folders on several threads (a large cache is hundreds of thousands of `stat` and
/// `readlink` calls), returning each repo with its warnings in the order of `folders`.
fn scan_repos(
    root: &Path,
    canonical_root: &Path,
    folders: Vec<(String, RepoType, String)>,
) -> Vec<(Repo, Vec<ScanWarning>)> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const MAX_THREADS: usize = 8;
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS)
        .min(folders.len());
    let next = AtomicUsize::new(0);
    let work = |_| {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some((folder, repo_type, repo_id)) = folders.get(i).cloned() else {
                return done;
            };
            let mut scanner = Scanner {
                canonical_root: canonical_root.to_path_buf(),
                repo: Some(folder.clone()),
                warnings: Vec::new(),
            };
            let repo = scanner.scan_repo(root.join(&folder), folder, repo_type, repo_id);
            done.push((i, repo, scanner.warnings));
        }
    };
    let mut scanned: Vec<(usize, Repo, Vec<ScanWarning>)> = if threads <= 1 {
        work(0)
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || work(t))).collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("scanner thread does not panic"))
                .collect()
        })
    };
    scanned.sort_by_key(|(i, _, _)| *i);
    scanned.into_iter().map(|(_, r, w)| (r, w)).collect()
}

/// `<etag>.incomplete`, `<etag>.<8 hex>.incomplete` or this tool's `.hfcs-<etag>-….tmp`.
fn partial_of(path: &Path, name: &str) -> Option<Partial> {
    let etag = if let Some(stem) = name.strip_suffix(super::partial::SUFFIX) {
        stem.split('.').next().filter(|e| is_blob_name(e))
    } else if name.starts_with(super::TEMP_PREFIX) && name.ends_with(super::TEMP_SUFFIX) {
        super::partial::temp_of(name)
    } else {
        return None;
    };
    let meta = fs::symlink_metadata(path).ok()?;
    Some(Partial {
        path: path.to_path_buf(),
        etag: etag.map(str::to_string),
        size: meta.len(),
        modified: meta.modified().ok(),
    })
}

fn same_dir(a: Option<&Path>, b: &Path) -> bool {
    match (
        a.and_then(|a| fs::canonicalize(a).ok()),
        fs::canonicalize(b).ok(),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_files(&entry.path(), out),
            Ok(t) if t.is_file() => out.push(entry.path()),
            _ => {}
        }
    }
}

/// `a/b/c` for `root/a/b/c`; `None` when not UTF-8.
pub fn relative_slash_path(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    Some(parts?.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const E1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const C1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn make_repo(root: &Path) -> PathBuf {
        let repo = root.join("models--org--m");
        fs::create_dir_all(repo.join("blobs")).unwrap();
        fs::create_dir_all(repo.join("snapshots").join(C1).join("sub")).unwrap();
        fs::create_dir_all(repo.join("refs")).unwrap();
        fs::write(repo.join("blobs").join(E1), b"weights").unwrap();
        symlink(
            format!("../../blobs/{E1}"),
            repo.join("snapshots").join(C1).join("w.bin"),
        )
        .unwrap();
        symlink(
            format!("../../../blobs/{E1}"),
            repo.join("snapshots").join(C1).join("sub/w.bin"),
        )
        .unwrap();
        fs::write(repo.join("refs/main"), C1).unwrap();
        repo
    }

    #[test]
    fn scans_links_refs_and_skips_partials() {
        let dir = tempfile::tempdir().unwrap();
        let repo = make_repo(dir.path());
        fs::write(repo.join("blobs").join(format!("{E1}.incomplete")), b"x").unwrap();
        fs::write(dir.path().join("CACHEDIR.TAG"), b"").unwrap();
        let scan = scan(dir.path());
        assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
        assert_eq!(scan.repos.len(), 1);
        let r = &scan.repos[0];
        assert_eq!(r.repo_id, "org/m");
        assert_eq!(r.blobs.len(), 1);
        assert_eq!(r.refs.get("main").map(String::as_str), Some(C1));
        let files = &r.revisions[0].files;
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].path, "sub/w.bin");
        assert_eq!(files[0].source, FileSource::Blob(E1.into()));
        assert_eq!(files[1].size, 7);
    }

    #[test]
    fn links_outside_the_cache_are_warned_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"s").unwrap();
        let repo = make_repo(dir.path());
        symlink(
            outside.path().join("secret"),
            repo.join("snapshots").join(C1).join("evil"),
        )
        .unwrap();
        let e2 = "2".repeat(64);
        symlink(outside.path().join("secret"), repo.join("blobs").join(&e2)).unwrap();
        let scan = scan(dir.path());
        assert_eq!(scan.warnings.len(), 2, "{:?}", scan.warnings);
        assert!(!scan.repos[0].blobs.contains_key(&e2));
        assert_eq!(scan.repos[0].revisions[0].files.len(), 2);
    }

    #[test]
    fn folders_linked_outside_the_cache_are_never_read() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("config.json"), b"outside").unwrap();
        let repo = make_repo(dir.path());
        let c2 = "b".repeat(40);
        symlink(outside.path(), repo.join("snapshots").join(&c2)).unwrap();
        let other = dir.path().join("models--org--other");
        fs::create_dir_all(other.join("snapshots")).unwrap();
        symlink(outside.path(), other.join("blobs")).unwrap();
        symlink(outside.path(), other.join("refs")).unwrap();
        symlink(outside.path(), dir.path().join("models--org--linked")).unwrap();
        let scan = scan(dir.path());
        assert_eq!(scan.warnings.len(), 4, "{:?}", scan.warnings);
        assert!(scan
            .warnings
            .iter()
            .all(|w| w.message.contains("outside the cache dir")));
        // The linked repo folder is the cache dir's own entry; the others are inside a repo.
        let linked = scan
            .warnings
            .iter()
            .find(|w| w.path == dir.path().join("models--org--linked"))
            .expect("a warning about the linked repo folder");
        assert_eq!(linked.repo, None);
        assert!(scan
            .warnings
            .iter()
            .filter(|w| w.path != linked.path)
            .all(|w| w.repo.is_some()));
        let ids: Vec<&str> = scan.repos.iter().map(|r| r.repo_id.as_str()).collect();
        assert_eq!(ids, ["org/m", "org/other"]);
        assert_eq!(
            scan.repos[0].revisions.len(),
            1,
            "the linked snapshot is skipped"
        );
        assert!(scan.repos[1].blobs.is_empty());
    }

    #[test]
    fn non_utf8_folder_names_are_warned_and_skipped() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        make_repo(dir.path());
        let name = std::ffi::OsStr::from_bytes(b"models--org--\xff\xfe");
        fs::create_dir_all(dir.path().join(name).join("snapshots")).unwrap();
        let scan = scan(dir.path());
        assert_eq!(scan.repos.len(), 1);
        assert_eq!(scan.warnings.len(), 1, "{:?}", scan.warnings);
        assert!(scan.warnings[0].message.contains("not UTF-8"));
    }

    #[test]
    fn broken_links_and_missing_snapshots_are_warnings() {
        let dir = tempfile::tempdir().unwrap();
        let repo = make_repo(dir.path());
        fs::remove_file(repo.join("blobs").join(E1)).unwrap();
        fs::create_dir_all(dir.path().join("datasets--d")).unwrap();
        let scan = scan(dir.path());
        assert_eq!(scan.repos.len(), 2);
        assert_eq!(scan.warnings.len(), 3, "{:?}", scan.warnings);
        let no_snapshots = scan
            .warnings
            .iter()
            .find(|w| w.repo.as_deref() == Some("datasets--d"))
            .expect("a warning about the dataset");
        assert_eq!(no_snapshots.path, dir.path().join("datasets--d"));
        // What is printed is the path, then what is wrong with it.
        assert_eq!(
            no_snapshots.to_string(),
            format!(
                "{}: repo has no snapshots/ folder",
                dir.path().join("datasets--d").display()
            )
        );
    }

    #[test]
    fn shared_store_blobs_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let repo = make_repo(dir.path());
        let store = dir.path().join("blobs").join("ab");
        fs::create_dir_all(&store).unwrap();
        fs::write(store.join("abcdef"), b"shared!").unwrap();
        let e2 = "3".repeat(64);
        symlink("../../blobs/ab/abcdef", repo.join("blobs").join(&e2)).unwrap();
        let scan = scan(dir.path());
        let blob = &scan.repos[0].blobs[&e2];
        assert_eq!(
            blob.content_path,
            fs::canonicalize(store.join("abcdef")).unwrap()
        );
        assert_eq!(blob.size, 7);
        assert!(scan.warnings.is_empty(), "{:?}", scan.warnings);
    }

    #[test]
    fn sizes_orphans_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let repo = make_repo(dir.path());
        let orphan = "4".repeat(40);
        fs::write(repo.join("blobs").join(&orphan), b"old").unwrap();
        fs::write(repo.join("blobs").join(format!("{E1}.incomplete")), b"part").unwrap();
        fs::write(
            repo.join("blobs").join(format!(".hfcs-{E1}-abc.tmp")),
            b"tmp",
        )
        .unwrap();
        let scan = scan(dir.path());
        let r = &scan.repos[0];
        // Two snapshot files link one blob: counted once.
        assert_eq!(r.size_on_disk(), 7);
        assert_eq!(r.orphans().len(), 1);
        assert_eq!(r.partials.len(), 2);
        assert!(r.partials.iter().all(|p| p.etag.as_deref() == Some(E1)));
        assert_eq!(scan.blob_bytes(), 10);
        assert_eq!(scan.blob_count(), 2);
        assert_eq!(r.refs_to(C1), vec!["main"]);
        assert_eq!(r.qualified_id(), "model/org/m");
    }

    #[test]
    fn orphans_do_not_make_a_repo_recently_used() {
        let dir = tempfile::tempdir().unwrap();
        let repo = make_repo(dir.path());
        let old = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::open(repo.join("blobs").join(E1))
            .unwrap()
            .set_times(fs::FileTimes::new().set_accessed(old).set_modified(old))
            .unwrap();
        fs::write(repo.join("blobs").join("4".repeat(40)), b"fresh orphan").unwrap();
        let scan = scan(dir.path());
        assert_eq!(scan.repos[0].last_accessed(), Some(old));
        assert_eq!(scan.repos[0].last_modified(), Some(old));
    }

    #[test]
    fn missing_root_is_empty() {
        let scan = scan(Path::new("/nonexistent/hf-cache"));
        assert!(!scan.exists);
        assert!(scan.repos.is_empty());
    }
}
