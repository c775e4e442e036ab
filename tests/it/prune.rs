//! `prune`: which revisions, blobs and partial downloads go, which stay, the bytes reported, and
//! that huggingface_hub still accepts the cache afterwards.

use std::fs;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::common::cache::{
    pseudo_random, set_accessed_ago, set_modified_ago, set_revision_accessed_ago,
};
use crate::common::fixtures::CONFIG;
use crate::common::spec::RepoSpec;
use crate::common::{
    check_cache, commit_hash, files_under, git_sha1_hex, hold_lock, scanned_repo, sha256_hex,
    CacheBuilder, CacheView, Download, Sandbox,
};

const DAY: Duration = Duration::from_secs(24 * 3600);
const HOUR: Duration = Duration::from_secs(3600);
/// `--max-gb` counts GiB of 2^30 bytes.
const GIB: f64 = (1u64 << 30) as f64;

/// The `--max-gb` value for a budget of exactly `bytes`.
fn max_gb(bytes: u64) -> String {
    format!("{}", bytes as f64 / GIB)
}

/// The commits of the `revisions` a summary lists, in its order.
fn commits(summary: &Value) -> Vec<String> {
    summary["revisions"]
        .as_array()
        .unwrap_or_else(|| panic!("no revisions in {summary}"))
        .iter()
        .map(|r| r["commit"].as_str().unwrap().to_string())
        .collect()
}

/// The etags of the `blobs` a summary lists, sorted.
fn blob_etags(summary: &Value) -> Vec<String> {
    let mut etags: Vec<String> = summary["blobs"]
        .as_array()
        .unwrap_or_else(|| panic!("no blobs in {summary}"))
        .iter()
        .map(|b| b["etag"].as_str().unwrap().to_string())
        .collect();
    etags.sort();
    etags
}

fn kept_paths(summary: &Value) -> Vec<String> {
    summary["kept"]
        .as_array()
        .unwrap_or_else(|| panic!("no kept in {summary}"))
        .iter()
        .map(|k| k["path"].as_str().unwrap().to_string())
        .collect()
}

fn prune(t: &Sandbox, cache: &Path, args: &[&str]) -> crate::common::cli::Output {
    t.bare()
        .json()
        .cache_dir(cache)
        .arg("prune")
        .args(args)
        .run()
}

#[test]
fn budget_eviction_takes_unreferenced_revisions_least_recently_used_first() {
    let t = Sandbox::local("prune_budget");
    let cache = t.cache("hub");
    let config = b"{\"hidden_size\": 64}\n".to_vec();
    let w_main = pseudo_random("a main", 100 * 1024);
    let w_old = pseudo_random("a old", 200 * 1024);
    let w_b1 = pseudo_random("b 1", 150 * 1024);
    let w_b2 = pseudo_random("b 2", 50 * 1024);
    let (a_main, a_old) = (commit_hash("a main"), commit_hash("a old"));
    let (b1, b2) = (commit_hash("b 1"), commit_hash("b 2"));
    CacheBuilder::new(&cache)
        .repo("org/a")
        .rev(&a_main)
        .file("config.json", &config)
        .lfs_file("model.safetensors", &w_main)
        .ref_("main", &a_main)
        .rev(&a_old)
        .file("config.json", &config)
        .lfs_file("model.safetensors", &w_old)
        .repo("org/b")
        .rev(&b1)
        .lfs_file("model.safetensors", &w_b1)
        .rev(&b2)
        .lfs_file("model.safetensors", &w_b2)
        .ref_("main", &b2);
    let a = CacheView::model(&cache, "org/a");
    let b = CacheView::model(&cache, "org/b");
    // org/a's main is the oldest of all, but a ref points at it.
    set_revision_accessed_ago(&a.dir, &a_old, 20 * DAY);
    set_revision_accessed_ago(&a.dir, &a_main, 30 * DAY);
    set_revision_accessed_ago(&b.dir, &b1, 10 * DAY);

    let total = (config.len() + w_main.len() + w_old.len() + w_b1.len() + w_b2.len()) as u64;
    // Removing the old revision's own weights is exactly enough; the config it shares with main
    // stays and is not counted.
    let budget = total - w_old.len() as u64;
    let out = prune(&t, &cache, &["--max-gb", &max_gb(budget), "--yes"]).success();
    let s = out.json();
    assert_eq!(s["command"], "prune", "{out}");
    assert_eq!(s["dry_run"], false, "{out}");
    assert_eq!(commits(&s), vec![a_old.clone()], "{out}");
    assert_eq!(s["revisions"][0]["reason"], "budget", "{out}");
    assert_eq!(s["revisions"][0]["repo"], "model/org/a", "{out}");
    assert_eq!(s["revisions"][0]["bytes"], w_old.len(), "{out}");
    assert_eq!(s["bytes_freed"], w_old.len(), "{out}");
    assert_eq!(s["size_before"], total, "{out}");
    assert_eq!(s["size_after"], budget, "{out}");
    assert_eq!(s["budget_bytes"], budget, "{out}");
    assert_eq!(s["within_budget"], true, "{out}");
    assert_eq!(blob_etags(&s), vec![sha256_hex(&w_old)], "{out}");
    assert_eq!(s["repos"], serde_json::json!([]), "{out}");

    assert!(!a.snapshot(&a_old, "").exists());
    assert!(!a.has_blob(&sha256_hex(&w_old)));
    assert!(a.has_blob(&git_sha1_hex(&config)), "shared with main");
    assert!(
        b.snapshot(&b1, "model.safetensors").exists(),
        "used more recently"
    );
    let scan = check_cache(
        &cache,
        &[
            Download::model("org/a", "main", "config.json", &config),
            Download::model("org/a", "main", "model.safetensors", &w_main),
            Download::model("org/b", &b1, "model.safetensors", &w_b1),
        ],
    );
    let repo = scanned_repo(&scan, "model", "org/a");
    assert_eq!(repo["revisions"].as_array().unwrap().len(), 1, "{repo}");
}

