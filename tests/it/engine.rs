//! The transfer engine under every command: blobs move concurrently whatever the backend, a
//! fatal error stops a run at once with one message, and throttling is retried as long as the
//! S3 tools users compare us with retry it.

use std::fs;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::cache::pseudo_random;
use crate::common::fault_proxy::{Fault, FaultProxy, Rule, Schedule, Target};
use crate::common::resilience::config_via;
use crate::common::{
    blob_key, check_cache, commit_hash, count, sha256_hex, CacheBuilder, CacheView, Sandbox,
};

/// `n` LFS files of a few KiB in one revision of `repo_id`, written into `cache`; returns
/// `(path, bytes)` of each.
fn many_files(cache: &Path, repo_id: &str, commit: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let files: Vec<(String, Vec<u8>)> = (0..n)
        .map(|i| {
            let bytes = pseudo_random(&format!("{repo_id} shard {i}"), 4096 + i * 512);
            (format!("shard-{i:02}.bin"), bytes)
        })
        .collect();
    let mut b = CacheBuilder::new(cache).repo(repo_id).rev(commit);
    for (path, bytes) in &files {
        b = b.lfs_file(path, bytes);
    }
    b.ref_("main", commit);
    files
}

/// Makes `path` a named pipe: whoever opens it for reading waits until the test writes.
fn make_fifo(path: &Path) {
    fs::remove_file(path).expect("remove the remote blob");
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the node.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(r, 0, "mkfifo {}", std::io::Error::last_os_error());
}

