//! `push`: what lands in the bucket, in which order, and what is refused.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::cache::{pseudo_random, remote_name};
use crate::common::fault_proxy::FaultProxy;
use crate::common::spec::RepoSpec;
use crate::common::{
    blob_key, check_cache, commit_hash, count, git_sha1_hex, manifest_key, random_hex, ref_key,
    scanned_repo, scanned_revision, sha256_hex, Bucket, CacheBuilder, CacheView, Cli, Download,
    Key, Sandbox,
};

/// The manifest's files as a set of `(path, blob, size)`, whatever their order.
fn manifest_files(manifest: &Value) -> BTreeSet<(String, String, u64)> {
    manifest["files"]
        .as_array()
        .unwrap_or_else(|| panic!("manifest without files: {manifest}"))
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["blob"].as_str().unwrap().to_string(),
                f["size"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn expected_files(repo: &RepoSpec, commit: &str) -> BTreeSet<(String, String, u64)> {
    repo.revision(commit)
        .files
        .iter()
        .map(|f| (f.path.clone(), f.etag().to_string(), f.bytes.len() as u64))
        .collect()
}

#[test]
fn round_trip_of_two_revisions_sharing_blobs() {
    let t = Sandbox::new("push_round_trip");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let (a, b) = (m.commit("v1.0"), m.commit("main"));
    // The fixture itself must be a cache huggingface_hub accepts.
    check_cache(&src, &[]);

    let out = t.hfcs().json().cache_dir(&src).arg("push").run().success();
    let s = out.json();
    assert_eq!(s["command"], "push", "{out}");
    assert_eq!(s["dry_run"], false, "{out}");
    assert_eq!(count(&s, "uploaded"), 4, "four distinct blobs\n{out}");
    assert_eq!(count(&s, "skipped_existing"), 0, "{out}");
    assert_eq!(count(&s, "failed"), 0, "{out}");
    assert_eq!(count(&s, "manifests"), 2, "{out}");
    assert_eq!(count(&s, "refs"), 2, "{out}");
    assert_eq!(s["bytes_uploaded"].as_u64(), Some(m.total_bytes()), "{out}");
    assert_eq!(s["failures"], json!([]), "{out}");

    // Exactly the v1 layout, nothing else.
    let bucket = t.bucket();
    let mut expected: Vec<String> = m.etags().iter().map(|e| blob_key(e)).collect();
    expected.extend([
        manifest_key(&m.repo_id, a),
        manifest_key(&m.repo_id, b),
        ref_key(&m.repo_id, "main"),
        ref_key(&m.repo_id, "v1.0"),
    ]);
    expected.sort();
    assert_eq!(bucket.keys(), expected);

    for etag in m.etags() {
        let body = bucket.get(&blob_key(&etag)).unwrap();
        let ok = if etag.len() == 64 {
            sha256_hex(&body) == etag
        } else {
            git_sha1_hex(&body) == etag
        };
        assert!(ok, "remote blob {etag} does not match its name");
    }
    for commit in [a, b] {
        let manifest = bucket.manifest(&m.repo_id, commit);
        assert_eq!(manifest["repo"], "org/m");
        assert_eq!(manifest["revision"], commit);
        assert_eq!(manifest["repo_type"], "model");
        assert_eq!(manifest_files(&manifest), expected_files(&m, commit));
    }
    assert_eq!(bucket.get_text(&ref_key(&m.repo_id, "main")), b);
    assert_eq!(bucket.get_text(&ref_key(&m.repo_id, "v1.0")), a);

    // Pull main into an empty cache.
    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["command"], "pull", "{out}");
    assert_eq!(s["repo"], "model/org/m", "{out}");
    assert_eq!(s["repo_type"], "model", "{out}");
    assert_eq!(s["repo_id"], "org/m", "{out}");
    assert_eq!(s["revision"], b, "{out}");
    assert_eq!(s["ref"], "main", "{out}");
    assert_eq!(count(&s, "files"), 3, "{out}");
    assert_eq!(count(&s, "downloaded"), 3, "{out}");
    assert_eq!(count(&s, "skipped_existing"), 0, "{out}");
    assert_eq!(count(&s, "failed"), 0, "{out}");
    let view = CacheView::model(&dst, &m.repo_id);
    assert_eq!(
        view.ref_("main").as_deref(),
        Some(b),
        "refs/main, no newline"
    );
    m.assert_pulled(&dst, "main");

    // The other revision through its tag: only the blob it does not share is downloaded.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m", "-r", "v1.0"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["revision"], a, "{out}");
    assert_eq!(count(&s, "downloaded"), 1, "{out}");
    assert_eq!(count(&s, "skipped_existing"), 2, "{out}");
    assert_eq!(view.ref_("v1.0").as_deref(), Some(a));
    m.assert_pulled(&dst, "v1.0");
    assert_eq!(view.blob_names(), m.etags());

    let mut downloads = m.downloads("main");
    downloads.extend(m.downloads("v1.0"));
    downloads.extend(m.downloads(a));
    let scan = check_cache(&dst, &downloads);
    let repo = scanned_repo(&scan, "model", "org/m");
    assert_eq!(repo["nb_files"], 4, "{repo}");
    assert_eq!(scanned_revision(repo, b)["refs"], json!(["main"]));
    assert_eq!(scanned_revision(repo, a)["refs"], json!(["v1.0"]));
    assert_eq!(scanned_revision(repo, b)["nb_files"], 3);
}

#[test]
fn second_push_uploads_nothing() {
    let t = Sandbox::new("push_rerun");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);

    let first = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .arg("push")
        .run()
        .success()
        .json();
    assert_eq!(count(&first, "uploaded"), 4);
    let keys = t.bucket().keys();

    let out = t.hfcs().json().cache_dir(&src).arg("push").run().success();
    let s = out.json();
    assert_eq!(count(&s, "uploaded"), 0, "{out}");
    assert_eq!(count(&s, "skipped_existing"), 4, "{out}");
    assert_eq!(s["bytes_uploaded"], 0, "{out}");
    assert_eq!(count(&s, "failed"), 0, "{out}");
    assert_eq!(t.bucket().keys(), keys);
}

