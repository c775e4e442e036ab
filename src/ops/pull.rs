//! Pulling revisions into the cache. [`fetch_and_land`] is the one pipeline every pull goes
//! through (`pull`, `pull-all`, `pull --lock`): the blobs of all revisions fetched through one
//! pool from the sources in order, then each revision landed the same way — its snapshot and
//! ref built, what a fallback served written through when asked, its files laid out in a folder
//! when asked. [`pull`] is the job of `pull REPO`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use futures::StreamExt;
use serde::Serialize;

use super::repos::require_on_remote;
use super::{file_filter, planned_downloads, Env, FallbackOptions, RevisionName, TransferOptions};
use crate::failure::Failure;
use crate::manifest::ManifestFile;
use crate::net::TransferCtx;
use crate::remote::catalog::Catalog;
use crate::text::short;
use crate::transfer::local_dir;
use crate::transfer::pull::{
    fetch_plans, finish, resolve_through, Counts, FetchedPlans, Plan, PullError, Resolution, Target,
};
use crate::transfer::source::{Source, Sources};
use crate::transfer::write_through::{write_through, Written};
use crate::transfer::PlannedRevision;

/// A revision to land: its plan, and the folder to lay its files out in, if any.
pub struct Landing {
    pub plan: Plan,
    pub local_dir: Option<PathBuf>,
}

/// How one revision landed.
pub struct Landed {
    pub plan: Plan,
    pub counts: Counts,
    /// What failed: blobs, the snapshot, files of the folder. Empty when it all landed.
    pub failures: Vec<Failure>,
    /// What write-through did, remote by remote.
    pub written: Vec<Written>,
    /// What was laid out in the folder (in a dry run: would be).
    pub local_dir: Option<local_dir::Report>,
}

