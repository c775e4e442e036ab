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

// ---- bad input, every kind: exit 2, a message naming the culprit, never a panic ----

/// A config file that must be refused, and what the error must name besides the file.
const BAD_FILES: &[(&str, &str, &[&str])] = &[
    ("tab indentation", "storage:\n\tbucket: b\n", &["line 2"]),
    ("unclosed quote", "storage:\n  bucket: \"b\n", &["line"]),
    (
        "unclosed flow sequence",
        "storage:\n  bucket: [b\n",
        &["line"],
    ),
    ("not a mapping", "- storage\n- cache\n", &["sequence"]),
    (
        "duplicate key",
        "storage:\n  bucket: a\n  bucket: b\n",
        &["bucket"],
    ),
    (
        "unknown top-level key",
        "storage:\n  bucket: b\nretries: 3\n",
        &["retries", "line 3"],
    ),
    (
        "unknown storage key",
        "storage:\n  buckte: b\n",
        &["buckte", "line 2"],
    ),
    (
        "unknown cache key",
        "cache:\n  max_local: 3\n",
        &["max_local", "line 2"],
    ),
    (
        "unknown team key",
        "team:\n  prefixx: a\n",
        &["prefixx", "line 2"],
    ),
    (
        "unknown transfer key",
        "transfer:\n  threads: 3\n",
        &["threads", "line 2"],
    ),
    ("section as a scalar", "storage: 5\n", &["storage"]),
    ("section as a list", "team: [a, b]\n", &["team"]),
    (
        "nested under a scalar key",
        "storage:\n  endpoint:\n    url: http://x\n",
        &["endpoint"],
    ),
    ("bool as text", "cache:\n  sync_xet: maybe\n", &["sync_xet"]),
    (
        "number as text",
        "cache:\n  max_local_gb: lots\n",
        &["max_local_gb"],
    ),
    (
        "negative budget",
        "cache:\n  max_local_gb: -5\n",
        &["max_local_gb"],
    ),
    (
        "infinite budget",
        "cache:\n  max_local_gb: .inf\n",
        &["max_local_gb"],
    ),
    (
        "workers as text",
        "transfer:\n  workers: many\n",
        &["workers"],
    ),
    (
        "zero workers",
        "transfer:\n  workers: 0\n",
        &["transfer.workers"],
    ),
    (
        "negative workers",
        "transfer:\n  workers: -4\n",
        &["workers"],
    ),
    (
        "too many workers",
        "transfer:\n  workers: 100000\n",
        &["transfer.workers"],
    ),
    (
        "unknown size unit",
        "transfer:\n  part_size: 12QB\n",
        &["transfer.part_size", "12QB"],
    ),
    (
        "size too small",
        "transfer:\n  multipart_threshold: 1KiB\n",
        &["transfer.multipart_threshold"],
    ),
    (
        "size as a list",
        "transfer:\n  part_size: [8, MiB]\n",
        &["part_size"],
    ),
    (
        "prefix as a mapping",
        "team:\n  prefix: {a: 1}\n",
        &["prefix"],
    ),
    (
        "rate as a word",
        "transfer:\n  limit_rate: fast\n",
        &["transfer.limit_rate", "\"fast\"", "e.g. limit_rate: 50M"],
    ),
    (
        "zero rate",
        "transfer:\n  limit_rate: 0\n",
        &[
            "transfer.limit_rate",
            "at least 1 byte",
            "e.g. limit_rate: 50M",
        ],
    ),
    (
        "unknown rate unit",
        "transfer:\n  limit_rate: 10X\n",
        &[
            "transfer.limit_rate",
            "unknown unit \"X\"",
            "e.g. limit_rate: 50M",
        ],
    ),
    (
        "rate as a list",
        "transfer:\n  limit_rate: [50, M]\n",
        &["limit_rate", "expected a rate such as 50M"],
    ),
];

#[test]
fn bad_config_files_exit_2_naming_file_key_and_line() {
    let t = Sandbox::local("config_bad_files");
    let cache = t.cache("cache");
    let mut checked = 0;
    for (what, yaml, needles) in BAD_FILES {
        let path = t.write_config(yaml);
        let mut out = t
            .hfcs()
            .cache_dir(&cache)
            .arg("status")
            .run()
            .code(2)
            .failure()
            .stderr_has(&path.display().to_string());
        for needle in *needles {
            out = out.stderr_has(needle);
        }
        assert!(out.stderr.contains("error:"), "{what}\n{out}");
        let last = out.stderr.lines().last().unwrap_or_default();
        assert!(
            last.starts_with("hint: "),
            "{what}: ends with what to do\n{out}"
        );
        checked += 1;
    }
    // Bytes that are not UTF-8, and a folder where the file should be.
    std::fs::write(t.config_path(), b"storage:\n  bucket: \xff\xfe\n").unwrap();
    t.hfcs()
        .arg("status")
        .run()
        .code(2)
        .failure()
        .stderr_has(&t.config_path().display().to_string());
    let folder = t.cache("config-folder");
    t.bare()
        .config(&folder)
        .arg("status")
        .run()
        .code(2)
        .failure()
        .stderr_has(&folder.display().to_string());
    checked += 2;
    println!("bad config files refused: {checked}");
}

