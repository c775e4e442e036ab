//! `pull-all`: every remote repo with a `main` ref, filtered by globs and a limit.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::cache::repo_folder;
use crate::common::{
    assert_cache_tidy, blob_key, check_cache, commit_hash, count, files_under, git_sha1_hex,
    CacheBuilder, CacheView, Download, Sandbox,
};

/// `(repo_type, repo_id)` of each repo pushed by [`team_bucket`], and whether it has `refs/main`.
const REPOS: [(&str, &str, bool); 5] = [
    ("model", "org/a", true),
    ("model", "org/b", true),
    ("model", "other/c", true),
    ("dataset", "org/d", true),
    ("model", "org/no-main", false),
];

fn content(repo_id: &str) -> Vec<u8> {
    format!("{{\"repo\": \"{repo_id}\"}}\n").into_bytes()
}

/// A sandbox whose prefix holds the [`REPOS`], one revision and one file each.
fn team_bucket(name: &str) -> Sandbox {
    let t = Sandbox::new(name);
    let src = t.cache("src");
    for (repo_type, repo_id, has_main) in REPOS {
        let commit = commit_hash(repo_id);
        let b = CacheBuilder::new(&src)
            .repo_of_type(repo_type, repo_id)
            .rev(&commit)
            .file("config.json", &content(repo_id));
        if has_main {
            b.ref_("main", &commit);
        } else {
            b.ref_("v1", &commit);
        }
    }
    t.hfcs().cache_dir(&src).arg("push").run().success();
    t
}

/// The `(repo_type, repo_id)` pairs of a pull-all summary.
fn listed(summary: &Value) -> BTreeSet<(String, String)> {
    summary["repos"]
        .as_array()
        .unwrap_or_else(|| panic!("no repos list in {summary}"))
        .iter()
        .map(|r| {
            (
                r["repo_type"].as_str().unwrap().to_string(),
                r["repo_id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(t, r)| (t.to_string(), r.to_string()))
        .collect()
}

/// The repo folders in a cache.
fn repo_folders(cache: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("--"))
        .collect()
}

#[test]
fn pulls_every_repo_with_a_main_ref() {
    let t = team_bucket("pull_all_every");
    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .arg("pull-all")
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["command"], "pull-all", "{out}");
    assert_eq!(
        listed(&s),
        set(&[
            ("model", "org/a"),
            ("model", "org/b"),
            ("model", "other/c"),
            ("dataset", "org/d")
        ]),
        "{out}"
    );
    for r in s["repos"].as_array().unwrap() {
        assert_eq!(r["status"], "ok", "{out}");
        let repo_id = r["repo_id"].as_str().unwrap();
        assert_eq!(r["revision"], commit_hash(repo_id).as_str(), "{out}");
    }
    assert_eq!(count(&s, "downloaded"), 4, "{out}");
    assert_eq!(count(&s, "failed"), 0, "{out}");

    let mut downloads = Vec::new();
    let contents: Vec<(&str, &str, Vec<u8>)> = REPOS
        .iter()
        .filter(|r| r.2)
        .map(|(ty, id, _)| (*ty, *id, content(id)))
        .collect();
    for (repo_type, repo_id, bytes) in &contents {
        let commit = commit_hash(repo_id);
        let view = CacheView::new(&dst, repo_type, repo_id);
        assert_eq!(
            view.ref_("main").as_deref(),
            Some(commit.as_str()),
            "{repo_id}"
        );
        view.assert_linked_file(&commit, "config.json", &git_sha1_hex(bytes), bytes);
        downloads.push(Download {
            repo_type,
            repo_id,
            revision: "main",
            filename: "config.json",
            bytes,
        });
    }
    assert!(
        !CacheView::model(&dst, "org/no-main").exists(),
        "a repo without refs/main was pulled"
    );
    check_cache(&dst, &downloads);

    // Nothing left to do the second time.
    let s = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .arg("pull-all")
        .run()
        .success()
        .json();
    assert_eq!(count(&s, "downloaded"), 0, "{s}");
    assert_eq!(count(&s, "skipped_existing"), 4, "{s}");
}

#[test]
fn include_exclude_and_limit() {
    let t = team_bucket("pull_all_filters");

    let dst = t.cache("include");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull-all", "--include", "org/*"])
        .run()
        .success();
    assert_eq!(
        listed(&out.json()),
        set(&[("model", "org/a"), ("model", "org/b"), ("dataset", "org/d")]),
        "{out}"
    );
    assert_eq!(
        repo_folders(&dst),
        ["datasets--org--d", "models--org--a", "models--org--b"]
            .map(String::from)
            .into()
    );

    let dst = t.cache("include_exclude");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args([
            "pull-all",
            "--include",
            "org/*",
            "--exclude",
            "org/b",
            "--exclude",
            "*/d",
        ])
        .run()
        .success();
    assert_eq!(listed(&out.json()), set(&[("model", "org/a")]), "{out}");
    assert_eq!(repo_folders(&dst), [repo_folder("model", "org/a")].into());

    let dst = t.cache("exclude_only");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull-all", "--exclude", "org/*"])
        .run()
        .success();
    assert_eq!(listed(&out.json()), set(&[("model", "other/c")]), "{out}");

    let dst = t.cache("limit");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull-all", "--limit", "2"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(listed(&s).len(), 2, "{out}");
    assert_eq!(repo_folders(&dst).len(), 2, "{out}");
    check_cache(&dst, &[]);
}

#[test]
fn dry_run_lists_without_writing() {
    let t = team_bucket("pull_all_dry_run");
    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull-all", "--dry-run"])
        .run()
        .success();
    assert_eq!(listed(&out.json()).len(), 4, "{out}");
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn one_failing_repo_does_not_stop_the_others() {
    let t = team_bucket("pull_all_one_fails");
    let broken = git_sha1_hex(&content("org/b"));
    t.bucket().put(&blob_key(&broken), b"tampered".to_vec());

    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .arg("pull-all")
        .run()
        .code(1);
    let s = out.json();
    for r in s["repos"].as_array().unwrap() {
        let expected = if r["repo_id"] == "org/b" {
            "failed"
        } else {
            "ok"
        };
        assert_eq!(r["status"], expected, "{out}");
        if expected == "failed" {
            assert!(
                r["error"].as_str().is_some_and(|e| !e.is_empty()),
                "a failed repo needs an error\n{out}"
            );
        }
    }
    assert_eq!(count(&s, "downloaded"), 3, "{out}");
    assert!(!CacheView::model(&dst, "org/b").has_blob(&broken));
    assert_cache_tidy(&dst);
    check_cache(&dst, &[]);
}
