//! `--json`: one document on stdout for every run, a failed one included (with the error and
//! the exit code); `remote` names the prefix; `repo` is `type/org/name` in every document.

use serde_json::Value;

use crate::common::spec::RepoSpec;
use crate::common::Sandbox;

#[track_caller]
fn failed_doc(out: &crate::common::cli::Output, command: &str, code: i32) -> Value {
    let doc = out.json();
    assert_eq!(doc["command"], command, "{out}");
    assert_eq!(doc["ok"], false, "{out}");
    assert_eq!(doc["exit_code"], code, "{out}");
    assert!(
        doc["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{out}"
    );
    assert!(doc["hint"].as_str().is_some_and(|h| !h.is_empty()), "{out}");
    doc
}

#[test]
fn a_failed_run_still_prints_its_json_document() {
    let t = Sandbox::local("json_failed");
    let cache = t.cache("hub");
    RepoSpec::two_revisions("org/m").write(&cache);

    // No remote configured: a configuration error.
    let out = t.bare().json().cache_dir(&cache).arg("push").run().code(2);
    let doc = failed_doc(&out, "push", 2);
    assert!(
        doc["error"]
            .as_str()
            .unwrap()
            .contains("no remote configured"),
        "{out}"
    );
    assert!(
        out.stderr.contains("error: no remote configured"),
        "stderr still says it\n{out}"
    );

    // A repo that is not there.
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["verify", "org/mm"])
        .run()
        .code(1);
    let doc = failed_doc(&out, "verify", 1);
    assert!(
        doc["hint"].as_str().unwrap().contains("model/org/m"),
        "{out}"
    );

    // A config file that is not there: named once, its cause not repeated.
    let missing = t.path("missing.yaml");
    let out = t.bare().json().config(&missing).arg("status").run().code(2);
    let doc = failed_doc(&out, "status", 2);
    let error = doc["error"].as_str().unwrap();
    assert!(error.contains(&missing.display().to_string()), "{out}");
    assert_eq!(error.matches("no such file").count(), 1, "{out}");

    // A command line clap refuses.
    let out = t.bare().json().arg("pull").run().code(2);
    failed_doc(&out, "pull", 2);
    let out = t
        .bare()
        .json()
        .args(["list", "--format", "xml"])
        .run()
        .code(2);
    failed_doc(&out, "list", 2);
}

#[test]
fn the_remote_field_names_the_prefix() {
    let t = Sandbox::new("json_remote_prefix");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let bucket = &t.garage().bucket;
    let url = format!("s3://{bucket}/{}", t.prefix);
    let dst = t.cache("dst");
    let runs: [&[&str]; 7] = [
        &["push"],
        &["pull", "org/m"],
        &["pull-all", "--dry-run"],
        &["verify", "--remote"],
        &["diff"],
        &["list", "--remote"],
        &["rm", "--remote", "org/m", "--dry-run"],
    ];
    for args in runs {
        let cache = if args[0] == "push" { &src } else { &dst };
        let out = t.hfcs().json().cache_dir(cache).args(args).run().success();
        let remote = out.json()["remote"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert_eq!(remote, url, "{args:?}: the remote's URL, not prose\n{out}");
    }

    // A directory remote names the prefix its keys go under.
    let dir = t.path("share");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&dir)
        .run()
        .success();
    assert_eq!(
        out.json()["remote"],
        dir.join(&t.prefix).display().to_string(),
        "{out}"
    );
}