#[test]
fn dry_run_writes_nothing() {
    let t = Sandbox::new("push_dry_run");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);

    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["push", "--dry-run"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["dry_run"], true, "{out}");
    assert_eq!(count(&s, "failed"), 0, "{out}");
    assert_eq!(
        t.bucket().keys(),
        Vec::<String>::new(),
        "a dry run wrote to the bucket\n{out}"
    );
}

#[test]
fn repo_ids_and_globs_select_what_is_pushed() {
    let t = Sandbox::new("push_select");
    let src = t.cache("src");
    for id in ["org/a", "org/b", "other/c"] {
        CacheBuilder::new(&src)
            .repo(id)
            .rev(&commit_hash(id))
            .file("config.json", id.as_bytes())
            .ref_("main", &commit_hash(id));
    }
    let bucket = t.bucket();
    let pushed = || -> Vec<String> {
        bucket
            .keys_under("refs")
            .into_iter()
            .map(|k| {
                k.trim_start_matches("refs/")
                    .trim_end_matches("/main")
                    .to_string()
            })
            .collect()
    };

    t.hfcs()
        .cache_dir(&src)
        .args(["push", "org/b"])
        .run()
        .success();
    assert_eq!(pushed(), ["org__b"]);

    t.hfcs()
        .cache_dir(&src)
        .args(["push", "--include", "org/*", "--exclude", "org/b"])
        .run()
        .success();
    assert_eq!(pushed(), ["org__a", "org__b"]);

    t.hfcs().cache_dir(&src).arg("push").run().success();
    assert_eq!(pushed(), ["org__a", "org__b", "other__c"]);
}

