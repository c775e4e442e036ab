//! The integration-test harness: the Garage test server and its bucket, a per-test sandbox
//! (temp dirs, config file, unique bucket prefix), cache fixtures, a runner for the built binary and
//! huggingface_hub's own view of a cache.

pub mod cache;
pub mod cli;
pub mod fault_proxy;
pub mod fixtures;
pub mod hub;
pub mod mixed;
pub mod python;
pub mod resilience;
pub mod s3;
pub mod seeded;
pub mod serve;
pub mod spec;
pub mod stand_in;
pub mod tls;
pub mod tmpfs;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use tempfile::TempDir;

pub use cache::{
    assert_cache_tidy, commit_hash, git_sha1_hex, sha256_hex, CacheBuilder, CacheView,
};
pub use cli::{count, Cli};
pub use python::{
    check_cache, hf_cache_ls, hf_cache_verify_specs, hold_lock, scanned_repo, scanned_revision,
    venv_bin, Download,
};
pub use s3::{blob_key, manifest_key, ref_key, Bucket};

/// The Garage server started by `scripts/test.sh`, as described by its `HFCS_TEST_*` variables.
#[derive(Debug)]
pub struct Garage {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub ro_access_key: String,
    pub ro_secret_key: String,
}

impl Garage {
    /// The test server. Panics when it is not configured: a missing server must fail the suite,
    /// never skip it.
    pub fn get() -> &'static Garage {
        static GARAGE: OnceLock<Garage> = OnceLock::new();
        GARAGE.get_or_init(|| {
            let var = |name: &str| match std::env::var(name) {
                Ok(v) if !v.is_empty() => v,
                _ => panic!(
                    "\n\n*** the Garage test server is not running: run scripts/test.sh ***\n\
                     ({name} is not set; scripts/test.sh starts Garage and exports HFCS_TEST_*)\n\n"
                ),
            };
            Garage {
                endpoint: var("HFCS_TEST_ENDPOINT"),
                region: var("HFCS_TEST_REGION"),
                bucket: var("HFCS_TEST_BUCKET"),
                access_key: var("HFCS_TEST_ACCESS_KEY"),
                secret_key: var("HFCS_TEST_SECRET_KEY"),
                ro_access_key: var("HFCS_TEST_RO_ACCESS_KEY"),
                ro_secret_key: var("HFCS_TEST_RO_SECRET_KEY"),
            }
        })
    }
}

/// Which of the two test keys a config file carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    ReadWrite,
    ReadOnly,
}

