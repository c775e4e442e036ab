//! The tree listing travels with its revision: push uploads `trees/<org__name>@<commit>.json`
//! when the cache has a trusted one, pull writes it back beside the snapshot, so huggingface_hub
//! tells a partial snapshot from a complete one on the pulling machine as on the source. A
//! malformed listing is a warning and never travels; rm and prune remove a listing with its
//! revision.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::common::python::snapshot_download_offline;
use crate::common::{
    check_cache, commit_hash, git_sha1_hex, sha256_hex, CacheBuilder, CacheView, Sandbox,
};

const CONFIG: &[u8] = b"{\"hidden\": 8}\n";
const WEIGHTS: &[u8] = b"not really weights, but LFS all the same";
const README: &[u8] = b"# a file huggingface_hub did not download\n";

struct Partial {
    commit: String,
    /// The listing as huggingface_hub writes it (`json.dump(indent=1)`).
    listing: Vec<u8>,
}

/// `org/m` whose snapshot holds two of the three files its listing names: what
/// `snapshot_download(allow_patterns=...)` leaves.
fn partial_source(cache: &Path) -> Partial {
    let commit = commit_hash("trees partial");
    CacheBuilder::new(cache)
        .repo("org/m")
        .rev(&commit)
        .file("config.json", CONFIG)
        .lfs_file("model.safetensors", WEIGHTS)
        .ref_("main", &commit);
    let value = json!({
        "format_version": 1,
        "files": {
            "README.md": {"size": README.len(), "blob_id": git_sha1_hex(README)},
            "config.json": {"size": CONFIG.len(), "blob_id": git_sha1_hex(CONFIG)},
            "model.safetensors": {
                "size": WEIGHTS.len(),
                "blob_id": git_sha1_hex(b"pointer"),
                "lfs_sha256": sha256_hex(WEIGHTS),
                "lfs_size": WEIGHTS.len(),
            },
        }
    });
    let listing = python_indent_1(&value);
    let path = listing_path(cache, &commit);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &listing).unwrap();
    Partial { commit, listing }
}

fn listing_path(cache: &Path, commit: &str) -> PathBuf {
    CacheView::model(cache, "org/m")
        .dir
        .join("trees")
        .join(format!("{commit}.json"))
}

/// JSON with one space per level, as Python's `json.dump(indent=1)` writes it.
fn python_indent_1(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(v, &mut ser).unwrap();
    out
}

fn tree_key(commit: &str) -> String {
    format!("trees/org__m@{commit}.json")
}

#[test]
fn a_partial_snapshot_stays_partial_for_huggingface_hub_on_the_pulling_machine() {
    let t = Sandbox::new("trees_partial");
    let src = t.cache("src");
    let p = partial_source(&src);
    let incomplete = snapshot_download_offline(&src, "model", "org/m", "main").unwrap_err();
    assert!(
        incomplete.starts_with("IncompleteSnapshotError"),
        "{incomplete}"
    );

    t.hfcs().cache_dir(&src).arg("push").run().success();
    assert_eq!(
        t.bucket().get(&tree_key(&p.commit)),
        Some(p.listing.clone())
    );

    let dst = t.cache("dst");
    let pull = || t.hfcs().cache_dir(&dst).args(["pull", "org/m"]).run();
    pull().success();
    assert_eq!(
        std::fs::read(listing_path(&dst, &p.commit)).unwrap(),
        p.listing
    );
    let there = snapshot_download_offline(&dst, "model", "org/m", "main").unwrap_err();
    assert!(there.starts_with("IncompleteSnapshotError"), "{there}");
    assert!(there.contains("README.md"), "{there}");
    check_cache(&dst, &[]);

    // Removing the revision from the remote removes its listing too.
    t.hfcs()
        .args(["rm", "--remote", &p.commit, "--yes"])
        .run()
        .success();
    assert_eq!(t.bucket().get(&tree_key(&p.commit)), None);
}

#[test]
fn a_malformed_listing_is_a_warning_and_never_travels() {
    let t = Sandbox::new("trees_malformed");
    let src = t.cache("src");
    let p = partial_source(&src);
    std::fs::write(
        listing_path(&src, &p.commit),
        b"{\"format_version\": 1, \"files\": [",
    )
    .unwrap();
    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .run()
        .success()
        .stderr_has("tree listing not trusted");
    assert_eq!(t.bucket().get(&tree_key(&p.commit)), None);
    // verify warns and passes: the cache is not at fault, the listing is just not used.
    t.hfcs()
        .cache_dir(&src)
        .arg("verify")
        .run()
        .success()
        .stderr_has("warning:")
        .stderr_has("tree listing not trusted");

    // A listing on the remote that contradicts its manifest is not written back.
    t.bucket().put(
        &tree_key(&p.commit),
        b"{\"format_version\": 1, \"files\": {}}".to_vec(),
    );
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success()
        .stderr_has("is not trusted");
    assert!(!listing_path(&dst, &p.commit).exists());
    let snapshot = snapshot_download_offline(&dst, "model", "org/m", "main").unwrap();
    assert!(snapshot.ends_with(&p.commit), "{snapshot}");
}

#[test]
fn rm_and_prune_remove_a_listing_with_its_revision() {
    let t = Sandbox::local("trees_rm");
    let cache = t.cache("c");
    let p = partial_source(&cache);
    t.bare()
        .cache_dir(&cache)
        .args(["rm", &p.commit, "--yes"])
        .run()
        .success();
    assert!(!listing_path(&cache, &p.commit).exists());
    check_cache(&cache, &[]);

    let cache = t.cache("c2");
    let p = partial_source(&cache);
    std::fs::remove_file(CacheView::model(&cache, "org/m").dir.join("refs/main")).unwrap();
    t.bare()
        .cache_dir(&cache)
        .args(["prune", "--detached", "--yes"])
        .run()
        .success();
    assert!(!listing_path(&cache, &p.commit).exists());
    check_cache(&cache, &[]);
}
