//! `diff`: each revision in sync, partial, local only, remote only or incomplete; refs compared;
//! exit 0 unless `--exit-code` and something differs. Partial revisions: tests/it/partial.rs.

use std::fs;

use serde_json::{json, Value};

use crate::common::fixtures::{CONFIG, TOKENIZER};
use crate::common::mixed;
use crate::common::spec::RepoSpec;
use crate::common::{
    blob_key, commit_hash, count, git_sha1_hex, manifest_key, ref_key, CacheBuilder, Sandbox,
};

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

/// The ref `name` of `repo` (`model/org/m`) in a `diff --json` document.
#[track_caller]
fn ref_of<'a>(doc: &'a Value, repo: &str, name: &str) -> &'a Value {
    doc["refs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["repo"] == repo && r["name"] == name)
        .unwrap_or_else(|| panic!("no ref {name} of {repo} in {doc}"))
}

fn pushed(t: &Sandbox) -> (std::path::PathBuf, [RepoSpec; 3]) {
    let cache = t.cache("hub");
    let c = mixed::write(&cache);
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    assert_eq!(count(&out.json(), "failed"), 0, "{out}");
    (cache, c)
}

#[test]
fn a_freshly_pushed_cache_is_in_sync() {
    let t = Sandbox::new("diff_in_sync");
    let (cache, [org_m, ..]) = pushed(&t);

    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["diff", "--exit-code"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["command"], "diff", "{out}");
    assert_eq!(count(&s, "revisions"), 6, "{out}");
    assert_eq!(count(&s, "in_sync"), 6, "{out}");
    assert_eq!(count(&s, "differences"), 0, "{out}");
    assert!(
        s["revisions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "in_sync"),
        "{out}"
    );
    assert_eq!(count(&s, "refs"), 5, "{out}");
    assert!(
        s["refs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "same"),
        "{out}"
    );
    let b = revision(&s, org_m.commit("main"));
    assert_eq!(b["repo"], "model/org/m", "{out}");
    assert_eq!(b["local_refs"], json!(["main"]), "{out}");
    assert_eq!(b["remote_refs"], json!(["main"]), "{out}");
    assert_eq!(
        revision(&s, org_m.detached())["local_refs"],
        json!([]),
        "{out}"
    );
    assert_eq!(s["warnings"], json!([]), "{out}");

    let out = t
        .hfcs()
        .cache_dir(&cache)
        .args(["diff", "--exit-code"])
        .run()
        .success();
    assert!(
        out.stdout.contains(
            "6 in sync, 0 partial, 0 local only, 0 remote only, 0 incomplete; refs agree"
        ),
        "{out}"
    );
}

#[test]
fn every_kind_of_difference_is_named_per_revision() {
    let t = Sandbox::new("diff_states");
    let cache = t.cache("hub");
    let [org_m, org_d, other_n] = mixed::write(&cache);
    let (m_dir, d_dir, n_dir) = (org_m.dir(&cache), org_d.dir(&cache), other_n.dir(&cache));
    let (rev_a, rev_b, rev_d) = (org_m.commit("v1.0"), org_m.commit("main"), org_m.detached());
    let (rev_e, rev_f) = (org_d.commit("main"), org_d.commit("pr/1"));
    let rev_g = other_n.commit("main");
    let (h, broken_blob) = mixed::add_repo_to_break(&cache);
    t.hfcs()
        .json()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    let bucket = t.bucket();

    // Local only: a revision never pushed.
    let new = commit_hash("org/m new");
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&new)
        .file("new.txt", b"new\n");
    // Remote only: revision f and its ref are gone locally.
    fs::remove_dir_all(d_dir.join("snapshots").join(rev_f)).unwrap();
    fs::remove_file(d_dir.join("refs/pr/1")).unwrap();
    // Missing locally: a file of revision a (what a partial pull leaves), and a blob behind a now
    // broken link.
    fs::remove_file(m_dir.join("snapshots").join(rev_a).join(TOKENIZER)).unwrap();
    fs::remove_file(&broken_blob).unwrap();
    // Missing remotely: a file added to a snapshot, and a blob deleted from the bucket.
    fs::write(
        n_dir.join("snapshots").join(rev_g).join("added.txt"),
        b"+\n",
    )
    .unwrap();
    bucket.delete(&blob_key(org_d.revision("main").file("README.md").etag()));
    // Different: the remote manifest of d names other content for config.json.
    let key = manifest_key("org/m", rev_d);
    let config_a = &org_m.revision("v1.0").file(CONFIG).bytes;
    let mut m: Value = serde_json::from_str(&bucket.get_text(&key)).unwrap();
    for f in m["files"].as_array_mut().unwrap() {
        if f["path"] == "config.json" {
            f["blob"] = json!(git_sha1_hex(config_a));
            f["size"] = json!(config_a.len());
        }
    }
    bucket.put(&key, m.to_string());
    // A ref that moved locally.
    fs::write(m_dir.join("refs/main"), rev_a).unwrap();

    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("diff")
        .run()
        .success();
    let s = out.json();
    let state = |commit: &str| revision(&s, commit)["state"].clone();
    assert_eq!(state(rev_b), "in_sync", "{out}");
    assert_eq!(state(&new), "local_only", "{out}");
    assert_eq!(state(rev_f), "remote_only", "{out}");
    assert_eq!(revision(&s, rev_f)["repo"], "dataset/org/d", "{out}");
    assert_eq!(revision(&s, rev_f)["remote_refs"], json!(["pr/1"]), "{out}");

    let a = revision(&s, rev_a);
    assert_eq!(a["state"], "partial", "{out}");
    assert_eq!(a["missing_locally"], json!([TOKENIZER]), "{out}");
    assert_eq!(a["missing_remotely"], json!([]), "{out}");
    let broken = revision(&s, &h);
    assert_eq!(broken["state"], "incomplete", "{out}");
    assert_eq!(broken["missing_locally"], json!(["gone.bin"]), "{out}");
    assert_eq!(broken["broken_locally"], json!(["gone.bin"]), "{out}");
    assert_eq!(
        revision(&s, rev_g)["missing_remotely"],
        json!(["added.txt"]),
        "{out}"
    );
    assert_eq!(
        revision(&s, rev_e)["missing_remotely"],
        json!(["README.md"]),
        "{out}"
    );
    let d = revision(&s, rev_d);
    assert_eq!(d["state"], "incomplete", "{out}");
    assert_eq!(d["different"], json!(["config.json"]), "{out}");

    let main = ref_of(&s, "model/org/m", "main");
    assert_eq!(main["state"], "differs", "{out}");
    assert_eq!(main["local"], rev_a, "{out}");
    assert_eq!(main["remote"], rev_b, "{out}");
    assert_eq!(
        ref_of(&s, "dataset/org/d", "pr/1")["state"],
        "remote_only",
        "{out}"
    );
    assert_eq!(ref_of(&s, "model/org/m", "v1.0")["state"], "same", "{out}");

    assert_eq!(count(&s, "in_sync"), 1, "{out}");
    assert_eq!(count(&s, "partial"), 1, "{out}");
    assert_eq!(count(&s, "local_only"), 1, "{out}");
    assert_eq!(count(&s, "remote_only"), 1, "{out}");
    assert_eq!(count(&s, "incomplete"), 4, "{out}");
    assert_eq!(count(&s, "refs_differ"), 2, "{out}");
    assert_eq!(count(&s, "differences"), 9, "{out}");
    // The broken link is also a scan warning.
    assert!(
        s["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("gone.bin")),
        "{out}"
    );

    // --exit-code: the same report, exit 1.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["diff", "--exit-code"])
        .run()
        .code(1);
    assert_eq!(count(&out.json(), "differences"), 9, "{out}");

    let out = t.hfcs().cache_dir(&cache).arg("diff").run().success();
    for needle in [
        "STATE",
        "local only",
        "remote only",
        &format!("missing locally: {TOKENIZER}"),
        "missing on the remote: README.md",
        "different content: config.json",
        &format!(
            "ref main of model/org/m: local {}, remote {}",
            &rev_a[..12],
            &rev_b[..12]
        ),
        "1 in sync, 1 partial, 1 local only, 1 remote only, 4 incomplete; 2 refs differ",
    ] {
        assert!(out.stdout.contains(needle), "missing {needle:?}\n{out}");
    }
}

#[test]
fn named_repos_limit_the_comparison() {
    let t = Sandbox::new("diff_named");
    let (cache, [org_m, ..]) = pushed(&t);
    fs::remove_dir_all(org_m.dir(&cache)).unwrap();

    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["diff", "--exit-code", "dataset/org/d", "other/n"])
        .run()
        .success();
    let s = out.json();
    let repos: Vec<&str> = s["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repo"].as_str().unwrap())
        .collect();
    assert_eq!(
        repos,
        ["dataset/org/d", "dataset/org/d", "model/other/n"],
        "{out}"
    );
    assert_eq!(count(&s, "refs"), 3, "{out}");

    // org/m is only on the remote now.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["diff", "org/m"])
        .run()
        .success();
    assert_eq!(count(&out.json(), "remote_only"), 3, "{out}");

    t.hfcs()
        .cache_dir(&cache)
        .args(["diff", "org/nowhere"])
        .run()
        .code(1)
        .stderr_has("org/nowhere")
        .stderr_has("hint: ");
}

