//! Conventions of the terminal: shell completions and a man page from the command definitions,
//! examples at the end of every `--help`, colour and quiet, the Hub's offline and no-symlink
//! switches.

use crate::common::{doctor_check, files_under, Sandbox};

const COMMANDS: [&str; 13] = [
    "push",
    "pull",
    "pull-all",
    "status",
    "list",
    "diff",
    "prune",
    "rm",
    "verify",
    "doctor",
    "init",
    "completions",
    "man",
];

#[test]
fn completions_for_every_shell_and_bash_completes_commands_and_flags() {
    let t = Sandbox::local("term_completions");
    // Neither needs a usable config.
    t.write_config("storage: [broken\n");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = t.hfcs().args(["completions", shell]).run().success();
        for word in ["pull-all", "remote", "dry-run"] {
            assert!(out.stdout.contains(word), "{shell}: {word}\n{out}");
        }
    }
    t.bare().args(["completions", "tcsh"]).run().code(2);

    let script = t.work().join("hf-cache-sync.bash");
    let out = t.bare().args(["completions", "bash"]).run().success();
    std::fs::write(&script, &out.stdout).unwrap();
    let complete = |words: &str| {
        let cmd = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); \
             _hf__cache__sync hf-cache-sync \"${{COMP_WORDS[COMP_CWORD]}}\" \
             \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display()
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &cmd])
            .output()
            .expect("run bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let words = complete("hf-cache-sync pu");
    assert!(
        words.lines().collect::<Vec<_>>() == ["push", "pull", "pull-all"],
        "{words}"
    );
    let words = complete("hf-cache-sync list --no");
    assert!(words.lines().any(|w| w == "--no-truncate"), "{words}");
}

#[test]
fn a_man_page_names_every_command_and_one_is_written_per_command() {
    let t = Sandbox::local("term_man");
    t.write_config("storage: [broken\n");
    let out = t.hfcs().arg("man").run().success();
    assert!(out.stdout.contains(".TH hf-cache-sync 1"), "{out}");
    for cmd in COMMANDS {
        assert!(
            out.stdout.contains(&cmd.replace('-', "\\-")),
            "{cmd}\n{out}"
        );
    }
    assert!(out.stdout.contains("Examples:"), "{out}");

    let dir = t.cache("man1");
    t.bare().arg("man").arg("--out").arg(&dir).run().success();
    let pages = files_under(&dir);
    assert!(pages.contains(&"hf-cache-sync.1".to_string()), "{pages:?}");
    for cmd in COMMANDS {
        assert!(
            pages.contains(&format!("hf-cache-sync-{cmd}.1")),
            "{cmd}: {pages:?}"
        );
    }
    t.bare()
        .args(["man", "--out"])
        .arg(t.path("missing/dir"))
        .run()
        .code(2)
        .stderr_has("hint: ");
}

#[test]
fn every_help_ends_with_examples() {
    let t = Sandbox::local("term_help");
    for args in std::iter::once(vec!["--help"]).chain(COMMANDS.iter().map(|c| vec![*c, "--help"])) {
        let out = t.bare().args(&args).run().success();
        let tail = out
            .stdout
            .trim_end()
            .rsplit("Examples:")
            .next()
            .unwrap_or_default();
        assert!(out.stdout.contains("\nExamples:\n"), "{args:?}\n{out}");
        let lines: Vec<&str> = tail.lines().filter(|l| !l.is_empty()).collect();
        assert!(!lines.is_empty(), "{args:?}\n{out}");
        for line in lines {
            assert!(
                line.starts_with("  hf-cache-sync "),
                "{args:?}: {line}\n{out}"
            );
        }
    }
}

