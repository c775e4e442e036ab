//! `watch`: a repo written into the cache the way huggingface_hub writes it (under the blob
//! lock: a partial file, a rename into `blobs/`, then the snapshot links) reaches the bucket; a
//! partial download is never uploaded, nor a revision whose downloads are still going on; a manual
//! push waits for the watch's push; SIGINT and SIGTERM end it cleanly.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::cli::Running;
use crate::common::fault_proxy::{FaultProxy, HoldAt, Target};
use crate::common::resilience::{assert_bucket_consistent, config_via};
use crate::common::spec::{self, FileSpec, RepoSpec};
use crate::common::{assert_cache_tidy, blob_key, hold_lock, manifest_key, Sandbox};

/// The repo the tests download: a config and a weights file.
fn repo() -> RepoSpec {
    RepoSpec::two_revisions("org/watched")
}

/// Starts `watch` on `cache` with a short debounce and waits until it watches.
fn start_watch(t: &Sandbox, config: &Path, cache: &Path) -> Running {
    let mut watch = t
        .bare()
        .config(config)
        .cache_dir(cache)
        .args(["watch", "--debounce", "0.3"])
        .timeout(Duration::from_secs(120))
        .start();
    assert!(
        watch
            .wait_for_stderr("watching", Duration::from_secs(30))
            .is_some(),
        "watch did not start"
    );
    watch
}

fn signal(run: &Running, sig: libc::c_int) {
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(run.pid() as libc::pid_t, sig) }, 0);
}

/// One file downloaded as huggingface_hub does it: under `.locks/<repo>/<etag>.lock`, the bytes
/// go to `blobs/<etag>.<8 hex>.incomplete`, which is renamed to `blobs/<etag>`; then the snapshot
/// link is made. `midway` runs while half the bytes are written and the lock is held.
fn download(cache: &Path, repo: &RepoSpec, commit: &str, file: &FileSpec, midway: impl FnOnce()) {
    let dir = repo.dir(cache);
    let etag = file.etag();
    let lock = hold_lock(
        &cache
            .join(".locks")
            .join(dir.file_name().unwrap())
            .join(format!("{etag}.lock")),
    );
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    let blob = dir.join("blobs").join(etag);
    if !blob.exists() {
        let partial = dir
            .join("blobs")
            .join(format!("{etag}.0a1b2c3d.incomplete"));
        let mut f = std::fs::File::create(&partial).unwrap();
        let half = file.bytes.len() / 2;
        f.write_all(&file.bytes[..half]).unwrap();
        f.flush().unwrap();
        midway();
        f.write_all(&file.bytes[half..]).unwrap();
        drop(f);
        std::fs::rename(&partial, &blob).unwrap();
    } else {
        midway();
    }
    let link = dir.join("snapshots").join(commit).join(&file.path);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    let target = crate::common::cache::snapshot_link_target(&file.path, etag);
    std::os::unix::fs::symlink(target, &link).unwrap();
    drop(lock);
}

/// Writes `refs/<name>`, as huggingface_hub does before it downloads the files.
fn write_ref(cache: &Path, repo: &RepoSpec, name: &str, commit: &str) {
    let path = repo.dir(cache).join("refs").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, commit).unwrap();
}

