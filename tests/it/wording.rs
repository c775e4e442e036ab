//! Messages read as English and point somewhere useful: counts take the singular for one,
//! doctor does not judge a clock it never saw nor accept `init`'s placeholder bucket, a
//! misspelled URL is not taken for a directory, a duration error offers one syntax, and config
//! type errors speak of numbers, not Rust types.

use crate::common::spec::RepoSpec;
use crate::common::{commit_hash, doctor_check, Sandbox};

#[test]
fn counts_of_one_take_the_singular() {
    let (t, _remote) = Sandbox::with_dir_remote("wording_plurals");
    let src = t.cache("src");
    let c = commit_hash("org/one");
    RepoSpec::new("org/one")
        .rev(&c, &["main"])
        .file("config.json", b"{}\n")
        .write(&src);
    let push = t.hfcs().cache_dir(&src).arg("push").run().success();
    assert!(push.stdout.starts_with("Uploaded 1 blob ("), "{push}");
    assert!(
        push.stdout.contains("1 manifest and 1 ref written"),
        "{push}"
    );
    assert!(push.stdout.contains("; 1 repo, 1 revision in"), "{push}");
    let dst = t.cache("dst");
    let pull = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/one"])
        .run()
        .success();
    assert!(
        pull.stdout.contains(": 1 file, 1 blob downloaded"),
        "{pull}"
    );
    let all = t
        .hfcs()
        .cache_dir(&t.cache("all"))
        .arg("pull-all")
        .run()
        .success();
    assert!(
        all.stdout
            .contains("Pulled 1 repo (0 failed): 1 blob downloaded"),
        "{all}"
    );
    for out in [&push, &pull, &all] {
        for wrong in [
            " 1 blobs",
            " 1 repos",
            " 1 files",
            " 1 revisions",
            " 1 manifests",
        ] {
            assert!(!out.stdout.contains(wrong), "{wrong}\n{out}");
        }
    }
}

#[test]
fn doctor_judges_no_clock_it_never_saw_and_no_placeholder_bucket() {
    // The connection is refused; the bucket is the placeholder `init` writes.
    let t = Sandbox::with_unreachable_bucket("wording_doctor", "my-hf-cache");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&t.cache("hub"))
        .arg("doctor")
        .run()
        .code(1);
    let report = out.json();
    let check = |name: &str| doctor_check(&report, name);
    let bucket = check("Bucket");
    assert_eq!(bucket["status"], "failed", "{out}");
    assert!(
        bucket["hint"].as_str().unwrap().contains("storage.bucket"),
        "{out}"
    );
    let clock = check("Clock");
    assert_eq!(clock["status"], "skipped", "{out}");
    assert_eq!(
        clock["detail"], "skipped: the server did not answer",
        "{out}"
    );
}

#[test]
fn a_misspelled_url_is_not_taken_for_a_directory() {
    let t = Sandbox::local("wording_remote_typo");
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    for args in [
        &["pull", "org/m", "--remote", "s3:/kit"][..],
        &["push", "--remote=s3:/kit"],
        &["list", "--remote=s3:/kit"],
    ] {
        let out = t
            .bare()
            .cache_dir(&src)
            .args(args)
            .run()
            .code(2)
            .stderr_has("hint: did you mean --remote=s3://kit?");
        assert!(!out.stderr.contains("mkdir"), "{out}");
    }
    assert!(!t.work().join("s3:").exists(), "nothing created");
}

#[test]
fn a_bad_duration_offers_one_syntax() {
    let t = Sandbox::local("wording_duration");
    let cache = t.cache("hub");
    for cli in [
        t.bare()
            .cache_dir(&cache)
            .args(["prune", "--older-than", "3x", "--dry-run"]),
        t.bare()
            .cache_dir(&cache)
            .args(["list", "--filter", "accessed>3x"]),
        t.bare()
            .cache_dir(&cache)
            .env("HF_CACHE_SYNC_LOCK_TIMEOUT", "3x")
            .arg("status"),
    ] {
        let out = cli.run().code(2).stderr_has("invalid duration \"3x\"");
        let hint = out.stderr.lines().last().unwrap_or_default().to_string();
        assert!(hint.starts_with("hint: ") && hint.contains("30d"), "{out}");
        assert!(!out.stderr.contains("sec"), "one syntax only\n{out}");
    }
}

#[test]
fn config_type_errors_speak_of_numbers() {
    let t = Sandbox::local("wording_config_types");
    t.write_config("cache:\n  max_local_gb: lots\n");
    let out = t
        .hfcs()
        .arg("status")
        .run()
        .code(2)
        .stderr_has("expected a number");
    assert!(!out.stderr.contains("f64"), "{out}");
    let missing = t.path("nowhere.yaml");
    let out = t.bare().config(&missing).arg("status").run().code(2);
    assert_eq!(out.stderr.matches("no such file").count(), 1, "{out}");
    assert!(out.stderr.contains("hf-cache-sync init"), "{out}");
    assert!(!out.stderr.contains(".example"), "{out}");
}
