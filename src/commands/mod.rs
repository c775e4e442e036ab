//! One file per subcommand, plus what they share: the run context, repo filters and the outcome.

pub mod dedupe;
pub mod deletion;
pub mod diff;
pub mod doctor;
pub mod gc;
pub mod init;
pub mod list;
pub mod lock;
pub mod lockfile;
pub mod prune;
pub mod pull;
pub mod pull_all;
pub mod pull_lock;
pub mod push;
pub use crate::ops::repos;
pub mod rm;
pub mod status;
pub mod verify;
pub mod watch;

use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::cache::scan::{self, CacheScan};
use crate::config::{ConfigError, FallbackSpec, Settings};
use crate::hub::Hub;
use crate::manifest::Layout;
use crate::remote::{Remote, RemoteSpec, TransferCtx};
use crate::report::{Printer, Progress};
use crate::text;
use crate::transfer::pull::Plan;
use crate::transfer::source::{Source, Sources};
use crate::transfer::PlannedRevision;

pub use crate::failure::Failure;
pub use crate::text::short;
pub use repos::{require_repos, NotFound, RepoRef};

/// A revision as every JSON document names it: the repo (`type/org/name`, and split), the
/// commit, and the ref it was reached by.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RevisionName {
    pub repo: String,
    pub repo_type: crate::cache::RepoType,
    pub repo_id: String,
    pub revision: String,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
}

impl RevisionName {
    pub fn new(
        repo_type: crate::cache::RepoType,
        repo_id: &str,
        commit: &str,
        ref_name: Option<&str>,
    ) -> RevisionName {
        RevisionName {
            repo: format!("{repo_type}/{repo_id}"),
            repo_type,
            repo_id: repo_id.to_string(),
            revision: commit.to_string(),
            ref_name: ref_name.map(str::to_string),
        }
    }