/// Waits until `cond` holds, polling.
#[track_caller]
fn eventually(what: &str, within: Duration, cond: impl Fn() -> bool) {
    let until = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_download_reaches_the_bucket_and_a_partial_one_never_does() {
    let t = Sandbox::new("watch_download");
    let cache = t.cache("hub");
    let bucket = t.bucket();
    let mut watch = start_watch(&t, &t.config_path(), &cache);
    let m = repo();
    let rev = m.revision("main");
    write_ref(&cache, &m, "main", &rev.commit);
    let config = rev.file(crate::common::fixtures::CONFIG);
    let weights = rev.file(crate::common::fixtures::WEIGHTS);
    // Two downloads at once, as huggingface_hub's workers run them: the config completes while
    // half the weights are written, and the weights stay so well past the debounce. Neither the
    // partial file nor the revision (whose config is complete) may reach the bucket.
    download(&cache, &m, &rev.commit, weights, || {
        download(&cache, &m, &rev.commit, config, || {});
        std::thread::sleep(Duration::from_secs(3));
        let keys = bucket.keys();
        assert!(!keys.contains(&blob_key(weights.etag())), "{keys:?}");
        assert!(
            !keys.iter().any(|k| k.starts_with("manifests/")),
            "a revision half downloaded was published: {keys:?}"
        );
    });
    let tokenizer = rev.file(crate::common::fixtures::TOKENIZER);
    download(&cache, &m, &rev.commit, tokenizer, || {});

    let wanted = [
        blob_key(config.etag()),
        blob_key(weights.etag()),
        blob_key(tokenizer.etag()),
        manifest_key(&m.repo_id, &rev.commit),
        crate::common::ref_key(&m.repo_id, "main"),
    ];
    eventually(
        "the revision is in the bucket",
        Duration::from_secs(60),
        || {
            let keys = bucket.keys();
            wanted.iter().all(|k| keys.contains(k))
        },
    );
    assert!(watch
        .wait_for_stderr("pushed", Duration::from_secs(10))
        .is_some());
    assert_bucket_consistent(&bucket);
    let manifest = bucket.manifest(&m.repo_id, &rev.commit);
    assert_eq!(manifest["files"].as_array().unwrap().len(), 3, "{manifest}");

    // What the bucket got, another machine pulls whole.
    let other = t.cache("other");
    t.hfcs()
        .cache_dir(&other)
        .args(["pull", &m.repo_id])
        .run()
        .success();
    m.assert_pulled(&other, "main");

    signal(&watch, libc::SIGINT);
    let out = watch.wait().success();
    assert!(out.stderr.contains("stopped watching"), "{out}");
    assert_cache_tidy(&cache);
}

/// A watch of a cache holding [`repo`], talking to the bucket through a proxy that holds its
/// first upload: the watch is in the middle of its first push when this returns.
struct HeldWatch {
    t: Sandbox,
    cache: PathBuf,
    m: RepoSpec,
    proxy: FaultProxy,
    watch: Running,
}

fn watch_held_at_first_upload(name: &str) -> HeldWatch {
    let t = Sandbox::new(name);
    let cache = t.cache("hub");
    let m = repo();
    spec::write_all(std::slice::from_ref(&m), &cache);
    let proxy = FaultProxy::new(&[]);
    let via = config_via(&t, "via.yaml", proxy.url(), &t.prefix);
    let held = proxy.hold(HoldAt::First(Target::BlobPut));
    let watch = start_watch(&t, &via, &cache);
    held.recv_timeout(Duration::from_secs(60))
        .expect("the watch pushes what the bucket lacks");
    HeldWatch {
        t,
        cache,
        m,
        proxy,
        watch,
    }
}

#[test]
fn a_push_waits_for_the_watch_and_signals_let_the_push_in_flight_finish() {
    let HeldWatch {
        t,
        cache,
        m,
        proxy,
        mut watch,
    } = watch_held_at_first_upload("watch_push_waits");

    let mut push = t.hfcs().json().cache_dir(&cache).arg("push").start();
    assert!(
        push.wait_for_stderr("waiting for", Duration::from_secs(30))
            .is_some(),
        "a manual push waits for the watch's push"
    );
    assert!(push.is_running());

    // SIGTERM while the push is in flight: it finishes, then the watch ends with 0.
    signal(&watch, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(500));
    assert!(watch.is_running(), "the push in flight is let finish");
    proxy.release();
    let out = watch.wait().success();
    assert!(out.stderr.contains("stopped watching"), "{out}");
    let pushed = push.wait().success();
    let summary = pushed.json();
    assert_eq!(
        summary["uploaded"], 0,
        "the watch uploaded everything\n{pushed}"
    );
    let state = assert_bucket_consistent(&t.bucket());
    assert_eq!(state.blobs.len(), m.etags().len());
    assert_cache_tidy(&cache);
}

#[test]
fn a_second_signal_abandons_the_push_in_flight_cleanly() {
    let HeldWatch {
        t,
        cache,
        proxy,
        watch,
        ..
    } = watch_held_at_first_upload("watch_abandon");
    signal(&watch, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(300));
    signal(&watch, libc::SIGINT);
    let out = watch.wait().code(130);
    assert!(out.stderr.contains("interrupted"), "{out}");
    proxy.release();
    proxy.wait_idle();
    // Nothing published without its blobs.
    let bucket = t.bucket();
    assert!(!bucket.keys().iter().any(|k| k.starts_with("manifests/")));
    assert_bucket_consistent(&bucket);
    assert_cache_tidy(&cache);
}

#[test]
fn bad_input_is_refused() {
    let t = Sandbox::new("watch_bad");
    let cache = t.cache("hub");
    let missing = t.path("no-such-cache");
    t.hfcs()
        .cache_dir(&missing)
        .arg("watch")
        .run()
        .code(2)
        .stderr_has(&missing.display().to_string())
        .stderr_has("hint:");
    assert!(!missing.exists(), "nothing is created");
    t.hfcs()
        .cache_dir(&cache)
        .args(["watch", "--debounce", "soon"])
        .run()
        .code(2)
        .stderr_has("not a number of seconds");

    // One watch a cache.
    let mut first = start_watch(&t, &t.config_path(), &cache);
    t.hfcs()
        .cache_dir(&cache)
        .arg("watch")
        .run()
        .code(2)
        .stderr_has("another watch is already watching");
    assert!(first.is_running());
    signal(&first, libc::SIGTERM);
    first.wait().success();
    // Bad credentials end the watch with what to fix.
    let yaml = t.garage_yaml(crate::common::Key::ReadWrite).replace(
        &t.garage().secret_key,
        &"0".repeat(t.garage().secret_key.len()),
    );
    let bad = t.path("bad.yaml");
    std::fs::write(&bad, yaml).unwrap();
    spec::write_all(std::slice::from_ref(&repo()), &cache);
    t.bare()
        .config(&bad)
        .cache_dir(&cache)
        .arg("watch")
        .run()
        .failure()
        .stderr_has("hint:");
    assert_cache_tidy(&cache);
}
