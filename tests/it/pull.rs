//! `pull`: resolving revisions, verifying every byte, refusing hostile manifests and recovering
//! from partial failures.

use std::time::Duration;

use serde_json::json;

use crate::common::cache::pseudo_random;
use crate::common::fixtures::WEIGHTS;
use crate::common::pushed;
use crate::common::{
    assert_cache_tidy, blob_key, check_cache, commit_hash, count, files_under, manifest_key,
    ref_key, scanned_repo, scanned_revision, sha256_hex, CacheBuilder, CacheView, Download,
    Sandbox,
};

#[test]
fn pull_by_commit_writes_no_ref() {
    let (t, m) = pushed("pull_by_commit");
    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m", "-r", m.commit("v1.0")])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["revision"], m.commit("v1.0"), "{out}");
    assert!(s["ref"].is_null(), "no ref was resolved\n{out}");
    m.assert_pulled(&dst, "v1.0");
    assert_eq!(
        files_under(&CacheView::model(&dst, "org/m").dir.join("refs")),
        Vec::<String>::new()
    );
    check_cache(&dst, &m.downloads(m.commit("v1.0")));
}

#[test]
fn pull_by_a_short_commit_hash_takes_the_one_commit_it_starts() {
    let (t, m) = pushed("pull_by_short_hash");
    let dst = t.cache("dst");
    let commit = m.commit("v1.0");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m", "-r", &commit[..7]])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["revision"], commit, "{out}");
    assert!(s["ref"].is_null(), "no ref was resolved\n{out}");
    m.assert_pulled(&dst, "v1.0");
    // A prefix no commit has is said as such.
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "-r", "0000abc"])
        .run()
        .code(1)
        .stderr_has("no ref 0000abc and no commit starting with 0000abc");
}

#[test]
fn second_pull_downloads_nothing() {
    let (t, m) = pushed("pull_rerun");
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success();
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(count(&s, "downloaded"), 0, "{out}");
    assert_eq!(count(&s, "skipped_existing"), 3, "{out}");
    assert_eq!(s["bytes_downloaded"], 0, "{out}");
    m.assert_pulled(&dst, "main");
}