#[test]
fn dataset_round_trip() {
    let t = Sandbox::new("push_dataset");
    let src = t.cache("src");
    let commit = commit_hash("dataset");
    let rows = pseudo_random("rows", 50_000);
    let readme = b"# A dataset\n".to_vec();
    CacheBuilder::new(&src)
        .dataset("org/d")
        .rev(&commit)
        .file("README.md", &readme)
        .lfs_file("data/train-00000-of-00001.parquet", &rows)
        .ref_("main", &commit);
    check_cache(&src, &[]);

    t.hfcs().cache_dir(&src).arg("push").run().success();
    let bucket = t.bucket();
    let manifest = bucket.manifest("org/d", &commit);
    assert_eq!(manifest["repo"], "org/d");
    assert_eq!(manifest["repo_type"], "dataset");
    assert_eq!(bucket.get_text(&ref_key("org/d", "main")), commit);

    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/d", "--repo-type", "dataset"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["repo_type"], "dataset", "{out}");
    assert_eq!(count(&s, "downloaded"), 2, "{out}");
    let view = CacheView::new(&dst, "dataset", "org/d");
    assert_eq!(view.ref_("main").as_deref(), Some(commit.as_str()));
    view.assert_linked_file(&commit, "README.md", &git_sha1_hex(&readme), &readme);
    view.assert_linked_file(
        &commit,
        "data/train-00000-of-00001.parquet",
        &sha256_hex(&rows),
        &rows,
    );
    assert!(
        !CacheView::model(&dst, "org/d").exists(),
        "a dataset was written as a model"
    );

    let scan = check_cache(
        &dst,
        &[Download {
            repo_type: "dataset",
            repo_id: "org/d",
            revision: "main",
            filename: "data/train-00000-of-00001.parquet",
            bytes: &rows,
        }],
    );
    scanned_repo(&scan, "dataset", "org/d");
}

#[test]
fn snapshot_without_symlinks_is_pushed() {
    let t = Sandbox::new("push_no_symlinks");
    let src = t.cache("src");
    let commit = commit_hash("copies");
    let config = b"{\"copied\": true}\n".to_vec();
    let weights = pseudo_random("copied weights", 30_000);
    CacheBuilder::new(&src)
        .repo("org/copies")
        .rev(&commit)
        .no_symlinks()
        .file("config.json", &config)
        .lfs_file("model.bin", &weights)
        .ref_("main", &commit);
    check_cache(&src, &[]);

    t.hfcs().cache_dir(&src).arg("push").run().success();
    let manifest = t.bucket().manifest("org/copies", &commit);
    let files = manifest_files(&manifest);
    assert_eq!(files.len(), 2, "{manifest}");
    for (path, blob, size) in &files {
        let bytes = if path == "config.json" {
            &config
        } else {
            &weights
        };
        assert_eq!(*size, bytes.len() as u64, "{manifest}");
        let named_by_content = *blob == sha256_hex(bytes) || *blob == git_sha1_hex(bytes);
        assert!(
            named_by_content,
            "{path} is published as blob {blob}, which is not its content's hash"
        );
        assert!(
            t.bucket().exists(&blob_key(blob)),
            "blob {blob} of {path} was not uploaded"
        );
    }

    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/copies"])
        .run()
        .success();
    let view = CacheView::model(&dst, "org/copies");
    view.assert_file(&commit, "config.json", &config);
    view.assert_file(&commit, "model.bin", &weights);
    view.assert_blobs_clean();
    check_cache(
        &dst,
        &[Download::model("org/copies", "main", "model.bin", &weights)],
    );
}

#[test]
fn blob_in_the_shared_store_is_pushed_under_its_etag() {
    let t = Sandbox::new("push_shared_store");
    let src = t.cache("src");
    let commit = commit_hash("shared");
    let weights = pseudo_random("shared weights", 40_000);
    let etag = sha256_hex(&weights);
    CacheBuilder::new(&src)
        .repo("org/shared")
        .rev(&commit)
        .file("config.json", b"{}")
        .lfs_file("model.safetensors", &weights)
        .shared_store()
        .ref_("main", &commit);
    check_cache(
        &src,
        &[Download::model(
            "org/shared",
            "main",
            "model.safetensors",
            &weights,
        )],
    );

    let out = t.hfcs().json().cache_dir(&src).arg("push").run().success();
    assert_eq!(count(&out.json(), "uploaded"), 2, "{out}");
    let bucket = t.bucket();
    assert_eq!(
        bucket.get(&blob_key(&etag)).as_deref(),
        Some(weights.as_slice())
    );
    assert_eq!(
        bucket.keys_under("blobs").len(),
        2,
        "only the two repo blobs: {:?}",
        bucket.keys()
    );

    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/shared"])
        .run()
        .success();
    let view = CacheView::model(&dst, "org/shared");
    view.assert_linked_file(&commit, "model.safetensors", &etag, &weights);
    check_cache(
        &dst,
        &[Download::model(
            "org/shared",
            "main",
            "model.safetensors",
            &weights,
        )],
    );
}