/// A command line that must be refused, with an environment, and what the error must name.
struct BadCli {
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    says: &'static [&'static str],
}

const fn bad(args: &'static [&'static str], says: &'static [&'static str]) -> BadCli {
    BadCli {
        args,
        env: &[],
        says,
    }
}

const fn bad_env(
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    says: &'static [&'static str],
) -> BadCli {
    BadCli { args, env, says }
}

const BAD_CLI: &[BadCli] = &[
    bad(
        &["push", "--include", "[a-", "--dry-run"],
        &["--include", "[a-"],
    ),
    bad(
        &["push", "--exclude", "[a-", "--dry-run"],
        &["--exclude", "[a-"],
    ),
    bad(
        &["pull-all", "--include", "{a", "--dry-run"],
        &["--include", "{a"],
    ),
    bad(
        &["pull-all", "--exclude", "a[", "--dry-run"],
        &["--exclude", "a["],
    ),
    bad(&["pull-all", "--limit", "-1"], &["--limit"]),
    bad(&["prune", "--older-than", "3x", "--dry-run"], &["3x"]),
    bad(&["prune", "--older-than", "", "--dry-run"], &["duration"]),
    bad(
        &["prune", "--max-gb", "-1", "--dry-run"],
        &["--max-gb", "-1"],
    ),
    bad(
        &["prune", "--max-gb", "abc", "--dry-run"],
        &["--max-gb", "abc"],
    ),
    bad(
        &["prune", "--max-gb", "NaN", "--dry-run"],
        &["--max-gb", "NaN"],
    ),
    bad(
        &["prune", "--max-gb", "inf", "--dry-run"],
        &["--max-gb", "inf"],
    ),
    bad(&["list", "--filter", "size>12QB"], &["--filter", "12QB"]),
    bad(&["list", "--filter", "size>-1"], &["--filter", "-1"]),
    bad(&["list", "--filter", "accessed>3x"], &["--filter", "3x"]),
    bad(&["list", "--filter", "size>>1GB"], &["--filter"]),
    bad(&["list", "--filter", "colour=red"], &["--filter", "colour"]),
    bad(&["list", "--filter", "type>model"], &["--filter", "type"]),
    bad(&["list", "--sort", "weight"], &["--sort", "weight"]),
    bad(&["push", "--workers", "0"], &["--workers", "0"]),
    bad(&["push", "--workers", "300"], &["--workers", "300"]),
    bad(
        &["pull", "org/m", "--workers", "abc"],
        &["--workers", "abc"],
    ),
    bad(&["verify", "--workers", "0"], &["--workers", "0"]),
    bad(
        &["pull", "org/m", "--remote", "s3://"],
        &["--remote", "no bucket"],
    ),
    bad(
        &["pull", "org/m", "--repo-type", "widget"],
        &["--repo-type", "widget"],
    ),
    bad(&["rm", "--yes"], &["TARGET"]),
    bad(&["rm", "org/m"], &["--yes"]),
    bad_env(
        &["status"],
        &[("HF_CACHE_SYNC_WORKERS", "0")],
        &["HF_CACHE_SYNC_WORKERS", "0"],
    ),
    bad_env(
        &["status"],
        &[("HF_CACHE_SYNC_WORKERS", "abc")],
        &["HF_CACHE_SYNC_WORKERS", "abc"],
    ),
    bad_env(
        &["status"],
        &[("HF_CACHE_SYNC_WORKERS", "-2")],
        &["HF_CACHE_SYNC_WORKERS", "-2"],
    ),
    bad_env(
        &["status"],
        &[("HF_CACHE_SYNC_WORKERS", "100000")],
        &["HF_CACHE_SYNC_WORKERS"],
    ),
    bad_env(
        &["status"],
        &[("HF_CACHE_SYNC_PART_SIZE", "lots")],
        &["HF_CACHE_SYNC_PART_SIZE", "lots"],
    ),
    bad_env(
        &["status"],
        &[("HF_CACHE_SYNC_PART_SIZE", "1KiB")],
        &["HF_CACHE_SYNC_PART_SIZE"],
    ),
    bad_env(
        &["status"],
        &[("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "6GiB")],
        &["HF_CACHE_SYNC_MULTIPART_THRESHOLD"],
    ),
    bad_env(
        &["push"],
        &[("HF_CACHE_SYNC_STALE_UPLOAD_AGE", "3x")],
        &["HF_CACHE_SYNC_STALE_UPLOAD_AGE", "3x"],
    ),
    // `--limit-rate` on every command that takes it; push and pull in `limit_rate.rs`.
    bad(
        &["pull-all", "--limit-rate", "0"],
        &["--limit-rate", "at least 1 byte", "e.g. --limit-rate 50M"],
    ),
    bad(
        &[
            "pull",
            "--lock",
            "hf-cache-sync.lock",
            "--limit-rate",
            "fast",
        ],
        &["--limit-rate", "\"fast\"", "e.g. --limit-rate 50M"],
    ),
    bad(
        &["watch", "--limit-rate", "10X"],
        &[
            "--limit-rate",
            "unknown unit \"X\"",
            "e.g. --limit-rate 50M",
        ],
    ),
    bad_env(
        &["pull", "org/m"],
        &[("HF_CACHE_SYNC_LIMIT_RATE", "50MB")],
        &[
            "HF_CACHE_SYNC_LIMIT_RATE",
            "MB is ambiguous",
            "e.g. HF_CACHE_SYNC_LIMIT_RATE=50M",
        ],
    ),
];

#[test]
fn bad_flags_and_environment_exit_2_naming_the_culprit() {
    let t = Sandbox::local("config_bad_cli");
    let cache = t.cache("cache");
    tiny_repo(&cache, "org/m");
    let remote = t.cache("remote");
    t.write_config(&format!("storage:\n  endpoint: {}\n", file_url(&remote)));
    for case in BAD_CLI {
        let mut cli = t.hfcs().cache_dir(&cache).args(case.args);
        for (k, v) in case.env {
            cli = cli.env(k, v);
        }
        let mut out = cli.run().code(2).failure();
        for needle in case.says {
            out = out.stderr_has(needle);
        }
        assert_eq!(out.stdout, "", "errors go to stderr\n{out}");
        let last = out.stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with("hint: "), "ends with what to do\n{out}");
    }
    // Nothing was pushed, pulled or pruned by any of them.
    assert!(files_under(&remote).is_empty());
    println!(
        "bad flags and environment values refused: {}",
        BAD_CLI.len()
    );
}

#[test]
fn paths_that_are_not_utf8_are_handled() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let t = Sandbox::local("config_non_utf8");
    // A cache dir whose name is not UTF-8 works like any other.
    let cache = t.path("").join(OsStr::from_bytes(b"hub-\xff\xfe"));
    tiny_repo(&cache, "org/m");
    let remote = t.path("").join(OsStr::from_bytes(b"remote-\xfe"));
    std::fs::create_dir_all(&remote).unwrap();
    let config = t.path("").join(OsStr::from_bytes(b"config-\xff.yaml"));
    std::fs::write(&config, "cache:\n  max_local_gb: 10\n").unwrap();
    for args in [
        &["list"][..],
        &["status"],
        &["verify"],
        &["prune", "--dry-run"],
    ] {
        t.bare()
            .config(&config)
            .cache_dir(&cache)
            .args(args)
            .run()
            .success();
    }
    t.bare()
        .cache_dir(&cache)
        .arg("push")
        .arg("--remote")
        .arg(&remote)
        .run()
        .success();
    assert_eq!(pushed_to(&remote), ["org__m"]);

    // A missing cache dir with such a name is named, lossily, in the error.
    t.bare()
        .cache_dir(&t.path("").join(OsStr::from_bytes(b"missing-\xff")))
        .args(["push", "--dry-run", "--remote"])
        .arg(&remote)
        .run()
        .code(2)
        .stderr_has("missing-");

    // A repo folder whose name is not UTF-8: a warning naming it, and the rest carries on.
    let odd = cache.join(OsStr::from_bytes(b"models--org--\xff\xfe"));
    std::fs::create_dir_all(odd.join("snapshots")).unwrap();
    for (args, code) in [
        // Not `list -q`: --quiet keeps warnings to itself.
        (&["list"][..], 0),
        (&["status"], 0),
        (&["prune", "--dry-run"], 0),
        // verify counts every odd entry of the cache as a problem to look at.
        (&["verify"], 1),
    ] {
        let out = t
            .bare()
            .cache_dir(&cache)
            .args(args)
            .run()
            .code(code)
            .no_panic();
        // A warning on stderr; verify lists it among its problems on stdout.
        let said = format!("{}{}", out.stderr, out.stdout);
        assert!(
            said.lines()
                .any(|l| l.contains("models--org--") && l.contains("not UTF-8")),
            "the warning names the folder\n{out}"
        );
    }
    let out = t.bare().cache_dir(&cache).args(["list", "-q"]).run();
    assert_eq!(out.stdout.trim(), "model/org/m", "{out}");

    // Arguments that must be text are refused as such.
    for args in [
        &[
            OsStr::new("push"),
            OsStr::new("--include"),
            OsStr::from_bytes(b"org/\xff"),
        ][..],
        &[
            OsStr::new("rm"),
            OsStr::from_bytes(b"org/\xff"),
            OsStr::new("--yes"),
        ],
        &[
            OsStr::new("list"),
            OsStr::new("--filter"),
            OsStr::from_bytes(b"refs=\xff"),
        ],
    ] {
        t.bare()
            .cache_dir(&cache)
            .args(args)
            .run()
            .code(2)
            .failure()
            .stderr_has("UTF-8");
    }
}
