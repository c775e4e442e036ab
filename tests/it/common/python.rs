//! huggingface_hub's verdict on a cache: `tests/it/check_cache.py` run with the test venv's Python.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::cache::sha256_hex;

/// A file huggingface_hub must be able to load offline from the cache, with these bytes.
pub struct Download<'a> {
    pub repo_type: &'a str,
    pub repo_id: &'a str,
    /// A ref name (`main`, `pr/1`) or a commit hash.
    pub revision: &'a str,
    pub filename: &'a str,
    pub bytes: &'a [u8],
}

impl<'a> Download<'a> {
    pub fn model(repo_id: &'a str, revision: &'a str, filename: &'a str, bytes: &'a [u8]) -> Self {
        Download {
            repo_type: "model",
            repo_id,
            revision,
            filename,
            bytes,
        }
    }
}

fn python() -> PathBuf {
    match std::env::var_os("HFCS_TEST_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "\n\n*** HFCS_TEST_PYTHON is not set: run scripts/test.sh (it creates .venv-test with huggingface_hub) ***\n\n"
        ),
    }
}

/// Scans `cache` with `huggingface_hub.scan_cache_dir` (any warning fails the test) and loads each
/// download with `hf_hub_download(local_files_only=True)`. Returns the scan as JSON:
/// `{"repos": [{"repo_id", "repo_type", "size_on_disk", "nb_files", "last_accessed",
/// "last_modified", "revisions": [{"commit_hash", "refs", "nb_files", "size_on_disk",
/// "last_modified", "files"}]}], "size_on_disk", "incomplete": {"count", "size_on_disk"}}`
/// (times in seconds since the epoch).
#[track_caller]
pub fn check_cache(cache: &Path, downloads: &[Download<'_>]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/check_cache.py");
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = Command::new(python());
    cmd.env_clear()
        .env("HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .arg(&script)
        .arg(cache);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for d in downloads {
        cmd.arg("--download")
            .args([d.repo_type, d.repo_id, d.revision, d.filename])
            .arg(sha256_hex(d.bytes));
    }
    let out = cmd.output().expect("run check_cache.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "huggingface_hub does not accept the cache {}:\n{stderr}\n--- scan ---\n{stdout}",
        cache.display()
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("check_cache.py printed no JSON: {e}\n{stdout}"))
}

/// The scanned repo `repo_id` of `repo_type` in a [`check_cache`] result.
#[track_caller]
pub fn scanned_repo<'a>(scan: &'a Value, repo_type: &str, repo_id: &str) -> &'a Value {
    scan["repos"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo_id"] == repo_id && r["repo_type"] == repo_type)
        .unwrap_or_else(|| panic!("huggingface_hub does not see {repo_type} {repo_id} in {scan}"))
}

/// The scanned revision `commit` of a [`scanned_repo`].
#[track_caller]
pub fn scanned_revision<'a>(repo: &'a Value, commit: &str) -> &'a Value {
    repo["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["commit_hash"] == commit)
        .unwrap_or_else(|| panic!("huggingface_hub does not see revision {commit} in {repo}"))
}

/// A lock file held by another process through `filelock`, exactly as huggingface_hub holds
/// `.locks/<repo>/<etag>.lock` while it downloads a blob. Released when dropped.
pub struct LockHolder {
    child: std::process::Child,
}

const HOLD_LOCK: &str = "import sys, filelock\n\
lock = filelock.FileLock(sys.argv[1])\n\
lock.acquire()\n\
print('locked', flush=True)\n\
sys.stdin.read()\n";

/// Takes the lock at `path` in a Python process and returns once it is held.
#[track_caller]
pub fn hold_lock(path: &Path) -> LockHolder {
    use std::io::BufRead;
    use std::process::Stdio;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create lock dir");
    }
    let home = std::env::temp_dir();
    let mut child = Command::new(python())
        .env_clear()
        .env("HOME", home)
        .args(["-c", HOLD_LOCK])
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start python to hold a lock");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped stdout"))
        .read_line(&mut line)
        .expect("read from the lock holder");
    assert_eq!(
        line.trim(),
        "locked",
        "python could not take {}",
        path.display()
    );
    LockHolder { child }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hf cache ls --format json` of `cache`, as huggingface_hub's own CLI lists it (sizes as the
/// strings it prints).
pub fn hf_cache_ls(cache: &Path, args: &[&str]) -> Value {
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = Command::new(python());
    cmd.env_clear()
        .env("HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .args([
            "-c",
            "import sys\nfrom huggingface_hub.cli.hf import main\nsys.argv = ['hf'] + sys.argv[1:]\nmain()",
            "cache",
            "ls",
            "--format",
            "json",
            "--cache-dir",
        ])
        .arg(cache)
        .args(args);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let out = cmd.output().expect("run hf cache ls");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hf cache ls failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("hf cache ls: {e}\n{stdout}"))
}
