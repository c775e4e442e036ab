//! `pull REPO --include-files/--exclude-files`: one quantization of many, a second pull adding
//! to the same snapshot, a partial cache never shrinking the bucket's manifest, and patterns
//! that match nothing or are not globs.

use crate::common::hub::{HubRepo, HubStandIn};
use crate::common::python::snapshot_download_offline;
use crate::common::spec::RepoSpec;
use crate::common::{check_cache, count, files_under, manifest_key, Download, Sandbox};

const COMMIT: &str = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

fn pushed(name: &str) -> (Sandbox, RepoSpec) {
    crate::common::pushed_spec(name, RepoSpec::quantized("org/model-GGUF", COMMIT))
}

fn snapshot_files(cache: &std::path::Path) -> Vec<String> {
    files_under(
        &cache
            .join("models--org--model-GGUF")
            .join("snapshots")
            .join(COMMIT),
    )
}

#[test]
fn one_quantization_of_many_then_a_second_pull_adds_to_the_snapshot() {
    let (t, m) = pushed("patterns_one_of_many");
    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/model-GGUF", "--include-files", "*Q4_K_M.gguf"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["files"], 1, "{out}");
    assert_eq!(s["files_in_revision"], 6, "{out}");
    assert_eq!(s["file_patterns"]["include"][0], "*Q4_K_M.gguf", "{out}");
    assert_eq!(count(&s, "downloaded"), 1, "{out}");
    assert_eq!(s["bytes_downloaded"], 5000, "{out}");
    assert_eq!(snapshot_files(&dst), ["model-Q4_K_M.gguf"]);
    // The ref is written as for a full pull, and huggingface_hub loads the file offline.
    let rev = m.revision("main");
    let q4 = rev.file("model-Q4_K_M.gguf");
    check_cache(
        &dst,
        &[Download::model(
            "org/model-GGUF",
            "main",
            "model-Q4_K_M.gguf",
            &q4.bytes,
        )],
    );

    // A second pull with other patterns adds to the same snapshot and fetches only what it adds.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args([
            "pull",
            "org/model-GGUF",
            "--include-files",
            "*.json",
            "--include-files",
            "*.md",
            "--include-files",
            "*.gguf",
            "--exclude-files",
            "*Q8*",
            "--exclude-files",
            "fp16/",
        ])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["files"], 4, "{out}");
    assert_eq!(count(&s, "downloaded"), 3, "{out}");
    assert_eq!(count(&s, "skipped_existing"), 1, "{out}");
    assert_eq!(
        snapshot_files(&dst),
        [
            "README.md",
            "config.json",
            "model-Q2_K.gguf",
            "model-Q4_K_M.gguf"
        ]
    );
    let human = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/model-GGUF", "--include-files", "*Q2_K*"])
        .run()
        .success();
    assert!(human.stdout.contains("1 of 6 files"), "{human}");
}

#[test]
fn a_partial_cache_pushed_back_never_shrinks_the_buckets_manifest() {
    let (t, _m) = pushed("patterns_push_back");
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/model-GGUF", "--include-files", "*Q4_K_M*"])
        .run()
        .success();
    let key = manifest_key("org/model-GGUF", COMMIT);
    let before = t.bucket().get(&key).expect("manifest");
    let out = t.hfcs().json().cache_dir(&dst).arg("push").run().success();
    assert_eq!(t.bucket().get(&key).expect("manifest"), before, "{out}");
    let files = t.bucket().manifest("org/model-GGUF", COMMIT)["files"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(files, 6);

    // A full pull elsewhere still gets every file.
    let full = t.cache("full");
    t.hfcs()
        .cache_dir(&full)
        .args(["pull", "org/model-GGUF"])
        .run()
        .success();
    assert_eq!(snapshot_files(&full).len(), 6);
}

#[test]
fn patterns_that_match_nothing_fail_and_write_nothing() {
    let (t, _m) = pushed("patterns_match_nothing");
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/model-GGUF", "--include-files", "*.safetensors"])
        .run()
        .code(1)
        .stderr_has(
            "no file of org/model-GGUF@5e5e5e5e5e5e matches --include-files '*.safetensors'",
        )
        .stderr_has("model-Q4_K_M.gguf");
    assert!(
        !dst.join("models--org--model-GGUF").exists(),
        "{:?}",
        files_under(&dst)
    );
}

#[test]
fn a_pattern_that_is_not_a_glob_is_a_usage_error() {
    let (t, _m) = pushed("patterns_bad_glob");
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args([
            "pull",
            "org/model-GGUF",
            "--include-files",
            "model-[Q4.gguf",
        ])
        .run()
        .code(2)
        .stderr_has("\"model-[Q4.gguf\" is not a valid file pattern")
        .stderr_has("hf download");
    assert!(!dst.exists() || files_under(&dst).is_empty());
}

#[test]
fn a_partial_pull_from_the_hub_written_through_is_named_partial_on_the_next_machine() {
    let t = Sandbox::new("patterns_hub_write_through");
    let m = RepoSpec::quantized("org/model-GGUF", COMMIT);
    let hub = HubStandIn::start(vec![HubRepo::from_spec(&m)], 100);
    let first = t.cache("first");
    let out = t
        .hfcs()
        .json()
        .env("HF_ENDPOINT", hub.url())
        .cache_dir(&first)
        .args([
            "pull",
            "org/model-GGUF",
            "--include-files",
            "*Q4_K_M*",
            "--fallback",
            "hf-hub",
            "--write-through",
        ])
        .run()
        .success();
    assert_eq!(count(&out.json(), "downloaded"), 1, "{out}");
    assert_eq!(snapshot_files(&first), ["model-Q4_K_M.gguf"]);
    // The bucket now holds the part that was fetched, and the commit's whole listing.
    let files = t.bucket().manifest("org/model-GGUF", COMMIT)["files"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(files, 1);
    // A full pull from the bucket gets that part and says the rest is not there.
    let second = t.cache("second");
    t.hfcs()
        .cache_dir(&second)
        .args(["pull", "org/model-GGUF"])
        .run()
        .success()
        .stderr_has("names 1 of the 6 files of org/model-GGUF@5e5e5e5e5e5e")
        .stderr_has("--fallback hf-hub fetches them");
    // huggingface_hub knows the snapshot is partial by the listing.
    let err = snapshot_download_offline(&second, "model", "org/model-GGUF", COMMIT).unwrap_err();
    assert!(err.starts_with("IncompleteSnapshotError"), "{err}");
}
