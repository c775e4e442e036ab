//! The recipes users copy: the GitHub Action (`action.yml`) and its example workflow pass
//! actionlint and shellcheck, and the action's steps run as a runner runs them against the test
//! server; `examples/Makefile`'s targets; `examples/gpu-node-bootstrap.sh`, run twice (the second
//! run moves nothing). Each installs the tool the way its users do: pip, from the wheel.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::common::cache::set_modified_ago;
use crate::common::hub::{HubRepo, HubStandIn};
use crate::common::spec::{self, RepoSpec};
use crate::common::{
    assert_cache_tidy, check_cache, commit_hash, files_under, venv_bin, Garage, Key, Sandbox,
};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn binary() -> PathBuf {
    assert_cmd::cargo::cargo_bin("hf-cache-sync")
}

/// The wheel pip installs, built once per test run from this checkout (`maturin build`).
fn wheel() -> &'static Path {
    static WHEEL: OnceLock<PathBuf> = OnceLock::new();
    WHEEL.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("recipes-wheel");
        let _ = std::fs::remove_dir_all(&out);
        let status = Command::new(venv_bin().join("maturin"))
            .args(["build", "--quiet", "--out"])
            .arg(&out)
            .current_dir(root())
            .status()
            .expect("run maturin");
        assert!(status.success(), "maturin build failed");
        let wheel = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "whl"))
            .expect("a wheel");
        wheel
    })
}

