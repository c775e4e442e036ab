//! `verify`: every local blob hashed against its name, broken links and dangling refs found,
//! `--repair` fetching what is corrupt or missing, and `--remote` checking manifests against the
//! bucket.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::cache::pseudo_random;
use crate::common::fixtures::{CONFIG, TOKENIZER, WEIGHTS};
use crate::common::spec::RepoSpec;
use crate::common::{
    assert_cache_tidy, blob_key, check_cache, commit_hash, git_sha1_hex, manifest_key, ref_key,
    CacheBuilder, CacheView, Sandbox,
};

/// The problems of a `verify --json` summary.
#[track_caller]
fn problems(summary: &Value) -> &Vec<Value> {
    summary["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("no problems list in {summary}"))
}

/// The one problem of `kind`, panicking unless there is exactly one.
#[track_caller]
fn only_problem<'a>(summary: &'a Value, kind: &str) -> &'a Value {
    let found: Vec<&Value> = problems(summary)
        .iter()
        .filter(|p| p["kind"] == kind)
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} problem in {summary}");
    found[0]
}

/// A sandbox with `org/m` (see [`RepoSpec::two_revisions`]) in cache `src` and pushed to its prefix.
fn pushed(name: &str) -> (Sandbox, RepoSpec, PathBuf) {
    let t = Sandbox::new(name);
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    (t, m, src)
}

/// Like [`pushed`], to a directory remote configured as `storage.endpoint`; also returns it.
fn pushed_to_dir(name: &str) -> (Sandbox, RepoSpec, PathBuf, PathBuf) {
    let t = Sandbox::local(name);
    let remote = t.cache("remote");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    (t, m, src, remote)
}

// ---- the local cache ----

#[test]
fn clean_cache_verifies() {
    let t = Sandbox::local("verify_clean");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);
    CacheBuilder::new(&cache)
        .dataset("org/d")
        .rev(&commit_hash("d"))
        .lfs_file("data.parquet", &pseudo_random("d", 3 * 1024 * 1024))
        .ref_("main", &commit_hash("d"));

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("verify")
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["command"], "verify", "{out}");
    assert_eq!(s["scope"], "local", "{out}");
    assert_eq!(s["repos"], 2, "{out}");
    assert_eq!(s["blobs"], 5, "{out}");
    assert_eq!(
        s["bytes"].as_u64().unwrap(),
        m.total_bytes() + 3 * 1024 * 1024,
        "{out}"
    );
    assert_eq!(problems(&s).len(), 0, "{out}");

    // One hashing thread gives the same verdict; text goes to stdout.
    let out = t
        .bare()
        .cache_dir(&cache)
        .args(["verify", "--workers", "1"])
        .run()
        .success();
    assert!(out.stdout.contains("No problems found"), "{out}");
}

#[test]
fn corrupted_blob_is_named_with_the_files_using_it() {
    let t = Sandbox::local("verify_corrupt");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);
    let weights = m.revision("main").file(WEIGHTS);
    let etag = weights.etag();
    // Same length, different bytes: only hashing can tell.
    fs::write(
        CacheView::model(&cache, "org/m").blob(etag),
        pseudo_random("bit rot", weights.bytes.len()),
    )
    .unwrap();

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("verify")
        .run()
        .code(1);
    let s = out.json();
    assert_eq!(problems(&s).len(), 1, "{out}");
    let p = only_problem(&s, "corrupt_blob");
    assert_eq!(p["repo"], "model/org/m", "{out}");
    assert_eq!(p["etag"], etag, "{out}");
    let mut paths: Vec<&str> = p["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    paths.sort();
    let mut expected = vec![
        format!("{}/{WEIGHTS}", m.commit("v1.0")),
        format!("{}/{WEIGHTS}", m.commit("main")),
    ];
    expected.sort();
    assert_eq!(paths, expected, "{out}");

    let out = t.bare().cache_dir(&cache).arg("verify").run().code(1);
    assert!(out.stdout.contains(etag), "{out}");
    assert!(out.stdout.contains("corrupt blob"), "{out}");
    out.stderr_has("--repair");
}

#[test]
fn broken_link_names_the_missing_blob() {
    let t = Sandbox::local("verify_broken_link");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);
    let config_a = git_sha1_hex(&m.revision("v1.0").file(CONFIG).bytes);
    fs::remove_file(CacheView::model(&cache, "org/m").blob(&config_a)).unwrap();

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("verify")
        .run()
        .code(1);
    let s = out.json();
    // One problem for the blob, not a second one for the link the scanner also saw.
    assert_eq!(problems(&s).len(), 1, "{out}");
    let p = only_problem(&s, "missing_blob");
    assert_eq!(p["etag"], config_a.as_str(), "{out}");
    assert_eq!(
        p["paths"][0],
        format!("{}/{CONFIG}", m.commit("v1.0")),
        "{out}"
    );
}