#[test]
fn blob_above_the_multipart_threshold() {
    let t = Sandbox::new("push_multipart");
    let src = t.cache("src");
    let commit = commit_hash("big");
    let big = pseudo_random("big shard", 12 * 1024 * 1024 + 12_345);
    let etag = sha256_hex(&big);
    CacheBuilder::new(&src)
        .repo("org/big")
        .rev(&commit)
        .lfs_file("model-00001-of-00001.safetensors", &big)
        .ref_("main", &commit);

    let with_small_parts = |cli: Cli| {
        cli.env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "5MiB")
            .env("HF_CACHE_SYNC_PART_SIZE", "5MiB")
            .timeout(Duration::from_secs(300))
    };
    let out = with_small_parts(t.hfcs().json().cache_dir(&src).arg("push"))
        .run()
        .success();
    assert_eq!(count(&out.json(), "uploaded"), 1, "{out}");
    let bucket = t.bucket();
    let s3_etag = bucket.etag(&blob_key(&etag));
    assert!(
        s3_etag.ends_with("-3"),
        "expected a 3-part multipart upload, S3 ETag is {s3_etag}"
    );
    assert!(
        bucket.get(&blob_key(&etag)).unwrap() == big,
        "the reassembled object differs"
    );

    let dst = t.cache("dst");
    let out = with_small_parts(t.hfcs().json().cache_dir(&dst).args(["pull", "org/big"]))
        .run()
        .success();
    assert_eq!(
        out.json()["bytes_downloaded"].as_u64(),
        Some(big.len() as u64),
        "{out}"
    );
    let view = CacheView::model(&dst, "org/big");
    view.assert_linked_file(&commit, "model-00001-of-00001.safetensors", &etag, &big);
    view.assert_blobs_clean();
}

#[test]
fn blob_not_matching_its_name_is_not_uploaded() {
    let t = Sandbox::new("push_bad_blob");
    let src = t.cache("src");
    let bad_commit = commit_hash("bad");
    let weights = pseudo_random("weights", 10_000);
    let etag = sha256_hex(&weights);
    CacheBuilder::new(&src)
        .repo("org/bad")
        .rev(&bad_commit)
        .file("config.json", b"{\"fine\": true}")
        .lfs_file("model.safetensors", &weights)
        .corrupt_last_blob(&pseudo_random("bit rot", 10_000))
        .ref_("main", &bad_commit);
    let good_commit = commit_hash("good");
    CacheBuilder::new(&src)
        .repo("org/good")
        .rev(&good_commit)
        .file("config.json", b"{\"good\": true}")
        .ref_("main", &good_commit);

    let out = t.hfcs().json().cache_dir(&src).arg("push").run().code(1);
    let s = out.json();
    assert_eq!(count(&s, "failed"), 1, "{out}");
    let failures = s["failures"].to_string();
    assert!(
        failures.contains(&etag),
        "the failure should name blob {etag}\n{out}"
    );

    let bucket = t.bucket();
    assert!(
        !bucket.exists(&blob_key(&etag)),
        "the corrupt blob reached the bucket"
    );
    assert!(
        !bucket.exists(&manifest_key("org/bad", &bad_commit)),
        "manifest of a revision with a bad blob published"
    );
    assert!(
        !bucket.exists(&ref_key("org/bad", "main")),
        "ref to a revision with a bad blob published"
    );
    // Everything else still goes up.
    bucket.manifest("org/good", &good_commit);
    assert_eq!(bucket.get_text(&ref_key("org/good", "main")), good_commit);
}