/// Random lowercase hex, enough to keep concurrent tests and repeated runs apart.
pub fn random_hex(len: usize) -> String {
    let mut out = String::new();
    while out.len() < len {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out.truncate(len);
    out
}

/// Everything one test owns: a temp dir (home, working dir, caches, config) and a bucket prefix
/// nobody else uses, so tests run in parallel against one bucket.
pub struct Sandbox {
    dir: TempDir,
    /// This test's `team.prefix` in the test bucket.
    pub prefix: String,
}

impl Sandbox {
    /// A sandbox against the Garage test server, with a config file holding the read-write key
    /// and this sandbox's prefix.
    pub fn new(name: &str) -> Sandbox {
        Garage::get();
        let sandbox = Sandbox::local(name);
        sandbox.write_config(&sandbox.garage_yaml(Key::ReadWrite));
        sandbox
    }

    /// A sandbox without the test server (directory remotes, config parsing); no config file.
    pub fn local(name: &str) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix(&format!("hfcs-{name}-"))
            .tempdir()
            .expect("create temp dir");
        for sub in ["home", "work"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("create sandbox dir");
        }
        let prefix = format!("{}-{}", name.replace('_', "-"), random_hex(8));
        Sandbox { dir, prefix }
    }

    /// A sandbox without the test server whose config names a bucket at a local port nothing
    /// listens on: any request is refused.
    pub fn with_unreachable_bucket(name: &str, bucket: &str) -> Sandbox {
        let t = Sandbox::local(name);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind a free port")
            .local_addr()
            .expect("its address")
            .port();
        t.write_config(&format!(
            "storage:\n  endpoint: http://127.0.0.1:{port}\n  bucket: {bucket}\n  \
             access_key: GK0123456789abcdef01234567\n  secret_key: s3cr3t\n"
        ));
        t
    }

    /// A sandbox without the test server whose config names a directory remote (empty), and
    /// that directory.
    pub fn with_dir_remote(name: &str) -> (Sandbox, PathBuf) {
        let t = Sandbox::local(name);
        let remote = t.cache("remote");
        t.write_config(&format!(
            "storage:\n  endpoint: file://{}\n",
            remote.display()
        ));
        (t, remote)
    }

    pub fn garage(&self) -> &'static Garage {
        Garage::get()
    }

    /// `path` inside the sandbox.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The `HOME` of every command run here.
    pub fn home(&self) -> PathBuf {
        self.path("home")
    }

    /// The working directory of every command run here (where `.env` and `./.hf-cache-sync.yaml` go).
    pub fn work(&self) -> PathBuf {
        self.path("work")
    }

    /// A fresh, empty cache directory named `name`.
    pub fn cache(&self, name: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).expect("create cache dir");
        dir
    }

    pub fn config_path(&self) -> PathBuf {
        self.path("config.yaml")
    }

    /// Writes the config file readable by its owner only, as `init` does and as a file holding
    /// a secret should be (anything looser earns a warning on every run).
    pub fn write_config(&self, yaml: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.config_path();
        std::fs::write(&path, yaml).expect("write config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .expect("chmod config");
        path
    }

    /// A config for the test server with the given key and this sandbox's prefix. `transfer:`
    /// and `cache:` sections may be appended.
    pub fn garage_yaml(&self, key: Key) -> String {
        let g = Garage::get();
        let (access, secret) = match key {
            Key::ReadWrite => (&g.access_key, &g.secret_key),
            Key::ReadOnly => (&g.ro_access_key, &g.ro_secret_key),
        };
        format!(
            "storage:\n  endpoint: {}\n  bucket: {}\n  region: {}\n  access_key: {access}\n  secret_key: {secret}\n\
             team:\n  prefix: {}\n",
            g.endpoint, g.bucket, g.region, self.prefix
        )
    }

    /// The binary with this sandbox's HOME and working dir and `--config <config.yaml>`.
    pub fn hfcs(&self) -> Cli {
        self.bare().config(&self.config_path())
    }

    /// The binary with this sandbox's HOME and working dir and no `--config`.
    pub fn bare(&self) -> Cli {
        Cli::new(&self.home(), &self.work())
    }

    /// The test bucket seen through this sandbox's prefix, with the read-write key.
    pub fn bucket(&self) -> Bucket {
        Bucket::new(Garage::get(), &self.prefix)
    }

    /// Writes `name` (e.g. `.env`) into the working directory.
    pub fn write_work_file(&self, name: &str, body: &str) -> PathBuf {
        let path = self.work().join(name);
        std::fs::write(&path, body).expect("write file");
        path
    }
}

/// Files (and symlinks) under `dir`, as sorted `/`-separated relative paths; empty if `dir` is missing.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.expect("read dir entry");
            let path = entry.path();
            let ty = entry.file_type().expect("file type");
            if ty.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The check called `name` in a `doctor --json` report.
#[track_caller]
pub fn doctor_check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks in {report}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report}"))
}

/// A sandbox with `spec` pushed to its prefix.
pub fn pushed_spec(name: &str, spec: spec::RepoSpec) -> (Sandbox, spec::RepoSpec) {
    let t = Sandbox::new(name);
    let src = t.cache("src");
    spec.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    (t, spec)
}

/// A sandbox with `org/m` (two revisions: `v1.0`, and `main`; see
/// [`spec::RepoSpec::two_revisions`]) pushed to its prefix.
pub fn pushed(name: &str) -> (Sandbox, spec::RepoSpec) {
    pushed_spec(name, spec::RepoSpec::two_revisions("org/m"))
}