/// A command with nothing of the test's environment but `PATH` (system tools: bash, python3,
/// make) and the given `HOME`.
fn clean(program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear()
        .env("HOME", home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

#[track_caller]
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// A config file for the test server without keys (they come from the environment), as a
/// repository commits it.
fn keyless_config(t: &Sandbox, dir: &Path) -> PathBuf {
    let g = Garage::get();
    let path = dir.join(".hf-cache-sync.yaml");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        &path,
        format!(
            "storage:\n  endpoint: {}\n  bucket: {}\n  region: {}\nteam:\n  prefix: {}\n",
            g.endpoint, g.bucket, g.region, t.prefix
        ),
    )
    .unwrap();
    path
}

/// The models the recipes pull: a model pinned to its main commit and a dataset, on the remote.
fn published(t: &Sandbox) -> [RepoSpec; 2] {
    let m = RepoSpec::two_revisions("org/m");
    let d = RepoSpec::dataset("org/d")
        .rev(&commit_hash("org/d main"), &["main"])
        .lfs("data.csv", b"a,b\n1,2\n")
        .file("README.md", b"# eval set\n");
    let repos = [m, d];
    let src = t.cache("published");
    spec::write_all(&repos, &src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    repos
}

fn pinned(repos: &[RepoSpec; 2]) -> String {
    format!(
        "{}@{}\n  dataset/{}@main  # the eval set\n",
        repos[0].repo_id,
        repos[0].commit("main"),
        repos[1].repo_id
    )
}

// ---- the GitHub Action ----

/// One `run:` step of the action.
struct Step {
    name: String,
    env: Vec<(String, String)>,
    run: String,
}

/// The action's steps, with `${{ inputs.* }}` substituted as the runner does (given inputs, else
/// the defaults of action.yml).
fn action_steps(inputs: &BTreeMap<&str, &str>) -> Vec<Step> {
    let text = std::fs::read_to_string(root().join("action.yml")).unwrap();
    let action: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let declared = action["inputs"].as_mapping().unwrap();
    for name in inputs.keys() {
        assert!(
            declared.contains_key(*name),
            "action.yml has no input {name}"
        );
    }
    let value = |name: &str| -> String {
        match inputs.get(name) {
            Some(v) => v.to_string(),
            None => declared[name]["default"].as_str().unwrap_or("").to_string(),
        }
    };
    let render = |text: &str| -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${{") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find("}}").expect("closed expression") + start;
            let expr = rest[start + 3..end].trim();
            let name = expr
                .strip_prefix("inputs.")
                .unwrap_or_else(|| panic!("unexpected expression {expr} in a step"));
            out.push_str(&value(name));
            rest = &rest[end + 2..];
        }
        out.push_str(rest);
        out
    };
    assert_eq!(action["runs"]["using"], "composite");
    action["runs"]["steps"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["shell"], "bash", "every step runs in bash");
            let run = s["run"].as_str().expect("a run: step");
            assert!(
                !run.contains("${{"),
                "inputs reach scripts through env only"
            );
            let env = s["env"]
                .as_mapping()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| {
                            (k.as_str().unwrap().to_string(), render(v.as_str().unwrap()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            Step {
                name: s["name"].as_str().unwrap_or("").to_string(),
                env,
                run: run.to_string(),
            }
        })
        .collect()
}

/// A runner's job: its workspace, temp and tool cache, the files steps write to (GITHUB_ENV,
/// GITHUB_PATH, GITHUB_OUTPUT) and the job's environment (the secrets a workflow passes).
struct Runner {
    dir: PathBuf,
    job_env: Vec<(String, String)>,
}

/// How the action's steps ran.
struct Ran {
    code: i32,
    log: String,
    github_env: String,
    output: String,
}

impl Ran {
    /// The steps ended with exit `code` (0: all of them ran), their log saying each of `needles`.
    #[track_caller]
    fn ended(&self, code: i32, needles: &[&str]) {
        assert_eq!(self.code, code, "{}", self.log);
        for needle in needles {
            assert!(
                self.log.contains(needle),
                "expected {needle:?} in\n{}",
                self.log
            );
        }
    }
}

impl Runner {
    fn new(dir: PathBuf, job_env: &[(&str, &str)]) -> Runner {
        for sub in ["workspace", "temp", "tool-cache", "home"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        Runner {
            dir,
            job_env: job_env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn workspace(&self) -> PathBuf {
        self.dir.join("workspace")
    }

    /// Runs the action's steps one after another as a runner does (`bash --noprofile --norc -eo
    /// pipefail`), each seeing what the earlier ones added to GITHUB_ENV and GITHUB_PATH; stops at
    /// the first that fails.
    fn run_action(&self, inputs: &[(&str, &str)]) -> Ran {
        let inputs: BTreeMap<&str, &str> = inputs.iter().copied().collect();
        let files = ["env", "path", "output"].map(|f| {
            let p = self.dir.join(format!("github-{f}"));
            std::fs::write(&p, "").unwrap();
            p
        });
        let mut log = String::new();
        let mut code = 0;
        for (i, step) in action_steps(&inputs).iter().enumerate() {
            let script = self.dir.join(format!("step-{i}.sh"));
            std::fs::write(&script, &step.run).unwrap();
            let mut cmd = clean("bash", &self.dir.join("home"));
            cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
                .arg(&script)
                .current_dir(self.workspace())
                .env("GITHUB_ACTIONS", "true")
                .env("GITHUB_WORKSPACE", self.workspace())
                .env("GITHUB_ACTION_PATH", root())
                .env("RUNNER_TEMP", self.dir.join("temp"))
                .env("RUNNER_TOOL_CACHE", self.dir.join("tool-cache"))
                .env("GITHUB_ENV", &files[0])
                .env("GITHUB_PATH", &files[1])
                .env("GITHUB_OUTPUT", &files[2]);
            let added_path: Vec<String> = std::fs::read_to_string(&files[1])
                .unwrap()
                .lines()
                .map(String::from)
                .collect();
            let mut path = added_path.into_iter().rev().collect::<Vec<_>>();
            path.push(std::env::var("PATH").unwrap_or_default());
            cmd.env("PATH", path.join(":"));
            for (k, v) in &self.job_env {
                cmd.env(k, v);
            }
            for line in std::fs::read_to_string(&files[0]).unwrap().lines() {
                let (k, v) = line.split_once('=').expect("NAME=value in GITHUB_ENV");
                cmd.env(k, v);
            }
            for (k, v) in &step.env {
                cmd.env(k, v);
            }
            let (c, out, err) = run(&mut cmd);
            log.push_str(&format!("--- step {}: exit {c}\n{out}{err}", step.name));
            code = c;
            if c != 0 {
                break;
            }
        }
        Ran {
            code,
            log,
            github_env: std::fs::read_to_string(&files[0]).unwrap(),
            output: std::fs::read_to_string(&files[2]).unwrap(),
        }
    }
}

/// A runner whose job passes `key` as AWS_* secrets and whose workspace holds a keyless config;
/// with the hub cache the tests give the action (`.hf-cache` in the workspace).
fn runner_with(t: &Sandbox, key: Key) -> (Runner, PathBuf) {
    let g = Garage::get();
    let (id, secret) = match key {
        Key::ReadWrite => (&g.access_key, &g.secret_key),
        Key::ReadOnly => (&g.ro_access_key, &g.ro_secret_key),
    };
    let runner = Runner::new(
        t.path("runner"),
        &[("AWS_ACCESS_KEY_ID", id), ("AWS_SECRET_ACCESS_KEY", secret)],
    );
    keyless_config(t, &runner.workspace());
    let cache = runner.workspace().join(".hf-cache");
    (runner, cache)
}

#[test]
fn the_action_and_the_workflow_pass_actionlint_and_shellcheck() {
    let repo = tempfile::tempdir().unwrap();
    std::fs::copy(root().join("action.yml"), repo.path().join("action.yml")).unwrap();
    let workflows = repo.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows).unwrap();
    let workflow = std::fs::read_to_string(root().join("examples/github-workflow.yml")).unwrap();
    assert!(workflow.contains("uses: your-org/hf-cache-sync@v0.2.0"));
    // Used from this checkout, actionlint checks the action's metadata and every input the
    // workflow passes it.
    let local = workflow.replace("your-org/hf-cache-sync@v0.2.0", "./");
    std::fs::write(workflows.join("models.yml"), local).unwrap();
    let home = repo.path();
    run(clean("git", home)
        .args(["init", "-q"])
        .current_dir(repo.path()));
    let path = format!(
        "{}:{}",
        venv_bin().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (code, out, err) = run(clean(venv_bin().join("actionlint"), home)
        .env("PATH", &path)
        .arg(".github/workflows/models.yml")
        .current_dir(repo.path()));
    assert_eq!(code, 0, "actionlint:\n{out}{err}");

    // actionlint leaves a composite action's scripts alone: shellcheck them, and the bootstrap.
    let mut scripts = vec![root().join("examples/gpu-node-bootstrap.sh")];
    for (i, step) in action_steps(&BTreeMap::new()).iter().enumerate() {
        let p = repo.path().join(format!("step-{i}.sh"));
        std::fs::write(&p, format!("#!/usr/bin/env bash\n{}", step.run)).unwrap();
        scripts.push(p);
    }
    let (code, out, err) = run(clean(venv_bin().join("shellcheck"), home).args(&scripts));
    assert_eq!(code, 0, "shellcheck:\n{out}{err}");
}

#[test]
fn the_action_pulls_with_a_read_only_key_as_a_runner_runs_it() {
    let t = Sandbox::new("recipes_action");
    let repos = published(&t);
    let g = Garage::get();
    let (runner, cache) = runner_with(&t, Key::ReadOnly);
    let models = pinned(&repos);
    let wheel = wheel().display().to_string();
    let cache_input = cache.display().to_string();
    let inputs = [
        ("models", models.as_str()),
        ("cache-dir", cache_input.as_str()),
        ("package", wheel.as_str()),
        ("workers", "8"),
        ("verify", "true"),
    ];
    let ran = runner.run_action(&inputs);
    // doctor passes a read-only key: pulling needs no more.
    ran.ended(0, &["installed hf-cache-sync 0.2.0", "read-only"]);
    repos[0].assert_pulled(&cache, "main");
    repos[1].assert_pulled(&cache, "main");
    check_cache(&cache, &repos[1].downloads("main"));
    assert_cache_tidy(&cache);
    // Later steps find the cache; nothing secret is left for them or in the workspace.
    assert_eq!(
        ran.github_env,
        format!("HF_HUB_CACHE={}\n", cache.display())
    );
    assert_eq!(ran.output, format!("cache-dir={}\n", cache.display()));
    for rel in files_under(&runner.workspace()) {
        let text = std::fs::read(runner.workspace().join(&rel)).unwrap();
        assert!(
            !String::from_utf8_lossy(&text).contains(g.ro_secret_key.as_str()),
            "{rel} holds the secret key"
        );
    }
    assert!(
        !files_under(&cache)
            .iter()
            .any(|f| f.contains("hf-cache-sync.yaml")),
        "the cache holds models only"
    );

    // The next job on this runner: the tool comes from the tool cache, the models are there.
    let again = runner.run_action(&inputs);
    again.ended(0, &["from the tool cache", "0 blobs downloaded"]);

    // Bad inputs fail the step, saying which input and what to give.
    let bad = runner.run_action(&[("workers", "many"), ("package", wheel.as_str())]);
    bad.ended(2, &["::error::input workers is 'many'"]);
    let bad = runner.run_action(&[("verify", "yes"), ("package", wheel.as_str())]);
    bad.ended(2, &["input verify is 'yes': use true or false"]);
    let missing = runner.run_action(&[
        ("models", "org/missing"),
        ("cache-dir", cache_input.as_str()),
        ("package", wheel.as_str()),
    ]);
    missing.ended(1, &["::error::could not pull: org/missing"]);
    // Writing through needs a key that may write: doctor says so before anything moves.
    let denied = runner.run_action(&[
        ("models", models.as_str()),
        ("write-through", "true"),
        ("package", wheel.as_str()),
    ]);
    assert_ne!(denied.code, 0, "{}", denied.log);
    assert!(
        denied.log.contains("hf-cache-sync doctor"),
        "{}",
        denied.log
    );
}

#[test]
fn the_action_writes_through_with_a_key_that_may_write() {
    let t = Sandbox::new("recipes_write_through");
    let (runner, cache) = runner_with(&t, Key::ReadWrite);
    // A model this runner's cache has and the remote lacks.
    let local = RepoSpec::new("org/local")
        .rev(&commit_hash("org/local main"), &["main"])
        .file("config.json", b"{}\n");
    local.write(&cache);
    let cache_input = cache.display().to_string();
    let wheel = wheel().display().to_string();
    let ran = runner.run_action(&[
        ("models", "org/local@main"),
        ("cache-dir", cache_input.as_str()),
        ("package", wheel.as_str()),
        ("write-through", "true"),
    ]);
    assert_eq!(ran.code, 0, "{}", ran.log);
    assert!(
        ran.log
            .contains("::warning::not on the remote yet: org/local@main"),
        "{}",
        ran.log
    );
    let bucket = t.bucket();
    for key in local.remote_keys() {
        assert!(bucket.exists(&key), "{key} was not pushed\n{}", ran.log);
    }
}

#[test]
fn the_action_falls_back_to_the_hub_and_writes_through() {
    let t = Sandbox::new("recipes_fallback");
    // A model only the Hub has.
    let hub_only = RepoSpec::new("org/hub-only")
        .rev(&commit_hash("org/hub-only main"), &["main"])
        .file("config.json", b"{\"from\": \"hub\"}\n");
    let hub = HubStandIn::start(vec![HubRepo::from_spec(&hub_only)], 100);
    let g = Garage::get();
    let hub_url = hub.url();
    let runner = Runner::new(
        t.path("runner"),
        &[
            ("AWS_ACCESS_KEY_ID", &g.access_key),
            ("AWS_SECRET_ACCESS_KEY", &g.secret_key),
            ("HF_ENDPOINT", &hub_url),
        ],
    );
    keyless_config(&t, &runner.workspace());
    let cache = runner.workspace().join(".hf-cache");
    let cache_input = cache.display().to_string();
    let wheel = wheel().display().to_string();
    let ran = runner.run_action(&[
        ("models", "org/hub-only@main"),
        ("cache-dir", cache_input.as_str()),
        ("package", wheel.as_str()),
        ("fallback", "hf-hub"),
        ("write-through", "true"),
    ]);
    assert_eq!(ran.code, 0, "{}", ran.log);
    assert!(!ran.log.contains("not on the remote yet"), "{}", ran.log);
    hub_only.assert_pulled(&cache, "main");
    let bucket = t.bucket();
    for key in hub_only.remote_keys() {
        assert!(
            bucket.exists(&key),
            "{key} was not written through\n{}",
            ran.log
        );
    }
}

/// The lock file the recipes pull from: the same two models, as `hf-cache-sync lock` writes them.
fn lock_file(repos: &[RepoSpec; 2], path: &Path) {
    std::fs::write(
        path,
        format!(
            "# pins\n{}@{}  # main\ndataset/{}@{}  # main\n",
            repos[0].repo_id,
            repos[0].commit("main"),
            repos[1].repo_id,
            repos[1].commit("main")
        ),
    )
    .unwrap();
}

#[test]
fn the_action_pulls_the_pins_of_a_lock_file() {
    let t = Sandbox::new("recipes_action_lock");
    let repos = published(&t);
    let (runner, cache) = runner_with(&t, Key::ReadOnly);
    lock_file(&repos, &runner.workspace().join("hf-cache-sync.lock"));
    let wheel = wheel().display().to_string();
    let cache_input = cache.display().to_string();
    let inputs = [
        ("lock-file", "hf-cache-sync.lock"),
        ("cache-dir", cache_input.as_str()),
        ("package", wheel.as_str()),
        ("verify", "true"),
    ];
    let ran = runner.run_action(&inputs);
    ran.ended(0, &["pull --lock hf-cache-sync.lock", "2 pulled"]);
    repos[0].assert_pulled(&cache, "main");
    repos[1].assert_pulled(&cache, "main");
    check_cache(&cache, &repos[0].downloads("main"));
    let again = runner.run_action(&inputs);
    again.ended(0, &["2 already present, 0 pulled"]);

    let both = runner.run_action(&[
        ("lock-file", "hf-cache-sync.lock"),
        ("models", "org/m"),
        ("package", wheel.as_str()),
    ]);
    both.ended(2, &["::error::inputs models and lock-file are both set"]);
    let missing = runner.run_action(&[("lock-file", "nope.lock"), ("package", wheel.as_str())]);
    missing.ended(2, &["::error::input lock-file is 'nope.lock'"]);
}

// ---- make ----

fn make(t: &Sandbox, cache: &Path, config: &Path, target: &str, models: &str) -> (i32, String) {
    let flags = format!(
        "--config {} --cache-dir {}",
        config.display(),
        cache.display()
    );
    let (code, out, err) = run(clean("make", &t.home())
        .arg("-f")
        .arg(root().join("examples/Makefile"))
        .arg(target)
        .arg(format!("HFCS={}", binary().display()))
        .arg(format!("HFCS_FLAGS={flags}"))
        .arg(format!("MODELS={models}"))
        .current_dir(t.work()));
    (code, format!("$ make {target}\n{out}{err}"))
}

#[test]
fn the_makefile_targets_pull_push_verify_and_prune() {
    let t = Sandbox::new("recipes_make");
    let config = t.config_path();
    let repos = [
        RepoSpec::two_revisions("org/m"),
        RepoSpec::dataset("org/d")
            .rev(&commit_hash("org/d main"), &["main"])
            .lfs("data.csv", b"x,y\n"),
    ];
    let [m, d] = &repos;
    let models = format!("org/m@{} dataset/org/d@main", m.commit("main"));
    let src = t.cache("src");
    spec::write_all(&repos, &src);

    let (code, log) = make(&t, &src, &config, "push-models", &models);
    assert_eq!(code, 0, "{log}");
    let bucket = t.bucket();
    for key in m.remote_keys().into_iter().chain(d.remote_keys()) {
        assert!(bucket.exists(&key), "{key}\n{log}");
    }

    let cache = t.cache("hub");
    let (code, log) = make(&t, &cache, &config, "models", &models);
    assert_eq!(code, 0, "{log}");
    m.assert_pulled(&cache, "main");
    d.assert_pulled(&cache, "main");
    let (code, log) = make(&t, &cache, &config, "verify", &models);
    assert_eq!(code, 0, "{log}");

    // prune frees what nothing uses (an old orphaned blob) and leaves the models.
    let orphan = m.dir(&cache).join("blobs").join("0".repeat(64));
    std::fs::write(&orphan, b"left over").unwrap();
    set_modified_ago(&orphan, std::time::Duration::from_secs(2 * 3600));
    let (code, log) = make(&t, &cache, &config, "prune", &models);
    assert_eq!(code, 0, "{log}");
    assert!(!orphan.exists(), "{log}");
    m.assert_pulled(&cache, "main");
    d.assert_pulled(&cache, "main");
    check_cache(&cache, &d.downloads("main"));

    // Pinned in a lock file (`make lock`), the models come from it into a fresh cache.
    let (code, log) = make(&t, &src, &config, "lock", &models);
    assert_eq!(code, 0, "{log}");
    let lock = std::fs::read_to_string(t.work().join("hf-cache-sync.lock")).unwrap();
    assert!(
        lock.contains(&format!("org/m@{}", m.commit("main"))),
        "{lock}"
    );
    let pinned = t.cache("pinned");
    let (code, log) = make(&t, &pinned, &config, "models", "");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("pull --lock hf-cache-sync.lock"), "{log}");
    m.assert_pulled(&pinned, "main");
    d.assert_pulled(&pinned, "main");
    let (code, log) = make(&t, &pinned, &config, "verify", "");
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("verify --lock"), "{log}");
    std::fs::remove_file(t.work().join("hf-cache-sync.lock")).unwrap();

    // No models: a clear error, nothing run.
    let (code, log) = make(&t, &cache, &config, "models", "");
    assert_eq!(code, 2, "{log}");
    assert!(log.contains("no models"), "{log}");
}

// ---- the GPU-node bootstrap ----

/// Every file under `dir` with its inode and modification time: what "moved nothing" compares.
fn snapshot_of(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    files_under(dir)
        .into_iter()
        .map(|rel| {
            let meta = std::fs::symlink_metadata(dir.join(&rel)).unwrap();
            (rel, meta.ino(), meta.modified().unwrap())
        })
        .collect()
}

#[test]
fn the_bootstrap_script_is_idempotent_and_fails_on_a_missing_model() {
    let t = Sandbox::new("recipes_bootstrap");
    let repos = published(&t);
    let g = Garage::get();
    let config = keyless_config(&t, &t.path("etc"));
    let cache = t.path("node-cache");
    let tool = t.path("opt/hf-cache-sync");
    let bootstrap = |models: &str| {
        run(clean("bash", &t.home())
            .arg(root().join("examples/gpu-node-bootstrap.sh"))
            .env("HFCS_MODELS", models)
            .env("HFCS_PACKAGE", wheel())
            .env("HFCS_HOME", &tool)
            .env("HFCS_CONFIG", &config)
            .env("HF_HUB_CACHE", &cache)
            .env("AWS_ACCESS_KEY_ID", &g.ro_access_key)
            .env("AWS_SECRET_ACCESS_KEY", &g.ro_secret_key)
            .current_dir(t.work()))
    };
    let models = pinned(&repos);
    let (code, out, err) = bootstrap(&models);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("installing hf-cache-sync 0.2.0"), "{err}");
    repos[0].assert_pulled(&cache, "main");
    repos[1].assert_pulled(&cache, "main");
    // Pinned to a commit, the model is loaded by it (a pull of a commit writes no ref).
    check_cache(&cache, &repos[0].downloads(repos[0].commit("main")));

    let before = (snapshot_of(&cache), snapshot_of(&tool));
    let (code, out, err) = bootstrap(&models);
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("is installed"), "{err}");
    let pulls: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("blobs downloaded"))
        .collect();
    assert_eq!(pulls.len(), 2, "{out}");
    assert!(
        pulls.iter().all(|l| l.contains(" 0 blobs downloaded")),
        "{out}"
    );
    let after = (snapshot_of(&cache), snapshot_of(&tool));
    let changed: Vec<_> = after
        .0
        .iter()
        .chain(&after.1)
        .filter(|e| !before.0.contains(e) && !before.1.contains(e))
        .collect();
    assert!(
        changed.is_empty() && before.0.len() == after.0.len(),
        "the second run moved {changed:?}"
    );

    // A model the remote lacks: the others are still pulled, and the run fails naming it.
    let (code, out, err) = bootstrap(&format!("{models} org/missing@main"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("error: not pulled: org/missing@main"), "{err}");
    assert!(err.contains("hint:"), "{err}");
    let (code, _, err) = bootstrap("  # nothing\n");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no models to pull"), "{err}");

    // A lock file instead of a list: a fresh node pulls its pins, a second run asks nothing.
    let lock = t.work().join("hf-cache-sync.lock");
    lock_file(&repos, &lock);
    let locked_cache = t.path("locked-cache");
    let by_lock = || {
        run(clean("bash", &t.home())
            .arg(root().join("examples/gpu-node-bootstrap.sh"))
            .arg(&lock)
            .env("HFCS_PACKAGE", wheel())
            .env("HFCS_HOME", &tool)
            .env("HFCS_CONFIG", &config)
            .env("HF_HUB_CACHE", &locked_cache)
            .env("AWS_ACCESS_KEY_ID", &g.ro_access_key)
            .env("AWS_SECRET_ACCESS_KEY", &g.ro_secret_key)
            .current_dir(t.work()))
    };
    let (code, out, err) = by_lock();
    assert_eq!(code, 0, "{out}{err}");
    repos[0].assert_pulled(&locked_cache, "main");
    repos[1].assert_pulled(&locked_cache, "main");
    let before = snapshot_of(&locked_cache);
    let (code, out, err) = by_lock();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("2 already present, 0 pulled"), "{out}{err}");
    assert_eq!(snapshot_of(&locked_cache), before);
}
