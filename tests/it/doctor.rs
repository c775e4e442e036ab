//! `doctor`: every check reported, ✗ with a hint where something is wrong, exit 1 on any failure,
//! and never a secret in the output.

use serde_json::Value;

use crate::common::{doctor_check as check, files_under, Key, Sandbox};

#[track_caller]
fn status<'a>(report: &'a Value, name: &str) -> &'a str {
    check(report, name)["status"].as_str().unwrap()
}

#[test]
fn every_check_passes_with_a_read_write_key() {
    let t = Sandbox::new("doctor_ok");
    let cache = t.cache("hub");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .success()
        .never_prints(&t.garage().secret_key);
    let r = out.json();
    assert_eq!(r["ok"], true, "{out}");
    for c in r["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{out}");
    }
    for name in [
        "Config file",
        "Endpoint",
        "Bucket",
        "Region",
        "Credentials",
        "Cache dir",
        "Bucket reachable",
        "Read permission",
        "Write permission",
        "Clock",
        "Symlinks",
    ] {
        check(&r, name);
    }
    assert!(
        check(&r, "Credentials")["detail"]
            .as_str()
            .unwrap()
            .contains("config"),
        "{out}"
    );
    // The probe object was removed, and nothing was left in the cache dir.
    assert_eq!(t.bucket().keys(), Vec::<String>::new());
    assert_eq!(files_under(&cache), Vec::<String>::new());

    let out = t
        .hfcs()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .success()
        .never_prints(&t.garage().secret_key);
    assert!(out.stdout.contains("✓ Write permission"), "{out}");
    assert!(!out.stdout.contains('✗'), "{out}");
}

#[test]
fn a_read_only_key_is_reported_not_failed_unless_writes_are_required() {
    let t = Sandbox::new("doctor_read_only");
    t.write_config(&t.garage_yaml(Key::ReadOnly));
    let cache = t.cache("hub");
    // Read-only keys for developers, write keys for CI: a normal team setup.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .success()
        .never_prints(&t.garage().ro_secret_key);
    let r = out.json();
    assert_eq!(r["ok"], true, "{out}");
    assert_eq!(r["failed"], 0, "{out}");
    assert_eq!(status(&r, "Bucket reachable"), "ok", "{out}");
    assert_eq!(status(&r, "Read permission"), "ok", "{out}");
    assert_eq!(status(&r, "Write permission"), "warning", "{out}");
    let detail = check(&r, "Write permission")["detail"].as_str().unwrap();
    assert!(detail.contains("read-only key"), "{out}");

    let out = t.hfcs().cache_dir(&cache).arg("doctor").run().success();
    assert!(out.stdout.contains("✓ Read permission"), "{out}");
    assert!(
        out.stdout.contains("! Write permission  read-only key"),
        "{out}"
    );
    assert!(!out.stdout.contains('✗'), "{out}");

    // A CI job that pushes asks for writes, and then a read-only key fails.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["doctor", "--require-write"])
        .run()
        .code(1);
    let r = out.json();
    assert_eq!(r["failed"], 1, "{out}");
    assert_eq!(status(&r, "Write permission"), "failed", "{out}");
    assert!(check(&r, "Write permission")["hint"].is_string(), "{out}");
    let out = t
        .hfcs()
        .cache_dir(&cache)
        .args(["doctor", "--require-write"])
        .run()
        .code(1);
    assert!(out.stdout.contains("✗ Write permission"), "{out}");
    assert!(out.stdout.contains("hint:"), "{out}");

    // With the read-write key, --require-write passes.
    t.write_config(&t.garage_yaml(Key::ReadWrite));
    t.hfcs()
        .cache_dir(&cache)
        .args(["doctor", "--require-write"])
        .run()
        .success();
}

