//! Bucket locks (`locks/<kind>-<id>.json`): gc deletes nothing while a push writes, a push waits
//! for a gc, and a lock not refreshed for 30 minutes is ignored. Locks are planted as a killed or
//! remote run would leave them, with the refresh time written into their body.

use std::time::{Duration, SystemTime};

use crate::common::fault_proxy::{FaultProxy, HoldAt, Target};
use crate::common::resilience::config_via;
use crate::common::spec::RepoSpec;
use crate::common::{blob_key, commit_hash, manifest_key, random_hex, sha256_hex, Sandbox};

/// Plants a `kind` lock of a run on another host, last refreshed `refreshed_ago` ago; returns
/// its key.
fn plant_lock(t: &Sandbox, kind: &str, refreshed_ago: Duration) -> String {
    let key = format!("locks/{kind}-{}.json", random_hex(16));
    t.bucket().put(&key, lock_body(kind, refreshed_ago));
    key
}

fn lock_body(kind: &str, refreshed_ago: Duration) -> String {
    let refreshed = SystemTime::now() - refreshed_ago;
    let created = refreshed - Duration::from_secs(60);
    let command = if kind == "exclusive" {
        "hf-cache-sync gc --remote --yes"
    } else {
        "hf-cache-sync push"
    };
    format!(
        "{{\n  \"host\": \"node-7\",\n  \"pid\": 4242,\n  \"command\": \"{command}\",\n  \
         \"created\": \"{}\",\n  \"refreshed\": \"{}\"\n}}\n",
        humantime::format_rfc3339_seconds(created),
        humantime::format_rfc3339_seconds(refreshed)
    )
}

/// Pushes a repo, so the bucket has manifests for gc to read.
fn pushed(t: &Sandbox) {
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
}

/// A blob no manifest names; returns its key.
fn plant_garbage(t: &Sandbox) -> String {
    let body = format!("garbage {}", random_hex(8));
    let key = blob_key(&sha256_hex(body.as_bytes()));
    t.bucket().put(&key, body);
    key
}

/// Every `locks/` key, relative to the sandbox prefix.
fn locks(t: &Sandbox) -> Vec<String> {
    t.bucket()
        .keys()
        .into_iter()
        .filter(|k| k.starts_with("locks/"))
        .collect()
}

/// A repo with one LFS file and one small file, unique to this run.
fn repo(id: &str) -> RepoSpec {
    RepoSpec::new(id)
        .rev(&commit_hash(id), &["main"])
        .lfs(
            "weights.bin",
            format!("{id} weights {}", random_hex(16)).as_bytes(),
        )
        .file("config.json", format!("{{\"id\": \"{id}\"}}\n").as_bytes())
}

/// Every blob the revision's manifest names, and whether the bucket has it.
#[track_caller]
fn assert_manifest_blobs_exist(t: &Sandbox, spec: &RepoSpec) {
    let bucket = t.bucket();
    let manifest = bucket.manifest(&spec.repo_id, spec.commit("main"));
    for f in manifest["files"].as_array().expect("files") {
        let blob = f["blob"].as_str().unwrap();
        assert!(
            bucket.exists(&blob_key(blob)),
            "the manifest names blob {blob}, which is not in the bucket"
        );
    }
}

#[test]
fn gc_deletes_nothing_while_a_push_holds_a_fresh_lock_and_names_it() {
    let t = Sandbox::new("locks_fresh_push");
    pushed(&t);
    let garbage = plant_garbage(&t);
    let lock = plant_lock(&t, "shared", Duration::from_secs(90));
    let bucket = t.bucket();
    let before = bucket.keys();

    let out = t
        .hfcs()
        .args(["gc", "--remote", "--grace", "0s", "--yes"])
        .run()
        .code(1)
        .stderr_has("error: nothing deleted: another run is writing")
        .stderr_has(&lock)
        .stderr_has("`hf-cache-sync push` on node-7 (pid 4242)")
        // Planted 90 s before the gc starts: a slow machine may read it a second or two later.
        .stderr_has_any(&[
            "refreshed 1m 30s ago",
            "refreshed 1m 31s ago",
            "refreshed 1m 32s ago",
        ])
        .stderr_has("hint: run gc again once they have finished");
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(bucket.keys(), before, "gc deleted or left something\n{out}");
    assert!(bucket.exists(&garbage));

    // A dry run takes no lock, and says what a real run would meet.
    let out = t
        .hfcs()
        .json()
        .args(["gc", "--remote", "--grace", "0s", "--dry-run"])
        .run()
        .success()
        .stderr_has("a real run now would delete nothing")
        .stderr_has(&lock);
    assert_eq!(out.json()["objects"], 1, "{out}");
    assert_eq!(bucket.keys(), before);

    // Once the push is done (its lock gone), gc goes ahead and leaves no lock behind.
    bucket.delete(&lock);
    t.hfcs()
        .args(["gc", "--remote", "--grace", "0s", "--yes"])
        .run()
        .success();
    assert!(!bucket.exists(&garbage));
    assert_eq!(locks(&t), Vec::<String>::new());
}

