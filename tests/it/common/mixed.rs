//! A cache with every shape `status`, `list` and `diff` must account for: revisions sharing
//! blobs, a detached revision, `refs/pr/N`, a shared-store blob, a snapshot of copies, an orphaned
//! blob, partial downloads (one stale) and, on request, a broken link.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::cache::{commit_hash, git_sha1_hex, pseudo_random, sha256_hex};
use super::fixtures::{CONFIG, WEIGHTS};
use super::spec::{write_all, RepoSpec};

pub const DAY: Duration = Duration::from_secs(86400);

/// The bytes of a blob in org/m that no revision uses any more.
pub const ORPHAN: &[u8] = b"bytes of a blob no revision uses any more";
/// A partial download in org/m, two days old.
pub const STALE_PARTIAL: [u8; 3000] = [7; 3000];
/// A partial download in org/m, just written.
pub const FRESH_PARTIAL: [u8; 500] = [8; 500];

/// `days` days ago.
pub fn days_ago(days: u64) -> SystemTime {
    SystemTime::now() - DAY * days as u32
}

/// Sets a file's (or folder's) access and modification times, following links.
#[track_caller]
pub fn set_times(path: &Path, accessed: SystemTime, modified: SystemTime) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_times(
        fs::FileTimes::new()
            .set_accessed(accessed)
            .set_modified(modified),
    )
    .unwrap_or_else(|e| panic!("set times of {}: {e}", path.display()));
}

/// Writes into `cache`, and returns, `[org/m, org/d, other/n]`:
///
/// ```text
/// model   org/m    a (v1.0), b (main): RepoSpec::two_revisions; d: detached, shares the weights
///                  + an orphaned blob, a stale partial download and a fresh one
/// dataset org/d    e (main): data.csv in the shared store, README.md
///                  f (pr/1): data.csv, extra.txt
/// model   other/n  g (main): a snapshot of copies (no symlinks, empty blobs/)
/// ```
pub fn write(cache: &Path) -> [RepoSpec; 3] {
    let m = RepoSpec::two_revisions("org/m");
    let weights = m.revision("main").file(WEIGHTS).bytes.clone();
    let m = m
        .rev(&commit_hash("org/m d"), &[])
        .file(CONFIG, b"{\"model\": \"org/m\", \"hidden_size\": 256}\n")
        .lfs(WEIGHTS, &weights);
    let data = pseudo_random("org/d data", 50 * 1024);
    let d = RepoSpec::dataset("org/d")
        .rev(&commit_hash("org/d e"), &["main"])
        .lfs("data.csv", &data)
        .shared_store()
        .file("README.md", b"# a dataset\n")
        .rev(&commit_hash("org/d f"), &["pr/1"])
        .lfs("data.csv", &data)
        .file("extra.txt", b"one more file\n");
    let n = RepoSpec::new("other/n")
        .rev(&commit_hash("other/n g"), &["main"])
        .copies()
        .file("config.json", b"{\"model\": \"other/n\"}\n")
        .lfs("model.bin", &pseudo_random("other/n model", 20 * 1024));
    let repos = [m, d, n];
    write_all(&repos, cache);

    let view = repos[0].view(cache);
    fs::write(view.blob(&git_sha1_hex(ORPHAN)), ORPHAN).unwrap();
    let stale = view.blob(&format!("{}.0123abcd.incomplete", sha256_hex(b"stale")));
    fs::write(&stale, STALE_PARTIAL).unwrap();
    set_times(&stale, days_ago(2), days_ago(2));
    let fresh = view.blob(&format!("{}.incomplete", sha256_hex(b"fresh")));
    fs::write(&fresh, FRESH_PARTIAL).unwrap();
    repos
}

/// Gives every blob of `repo` in `cache` (orphans included, partial downloads not) and every copy
/// in its snapshots these times: its last access and modification as `list` reports them. A
/// shared-store blob is reached through its link.
pub fn age(cache: &Path, repo: &RepoSpec, accessed: SystemTime, modified: SystemTime) {
    let dir = repo.dir(cache);
    for name in super::files_under(&dir.join("blobs")) {
        if !name.ends_with(".incomplete") {
            set_times(&dir.join("blobs").join(name), accessed, modified);
        }
    }
    let snapshots = dir.join("snapshots");
    for rel in super::files_under(&snapshots) {
        let path = snapshots.join(rel);
        if path.symlink_metadata().unwrap().file_type().is_file() {
            set_times(&path, accessed, modified);
        }
    }
}

/// Adds `model org/broken` whose revision `h` (ref main) has one good file and one link whose
/// blob is gone. huggingface_hub calls such a cache corrupted, so cross-checks come first.
pub fn add_broken_link(cache: &Path) -> String {
    let (h, blob) = add_repo_to_break(cache);
    fs::remove_file(blob).unwrap();
    h
}

/// `model org/broken` intact: its revision `h` and the blob whose removal breaks a link.
pub fn add_repo_to_break(cache: &Path) -> (String, PathBuf) {
    let broken = RepoSpec::new("org/broken")
        .rev(&commit_hash("org/broken h"), &["main"])
        .file("ok.txt", b"fine\n")
        .file("gone.bin", b"deleted by hand\n");
    broken.write(cache);
    let blob = broken
        .view(cache)
        .blob(broken.revision("main").file("gone.bin").etag());
    (broken.commit("main").to_string(), blob)
}
