//! A partially pulled revision (its snapshot holds some of the commit's files, each intact and
//! as the manifest names it) is `partial` in `diff` and counted by `status`, never `incomplete`;
//! a snapshot that also holds damage stays `incomplete`.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::common::cache::{pseudo_random, snapshot_link_target};
use crate::common::fixtures::{CONFIG, TOKENIZER, WEIGHTS};
use crate::common::spec::RepoSpec;
use crate::common::{commit_hash, count, git_sha1_hex, CacheBuilder, Sandbox};

/// The revision `commit` in a `diff --json` document.
#[track_caller]
fn revision<'a>(doc: &'a Value, commit: &str) -> &'a Value {
    doc["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["revision"] == commit)
        .unwrap_or_else(|| panic!("no revision {commit} in {doc}"))
}

/// Writes huggingface_hub's tree listing of `commit` (every file of the spec's revision) into
/// `<repo>/trees/<commit>.json`.
fn write_listing(cache: &Path, spec: &RepoSpec, commit: &str) {
    let mut files = serde_json::Map::new();
    for f in &spec.revision(commit).files {
        let entry = if f.lfs {
            json!({
                "size": 134,
                "blob_id": git_sha1_hex(format!("pointer of {}", f.path).as_bytes()),
                "lfs_sha256": f.etag(),
                "lfs_size": f.bytes.len(),
            })
        } else {
            json!({"size": f.bytes.len(), "blob_id": f.etag()})
        };
        files.insert(f.path.clone(), entry);
    }
    let path = spec.dir(cache).join("trees").join(format!("{commit}.json"));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let listing = json!({"format_version": 1, "files": files});
    fs::write(path, serde_json::to_vec_pretty(&listing).unwrap()).unwrap();
}

#[track_caller]
fn diff_json(t: &Sandbox, cache: &Path) -> Value {
    let out = t.hfcs().json().cache_dir(cache).arg("diff").run().success();
    out.json()
}

#[track_caller]
fn partial_revisions(t: &Sandbox, cache: &Path) -> u64 {
    let out = t
        .hfcs()
        .json()
        .cache_dir(cache)
        .arg("status")
        .run()
        .success();
    count(&out.json(), "partial_revisions")
}

#[test]
fn a_snapshot_holding_some_files_is_partial_in_diff_and_status() {
    let t = Sandbox::new("partial_diff_status");
    let cache = t.cache("hub");
    let spec = RepoSpec::two_revisions("org/p");
    spec.write(&cache);
    let (a, b) = (spec.commit("v1.0"), spec.commit("main"));
    write_listing(&cache, &spec, b);
    t.hfcs()
        .json()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    // What a pull of config.json alone leaves: the other files are not linked.
    let view = spec.view(&cache);
    for path in [WEIGHTS, TOKENIZER] {
        fs::remove_file(view.snapshot(b, path)).unwrap();
    }

    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["diff", "--exit-code"])
        .run()
        .code(1);
    let s = out.json();
    let main = revision(&s, b);
    assert_eq!(main["state"], "partial", "{out}");
    assert_eq!(main["partial"], true, "{out}");
    assert_eq!(
        main["missing_locally"],
        json!([WEIGHTS, TOKENIZER]),
        "{out}"
    );
    for list in ["missing_remotely", "different", "broken_locally"] {
        assert_eq!(main[list], json!([]), "{list}: {out}");
    }
    assert_eq!(revision(&s, a)["state"], "in_sync", "{out}");
    assert_eq!(revision(&s, a)["partial"], false, "{out}");
    assert_eq!(count(&s, "partial"), 1, "{out}");
    assert_eq!(count(&s, "in_sync"), 1, "{out}");
    assert_eq!(count(&s, "incomplete"), 0, "{out}");
    assert_eq!(count(&s, "differences"), 1, "{out}");
    assert_eq!(s["warnings"], json!([]), "{out}");

    let out = t.hfcs().cache_dir(&cache).arg("diff").run().success();
    for needle in [
        "partial",
        &format!("missing locally: {WEIGHTS}, {TOKENIZER}"),
        "1 in sync, 1 partial, 0 local only, 0 remote only, 0 incomplete; refs agree",
    ] {
        assert!(out.stdout.contains(needle), "missing {needle:?}\n{out}");
    }
    assert!(!out.stdout.contains("incomplete "), "{out}");

    // status needs no remote: the tree listing names what the snapshot lacks.
    assert_eq!(partial_revisions(&t, &cache), 1);
    let out = t.hfcs().cache_dir(&cache).arg("status").run().success();
    assert!(out.stdout.contains("2 (0 detached, 1 partial)"), "{out}");

    // A revision the remote lacks, whose listing names a file its snapshot lacks: local only,
    // and partial.
    let c = commit_hash("org/p c");
    let extra = RepoSpec::new("org/p")
        .rev(&c, &[])
        .file(CONFIG, b"{\"hidden_size\": 512}\n")
        .file("extra.bin", b"never downloaded\n");
    write_listing(&cache, &extra, &c);
    CacheBuilder::new(&cache)
        .repo("org/p")
        .rev(&c)
        .file(CONFIG, b"{\"hidden_size\": 512}\n");
    let s = diff_json(&t, &cache);
    let local = revision(&s, &c);
    assert_eq!(local["state"], "local_only", "{s}");
    assert_eq!(local["partial"], true, "{s}");
    assert_eq!(local["missing_locally"], json!(["extra.bin"]), "{s}");
    assert_eq!(partial_revisions(&t, &cache), 2);
    let out = t.hfcs().cache_dir(&cache).arg("diff").run().success();
    assert!(out.stdout.contains("local only, partial"), "{out}");

    // Without their listings only the remote's manifest tells: diff still does, status cannot.
    fs::remove_dir_all(view.dir.join("trees")).unwrap();
    let s = diff_json(&t, &cache);
    assert_eq!(revision(&s, b)["state"], "partial", "{s}");
    assert_eq!(revision(&s, &c)["partial"], false, "{s}");
    assert_eq!(partial_revisions(&t, &cache), 0);
}