/// Runs the binary with stdout and stderr on a terminal (through `script`), returning what the
/// terminal showed.
fn on_a_terminal(t: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> String {
    let bin = assert_cmd::cargo::cargo_bin("hf-cache-sync");
    let mut line = bin.display().to_string();
    for a in args {
        line.push(' ');
        line.push_str(a);
    }
    let mut cmd = std::process::Command::new("script");
    cmd.env_clear()
        .env("HOME", t.home())
        .env("TERM", "xterm")
        .current_dir(t.work())
        .args(["-qec", &line, "/dev/null"]);
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run script");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn colour_follows_the_terminal_color_and_no_color() {
    let t = Sandbox::local("term_colour");
    let cache = t.cache("hub");
    let cache = cache.to_str().unwrap();
    // No remote configured: an error and its hint.
    let failing = ["--cache-dir", cache, "status", "--remote"];
    let red = "\x1b[1;31merror:\x1b[0m";
    let cyan = "\x1b[1;36mhint:\x1b[0m";

    let shown = on_a_terminal(&t, &failing, &[]);
    assert!(shown.contains(red) && shown.contains(cyan), "{shown:?}");
    let shown = on_a_terminal(&t, &failing, &[("NO_COLOR", "1")]);
    assert!(shown.contains("error: no remote configured"), "{shown:?}");
    assert!(!shown.contains("\x1b[1;3"), "{shown:?}");
    let mut never = failing.to_vec();
    never.push("--color=never");
    assert!(!on_a_terminal(&t, &never, &[]).contains("\x1b[1;3"));

    // Piped: no colour unless asked for; --color always wins over NO_COLOR.
    let out = t.bare().args(failing).run().code(2);
    assert!(!out.stderr.contains('\x1b'), "{out}");
    let out = t
        .bare()
        .args(failing)
        .args(["--color", "always"])
        .env("NO_COLOR", "1")
        .run()
        .code(2);
    assert!(out.stderr.contains(red), "{out}");
}

#[test]
fn quiet_prints_errors_only() {
    let (t, remote) = Sandbox::with_dir_remote("term_quiet");
    let home = t.cache("hf-home");
    let m = crate::common::spec::RepoSpec::two_revisions("org/m");
    m.write(&home.join("hub"));
    // Pushing from a Hugging Face home warns, unless quiet; the summary is not printed either.
    t.hfcs()
        .cache_dir(&home)
        .args(["push", "-q"])
        .run()
        .success()
        .silent();
    assert!(!files_under(&remote).is_empty(), "it pushed");
    t.hfcs()
        .cache_dir(&home)
        .args(["-q", "status"])
        .run()
        .success()
        .silent();
    // --json still prints its document; list -q its identifiers.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&home)
        .args(["-q", "status"])
        .run()
        .success();
    assert_eq!(out.json()["repos"], 1, "{out}");
    let out = t
        .hfcs()
        .cache_dir(&home)
        .args(["list", "-q"])
        .run()
        .success();
    assert_eq!(out.stdout, "model/org/m\n", "{out}");
    // Errors and their hints are still said.
    let out = t
        .hfcs()
        .cache_dir(&home)
        .args(["push", "--quiet", "--include", "nomatch/*"])
        .run()
        .code(1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("error: ") && lines[1].starts_with("hint: "),
        "{out}"
    );
}

#[test]
fn offline_the_remote_is_refused_at_once_and_local_commands_work() {
    // A bucket at an address nothing answers: a command that tried would fail after retries.
    let t = Sandbox::with_unreachable_bucket("term_offline", "team-cache");
    let cache = t.cache("hub");
    let m = crate::common::spec::RepoSpec::two_revisions("org/m");
    m.write(&cache);
    let remote_commands: [&[&str]; 8] = [
        &["push"],
        &["pull", "org/m"],
        &["pull-all"],
        &["list", "--remote"],
        &["status", "--remote"],
        &["verify", "--remote"],
        &["diff"],
        &["rm", "--remote", "org/m", "--yes"],
    ];
    for args in remote_commands {
        let started = std::time::Instant::now();
        let out = t
            .hfcs()
            .cache_dir(&cache)
            .args(args)
            .env("HF_HUB_OFFLINE", "1")
            .run()
            .code(2)
            .stderr_has("error: HF_HUB_OFFLINE=1 is set")
            .stderr_has("hint: ");
        assert!(!out.stderr.contains("cannot reach"), "{out}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "at once\n{out}"
        );
    }
    t.hfcs()
        .cache_dir(&cache)
        .arg("push")
        .env("TRANSFORMERS_OFFLINE", "yes")
        .run()
        .code(2)
        .stderr_has("TRANSFORMERS_OFFLINE=yes is set");

    // The local cache needs no network; a directory remote is read offline too.
    for args in [
        &["list"][..],
        &["status"],
        &["verify"],
        &["prune", "--dry-run"],
    ] {
        t.hfcs()
            .cache_dir(&cache)
            .args(args)
            .env("HF_HUB_OFFLINE", "1")
            .run()
            .success();
    }
    let share = t.path("share");
    t.hfcs()
        .cache_dir(&cache)
        .args(["push", "--remote"])
        .arg(&share)
        .env("HF_HUB_OFFLINE", "1")
        .run()
        .success();
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .env("HF_HUB_OFFLINE", "1")
        .run()
        .success();
    let report = out.json();
    let check = |name: &str| doctor_check(&report, name);
    assert_eq!(check("Offline")["status"], "warning", "{out}");
    assert_eq!(check("Bucket reachable")["status"], "skipped", "{out}");
    assert!(
        check("Bucket reachable")["detail"]
            .as_str()
            .unwrap()
            .contains("HF_HUB_OFFLINE=1"),
        "{out}"
    );
}

/// Every file of revision `rev` of `m` in `cache` is a plain file with its bytes.
#[track_caller]
fn assert_plain_files(m: &crate::common::spec::RepoSpec, cache: &std::path::Path, rev: &str) {
    let view = m.view(cache);
    let commit = m.commit(rev);
    for f in &m.revision(rev).files {
        let path = view.snapshot(commit, &f.path);
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.is_file(), "{} is not a plain file", path.display());
        view.assert_file(commit, &f.path, &f.bytes);
    }
}

