//! The cache dir as people give it: a Hugging Face home (`~/.cache/huggingface`, whose `hub/`
//! is the cache) is recognised and its `hub/` used, with a warning; an empty cache is named.

use std::path::Path;

use crate::common::spec::RepoSpec;
use crate::common::{files_under, Sandbox};

fn warns_of_home(out: &crate::common::cli::Output, home: &Path) {
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("warning: ") && l.contains("HF_HOME"))
        .unwrap_or_else(|| panic!("no warning about HF_HOME\n{out}"));
    assert!(line.contains(&home.display().to_string()), "{out}");
    assert!(
        line.contains(&home.join("hub").display().to_string()),
        "{out}"
    );
}

#[test]
fn a_hugging_face_home_given_as_the_cache_dir_means_its_hub() {
    let (t, _remote) = Sandbox::with_dir_remote("cache_dir_home");
    let home = t.cache("hf-home");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&home.join("hub"));
    std::fs::write(home.join("token"), b"hf_xxx").unwrap();

    let out = t.hfcs().json().cache_dir(&home).arg("push").run().success();
    warns_of_home(&out, &home);
    assert_eq!(out.json()["repos"], 1, "{out}");

    let out = t
        .hfcs()
        .json()
        .cache_dir(&home)
        .arg("verify")
        .run()
        .success();
    warns_of_home(&out, &home);
    assert_eq!(out.json()["repos"], 1, "{out}");
    assert!(
        out.stdout.contains(&home.join("hub").display().to_string()),
        "{out}"
    );

    let out = t.hfcs().cache_dir(&home).arg("doctor").run().success();
    warns_of_home(&out, &home);
    assert!(
        out.stdout
            .contains(&format!("{} (writable)", home.join("hub").display())),
        "{out}"
    );

    // A pull into another home lands in its hub/, where huggingface_hub looks.
    let other = t.cache("other-home");
    std::fs::create_dir_all(other.join("hub")).unwrap();
    std::fs::write(
        other.join("hub/CACHEDIR.TAG"),
        b"Signature: 8a477f597d28d172789f06886806bc55\n",
    )
    .unwrap();
    let out = t
        .hfcs()
        .cache_dir(&other)
        .args(["pull", "org/m"])
        .run()
        .success();
    warns_of_home(&out, &other);
    m.assert_pulled(&other.join("hub"), "main");
    assert!(
        files_under(&other).iter().all(|f| f.starts_with("hub/")),
        "nothing written beside hub/: {:?}",
        files_under(&other)
    );
}

#[test]
fn an_empty_cache_is_named() {
    let (t, remote) = Sandbox::with_dir_remote("cache_dir_empty");
    let empty = t.cache("empty");
    let place = empty.display().to_string();
    for (args, says) in [
        (&["push"][..], "nothing to push"),
        (&["verify"], "nothing to verify"),
        (&["list"], "no repos in the cache at"),
    ] {
        let out = t.hfcs().cache_dir(&empty).args(args).run().success();
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains(says))
            .unwrap_or_else(|| panic!("{args:?} does not say {says:?}\n{out}"));
        assert!(line.contains(&place), "{out}");
    }
    let out = t.hfcs().cache_dir(&empty).arg("doctor").run().success();
    assert!(out.stdout.contains("no repos in it yet"), "{out}");
    assert!(files_under(&remote).is_empty());
}

#[test]
fn an_existing_cache_dir_nobody_may_write_to_is_a_usage_error() {
    let (t, _remote) = Sandbox::with_dir_remote("cache_dir_read_only");
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let read_only = t.path("read-only");
    let Some(_mount) = crate::common::tmpfs::Tmpfs::read_only(&read_only) else {
        return;
    };
    for args in [&["pull", "org/m"][..], &["pull-all"]] {
        let out = t
            .hfcs()
            .json()
            .cache_dir(&read_only)
            .args(args)
            .run()
            .code(2)
            .stderr_has(&format!(
                "cannot write to cache dir {}",
                read_only.display()
            ))
            .stderr_has_any(&["read-only file system"])
            .stderr_has("hint: point --cache-dir (or HF_HUB_CACHE) at a folder you may write to");
        let doc = out.json();
        assert_eq!(doc["ok"], false, "{out}");
        assert_eq!(doc["exit_code"], 2, "{out}");
        assert!(!out.stderr.contains("run the same command again"), "{out}");
    }
}
