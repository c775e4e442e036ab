//! A directory as the remote (`--remote DIR`, `storage.endpoint: file://DIR`): same layout and
//! the same guarantees as a bucket, no server needed.

use std::fs;
use std::path::Path;

use serde_json::{json, Value};

use crate::common::cache::pseudo_random;
use crate::common::fixtures::WEIGHTS;
use crate::common::spec::RepoSpec;
use crate::common::{
    assert_cache_tidy, blob_key, check_cache, commit_hash, count, files_under, manifest_key,
    ref_key, sha256_hex, CacheView, Sandbox,
};

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// The keys a push of `m` writes, sorted.
fn layout_of(m: &RepoSpec) -> Vec<String> {
    let mut keys: Vec<String> = m.etags().iter().map(|e| blob_key(e)).collect();
    keys.extend([
        manifest_key(&m.repo_id, m.commit("v1.0")),
        manifest_key(&m.repo_id, m.commit("main")),
        ref_key(&m.repo_id, "main"),
        ref_key(&m.repo_id, "v1.0"),
    ]);
    keys.sort();
    keys
}

#[test]
fn round_trip_through_a_directory() {
    let t = Sandbox::local("dir_round_trip");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let remote = t.cache("remote");

    let out = t
        .bare()
        .json()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .success();
    let s = out.json();
    assert_eq!(count(&s, "uploaded"), 4, "{out}");
    assert_eq!(count(&s, "failed"), 0, "{out}");
    // Exactly the v1 layout: no temp files left behind.
    assert_eq!(files_under(&remote), layout_of(&m));
    let weights = m.revision("main").file(WEIGHTS);
    assert_eq!(
        fs::read(remote.join(blob_key(weights.etag()))).unwrap(),
        weights.bytes
    );
    assert_eq!(
        fs::read_to_string(remote.join(ref_key(&m.repo_id, "main"))).unwrap(),
        m.commit("main")
    );
    let manifest = read_json(&remote.join(manifest_key(&m.repo_id, m.commit("main"))));
    assert_eq!(manifest["repo"], "org/m");
    assert_eq!(manifest["revision"], m.commit("main"));
    assert_eq!(manifest["repo_type"], "model");
    assert_eq!(
        manifest["files"].as_array().map(Vec::len),
        Some(3),
        "{manifest}"
    );

    let out = t
        .bare()
        .json()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .success();
    assert_eq!(count(&out.json(), "uploaded"), 0, "{out}");

    let dst = t.cache("dst");
    let out = t
        .bare()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--remote"])
        .arg(&remote)
        .run()
        .success();
    assert_eq!(count(&out.json(), "downloaded"), 3, "{out}");
    m.assert_pulled(&dst, "main");
    assert_eq!(
        CacheView::model(&dst, "org/m").ref_("main").as_deref(),
        Some(m.commit("main"))
    );
    check_cache(&dst, &m.downloads("main"));

    let dst = t.cache("dst_all");
    let out = t
        .bare()
        .json()
        .cache_dir(&dst)
        .args(["pull-all", "--remote"])
        .arg(&remote)
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["repos"].as_array().map(Vec::len), Some(1), "{out}");
    assert_eq!(s["repos"][0]["status"], "ok", "{out}");
    m.assert_pulled(&dst, "main");
}

#[test]
fn file_url_endpoint_with_prefix() {
    let t = Sandbox::local("dir_file_url");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let remote = t.cache("remote");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\nteam:\n  prefix: team-a\n",
        remote.display()
    ));

    t.hfcs().cache_dir(&src).arg("push").run().success();
    let expected: Vec<String> = layout_of(&m)
        .into_iter()
        .map(|k| format!("team-a/{k}"))
        .collect();
    assert_eq!(files_under(&remote), expected);

    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "-r", "v1.0"])
        .run()
        .success();
    m.assert_pulled(&dst, "v1.0");
    check_cache(&dst, &m.downloads("v1.0"));
}

#[test]
fn corrupted_blob_in_a_directory_is_refused() {
    let t = Sandbox::local("dir_corrupt");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let remote = t.cache("remote");
    t.bare()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .success();
    let weights = m.revision("main").file(WEIGHTS);
    let blob = remote.join(blob_key(weights.etag()));
    fs::write(&blob, pseudo_random("tampered", weights.bytes.len())).unwrap();

    let dst = t.cache("dst");
    let out = t
        .bare()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--remote"])
        .arg(&remote)
        .run()
        .code(1);
    assert_eq!(count(&out.json(), "failed"), 1, "{out}");
    let view = CacheView::model(&dst, "org/m");
    assert!(!view.has_blob(weights.etag()));
    assert_cache_tidy(&dst);
    check_cache(&dst, &[]);

    fs::write(&blob, &weights.bytes).unwrap();
    let out = t
        .bare()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--remote"])
        .arg(&remote)
        .run()
        .success();
    assert_eq!(count(&out.json(), "downloaded"), 1, "{out}");
    m.assert_pulled(&dst, "main");
}