#[test]
fn a_directory_remote_compares_the_same_way() {
    let t = Sandbox::local("diff_dir");
    let cache = t.cache("hub");
    let [_, _, other_n] = mixed::write(&cache);
    let remote = t.cache("shared");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    t.hfcs()
        .json()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    t.hfcs()
        .cache_dir(&cache)
        .args(["diff", "--exit-code"])
        .run()
        .success();

    fs::remove_dir_all(other_n.dir(&cache)).unwrap();
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["diff", "--exit-code"])
        .run()
        .code(1);
    let s = out.json();
    assert_eq!(
        revision(&s, other_n.commit("main"))["state"],
        "remote_only",
        "{out}"
    );
    assert_eq!(
        ref_of(&s, "model/other/n", "main")["state"],
        "remote_only",
        "{out}"
    );
}

#[test]
fn without_a_remote_it_is_a_usage_error() {
    let t = Sandbox::local("diff_no_remote");
    let cache = t.cache("hub");
    mixed::write(&cache);
    t.bare()
        .cache_dir(&cache)
        .arg("diff")
        .run()
        .code(2)
        .stderr_has("no remote configured");
}

#[test]
fn remote_reads_that_fail_are_warnings_and_the_rest_is_compared() {
    let t = Sandbox::local("diff_unreadable");
    let cache = t.cache("hub");
    mixed::write(&cache);
    let remote = t.cache("shared");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    t.hfcs().cache_dir(&cache).arg("push").run().success();
    // Larger than any manifest or ref (sparse): reading them fails.
    let bogus = manifest_key("org/m", &commit_hash("bogus"));
    let big_ref = ref_key("org/m", "pr/9");
    fs::File::create(remote.join(&bogus))
        .unwrap()
        .set_len(64 * 1024 * 1024 + 1)
        .unwrap();
    fs::create_dir_all(remote.join(&big_ref).parent().unwrap()).unwrap();
    fs::File::create(remote.join(&big_ref))
        .unwrap()
        .set_len(4096)
        .unwrap();

    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["diff", "--exit-code"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(count(&s, "in_sync"), 6, "{out}");
    assert_eq!(count(&s, "differences"), 0, "{out}");
    let warnings = s["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 2, "{out}");
    for (w, key) in warnings.iter().zip([&bogus, &big_ref]) {
        let w = w.as_str().unwrap();
        assert!(w.starts_with(&format!("cannot read {key}: ")), "{out}");
        assert!(out.stderr.contains(&format!("warning: {w}")), "{out}");
    }

    // Only the keys another repo could be stored under are read.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["diff", "other/n", "--exit-code"])
        .run()
        .success();
    assert_eq!(out.json()["warnings"], json!([]), "{out}");
}
