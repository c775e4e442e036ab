//! Repo ids: every form the tool prints (`list -q`, `list --remote -q`, `diff`) is read back by
//! every command, as are `hf://` URIs; a repo that is not there fails alike everywhere (exit 1),
//! naming the close matches.

use std::path::{Path, PathBuf};

use crate::common::spec::RepoSpec;
use crate::common::{commit_hash, Sandbox};

/// org/m (two revisions), the dataset org/d and the model gpt2 (no organisation), pushed to a
/// directory remote the config names.
fn pushed(t: &Sandbox) -> (PathBuf, PathBuf) {
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    let d = commit_hash("org/d");
    RepoSpec::dataset("org/d")
        .rev(&d, &["main"])
        .file("data.csv", b"a,b\n1,2\n")
        .write(&src);
    let g = commit_hash("gpt2");
    RepoSpec::new("gpt2")
        .rev(&g, &["main"])
        .file("config.json", b"{}\n")
        .write(&src);
    let remote = t.path("remote");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    t.hfcs()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .success();
    (src, remote)
}

fn quiet_ids(t: &Sandbox, cache: &Path, args: &[&str]) -> Vec<String> {
    let out = t
        .hfcs()
        .cache_dir(cache)
        .args(["list", "-q"])
        .args(args)
        .run()
        .success();
    out.stdout.lines().map(String::from).collect()
}

#[test]
fn every_id_the_tool_prints_is_taken_back_by_every_command() {
    let t = Sandbox::local("ids_round_trip");
    let (src, _remote) = pushed(&t);

    // `list -q | xargs -n1 hf-cache-sync pull` pulls every repo.
    let local = quiet_ids(&t, &src, &[]);
    assert_eq!(local, ["dataset/org/d", "model/gpt2", "model/org/m"]);
    let dst = t.cache("dst");
    for id in &local {
        t.hfcs().cache_dir(&dst).args(["pull", id]).run().success();
    }
    assert_eq!(quiet_ids(&t, &dst, &[]), local);

    // What the remote's listings print, with and without the manifests read.
    for args in [&["--remote"][..], &["--remote", "--manifests"]] {
        let ids = quiet_ids(&t, &src, args);
        assert_eq!(ids.len(), 3, "{ids:?}");
        let dst = t.cache(&format!("dst{}", args.len()));
        for id in &ids {
            t.hfcs().cache_dir(&dst).args(["pull", id]).run().success();
        }
        assert_eq!(quiet_ids(&t, &dst, &[]), local, "{args:?}");
    }

    // Each `repo` diff prints, and hf:// URIs as `hf cache rm` takes them.
    let out = t.hfcs().json().cache_dir(&src).arg("diff").run().success();
    let mut named: Vec<String> = out.json()["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["repo"].as_str().unwrap().to_string())
        .collect();
    named.extend(["hf://org/m", "hf://models/gpt2", "hf://datasets/org/d"].map(String::from));
    for id in &named {
        for cmd in [
            &["diff"][..],
            &["verify"],
            &["verify", "--remote"],
            &["push", "--dry-run"],
        ] {
            t.hfcs().cache_dir(&src).args(cmd).arg(id).run().success();
        }
    }
    t.hfcs()
        .cache_dir(&dst)
        .args(["rm", "hf://datasets/org/d", "model/gpt2", "--yes"])
        .run()
        .success();
    assert_eq!(quiet_ids(&t, &dst, &[]), ["model/org/m"]);
}

#[test]
fn a_repo_that_is_not_there_fails_alike_in_every_command() {
    let t = Sandbox::local("ids_not_there");
    let (src, _remote) = pushed(&t);
    let commands: [&[&str]; 7] = [
        &["push", "org/mm"],
        &["verify", "org/mm"],
        &["verify", "--remote", "org/mm"],
        &["diff", "org/mm"],
        &["pull", "org/mm"],
        &["rm", "org/mm", "--yes"],
        &["rm", "--remote", "org/mm", "--yes"],
    ];
    for args in commands {
        let out = t
            .hfcs()
            .cache_dir(&src)
            .args(args)
            .run()
            .code(1)
            .stderr_has("org/mm");
        let hint = out.stderr.lines().last().unwrap_or_default().to_string();
        assert!(hint.starts_with("hint: did you mean "), "{args:?}\n{out}");
        assert!(hint.contains("org/m"), "{args:?}\n{out}");
    }
    // A type that is not the cached one is not the cached repo.
    t.hfcs()
        .cache_dir(&src)
        .args(["verify", "dataset/org/m"])
        .run()
        .code(1)
        .stderr_has("did you mean model/org/m");

    // Ids that cannot be repo ids, and types that disagree, are usage errors.
    for args in [
        &["pull", "a/b/c/d"][..],
        &["push", "org//m"],
        &["pull", "dataset/org/d", "--repo-type", "model"],
        &["diff", "hf://datasets/a/b/c"],
    ] {
        t.hfcs()
            .cache_dir(&src)
            .args(args)
            .run()
            .code(2)
            .stderr_has("hint: ");
    }
}