#[test]
fn ref_without_snapshot_is_a_problem() {
    let t = Sandbox::local("verify_dangling_ref");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);
    let gone = commit_hash("deleted revision");
    CacheBuilder::new(&cache).repo("org/m").ref_("old", &gone);

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("verify")
        .run()
        .code(1);
    let s = out.json();
    let p = only_problem(&s, "cache");
    assert_eq!(p["repo"], "model/org/m", "{out}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains(&gone) && detail.contains("no snapshot"),
        "{out}"
    );
}

#[test]
fn link_out_of_the_cache_is_reported_not_followed() {
    let t = Sandbox::local("verify_escape");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);
    let outside = t.path("outside.bin");
    fs::write(&outside, b"not part of any cache").unwrap();
    std::os::unix::fs::symlink(
        &outside,
        CacheView::model(&cache, "org/m").snapshot(m.commit("v1.0"), "escape.bin"),
    )
    .unwrap();

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("verify")
        .run()
        .code(1);
    let s = out.json();
    let p = only_problem(&s, "cache");
    assert!(
        p["detail"].as_str().unwrap().contains("outside the cache"),
        "{out}"
    );
    // Only the four blobs of the repo were hashed.
    assert_eq!(s["blobs"], 4, "{out}");
}

#[test]
fn only_the_named_repos_are_verified() {
    let t = Sandbox::local("verify_named");
    let cache = t.cache("hub");
    let good = commit_hash("good");
    let bad = commit_hash("bad");
    CacheBuilder::new(&cache)
        .repo("org/good")
        .rev(&good)
        .file("a.txt", b"fine\n")
        .ref_("main", &good)
        .repo("org/bad")
        .rev(&bad)
        .file("a.txt", b"will rot\n")
        .corrupt_last_blob(b"has rotted\n")
        .ref_("main", &bad);

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["verify", "org/good"])
        .run()
        .success();
    assert_eq!(out.json()["repos"], 1, "{out}");
    t.bare()
        .cache_dir(&cache)
        .args(["verify", "model/org/bad"])
        .run()
        .code(1);
    t.bare()
        .cache_dir(&cache)
        .args(["verify", "org/absent"])
        .run()
        .code(1)
        .stderr_has("org/absent");
}

#[test]
fn shared_store_blob_is_hashed_through_its_link() {
    let t = Sandbox::local("verify_shared_store");
    let cache = t.cache("hub");
    let commit = commit_hash("xet");
    let weights = pseudo_random("xet weights", 64 * 1024);
    CacheBuilder::new(&cache)
        .repo("org/x")
        .rev(&commit)
        .lfs_file("model.safetensors", &weights)
        .shared_store()
        .ref_("main", &commit);
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("verify")
        .run()
        .success();
    assert_eq!(out.json()["bytes"], 64 * 1024, "{out}");

    // Rot in the shared store shows up as the repo's blob.
    let store_file = fs::canonicalize(
        CacheView::model(&cache, "org/x").blob(&crate::common::sha256_hex(&weights)),
    )
    .unwrap();
    assert!(store_file.starts_with(fs::canonicalize(cache.join("blobs")).unwrap()));
    fs::write(&store_file, pseudo_random("rot", 64 * 1024)).unwrap();
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("verify")
        .run()
        .code(1);
    let s = out.json();
    assert_eq!(
        only_problem(&s, "corrupt_blob")["repo"],
        "model/org/x",
        "{out}"
    );
}

// ---- --repair ----

#[test]
fn repair_from_a_directory_remote() {
    let (t, m, src, _remote) = pushed_to_dir("verify_repair_dir");
    let config_b = git_sha1_hex(&m.revision("main").file(CONFIG).bytes);
    let view = CacheView::model(&src, "org/m");
    fs::write(view.blob(&config_b), b"{}").unwrap();
    fs::remove_file(view.blob(m.revision("main").file(WEIGHTS).etag())).unwrap();

    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["verify", "--repair"])
        .run()
        .success();
    assert_eq!(out.json()["repaired"].as_array().unwrap().len(), 2, "{out}");
    m.assert_pulled(&src, "v1.0");
    m.assert_pulled(&src, "main");
    assert_cache_tidy(&src);
}