#[test]
fn repo_is_type_org_name_in_every_document() {
    let (t, _remote) = Sandbox::with_dir_remote("json_repo");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let dst = t.cache("dst");
    // v1.0 detached, for prune to take.
    std::fs::remove_file(m.dir(&src).join("refs/v1.0")).unwrap();

    let doc = |cache: &std::path::Path, args: &[&str]| -> Value {
        t.hfcs()
            .json()
            .cache_dir(cache)
            .args(args)
            .run()
            .success()
            .json()
    };
    let check = |what: &str, v: &Value| {
        assert_eq!(v["repo"], "model/org/m", "{what}: {v}");
        if !v["repo_id"].is_null() {
            assert_eq!(v["repo_id"], "org/m", "{what}: {v}");
            assert_eq!(v["repo_type"], "model", "{what}: {v}");
        }
    };
    check("pull", &doc(&dst, &["pull", "org/m"]));
    check("pull-all", &doc(&dst, &["pull-all"])["repos"][0]);
    check("diff", &doc(&src, &["diff"])["revisions"][0]);
    check("list", &doc(&src, &["list"])["entries"][0]);
    check(
        "list --revisions",
        &doc(&src, &["list", "--revisions"])["entries"][0],
    );
    check(
        "list --remote --manifests",
        &doc(&src, &["list", "--remote", "--manifests"])["entries"][0],
    );
    check(
        "list --remote",
        &doc(&src, &["list", "--remote"])["entries"][0],
    );
    check(
        "list --remote --revisions",
        &doc(&src, &["list", "--remote", "--revisions"])["entries"][0],
    );
    let ids = t
        .hfcs()
        .cache_dir(&src)
        .args(["list", "--remote", "-q"])
        .run()
        .success();
    assert_eq!(ids.stdout.trim(), "model/org/m", "{ids}");
    let rm = doc(&src, &["rm", "org/m", "--dry-run"]);
    check("rm targets", &rm["targets"][0]);
    check("rm repos", &rm["repos"][0]);
    check("rm revisions", &rm["revisions"][0]);
    let rm = doc(&src, &["rm", "--remote", "org/m", "--dry-run"]);
    check("rm --remote", &rm["targets"][0]);
    let prune = doc(&src, &["prune", "--detached", "--max-gb", "0", "--dry-run"]);
    check("prune", &prune["revisions"][0]);
}

#[test]
fn every_document_says_ok_and_exit_code() {
    let (t, _remote) = Sandbox::with_dir_remote("json_ok_exit_code");
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    for (args, code) in [
        (&["push"][..], 0),
        (&["status"], 0),
        (&["verify"], 0),
        (&["diff"], 0),
    ] {
        let out = t.hfcs().json().cache_dir(&src).args(args).run().code(code);
        let doc = out.json();
        assert_eq!(doc["ok"], code == 0, "{args:?}\n{out}");
        assert_eq!(doc["exit_code"], code, "{args:?}\n{out}");
    }

    // A verify that finds problems ends 1 and says so in its document.
    let blob = crate::common::CacheView::model(&src, "org/m").blob(
        m.revision("main")
            .file(crate::common::fixtures::WEIGHTS)
            .etag(),
    );
    std::fs::write(&blob, b"not the weights").unwrap();
    let out = t.hfcs().json().cache_dir(&src).arg("verify").run().code(1);
    let doc = out.json();
    assert_eq!(doc["ok"], false, "{out}");
    assert_eq!(doc["exit_code"], 1, "{out}");

    // `lock -o -` with --json: the file's text inside the document, nothing else on stdout.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["lock", "-o", "-"])
        .run()
        .success();
    let doc = out.json();
    assert_eq!(doc["ok"], true, "{out}");
    assert!(
        doc["content"]
            .as_str()
            .unwrap()
            .contains(&format!("org/m@{}", m.commit("main"))),
        "{out}"
    );
}

#[test]
fn a_refused_command_line_is_said_whole() {
    let t = Sandbox::local("json_clap_whole");
    let out = t.bare().json().arg("pull").run().code(2);
    let doc = failed_doc(&out, "pull", 2);
    assert_eq!(
        doc["error"], "the following required arguments were not provided: <REPO_ID>",
        "{out}"
    );
    // Two repos to pull: pointed at pull-all and lock files.
    t.bare()
        .args(["pull", "org/a", "org/b"])
        .run()
        .code(2)
        .stderr_has("hint: pull takes one repo")
        .stderr_has("pull-all")
        .stderr_has("pull --lock");
}
