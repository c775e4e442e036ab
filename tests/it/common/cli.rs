//! Runs the built `hf-cache-sync` with a clean environment and checks what it did.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// One invocation of the binary. Nothing is inherited from the test's environment except `PATH`:
/// no `HF_*`, `AWS_*` or `B2_*` can leak in from the developer's shell, and the AWS instance
/// metadata service is off unless a test turns it on.
pub struct Cli {
    global: Vec<OsString>,
    args: Vec<OsString>,
    envs: Vec<(OsString, OsString)>,
    home: PathBuf,
    cwd: PathBuf,
    timeout: Duration,
    /// Standard input for [`Cli::spawn`] and [`Cli::start`]; `/dev/null` when unset.
    stdin: Option<std::os::fd::OwnedFd>,
    /// The umask the binary runs with; the test process's when unset.
    umask: Option<libc::mode_t>,
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
            stdin: None,
            umask: None,
        }
    }

    /// Runs the binary with `mask` as its umask, set in the child alone: the test threads
    /// running beside it keep theirs.
    pub fn umask(mut self, mask: u32) -> Self {
        self.umask = Some(mask as libc::mode_t);
        self
    }

    /// The binary as a command, with the umask asked for.
    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("hf-cache-sync"));
        if let Some(mask) = self.umask {
            use std::os::unix::process::CommandExt;
            // SAFETY: umask(2) is async-signal-safe and touches no memory.
            unsafe {
                cmd.pre_exec(move || {
                    libc::umask(mask);
                    Ok(())
                });
            }
        }
        cmd
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

    /// Gives a started run this standard input (a terminal, for tests of prompts).
    pub fn stdin(mut self, fd: std::os::fd::OwnedFd) -> Self {
        self.stdin = Some(fd);
        self
    }

    /// Starts the binary without waiting, for tests that interrupt it.
    #[track_caller]
    pub fn spawn(self) -> std::process::Child {
        let mut cmd = self.command();
        cmd.env_clear()
            .env("HOME", &self.home)
            // With no keys the AWS credential chain would ask the instance metadata service, at
            // an address no test may reach; tests that mean to give it a stand-in override this.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .current_dir(&self.cwd)
            .args(&self.global)
            .args(&self.args)
            .stdin(match self.stdin {
                Some(fd) => std::process::Stdio::from(fd),
                None => std::process::Stdio::null(),
            })
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

    /// Starts the binary without waiting, keeping what it prints: for tests that run commands
    /// side by side or watch one while it works.
    #[track_caller]
    pub fn start(self) -> Running {
        let cmdline = self.cmdline();
        let timeout = self.timeout;
        let mut child = self.spawn();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stdout), &mut text);
            text
        });
        let (lines_tx, lines) = std::sync::mpsc::channel();
        let stderr = std::thread::spawn(move || {
            use std::io::BufRead;
            let mut text = String::new();
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
                let _ = lines_tx.send(line);
            }
            text
        });
        Running {
            child,
            cmdline,
            deadline: std::time::Instant::now() + timeout,
            stdout: Some(stdout),
            stderr: Some(stderr),
            lines,
            seen: Vec::new(),
            exit: None,
            peak_rss: 0,
        }
    }

    fn cmdline(&self) -> String {
        std::iter::once(OsStr::new("hf-cache-sync"))
            .chain(self.global.iter().map(OsString::as_os_str))
            .chain(self.args.iter().map(OsString::as_os_str))
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[track_caller]
    pub fn run(self) -> Output {
        let mut cmd = assert_cmd::Command::from_std(self.command());
        cmd.env_clear()
            .env("HOME", &self.home)
            // With no keys the AWS credential chain would ask the instance metadata service, at
            // an address no test may reach; tests that mean to give it a stand-in override this.
            .env("AWS_EC2_METADATA_DISABLED", "true")
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
        let cmdline = self.cmdline();
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

/// A run started by [`Cli::start`]: its stderr can be watched line by line while it works, and
/// it is killed if it outlives its timeout.
pub struct Running {
    child: std::process::Child,
    cmdline: String,
    deadline: std::time::Instant,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    lines: std::sync::mpsc::Receiver<String>,
    /// stderr lines already taken from `lines`.
    seen: Vec<String>,
    /// Exit status and resource usage, once reaped.
    exit: Option<(libc::c_int, libc::rusage)>,
    /// The highest `VmHWM` seen in `/proc/<pid>/status`, in bytes.
    peak_rss: u64,
}

impl Drop for Running {
    /// A test that fails half-way leaves no process behind.
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Peak memory and CPU time of a finished child, as the kernel counted them.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// Peak resident set size in bytes: the process's own high-water mark, sampled every 10 ms
    /// while it runs. `wait4`'s `ru_maxrss` would not do: Linux folds the memory the process
    /// had before `exec` into it, and a child spawned from this test process (vfork) starts with
    /// the test process's memory, gigabytes of fixtures when tests run in parallel.
    pub max_rss: u64,
    pub user: Duration,
    pub system: Duration,
}

impl Running {
    /// The process id, for sending it a signal.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Still running? Reaps the process once it has exited (keeping its status and usage).
    pub fn is_running(&mut self) -> bool {
        self.poll();
        self.exit.is_none()
    }

    fn poll(&mut self) {
        if self.exit.is_some() {
            return;
        }
        let pid = self.child.id() as libc::pid_t;
        if let Some(hwm) = vm_hwm(pid) {
            self.peak_rss = self.peak_rss.max(hwm);
        }
        let mut status: libc::c_int = 0;
        // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our own child, not yet reaped; the pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            self.exit = Some((status, usage));
        } else {
            assert!(
                r == 0,
                "wait4 {}: {}",
                self.cmdline,
                std::io::Error::last_os_error()
            );
        }
    }

    /// Waits until a stderr line contains `needle` (ignoring case) and returns it; `None` if the
    /// process ends or `within` passes first.
    pub fn wait_for_stderr(&mut self, needle: &str, within: Duration) -> Option<String> {
        let needle = needle.to_lowercase();
        if let Some(line) = self
            .seen
            .iter()
            .find(|l| l.to_lowercase().contains(&needle))
        {
            return Some(line.clone());
        }
        let until = std::time::Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left.min(Duration::from_millis(50))) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.to_lowercase().contains(&needle) {
                        return Some(line);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if left.is_zero() {
                return None;
            }
        }
    }

    /// Waits for the exit (killing the process at its deadline) and returns what it printed.
    #[track_caller]
    pub fn wait(self) -> Output {
        self.wait_with_usage().0
    }

    /// Like [`Running::wait`], plus the child's peak memory and CPU time (`wait4`).
    #[track_caller]
    pub fn wait_with_usage(mut self) -> (Output, Usage) {
        let mut timed_out = false;
        loop {
            self.poll();
            if self.exit.is_some() {
                break;
            }
            if !timed_out && std::time::Instant::now() > self.deadline {
                let _ = self.child.kill();
                timed_out = true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let (status, usage) = self.exit.expect("exited");
        let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let out = Output {
            cmdline: self.cmdline.clone(),
            code,
            stdout: self.stdout.take().unwrap().join().unwrap_or_default(),
            stderr: self.stderr.take().unwrap().join().unwrap_or_default(),
        };
        assert!(!timed_out, "timed out and killed\n{out}");
        let time = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
        };
        let usage = Usage {
            max_rss: self.peak_rss,
            user: time(usage.ru_utime),
            system: time(usage.ru_stime),
        };
        (out, usage)
    }
}

/// The peak resident set size (`VmHWM`) of a live process, in bytes.
fn vm_hwm(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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

    /// Printed nothing at all, on either side.
    #[track_caller]
    pub fn silent(self) -> Self {
        assert_eq!(
            (self.stdout.as_str(), self.stderr.as_str()),
            ("", ""),
            "expected no output\n{self}"
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
