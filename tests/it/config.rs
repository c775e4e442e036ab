//! Configuration: the YAML file and where it is found, the environment, `.env`, the cache
//! directory, and what happens when any of it is wrong.

use std::path::Path;

use crate::common::{
    commit_hash, files_under, random_hex, ref_key, Bucket, CacheBuilder, CacheView, Cli, Key,
    Sandbox,
};

/// Writes a one-file repo `repo_id` into `cache`.
fn tiny_repo(cache: &Path, repo_id: &str) {
    let commit = commit_hash(repo_id);
    CacheBuilder::new(cache)
        .repo(repo_id)
        .rev(&commit)
        .file("config.json", repo_id.as_bytes())
        .ref_("main", &commit);
}

/// The repos (as `org__name`) whose `main` ref is in the directory remote `remote`.
fn pushed_to(remote: &Path) -> Vec<String> {
    files_under(&remote.join("refs"))
        .into_iter()
        .filter_map(|k| k.strip_suffix("/main").map(String::from))
        .collect()
}

fn file_url(dir: &Path) -> String {
    format!("file://{}", dir.display())
}

// ---- errors in the file ----

#[test]
fn malformed_yaml_names_the_file_and_line() {
    let t = Sandbox::local("config_malformed");
    let path = t.write_config("storage:\n  endpoint: http://localhost:1\n  bucket: [unclosed\n");
    t.hfcs()
        .args(["push", "--dry-run"])
        .run()
        .code(2)
        .stderr_has(&path.display().to_string())
        .stderr_has_any(&["line"]);
}

#[test]
fn unknown_key_names_the_file_and_key() {
    let t = Sandbox::local("config_unknown_key");
    let path = t.write_config("storage:\n  endpont: http://localhost:1\n  bucket: b\n");
    t.hfcs()
        .args(["push", "--dry-run"])
        .run()
        .code(2)
        .stderr_has(&path.display().to_string())
        .stderr_has("endpont");

    let path = t.write_config("storage:\n  bucket: b\nteam:\n  prefix: x\nretries: 3\n");
    t.hfcs()
        .args(["push", "--dry-run"])
        .run()
        .code(2)
        .stderr_has(&path.display().to_string())
        .stderr_has("retries");
}

#[test]
fn wrong_type_names_the_key() {
    let t = Sandbox::local("config_wrong_type");
    let path = t.write_config("storage:\n  bucket: b\ntransfer:\n  workers: lots\n");
    t.hfcs()
        .args(["push", "--dry-run"])
        .run()
        .code(2)
        .stderr_has(&path.display().to_string())
        .stderr_has("workers");

    let path = t.write_config("team:\n  allow_gated: sometimes\n");
    t.hfcs()
        .args(["push", "--dry-run"])
        .run()
        .code(2)
        .stderr_has(&path.display().to_string())
        .stderr_has("allow_gated");
}

#[test]
fn missing_config_file_is_a_config_error() {
    let t = Sandbox::local("config_missing_file");
    let missing = t.path("nope.yaml");
    t.bare()
        .config(&missing)
        .args(["push", "--dry-run"])
        .run()
        .code(2)
        .stderr_has(&missing.display().to_string());
}

#[test]
fn no_storage_configured_is_a_config_error() {
    let t = Sandbox::local("config_no_storage");
    let cache = t.cache("cache");
    tiny_repo(&cache, "org/m");
    t.bare()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .code(2)
        .stderr_has("error:");
}

// ---- where the file is found ----

