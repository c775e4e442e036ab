//! The operations under the commands, one function per job (pull, diff, prune, …): options in,
//! a serializable report out. An operation decides everything the job decides and never
//! prints; what it has to say is data in its report, and the command renders it. [`Env`] is
//! what an operation that opens a remote or moves bytes gets: the settings and a [`Reporter`]
//! for progress and `-v` details.

pub mod dedupe;
pub mod delete;
pub mod diff;
pub mod doctor;
pub mod gc;
pub mod list;
pub mod lock;
pub mod prune;
pub mod pull;
pub mod pull_all;
pub mod pull_lock;
pub mod push;
pub mod remote_delete;
pub mod repos;
pub mod rm;
pub mod serve;
pub mod status;
#[cfg(test)]
mod testing;
pub mod verify;

use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::config::{ConfigError, FallbackSpec, Rate, Settings};
use crate::hub::Hub;
use crate::manifest::Layout;
use crate::net::TransferCtx;
use crate::remote::{Remote, RemoteSpec};
use crate::report::{Progress, Reporter};
use crate::text::short;
use crate::transfer::pull::Plan;
use crate::transfer::source::{Source, Sources};
use crate::transfer::PlannedRevision;

pub use dedupe::{dedupe, scan_caches, DedupeReport};
pub use diff::{diff, DiffOptions, DiffReport};
pub use list::{list, ListOptions, Side};
pub use prune::{plan_prune, PruneOptions, PruneReport};
pub use repos::NotFound;
pub use status::{status, StatusOptions, StatusReport};

/// Transfer options shared by push and pull.
#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    pub dry_run: bool,
    pub workers: Option<usize>,
    /// `--limit-rate`: the cap on the run's bytes per second, over `transfer.limit_rate`.
    pub limit_rate: Option<Rate>,
    /// `s3://bucket[/prefix]` or a directory, whose path need not be UTF-8.
    pub remote: Option<std::ffi::OsString>,
}

/// Where `pull` and `pull-all` fall back to, as the command line says (empty: the config's).
#[derive(Debug, Clone, Default)]
pub struct FallbackOptions {
    pub fallback: Vec<FallbackSpec>,
    pub write_through: bool,
}

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

/// What an operation runs with: the resolved settings, and where progress and `-v` details go.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    pub settings: &'a Settings,
    pub reporter: &'a dyn Reporter,
}

impl Env<'_> {
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
                FallbackSpec::Hub => Source::Hub(Hub::open(self.settings)?),
                FallbackSpec::Remote(url) => {
                    let spec = RemoteSpec::resolve(self.settings, Some(url))?;
                    Source::Remote {
                        remote: Remote::open(&spec, self.settings)?,
                        layout: Layout::new(spec.prefix()),
                    }
                }
            });
        }
        let sources = Sources::new(sources);
        if sources.len() > 1 {
            self.reporter.detail(&format!(
                "sources, in order: {}",
                sources.describe().join(", then ")
            ));
        }
        Ok(sources)
    }

    /// The remote `--remote` names, or the configured one; refused offline when it is a bucket.
    pub fn open_remote(
        &self,
        flag: Option<&std::ffi::OsStr>,
    ) -> Result<(Remote, Layout), ConfigError> {
        let spec = RemoteSpec::resolve(self.settings, flag)?;
        refuse_offline(&spec)?;
        let remote = Remote::open(&spec, self.settings)?;
        let s = self.settings;
        self.reporter.detail(&format!(
            "config: {}; cache: {}; remote: {}; credentials: {}",
            s.config_path
                .as_deref()
                .map_or("none".into(), |p| p.display().to_string()),
            s.cache_dir.display(),
            remote.describe(),
            s.credentials.source.as_str()
        ));
        Ok((remote, Layout::new(spec.prefix())))
    }

    /// What a push (and write-through, and watch) leaves out.
    pub fn push_policy(&self) -> crate::transfer::push::PushPolicy {
        crate::transfer::push::PushPolicy {
            allow_gated: self.settings.allow_gated,
            sync_xet: self.settings.sync_xet,
        }
    }

    /// Whether a pull writes what a fallback served through to the sources before it.
    pub fn write_through(&self, opts: &FallbackOptions) -> bool {
        opts.write_through || self.settings.pull.write_through
    }

    /// The limits a run's transfers share: `--workers` and `--limit-rate` over the settings'.
    pub fn transfer_ctx(&self, opts: &TransferOptions, label: &str) -> TransferCtx {
        let workers = opts.workers.unwrap_or(self.settings.transfer.workers);
        let limit = opts.limit_rate.or(self.settings.transfer.limit_rate);
        if let Some(rate) = limit {
            self.reporter
                .detail(&format!("{label}: at most {rate}, all transfers together"));
        }
        TransferCtx::new(self.settings, workers, limit, self.progress(label))
    }

    pub fn progress(&self, label: &str) -> Arc<dyn Progress> {
        self.reporter.progress(label)
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
    /// matches none of `ids` (the repos in `place`) is named in the notes returned, and a
    /// selection left empty is a failure when `--include` named what was wanted (a note, when
    /// `--exclude` took everything). `selected` is how many repos the filter kept.
    pub fn check(
        &self,
        ids: &[&str],
        selected: usize,
        place: &str,
        list_hint: &str,
    ) -> Result<Vec<String>, NotFound> {
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
            return Ok(unmatched
                .iter()
                .map(|flag| format!("{flag} matches no repo in {place}"))
                .collect());
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
        Ok(vec![format!(
            "--exclude leaves none of the {} in {place}",
            crate::text::plural(ids.len(), "repo", "repos")
        )])
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

/// Scans the cache, refusing a cache dir that does not exist (a typo must not look like an
/// empty cache).
pub async fn scan_existing(
    cache_dir: &std::path::Path,
) -> anyhow::Result<crate::cache::scan::CacheScan> {
    let dir = cache_dir.to_path_buf();
    let scan = tokio::task::spawn_blocking(move || crate::cache::scan::scan(&dir)).await?;
    if !scan.exists {
        return Err(missing_cache_dir(&scan).into());
    }
    Ok(scan)
}

pub fn missing_cache_dir(scan: &crate::cache::scan::CacheScan) -> ConfigError {
    ConfigError::Usage {
        message: format!("cache dir {} does not exist", scan.root.display()),
        hint: "set --cache-dir, cache.hf_cache_dir or HF_HUB_CACHE to the hub cache \
               (huggingface_hub's default is ~/.cache/huggingface/hub)"
            .into(),
    }
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
}