#[test]
fn damage_beside_a_missing_file_stays_incomplete() {
    let t = Sandbox::new("partial_damage");
    let cache = t.cache("hub");
    let (x, y, z) = (
        commit_hash("org/q x"),
        commit_hash("org/q y"),
        commit_hash("org/q z"),
    );
    let mut spec = RepoSpec::new("org/q");
    for (commit, name) in [(&x, "x"), (&y, "y"), (&z, "z")] {
        spec = spec
            .rev(commit, &[name])
            .file(CONFIG, format!("{{\"rev\": \"{name}\"}}\n").as_bytes())
            .lfs(WEIGHTS, &pseudo_random(&format!("org/q {name}"), 4096))
            .file("README.md", format!("# revision {name}\n").as_bytes());
    }
    spec.write(&cache);
    for commit in [&x, &y, &z] {
        write_listing(&cache, &spec, commit);
    }
    t.hfcs()
        .json()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    let view = spec.view(&cache);
    // Each revision lacks README.md, as a partial pull leaves it, and holds one kind of damage.
    for commit in [&x, &y, &z] {
        fs::remove_file(view.snapshot(commit, "README.md")).unwrap();
    }
    // x: config.json links to content the manifest does not name.
    let other = b"{\"rev\": \"edited by hand\"}\n";
    let etag = git_sha1_hex(other);
    fs::write(view.blob(&etag), other).unwrap();
    let link = view.snapshot(&x, CONFIG);
    fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(snapshot_link_target(CONFIG, &etag), &link).unwrap();
    // y: the weights' blob is cut short under its own name.
    fs::write(view.blob(spec.revision(&y).file(WEIGHTS).etag()), b"short").unwrap();
    // z: the weights' blob is gone, its link broken.
    fs::remove_file(view.blob(spec.revision(&z).file(WEIGHTS).etag())).unwrap();

    let s = diff_json(&t, &cache);
    for commit in [&x, &y, &z] {
        let r = revision(&s, commit);
        assert_eq!(r["state"], "incomplete", "{commit}: {s}");
        assert_eq!(r["partial"], false, "{commit}: {s}");
        assert!(
            r["missing_locally"]
                .as_array()
                .unwrap()
                .contains(&json!("README.md")),
            "{commit}: {s}"
        );
    }
    assert_eq!(revision(&s, &x)["different"], json!([CONFIG]), "{s}");
    assert_eq!(revision(&s, &y)["different"], json!([WEIGHTS]), "{s}");
    assert_eq!(revision(&s, &z)["broken_locally"], json!([WEIGHTS]), "{s}");
    assert_eq!(count(&s, "partial"), 0, "{s}");
    assert_eq!(count(&s, "incomplete"), 3, "{s}");

    let out = t.hfcs().cache_dir(&cache).arg("diff").run().success();
    for needle in [
        &format!("different content: {CONFIG}"),
        &format!("broken links: {WEIGHTS}"),
        "0 in sync, 0 partial, 0 local only, 0 remote only, 3 incomplete",
    ] {
        assert!(out.stdout.contains(needle), "missing {needle:?}\n{out}");
    }
    // The listings of x and y no longer describe their snapshots; z's link is broken.
    assert_eq!(partial_revisions(&t, &cache), 0);
}