#[test]
fn read_only_key_cannot_push() {
    let t = Sandbox::new("push_read_only");
    let g = t.garage();
    // Through a proxy that injects nothing: the server answers every request, the test counts them.
    let proxy = FaultProxy::new(&[]);
    t.write_config(
        &t.garage_yaml(Key::ReadOnly)
            .replace(&g.endpoint, proxy.url()),
    );
    let src = t.cache("src");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&src);
    // Large enough for a multipart upload: its first request is a write too.
    let big = pseudo_random("read-only big", 6 * 1024 * 1024);
    CacheBuilder::new(&src)
        .repo("org/big")
        .rev(&commit_hash("big"))
        .lfs_file("model.safetensors", &big)
        .file("config.json", b"{}")
        .ref_("main", &commit_hash("big"));

    let out = t
        .hfcs()
        .cache_dir(&src)
        .args(["push", "--workers", "8"])
        .env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "5MiB")
        .run()
        .code(1)
        .failure()
        .stderr_has(&format!("this key cannot write to bucket {}", g.bucket))
        .never_prints(&g.ro_secret_key);
    let bucket = t.bucket();
    assert_eq!(
        bucket.keys(),
        Vec::<String>::new(),
        "a read-only key wrote objects\n{out}"
    );
    assert_eq!(bucket.open_uploads(), Vec::<String>::new(), "{out}");
    assert_eq!(
        proxy.writes().len(),
        1,
        "more than the first write was sent: {:?}\n{out}",
        proxy.writes()
    );

    // With every blob already there, the first manifest write is the one refused.
    for f in m.revisions.iter().flat_map(|r| &r.files) {
        bucket.put(&blob_key(f.etag()), f.bytes.clone());
    }
    bucket.put(&blob_key(&sha256_hex(&big)), big.clone());
    bucket.put(&blob_key(&git_sha1_hex(b"{}")), b"{}".to_vec());
    let before = bucket.keys();
    let writes_before = proxy.writes().len();
    let out = t
        .hfcs()
        .cache_dir(&src)
        .args(["push", "--workers", "8"])
        .run()
        .code(1)
        .stderr_has(&format!("this key cannot write to bucket {}", g.bucket));
    assert_eq!(bucket.keys(), before, "{out}");
    assert_eq!(
        proxy.writes().len() - writes_before,
        1,
        "more than the first write was sent: {:?}\n{out}",
        &proxy.writes()[writes_before..]
    );
}

#[test]
fn wrong_credentials_are_rejected_without_printing_the_secret() {
    let t = Sandbox::new("push_wrong_creds");
    let g = t.garage();
    let wrong_secret = "0".repeat(63) + "1";
    let yaml = t
        .garage_yaml(Key::ReadWrite)
        .replace(&g.secret_key, &wrong_secret);
    t.write_config(&yaml);
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);

    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .run()
        .failure()
        .stderr_has_any(&["credentials"])
        .never_prints(&wrong_secret);
    t.hfcs()
        .cache_dir(&t.cache("dst"))
        .args(["pull", "org/m"])
        .run()
        .failure()
        .stderr_has_any(&["credentials"])
        .never_prints(&wrong_secret);

    // An access key the server has never heard of.
    let yaml = t
        .garage_yaml(Key::ReadWrite)
        .replace(&g.access_key, "GK000000000000000000000bad");
    t.write_config(&yaml);
    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .run()
        .failure()
        .stderr_has_any(&["credentials"])
        .never_prints(&g.secret_key);
    assert_eq!(t.bucket().keys(), Vec::<String>::new());
}

#[test]
fn missing_bucket_is_named() {
    let t = Sandbox::new("push_missing_bucket");
    let missing = format!("hfcs-missing-{}", random_hex(6));
    let yaml = t.garage_yaml(Key::ReadWrite).replace(
        &format!("bucket: {}", t.garage().bucket),
        &format!("bucket: {missing}"),
    );
    t.write_config(&yaml);
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);

    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .run()
        .failure()
        .stderr_has(&missing)
        .stderr_has_any(&[
            "not found",
            "does not exist",
            "no such bucket",
            "nosuchbucket",
        ]);
    t.hfcs()
        .cache_dir(&t.cache("dst"))
        .args(["pull", "org/m"])
        .run()
        .failure()
        .stderr_has(&missing);
}

const LLAMA_LICENSE: &str = "META LLAMA 3 COMMUNITY LICENSE AGREEMENT\n\
    By clicking \"I Accept\" below or by using or distributing any portion of the Llama Materials, \
    you agree to be bound by this Agreement.\n";

