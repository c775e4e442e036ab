//! Conventions of the terminal: shell completions and a man page from the command definitions,
//! examples at the end of every `--help`, colour and quiet, the Hub's offline and no-symlink
//! switches.

use crate::common::{files_under, Sandbox};

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
