//! The local Hugging Face hub cache: path helpers, hashing, scanning and safe writes.
//!
//! Path helpers are pure functions mirroring huggingface_hub's layout, tested inline.

pub mod dedupe;
pub mod delete;
pub mod hash;
pub mod heuristics;
pub mod landing;
pub mod local_dir;
pub mod lock;
pub mod modes;
pub mod partial;
pub mod reflink;
pub mod scan;
pub mod store;
pub mod temp;
pub mod trees;
pub mod watch;
pub mod write;

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoType {
    Model,
    Dataset,
    Space,
    /// huggingface_hub 2.x: compute kernels, cached as `kernels--org--name`.
    Kernel,
}

impl RepoType {
    pub const ALL: [RepoType; 4] = [
        RepoType::Model,
        RepoType::Dataset,
        RepoType::Space,
        RepoType::Kernel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RepoType::Model => "model",
            RepoType::Dataset => "dataset",
            RepoType::Space => "space",
            RepoType::Kernel => "kernel",
        }
    }

    /// The plural used in cache folder names (`models--…`).
    pub fn folder_prefix(self) -> &'static str {
        match self {
            RepoType::Model => "models",
            RepoType::Dataset => "datasets",
            RepoType::Space => "spaces",
            RepoType::Kernel => "kernels",
        }
    }

    pub fn parse(s: &str) -> Option<RepoType> {
        RepoType::ALL
            .into_iter()
            .find(|t| t.as_str() == s || t.folder_prefix() == s)
    }
}

impl fmt::Display for RepoType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `models--org--name` for (`model`, `org/name`).
pub fn repo_folder_name(repo_type: RepoType, repo_id: &str) -> String {
    format!(
        "{}--{}",
        repo_type.folder_prefix(),
        repo_id.replace('/', "--")
    )
}

/// A cache folder that looks like a repo (`<type>s--<id>`) of a type this tool does not know,
/// from a newer huggingface_hub: reported, never silently skipped. Returns the type prefix.
pub fn unknown_repo_folder(name: &str) -> Option<&str> {
    let (prefix, rest) = name.split_once("--")?;
    let plausible = !prefix.is_empty()
        && !rest.is_empty()
        && !prefix.starts_with('.')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'-');
    (plausible && parse_repo_folder(name).is_none()).then_some(prefix)
}

/// The inverse of [`repo_folder_name`]; `None` for folders that are not repos.
pub fn parse_repo_folder(name: &str) -> Option<(RepoType, String)> {
    let (prefix, rest) = name.split_once("--")?;
    let repo_type = RepoType::ALL
        .into_iter()
        .find(|t| t.folder_prefix() == prefix)?;
    if rest.is_empty() {
        return None;
    }
    Some((repo_type, rest.replace("--", "/")))
}

/// The hub cache inside `dir` when `dir` is a Hugging Face home (`HF_HOME`, such as
/// `~/.cache/huggingface`) given where a hub cache was meant: `dir` holds no repo folder of its
/// own, and its `hub/` holds repos or huggingface_hub's `CACHEDIR.TAG`.
pub fn hub_inside_home(dir: &Path) -> Option<PathBuf> {
    let hub = dir.join("hub");
    let hub_cache = holds_repo_folders(&hub) || hub.join("CACHEDIR.TAG").is_file();
    (hub_cache && !holds_repo_folders(dir)).then_some(hub)
}

/// Whether `dir` holds at least one repo folder (`models--org--name`, …).
pub fn holds_repo_folders(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| parse_repo_folder(n).is_some())
                && e.path().is_dir()
        })
    })
}

pub fn blob_path(repo_dir: &Path, etag: &str) -> PathBuf {
    repo_dir.join("blobs").join(etag)
}

pub fn snapshot_path(repo_dir: &Path, commit: &str) -> PathBuf {
    repo_dir.join("snapshots").join(commit)
}

/// `refs/<name>`; nested names such as `pr/1` become nested files.
pub fn ref_path(repo_dir: &Path, name: &str) -> PathBuf {
    repo_dir.join("refs").join(name)
}

/// The lock file huggingface_hub holds while it writes a blob.
pub fn lock_path(cache_dir: &Path, repo_folder: &str, etag: &str) -> PathBuf {
    cache_dir
        .join(".locks")
        .join(repo_folder)
        .join(format!("{etag}.lock"))
}