#[test]
fn without_symlinks_pull_writes_the_layout_huggingface_hub_writes() {
    use crate::common::{check_cache, count};
    let (t, _remote) = Sandbox::with_dir_remote("term_no_symlinks");
    let m = crate::common::spec::RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();

    let dst = t.cache("dst");
    let pull = |rev: &str, off: bool| {
        let mut cli = t
            .hfcs()
            .json()
            .cache_dir(&dst)
            .args(["pull", "org/m", "-r", rev]);
        if off {
            cli = cli.env("HF_HUB_DISABLE_SYMLINKS", "1");
        }
        cli.run().success().json()
    };
    let s = pull("main", true);
    assert_eq!(count(&s, "downloaded"), 3, "{s}");
    assert_plain_files(&m, &dst, "main");
    // As huggingface_hub with symlinks off: the blobs moved into the snapshot.
    assert!(
        m.view(&dst).blob_names().is_empty(),
        "{:?}",
        m.view(&dst).blob_names()
    );
    check_cache(&dst, &m.downloads("main"));
    t.hfcs().cache_dir(&dst).arg("verify").run().success();
    // Pulled again: the snapshot is complete, nothing is fetched.
    let s = pull("main", true);
    assert_eq!(count(&s, "downloaded"), 0, "{s}");
    assert_eq!(count(&s, "skipped_existing"), 3, "{s}");

    // Beside a snapshot of links, a blob another revision links to is copied and stays.
    let mixed = t.cache("mixed");
    t.hfcs()
        .cache_dir(&mixed)
        .args(["pull", "org/m", "-r", "v1.0"])
        .run()
        .success();
    t.hfcs()
        .cache_dir(&mixed)
        .args(["pull", "org/m"])
        .env("HF_HUB_DISABLE_SYMLINKS", "1")
        .run()
        .success();
    assert_plain_files(&m, &mixed, "main");
    m.assert_linked(&mixed, "v1.0");
    check_cache(
        &mixed,
        &crate::common::spec::downloads(std::slice::from_ref(&m)),
    );
}
