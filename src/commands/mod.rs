//! One file per subcommand, plus what they share: the run context, repo filters and the outcome.

pub mod dedupe;
pub mod deletion;
pub mod diff;
pub mod doctor;
pub mod gc;
pub mod init;
pub mod list;
pub mod lock;
pub mod prune;
pub mod pull;
pub mod pull_all;
pub mod pull_lock;
pub mod push;
pub mod rm;
pub mod serve;
pub mod status;
pub mod verify;
pub mod watch;

use crate::config::{ConfigError, Settings};
use crate::report::Printer;
use crate::text;
use crate::transfer::PlannedRevision;

pub use crate::failure::Failure;
pub use crate::ops::{
    missing_cache_dir, repos, scan_existing, Env, FallbackOptions, RepoFilter, TransferOptions,
};
pub use crate::text::short;
pub use repos::{NotFound, RepoRef};

/// What every command gets: resolved settings, the printer, and the stop request Ctrl-C sets.
pub struct App {
    pub settings: Settings,
    pub printer: Printer,
    pub cancel: crate::cancel::Cancel,
}

/// How a command ended when it did not fail outright.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Some items failed; they were reported. Exit code 1.
    Failed,
}

impl Outcome {
    pub fn from_failures(n: usize) -> Outcome {
        if n == 0 {
            Outcome::Success
        } else {
            Outcome::Failed
        }
    }
}

/// `--remote` as given: not at all, bare (the configured remote), or naming a remote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RemoteChoice {
    #[default]
    NotAsked,
    Configured,
    /// `s3://bucket[/prefix]` or a directory, whose path need not be UTF-8.
    Given(std::ffi::OsString),
}

impl RemoteChoice {
    /// `--remote` as clap read it. A value that reads as one of `positionals` (a repo id, an
    /// `rm` target) and is not an existing directory is one: `verify --remote org/m` verifies
    /// `org/m` on the configured remote, as it always did, and `--remote /mnt/share` or
    /// `--remote=DIR` names a remote.
    pub fn from_flag(
        flag: Option<Option<std::ffi::OsString>>,
        positionals: Option<&mut Vec<String>>,
    ) -> RemoteChoice {
        match (flag, positionals) {
            (None, _) => RemoteChoice::NotAsked,
            (Some(None), _) => RemoteChoice::Configured,
            (Some(Some(value)), Some(positionals)) if !names_a_remote(&value) => {
                let text = value.to_string_lossy().into_owned();
                positionals.insert(0, text);
                RemoteChoice::Configured
            }
            (Some(Some(value)), _) => RemoteChoice::Given(value),
        }
    }

    pub fn asked(&self) -> bool {
        *self != RemoteChoice::NotAsked
    }

    /// The remote named on the command line; `None` for the configured one.
    pub fn url(&self) -> Option<&std::ffi::OsStr> {
        match self {
            RemoteChoice::Given(url) => Some(url),
            _ => None,
        }
    }
}

/// Whether a value after `--remote` names a remote rather than a repo id or `rm` target: a URL,
/// a path that no repo id can be (`/…`, `./…`, `~/…`), or an existing directory.
fn names_a_remote(value: &std::ffi::OsStr) -> bool {
    let Some(text) = value.to_str() else {
        return true;
    };
    let repo = text.rsplit_once('@').map_or(text, |(repo, _)| repo);
    RepoRef::parse(repo).is_err() || std::path::Path::new(value).is_dir()
}

impl App {
    /// What an operation runs with.
    pub fn env(&self) -> Env<'_> {
        Env {
            settings: &self.settings,
            reporter: &self.printer,
        }
    }
}

/// A dry run's list, for people: a line per revision (unless `per_revision` is false, when
/// the summary already says it), and with `verbose` one per blob under it. `verb` is what would
/// happen to the blobs (`would upload`), `present` says where the others already are.
pub fn planned_lines(
    planned: &[PlannedRevision],
    (verb, present): (&str, &str),
    per_revision: bool,
    verbose: bool,
) -> Vec<String> {
    let mut lines = Vec::new();
    for p in planned {
        if per_revision {
            let refs = if p.refs.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.refs.join(", "))
            };
            let mut line = format!(
                "{verb} {}@{}{refs}: {} ({})",
                p.repo,
                short(&p.revision),
                text::plural(p.blobs.len(), "blob", "blobs"),
                crate::report::human_bytes(p.bytes)
            );
            if p.present > 0 {
                line.push_str(&format!(", {} {present}", p.present));
            }
            lines.push(line);
        }
        if verbose {
            for b in &p.blobs {
                lines.push(format!(
                    "  {}  {}  {}",
                    b.etag,
                    crate::report::human_bytes(b.size),
                    b.paths.join(", ")
                ));
            }
        }
    }
    lines
}

/// Asks before deleting. `--yes` skips the question; without it, a non-terminal stdin is refused
/// rather than read, so scripts never hang and never delete by accident.
pub fn confirm(question: &str, yes: bool) -> Result<bool, ConfigError> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(ConfigError::Usage {
            message: "refusing to delete without --yes when stdin is not a terminal".into(),
            hint: "pass --yes to delete, or --dry-run to see what would go".into(),
        });
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| ConfigError::Usage {
            message: format!("cannot read the answer: {e}"),
            hint: "pass --yes to delete without being asked".into(),
        })?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// `30d`, `12h`, `1w 2d`: an age for `--older-than` and list filters.
pub fn parse_age(text: &str) -> Result<std::time::Duration, ConfigError> {
    crate::config::parse_duration(text).map_err(|message| ConfigError::Usage {
        message,
        hint: crate::config::DURATION_HINT.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_after_remote_is_a_remote_unless_it_reads_as_a_repo() {
        use std::ffi::OsString;
        let choice = |value: &str| {
            let mut repos = vec!["org/b".to_string()];
            let c = RemoteChoice::from_flag(Some(Some(OsString::from(value))), Some(&mut repos));
            (c, repos)
        };
        assert_eq!(
            choice("org/a"),
            (
                RemoteChoice::Configured,
                vec!["org/a".into(), "org/b".into()]
            )
        );
        assert_eq!(choice("org/a@main").0, RemoteChoice::Configured);
        for remote in [
            "/mnt/share",
            "./share",
            "s3://bucket/p",
            "s3:/typo",
            "~/x",
            ".",
        ] {
            assert_eq!(
                choice(remote),
                (RemoteChoice::Given(remote.into()), vec!["org/b".into()]),
                "{remote}"
            );
        }
        let existing = tempfile::tempdir().unwrap();
        let name = existing.path().to_str().unwrap();
        assert_eq!(choice(name).0, RemoteChoice::Given(name.into()));
        // Without repo ids to take, a value is always the remote.
        assert_eq!(
            RemoteChoice::from_flag(Some(Some("share".into())), None),
            RemoteChoice::Given("share".into())
        );
        assert_eq!(
            RemoteChoice::from_flag(Some(None), None),
            RemoteChoice::Configured
        );
        assert!(!RemoteChoice::from_flag(None, None).asked());
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap().as_secs(), 30 * 86400);
        assert_eq!(parse_age("12h").unwrap().as_secs(), 12 * 3600);
        let err = parse_age("3x").unwrap_err();
        assert_eq!(err.to_string(), "invalid duration \"3x\"");
        // One syntax is offered: the parser's own list (`sec`, `min`, …) is not.
        assert!(!err.hint().unwrap().contains("sec"), "{:?}", err.hint());
    }
}
