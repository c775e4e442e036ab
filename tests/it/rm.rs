//! `rm`: deleting repos and revisions from the local cache and from the remote, and refusing
//! targets that are unknown or ambiguous.

use std::fs;

use serde_json::{json, Value};

use crate::common::cache::{pseudo_random, set_modified_ago};
use crate::common::fixtures::{CONFIG, WEIGHTS};
use crate::common::spec::RepoSpec;
use crate::common::{
    check_cache, commit_hash, files_under, git_sha1_hex, hold_lock, manifest_key, ref_key,
    scanned_repo, sha256_hex, CacheBuilder, CacheView, Download, Key, Sandbox,
};

fn strings(v: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = v[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} in {v}"))
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

fn field_of(v: &Value, list: &str, field: &str) -> Vec<String> {
    let mut out: Vec<String> = v[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {v}"))
        .iter()
        .map(|x| x[field].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn removing_a_repo_takes_its_folder_refs_and_lock_files() {
    let t = Sandbox::local("rm_repo");
    let cache = t.cache("hub");
    let a = RepoSpec::two_revisions("org/a");
    let b = RepoSpec::two_revisions("org/b");
    a.write(&cache);
    b.write(&cache);
    // A lock file huggingface_hub left behind after a finished download.
    let locks = cache.join(".locks").join("models--org--a");
    fs::create_dir_all(&locks).unwrap();
    fs::write(
        locks.join(format!("{}.lock", a.revision("main").file(WEIGHTS).etag())),
        b"",
    )
    .unwrap();

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["rm", "org/a", "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["command"], "rm", "{out}");
    assert_eq!(s["targets"][0]["target"], "org/a", "{out}");
    assert_eq!(s["targets"][0]["repo_type"], "model", "{out}");
    assert_eq!(s["targets"][0]["whole_repo"], true, "{out}");
    assert_eq!(
        strings(&s["targets"][0], "commits"),
        {
            let mut c = vec![a.commit("v1.0").to_string(), a.commit("main").to_string()];
            c.sort();
            c
        },
        "{out}"
    );
    assert_eq!(field_of(&s, "repos", "repo"), vec!["model/org/a"], "{out}");
    assert_eq!(field_of(&s, "refs", "name"), vec!["main", "v1.0"], "{out}");
    assert_eq!(s["bytes_freed"], a.total_bytes(), "{out}");
    assert_eq!(s["failures"], json!([]), "{out}");

    assert!(!CacheView::model(&cache, "org/a").exists());
    assert!(!locks.exists(), "the repo's lock files go with it");
    b.assert_pulled(&cache, "main");
    b.assert_pulled(&cache, "v1.0");
    check_cache(&cache, &b.downloads("main"));
}

#[test]
fn a_repo_with_a_download_in_progress_keeps_its_folder() {
    let t = Sandbox::local("rm_downloading");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);
    let view = CacheView::model(&cache, "org/m");
    let etag = sha256_hex(b"the next shard");
    let partial = view.blob(&format!("{etag}.1a2b3c4d.incomplete"));
    fs::write(&partial, b"half a shard").unwrap();
    // Old enough to be abandoned, were it not for the lock a download holds.
    set_modified_ago(&partial, std::time::Duration::from_secs(3 * 3600));
    let download = hold_lock(
        &cache
            .join(".locks")
            .join("models--org--m")
            .join(format!("{etag}.lock")),
    );

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["rm", "org/m", "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["repos"], json!([]), "the folder stays\n{out}");
    assert_eq!(s["revisions"].as_array().unwrap().len(), 2, "{out}");
    assert_eq!(field_of(&s, "refs", "name"), vec!["main", "v1.0"], "{out}");
    assert_eq!(field_of(&s, "blobs", "etag"), m.etags(), "{out}");
    assert_eq!(s["bytes_freed"], m.total_bytes(), "{out}");
    let kept = field_of(&s, "kept", "path");
    assert!(kept.contains(&partial.display().to_string()), "{out}");
    assert!(partial.exists());
    assert_eq!(
        files_under(&view.dir.join("snapshots")),
        Vec::<String>::new()
    );
    // A repo folder with an empty snapshots/ is one huggingface_hub accepts.
    check_cache(&cache, &[]);

    drop(download);
    t.bare()
        .cache_dir(&cache)
        .args(["rm", "org/m", "--yes"])
        .run()
        .success();
    assert!(!view.exists(), "the abandoned download goes once unlocked");
    check_cache(&cache, &[]);
}

#[test]
fn removing_a_revision_by_hash_prefix_keeps_blobs_other_revisions_use() {
    let t = Sandbox::local("rm_revision");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["rm", &m.commit("v1.0")[..8], "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(
        strings(&s["targets"][0], "commits"),
        vec![m.commit("v1.0").to_string()],
        "{out}"
    );
    assert_eq!(s["targets"][0]["whole_repo"], false, "{out}");
    assert_eq!(
        field_of(&s, "revisions", "commit"),
        vec![m.commit("v1.0").to_string()],
        "{out}"
    );
    assert_eq!(field_of(&s, "refs", "name"), vec!["v1.0"], "{out}");
    // Only the config differs between the revisions; the weights and tokenizer stay.
    assert_eq!(
        field_of(&s, "blobs", "etag"),
        vec![git_sha1_hex(&m.revision("v1.0").file(CONFIG).bytes)],
        "{out}"
    );
    assert_eq!(
        s["bytes_freed"],
        m.revision("v1.0").file(CONFIG).bytes.len(),
        "{out}"
    );
    assert_eq!(s["repos"], json!([]), "{out}");

    let view = CacheView::model(&cache, "org/m");
    assert_eq!(view.ref_("v1.0"), None);
    assert_eq!(view.ref_("main").as_deref(), Some(m.commit("main")));
    assert!(!view.snapshot(m.commit("v1.0"), "").exists());
    m.assert_pulled(&cache, "main");
    let scan = check_cache(&cache, &m.downloads("main"));
    let repo = scanned_repo(&scan, "model", "org/m");
    assert_eq!(repo["revisions"].as_array().unwrap().len(), 1, "{repo}");
}

#[test]
fn a_revision_can_be_named_by_repo_and_ref() {
    let t = Sandbox::local("rm_repo_at_ref");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["rm", "org/m@v1.0", "--yes"])
        .run()
        .success();
    assert_eq!(
        field_of(&out.json(), "revisions", "commit"),
        vec![m.commit("v1.0").to_string()],
        "{out}"
    );
    let out = t
        .bare()
        .cache_dir(&cache)
        .args([
            "rm",
            &format!("model/org/m@{}", &m.commit("main")[..6]),
            "--yes",
        ])
        .run()
        .success();
    assert!(out.stdout.contains("Removed model/org/m"), "{out}");
    assert!(
        !CacheView::model(&cache, "org/m").exists(),
        "no revisions left"
    );
    check_cache(&cache, &[]);
}

#[test]
fn an_ambiguous_hash_prefix_lists_the_candidates() {
    let t = Sandbox::local("rm_ambiguous");
    let cache = t.cache("hub");
    let c1 = format!("abcd{}", "1".repeat(36));
    let c2 = format!("abcd{}", "2".repeat(36));
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&c1)
        .file("config.json", b"{\"m\": 1}\n")
        .repo("org/n")
        .rev(&c2)
        .file("config.json", b"{\"n\": 1}\n");
    let before = files_under(&cache);

    let out = t
        .bare()
        .cache_dir(&cache)
        .args(["rm", "abcd", "--yes"])
        .run()
        .code(2)
        .stderr_has("ambiguous")
        .stderr_has(&format!("model/org/m@{c1}"))
        .stderr_has(&format!("model/org/n@{c2}"))
        .stderr_has("hint: ");
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(files_under(&cache), before, "nothing deleted");

    t.bare()
        .cache_dir(&cache)
        .args(["rm", "abcd2", "--yes"])
        .run()
        .success();
    assert!(CacheView::model(&cache, "org/m").exists());
    assert!(!CacheView::model(&cache, "org/n").exists());
    check_cache(&cache, &[]);
}

#[test]
fn a_model_and_a_dataset_with_one_id_need_the_type() {
    let t = Sandbox::local("rm_type");
    let cache = t.cache("hub");
    let (cm, cd) = (commit_hash("model"), commit_hash("dataset"));
    CacheBuilder::new(&cache)
        .repo("org/x")
        .rev(&cm)
        .file("config.json", b"{}\n")
        .ref_("main", &cm)
        .dataset("org/x")
        .rev(&cd)
        .file("data.csv", b"a,b\n")
        .ref_("main", &cd);

    t.bare()
        .cache_dir(&cache)
        .args(["rm", "org/x", "--yes"])
        .run()
        .code(2)
        .stderr_has("model/org/x")
        .stderr_has("dataset/org/x")
        .stderr_has("hint: ");
    t.bare()
        .cache_dir(&cache)
        .args(["rm", "dataset/org/x", "--yes"])
        .run()
        .success();
    assert!(!CacheView::new(&cache, "dataset", "org/x").exists());
    assert!(CacheView::model(&cache, "org/x").exists());
    check_cache(
        &cache,
        &[Download::model("org/x", "main", "config.json", b"{}\n")],
    );
}

#[test]
fn an_unknown_target_fails_and_deletes_nothing() {
    let t = Sandbox::local("rm_unknown");
    let cache = t.cache("hub");
    RepoSpec::two_revisions("org/m").write(&cache);
    let before = files_under(&cache);
    for target in ["org/nope", "0000ffff", "x"] {
        t.bare()
            .cache_dir(&cache)
            .args(["rm", "org/m", target, "--yes"])
            .run()
            .code(1)
            .stderr_has("no repo or revision matches")
            .stderr_has("hint: ");
    }
    assert_eq!(
        files_under(&cache),
        before,
        "one bad target deletes nothing"
    );
}

#[test]
fn a_shared_store_payload_goes_with_its_last_link() {
    let t = Sandbox::local("rm_shared_store");
    let cache = t.cache("hub");
    let weights = pseudo_random("xet weights", 100 * 1024);
    let (p1, q1) = (commit_hash("p"), commit_hash("q"));
    CacheBuilder::new(&cache)
        .repo("org/p")
        .rev(&p1)
        .lfs_file("w.bin", &weights)
        .shared_store()
        .ref_("main", &p1)
        .repo("org/q")
        .rev(&q1)
        .lfs_file("w.bin", &weights)
        .shared_store()
        .ref_("main", &q1);
    let payloads = || -> Vec<String> {
        files_under(&cache.join("blobs"))
            .into_iter()
            .filter(|f| f.contains('/') && !f.ends_with(".refs"))
            .collect()
    };
    assert_eq!(payloads().len(), 1, "one payload, linked from both repos");
    check_cache(&cache, &[]);

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["rm", "org/p", "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["blobs"][0]["shared"], true, "{out}");
    assert_eq!(s["shared_blobs"], json!([]), "org/q still links it\n{out}");
    assert_eq!(s["bytes_freed"], 0, "{out}");
    assert_eq!(payloads().len(), 1);
    check_cache(
        &cache,
        &[Download::model("org/q", "main", "w.bin", &weights)],
    );

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["rm", "org/q", "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["shared_blobs"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(s["bytes_freed"], weights.len(), "{out}");
    assert!(payloads().is_empty(), "{:?}", payloads());
    assert!(
        !files_under(&cache.join("blobs"))
            .iter()
            .any(|f| f.ends_with(".refs") || f.ends_with(".lock")),
        "{:?}",
        files_under(&cache.join("blobs"))
    );
    check_cache(&cache, &[]);
}

#[test]
fn without_yes_a_non_terminal_stdin_is_refused() {
    let t = Sandbox::local("rm_no_yes");
    let cache = t.cache("hub");
    RepoSpec::two_revisions("org/m").write(&cache);
    let before = files_under(&cache);
    for args in [&["rm", "org/m"][..], &["rm", "--remote", "org/m"]] {
        let out = t
            .bare()
            .cache_dir(&cache)
            .args(args)
            .run()
            .code(2)
            .stderr_has("--yes");
        assert!(out.stdout.is_empty(), "{out}");
    }
    assert_eq!(files_under(&cache), before);
    // A dry run needs no consent.
    let out = t
        .bare()
        .cache_dir(&cache)
        .args(["rm", "org/m", "--dry-run"])
        .run()
        .success();
    assert!(out.stdout.contains("Would remove model/org/m"), "{out}");
    assert_eq!(files_under(&cache), before);
}

/// Full keys (with the sandbox prefix), sorted.
fn full(t: &Sandbox, keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = keys.iter().map(|k| format!("{}/{k}", t.prefix)).collect();
    out.sort();
    out
}

#[test]
fn remote_rm_deletes_refs_and_manifests_and_leaves_blobs() {
    let t = Sandbox::new("rm_remote");
    let src = t.cache("src");
    let m = RepoSpec::two_revisions("org/m");
    let other = RepoSpec::two_revisions("org/other");
    m.write(&src);
    other.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let bucket = t.bucket();
    // A dataset with the same id: its keys look like the model's, only the bodies tell.
    let ds = commit_hash("dataset org/m");
    bucket.put(
        &manifest_key("org/m", &ds),
        json!({"repo": "org/m", "revision": ds, "repo_type": "dataset", "files": []}).to_string(),
    );
    bucket.put(&ref_key("org/m", "dataset-main"), ds.clone());
    let before = bucket.keys();

    t.hfcs()
        .args(["rm", "--remote", "org/m", "--yes"])
        .run()
        .code(2)
        .stderr_has("model/org/m")
        .stderr_has("dataset/org/m");

    let out = t
        .hfcs()
        .json()
        .args(["rm", "--remote", "model/org/m", "--dry-run"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["dry_run"], true, "{out}");
    assert_eq!(
        strings(&s, "refs"),
        full(&t, &[ref_key("org/m", "main"), ref_key("org/m", "v1.0")]),
        "{out}"
    );
    assert_eq!(
        strings(&s, "manifests"),
        full(
            &t,
            &[
                manifest_key("org/m", m.commit("v1.0")),
                manifest_key("org/m", m.commit("main"))
            ]
        ),
        "{out}"
    );
    assert_eq!(bucket.keys(), before, "a dry run deleted something");

    // One revision, by hash prefix: its manifest and the ref naming it.
    let out = t
        .hfcs()
        .json()
        .args(["rm", "--remote", &m.commit("v1.0")[..10], "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["targets"][0]["repo"], "model/org/m", "{out}");
    assert_eq!(
        strings(&s, "refs"),
        full(&t, &[ref_key("org/m", "v1.0")]),
        "{out}"
    );
    assert_eq!(
        strings(&s, "manifests"),
        full(&t, &[manifest_key("org/m", m.commit("v1.0"))]),
        "{out}"
    );
    assert!(!bucket.exists(&manifest_key("org/m", m.commit("v1.0"))));
    assert!(bucket.exists(&manifest_key("org/m", m.commit("main"))));

    // The rest of the repo.
    let out = t
        .hfcs()
        .args(["rm", "--remote", "model/org/m", "--yes"])
        .run()
        .success();
    assert!(out.stdout.contains("Blobs stay on the remote"), "{out}");
    let gone = [
        manifest_key("org/m", m.commit("v1.0")),
        manifest_key("org/m", m.commit("main")),
        ref_key("org/m", "main"),
        ref_key("org/m", "v1.0"),
    ];
    let expected: Vec<String> = before
        .iter()
        .filter(|k| !gone.contains(k))
        .cloned()
        .collect();
    assert_eq!(bucket.keys(), expected);
    // Blobs, the other repo and the dataset that shares the key are untouched.
    assert!(bucket.exists(&format!(
        "blobs/{}",
        sha256_hex(&m.revision("main").file(WEIGHTS).bytes)
    )));
    assert_eq!(bucket.get_text(&ref_key("org/m", "dataset-main")), ds);
    assert_eq!(
        bucket.get_text(&ref_key("org/other", "main")),
        other.commit("main")
    );
}

#[test]
fn remote_rm_with_a_read_only_key_is_refused() {
    let t = Sandbox::new("rm_remote_ro");
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let bucket = t.bucket();
    let before = bucket.keys();

    t.write_config(&t.garage_yaml(Key::ReadOnly));
    let out = t
        .hfcs()
        .args(["rm", "--remote", "org/m", "--yes"])
        .run()
        .code(1)
        .stderr_has("error: access denied: this key cannot delete from bucket")
        .stderr_has("hint: ");
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(bucket.keys(), before, "nothing deleted");
}

/// A directory remote holding `repos`, pushed from a fresh cache.
fn pushed_to_dir(t: &Sandbox, repos: &[&RepoSpec]) -> std::path::PathBuf {
    let remote = t.cache("remote");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    let src = t.cache("src");
    for r in repos {
        r.write(&src);
    }
    t.hfcs().cache_dir(&src).arg("push").run().success();
    remote
}

/// An object larger than any manifest or ref (sparse, so it costs no disk): reading it fails,
/// while every other object of the remote reads fine.
fn plant_oversized(path: &std::path::Path, len: u64) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::File::create(path).unwrap().set_len(len).unwrap();
}

fn keep_reason<'a>(s: &'a Value, path: &str) -> &'a str {
    s["kept"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["path"] == path)
        .unwrap_or_else(|| panic!("{path} not kept in {s}"))["reason"]
        .as_str()
        .unwrap()
}

#[test]
fn remote_rm_keeps_what_it_cannot_read_and_deletes_the_rest() {
    let t = Sandbox::local("rm_remote_unreadable");
    let (m, other, r) = (
        RepoSpec::two_revisions("org/m"),
        RepoSpec::two_revisions("org/other"),
        RepoSpec::two_revisions("org/r"),
    );
    let remote = pushed_to_dir(&t, &[&m, &other, &r]);
    // A third revision of org/m whose manifest cannot be read, and a ref naming it.
    let bogus = commit_hash("bogus");
    let bogus_key = manifest_key("org/m", &bogus);
    plant_oversized(&remote.join(&bogus_key), 64 * 1024 * 1024 + 1);
    let pr1 = remote.join(ref_key("org/m", "pr/1"));
    fs::create_dir_all(pr1.parent().unwrap()).unwrap();
    fs::write(&pr1, &bogus).unwrap();
    // A ref of org/r that cannot be read: it may name any of org/r's revisions.
    let big_ref = ref_key("org/r", "pr/2");
    plant_oversized(&remote.join(&big_ref), 4096);

    // Another repo is untouched by what cannot be read elsewhere.
    let out = t
        .hfcs()
        .json()
        .args(["rm", "--remote", "org/other", "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(strings(&s, "manifests").len(), 2, "{out}");
    assert_eq!(s["failures"], json!([]), "{out}");
    assert!(!out.stderr.contains("warning"), "{out}");

    // org/m: its two readable revisions and their refs go; the unreadable one stays, with the
    // ref naming it, and is named as a failure.
    let out = t
        .hfcs()
        .json()
        .args(["rm", "--remote", "org/m", "--yes"])
        .run()
        .code(1)
        .stderr_has(&format!("warning: cannot read {bogus_key}: "));
    let s = out.json();
    assert_eq!(
        strings(&s, "refs"),
        [ref_key("org/m", "main"), ref_key("org/m", "v1.0")],
        "{out}"
    );
    let mut gone = vec![
        manifest_key("org/m", m.commit("v1.0")),
        manifest_key("org/m", m.commit("main")),
    ];
    gone.sort();
    assert_eq!(strings(&s, "manifests"), gone, "{out}");
    assert_eq!(
        field_of(&s, "failures", "item"),
        std::slice::from_ref(&bogus_key),
        "{out}"
    );
    assert!(
        s["failures"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot read: "),
        "{out}"
    );
    assert!(
        keep_reason(&s, &bogus_key).starts_with("cannot be read"),
        "{out}"
    );
    assert!(
        keep_reason(&s, &ref_key("org/m", "pr/1")).contains("cannot be read"),
        "{out}"
    );
    for k in &gone {
        assert!(!remote.join(k).exists(), "{k} left");
    }
    assert!(remote.join(&bogus_key).exists());
    assert!(remote.join(ref_key("org/m", "pr/1")).exists());
    assert!(
        remote.join(ref_key("org/r", "main")).exists(),
        "org/r untouched"
    );

    // org/r: the ref that cannot be read may name the revision asked for, so it stays; the
    // human summary says why.
    let out = t
        .hfcs()
        .args([
            "rm",
            "--remote",
            &format!("org/r@{}", &r.commit("v1.0")[..8]),
            "--yes",
        ])
        .run()
        .code(1)
        .stderr_has(&format!("warning: cannot read {big_ref}: "));
    assert!(
        out.stdout.starts_with("Deleted 0 refs and 0 manifests"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!(
            "Kept {}: {big_ref} cannot be read and may name it; left in place",
            manifest_key("org/r", r.commit("v1.0"))
        )),
        "{out}"
    );
    assert!(
        out.stdout
            .contains(&format!("Failed to delete {big_ref}: cannot read: ")),
        "{out}"
    );
    assert!(remote
        .join(manifest_key("org/r", r.commit("v1.0")))
        .exists());
    assert!(remote.join(ref_key("org/r", "v1.0")).exists());
}