#[test]
fn gated_repos_are_skipped_unless_allowed() {
    let t = Sandbox::new("push_gated");
    let src = t.cache("src");
    let gated = commit_hash("gated");
    CacheBuilder::new(&src)
        .repo("meta-llama/Llama-3-8B")
        .rev(&gated)
        .file("LICENSE", LLAMA_LICENSE.as_bytes())
        .file("config.json", b"{}")
        .ref_("main", &gated);
    let open = commit_hash("open");
    CacheBuilder::new(&src)
        .repo("org/open")
        .rev(&open)
        .file(
            "LICENSE",
            b"MIT License\n\nPermission is hereby granted, free of charge, ...\n",
        )
        .ref_("main", &open);

    let out = t.hfcs().json().cache_dir(&src).arg("push").run().success();
    assert_eq!(count(&out.json(), "skipped_gated"), 1, "{out}");
    let bucket = t.bucket();
    let gated_keys: Vec<String> = bucket
        .keys()
        .into_iter()
        .filter(|k| k.contains(&remote_name("meta-llama/Llama-3-8B")))
        .collect();
    assert!(
        gated_keys.is_empty(),
        "a gated repo was pushed: {gated_keys:?}"
    );
    bucket.manifest("org/open", &open);

    t.write_config(&(t.garage_yaml(Key::ReadWrite) + "  allow_gated: true\n"));
    let out = t.hfcs().json().cache_dir(&src).arg("push").run().success();
    assert_eq!(count(&out.json(), "skipped_gated"), 0, "{out}");
    bucket.manifest("meta-llama/Llama-3-8B", &gated);
}

#[test]
fn remote_flag_overrides_bucket_and_prefix() {
    let t = Sandbox::new("push_remote_flag");
    let src = t.cache("src");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&src);
    let other_prefix = format!("{}-alt", t.prefix);
    let remote = format!("s3://{}/{other_prefix}", t.garage().bucket);

    t.hfcs()
        .cache_dir(&src)
        .args(["push", "--remote", &remote])
        .run()
        .success();
    assert_eq!(
        t.bucket().keys(),
        Vec::<String>::new(),
        "team.prefix was used despite --remote"
    );
    let alt = Bucket::new(t.garage(), &other_prefix);
    assert_eq!(alt.get_text(&ref_key("org/m", "main")), m.commit("main"));

    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--remote", &remote])
        .run()
        .success();
    m.assert_pulled(&dst, "main");
}

#[test]
fn another_repos_manifest_and_ref_are_never_overwritten() {
    let t = Sandbox::new("push_foreign");
    let shared_commit = commit_hash("foreign-shared");
    // A dataset `org/x` is on the remote first.
    let first = t.cache("first");
    CacheBuilder::new(&first)
        .dataset("org/x")
        .rev(&shared_commit)
        .file("data.csv", b"a,b\n1,2\n")
        .ref_("main", &shared_commit);
    t.hfcs().cache_dir(&first).arg("push").run().success();
    let bucket = t.bucket();
    assert_eq!(
        bucket.manifest("org/x", &shared_commit)["repo_type"],
        "dataset"
    );

    // A model with the same id maps to the same keys: same commit, and a new commit on `main`.
    let second = t.cache("second");
    let other_commit = commit_hash("foreign-other");
    CacheBuilder::new(&second)
        .repo("org/x")
        .rev(&shared_commit)
        .file("config.json", b"{\"model\": true}\n")
        .rev(&other_commit)
        .file("config.json", b"{\"model\": 2}\n")
        .ref_("main", &other_commit);
    let out = t.hfcs().json().cache_dir(&second).arg("push").run().code(1);
    let failures = out.json()["failures"].to_string();
    assert!(failures.contains("belongs to dataset org/x"), "{out}");
    assert!(failures.contains("refusing to overwrite"), "{out}");

    // The dataset's manifest and ref are untouched.
    assert_eq!(
        bucket.manifest("org/x", &shared_commit)["repo_type"],
        "dataset"
    );
    assert_eq!(bucket.get_text(&ref_key("org/x", "main")), shared_commit);
}