#[test]
fn a_blob_shared_by_evicted_revisions_is_counted_once() {
    let t = Sandbox::local("prune_shared_once");
    let cache = t.cache("hub");
    let weights = pseudo_random("shared weights", 300 * 1024);
    let (cx, cy) = (b"{\"x\": 1}\n".to_vec(), b"{\"y\": 22}\n".to_vec());
    let (x, y) = (commit_hash("x"), commit_hash("y"));
    CacheBuilder::new(&cache)
        .repo("org/c")
        .rev(&x)
        .file("config.json", &cx)
        .lfs_file("model.safetensors", &weights)
        .rev(&y)
        .file("config.json", &cy)
        .lfs_file("model.safetensors", &weights);
    let c = CacheView::model(&cache, "org/c");
    set_accessed_ago(&c.blob(&git_sha1_hex(&cy)), 30 * DAY);
    set_accessed_ago(&c.blob(&sha256_hex(&weights)), 20 * DAY);
    set_accessed_ago(&c.blob(&git_sha1_hex(&cx)), 10 * DAY);

    let out = prune(&t, &cache, &["--max-gb", "0", "--yes"]).success();
    let s = out.json();
    // y was used least recently: evicting it alone frees only its config; x then frees the
    // weights they shared, once.
    assert_eq!(commits(&s), vec![y.clone(), x.clone()], "{out}");
    assert_eq!(s["revisions"][0]["bytes"], cy.len(), "{out}");
    assert_eq!(
        s["revisions"][1]["bytes"],
        weights.len() + cx.len(),
        "{out}"
    );
    assert_eq!(
        s["bytes_freed"],
        weights.len() + cx.len() + cy.len(),
        "{out}"
    );
    assert_eq!(s["size_after"], 0, "{out}");
    // No revision left: the repo folder goes too.
    assert_eq!(s["repos"][0]["repo"], "model/org/c", "{out}");
    assert!(!c.exists());
    assert!(
        !cache.join(".locks").join("models--org--c").exists(),
        "no lock files left behind"
    );
    check_cache(&cache, &[]);
}

