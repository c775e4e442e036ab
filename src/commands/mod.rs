//! One file per subcommand, plus what they share: the run context, repo filters and the outcome.

pub mod dedupe;
pub mod deletion;
pub mod diff;
pub mod doctor;
pub mod gc;
pub mod init;
pub mod list;
pub mod prune;
pub mod pull;
pub mod pull_all;
pub mod push;
pub mod rm;
pub mod status;
pub mod verify;
pub mod watch;

use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cache::scan::{self, CacheScan};
use crate::cache::RepoType;
use crate::config::{ConfigError, FallbackSpec, Settings};
use crate::hub::Hub;
use crate::manifest::Layout;
use crate::remote::{Remote, RemoteSpec, TransferCtx};
use crate::report::{Printer, Progress};
use crate::transfer::source::{Source, Sources};

pub use crate::failure::Failure;
pub use crate::text::short;

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

/// Transfer options shared by push and pull.
#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    pub dry_run: bool,
    pub workers: Option<usize>,
    /// `s3://bucket[/prefix]` or a directory, whose path need not be UTF-8.
    pub remote: Option<std::ffi::OsString>,
}

/// Where `pull` and `pull-all` fall back to, as the command line says (empty: the config's).
#[derive(Debug, Clone, Default)]
pub struct FallbackOptions {
    pub fallback: Vec<FallbackSpec>,
    pub write_through: bool,
}

impl App {
    /// The pull's source list: the remote (`--remote` or the configured one), then the
    /// fallbacks `--fallback` names, else those of `pull.fallback`, in order.
    pub fn open_sources(
        &self,
        remote: Option<&std::ffi::OsStr>,
        opts: &FallbackOptions,
    ) -> Result<Sources, ConfigError> {
        let (primary, layout) = self.open_remote(remote)?;
        let fallback = if opts.fallback.is_empty() {
            &self.settings.pull.fallback
        } else {
            FallbackSpec::check_list(&opts.fallback, "--fallback").map_err(|message| {
                ConfigError::Usage {
                    message,
                    hint: "e.g. --fallback s3://team-bucket --fallback hf-hub".into(),
                }
            })?;
            &opts.fallback
        };
        let mut sources = vec![Source::Remote {
            remote: primary,
            layout,
        }];
        for f in fallback {
            sources.push(match f {
                FallbackSpec::Hub => Source::Hub(Hub::open(&self.settings)?),
                FallbackSpec::Remote(url) => {
                    let spec = RemoteSpec::resolve(&self.settings, Some(url))?;
                    Source::Remote {
                        remote: Remote::open(&spec, &self.settings)?,
                        layout: Layout::new(spec.prefix()),
                    }
                }
            });
        }
        let sources = Sources::new(sources);
        if self.printer.verbose && sources.len() > 1 {
            self.printer.note(&format!(
                "sources, in order: {}",
                sources.describe().join(", then ")
            ));
        }
        Ok(sources)
    }

    /// What write-through leaves out, as push does.
    pub fn write_policy(&self) -> crate::transfer::write_through::Policy {
        crate::transfer::write_through::Policy {
            allow_gated: self.settings.allow_gated,
            sync_xet: self.settings.sync_xet,
        }
    }

    /// Whether a pull writes what a fallback served through to the sources before it.
    pub fn write_through(&self, opts: &FallbackOptions) -> bool {
        opts.write_through || self.settings.pull.write_through
    }

    pub fn open_remote(
        &self,
        flag: Option<&std::ffi::OsStr>,
    ) -> Result<(Remote, Layout), ConfigError> {
        let spec = RemoteSpec::resolve(&self.settings, flag)?;
        let remote = Remote::open(&spec, &self.settings)?;
        if self.printer.verbose {
            let s = &self.settings;
            self.printer.note(&format!(
                "config: {}; cache: {}; remote: {} (prefix {:?}); credentials: {}",
                s.config_path
                    .as_deref()
                    .map_or("none".into(), |p| p.display().to_string()),
                s.cache_dir.display(),
                remote.describe(),
                spec.prefix(),
                s.credentials.source.as_str()
            ));
        }
        Ok((remote, Layout::new(spec.prefix())))
    }

    pub fn transfer_ctx(&self, opts: &TransferOptions, label: &str) -> TransferCtx {
        let workers = opts.workers.unwrap_or(self.settings.transfer.workers);
        TransferCtx::new(&self.settings, workers, self.progress(label))
    }

    pub fn progress(&self, label: &str) -> Arc<dyn Progress> {
        self.printer.start_progress(label)
    }
}

