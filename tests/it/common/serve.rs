//! `serve` under test: the server started on a free loopback port (its address read from what
//! it prints), huggingface_hub run against it as a client would (`HF_ENDPOINT`, a fresh hub
//! cache), and a raw HTTP/1.1 client for what huggingface_hub does not ask (ranges, heads).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::cli::{Cli, Output, Running};
use super::python::python;
use super::Sandbox;

/// A sandbox with `org/m` at `main` holding one LFS file of `size` bytes (seeded by `name`)
/// pushed, and its bytes.
pub fn one_lfs_file_pushed(name: &str, size: usize) -> (Sandbox, Vec<u8>) {
    let big = super::cache::pseudo_random(name, size);
    let m = super::spec::RepoSpec::new("org/m")
        .rev(&super::commit_hash(name), &["main"])
        .lfs(super::fixtures::WEIGHTS, &big);
    let (t, _) = super::pushed_spec(name, m);
    (t, big)
}

/// `org/m` (one 2 MiB LFS file) pushed to the bucket and to a directory, then its blob in the
/// bucket overwritten with wrong bytes of the same size (the first byte flipped). Returns the
/// sandbox, the weights, and the directory as `--fallback` takes it.
pub fn corrupt_in_the_bucket_right_in_a_share(name: &str) -> (Sandbox, Vec<u8>, String) {
    let (t, big) = one_lfs_file_pushed(name, 2 * 1024 * 1024);
    let share = t.path("share");
    t.hfcs()
        .cache_dir(&t.cache("src"))
        .arg("push")
        .arg(format!("--remote={}", share.display()))
        .run()
        .success();
    let mut wrong = big.clone();
    wrong[0] ^= 1;
    t.bucket()
        .put(&super::blob_key(&super::sha256_hex(&big)), wrong);
    (t, big, share.display().to_string())
}

/// `snapshot_download("org/m")` through the server at `url` into `cache`, with `token` when
/// given: the snapshot it returns is `m`'s main, and the cache holds what `pull` writes.
#[track_caller]
pub fn snapshot_org_m(url: &str, cache: &Path, token: Option<&str>, m: &super::spec::RepoSpec) {
    let out = hf_client(
        url,
        cache,
        (token, false),
        SNAPSHOT,
        &["org/m", "model", ""],
    );
    assert!(out.ok().ends_with(m.commit("main")), "{out:?}");
    super::check_cache(cache, &m.downloads("main"));
}

/// A running `serve` and the URL clients reach it at.
pub struct Server {
    pub run: Running,
    pub url: String,
}

impl Server {
    /// `serve --listen 127.0.0.1:0 ARGS...` in the sandbox, once it says where it answers.
    #[track_caller]
    pub fn start(t: &Sandbox, args: &[&str]) -> Server {
        Server::start_with(t.hfcs(), args)
    }

    /// [`Server::start`] with the binary set up as `cli` says (its environment, config).
    #[track_caller]
    pub fn start_with(cli: Cli, args: &[&str]) -> Server {
        let mut run = cli
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .timeout(Duration::from_secs(600))
            .start();
        let Some(line) = run.wait_for_stderr("HF_ENDPOINT=", Duration::from_secs(60)) else {
            panic!("serve never said where it answers:\n{}", run.wait());
        };
        let url = line
            .split("HF_ENDPOINT=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("a URL after HF_ENDPOINT=")
            .to_string();
        Server { run, url }
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// SIGTERM, then what it printed and how it ended.
    #[track_caller]
    pub fn stop(self) -> Output {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.run.pid() as libc::pid_t, libc::SIGTERM) };
        self.run.wait()
    }
}

/// What a Python client printed and how it ended.
#[derive(Debug)]
pub struct PyOut {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl PyOut {
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "the client failed:\n{}\n--- stderr ---\n{}",
            self.stdout,
            self.stderr
        );
        self.stdout.trim()
    }
}

/// huggingface_hub as a client of `endpoint`, with `cache` as its hub cache: `code` run with
/// `args` (sys.argv[1:]), `HF_TOKEN` set to `token` when given. Xet stays enabled unless `xet`
/// is false (`HF_HUB_DISABLE_XET=1`): serve must keep clients off Xet either way.
pub fn hf_client(
    endpoint: &str,
    cache: &Path,
    (token, xet): (Option<&str>, bool),
    code: &str,
    args: &[&str],
) -> PyOut {
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = Command::new(python());
    cmd.env_clear()
        .env("HOME", home.path())
        .env("HF_ENDPOINT", endpoint)
        .env("HF_HUB_CACHE", cache)
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_UPDATE_CHECK", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .args(["-c", code])
        .args(args);
    if !xet {
        cmd.env("HF_HUB_DISABLE_XET", "1");
    }
    if let Some(t) = token {
        cmd.env("HF_TOKEN", t);
    }
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    let out = cmd.output().expect("run python");
    PyOut {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Prints the snapshot folder `snapshot_download(repo_id, repo_type, revision)` returns, or
/// `error: <exception class names, most derived first>: message` (exit 3).
pub const SNAPSHOT: &str = r#"
import sys
from huggingface_hub import snapshot_download
repo_id, repo_type, revision = sys.argv[1:4]
try:
    print(snapshot_download(repo_id=repo_id, repo_type=repo_type, revision=revision or None))
except Exception as e:
    print("error: " + ",".join(c.__name__ for c in type(e).__mro__) + ": " + str(e))
    sys.exit(3)
"#;

/// `hf_hub_download(repo_id, filename, repo_type, revision)`: the path, or the error as
/// [`SNAPSHOT`] prints it.
pub const DOWNLOAD: &str = r#"
import sys
from huggingface_hub import hf_hub_download
repo_id, repo_type, revision, filename = sys.argv[1:5]
try:
    print(hf_hub_download(repo_id, filename, repo_type=repo_type, revision=revision or None))
except Exception as e:
    print("error: " + ",".join(c.__name__ for c in type(e).__mro__) + ": " + str(e))
    sys.exit(3)
"#;

/// A raw HTTP answer.
#[derive(Debug)]
pub struct Raw {
    pub status: u16,
    /// Lowercase names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// `method path` on `addr` with `headers`, `Connection: close`, the whole answer read (a body cut
/// short is returned as far as it came).
pub fn raw(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> Raw {
    let mut s = TcpStream::connect(addr).expect("connect to serve");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("send the request");
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    parse(&all)
}

/// Splits an answer into status, headers and body.
pub fn parse(all: &[u8]) -> Raw {
    let end = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(all)));
    let head = String::from_utf8_lossy(&all[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Raw {
        status,
        headers,
        body: all[end + 4..].to_vec(),
    }
}