/// This tool's per-repo lock, beside huggingface_hub's per-repo lock folder: pulls hold it
/// shared while they write into the repo, prune and rm take it exclusively before they look at
/// the repo, so neither sees the other half-way.
pub fn repo_lock_path(cache_dir: &Path, repo_folder: &str) -> PathBuf {
    cache_dir
        .join(".locks")
        .join(format!("{repo_folder}.hf-cache-sync.lock"))
}

/// The cache-root lock every push of the cache holds while it runs, `watch`'s pushes included:
/// a manual push and a watch never push one cache at once.
pub fn push_lock_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join(".locks").join("hf-cache-sync.push.lock")
}

/// The lock a `watch` holds for as long as it watches the cache: one watcher a cache.
pub fn watch_lock_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join(".locks").join("hf-cache-sync.watch.lock")
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A blob is named by its sha256 (64 hex, LFS) or git blob SHA-1 (40 hex).
pub fn is_blob_name(name: &str) -> bool {
    (name.len() == 40 || name.len() == 64) && is_lower_hex(name)
}

pub fn is_commit_hash(s: &str) -> bool {
    s.len() == 40 && is_lower_hex(s)
}

/// A ref name that is safe to use as a relative path under `refs/` (`main`, `pr/1`, `v1.0`).
pub fn is_safe_ref_name(name: &str) -> bool {
    is_safe_relative_path(name) && !name.contains('\\')
}

/// True for a non-empty relative path of normal components only: no `/` root, no `..`, no `.`,
/// no empty components, no NUL.
pub fn is_safe_relative_path(path: &str) -> bool {
    if path.is_empty() || path.starts_with('/') || path.contains('\0') || path.ends_with('/') {
        return false;
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return false;
    }
    Path::new(path)
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
}

/// The relative symlink target from a snapshot file at `file_path` (relative to the snapshot
/// root, `/`-separated) to `blobs/<etag>`: `../../blobs/<etag>` plus one `../` per nesting level.
pub fn snapshot_link_target(file_path: &str, etag: &str) -> PathBuf {
    let depth = file_path.matches('/').count();
    let mut target = PathBuf::new();
    for _ in 0..depth + 2 {
        target.push("..");
    }
    target.join("blobs").join(etag)
}

/// Prefix and suffix of this tool's temporary files in `blobs/`; never a blob name.
pub const TEMP_PREFIX: &str = ".hfcs-";
pub const TEMP_SUFFIX: &str = ".tmp";

/// What identifies a file on its device (a hardlink shares it): its device and inode.
#[cfg(unix)]
pub fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
pub fn file_id(_meta: &std::fs::Metadata) -> (u64, u64) {
    (0, 0)
}

/// How many names (hard links) the file has.
#[cfg(unix)]
pub fn link_count(meta: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.nlink()
}

