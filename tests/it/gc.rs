//! `gc --remote` and `prune --remote --detached`: the bucket's lifecycle. Garbage is planted
//! fresh, so "older than the grace period" is had with `--grace 0s` / `--older-than 0s`: the
//! test server's LastModified cannot be backdated.

use serde_json::Value;

use crate::common::fault_proxy::{Fault, FaultProxy, HoldAt, Rule, Schedule, Target};
use crate::common::resilience::config_via;
use crate::common::spec::RepoSpec;
use crate::common::{blob_key, manifest_key, random_hex, sha256_hex, Key, Sandbox};

/// `deleted[].key` of a summary, relative to the sandbox prefix, sorted.
fn deleted(t: &Sandbox, s: &Value) -> Vec<String> {
    let strip = format!("{}/", t.prefix);
    let mut keys: Vec<String> = s["deleted"]
        .as_array()
        .unwrap_or_else(|| panic!("no deleted list: {s}"))
        .iter()
        .map(|o| {
            o["key"]
                .as_str()
                .unwrap()
                .trim_start_matches(&strip)
                .to_string()
        })
        .collect();
    keys.sort();
    keys
}

/// Plants `n` blobs no manifest names; returns their keys, sorted.
fn plant_garbage(t: &Sandbox, n: usize) -> Vec<String> {
    let bucket = t.bucket();
    let mut keys: Vec<String> = (0..n)
        .map(|i| {
            let body = format!("garbage {i} {}", random_hex(8));
            let key = blob_key(&sha256_hex(body.as_bytes()));
            bucket.put(&key, body);
            key
        })
        .collect();
    keys.sort();
    keys
}

/// `gc --remote --grace 0s` with `extra` arguments, through `cli`, expecting exit `code`.
#[track_caller]
fn gc_now(cli: crate::common::Cli, extra: &[&str], code: i32) -> crate::common::cli::Output {
    cli.args(["gc", "--remote", "--grace", "0s"])
        .args(extra)
        .run()
        .code(code)
}

fn pushed(t: &Sandbox) -> RepoSpec {
    let src = t.cache("src");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    m
}