/// Scans the cache, refusing a cache dir that does not exist (a typo must not look like an
/// empty cache).
pub async fn scan_existing(cache_dir: &std::path::Path) -> anyhow::Result<CacheScan> {
    let dir = cache_dir.to_path_buf();
    let scan = tokio::task::spawn_blocking(move || scan::scan(&dir)).await?;
    if !scan.exists {
        return Err(missing_cache_dir(&scan).into());
    }
    Ok(scan)
}

pub fn missing_cache_dir(scan: &CacheScan) -> ConfigError {
    ConfigError::Invalid(format!(
        "cache dir {} does not exist (set --cache-dir, cache.hf_cache_dir or HF_HUB_CACHE)",
        scan.root.display()
    ))
}

/// Every repo named on the command line must be in the scan.
pub fn require_repos(scan: &CacheScan, wanted: &[RepoRef]) -> Result<(), ConfigError> {
    for w in wanted {
        if !scan
            .repos
            .iter()
            .any(|r| w.matches(r.repo_type, &r.repo_id))
        {
            return Err(ConfigError::Invalid(format!(
                "repo {} is not in the cache at {}",
                w.repo_id,
                scan.root.display()
            )));
        }
    }
    Ok(())
}

/// Include/exclude globs over repo ids (`org/name`).
#[derive(Debug, Default)]
pub struct RepoFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl RepoFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<RepoFilter, ConfigError> {
        Ok(RepoFilter {
            include: build_globs(include, "--include")?,
            exclude: build_globs(exclude, "--exclude")?,
        })
    }

    pub fn matches(&self, repo_id: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(repo_id))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(repo_id))
    }
}

fn build_globs(patterns: &[String], flag: &str) -> Result<Option<GlobSet>, ConfigError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let glob = Glob::new(p)
            .map_err(|e| ConfigError::Invalid(format!("{flag} {p:?}: invalid glob: {e}")))?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|e| ConfigError::Invalid(format!("{flag}: {e}")))
}

/// A repo named on the command line: `org/name`, or `model/org/name`, `dataset/org/name`, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub repo_type: Option<RepoType>,
    pub repo_id: String,
}

impl RepoRef {
    pub fn parse(text: &str) -> RepoRef {
        let parts: Vec<&str> = text.splitn(2, '/').collect();
        if parts.len() == 2 && parts[1].contains('/') {
            if let Some(t) = RepoType::parse(parts[0]) {
                return RepoRef {
                    repo_type: Some(t),
                    repo_id: parts[1].to_string(),
                };
            }
        }
        RepoRef {
            repo_type: None,
            repo_id: text.to_string(),
        }
    }

    pub fn matches(&self, repo_type: RepoType, repo_id: &str) -> bool {
        self.repo_id == repo_id && self.repo_type.is_none_or(|t| t == repo_type)
    }
}

/// Asks before deleting. `--yes` skips the question; without it, a non-terminal stdin is refused
/// rather than read, so scripts never hang and never delete by accident.
pub fn confirm(question: &str, yes: bool) -> Result<bool, ConfigError> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        return Err(ConfigError::Invalid(
            "refusing to delete without --yes when stdin is not a terminal (use --dry-run to preview)"
                .into(),
        ));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| ConfigError::Invalid(format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// `30d`, `12h`, `1w 2d`: an age for `--older-than` and list filters.
pub fn parse_age(text: &str) -> Result<std::time::Duration, ConfigError> {
    humantime::parse_duration(text.trim()).map_err(|e| {
        ConfigError::Invalid(format!(
            "invalid duration {text:?}: {e} (expected e.g. 30d, 12h, 90m)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = RepoFilter::new(&["org/*".into()], &["org/skip".into()]).unwrap();
        assert!(f.matches("org/a"));
        assert!(!f.matches("org/skip"));
        assert!(!f.matches("other/a"));
        assert!(RepoFilter::new(&[], &[]).unwrap().matches("x"));
        assert!(RepoFilter::new(&["[".into()], &[]).is_err());
    }

    #[test]
    fn ages() {
        assert_eq!(parse_age("30d").unwrap().as_secs(), 30 * 86400);
        assert_eq!(parse_age("12h").unwrap().as_secs(), 12 * 3600);
        assert!(parse_age("soon").is_err());
    }

    #[test]
    fn repo_refs() {
        assert_eq!(
            RepoRef::parse("dataset/org/d"),
            RepoRef {
                repo_type: Some(RepoType::Dataset),
                repo_id: "org/d".into()
            }
        );
        assert_eq!(RepoRef::parse("org/m").repo_type, None);
        assert!(RepoRef::parse("org/m").matches(RepoType::Space, "org/m"));
        assert!(!RepoRef::parse("model/org/m").matches(RepoType::Dataset, "org/m"));
    }
}