#[test]
fn repair_restores_a_corrupted_blob() {
    let (t, m, src) = pushed("verify_repair_corrupt");
    let weights = m.revision("main").file(WEIGHTS);
    let etag = weights.etag();
    let view = CacheView::model(&src, "org/m");
    fs::write(
        view.blob(etag),
        pseudo_random("bit rot", weights.bytes.len()),
    )
    .unwrap();

    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["verify", "--repair"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(problems(&s).len(), 0, "{out}");
    let repaired = s["repaired"].as_array().unwrap();
    assert_eq!(repaired.len(), 1, "{out}");
    assert_eq!(repaired[0]["kind"], "corrupt_blob", "{out}");
    assert_eq!(repaired[0]["etag"], etag, "{out}");

    assert_eq!(fs::read(view.blob(etag)).unwrap(), weights.bytes);
    t.bare().cache_dir(&src).arg("verify").run().success();
    assert_cache_tidy(&src);
    check_cache(&src, &m.downloads("main"));
}

#[test]
fn repair_restores_the_blob_behind_broken_links() {
    let (t, m, src) = pushed("verify_repair_missing");
    let etag = m.revision("main").file(WEIGHTS).etag();
    fs::remove_file(CacheView::model(&src, "org/m").blob(etag)).unwrap();
    t.bare().cache_dir(&src).arg("verify").run().code(1);

    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["verify", "--repair"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["repaired"][0]["kind"], "missing_blob", "{out}");
    assert_eq!(s["repaired"][0]["etag"], etag, "{out}");
    m.assert_pulled(&src, "v1.0");
    m.assert_pulled(&src, "main");
    check_cache(&src, &m.downloads("v1.0"));
}

#[test]
fn repair_never_installs_what_the_remote_cannot_vouch_for() {
    let (t, m, src) = pushed("verify_repair_fails");
    let weights = m.revision("main").file(WEIGHTS);
    let etag = weights.etag();
    let view = CacheView::model(&src, "org/m");
    let rotten = pseudo_random("bit rot", weights.bytes.len());
    fs::write(view.blob(etag), &rotten).unwrap();
    // The remote copy is corrupt too: it must be refused, and the local file left alone.
    t.bucket().put(
        &blob_key(etag),
        pseudo_random("tampered", weights.bytes.len()),
    );

    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["verify", "--repair"])
        .run()
        .code(1);
    let s = out.json();
    let p = only_problem(&s, "corrupt_blob");
    assert!(p["repair_error"].is_string(), "{out}");
    assert_eq!(s["repaired"].as_array().unwrap().len(), 0, "{out}");
    assert_eq!(fs::read(view.blob(etag)).unwrap(), rotten);

    // Not on the remote at all.
    t.bucket().delete(&blob_key(etag));
    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["verify", "--repair"])
        .run()
        .code(1);
    let s = out.json();
    let p = only_problem(&s, "corrupt_blob");
    assert!(
        p["repair_error"]
            .as_str()
            .unwrap()
            .contains("not on the remote"),
        "{out}"
    );
    // No temporary files left beside the blobs, and the bad file still the only copy.
    assert_eq!(view.blob_names(), m.etags());
    assert_eq!(fs::read(view.blob(etag)).unwrap(), rotten);
}

#[test]
fn repair_without_a_remote_is_a_configuration_error() {
    let t = Sandbox::local("verify_repair_no_remote");
    let cache = t.cache("hub");
    RepoSpec::two_revisions("org/m").write(&cache);
    t.bare()
        .cache_dir(&cache)
        .args(["verify", "--repair"])
        .run()
        .code(2)
        .stderr_has("no remote configured");
    t.bare()
        .cache_dir(&cache)
        .args(["verify", "--remote", "--repair"])
        .run()
        .code(2);
}

// ---- --remote ----

#[test]
fn remote_verifies_clean_after_push() {
    let (t, _m, _src) = pushed("verify_remote_clean");
    let out = t.hfcs().json().args(["verify", "--remote"]).run().success();
    let s = out.json();
    assert_eq!(s["scope"], "remote", "{out}");
    assert_eq!(s["manifests"], 2, "{out}");
    assert_eq!(s["refs"], 2, "{out}");
    assert_eq!(s["blobs"], 4, "{out}");
    assert_eq!(problems(&s).len(), 0, "{out}");
}