#[test]
fn dry_run_writes_nothing() {
    let (t, _m) = pushed("pull_dry_run");
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--dry-run"])
        .run()
        .success();
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn pull_request_ref() {
    let t = Sandbox::new("pull_pr_ref");
    let src = t.cache("src");
    let main = commit_hash("main");
    let pr = commit_hash("pr 1");
    let readme = b"# PR 1 changes the README\n".to_vec();
    CacheBuilder::new(&src)
        .repo("org/m")
        .rev(&main)
        .file("README.md", b"# main\n")
        .ref_("main", &main)
        .rev(&pr)
        .file("README.md", &readme)
        .ref_("pr/1", &pr);
    check_cache(&src, &[]);

    t.hfcs().cache_dir(&src).arg("push").run().success();
    assert_eq!(t.bucket().get_text(&ref_key("org/m", "pr/1")), pr);

    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m", "-r", "pr/1"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["revision"], pr.as_str(), "{out}");
    assert_eq!(s["ref"], "pr/1", "{out}");
    let view = CacheView::model(&dst, "org/m");
    assert_eq!(view.ref_("pr/1").as_deref(), Some(pr.as_str()));
    assert_eq!(view.ref_("main"), None, "only the requested ref is written");
    let scan = check_cache(
        &dst,
        &[Download::model("org/m", "pr/1", "README.md", &readme)],
    );
    let repo = scanned_repo(&scan, "model", "org/m");
    assert_eq!(scanned_revision(repo, &pr)["refs"], json!(["pr/1"]));
}

#[test]
fn corrupted_remote_blob_is_never_installed() {
    let (t, m) = pushed("pull_corrupt_blob");
    let bucket = t.bucket();
    let weights = m.revision("main").file(WEIGHTS);
    let etag = weights.etag();
    // Same length, different bytes: only hashing can tell.
    bucket.put(
        &blob_key(etag),
        pseudo_random("tampered", weights.bytes.len()),
    );

    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .code(1);
    let s = out.json();
    assert_eq!(count(&s, "failed"), 1, "{out}");
    assert!(
        s["failures"].to_string().contains(etag),
        "the failure should name blob {etag}\n{out}"
    );
    let view = CacheView::model(&dst, "org/m");
    assert!(
        !view.has_blob(etag),
        "a blob that failed verification was installed"
    );
    // No temp files or partial downloads left, and what was written scans clean.
    assert_cache_tidy(&dst);
    check_cache(&dst, &[]);

    bucket.put(&blob_key(etag), weights.bytes.clone());
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(
        count(&s, "downloaded"),
        1,
        "only the blob that failed is fetched again\n{out}"
    );
    assert_eq!(count(&s, "skipped_existing"), 2, "{out}");
    m.assert_pulled(&dst, "main");
    assert_eq!(view.ref_("main").as_deref(), Some(m.commit("main")));
    check_cache(&dst, &m.downloads("main"));
}

#[test]
fn rerun_after_partial_failure_downloads_only_what_is_missing() {
    let (t, m) = pushed("pull_partial");
    let bucket = t.bucket();
    let weights = m.revision("main").file(WEIGHTS);
    let etag = weights.etag();
    bucket.delete(&blob_key(etag));

    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .code(1);
    let s = out.json();
    assert_eq!(
        count(&s, "downloaded"),
        2,
        "the other blobs are still fetched\n{out}"
    );
    assert_eq!(count(&s, "failed"), 1, "{out}");
    assert!(s["failures"].to_string().contains(etag), "{out}");
    let view = CacheView::model(&dst, "org/m");
    assert!(!view.has_blob(etag));
    assert_cache_tidy(&dst);
    check_cache(&dst, &[]);

    bucket.put(&blob_key(etag), weights.bytes.clone());
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(count(&s, "downloaded"), 1, "{out}");
    assert_eq!(
        s["bytes_downloaded"].as_u64(),
        Some(weights.bytes.len() as u64),
        "{out}"
    );
    assert_eq!(count(&s, "skipped_existing"), 2, "{out}");
    m.assert_pulled(&dst, "main");
    check_cache(&dst, &m.downloads("main"));
}

#[test]
fn hostile_manifests_are_refused_before_writing_anything() {
    let t = Sandbox::new("pull_hostile");
    let bucket = t.bucket();
    let payload = b"not what you think\n".to_vec();
    let good_blob = sha256_hex(&payload);
    bucket.put(&blob_key(&good_blob), payload.clone());

    let cases: [(&str, &str, String); 6] = [
        ("absolute path", "/tmp/hfcs-escape.txt", good_blob.clone()),
        (
            "parent dir",
            "../../../../hfcs-escape.txt",
            good_blob.clone(),
        ),
        (
            "parent dir inside",
            "sub/../../../hfcs-escape.txt",
            good_blob.clone(),
        ),
        ("blob with a path", "ok.txt", format!("../../{good_blob}")),
        ("uppercase blob", "ok.txt", good_blob.to_uppercase()),
        ("short blob", "ok.txt", good_blob[..39].to_string()),
    ];
    for (i, (what, path, blob)) in cases.iter().enumerate() {
        let repo_id = format!("evil/case{i}");
        let commit = commit_hash(&repo_id);
        let manifest = json!({
            "repo": repo_id,
            "revision": commit,
            "repo_type": "model",
            "files": [
                {"path": "config.json", "blob": good_blob, "size": payload.len()},
                {"path": path, "blob": blob, "size": payload.len()},
            ],
        });
        bucket.put(&manifest_key(&repo_id, &commit), manifest.to_string());
        bucket.put(&ref_key(&repo_id, "main"), commit.clone());

        let dst = t.cache(&format!("dst{i}"));
        let out = t
            .hfcs()
            .cache_dir(&dst)
            .args(["pull", &repo_id])
            .run()
            .code(1);
        assert_eq!(
            files_under(&dst),
            Vec::<String>::new(),
            "{what}: files were written\n{out}"
        );
        assert!(
            !CacheView::model(&dst, &repo_id).exists(),
            "{what}: repo folder created\n{out}"
        );
        // Pinning the commit takes the same checks.
        t.hfcs()
            .cache_dir(&dst)
            .args(["pull", &repo_id, "-r", &commit])
            .run()
            .code(1);
        assert_eq!(
            files_under(&dst),
            Vec::<String>::new(),
            "{what}: files were written"
        );
    }
    assert!(!std::path::Path::new("/tmp/hfcs-escape.txt").exists());
    assert_eq!(
        files_under(&t.path(""))
            .iter()
            .filter(|f| f.contains("hfcs-escape"))
            .count(),
        0
    );
}

#[test]
fn unknown_repo_is_an_error_naming_it() {
    let t = Sandbox::new("pull_unknown");
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/does-not-exist"])
        .run()
        .code(1)
        .stderr_has("org/does-not-exist");
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn pulled_blob_replaces_nothing_already_verified() {
    // A blob already in the cache is kept, not fetched again, even when the remote copy is gone.
    let (t, m) = pushed("pull_keeps_local");
    let dst = t.cache("dst");
    let weights = m.revision("main").file(WEIGHTS);
    CacheBuilder::new(&dst)
        .repo("org/m")
        .rev(m.commit("v1.0"))
        .lfs_file(WEIGHTS, &weights.bytes);
    t.bucket().delete(&blob_key(weights.etag()));

    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(count(&s, "downloaded"), 2, "{out}");
    assert_eq!(count(&s, "skipped_existing"), 1, "{out}");
    m.assert_pulled(&dst, "main");
    check_cache(&dst, &m.downloads("main"));
}

#[test]
fn ctrl_c_during_pull_keeps_the_partial_download_and_the_next_pull_resumes_it() {
    interrupt_a_pull("pull_ctrl_c", false);
}

/// From a directory remote a blob is copied by one blocking thread, which is still busy with
/// the file when the process exits: the partial stays all the same, and no temporary file.
#[test]
fn ctrl_c_during_a_pull_from_a_directory_keeps_the_partial_download_for_the_next_pull() {
    interrupt_a_pull("pull_ctrl_c_dir", true);
}

fn interrupt_a_pull(name: &str, from_dir: bool) {
    let t = Sandbox::new(name);
    let src = t.cache("src");
    let commit = commit_hash("interrupted pull");
    let big = pseudo_random("interrupted pull shard", 96 * 1024 * 1024);
    let etag = sha256_hex(&big);
    CacheBuilder::new(&src)
        .repo("org/i")
        .rev(&commit)
        .lfs_file("model.safetensors", &big)
        .ref_("main", &commit);
    let dir_remote = t.path("remote");
    let remote: &[&str] = if from_dir {
        &["--remote", dir_remote.to_str().unwrap()]
    } else {
        &[]
    };
    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .args(remote)
        .run()
        .success();

    let dst = t.cache("dst");
    let blobs = dst.join("models--org--i").join("blobs");
    let pull = || {
        t.hfcs()
            .cache_dir(&dst)
            .args(["pull", "org/i", "--workers", "1"])
            .args(remote)
            .env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "5MiB")
            .env("HF_CACHE_SYNC_PART_SIZE", "5MiB")
    };
    let mut child = pull().spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let names = |f: fn(&str) -> bool| -> Vec<(String, u64)> {
        std::fs::read_dir(&blobs)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| {
                        let len = e.metadata().map_or(0, |m| m.len());
                        (e.file_name().to_string_lossy().into_owned(), len)
                    })
                    .filter(|(n, _)| f(n))
                    .collect()
            })
            .unwrap_or_default()
    };
    let partials = || names(|n| n.ends_with(".incomplete"));
    while !partials().iter().any(|(_, len)| *len >= 10 * 1024 * 1024) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "pull finished before it could be interrupted"
        );
        assert!(std::time::Instant::now() < deadline, "no download started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("kept 1 partial download (") && stderr.contains("the next pull resumes"),
        "{stderr}"
    );
    assert_eq!(names(|n| n.starts_with(".hfcs-")), vec![], "{stderr}");
    assert!(!blobs.join(&etag).exists(), "a partial blob got its name");
    let kept = partials();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let (partial, kept_bytes) = kept[0].clone();
    assert!(partial.starts_with(&etag), "{partial}");
    assert!(big.starts_with(&std::fs::read(blobs.join(&partial)).unwrap()));

    // The next pull starts from what was kept.
    let out = pull().json().run().success();
    let s = out.json();
    assert_eq!(count(&s, "bytes_resumed"), kept_bytes, "{out}");
    assert_eq!(
        count(&s, "bytes_transferred"),
        big.len() as u64 - kept_bytes,
        "{out}"
    );
    assert_eq!(std::fs::read(blobs.join(&etag)).unwrap(), big);
    assert_eq!(partials(), vec![]);
    check_cache(&dst, &[]);
}