#[test]
fn wrong_credentials_fail_without_printing_the_secret() {
    let t = Sandbox::new("doctor_wrong_creds");
    let g = t.garage();
    let wrong_secret = "5ec7e7".repeat(10) + "beef";
    t.write_config(
        &t.garage_yaml(Key::ReadWrite)
            .replace(&g.secret_key, &wrong_secret),
    );
    let cache = t.cache("hub");
    for json in [false, true] {
        let mut cli = t.hfcs().cache_dir(&cache).arg("doctor");
        if json {
            cli = cli.json();
        }
        let out = cli
            .run()
            .code(1)
            .never_prints(&wrong_secret)
            .never_prints(&g.secret_key);
        if json {
            let r = out.json();
            assert_eq!(status(&r, "Credentials"), "ok", "{out}");
            assert_eq!(status(&r, "Bucket reachable"), "failed", "{out}");
            assert!(
                check(&r, "Bucket reachable")["detail"]
                    .as_str()
                    .unwrap()
                    .contains("credentials"),
                "{out}"
            );
            assert_eq!(status(&r, "Write permission"), "skipped", "{out}");
            // The checks that need no bucket still ran.
            assert_eq!(status(&r, "Cache dir"), "ok", "{out}");
            assert_eq!(status(&r, "Symlinks"), "ok", "{out}");
        }
    }

    // Credentials from the environment are reported with their source, and masked too.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .env("B2_APPLICATION_KEY_ID", &g.access_key)
        .env("B2_APPLICATION_KEY", &wrong_secret)
        .arg("doctor")
        .run()
        .code(1)
        .never_prints(&wrong_secret);
    let r = out.json();
    assert!(
        check(&r, "Credentials")["detail"]
            .as_str()
            .unwrap()
            .contains("b2_env"),
        "{out}"
    );
}

#[test]
fn without_any_config_every_missing_piece_is_named() {
    let t = Sandbox::local("doctor_no_config");
    let cache = t.cache("hub");
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .code(1);
    let r = out.json();
    assert_eq!(status(&r, "Config file"), "ok", "{out}");
    assert_eq!(status(&r, "Bucket"), "failed", "{out}");
    assert_eq!(status(&r, "Credentials"), "failed", "{out}");
    assert_eq!(status(&r, "Bucket reachable"), "skipped", "{out}");
    assert_eq!(status(&r, "Cache dir"), "ok", "{out}");
    for name in ["Bucket", "Credentials"] {
        assert!(check(&r, name)["hint"].is_string(), "{out}");
    }

    // A cache dir that cannot be created (a file where a folder should be) is a failure of its
    // own.
    std::fs::write(t.path("a-file"), b"not a folder").unwrap();
    let out = t
        .bare()
        .cache_dir(&t.path("a-file/hub"))
        .arg("doctor")
        .run()
        .code(1);
    assert!(out.stdout.contains("✗ Cache dir"), "{out}");
    assert!(out.stdout.contains("cannot be created"), "{out}");
}

#[test]
fn a_cache_dir_the_first_pull_will_create_is_a_note_not_a_failure() {
    let (t, _remote) = Sandbox::with_dir_remote("doctor_fresh_machine");
    let fresh = t.path("home/.cache/huggingface/hub");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&fresh)
        .arg("doctor")
        .run()
        .success();
    let r = out.json();
    assert_eq!(r["ok"], true, "{out}");
    assert_eq!(status(&r, "Cache dir"), "warning", "{out}");
    let detail = check(&r, "Cache dir")["detail"].as_str().unwrap();
    assert!(detail.contains("does not exist yet"), "{out}");
    assert_eq!(status(&r, "Symlinks"), "skipped", "{out}");
    assert!(!fresh.exists(), "doctor created the cache dir\n{out}");
    let out = t.hfcs().cache_dir(&fresh).arg("doctor").run().success();
    assert!(out.stdout.contains("! Cache dir"), "{out}");
}

#[test]
fn broken_config_file_is_one_failed_check_among_the_others() {
    let t = Sandbox::local("doctor_broken_config");
    let path = t.write_config("storage:\n  buckit: b\n");
    let cache = t.cache("hub");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .code(1);
    let r = out.json();
    assert_eq!(status(&r, "Config file"), "failed", "{out}");
    let detail = check(&r, "Config file")["detail"].as_str().unwrap();
    assert!(
        detail.contains("buckit") && detail.contains(&path.display().to_string()),
        "{out}"
    );
    assert_eq!(status(&r, "Cache dir"), "ok", "{out}");
}

#[test]
fn directory_remote_is_checked_as_a_directory() {
    let t = Sandbox::local("doctor_dir_remote");
    let remote = t.cache("remote");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\nteam:\n  prefix: team\n",
        remote.display()
    ));
    let cache = t.cache("hub");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .success();
    let r = out.json();
    assert_eq!(status(&r, "Remote directory"), "ok", "{out}");
    assert_eq!(status(&r, "Write permission"), "ok", "{out}");
    assert!(
        r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "Credentials"),
        "no credentials needed for a directory\n{out}"
    );
    assert_eq!(files_under(&remote), Vec::<String>::new());

    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        t.path("missing-remote").display()
    ));
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .code(1);
    let r = out.json();
    assert_eq!(status(&r, "Remote directory"), "failed", "{out}");
    assert_eq!(status(&r, "Write permission"), "skipped", "{out}");
}