#[test]
fn remote_missing_blob_and_size_mismatch_are_found() {
    let (t, m, _src) = pushed("verify_remote_blobs");
    let bucket = t.bucket();
    let weights = m.revision("main").file(WEIGHTS).etag();
    let tokenizer = git_sha1_hex(&m.revision("main").file(TOKENIZER).bytes);
    bucket.delete(&blob_key(weights));
    bucket.put(&blob_key(&tokenizer), b"short".to_vec());

    let out = t.hfcs().json().args(["verify", "--remote"]).run().code(1);
    let s = out.json();
    // Both revisions name both blobs.
    let missing: Vec<&Value> = problems(&s)
        .iter()
        .filter(|p| p["kind"] == "missing_blob")
        .collect();
    assert_eq!(missing.len(), 2, "{out}");
    assert!(missing.iter().all(|p| p["etag"] == weights), "{out}");
    assert!(
        missing
            .iter()
            .all(|p| p["key"].as_str().unwrap().ends_with(&blob_key(weights))),
        "{out}"
    );
    let mismatched: Vec<&Value> = problems(&s)
        .iter()
        .filter(|p| p["kind"] == "size_mismatch")
        .collect();
    assert_eq!(mismatched.len(), 2, "{out}");
    assert!(
        mismatched.iter().all(|p| p["etag"] == tokenizer.as_str()),
        "{out}"
    );
    assert_eq!(problems(&s).len(), 4, "{out}");

    let out = t.hfcs().args(["verify", "--remote"]).run().code(1);
    assert!(out.stdout.contains(weights), "{out}");
    assert!(out.stdout.contains("size mismatch"), "{out}");
}

#[test]
fn remote_ref_without_manifest_and_bad_manifest_are_found() {
    let (t, m, _src) = pushed("verify_remote_refs");
    let bucket = t.bucket();
    bucket.delete(&manifest_key("org/m", m.commit("main")));
    let bogus = commit_hash("bogus");
    bucket.put(&manifest_key("org/m", &bogus), b"{ not json".to_vec());

    let out = t
        .hfcs()
        .json()
        .args(["verify", "--remote", "org/m"])
        .run()
        .code(1);
    let s = out.json();
    let dangling = only_problem(&s, "dangling_ref");
    assert!(
        dangling["key"]
            .as_str()
            .unwrap()
            .ends_with(&ref_key("org/m", "main")),
        "{out}"
    );
    assert_eq!(dangling["revision"], m.commit("main"), "{out}");
    let bad = only_problem(&s, "bad_manifest");
    assert!(
        bad["key"]
            .as_str()
            .unwrap()
            .ends_with(&manifest_key("org/m", &bogus)),
        "{out}"
    );
    assert_eq!(problems(&s).len(), 2, "{out}");
}

/// An object larger than any manifest or ref (sparse, so it costs no disk): reading it fails,
/// refused by its size, while every other object of the remote reads fine.
fn plant_oversized(path: &Path, len: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::File::create(path).unwrap().set_len(len).unwrap();
}

#[test]
fn remote_reads_that_fail_are_problems_and_the_rest_is_checked() {
    let (t, m, _src, remote) = pushed_to_dir("verify_remote_unreadable");
    let bogus = commit_hash("bogus");
    plant_oversized(
        &remote.join(manifest_key("org/m", &bogus)),
        64 * 1024 * 1024 + 1,
    );
    plant_oversized(&remote.join(ref_key("org/m", "pr/1")), 4096);
    // Something only the readable manifests show, so the check is seen to go on past them.
    fs::remove_file(remote.join(blob_key(m.revision("main").file(WEIGHTS).etag()))).unwrap();

    let out = t.hfcs().json().args(["verify", "--remote"]).run().code(1);
    let s = out.json();
    let bad = only_problem(&s, "bad_manifest");
    assert!(
        bad["key"]
            .as_str()
            .unwrap()
            .ends_with(&manifest_key("org/m", &bogus)),
        "{out}"
    );
    let detail = bad["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("cannot read: ") && detail.contains("larger than"),
        "{out}"
    );
    let bad_ref = only_problem(&s, "bad_ref");
    assert!(
        bad_ref["key"]
            .as_str()
            .unwrap()
            .ends_with(&ref_key("org/m", "pr/1")),
        "{out}"
    );
    assert!(
        bad_ref["detail"]
            .as_str()
            .unwrap()
            .starts_with("cannot read: "),
        "{out}"
    );
    // Both readable revisions were checked in full: each names the deleted blob.
    assert_eq!(s["manifests"], 2, "{out}");
    assert_eq!(s["refs"], 3, "{out}");
    let missing = problems(&s)
        .iter()
        .filter(|p| p["kind"] == "missing_blob")
        .count();
    assert_eq!(missing, 2, "{out}");
    assert_eq!(problems(&s).len(), 4, "{out}");

    let out = t.hfcs().args(["verify", "--remote"]).run().code(1);
    assert!(out.stdout.contains("4 problems:"), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "bad manifest {}: cannot read: ",
            manifest_key("org/m", &bogus)
        )),
        "{out}"
    );
}