    /// `type/org/name@<12 hex> (ref)`, as summaries name a revision.
    pub fn describe(&self) -> String {
        let via = self
            .ref_name
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        format!("{}@{}{via}", self.repo, short(&self.revision))
    }
}

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

    /// The last steps of a pull of many revisions, once their blobs are fetched: each plan's
    /// snapshot built (unless it failed, or in a dry run), then what a fallback served written
    /// through when asked, each write-through said on stderr. Returns each plan's errors.
    pub async fn land(
        &self,
        sources: &Sources,
        plans: &[Plan],
        failures: &[(usize, Failure)],
        transfer: &TransferOptions,
        fallback: &FallbackOptions,
    ) -> Vec<Vec<String>> {
        let cache_dir = &self.settings.cache_dir;
        let mut all = Vec::with_capacity(plans.len());
        for (i, plan) in plans.iter().enumerate() {
            let mut errors: Vec<String> = failures
                .iter()
                .filter(|(p, _)| *p == i)
                .map(|(_, f)| f.to_string())
                .collect();
            if errors.is_empty() && !transfer.dry_run {
                if let Err(e) = crate::transfer::pull::finish(cache_dir, plan) {
                    errors.push(e.to_string());
                }
            }
            if errors.is_empty() && !transfer.dry_run && self.write_through(fallback) {
                let ctx = || self.transfer_ctx(transfer, "write-through");
                let policy = self.write_policy();
                for w in crate::transfer::write_through::write_through(
                    sources, plan, cache_dir, &policy, ctx,
                )
                .await
                {
                    if w.is_written() {
                        self.printer.note(&w.describe());
                    } else {
                        self.printer.warn(&w.describe());
                    }
                }
            }
            all.push(errors);
        }
        all
    }

    pub fn open_remote(
        &self,
        flag: Option<&std::ffi::OsStr>,
    ) -> Result<(Remote, Layout), ConfigError> {
        let spec = RemoteSpec::resolve(&self.settings, flag)?;
        refuse_offline(&spec)?;
        let remote = Remote::open(&spec, &self.settings)?;
        if self.printer.verbose {
            let s = &self.settings;
            self.printer.note(&format!(
                "config: {}; cache: {}; remote: {}; credentials: {}",
                s.config_path
                    .as_deref()
                    .map_or("none".into(), |p| p.display().to_string()),
                s.cache_dir.display(),
                remote.describe(),
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

/// With huggingface_hub's offline switch set, a bucket is not contacted: the command stops at
/// once, naming the switch. A directory remote is a filesystem, read offline too.
pub fn refuse_offline(spec: &RemoteSpec) -> Result<(), ConfigError> {
    match (spec, crate::env::offline()) {
        (RemoteSpec::S3 { bucket, .. }, Some(switch)) => Err(ConfigError::Usage {
            message: format!(
                "{switch} is set: the remote (bucket {bucket}) is not contacted offline"
            ),
            hint: "unset it (or set it to 0) to reach the bucket; list, status, verify, prune and \
                   rm work offline on the local cache, and a directory remote (--remote=/path) \
                   is read offline too"
                .into(),
        }),
        _ => Ok(()),
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

/// What pulling `plans` would download, revision by revision: the blobs the cache lacks.
pub fn planned_downloads(plans: &[Plan]) -> Vec<PlannedRevision> {
    plans
        .iter()
        .map(|plan| {
            PlannedRevision::new(
                &plan.manifest,
                plan.repo_type,
                plan.ref_name.iter().cloned().collect(),
                |_, _| true,
                |etag, size| crate::transfer::pull::in_cache(plan, etag, size),
            )
        })
        .collect()
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
    ConfigError::Usage {
        message: format!("cache dir {} does not exist", scan.root.display()),
        hint: "set --cache-dir, cache.hf_cache_dir or HF_HUB_CACHE to the hub cache \
               (huggingface_hub's default is ~/.cache/huggingface/hub)"
            .into(),
    }
}

/// Include/exclude globs over repo ids (`org/name`).
#[derive(Debug, Default)]
pub struct RepoFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
    /// The `--include` globs as given, in the set's order.
    include_patterns: Vec<String>,
}

impl RepoFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<RepoFilter, ConfigError> {
        Ok(RepoFilter {
            include: build_globs(include, "--include")?,
            exclude: build_globs(exclude, "--exclude")?,
            include_patterns: include.to_vec(),
        })
    }

    pub fn matches(&self, repo_id: &str) -> bool {
        self.include.as_ref().is_none_or(|g| g.is_match(repo_id))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(repo_id))
    }

    /// Says what the filter did when it leaves something out for nothing: each `--include` that
    /// matches none of `ids` (the repos in `place`) is named on stderr, and a selection left
    /// empty is a failure when `--include` named what was wanted (just said, when `--exclude`
    /// took everything). `selected` is how many repos the filter kept.
    pub fn check(
        &self,
        printer: &Printer,
        ids: &[&str],
        selected: usize,
        place: &str,
        list_hint: &str,
    ) -> Result<(), NotFound> {
        let mut matched = vec![false; self.include_patterns.len()];
        if let Some(set) = &self.include {
            for id in ids {
                for i in set.matches(id) {
                    matched[i] = true;
                }
            }
        }
        let unmatched: Vec<String> = self
            .include_patterns
            .iter()
            .zip(&matched)
            .filter(|(_, m)| !**m)
            .map(|(p, _)| format!("--include {p:?}"))
            .collect();
        if selected > 0 || ids.is_empty() {
            for flag in &unmatched {
                printer.note(&format!("{flag} matches no repo in {place}"));
            }
            return Ok(());
        }
        if self.include.is_some() {
            let message = if unmatched.len() == self.include_patterns.len() {
                format!("no repo in {place} matches {}", unmatched.join(" or "))
            } else {
                format!("--include and --exclude leave no repo in {place}")
            };
            return Err(NotFound {
                message,
                close: Vec::new(),
                list_hint: list_hint.into(),
            });
        }
        printer.note(&format!(
            "--exclude leaves none of the {} in {place}",
            text::plural(ids.len(), "repo", "repos")
        ));
        Ok(())
    }
}

fn build_globs(patterns: &[String], flag: &str) -> Result<Option<GlobSet>, ConfigError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        let glob = Glob::new(p).map_err(|e| ConfigError::Usage {
            message: format!("{flag} {p:?}: invalid glob: {e}"),
            hint: "globs match repo ids: 'org/*', 'org/model-*', '*/bert-*'".into(),
        })?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|e| ConfigError::Usage {
        message: format!("{flag}: {e}"),
        hint: "globs match repo ids: 'org/*', 'org/model-*', '*/bert-*'".into(),
    })
}

/// `--include-files` / `--exclude-files` as a filter; a pattern that is not a glob is a usage
/// error.
pub fn file_filter(
    include: &[String],
    exclude: &[String],
) -> Result<crate::patterns::FileFilter, ConfigError> {
    crate::patterns::FileFilter::new(include, exclude).map_err(|e| ConfigError::Usage {
        message: e.to_string(),
        hint: "file patterns are globs on the path in the repo, as hf download --include takes \
               them: '*.gguf', 'onnx/', '*Q4_K_M*'"
            .into(),
    })
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
    fn filters() {
        let f = RepoFilter::new(&["org/*".into()], &["org/skip".into()]).unwrap();
        assert!(f.matches("org/a"));
        assert!(!f.matches("org/skip"));
        assert!(!f.matches("other/a"));
        assert!(RepoFilter::new(&[], &[]).unwrap().matches("x"));
        assert!(RepoFilter::new(&["[".into()], &[]).is_err());
    }

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