#[test]
fn gc_passes_over_and_removes_a_stale_push_lock() {
    let t = Sandbox::new("locks_stale_push");
    pushed(&t);
    let garbage = plant_garbage(&t);
    let stale = plant_lock(&t, "shared", Duration::from_secs(31 * 60));
    let out = t
        .hfcs()
        .json()
        .args(["gc", "--remote", "--grace", "0s", "--yes"])
        .run()
        .success()
        .stderr_has("warning: removed a stale lock (not refreshed for 30m)")
        .stderr_has(&stale)
        // Planted 31 minutes before the gc starts: a slow machine may read it a second or two later.
        .stderr_has_any(&[
            "refreshed 31m ago",
            "refreshed 31m 1s ago",
            "refreshed 31m 2s ago",
        ]);
    let deleted: Vec<String> = out.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deleted, [format!("{}/{garbage}", t.prefix)], "{out}");
    assert_eq!(locks(&t), Vec::<String>::new());
}

#[test]
fn a_push_waits_for_a_gc_lock_then_gives_up_naming_it() {
    let t = Sandbox::new("locks_gc_held");
    let src = t.cache("src");
    let m = repo("org/waiting");
    m.write(&src);
    let gc_lock = plant_lock(&t, "exclusive", Duration::from_secs(20));

    let out = t
        .hfcs()
        .cache_dir(&src)
        .env("HF_CACHE_SYNC_LOCK_TIMEOUT", "2s")
        .arg("push")
        .run()
        .code(1)
        .stderr_has("waiting for a gc on")
        .stderr_has("error: gave up after 2s waiting for a gc on")
        .stderr_has(&gc_lock)
        .stderr_has("`hf-cache-sync gc --remote --yes` on node-7 (pid 4242)")
        .stderr_has("HF_CACHE_SYNC_LOCK_TIMEOUT")
        .stderr_has("delete that object");
    assert_eq!(t.bucket().keys(), vec![gc_lock.clone()], "{out}");

    // Waiting longer, it goes ahead once the gc's lock is gone.
    let mut push = t
        .hfcs()
        .cache_dir(&src)
        .env("HF_CACHE_SYNC_LOCK_TIMEOUT", "2m")
        .arg("push")
        .start();
    assert!(
        push.wait_for_stderr("waiting for a gc", Duration::from_secs(60))
            .is_some(),
        "the push waits"
    );
    t.bucket().delete(&gc_lock);
    push.wait().success();
    assert_manifest_blobs_exist(&t, &m);
    assert_eq!(locks(&t), Vec::<String>::new());
}

/// The bucket of [`pushed`], and `org/late` in a cache of its own whose every blob is already
/// in the bucket, unreferenced: left by an earlier, killed push, and old enough for gc.
fn late_with_blobs_left_behind(t: &Sandbox) -> (RepoSpec, std::path::PathBuf) {
    pushed(t);
    let src = t.cache("late");
    let late = repo("org/late");
    late.write(&src);
    let bucket = t.bucket();
    for f in late.revisions.iter().flat_map(|r| &r.files) {
        bucket.put(&blob_key(f.etag()), f.bytes.clone());
    }
    (late, src)
}

/// The race the locks close: a push finds an old, unreferenced blob in the bucket and skips it;
/// gc runs before the push's manifest lands. Without the locks, gc deletes the blob and the
/// manifest names a missing blob.
#[test]
fn gc_between_a_push_listing_and_its_manifest_keeps_what_the_push_skipped() {
    let t = Sandbox::new("locks_race_held");
    let (late, src) = late_with_blobs_left_behind(&t);
    let proxy = FaultProxy::new(&[]);
    let held = proxy.hold(HoldAt::First(Target::Path("PUT", "/manifests/")));
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let push = t.bare().config(&config).cache_dir(&src).arg("push").start();
    held.recv_timeout(Duration::from_secs(60))
        .expect("the push reaches its manifest");

    t.hfcs()
        .args(["gc", "--remote", "--grace", "0s", "--yes"])
        .run()
        .code(1)
        .stderr_has("nothing deleted")
        .stderr_has(" push` on ");
    proxy.release();
    push.wait().success();
    assert_manifest_blobs_exist(&t, &late);
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/late"])
        .run()
        .success();
    late.assert_pulled(&dst, "main");
    assert_eq!(locks(&t), Vec::<String>::new());
}