#[test]
fn pointer_files_are_skipped_unless_sync_xet() {
    let t = Sandbox::new("push_pointer");
    let src = t.cache("src");
    let c = commit_hash("pointer");
    let pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n";
    CacheBuilder::new(&src)
        .repo("org/p")
        .rev(&c)
        .file("config.json", b"{}")
        .file("model.bin", pointer)
        .ref_("main", &c);
    let out = t.hfcs().json().cache_dir(&src).arg("push").run().success();
    assert_eq!(count(&out.json(), "skipped_pointer"), 1, "{out}");
    let bucket = t.bucket();
    assert!(!bucket.exists(&blob_key(&git_sha1_hex(pointer))));
    let paths: Vec<String> = bucket.manifest("org/p", &c)["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(paths, vec!["config.json"]);

    t.write_config(
        &t.garage_yaml(Key::ReadWrite)
            .replace("team:", "cache:\n  sync_xet: true\nteam:"),
    );
    let out = t.hfcs().json().cache_dir(&src).arg("push").run().success();
    assert_eq!(count(&out.json(), "skipped_pointer"), 0, "{out}");
    assert!(bucket.exists(&blob_key(&git_sha1_hex(pointer))));
}

#[test]
fn stale_multipart_upload_is_aborted_by_the_next_push() {
    let t = Sandbox::new("push_stale_upload");
    let src = t.cache("src");
    let commit = commit_hash("stale");
    CacheBuilder::new(&src)
        .repo("org/s")
        .rev(&commit)
        .file("config.json", b"{}")
        .ref_("main", &commit);
    let bucket = t.bucket();
    bucket.start_upload(&blob_key(&"9".repeat(64)));
    assert_eq!(bucket.open_uploads().len(), 1);

    // Younger than the grace period: it may belong to a push still running elsewhere.
    t.hfcs().cache_dir(&src).arg("push").run().success();
    assert_eq!(bucket.open_uploads().len(), 1);

    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .env("HF_CACHE_SYNC_STALE_UPLOAD_AGE", "0s")
        .run()
        .success()
        .stderr_has("aborted 1 multipart upload");
    assert_eq!(bucket.open_uploads(), Vec::<String>::new());
}

#[test]
fn ctrl_c_during_push_aborts_its_multipart_upload_and_exits_130() {
    let t = Sandbox::new("push_ctrl_c");
    let src = t.cache("src");
    let commit = commit_hash("interrupted");
    let big = pseudo_random("interrupted shard", 96 * 1024 * 1024);
    let etag = sha256_hex(&big);
    CacheBuilder::new(&src)
        .repo("org/i")
        .rev(&commit)
        .lfs_file("model.safetensors", &big)
        .ref_("main", &commit);
    let bucket = t.bucket();

    let mut child = t
        .hfcs()
        .cache_dir(&src)
        .arg("push")
        .args(["--workers", "1"])
        .env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "5MiB")
        .env("HF_CACHE_SYNC_PART_SIZE", "5MiB")
        .spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while bucket.open_uploads().is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "push finished before it could be interrupted"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "no multipart upload started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert_eq!(bucket.open_uploads(), Vec::<String>::new(), "{stderr}");
    assert!(!bucket.exists(&blob_key(&etag)));
    assert!(bucket.keys_under("manifests").is_empty());
}

#[test]
fn a_manifest_listing_its_files_in_another_order_is_left_alone() {
    let t = Sandbox::new("push_manifest_order");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();

    // hf-cache-sync 0.1 lists a revision's files in the order it walked the snapshot and
    // writes them with Python's json.dumps(indent=2).
    let bucket = t.bucket();
    let key = manifest_key("org/m", m.commit("main"));
    let mut walked = bucket.manifest("org/m", m.commit("main"));
    walked["files"].as_array_mut().unwrap().reverse();
    let body = serde_json::to_string_pretty(&walked).unwrap();
    assert_ne!(body.as_bytes(), bucket.get(&key).unwrap().as_slice());
    bucket.put(&key, body.clone());

    let out = t.hfcs().json().cache_dir(&src).arg("push").run().success();
    let s = out.json();
    assert_eq!(count(&s, "manifests"), 0, "nothing rewritten\n{out}");
    assert_eq!(count(&s, "manifests_unchanged"), 2, "{out}");
    assert_eq!(
        bucket.get_text(&key),
        body,
        "the manifest 0.1 wrote is kept"
    );
}