impl Landed {
    /// Every failure on one line, as a repo's or a pin's `error`; `None` when it landed.
    pub fn error_text(&self) -> Option<String> {
        let errors: Vec<String> = self.failures.iter().map(|f| f.to_string()).collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    /// `org/m@<12 hex>`, as failures name a revision.
    fn item(plan: &Plan) -> String {
        format!("{}@{}", plan.repo_id, short(&plan.commit))
    }
}

/// Fetches every landing's missing blobs through one pool, then lands each revision in turn:
/// its snapshot and ref built, written through to the sources before the one that served it
/// (when `write_through`), laid out in its folder. A folder that cannot take files is refused
/// before anything is fetched for it; a revision that fails does not stop the others. In a dry
/// run nothing is written: the counts say what would be downloaded, and a folder what would be
/// placed. Returns each landing's result (in order, those whose folder was refused last), and
/// what made blobs come from a later source. A fatal remote error (credentials, a missing bucket) ends the run instead.
pub async fn fetch_and_land(
    env: &Env<'_>,
    sources: &Sources,
    landings: Vec<Landing>,
    ctx: &TransferCtx,
    transfer: &TransferOptions,
    write_through_to: bool,
) -> Result<(Vec<Landed>, Vec<String>)> {
    let cache_dir = &env.settings.cache_dir;
    let dry_run = transfer.dry_run;
    let mut refused = Vec::new();
    let mut plans = Vec::new();
    let mut dirs = Vec::new();
    for Landing {
        mut plan,
        local_dir,
    } in landings
    {
        plan.copies = env.settings.disable_symlinks;
        match local_dir
            .map(|d| local_dir::prepare(&d, dry_run))
            .transpose()
        {
            Ok(dir) => {
                plans.push(plan);
                dirs.push(dir);
            }
            Err(e) => {
                let failure = Failure::new(Landed::item(&plan), e);
                refused.push(landed(plan, Counts::default(), vec![failure]));
            }
        }
    }
    let policy = env.push_policy();
    let writing_through = write_through_to.then_some(&policy);
    let FetchedPlans {
        counts,
        failures,
        leases,
        mut fleet,
        notes,
    } = fetch_plans(
        sources,
        cache_dir,
        ctx,
        &mut plans,
        (dry_run, writing_through),
    )
    .await?;
    let mut failed: Vec<Vec<Failure>> = vec![Vec::new(); plans.len()];
    for (i, f) in failures {
        failed[i].push(f);
    }
    let mut all = Vec::with_capacity(plans.len() + refused.len());
    for (i, ((plan, counts), (mut failures, dir))) in plans
        .into_iter()
        .zip(counts)
        .zip(failed.into_iter().zip(dirs))
        .enumerate()
    {
        if failures.is_empty() && !dry_run {
            if let Err(e) = finish(cache_dir, &plan) {
                failures.push(Failure::new(Landed::item(&plan), e));
            }
        }
        let mut landing = landed(plan, counts, failures);
        // The cache holds the revision whole now: what the folder does cannot undo that.
        if landing.failures.is_empty() && !dry_run && write_through_to {
            landing.written = write_through(
                sources,
                &landing.plan,
                cache_dir,
                &policy,
                // Under the pull's cap, not a second one of its own.
                || {
                    env.transfer_ctx(transfer, "write-through")
                        .sharing_rate(ctx)
                },
            )
            .await;
        }
        // Its manifest and ref are in (or will not be): the fleet need not wait on this run.
        let published = fleet.release(i, ctx).await;
        Written::add_published(&mut landing.written, sources, &published);
        if let Some(dir) = dir.filter(|_| landing.failures.is_empty()) {
            let plan = &landing.plan;
            let files = plan.manifest.files.clone();
            match lay_out(
                env,
                plan.repo_dir.clone(),
                &plan.commit,
                files,
                dir,
                dry_run,
            )
            .await
            {
                Ok(mut report) => {
                    landing.failures.append(&mut report.failures);
                    landing.local_dir = Some(report);
                }
                Err(e) => landing
                    .failures
                    .push(Failure::new(Landed::item(&landing.plan), e)),
            }
        }
        all.push(landing);
    }
    drop(leases);
    all.extend(refused);
    // A revision that failed as a whole (its repo could not be locked, its snapshot not built,
    // its folder refused) counts as failed too, beside the blobs that did.
    for landing in &mut all {
        landing.counts.failed = landing.counts.failed.max(landing.failures.len());
    }
    Ok((all, notes))
}

fn landed(plan: Plan, counts: Counts, failures: Vec<Failure>) -> Landed {
    Landed {
        plan,
        counts,
        failures,
        written: Vec::new(),
        local_dir: None,
    }
}

/// A revision's files, already in the cache, laid out in `dir` off the async workers (a dry
/// run: what would be placed there).
pub async fn lay_out(
    env: &Env<'_>,
    repo_dir: PathBuf,
    commit: &str,
    files: Vec<ManifestFile>,
    dir: PathBuf,
    dry_run: bool,
) -> Result<local_dir::Report, local_dir::LocalDirError> {
    let progress = (!dry_run).then(|| env.progress("local dir"));
    let timeout = env.settings.transfer.lock_timeout;
    local_dir::lay_out(repo_dir, commit.to_string(), files, dir, timeout, progress).await
}

/// Resolves each target through the source list, concurrently, with what made each turn to a
/// later source.
pub async fn resolve_all(
    env: &Env<'_>,
    sources: &Sources,
    targets: Vec<Target>,
    ctx: &TransferCtx,
    dry_run: bool,
) -> Vec<(Target, Result<Resolution, PullError>, Vec<String>)> {
    let cache_dir = &env.settings.cache_dir;
    futures::stream::iter(targets)
        .map(|target| async move {
            let mut notes = Vec::new();
            let got =
                resolve_through(sources, 0, cache_dir, &target, dry_run, ctx, &mut notes).await;
            (target, got, notes)
        })
        .buffered(ctx.workers.max(1))
        .collect()
        .await
}

/// `pull REPO`.
pub struct PullOptions {
    /// The repo as named (`org/m`, `dataset/org/d`), the `--repo-type` flag and the revision.
    pub target: Target,
    /// `--include-files` / `--exclude-files`.
    pub include_files: Vec<String>,
    pub exclude_files: Vec<String>,
    /// Also lay the revision out as real files in this folder.
    pub local_dir: Option<PathBuf>,
    pub transfer: TransferOptions,
    pub fallback: FallbackOptions,
}

#[derive(Debug, Serialize)]
pub struct PullSummary {
    pub command: &'static str,
    pub remote: String,
    /// Where the revision came from: the remote, or the fallback that had it.
    pub source: String,
    pub dry_run: bool,
    #[serde(flatten)]
    pub pulled: RevisionName,
    /// The files pulled: all of the revision's, or those the file patterns chose.
    pub files: usize,
    pub files_in_revision: usize,
    /// `--include-files` / `--exclude-files`, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_patterns: Option<FilePatterns>,
    #[serde(flatten)]
    pub counts: Counts,
    pub seconds: f64,
    pub failures: Vec<Failure>,
    /// What made the pull turn to a later source (a missing revision, a corrupt blob by key).
    pub warnings: Vec<String>,
    /// What a fallback served, written to the remotes before it (`--write-through`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_through: Vec<Written>,
    /// Dry run only: what the revision would download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Vec<PlannedRevision>>,
    /// `--local-dir`: the folder the revision's files were laid out in (a dry run: would be).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_dir: Option<local_dir::Report>,
}

#[derive(Debug, Serialize)]
pub struct FilePatterns {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

/// A dry run whose remote lacks the revision: what a pull would fetch, and from where.
#[derive(Debug, Serialize)]
pub struct WouldFallBack {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub repo: String,
    pub revision: String,
    pub would_fetch_from: String,
    pub reason: String,
}

/// What `pull REPO` did.
pub enum PullReport {
    Pulled(Box<PullSummary>),
    WouldFallBack(WouldFallBack),
}

/// The error that ends a pull before anything is fetched, with what it was about.
pub fn resolve_error(e: PullError, repo_id: &str) -> anyhow::Error {
    match e {
        PullError::Remote(e) => e.into(),
        PullError::Hub(e) => {
            anyhow::Error::new(e).context(format!("cannot pull {repo_id} from the Hub"))
        }
        e => anyhow::Error::new(e).context(format!("cannot pull {repo_id}")),
    }
}

/// Pulls one revision: resolved through the sources, then fetched and landed.
pub async fn pull(env: &Env<'_>, opts: PullOptions) -> Result<PullReport> {
    let started = Instant::now();
    let named = super::repos::RepoRef::parse(&opts.target.repo_id)?
        .with_type_flag(opts.target.repo_type)?;
    let target = Target {
        repo_id: named.repo_id.clone(),
        repo_type: named.repo_type,
        revision: opts.target.revision,
        files: file_filter(&opts.include_files, &opts.exclude_files)?,
    };
    let sources = env.open_sources(opts.transfer.remote.as_deref(), &opts.fallback)?;
    let dry_run = opts.transfer.dry_run;
    let ctx = env.transfer_ctx(&opts.transfer, "pull");
    let (target, resolved, mut warnings) = resolve_all(env, &sources, vec![target], &ctx, dry_run)
        .await
        .pop()
        .expect("one target");
    let plan = match resolved {
        Ok(Resolution::Plan(p)) => *p,
        Ok(Resolution::WouldFallBack { to, why }) => {
            return Ok(PullReport::WouldFallBack(WouldFallBack {
                command: "pull",
                remote: sources.primary().url(),
                dry_run: true,
                repo: target.repo_id.clone(),
                revision: target.revision.clone().unwrap_or_else(|| "main".into()),
                would_fetch_from: to,
                reason: why,
            }));
        }
        Err(e) => {
            if let (PullError::Missing(_), Source::Remote { remote, layout }) = (&e, sources.get(0))
            {
                // Nothing at all under the repo's key: say so as every command does.
                let catalog = Catalog::list(remote, layout, false).await?;
                require_on_remote(&catalog, &[named], &remote.describe())?;
            }
            return Err(resolve_error(e, &target.repo_id));
        }
    };
    // A folder that cannot take the files is refused before anything is fetched.
    let local_dir = match &opts.local_dir {
        Some(dir) => Some(local_dir::prepare(dir, dry_run)?),
        None => None,
    };
    let landing = Landing { plan, local_dir };
    let write_through_to = env.write_through(&opts.fallback);
    let (mut landed, notes) = fetch_and_land(
        env,
        &sources,
        vec![landing],
        &ctx,
        &opts.transfer,
        write_through_to,
    )
    .await?;
    warnings.extend(notes);
    let landed = landed.pop().expect("one landing");
    let plan = &landed.plan;
    Ok(PullReport::Pulled(Box::new(PullSummary {
        command: "pull",
        remote: sources.primary().url(),
        source: sources.get(plan.tier).url(),
        dry_run,
        pulled: RevisionName::new(
            plan.repo_type,
            &plan.repo_id,
            &plan.commit,
            plan.ref_name.as_deref(),
        ),
        files: plan.manifest.files.len(),
        files_in_revision: plan.files_in_revision,
        file_patterns: (!target.files.is_all()).then(|| FilePatterns {
            include: target.files.include().to_vec(),
            exclude: target.files.exclude().to_vec(),
        }),
        counts: landed.counts.clone(),
        seconds: started.elapsed().as_secs_f64(),
        planned: dry_run.then(|| planned_downloads(std::slice::from_ref(plan))),
        failures: landed.failures,
        warnings,
        write_through: landed.written,
        local_dir: landed.local_dir,
    })))
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::cache::hash::sha256_hex;
    use crate::config::{Overrides, Settings};
    use crate::report::{NoProgress, Progress, Reporter};

    const COMMIT: &str = "c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";

    struct Quiet;

    impl Reporter for Quiet {
        fn progress(&self, _: &str) -> Arc<dyn Progress> {
            Arc::new(NoProgress)
        }
        fn detail(&self, _: &str) {}
    }

    /// A directory remote holding `org/m` at [`COMMIT`] under `main`: one LFS-named file.
    fn remote_with_model(root: &Path) -> String {
        let body = b"weights of org/m";
        let etag = sha256_hex(body);
        fs::create_dir_all(root.join("blobs")).unwrap();
        fs::write(root.join("blobs").join(&etag), body).unwrap();
        fs::create_dir_all(root.join("manifests")).unwrap();
        let manifest = serde_json::json!({
            "repo": "org/m", "revision": COMMIT, "repo_type": "model",
            "files": [{"path": "model.bin", "blob": etag, "size": body.len()}],
        });
        fs::write(
            root.join(format!("manifests/org__m@{COMMIT}.json")),
            manifest.to_string(),
        )
        .unwrap();
        fs::create_dir_all(root.join("refs/org__m")).unwrap();
        fs::write(root.join("refs/org__m/main"), COMMIT).unwrap();
        etag
    }

    fn options(remote: &Path, local_dir: Option<PathBuf>) -> PullOptions {
        PullOptions {
            target: Target {
                repo_id: "org/m".into(),
                repo_type: None,
                revision: None,
                files: Default::default(),
            },
            include_files: Vec::new(),
            exclude_files: Vec::new(),
            local_dir,
            transfer: TransferOptions {
                remote: Some(remote.as_os_str().to_owned()),
                ..Default::default()
            },
            fallback: FallbackOptions::default(),
        }
    }

    /// Settings with the cache in `dir/cache`.
    fn settings(dir: &Path) -> Settings {
        Settings::load_without_file(&Overrides {
            config: None,
            cache_dir: Some(dir.join("cache")),
        })
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_pull_lands_the_snapshot_the_ref_and_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let etag = remote_with_model(&dir.path().join("remote"));
        let settings = settings(dir.path());
        let env = Env {
            settings: &settings,
            reporter: &Quiet,
        };
        let folder = dir.path().join("project/m");
        let opts = options(&dir.path().join("remote"), Some(folder.clone()));
        let PullReport::Pulled(summary) = pull(&env, opts).await.unwrap() else {
            panic!("a pull, not a dry run");
        };
        assert!(summary.failures.is_empty(), "{:?}", summary.failures);
        assert_eq!(summary.counts.downloaded, 1);
        let repo = dir.path().join("cache/models--org--m");
        assert_eq!(fs::read_to_string(repo.join("refs/main")).unwrap(), COMMIT);
        let link = repo.join(format!("snapshots/{COMMIT}/model.bin"));
        assert_eq!(
            fs::read_link(&link).unwrap(),
            Path::new("../../blobs").join(&etag)
        );
        assert_eq!(
            fs::read(folder.join("model.bin")).unwrap(),
            b"weights of org/m"
        );
        assert_eq!(summary.local_dir.as_ref().unwrap().placed, 1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_folder_that_cannot_take_the_files_is_refused_before_anything_is_fetched() {
        let dir = tempfile::tempdir().unwrap();
        remote_with_model(&dir.path().join("remote"));
        let settings = settings(dir.path());
        let env = Env {
            settings: &settings,
            reporter: &Quiet,
        };
        let file = dir.path().join("a-file");
        fs::write(&file, b"in the way").unwrap();
        let opts = options(&dir.path().join("remote"), Some(file.join("m")));
        let err = pull(&env, opts).await.err().expect("refused");
        assert!(
            err.downcast_ref::<local_dir::LocalDirError>().is_some(),
            "{err:#}"
        );
        assert!(!dir.path().join("cache/models--org--m").exists());
    }
}
