//! The catalog against a directory remote: key decoding, ref ownership on keys two repos share,
//! and what a failed or refused read does in each mode.

use std::fs;
use std::path::Path;

use super::*;
use crate::manifest::ManifestFile;
use crate::remote::dir::DirRemote;

const BLOB: &str = "0123456789abcdef0123456789abcdef01234567";

fn commit(c: char) -> String {
    c.to_string().repeat(40)
}

fn manifest(repo: &str, repo_type: &str, revision: &str) -> Manifest {
    Manifest {
        repo: repo.into(),
        revision: revision.into(),
        repo_type: repo_type.into(),
        files: vec![ManifestFile {
            path: "f.txt".into(),
            blob: BLOB.into(),
            size: 3,
        }],
    }
}

fn put(root: &Path, key: &str, body: &[u8]) {
    let path = root.join(key);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

/// `a/b__c` (model) and `a__b/c` (dataset) share the key part `a__b__c`.
fn shared_key_remote(root: &Path, layout: &Layout) {
    put(root, &layout.blob_key(BLOB), b"abc");
    let model = manifest("a/b__c", "model", &commit('1'));
    let dataset = manifest("a__b/c", "dataset", &commit('2'));
    put(
        root,
        &layout.manifest_key("a/b__c", &commit('1')),
        &model.to_json_bytes(),
    );
    put(
        root,
        &layout.manifest_key("a__b/c", &commit('2')),
        &dataset.to_json_bytes(),
    );
    put(
        root,
        &layout.ref_key("a/b__c", "main"),
        commit('1').as_bytes(),
    );
    put(
        root,
        &layout.ref_key("a__b/c", "v1"),
        commit('2').as_bytes(),
    );
    // A ref naming a commit with no manifest.
    put(
        root,
        &layout.ref_key("a/b__c", "gone"),
        commit('3').as_bytes(),
    );
}

#[test]
fn key_decoding_takes_the_first_separator() {
    assert_eq!(repo_id_from_key("org__name"), "org/name");
    assert_eq!(repo_id_from_key("org__na__me"), "org/na__me");
    assert_eq!(repo_id_from_key("gpt2"), "gpt2");
    for safe in ["org__name", "a__b__c", "gpt2"] {
        assert_eq!(safe_repo_key(&repo_id_from_key(safe)), safe);
    }
    assert!(Scope::repos(["a/b__c"]).covers("a__b__c"));
    assert!(!Scope::repos(["a/b__c"]).covers("a__b"));
    assert!(Scope::repos([]).covers("anything"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refs_belong_to_the_repo_their_commit_manifest_names() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new("team");
    shared_key_remote(dir.path(), &layout);
    let remote = Remote::Dir(DirRemote::new(dir.path().to_path_buf()));
    let mut catalog = Catalog::list(&remote, &layout, true).await.unwrap();
    assert_eq!(catalog.blobs().get(BLOB), Some(&3));
    assert_eq!(
        (
            catalog.revision_count(),
            catalog.ref_count(),
            catalog.key_count()
        ),
        (2, 3, 1)
    );
    assert!(catalog.has_key("a__b__c") && !catalog.has_key("a__b"));
    // Nothing read yet: the key alone cannot tell whose a ref is.
    let main = catalog.ref_entry("a__b__c", "main").unwrap();
    assert_eq!(catalog.ref_owner(main), ("a/b__c".to_string(), None));

    catalog.read(&Scope::All).await.unwrap();
    let owner = |name: &str| catalog.ref_owner(catalog.ref_entry("a__b__c", name).unwrap());
    assert_eq!(owner("main"), ("a/b__c".to_string(), Some(RepoType::Model)));
    assert_eq!(owner("v1"), ("a__b/c".to_string(), Some(RepoType::Dataset)));
    // Dangling, and two repos share the key: no owner can be told.
    assert_eq!(owner("gone"), ("a/b__c".to_string(), None));
    // Given only one candidate under the key, a dangling ref is that repo's.
    let gone = catalog.ref_entry("a__b__c", "gone").unwrap();
    assert_eq!(
        catalog.ref_owner_among(gone, [("a__b/c".to_string(), RepoType::Dataset)]),
        ("a__b/c".to_string(), Some(RepoType::Dataset))
    );
    assert_eq!(
        catalog.owner_of_ref_key(&layout.ref_key("a/b__c", "main")),
        Some((RepoType::Model, "a/b__c".to_string()))
    );
    assert_eq!(
        catalog.owner_of_ref_key(&layout.ref_key("a/b__c", "gone")),
        None
    );
    assert_eq!(
        catalog.owner_of_manifest_key(&layout.manifest_key("a__b/c", &commit('2'))),
        Some((RepoType::Dataset, "a__b/c".to_string()))
    );
    assert_eq!(
        catalog.repos_under("a__b__c"),
        BTreeSet::from([
            (RepoType::Model, "a/b__c".to_string()),
            (RepoType::Dataset, "a__b/c".to_string())
        ])
    );
    assert!(catalog.manifest_of("a/b__c", &commit('1')).is_some());
    assert!(catalog.manifest_of("a__b/c", &commit('1')).is_none());
    assert!(catalog.warnings().is_empty(), "{:?}", catalog.warnings());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_reads_are_warnings_or_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new("");
    shared_key_remote(dir.path(), &layout);
    put(
        dir.path(),
        &layout.manifest_key("org/junk", &commit('4')),
        b"{ not json",
    );
    // Under org__x's key, but it says it is a/b__c's.
    let misplaced = manifest("a/b__c", "model", &commit('5'));
    put(
        dir.path(),
        &layout.manifest_key("org/x", &commit('5')),
        &misplaced.to_json_bytes(),
    );
    put(
        dir.path(),
        &layout.ref_key("org/junk", "main"),
        b"../../etc",
    );
    // Larger than any ref: the GET itself fails.
    put(
        dir.path(),
        &layout.ref_key("org/big", "main"),
        &[b'a'; 4096],
    );
    let remote = Remote::Dir(DirRemote::new(dir.path().to_path_buf()));

    let mut catalog = Catalog::list(&remote, &layout, false).await.unwrap();
    catalog.read(&Scope::All).await.unwrap();
    let warnings = catalog.warnings();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(
        warnings[0].starts_with("manifests/org__junk@"),
        "{warnings:?}"
    );
    assert!(warnings[0].ends_with("; ignored"), "{warnings:?}");
    assert!(
        warnings[1].contains("describes a/b__c@") && warnings[1].contains("another key"),
        "{warnings:?}"
    );
    assert!(
        warnings[2].starts_with("cannot read refs/org__big/main: "),
        "{warnings:?}"
    );
    assert_eq!(
        warnings[3],
        "refs/org__junk/main: ref body is not a commit hash; ignored"
    );
    assert_eq!(catalog.revisions().count(), 2, "only valid manifests");
    assert!(matches!(
        catalog.manifest_entry("org__x", &commit('5')).unwrap().body,
        Body::Failed(ReadFailure::Misplaced(_))
    ));

    // Strict: the failed GET ends the read; refused content alone does not.
    let mut strict = Catalog::list(&remote, &layout, false)
        .await
        .unwrap()
        .reading(2, ReadMode::Strict);
    strict.read_manifests(|_, _| true).await.unwrap();
    let err = strict.read_refs(|_, _| true).await.unwrap_err();
    assert!(
        !err.is_fatal() && err.to_string().contains("refs/org__big/main"),
        "{err}"
    );
    // Only the refs asked for are read.
    let mut some = Catalog::list(&remote, &layout, false).await.unwrap();
    some.read(&Scope::repos(["org/junk"])).await.unwrap();
    assert_eq!(some.warnings().len(), 2, "{:?}", some.warnings());
    assert!(matches!(
        some.ref_entry("a__b__c", "main").unwrap().body,
        Body::Unread
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn ref_targets_read_only_the_manifests_their_refs_name() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::new("");
    shared_key_remote(dir.path(), &layout);
    let remote = Remote::Dir(DirRemote::new(dir.path().to_path_buf()));
    let mut catalog = Catalog::list(&remote, &layout, false).await.unwrap();
    catalog
        .read_ref_targets(|_, name| name == "main")
        .await
        .unwrap();
    let mains: Vec<&Manifest> = catalog
        .refs()
        .filter(|r| r.name == "main")
        .filter_map(|r| catalog.manifest_named_by(r))
        .collect();
    assert_eq!(mains.len(), 1);
    assert_eq!(mains[0].repo, "a/b__c");
    // The dataset's manifest is named by no `main`: left unread.
    assert!(matches!(
        catalog
            .manifest_entry("a__b__c", &commit('2'))
            .unwrap()
            .body,
        Body::Unread
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_remote_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let remote = Remote::Dir(DirRemote::new(dir.path().join("absent")));
    let err = Catalog::list(&remote, &Layout::new(""), true)
        .await
        .err()
        .expect("no such directory");
    assert!(err.is_fatal(), "{err}");
}
