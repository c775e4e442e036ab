//! Runs the built `hf-cache-sync` with a clean environment and checks what it did.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// One invocation of the binary. Nothing is inherited from the test's environment except `PATH`:
/// no `HF_*`, `AWS_*` or `B2_*` can leak in from the developer's shell.
pub struct Cli {
    global: Vec<OsString>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    home: PathBuf,
    cwd: PathBuf,
    timeout: Duration,
}

impl Cli {
    pub fn new(home: &Path, cwd: &Path) -> Cli {
        Cli {
            global: Vec::new(),
            args: Vec::new(),
            envs: Vec::new(),
            home: home.to_path_buf(),
            cwd: cwd.to_path_buf(),
            timeout: Duration::from_secs(120),
        }
    }

    /// A global flag; global flags go before the subcommand.
    pub fn global(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.global.push(arg.as_ref().to_os_string());
        self
    }

    pub fn json(self) -> Self {
        self.global("--json")
    }

    pub fn config(self, path: &Path) -> Self {
        self.global("--config").global(path)
    }

    pub fn cache_dir(self, path: &Path) -> Self {
        self.global("--cache-dir").global(path)
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    pub fn current_dir(mut self, dir: &Path) -> Self {
        self.cwd = dir.to_path_buf();
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Starts the binary without waiting, for tests that interrupt it.
    #[track_caller]
    pub fn spawn(self) -> std::process::Child {
        let bin = assert_cmd::cargo::cargo_bin("hf-cache-sync");
        let mut cmd = std::process::Command::new(bin);
        cmd.env_clear()
            .env("HOME", &self.home)
            .current_dir(&self.cwd)
            .args(&self.global)
            .args(&self.args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.spawn().expect("start hf-cache-sync")
    }

    #[track_caller]
    pub fn run(self) -> Output {
        let mut cmd =
            assert_cmd::Command::cargo_bin("hf-cache-sync").expect("the hf-cache-sync binary");
        cmd.env_clear()
            .env("HOME", &self.home)
            .current_dir(&self.cwd)
            .args(&self.global)
            .args(&self.args)
            .write_stdin(Vec::new())
            .timeout(self.timeout);
        if let Some(path) = std::env::var_os("PATH") {
            cmd.env("PATH", path);
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        let cmdline = std::iter::once(OsStr::new("hf-cache-sync"))
            .chain(self.global.iter().map(OsString::as_os_str))
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("run {cmdline}: {e}"));
        Output {
            cmdline,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What one run printed and how it exited.
pub struct Output {
    pub cmdline: String,
    /// `None` when killed by a signal (or by the timeout).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$ {}\nexit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline, self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    #[track_caller]
    pub fn success(self) -> Self {
        assert_eq!(self.code, Some(0), "expected success\n{self}");
        self
    }

    #[track_caller]
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code,
            Some(expected),
            "expected exit code {expected}\n{self}"
        );
        self
    }

    /// Exited on its own (no crash, no timeout) with a non-zero code.
    #[track_caller]
    pub fn failure(self) -> Self {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "expected a failure exit code\n{self}"
        );
        assert!(
            !self.stderr.contains("panicked at"),
            "the binary panicked\n{self}"
        );
        self
    }

    /// Did not panic, whatever the exit code.
    #[track_caller]
    pub fn no_panic(self) -> Self {
        assert!(
            !self.stderr.contains("panicked at"),
            "the binary panicked\n{self}"
        );
        self
    }

    /// stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document: {e}\n{self}"))
    }

    /// stderr contains at least one of `needles`, ignoring case.
    #[track_caller]
    pub fn stderr_has_any(self, needles: &[&str]) -> Self {
        let lower = self.stderr.to_lowercase();
        assert!(
            needles.iter().any(|n| lower.contains(&n.to_lowercase())),
            "expected stderr to mention one of {needles:?}\n{self}"
        );
        self
    }

    /// stderr contains `needle` verbatim.
    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "expected stderr to contain {needle:?}\n{self}"
        );
        self
    }

    /// Neither stdout nor stderr contains `secret`.
    #[track_caller]
    pub fn never_prints(self, secret: &str) -> Self {
        assert!(
            !self.stdout.contains(secret) && !self.stderr.contains(secret),
            "the output contains a secret\n{self}"
        );
        self
    }
}

/// A count in a JSON summary: a number, or the length of a list of items.
#[track_caller]
pub fn count(v: &Value, field: &str) -> u64 {
    match &v[field] {
        Value::Number(n) => n
            .as_u64()
            .unwrap_or_else(|| panic!("{field} is not a count in {v}")),
        Value::Array(items) => items.len() as u64,
        other => panic!("{field} is missing or not a count ({other}) in {v}"),
    }
}
