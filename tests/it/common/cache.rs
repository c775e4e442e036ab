//! Hugging Face cache fixtures in the exact layout huggingface_hub writes, and helpers to inspect
//! the caches the binary writes.

use std::fs;
use std::path::{Path, PathBuf};

use sha1::Digest as _;

pub use super::seeded::pseudo_random;

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

/// The git blob id huggingface_hub uses as etag for non-LFS files.
pub fn git_sha1_hex(bytes: &[u8]) -> String {
    let mut h = sha1::Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

/// A stable, made-up 40-hex commit id.
pub fn commit_hash(seed: &str) -> String {
    hex(&sha1::Sha1::digest(format!("commit {seed}").as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `models--org--name`, `datasets--org--name`, `spaces--org--name`.
pub fn repo_folder(repo_type: &str, repo_id: &str) -> String {
    format!("{repo_type}s--{}", repo_id.replace('/', "--"))
}

/// `org__name`, the repo part of remote keys.
pub fn remote_name(repo_id: &str) -> String {
    repo_id.replace('/', "__")
}

/// The relative symlink huggingface_hub puts at `snapshots/<commit>/<path>`.
pub fn snapshot_link_target(path: &str, etag: &str) -> String {
    let depth = path.split('/').count() + 1;
    format!("{}blobs/{etag}", "../".repeat(depth))
}

#[cfg(unix)]
fn symlink(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {} -> {target}: {e}", link.display()));
}

/// Builds a cache step by step: `.repo()` / `.dataset()` select a repo, `.rev()` a revision of it,
/// `.file()` / `.lfs_file()` add a file to that revision. Writes happen immediately.
pub struct CacheBuilder {
    root: PathBuf,
    repo_dir: Option<PathBuf>,
    rev: Option<String>,
    copies: bool,
    last_blob: Option<(String, Vec<u8>)>,
}

impl CacheBuilder {
    pub fn new(root: &Path) -> CacheBuilder {
        fs::create_dir_all(root).expect("create cache root");
        CacheBuilder {
            root: root.to_path_buf(),
            repo_dir: None,
            rev: None,
            copies: false,
            last_blob: None,
        }
    }

    pub fn repo(self, repo_id: &str) -> Self {
        self.repo_of_type("model", repo_id)
    }

    pub fn dataset(self, repo_id: &str) -> Self {
        self.repo_of_type("dataset", repo_id)
    }

    pub fn repo_of_type(mut self, repo_type: &str, repo_id: &str) -> Self {
        let dir = self.root.join(repo_folder(repo_type, repo_id));
        for sub in ["blobs", "snapshots", "refs"] {
            fs::create_dir_all(dir.join(sub)).expect("create repo dirs");
        }
        self.repo_dir = Some(dir);
        self.rev = None;
        self.copies = false;
        self.last_blob = None;
        self
    }

    pub fn rev(mut self, commit: &str) -> Self {
        fs::create_dir_all(self.repo_dir().join("snapshots").join(commit))
            .expect("create snapshot");
        self.rev = Some(commit.to_string());
        self.copies = false;
        self
    }

    /// A regular (git) file: its blob is named by its git blob SHA-1.
    pub fn file(self, path: &str, bytes: &[u8]) -> Self {
        let etag = git_sha1_hex(bytes);
        self.add(path, &etag, bytes)
    }

    /// An LFS file: its blob is named by the sha256 of its content.
    pub fn lfs_file(self, path: &str, bytes: &[u8]) -> Self {
        let etag = sha256_hex(bytes);
        self.add(path, &etag, bytes)
    }

    /// `refs/<name>` = `commit`, without a trailing newline (huggingface_hub reads it raw).
    pub fn ref_(self, name: &str, commit: &str) -> Self {
        let path = self.repo_dir().join("refs").join(name);
        fs::create_dir_all(path.parent().unwrap()).expect("create refs dir");
        fs::write(&path, commit).expect("write ref");
        self
    }

    /// The current revision's snapshot holds regular copies instead of symlinks, as huggingface_hub
    /// writes them where symlinks are unavailable. Applies to files already added and to later ones.
    pub fn no_symlinks(mut self) -> Self {
        let snapshot = self.snapshot_dir();
        for rel in super::files_under(&snapshot) {
            let link = snapshot.join(&rel);
            if link.symlink_metadata().unwrap().file_type().is_symlink() {
                let bytes = fs::read(&link).expect("read through snapshot link");
                fs::remove_file(&link).unwrap();
                fs::write(&link, bytes).unwrap();
            }
        }
        self.copies = true;
        self
    }

    /// Moves the last added file's content into the cache-wide shared store
    /// (`<cache>/blobs/<2 hex>/<hash>`) and makes the repo's `blobs/<etag>` a relative symlink to it,
    /// as huggingface_hub ≥ 1.x does for Xet files.
    pub fn shared_store(self) -> Self {
        let (etag, bytes) = self
            .last_blob
            .clone()
            .expect("shared_store() needs a file first");
        let mut xet_input = b"xet ".to_vec();
        xet_input.extend_from_slice(&bytes);
        let xet_hash = sha256_hex(&xet_input);

        let store = self.root.join("blobs");
        fs::create_dir_all(store.join(&xet_hash[..2])).expect("create shared store");
        fs::write(store.join(".huggingface-shared-blobs"), "1\n").expect("write store marker");
        fs::write(store.join(&xet_hash[..2]).join(&xet_hash), &bytes).expect("write shared blob");

        let repo_dir = self.repo_dir();
        let repo_folder = repo_dir.file_name().unwrap().to_string_lossy().into_owned();
        let manifest = store.join(&xet_hash[..2]).join(format!("{xet_hash}.refs"));
        let mut refs = fs::read_to_string(&manifest).unwrap_or_default();
        refs.push_str(&format!("{repo_folder}/blobs/{etag}\n"));
        fs::write(&manifest, refs).expect("write shared blob manifest");

        let blob = repo_dir.join("blobs").join(&etag);
        fs::remove_file(&blob).expect("remove repo blob");
        symlink(&format!("../../blobs/{}/{xet_hash}", &xet_hash[..2]), &blob);
        self
    }

    /// Replaces the content of the last added file's blob, keeping its name: a corrupt local blob.
    pub fn corrupt_last_blob(self, bytes: &[u8]) -> Self {
        let (etag, _) = self
            .last_blob
            .clone()
            .expect("corrupt_last_blob() needs a file first");
        let path = self.repo_dir().join("blobs").join(etag);
        fs::remove_file(&path).expect("remove blob");
        fs::write(&path, bytes).expect("write corrupt blob");
        self
    }

    fn add(mut self, path: &str, etag: &str, bytes: &[u8]) -> Self {
        let blob = self.repo_dir().join("blobs").join(etag);
        if blob.symlink_metadata().is_err() {
            fs::write(&blob, bytes).expect("write blob");
        }
        let entry = self.snapshot_dir().join(path);
        fs::create_dir_all(entry.parent().unwrap()).expect("create snapshot subdir");
        if self.copies {
            fs::write(&entry, bytes).expect("write snapshot copy");
        } else {
            symlink(&snapshot_link_target(path, etag), &entry);
        }
        self.last_blob = Some((etag.to_string(), bytes.to_vec()));
        self
    }

    fn repo_dir(&self) -> &Path {
        self.repo_dir
            .as_deref()
            .expect("call .repo() or .dataset() first")
    }

    fn snapshot_dir(&self) -> PathBuf {
        let rev = self.rev.as_deref().expect("call .rev() first");
        self.repo_dir().join("snapshots").join(rev)
    }
}

/// Read-only view of one repo in a cache the binary wrote.
pub struct CacheView {
    pub dir: PathBuf,
}

impl CacheView {
    pub fn new(cache: &Path, repo_type: &str, repo_id: &str) -> CacheView {
        CacheView {
            dir: cache.join(repo_folder(repo_type, repo_id)),
        }
    }

    pub fn model(cache: &Path, repo_id: &str) -> CacheView {
        CacheView::new(cache, "model", repo_id)
    }

    pub fn exists(&self) -> bool {
        self.dir.exists()
    }

    /// The raw content of `refs/<name>`, if present.
    pub fn ref_(&self, name: &str) -> Option<String> {
        fs::read_to_string(self.dir.join("refs").join(name)).ok()
    }

    pub fn blob(&self, etag: &str) -> PathBuf {
        self.dir.join("blobs").join(etag)
    }

    pub fn has_blob(&self, etag: &str) -> bool {
        self.blob(etag).symlink_metadata().is_ok()
    }

    pub fn snapshot(&self, commit: &str, path: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit).join(path)
    }

    /// Names of everything in `blobs/`.
    pub fn blob_names(&self) -> Vec<String> {
        super::files_under(&self.dir.join("blobs"))
    }

    /// Checks `snapshots/<commit>/<path>` is the relative symlink huggingface_hub would have made
    /// and that it reads `bytes`.
    #[track_caller]
    pub fn assert_linked_file(&self, commit: &str, path: &str, etag: &str, bytes: &[u8]) {
        let link = self.snapshot(commit, path);
        let meta = link
            .symlink_metadata()
            .unwrap_or_else(|e| panic!("{} is missing: {e}", link.display()));
        assert!(
            meta.file_type().is_symlink(),
            "{} is not a symlink",
            link.display()
        );
        let target = fs::read_link(&link).unwrap();
        assert_eq!(
            target.to_string_lossy(),
            snapshot_link_target(path, etag),
            "symlink target of {}",
            link.display()
        );
        self.assert_file(commit, path, bytes);
    }

    /// Checks `snapshots/<commit>/<path>` reads `bytes` (following links).
    #[track_caller]
    pub fn assert_file(&self, commit: &str, path: &str, bytes: &[u8]) {
        let link = self.snapshot(commit, path);
        let got = fs::read(&link).unwrap_or_else(|e| panic!("read {}: {e}", link.display()));
        assert!(
            got == bytes,
            "{} has the wrong content ({} bytes, expected {})",
            link.display(),
            got.len(),
            bytes.len()
        );
    }

    /// Every entry in `blobs/` is a finished blob whose content matches its name: no temp files,
    /// no partial downloads, nothing unverified.
    #[track_caller]
    pub fn assert_blobs_clean(&self) {
        for name in self.blob_names() {
            let path = self.blob(&name);
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            let ok = match name.len() {
                64 => sha256_hex(&bytes) == name,
                40 => git_sha1_hex(&bytes) == name,
                _ => false,
            };
            assert!(
                ok,
                "{} is not a verified blob (leftover temp file or wrong content)",
                path.display()
            );
        }
    }
}

/// Nothing in `cache` but what huggingface_hub itself would have there: repo folders holding only
/// `blobs/` (each verified against its name), `snapshots/`, `refs/` and `.no_exist/`, plus `.locks/`,
/// the shared store and `CACHEDIR.TAG`. Catches temp files and partial downloads left behind.
#[track_caller]
pub fn assert_cache_tidy(cache: &Path) {
    let mut checked = std::collections::BTreeSet::new();
    for rel in super::files_under(cache) {
        let mut parts = rel.splitn(3, '/');
        let top = parts.next().unwrap();
        let is_repo = ["models--", "datasets--", "spaces--"]
            .iter()
            .any(|p| top.starts_with(p));
        if !is_repo {
            assert!(
                matches!(top, ".locks" | "blobs" | "CACHEDIR.TAG"),
                "unexpected file {rel} in the cache {}",
                cache.display()
            );
            continue;
        }
        let sub = parts.next().unwrap_or_default();
        match sub {
            // Once a repo: every blob of it is hashed.
            "blobs" if checked.insert(top.to_string()) => CacheView {
                dir: cache.join(top),
            }
            .assert_blobs_clean(),
            "blobs" => {}
            "snapshots" | "refs" | ".no_exist" => {}
            _ => panic!("unexpected file {rel} in the cache {}", cache.display()),
        }
    }
}

/// Sets the access time of `path` (following links) to `ago` before now, as if last read then.
#[track_caller]
pub fn set_accessed_ago(path: &Path, ago: std::time::Duration) {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let when = std::time::SystemTime::now() - ago;
    file.set_times(fs::FileTimes::new().set_accessed(when))
        .unwrap_or_else(|e| panic!("set atime of {}: {e}", path.display()));
}

/// Sets the modification time of `path` to `ago` before now.
#[track_caller]
pub fn set_modified_ago(path: &Path, ago: std::time::Duration) {
    let file = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_modified(std::time::SystemTime::now() - ago)
        .unwrap_or_else(|e| panic!("set mtime of {}: {e}", path.display()));
}

/// Marks every blob revision `commit` of `repo_dir` uses as last read `ago` before now.
#[track_caller]
pub fn set_revision_accessed_ago(repo_dir: &Path, commit: &str, ago: std::time::Duration) {
    let snapshot = repo_dir.join("snapshots").join(commit);
    for rel in super::files_under(&snapshot) {
        set_accessed_ago(&snapshot.join(rel), ago);
    }
}

/// Writes `size` bytes (whole MiB), a 1 MiB pseudo-random block repeated, as an LFS blob of
/// `repo_id` in `cache` (linked as `model.safetensors` from `commit`, ref main, beside a small
/// `config.json`), without holding it in memory. Returns its sha256.
pub fn write_big_blob(cache: &Path, repo_id: &str, commit: &str, size: usize) -> String {
    use std::io::Write;
    const MIB: usize = 1024 * 1024;
    CacheBuilder::new(cache)
        .repo(repo_id)
        .rev(commit)
        .file("config.json", b"{\"big\": true}\n")
        .ref_("main", commit);
    let view = CacheView::model(cache, repo_id);
    let block = pseudo_random("big blob block", MIB);
    let tmp = view.dir.join("blobs").join("writing");
    let mut file = std::io::BufWriter::new(fs::File::create(&tmp).expect("create big blob"));
    let mut hasher = sha2::Sha256::new();
    for _ in 0..size / MIB {
        file.write_all(&block).expect("write big blob");
        hasher.update(&block);
    }
    file.flush().expect("flush big blob");
    let etag = hex(&hasher.finalize());
    fs::rename(&tmp, view.blob(&etag)).expect("name big blob");
    let link = view.snapshot(commit, "model.safetensors");
    symlink(&snapshot_link_target("model.safetensors", &etag), &link);
    etag
}