#[test]
fn hostile_manifest_in_a_directory_is_refused() {
    let t = Sandbox::local("dir_hostile");
    let remote = t.cache("remote");
    let payload = b"payload".to_vec();
    let blob = sha256_hex(&payload);
    let commit = commit_hash("evil");
    let put = |key: &str, body: &[u8]| {
        let path = remote.join(key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, body).unwrap();
    };
    put(&blob_key(&blob), &payload);
    put(&ref_key("evil/m", "main"), commit.as_bytes());
    let manifest = json!({
        "repo": "evil/m", "revision": commit, "repo_type": "model",
        "files": [{"path": "../../../../../escape.txt", "blob": blob, "size": payload.len()}],
    });
    put(
        &manifest_key("evil/m", &commit),
        manifest.to_string().as_bytes(),
    );

    let dst = t.cache("dst");
    t.bare()
        .cache_dir(&dst)
        .args(["pull", "evil/m", "--remote"])
        .arg(&remote)
        .run()
        .code(1);
    assert_eq!(files_under(&dst), Vec::<String>::new());
    let escaped: Vec<String> = files_under(&t.path(""))
        .into_iter()
        .filter(|f| f.contains("escape"))
        .collect();
    assert!(escaped.is_empty(), "written outside the cache: {escaped:?}");
}

#[test]
fn a_missing_remote_directory_is_named_and_never_created() {
    let t = Sandbox::local("dir_missing");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    // Perhaps a share that is not mounted: creating it would fill the local disk instead.
    let remote = t.path("not mounted/hf");
    let before = files_under(&src);
    for args in [&["push"][..], &["pull", "org/m"], &["pull-all"]] {
        let out = t
            .bare()
            .cache_dir(&src)
            .args(args)
            .arg("--remote")
            .arg(&remote)
            .run()
            .code(2);
        assert!(
            out.stderr.contains(&format!(
                "remote directory {} does not exist",
                remote.display()
            )),
            "{out}"
        );
        assert!(
            out.stderr.contains(&format!(
                "hint: check the --remote path; if it is right, create it first: mkdir -p '{}'",
                remote.display()
            )),
            "{out}"
        );
        assert!(!remote.parent().unwrap().exists(), "{out}");
    }
    assert_eq!(files_under(&src), before, "the cache is untouched");
}

#[test]
fn push_creates_a_new_remote_directory_as_cp_and_rsync_do_and_pull_does_not() {
    let t = Sandbox::local("dir_create");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let remote = t.path("new-remote");

    let out = t
        .bare()
        .cache_dir(&src)
        .args(["push", "--dry-run", "--remote"])
        .arg(&remote)
        .run()
        .success();
    assert!(
        out.stderr.contains(&format!(
            "would create remote directory {}",
            remote.display()
        )),
        "{out}"
    );
    assert!(!remote.exists(), "a dry run creates nothing\n{out}");

    let out = t
        .bare()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .success();
    assert!(
        out.stderr
            .contains(&format!("created remote directory {}", remote.display())),
        "{out}"
    );
    let dst = t.cache("dst");
    t.bare()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--remote"])
        .arg(&remote)
        .run()
        .success();
    m.assert_pulled(&dst, "main");

    // Pulling from a folder that does not exist is an error, and creates nothing.
    let nowhere = t.path("no-such-remote");
    t.bare()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--remote"])
        .arg(&nowhere)
        .run()
        .code(2)
        .stderr_has("does not exist");
    assert!(!nowhere.exists());
}

#[test]
fn a_folder_that_cannot_be_written_is_named_by_its_path_not_as_a_bucket() {
    let t = Sandbox::local("dir_read_only");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let remote = t.path("read-only");
    let Some(_mount) = crate::common::tmpfs::Tmpfs::read_only(&remote) else {
        return;
    };
    let out = t
        .bare()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .failure()
        .stderr_has(&format!("cannot create directory {}/", remote.display()))
        .stderr_has("read-only file system")
        .stderr_has("read-only mount");
    for s3_word in ["bucket", "this key", "capabilit"] {
        assert!(!out.stderr.contains(s3_word), "{out}");
    }

    // doctor: pulling works from it, and the note says why pushing does not.
    let out = t
        .bare()
        .json()
        .cache_dir(&src)
        .args(["doctor", "--remote"])
        .arg(&remote)
        .run()
        .success();
    let r = out.json();
    let write = crate::common::doctor_check(&r, "Write permission");
    assert_eq!(write["status"], "warning", "{out}");
    let detail = write["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("cannot create directory {}/", remote.display()))
            && detail.contains("read-only file system"),
        "{out}"
    );
    assert!(!detail.contains("key"), "{out}");
}