#[test]
fn a_directory_remote_moves_blobs_concurrently() {
    const N: usize = 6;
    let t = Sandbox::local("engine_dir_concurrent");
    let (src, remote, dst) = (t.cache("src"), t.cache("remote"), t.cache("dst"));
    let commit = commit_hash("engine concurrent");
    let files = many_files(&src, "org/many", &commit, N);
    t.bare()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .success();
    // Each remote blob becomes a pipe: a download that opens one waits until the test writes
    // into it. The test writes only once every blob has a reader, so the pull finishes only if
    // all of them are in flight at the same time.
    let pipes: Vec<(std::path::PathBuf, &Vec<u8>)> = files
        .iter()
        .map(|(_, bytes)| (remote.join(blob_key(&sha256_hex(bytes))), bytes))
        .collect();
    for (pipe, _) in &pipes {
        make_fifo(pipe);
    }
    let mut pull = t
        .bare()
        .cache_dir(&dst)
        .args(["pull", "org/many", "--workers", "8", "--remote"])
        .arg(&remote)
        .timeout(Duration::from_secs(30))
        .start();
    let mut writers: Vec<Option<fs::File>> = (0..N).map(|_| None).collect();
    let until = Instant::now() + Duration::from_secs(20);
    while writers.iter().any(Option::is_none) && Instant::now() < until && pull.is_running() {
        for (slot, (pipe, _)) in writers.iter_mut().zip(&pipes) {
            if slot.is_none() {
                // Opening a pipe for writing without blocking succeeds only while a reader has
                // it open.
                *slot = fs::OpenOptions::new()
                    .write(true)
                    .custom_flags(libc::O_NONBLOCK)
                    .open(pipe)
                    .ok();
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let in_flight = writers.iter().filter(|w| w.is_some()).count();
    if in_flight < N {
        // Let the stuck reader finish so the pull can be reaped, then fail.
        drop(writers);
        let out = pull.wait();
        panic!("only {in_flight} of {N} blob downloads were in flight at once\n{out}");
    }
    for (w, (_, bytes)) in writers.into_iter().zip(&pipes) {
        let mut w = w.expect("opened");
        // The pipe is non-blocking for us: write all of it, waiting while the reader drains.
        let mut rest: &[u8] = bytes;
        while !rest.is_empty() {
            match std::io::Write::write(&mut w, rest) {
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("write into the pipe: {e}"),
            }
        }
    }
    pull.wait().success();
    let view = CacheView::model(&dst, "org/many");
    for (path, bytes) in &files {
        view.assert_linked_file(&commit, path, &sha256_hex(bytes), bytes);
    }
    check_cache(&dst, &[]);
}

/// A config for the test server whose secret key is wrong.
fn rejected_key_config(t: &Sandbox) -> std::path::PathBuf {
    let g = t.garage();
    let yaml = t.garage_yaml(crate::common::Key::ReadWrite);
    assert!(yaml.contains(&g.secret_key), "{yaml}");
    let path = t.path("rejected.yaml");
    fs::write(&path, yaml.replace(&g.secret_key, &"0".repeat(64))).unwrap();
    fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    path
}

#[test]
fn verify_repair_stops_at_rejected_credentials_with_one_message() {
    let t = Sandbox::new("engine_repair_fatal");
    let cache = t.cache("c");
    let commit = commit_hash("engine repair");
    let files = many_files(&cache, "org/broken", &commit, 5);
    t.hfcs().cache_dir(&cache).arg("push").run().success();
    // Every blob corrupt, sizes kept.
    for (_, bytes) in &files {
        let blob = CacheView::model(&cache, "org/broken").blob(&sha256_hex(bytes));
        fs::remove_file(&blob).unwrap();
        fs::write(&blob, vec![b'x'; bytes.len()]).unwrap();
    }
    let config = rejected_key_config(&t);
    let out = t
        .bare()
        .config(&config)
        .cache_dir(&cache)
        .args(["verify", "--repair"])
        .run()
        .code(2)
        .stderr_has("credentials rejected");
    assert_eq!(
        out.stderr.matches("credentials rejected").count(),
        1,
        "one message, not one per blob\n{out}"
    );
    assert!(!out.stdout.contains("not repaired"), "{out}");
    // Nothing was touched: the corrupt blobs are still there to repair with a good key.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["verify", "--repair"])
        .run()
        .success();
    assert_eq!(
        out.json()["repaired"].as_array().map(Vec::len),
        Some(5),
        "{out}"
    );
    check_cache(&cache, &[]);
}

/// A sandbox whose cache holds a pushed repo, and the proxied config for `proxy`.
fn pushed_via(t: &Sandbox, proxy: &FaultProxy) -> (std::path::PathBuf, Vec<(String, Vec<u8>)>) {
    let src = t.cache("src");
    let files = many_files(&src, "org/throttled", &commit_hash("engine throttled"), 3);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    (config_via(t, "proxied.yaml", proxy.url(), &t.prefix), files)
}

/// Pulls the pushed repo into a new cache with `config` (through the proxy): every blob is
/// downloaded and the cache is one huggingface_hub accepts.
#[track_caller]
fn pull_through(t: &Sandbox, config: &Path, blobs: usize) {
    let dst = t.cache("dst");
    let out = t
        .bare()
        .json()
        .config(config)
        .cache_dir(&dst)
        .args(["pull", "org/throttled"])
        .timeout(Duration::from_secs(120))
        .run()
        .success();
    assert_eq!(count(&out.json(), "downloaded"), blobs as u64, "{out}");
    check_cache(&dst, &[]);
}

#[test]
fn ten_throttling_answers_in_a_row_are_retried() {
    let t = Sandbox::new("engine_ten_503");
    let proxy = FaultProxy::new(&[Rule::new(Fault::SlowDown, Target::Any, Schedule::First(10))]);
    let (config, files) = pushed_via(&t, &proxy);
    pull_through(&t, &config, files.len());
    assert_eq!(proxy.injected(Fault::SlowDown), 10, "{}", proxy.summary());
}

#[test]
fn answers_cut_short_are_retried() {
    let t = Sandbox::new("engine_cut_short");
    let proxy = FaultProxy::new(&[
        // A ref, the blob LIST of a push, a manifest: each cut off before its Content-Length.
        Rule::new(
            Fault::Truncate,
            Target::Path("GET", "/refs/"),
            Schedule::First(3),
        ),
        Rule::new(
            Fault::Truncate,
            Target::Path("GET", "/manifests/"),
            Schedule::First(3),
        ),
        Rule::new(
            Fault::Truncate,
            Target::Path("GET", "list-type=2"),
            Schedule::First(3),
        ),
    ]);
    let (config, files) = pushed_via(&t, &proxy);
    pull_through(&t, &config, files.len());
    let src = t.cache("src");
    t.bare()
        .config(&config)
        .cache_dir(&src)
        .arg("push")
        .run()
        .success();
    assert!(proxy.injected(Fault::Truncate) >= 6, "{}", proxy.summary());
}
