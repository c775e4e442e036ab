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

pub fn python() -> PathBuf {
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

const SNAPSHOT_OFFLINE: &str = r#"
import sys
from huggingface_hub import snapshot_download
try:
    print(snapshot_download(repo_id=sys.argv[2], repo_type=sys.argv[3], revision=sys.argv[4],
                            cache_dir=sys.argv[1], local_files_only=True))
except Exception as e:
    print(type(e).__name__ + ": " + str(e))
    sys.exit(3)
"#;

/// `snapshot_download(..., local_files_only=True)` on `cache`: the snapshot folder it returns,
/// or `ErrorType: message` when it raises.
pub fn snapshot_download_offline(
    cache: &Path,
    repo_type: &str,
    repo_id: &str,
    revision: &str,
) -> Result<String, String> {
    let home = tempfile::tempdir().expect("temp home");
    let out = Command::new(python())
        .env_clear()
        .env("HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .args(["-c", SNAPSHOT_OFFLINE])
        .arg(cache)
        .args([repo_id, repo_type, revision])
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match out.status.code() {
        Some(0) => Ok(stdout),
        Some(3) => Err(stdout),
        _ => panic!(
            "snapshot_download crashed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// `hf cache verify REPO --repo-type TYPE --revision REV --cache-dir CACHE --fail-on-missing-files
/// --fail-on-extra-files` against the Hub at `endpoint`: exit code and output.
pub fn hf_cache_verify(
    cache: &Path,
    repo_type: &str,
    repo_id: &str,
    revision: &str,
    endpoint: &str,
    token: Option<&str>,
) -> (Option<i32>, String) {
    let hf = python().with_file_name("hf");
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = Command::new(hf);
    cmd.env_clear()
        .env("HOME", home.path())
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_UPDATE_CHECK", "1")
        .args([
            "cache",
            "verify",
            repo_id,
            "--repo-type",
            repo_type,
            "--revision",
            revision,
            "--cache-dir",
        ])
        .arg(cache)
        .args(["--fail-on-missing-files", "--fail-on-extra-files"]);
    if let Some(t) = token {
        cmd.env("HF_TOKEN", t);
    }
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let out = cmd.output().expect("run hf cache verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// `hf cache verify` (huggingface_hub's own checksum check) passes for every revision of `repos`
/// in `cache`: each file of the snapshot hashes to what the Hub lists, none is missing, none is
/// extra. The Hub stand-in serves the specs' tree listings.
#[track_caller]
pub fn hf_cache_verify_specs(cache: &Path, repos: &[&super::spec::RepoSpec]) {
    use super::hub::{HubRepo, HubStandIn};
    let hub_repos: Vec<HubRepo> = repos.iter().map(|r| HubRepo::from_spec(r)).collect();
    let hub = HubStandIn::start(hub_repos, 100);
    for repo in repos {
        for rev in &repo.revisions {
            let (code, text) = hf_cache_verify(
                cache,
                repo.repo_type,
                &repo.repo_id,
                &rev.commit,
                &hub.url(),
                None,
            );
            assert_eq!(
                code,
                Some(0),
                "`hf cache verify` fails on {} in {}:\n{text}",
                repo.repo_id,
                cache.display()
            );
        }
    }
}

/// The test venv's `bin/` folder: `hf`, `actionlint`, `shellcheck`.
pub fn venv_bin() -> PathBuf {
    python()
        .parent()
        .expect("the venv python is in bin/")
        .to_path_buf()
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

/// `hf download REPO [FILES...] --local-dir DIR --quiet` with huggingface_hub's own CLI, the
/// hub cache at `cache`: offline (`HF_HUB_OFFLINE=1`) without `endpoint`, else against the Hub
/// at `endpoint`. Exit code, stdout (the path it returns), stderr.
pub fn hf_download_local_dir(
    cache: &Path,
    local_dir: &Path,
    args: &[&str],
    endpoint: Option<&str>,
) -> (Option<i32>, String, String) {
    let hf = python().with_file_name("hf");
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = Command::new(hf);
    cmd.env_clear()
        .env("HOME", home.path())
        .env("HF_HUB_CACHE", cache)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_UPDATE_CHECK", "1")
        .arg("download")
        .args(args)
        .arg("--local-dir")
        .arg(local_dir)
        .arg("--quiet");
    match endpoint {
        Some(url) => cmd.env("HF_ENDPOINT", url),
        None => cmd.env("HF_HUB_OFFLINE", "1"),
    };
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let out = cmd.output().expect("run hf download");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const LOCAL_DIR_OFFLINE: &str = r#"
import io, json, logging, sys
from pathlib import Path
from huggingface_hub import hf_hub_download
from huggingface_hub._local_folder import read_download_metadata
repo_id, repo_type, commit, local_dir = sys.argv[1:5]
log = io.StringIO()
logger = logging.getLogger("huggingface_hub")
logger.addHandler(logging.StreamHandler(log))
logger.setLevel(logging.INFO)
files = {}
for name in sys.argv[5:]:
    meta = read_download_metadata(Path(local_dir), name)
    path = hf_hub_download(repo_id, name, repo_type=repo_type, revision=commit, local_dir=local_dir)
    files[name] = {
        "path": path,
        "metadata": None if meta is None else {"commit": meta.commit_hash, "etag": meta.etag},
    }
print(json.dumps({"files": files, "log": log.getvalue()}))
"#;

/// How huggingface_hub sees each of `files` in a local dir offline: the metadata it reads for
/// it (`null` when it does not trust any) and the path `hf_hub_download(revision=commit,
/// local_dir=DIR)` returns, plus everything it logged, as
/// `{"files": {"<name>": {"path", "metadata": {"commit", "etag"}}}, "log"}`.
#[track_caller]
pub fn local_dir_offline(
    repo_type: &str,
    repo_id: &str,
    commit: &str,
    local_dir: &Path,
    files: &[&str],
) -> Value {
    let home = tempfile::tempdir().expect("temp home");
    let out = Command::new(python())
        .env_clear()
        .env("HOME", home.path())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .args(["-c", LOCAL_DIR_OFFLINE, repo_id, repo_type, commit])
        .arg(local_dir)
        .args(files)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "hf_hub_download(local_dir=...) fails offline:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("no JSON: {e}\n{stdout}"))
}
