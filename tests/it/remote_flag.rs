//! `--remote` means one thing on every command that talks to a remote: the configured remote
//! when bare, or the `s3://bucket/prefix` or directory given. Today's invocations keep working.

use std::fs;

use crate::common::fixtures::CONFIG;
use crate::common::spec::RepoSpec;
use crate::common::{git_sha1_hex, manifest_key, ref_key, CacheView, Sandbox};

/// A test-bucket sandbox whose cache holds org/m, pushed to a directory and to another prefix
/// of the bucket, never to the configured prefix.
fn pushed_elsewhere(
    name: &str,
) -> (
    Sandbox,
    RepoSpec,
    std::path::PathBuf,
    std::path::PathBuf,
    String,
) {
    let t = Sandbox::new(name);
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let dir = t.path("share");
    t.hfcs()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&dir)
        .run()
        .success();
    let other = format!("s3://{}/{}-other", t.garage().bucket, t.prefix);
    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .arg(format!("--remote={other}"))
        .run()
        .success();
    assert!(
        t.bucket().keys().is_empty(),
        "the configured prefix stays empty"
    );
    (t, m, src, dir, other)
}

fn ids(out: &crate::common::cli::Output) -> Vec<&str> {
    out.stdout.lines().collect()
}

#[test]
fn a_directory_or_another_prefix_is_listed_diffed_verified_and_cleaned() {
    let (t, m, src, dir, other) = pushed_elsewhere("remote_flag_elsewhere");
    let dir_flag = format!("--remote={}", dir.display());

    for flag in [dir_flag.as_str(), &format!("--remote={other}")] {
        let out = t.hfcs().args(["list", flag, "-q"]).run().success();
        assert_eq!(ids(&out), ["model/org/m"], "{out}");
        let out = t
            .hfcs()
            .json()
            .cache_dir(&src)
            .args(["diff", flag])
            .run()
            .success();
        assert_eq!(out.json()["in_sync"], 2, "{out}");
        t.hfcs().args(["verify", flag]).run().success();
        let out = t.hfcs().json().args(["status", flag]).run().success();
        assert_eq!(out.json()["remote"]["contents"]["repos"], 1, "{out}");
    }
    // The configured remote holds nothing.
    let out = t.hfcs().args(["list", "--remote", "-q"]).run().success();
    assert!(ids(&out).is_empty(), "{out}");

    // After a space, a path or URL is the remote too, and the repo ids follow.
    t.hfcs()
        .args(["verify", "--remote"])
        .arg(&dir)
        .arg("org/m")
        .run()
        .success();

    // verify --repair takes its blobs from the remote given.
    let view = CacheView::model(&src, "org/m");
    let config = git_sha1_hex(&m.revision("main").file(CONFIG).bytes);
    fs::write(view.blob(&config), b"{}").unwrap();
    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["verify", "--repair", &dir_flag])
        .run()
        .success();
    assert_eq!(out.json()["repaired"].as_array().unwrap().len(), 1, "{out}");
    m.assert_pulled(&src, "main");

    // rm cleans the remote it is given, never the configured one.
    // A directory remote keeps the team prefix of the configuration.
    let main_ref = dir.join(&t.prefix).join(ref_key("org/m", "main"));
    assert!(main_ref.exists());
    t.hfcs()
        .args(["rm", "--remote"])
        .arg(&dir)
        .args(["org/m", "--yes"])
        .run()
        .success();
    assert!(!main_ref.exists(), "removed from the directory");
    let manifest = manifest_key("org/m", m.commit("main"));
    assert!(!dir.join(&t.prefix).join(manifest).exists());
    let out = t.hfcs().args(["list", &dir_flag, "-q"]).run().success();
    assert!(ids(&out).is_empty(), "{out}");
}

#[test]
fn todays_invocations_keep_working() {
    let t = Sandbox::new("remote_flag_compat");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();

    let out = t.hfcs().args(["list", "--remote", "-q"]).run().success();
    assert_eq!(ids(&out), ["model/org/m"], "{out}");
    t.hfcs().args(["verify", "--remote"]).run().success();
    // A repo id after a bare --remote is a repo id, on the configured remote.
    let out = t
        .hfcs()
        .json()
        .args(["verify", "--remote", "org/m"])
        .run()
        .success();
    assert_eq!(out.json()["manifests"], 2, "{out}");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .run()
        .success();
    assert_eq!(
        out.json()["manifests_unchanged"],
        2,
        "bare --remote is the configured one\n{out}"
    );
    t.hfcs()
        .args(["rm", "--remote", "org/m", "--yes"])
        .run()
        .success();
    assert!(!t.bucket().exists(&ref_key("org/m", "main")));
}