#[cfg(not(unix))]
pub fn link_count(_meta: &std::fs::Metadata) -> u64 {
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hugging_face_home_is_told_from_a_hub_cache() {
        let home = tempfile::tempdir().unwrap();
        let hub = home.path().join("hub");
        std::fs::create_dir_all(hub.join("models--org--m/snapshots")).unwrap();
        std::fs::write(home.path().join("token"), b"x").unwrap();
        assert_eq!(hub_inside_home(home.path()), Some(hub.clone()));
        // The hub cache itself, and a home whose hub/ holds nothing yet, are left as they are.
        assert_eq!(hub_inside_home(&hub), None);
        let fresh = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(fresh.path().join("hub")).unwrap();
        assert_eq!(hub_inside_home(fresh.path()), None);
        std::fs::write(fresh.path().join("hub/CACHEDIR.TAG"), b"").unwrap();
        assert_eq!(
            hub_inside_home(fresh.path()),
            Some(fresh.path().join("hub"))
        );
        // A cache with repos of its own is a cache, whatever else it holds.
        std::fs::create_dir_all(fresh.path().join("datasets--org--d")).unwrap();
        assert_eq!(hub_inside_home(fresh.path()), None);
    }

    #[test]
    fn folder_names_round_trip() {
        assert_eq!(
            repo_folder_name(RepoType::Model, "org/name"),
            "models--org--name"
        );
        assert_eq!(
            repo_folder_name(RepoType::Dataset, "squad"),
            "datasets--squad"
        );
        assert_eq!(
            parse_repo_folder("spaces--a--b"),
            Some((RepoType::Space, "a/b".into()))
        );
        assert_eq!(
            parse_repo_folder("kernels--kernels-community--activation"),
            Some((RepoType::Kernel, "kernels-community/activation".into()))
        );
        assert_eq!(
            repo_folder_name(RepoType::Kernel, "org/k"),
            "kernels--org--k"
        );
        assert_eq!(RepoType::parse("kernel"), Some(RepoType::Kernel));
        assert_eq!(unknown_repo_folder("widgets--org--w"), Some("widgets"));
        assert_eq!(unknown_repo_folder("kernels--org--k"), None);
        assert_eq!(unknown_repo_folder("models--org--m"), None);
        for not_a_repo in [".locks", "blobs", "CACHEDIR.TAG", "version.txt", ".x--y"] {
            assert_eq!(unknown_repo_folder(not_a_repo), None, "{not_a_repo}");
        }
        assert_eq!(
            parse_repo_folder("spaces--a--b"),
            Some((RepoType::Space, "a/b".into()))
        );
        assert_eq!(parse_repo_folder("blobs"), None);
        assert_eq!(parse_repo_folder("models--"), None);
        assert_eq!(parse_repo_folder("widgets--a--b"), None);
    }

    #[test]
    fn paths() {
        let repo = Path::new("/c/models--a--b");
        assert_eq!(
            blob_path(repo, "ab"),
            PathBuf::from("/c/models--a--b/blobs/ab")
        );
        assert_eq!(
            snapshot_path(repo, "c1"),
            PathBuf::from("/c/models--a--b/snapshots/c1")
        );
        assert_eq!(
            ref_path(repo, "pr/1"),
            PathBuf::from("/c/models--a--b/refs/pr/1")
        );
        assert_eq!(
            lock_path(Path::new("/c"), "models--a--b", "e1"),
            PathBuf::from("/c/.locks/models--a--b/e1.lock")
        );
        assert_eq!(
            repo_lock_path(Path::new("/c"), "models--a--b"),
            PathBuf::from("/c/.locks/models--a--b.hf-cache-sync.lock")
        );
        assert_eq!(
            push_lock_path(Path::new("/c")),
            PathBuf::from("/c/.locks/hf-cache-sync.push.lock")
        );
        assert_eq!(
            watch_lock_path(Path::new("/c")),
            PathBuf::from("/c/.locks/hf-cache-sync.watch.lock")
        );
        // Neither can be mistaken for a repo's lock file or folder.
        for name in ["hf-cache-sync.push.lock", "hf-cache-sync.watch.lock"] {
            assert_eq!(parse_repo_folder(name), None);
        }
    }

    #[test]
    fn blob_names() {
        assert!(is_blob_name(&"a".repeat(40)));
        assert!(is_blob_name(&"0".repeat(64)));
        assert!(!is_blob_name(&"A".repeat(40)));
        assert!(!is_blob_name(&"a".repeat(41)));
        assert!(!is_blob_name(&format!("{}.incomplete", "a".repeat(64))));
    }

    #[test]
    fn safe_paths() {
        assert!(is_safe_relative_path("config.json"));
        assert!(is_safe_relative_path("a/b/c.bin"));
        assert!(!is_safe_relative_path("/etc/passwd"));
        assert!(!is_safe_relative_path("../x"));
        assert!(!is_safe_relative_path("a/../../x"));
        assert!(!is_safe_relative_path("a//b"));
        assert!(!is_safe_relative_path("./a"));
        assert!(!is_safe_relative_path(""));
        assert!(!is_safe_relative_path("a/"));
        assert!(is_safe_ref_name("pr/1"));
        assert!(!is_safe_ref_name("..\\x"));
    }

    #[test]
    fn link_targets() {
        assert_eq!(
            snapshot_link_target("config.json", "e"),
            PathBuf::from("../../blobs/e")
        );
        assert_eq!(
            snapshot_link_target("a/b/w.bin", "e"),
            PathBuf::from("../../../../blobs/e")
        );
    }
}
