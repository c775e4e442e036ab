//! Doing nothing is said: a pattern or filter that matches no repo says so on stderr, and when
//! the user named what they wanted (`--include`) and nothing matches, the run fails (exit 1).

use crate::common::spec::RepoSpec;
use crate::common::{commit_hash, files_under, Sandbox};

/// org/m in cache `src`, a directory remote configured (empty unless pushed to).
fn setup(name: &str) -> (Sandbox, std::path::PathBuf, std::path::PathBuf) {
    let (t, remote) = Sandbox::with_dir_remote(name);
    let src = t.cache("src");
    let c = commit_hash("org/m");
    RepoSpec::new("org/m")
        .rev(&c, &["main"])
        .file("config.json", b"{}\n")
        .write(&src);
    (t, src, remote)
}

#[test]
fn push_says_what_its_patterns_left_out() {
    let (t, src, remote) = setup("nothing_push");
    let out = t
        .hfcs()
        .cache_dir(&src)
        .args(["push", "--include", "nomatch/*"])
        .run()
        .code(1)
        .stderr_has("matches --include \"nomatch/*\"")
        .stderr_has("hint: ");
    assert!(out.stderr.contains(&src.display().to_string()), "{out}");
    assert!(files_under(&remote).is_empty());

    let out = t
        .hfcs()
        .cache_dir(&src)
        .args([
            "push",
            "--include",
            "org/*",
            "--include",
            "zzz/*",
            "--dry-run",
        ])
        .run()
        .success();
    assert!(
        out.stderr
            .contains("--include \"zzz/*\" matches no repo in the cache at"),
        "{out}"
    );
    assert!(!out.stderr.contains("org/*"), "{out}");

    t.hfcs()
        .cache_dir(&src)
        .args(["push", "--exclude", "*"])
        .run()
        .success()
        .stderr_has("--exclude leaves none of the 1 repo in the cache at");
    assert!(files_under(&remote).is_empty());
}

#[test]
fn pull_all_fails_when_its_include_matches_nothing() {
    let (t, src, remote) = setup("nothing_pull_all");
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .arg("pull-all")
        .run()
        .success()
        .stderr_has("has a main ref: nothing to pull");

    t.hfcs().cache_dir(&src).arg("push").run().success();
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull-all", "--include", "nomatch/*"])
        .run()
        .code(1)
        .stderr_has(&format!(
            "no repo in {} matches --include \"nomatch/*\"",
            remote.display()
        ))
        .stderr_has("hint: `hf-cache-sync list --remote`");
    assert!(files_under(&dst).is_empty());
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull-all", "--include", "org/*"])
        .run()
        .success();
}

#[test]
fn list_says_when_its_filters_match_nothing_in_every_format() {
    let (t, src, _remote) = setup("nothing_list");
    for args in [&[][..], &["--format", "csv"]] {
        let out = t
            .hfcs()
            .cache_dir(&src)
            .args(["list", "--filter", "size>1TB"])
            .args(args)
            .run()
            .success();
        assert!(
            out.stderr.contains("no repos in the cache at ")
                && out.stderr.contains("match the filters"),
            "{args:?}\n{out}"
        );
        let expected = if args.contains(&"csv") { 1 } else { 0 };
        assert_eq!(out.stdout.lines().count(), expected, "{args:?}\n{out}");
    }
    // --quiet: nothing printed, on either side.
    let out = t
        .hfcs()
        .cache_dir(&src)
        .args(["list", "-q", "--filter", "size>1TB"])
        .run()
        .success();
    out.silent();
}