#[test]
fn config_is_found_in_the_working_dir_then_home() {
    let t = Sandbox::local("config_discovery");
    let cache = t.cache("cache");
    tiny_repo(&cache, "org/m");
    let (from_work, from_home, from_flag) = (
        t.cache("remote_work"),
        t.cache("remote_home"),
        t.cache("remote_flag"),
    );
    let yaml = |remote: &Path| format!("storage:\n  endpoint: {}\n", file_url(remote));
    let work_config = t.write_work_file(".hf-cache-sync.yaml", &yaml(&from_work));
    std::fs::write(t.home().join(".hf-cache-sync.yaml"), yaml(&from_home)).unwrap();
    t.write_config(&yaml(&from_flag));

    t.hfcs().cache_dir(&cache).arg("push").run().success();
    assert_eq!(pushed_to(&from_flag), ["org__m"], "--config comes first");
    assert!(files_under(&from_work).is_empty() && files_under(&from_home).is_empty());

    t.bare().cache_dir(&cache).arg("push").run().success();
    assert_eq!(
        pushed_to(&from_work),
        ["org__m"],
        "./.hf-cache-sync.yaml comes before ~/"
    );
    assert!(files_under(&from_home).is_empty());

    std::fs::remove_file(&work_config).unwrap();
    t.bare().cache_dir(&cache).arg("push").run().success();
    assert_eq!(
        pushed_to(&from_home),
        ["org__m"],
        "~/.hf-cache-sync.yaml is the fallback"
    );

    // It is the working directory of the command that counts (the one in home is valid), and the
    // error names the file.
    let elsewhere = t.cache("elsewhere");
    std::fs::write(elsewhere.join(".hf-cache-sync.yaml"), "storage: [\n").unwrap();
    t.bare()
        .current_dir(&elsewhere)
        .cache_dir(&cache)
        .arg("push")
        .run()
        .code(2)
        .stderr_has(".hf-cache-sync.yaml");
}

// ---- the cache directory ----

#[test]
fn cache_dir_precedence() {
    let t = Sandbox::local("config_cache_dir");
    let (flag, yaml, hub_cache, hf_home) = (
        t.cache("flag"),
        t.cache("yaml"),
        t.cache("hub_cache"),
        t.cache("hf_home"),
    );
    let default = t.home().join(".cache/huggingface/hub");
    tiny_repo(&flag, "from/flag");
    tiny_repo(&yaml, "from/yaml");
    tiny_repo(&hub_cache, "from/hub-cache");
    tiny_repo(&hf_home.join("hub"), "from/hf-home");
    tiny_repo(&default, "from/default");

    let push = |with_yaml: bool, flag_dir: Option<&Path>, envs: &[(&str, &Path)]| -> Vec<String> {
        let remote = tempfile::tempdir_in(t.path("")).unwrap();
        let config = if with_yaml {
            format!("cache:\n  hf_cache_dir: {}\n", yaml.display())
        } else {
            "cache:\n  max_local_gb: 50\n".to_string()
        };
        t.write_config(&config);
        let mut cli = t.hfcs().args(["push", "--remote"]).arg(remote.path());
        if let Some(dir) = flag_dir {
            cli = cli.cache_dir(dir);
        }
        for (k, v) in envs {
            cli = cli.env(k, v);
        }
        cli.run().success();
        pushed_to(remote.path())
    };

    let all_env: &[(&str, &Path)] = &[("HF_HUB_CACHE", &hub_cache), ("HF_HOME", &hf_home)];
    assert_eq!(push(true, Some(&flag), all_env), ["from__flag"]);
    assert_eq!(push(true, None, all_env), ["from__yaml"]);
    assert_eq!(push(false, None, all_env), ["from__hub-cache"]);
    assert_eq!(
        push(false, None, &[("HF_HOME", &hf_home)]),
        ["from__hf-home"]
    );
    assert_eq!(push(false, None, &[]), ["from__default"]);
}

// ---- credentials and storage from the environment (against the test server) ----

#[test]
fn env_file_alone_configures_the_remote() {
    let t = Sandbox::new("config_env_file");
    std::fs::remove_file(t.config_path()).unwrap();
    let g = t.garage();
    t.write_work_file(
        ".env",
        &format!(
            "B2_APPLICATION_KEY_ID={}\nB2_APPLICATION_KEY={}\nB2_ENDPOINT={}\nB2_BUCKET={}\nB2_REGION={}\n",
            g.access_key, g.secret_key, g.endpoint, g.bucket, g.region
        ),
    );
    // No prefix without a config file: a repo id no other test uses keeps the bucket root tidy.
    let repo_id = format!("envfile/m-{}", random_hex(8));
    let src = t.cache("src");
    tiny_repo(&src, &repo_id);

    t.bare()
        .cache_dir(&src)
        .arg("push")
        .run()
        .success()
        .never_prints(&g.secret_key);
    let root = Bucket::new(g, "");
    let commit = commit_hash(&repo_id);
    assert_eq!(root.get_text(&ref_key(&repo_id, "main")), commit);
    root.manifest(&repo_id, &commit);

    let dst = t.cache("dst");
    t.bare()
        .cache_dir(&dst)
        .args(["pull", &repo_id])
        .run()
        .success();
    CacheView::model(&dst, &repo_id).assert_file(&commit, "config.json", repo_id.as_bytes());

    // Without the .env nothing is configured.
    std::fs::remove_file(t.work().join(".env")).unwrap();
    t.bare()
        .cache_dir(&dst)
        .args(["pull", &repo_id])
        .run()
        .code(2);
}