#[test]
fn detached_removes_every_revision_no_ref_points_at() {
    let t = Sandbox::local("prune_detached");
    let cache = t.cache("hub");
    let [main, tag, d1, d2] = ["main", "tag", "d1", "d2"].map(commit_hash);
    let mut builder = CacheBuilder::new(&cache).repo("org/m");
    for c in [&main, &tag, &d1, &d2] {
        builder = builder
            .rev(c)
            .file("config.json", format!("{{\"rev\": \"{c}\"}}").as_bytes());
    }
    builder.ref_("main", &main).ref_("v1.0", &tag);

    let out = prune(&t, &cache, &["--detached", "--yes"]).success();
    let s = out.json();
    let mut removed = commits(&s);
    removed.sort();
    let mut expected = vec![d1.clone(), d2.clone()];
    expected.sort();
    assert_eq!(removed, expected, "{out}");
    assert!(s["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["reason"] == "detached"));
    assert_eq!(s["detached"], true, "{out}");
    let m = CacheView::model(&cache, "org/m");
    assert_eq!(m.ref_("main").as_deref(), Some(main.as_str()));
    assert_eq!(m.ref_("v1.0").as_deref(), Some(tag.as_str()));
    let scan = check_cache(&cache, &[]);
    let repo = scanned_repo(&scan, "model", "org/m");
    assert_eq!(repo["revisions"].as_array().unwrap().len(), 2, "{repo}");
}

#[test]
fn older_than_spares_recently_used_revisions() {
    let t = Sandbox::local("prune_older_than");
    let cache = t.cache("hub");
    let [main, old, recent, old2] = ["main", "old", "recent", "old2"].map(commit_hash);
    let w = |s: &str| pseudo_random(s, 10 * 1024);
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&main)
        .lfs_file("w.bin", &w("main"))
        .ref_("main", &main)
        .rev(&old)
        .lfs_file("w.bin", &w("old"))
        .rev(&old2)
        .lfs_file("w.bin", &w("old2"))
        .rev(&recent)
        .lfs_file("w.bin", &w("recent"));
    let m = CacheView::model(&cache, "org/m");
    set_revision_accessed_ago(&m.dir, &main, 90 * DAY);
    set_revision_accessed_ago(&m.dir, &old, 40 * DAY);
    set_revision_accessed_ago(&m.dir, &old2, 35 * DAY);
    set_revision_accessed_ago(&m.dir, &recent, 2 * DAY);

    // With a budget of 0, every unreferenced revision would go; --older-than spares the recent one.
    let out = prune(
        &t,
        &cache,
        &["--max-gb", "0", "--older-than", "30d", "--yes"],
    )
    .success();
    let s = out.json();
    assert_eq!(commits(&s), vec![old.clone(), old2.clone()], "{out}");
    assert_eq!(s["older_than"], "30d", "{out}");
    assert_eq!(s["within_budget"], false, "{out}");
    let out = out.stderr_has_any(&["over the"]);
    assert!(m.snapshot(&recent, "w.bin").exists(), "{out}");
    assert!(m.snapshot(&main, "w.bin").exists(), "{out}");

    // Same with --detached: nothing recent goes.
    let out = prune(&t, &cache, &["--detached", "--older-than", "30d", "--yes"]).success();
    assert_eq!(commits(&out.json()), Vec::<String>::new(), "{out}");
    let out = prune(&t, &cache, &["--detached", "--older-than", "1d", "--yes"]).success();
    assert_eq!(commits(&out.json()), vec![recent.clone()], "{out}");
    check_cache(&cache, &[]);
}

#[test]
fn orphaned_blobs_go_even_within_the_budget() {
    let t = Sandbox::local("prune_orphans");
    let cache = t.cache("hub");
    let main = commit_hash("main");
    let config = b"{}\n".to_vec();
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&main)
        .file("config.json", &config)
        .ref_("main", &main);
    let m = CacheView::model(&cache, "org/m");
    let orphan = b"left over from a revision deleted by hand\n".to_vec();
    fs::write(m.blob(&git_sha1_hex(&orphan)), &orphan).unwrap();
    set_modified_ago(&m.blob(&git_sha1_hex(&orphan)), 2 * HOUR);
    // Unlinked too, but written a moment ago: a download that links it next, so it stays.
    let fresh = b"downloaded a moment ago\n".to_vec();
    fs::write(m.blob(&git_sha1_hex(&fresh)), &fresh).unwrap();
    // A shared-store payload whose only repo is gone: its .refs manifest names no live link.
    let xet = pseudo_random("xet payload", 64 * 1024);
    CacheBuilder::new(&cache)
        .repo("org/gone")
        .rev(&commit_hash("gone"))
        .lfs_file("w.bin", &xet)
        .shared_store();
    fs::remove_dir_all(cache.join("models--org--gone")).unwrap();
    let store_files = |c: &Path| -> Vec<String> {
        files_under(&c.join("blobs"))
            .into_iter()
            .filter(|f| f.contains('/'))
            .collect()
    };
    assert_eq!(store_files(&cache).len(), 2, "payload and its .refs");

    let out = prune(&t, &cache, &["--yes"]).success();
    let s = out.json();
    assert_eq!(commits(&s), Vec::<String>::new(), "{out}");
    assert_eq!(blob_etags(&s), vec![git_sha1_hex(&orphan)], "{out}");
    assert_eq!(s["blobs"][0]["orphan"], true, "{out}");
    assert_eq!(s["shared_blobs"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(s["bytes_freed"], orphan.len() + xet.len(), "{out}");
    assert!(!m.has_blob(&git_sha1_hex(&orphan)));
    assert!(
        m.has_blob(&git_sha1_hex(&fresh)),
        "younger than the grace period"
    );
    assert!(store_files(&cache).is_empty(), "{:?}", store_files(&cache));
    check_cache(
        &cache,
        &[Download::model("org/m", "main", "config.json", &config)],
    );
}

#[test]
fn a_partial_download_whose_lock_is_held_is_kept() {
    let t = Sandbox::local("prune_partials");
    let cache = t.cache("hub");
    let main = commit_hash("main");
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&main)
        .file("config.json", b"{}\n")
        .ref_("main", &main);
    let m = CacheView::model(&cache, "org/m");
    let (e1, e2, e3) = (sha256_hex(b"1"), sha256_hex(b"2"), sha256_hex(b"3"));
    let downloading = m.blob(&format!("{e1}.a1b2c3d4.incomplete"));
    let abandoned = m.blob(&format!("{e2}.incomplete"));
    let fresh = m.blob(&format!("{e3}.0badcafe.incomplete"));
    for p in [&downloading, &abandoned, &fresh] {
        fs::write(p, pseudo_random("partial", 4096)).unwrap();
    }
    set_modified_ago(&downloading, 2 * DAY);
    set_modified_ago(&abandoned, 2 * DAY);
    // huggingface_hub holds this lock for as long as it downloads e1 (a stalled download need
    // not touch the file for hours).
    let _download = hold_lock(
        &cache
            .join(".locks")
            .join("models--org--m")
            .join(format!("{e1}.lock")),
    );

    let out = prune(&t, &cache, &["--yes"]).success();
    let s = out.json();
    let partials: Vec<&str> = s["partials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert_eq!(partials, vec![abandoned.to_str().unwrap()], "{out}");
    assert_eq!(s["bytes_freed"], 4096, "{out}");
    assert_eq!(
        kept_paths(&s),
        vec![downloading.display().to_string()],
        "{out}"
    );
    assert!(
        s["kept"][0]["reason"].as_str().unwrap().contains("lock"),
        "{out}"
    );
    assert!(downloading.exists(), "locked: a download is in progress");
    assert!(fresh.exists(), "younger than the grace period");
    assert!(!abandoned.exists());
    check_cache(&cache, &[]);
}

#[test]
fn an_orphan_whose_lock_is_held_is_kept_until_released() {
    let t = Sandbox::local("prune_locked_blob");
    let cache = t.cache("hub");
    let main = commit_hash("main");
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&main)
        .file("config.json", b"{}\n")
        .ref_("main", &main);
    let m = CacheView::model(&cache, "org/m");
    // A blob written but not yet linked: what hf_hub_download has between moving the blob into
    // place and creating the snapshot link, all under the blob's lock (here a stalled one, past
    // the grace period that spares fresh orphans anyway).
    let blob = b"just downloaded\n".to_vec();
    let etag = git_sha1_hex(&blob);
    fs::write(m.blob(&etag), &blob).unwrap();
    set_modified_ago(&m.blob(&etag), 2 * HOUR);
    let lock_path = cache
        .join(".locks")
        .join("models--org--m")
        .join(format!("{etag}.lock"));
    fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = fs::File::create(&lock_path).unwrap();
    lock.lock().unwrap();

    let out = prune(&t, &cache, &["--yes"]).success();
    let s = out.json();
    assert_eq!(blob_etags(&s), Vec::<String>::new(), "{out}");
    assert_eq!(
        kept_paths(&s),
        vec![m.blob(&etag).display().to_string()],
        "{out}"
    );
    assert!(m.has_blob(&etag));

    drop(lock);
    let out = prune(&t, &cache, &["--yes"]).success();
    assert_eq!(blob_etags(&out.json()), vec![etag.clone()], "{out}");
    assert!(!m.has_blob(&etag));
    assert!(
        lock_path.exists(),
        "a lock file it did not create is left alone"
    );
    check_cache(&cache, &[]);
}

#[test]
fn dry_run_deletes_nothing() {
    let t = Sandbox::local("prune_dry_run");
    let cache = t.cache("hub");
    let [main, detached] = ["main", "detached"].map(commit_hash);
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&main)
        .lfs_file("w.bin", &pseudo_random("main", 8192))
        .ref_("main", &main)
        .rev(&detached)
        .lfs_file("w.bin", &pseudo_random("detached", 8192));
    let m = CacheView::model(&cache, "org/m");
    fs::write(m.blob(&git_sha1_hex(b"orphan")), b"orphan").unwrap();
    set_modified_ago(&m.blob(&git_sha1_hex(b"orphan")), 3 * HOUR);
    let partial = m.blob(&format!("{}.incomplete", sha256_hex(b"p")));
    fs::write(&partial, b"partial").unwrap();
    set_modified_ago(&partial, 3 * DAY);
    let before = files_under(&cache);

    // No --yes needed: nothing is deleted.
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["prune", "--dry-run", "--detached", "--max-gb", "0"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["dry_run"], true, "{out}");
    assert_eq!(commits(&s), vec![detached.clone()], "{out}");
    assert_eq!(
        blob_etags(&s).len(),
        2,
        "the detached weights and the orphan\n{out}"
    );
    assert_eq!(s["partials"].as_array().unwrap().len(), 1, "{out}");
    assert_eq!(s["bytes_freed"], 8192 + 6 + 7, "{out}");
    assert_eq!(files_under(&cache), before, "a dry run changed the cache");

    let out = t
        .bare()
        .cache_dir(&cache)
        .args(["prune", "--dry-run", "--detached"])
        .run()
        .success();
    assert!(out.stdout.contains("Would remove model/org/m@"), "{out}");
    assert!(out.stdout.contains("Would free"), "{out}");
    assert_eq!(files_under(&cache), before, "a dry run changed the cache");
}