/// The other order: a gc under way holds the bucket; a push that starts meanwhile waits, then
/// lists again and uploads what the gc took.
#[test]
fn a_push_started_during_a_gc_uploads_what_the_gc_deleted() {
    let t = Sandbox::new("locks_race_gc_first");
    let (late, src) = late_with_blobs_left_behind(&t);
    // The gc is held at its delete request: it has planned to delete the push's blobs.
    let proxy = FaultProxy::new(&[]);
    let held = proxy.hold(HoldAt::First(Target::Path("POST", "delete")));
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let gc = t
        .bare()
        .config(&config)
        .args(["gc", "--remote", "--grace", "0s", "--yes"])
        .start();
    held.recv_timeout(Duration::from_secs(60))
        .expect("the gc reaches its delete");

    let mut push = t
        .hfcs()
        .cache_dir(&src)
        .env("HF_CACHE_SYNC_LOCK_TIMEOUT", "2m")
        .arg("push")
        .start();
    assert!(
        push.wait_for_stderr("waiting for a gc", Duration::from_secs(60))
            .is_some(),
        "the push waits for the gc"
    );
    proxy.release();
    gc.wait().success();
    push.wait().success();
    assert_manifest_blobs_exist(&t, &late);
    assert_eq!(locks(&t), Vec::<String>::new());
}

/// gc and push started together, again and again: whichever wins, no manifest names a missing
/// blob.
#[test]
fn gc_and_push_started_together_never_publish_a_missing_blob() {
    let t = Sandbox::new("locks_race_free");
    pushed(&t);
    for round in 0..3 {
        let src = t.cache(&format!("src{round}"));
        let spec = repo(&format!("org/round{round}"));
        spec.write(&src);
        let bucket = t.bucket();
        for f in spec.revisions.iter().flat_map(|r| &r.files) {
            bucket.put(&blob_key(f.etag()), f.bytes.clone());
        }
        let push = t
            .hfcs()
            .cache_dir(&src)
            .env("HF_CACHE_SYNC_LOCK_TIMEOUT", "2m")
            .arg("push")
            .start();
        let gc = t
            .hfcs()
            .args(["gc", "--remote", "--grace", "0s", "--yes"])
            .start();
        let gc = gc.wait();
        assert!(
            gc.code == Some(0) || gc.stderr.contains("nothing deleted"),
            "{gc}"
        );
        push.wait().success();
        assert_manifest_blobs_exist(&t, &spec);
    }
    assert_eq!(locks(&t), Vec::<String>::new());
    assert!(
        t.bucket()
            .keys()
            .iter()
            .any(|k| k == &manifest_key("org/round2", &commit_hash("org/round2"))),
        "every round published"
    );
}

#[test]
fn a_directory_remote_keeps_its_locks_as_files() {
    let t = Sandbox::local("locks_dir");
    let remote = t.cache("remote");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let garbage = remote.join(blob_key(&sha256_hex(b"garbage")));
    std::fs::write(&garbage, b"garbage").unwrap();
    let lock = remote.join(format!("locks/shared-{}.json", random_hex(16)));
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    std::fs::write(&lock, lock_body("shared", Duration::from_secs(5))).unwrap();

    t.hfcs()
        .args(["gc", "--remote", "--grace", "0s", "--yes"])
        .run()
        .code(1)
        .stderr_has("nothing deleted")
        .stderr_has("node-7");
    assert!(garbage.exists());
    // A lock is no repo to the catalog's readers.
    let out = t.hfcs().args(["list", "--remote", "-q"]).run().success();
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    assert!(
        out.stdout.contains("org/m") && !out.stdout.contains("lock"),
        "{out}"
    );

    std::fs::remove_file(&lock).unwrap();
    t.hfcs()
        .args(["gc", "--remote", "--grace", "0s", "--yes"])
        .run()
        .success();
    assert!(!garbage.exists());
    let left: Vec<_> = std::fs::read_dir(remote.join("locks")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Ctrl-C while a push holds its lock: the run ends at once and removes the lock on its way out.
#[test]
fn an_interrupted_push_removes_its_lock() {
    let t = Sandbox::new("locks_ctrl_c");
    let src = t.cache("src");
    repo("org/cut").write(&src);
    let proxy = FaultProxy::new(&[]);
    let held = proxy.hold(HoldAt::First(Target::Path("PUT", "/manifests/")));
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let mut push = t.bare().config(&config).cache_dir(&src).arg("push").start();
    held.recv_timeout(Duration::from_secs(60))
        .expect("the push reaches its manifest");
    assert_eq!(locks(&t).len(), 1, "the push holds a lock");
    // SAFETY: kill only sends a signal to our own child, still running.
    assert_eq!(
        unsafe { libc::kill(push.pid() as libc::pid_t, libc::SIGINT) },
        0
    );
    // Its lock's removal goes through the proxy too, once the held requests are let go.
    assert!(
        push.wait_for_stderr("interrupted", Duration::from_secs(30))
            .is_some(),
        "the push says it was interrupted"
    );
    proxy.release();
    push.wait().code(130);
    assert_eq!(locks(&t), Vec::<String>::new());
}