#[test]
fn credentials_from_the_environment_override_the_file() {
    let t = Sandbox::new("config_env_creds");
    let g = t.garage();
    let src = t.cache("src");
    let bad_secret = "f".repeat(64);
    let bad_yaml = t
        .garage_yaml(Key::ReadWrite)
        .replace(&g.secret_key, &bad_secret);
    t.write_config(&bad_yaml);
    let bucket = t.bucket();
    let mut n = 0;
    let mut push_ok = |cli: Cli| {
        n += 1;
        let repo_id = format!("org/m{n}");
        tiny_repo(&src, &repo_id);
        cli.cache_dir(&src)
            .args(["push", &repo_id])
            .run()
            .success()
            .never_prints(&bad_secret);
        assert!(
            bucket.exists(&ref_key(&repo_id, "main")),
            "push {n} did not land"
        );
    };

    // AWS_* replace the file's credentials.
    push_ok(
        t.hfcs()
            .env("AWS_ACCESS_KEY_ID", &g.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &g.secret_key),
    );
    // B2_* win over AWS_*.
    push_ok(
        t.hfcs()
            .env("B2_APPLICATION_KEY_ID", &g.access_key)
            .env("B2_APPLICATION_KEY", &g.secret_key)
            .env("AWS_ACCESS_KEY_ID", "GK000000000000000000000bad")
            .env("AWS_SECRET_ACCESS_KEY", &bad_secret),
    );
    // Set variables win over .env.
    t.write_work_file(
        ".env",
        &format!(
            "AWS_ACCESS_KEY_ID=GK000000000000000000000bad\nAWS_SECRET_ACCESS_KEY={bad_secret}\n"
        ),
    );
    push_ok(
        t.hfcs()
            .env("AWS_ACCESS_KEY_ID", &g.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &g.secret_key),
    );
    std::fs::remove_file(t.work().join(".env")).unwrap();

    // A partial pair is ignored: the file's (good) credentials stay in use.
    t.write_config(&t.garage_yaml(Key::ReadWrite));
    push_ok(
        t.hfcs()
            .env("B2_APPLICATION_KEY_ID", "GK000000000000000000000bad"),
    );
    push_ok(t.hfcs().env("AWS_SECRET_ACCESS_KEY", &bad_secret));
}

#[test]
fn storage_from_the_environment_overrides_the_file() {
    let t = Sandbox::new("config_env_storage");
    let g = t.garage();
    let yaml = t
        .garage_yaml(Key::ReadWrite)
        .replace(&g.endpoint, "http://127.0.0.1:9")
        .replace(&format!("bucket: {}", g.bucket), "bucket: not-this-one");
    t.write_config(&yaml);
    let src = t.cache("src");
    tiny_repo(&src, "org/m");
    t.hfcs()
        .env("B2_ENDPOINT", &g.endpoint)
        .env("B2_BUCKET", &g.bucket)
        .env("B2_REGION", &g.region)
        .cache_dir(&src)
        .arg("push")
        .run()
        .success();
    assert!(t.bucket().exists(&ref_key("org/m", "main")));
}

// ---- the command line ----

#[test]
fn version_help_and_usage_errors() {
    let t = Sandbox::local("config_cli");
    let out = t.bare().arg("--version").run().success();
    assert!(out.stdout.contains(env!("CARGO_PKG_VERSION")), "{out}");
    let out = t.bare().arg("--help").run().success();
    for cmd in ["push", "pull", "pull-all"] {
        assert!(
            out.stdout.contains(cmd),
            "--help does not list {cmd}\n{out}"
        );
    }
    t.bare().arg("pull").run().code(2);
    t.bare().arg("no-such-command").run().code(2);
    t.bare()
        .args(["pull", "org/m", "--repo-type", "bogus"])
        .run()
        .code(2);
    t.bare().args(["push", "--workers", "many"]).run().code(2);
}