#[test]
fn gc_dry_run_lists_exactly_what_a_real_run_deletes() {
    let t = Sandbox::new("gc_dry_run");
    let m = pushed(&t);
    let garbage = plant_garbage(&t, 3);
    let bucket = t.bucket();
    bucket.start_upload(&blob_key(&sha256_hex(b"never finished")));
    let before = bucket.keys();

    // Within the default grace period nothing is old enough.
    let out = t
        .hfcs()
        .json()
        .args(["gc", "--remote", "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(deleted(&t, &s), Vec::<String>::new(), "{out}");
    assert_eq!(s["recent_blobs"], 3, "{out}");
    assert_eq!(bucket.keys(), before);

    let out = gc_now(t.hfcs().json(), &["--dry-run"], 0);
    let dry = out.json();
    assert_eq!(deleted(&t, &dry), garbage, "{out}");
    assert_eq!(dry["uploads"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(bucket.keys(), before, "a dry run deleted something");
    assert_eq!(bucket.open_uploads().len(), 1);

    let out = gc_now(t.hfcs().json(), &["--yes"], 0);
    let real = out.json();
    assert_eq!(deleted(&t, &real), deleted(&t, &dry), "{out}");
    assert_eq!(real["objects"], 3, "{out}");
    assert_eq!(real["delete_requests"], 1, "one DeleteObjects: {out}");
    assert!(bucket.open_uploads().is_empty());
    let expected: Vec<String> = before
        .into_iter()
        .filter(|k| !garbage.contains(k))
        .collect();
    assert_eq!(bucket.keys(), expected);
    // What the manifests name is intact: a fresh cache pulls every revision.
    let dst = t.cache("dst");
    for rev in ["main", "v1.0"] {
        t.hfcs()
            .cache_dir(&dst)
            .args(["pull", "org/m", "--revision", rev])
            .run()
            .success();
        m.assert_pulled(&dst, rev);
    }
}

#[test]
fn gc_deletes_nothing_while_a_manifest_cannot_be_parsed() {
    let t = Sandbox::new("gc_unreadable");
    pushed(&t);
    plant_garbage(&t, 2);
    let bucket = t.bucket();
    let bad = manifest_key("org/broken", &"ab".repeat(20));
    bucket.put(&bad, "{not json");
    let before = bucket.keys();
    let out = gc_now(t.hfcs(), &["--yes"], 1)
        .stderr_has("nothing deleted")
        .stderr_has(&bad);
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(bucket.keys(), before, "nothing deleted");
}

#[test]
fn gc_falls_back_to_single_deletes_when_the_store_refuses_delete_objects() {
    let t = Sandbox::new("gc_fallback");
    pushed(&t);
    let garbage = plant_garbage(&t, 3);
    let proxy = FaultProxy::new(&[Rule::new(
        Fault::NotImplemented,
        Target::Path("POST", "delete"),
        Schedule::Always,
    )]);
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let out = t
        .bare()
        .config(&config)
        .json()
        .args(["gc", "--remote", "--grace", "0s", "--yes"])
        .run()
        .success()
        .stderr_has("deleting one object at a time");
    let s = out.json();
    assert_eq!(deleted(&t, &s), garbage, "{out}");
    assert!(s["batch_refused"].is_string(), "{out}");
    assert_eq!(
        proxy.injected(Fault::NotImplemented),
        1,
        "{}",
        proxy.summary()
    );
    let single: Vec<String> = proxy
        .writes()
        .into_iter()
        .filter(|w| w.starts_with("DELETE ") && w.contains("/blobs/"))
        .collect();
    assert_eq!(single.len(), 3, "{single:?}");
    assert!(t.bucket().keys().iter().all(|k| !garbage.contains(k)));
}

#[test]
fn gc_with_a_read_only_key_is_refused_before_any_delete() {
    let t = Sandbox::new("gc_ro");
    pushed(&t);
    plant_garbage(&t, 2);
    let bucket = t.bucket();
    let before = bucket.keys();
    t.write_config(&t.garage_yaml(Key::ReadOnly));
    let out = gc_now(t.hfcs(), &["--yes"], 1)
        .stderr_has("error: access denied: this key cannot delete from bucket")
        .stderr_has("hint: ");
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(bucket.keys(), before, "nothing deleted");
}

#[test]
fn gc_racing_a_push_keeps_the_blobs_of_the_manifest_being_written() {
    let t = Sandbox::new("gc_race");
    pushed(&t);
    let src = t.cache("late");
    let late = RepoSpec::new("org/late")
        .rev(&crate::common::commit_hash("late"), &["main"])
        .lfs(
            "weights.bin",
            format!("late weights {}", random_hex(16)).as_bytes(),
        )
        .file("config.json", b"{\"late\": true}\n");
    late.write(&src);
    // The push is held at its first manifest write: every blob is up, no manifest names them.
    let proxy = FaultProxy::new(&[]);
    let held = proxy.hold(HoldAt::First(Target::Path("PUT", "/manifests/")));
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let push = t.bare().config(&config).cache_dir(&src).arg("push").start();
    held.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the push reaches its manifest");
    let bucket = t.bucket();
    for etag in late.etags() {
        assert!(bucket.exists(&blob_key(&etag)), "blob {etag} uploaded");
    }

    // Unreferenced at this moment: a gc without grace would take them, were it not for the
    // push's lock, which the dry run points out.
    let out = gc_now(t.hfcs().json(), &["--dry-run"], 0)
        .stderr_has("a real run now would delete nothing");
    let would = deleted(&t, &out.json());
    for etag in late.etags() {
        assert!(would.contains(&blob_key(&etag)), "{out}");
    }
    // The push's lock keeps them, with the grace period or without. (A gc under way used to go
    // ahead here: with the default grace it deleted nothing and exited 0.)
    for grace in ["24h", "0s"] {
        t.hfcs()
            .args(["gc", "--remote", "--yes", "--grace", grace])
            .run()
            .code(1)
            .stderr_has("nothing deleted")
            .stderr_has(" push` on ");
    }
    for etag in late.etags() {
        assert!(bucket.exists(&blob_key(&etag)), "blob {etag} kept");
    }
    proxy.release();
    push.wait().success();
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/late"])
        .run()
        .success();
    late.assert_pulled(&dst, "main");
}

#[test]
fn prune_remote_detached_keeps_every_revision_a_ref_names() {
    let t = Sandbox::new("prune_remote");
    let src = t.cache("src");
    let m = RepoSpec::two_revisions("org/m")
        .rev(&crate::common::commit_hash("org/m old"), &[])
        .file("config.json", b"{\"old\": true}\n");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let bucket = t.bucket();
    let detached = manifest_key("org/m", m.detached());
    assert!(bucket.exists(&detached));
    // Tree listings go with their manifests: the detached revision's is deleted with it, the
    // listing of a revision a ref names stays.
    let listing = |commit: &str| format!("trees/org__m@{commit}.json");
    let detached_listing = listing(m.detached());
    let kept_listing = listing(m.commit("main"));
    bucket.put(
        &detached_listing,
        b"{\"format_version\": 1, \"files\": {}}".to_vec(),
    );
    bucket.put(
        &kept_listing,
        b"{\"format_version\": 1, \"files\": {}}".to_vec(),
    );

    // Written just now: younger than the default age limit.
    let out = t
        .hfcs()
        .json()
        .args(["prune", "--remote", "--detached", "--yes"])
        .run()
        .success();
    assert_eq!(deleted(&t, &out.json()), Vec::<String>::new(), "{out}");
    assert_eq!(out.json()["recent"], 1, "{out}");

    let out = t
        .hfcs()
        .json()
        .args([
            "prune",
            "--remote",
            "--detached",
            "--older-than",
            "0s",
            "--yes",
        ])
        .run()
        .success();
    assert_eq!(
        deleted(&t, &out.json()),
        vec![detached.clone(), detached_listing.clone()],
        "{out}"
    );
    assert_eq!(out.json()["attached"], 2, "{out}");
    assert!(!bucket.exists(&detached));
    assert!(!bucket.exists(&detached_listing));
    assert!(bucket.exists(&kept_listing));
    for rev in ["main", "v1.0"] {
        assert!(bucket.exists(&manifest_key("org/m", m.commit(rev))));
    }

    // gc then reclaims the blob only the detached revision used.
    let out = gc_now(t.hfcs().json(), &["--yes"], 0);
    let old_config = crate::common::git_sha1_hex(b"{\"old\": true}\n");
    assert_eq!(
        deleted(&t, &out.json()),
        vec![blob_key(&old_config)],
        "{out}"
    );

    // Without --detached there is nothing prune may do on the remote.
    t.hfcs()
        .args(["prune", "--remote", "--yes"])
        .run()
        .code(2)
        .stderr_has("--detached");
}

#[test]
fn gc_on_a_directory_remote() {
    let t = Sandbox::local("gc_dir");
    let remote = t.cache("remote");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let garbage = blob_key(&sha256_hex(b"garbage"));
    std::fs::write(remote.join(&garbage), b"garbage").unwrap();

    // A manifest that cannot be read (larger than any real one) stops the run.
    let big = remote.join(manifest_key("org/big", &"cd".repeat(20)));
    std::fs::File::create(&big)
        .unwrap()
        .set_len(64 * 1024 * 1024 + 1)
        .unwrap();
    gc_now(t.hfcs(), &["--yes"], 1).stderr_has("org__big");
    assert!(remote.join(&garbage).exists());
    std::fs::remove_file(&big).unwrap();

    let out = gc_now(t.hfcs().json(), &["--yes"], 0);
    let s = out.json();
    let keys: Vec<&str> = s["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec![garbage.as_str()], "{out}");
    assert!(!remote.join(&garbage).exists());

    // gc outside the remote is a usage error.
    t.hfcs().args(["gc"]).run().code(2).stderr_has("--remote");
}