#[test]
fn without_yes_a_non_terminal_stdin_is_refused() {
    let t = Sandbox::local("prune_no_yes");
    let cache = t.cache("hub");
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&commit_hash("detached"))
        .file("config.json", b"{}\n");
    let before = files_under(&cache);
    let out = t
        .bare()
        .cache_dir(&cache)
        .args(["prune", "--max-gb", "0"])
        .run()
        .code(2)
        .stderr_has("--yes");
    assert!(out.stdout.is_empty(), "{out}");
    assert_eq!(files_under(&cache), before);
}

#[test]
fn a_negative_budget_is_a_usage_error() {
    let t = Sandbox::local("prune_bad_budget");
    let cache = t.cache("hub");
    t.bare()
        .cache_dir(&cache)
        .args(["prune", "--max-gb=-1", "--dry-run"])
        .run()
        .code(2)
        .stderr_has("--max-gb");
    t.bare()
        .cache_dir(&cache)
        .args(["prune", "--older-than", "soon", "--dry-run"])
        .run()
        .code(2)
        .stderr_has("invalid duration");
}

#[test]
fn pruning_nothing_says_why_and_what_detached_would_free() {
    let t = Sandbox::local("prune_explains");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);
    // v1.0 detached: the only blob it alone uses is its config.
    std::fs::remove_file(m.dir(&cache).join("refs/v1.0")).unwrap();
    let only_v1 = m.revision("v1.0").file(CONFIG).bytes.len() as u64;

    let out = prune(&t, &cache, &["--dry-run"]).success();
    let s = out.json();
    assert!(s["revisions"].as_array().unwrap().is_empty(), "{out}");
    assert_eq!(
        s["detached_kept"],
        json!({"revisions": 1, "bytes": only_v1}),
        "{out}"
    );

    let out = t
        .bare()
        .cache_dir(&cache)
        .args(["prune", "--dry-run", "--max-gb", "0.5"])
        .run()
        .success();
    assert!(out.stdout.contains("budget 512.0 MiB."), "{out}");
    let line = |start: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?}\n{out}"))
            .to_string()
    };
    assert!(
        line("Nothing to prune: under budget (").contains(" of 512.0 MiB)"),
        "{out}"
    );
    assert!(
        line("Kept 1 revision no ref points at (")
            .contains(&format!("({only_v1} B): --detached removes it")),
        "{out}"
    );

    // With --detached it goes, and nothing is said about what stays.
    let out = prune(&t, &cache, &["--detached", "--dry-run"]).success();
    let s = out.json();
    assert_eq!(commits(&s), [m.commit("v1.0")], "{out}");
    assert!(s["detached_kept"].is_null(), "{out}");
}
