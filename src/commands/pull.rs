//! `pull`: resolve a ref to a commit, fetch and vet its manifest, download the missing blobs
//! (verified while they stream, under huggingface_hub's lock), then build the snapshot and ref.
//!
//! The engine here ([`resolve`], [`download`], [`finish`]) also drives `pull-all`, so transfers of
//! many repos share one pool.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::{lock_waiter, short, App, Failure, Outcome, TransferOptions};
use crate::cache::lock::{lock_blob, RepoLease};
use crate::cache::write::{
    check_inside, ensure_repo_dirs, link_snapshot_file, remove_stale_temps, sync_dir, write_ref,
    BlobWriter, WriteError,
};
use crate::cache::{
    blob_path, is_commit_hash, is_safe_ref_name, lock_path, repo_folder_name, repo_lock_path,
    RepoType,
};
use crate::config::ConfigError;
use crate::manifest::{
    is_valid_repo_id, parse_ref_body, Layout, Manifest, MAX_MANIFEST_BYTES, MAX_REF_BYTES,
};
use crate::remote::{Remote, RemoteError, TransferCtx, TransferError};
use crate::report::human_bytes;

/// Why one repo could not be pulled. Remote errors that affect every repo end the run instead.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Missing(String),
}

/// What to pull.
#[derive(Debug, Clone)]
pub struct Target {
    pub repo_id: String,
    pub repo_type: Option<RepoType>,
    /// A ref name or commit; `main` when absent.
    pub revision: Option<String>,
}

/// A resolved, vetted revision and where it goes.
#[derive(Debug)]
pub struct Plan {
    pub repo_id: String,
    pub repo_type: RepoType,
    pub commit: String,
    pub ref_name: Option<String>,
    pub manifest: Manifest,
    pub repo_dir: PathBuf,
    pub folder: String,
}

/// One blob to fetch into one repo.
#[derive(Debug, Clone)]
pub struct BlobJob {
    pub plan: usize,
    pub etag: String,
    pub size: u64,
    pub repo_dir: PathBuf,
    pub folder: String,
}

/// Per-plan transfer counts.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub downloaded: usize,
    pub skipped_existing: usize,
    pub failed: usize,
    pub bytes_downloaded: u64,
}

pub async fn get_manifest(
    remote: &Remote,
    layout: &Layout,
    repo_id: &str,
    commit: &str,
) -> Result<Option<Manifest>, PullError> {
    let key = layout.manifest_key(repo_id, commit);
    match remote.get(&key, MAX_MANIFEST_BYTES).await? {
        None => Ok(None),
        Some(bytes) => Manifest::parse(&bytes)
            .map(Some)
            .map_err(|e| PullError::Refused(format!("{key}: {e}"))),
    }
}

/// Resolves the revision and vets the manifest: nothing is written before this succeeds.
pub async fn resolve(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    target: &Target,
) -> Result<Plan, PullError> {
    if !is_valid_repo_id(&target.repo_id) {
        return Err(PullError::Refused(format!(
            "invalid repo id {:?}",
            target.repo_id
        )));
    }
    let revision = target.revision.as_deref().unwrap_or("main");
    let mut manifest = None;
    let mut ref_name = None;
    let commit = if is_commit_hash(revision) {
        manifest = get_manifest(remote, layout, &target.repo_id, revision).await?;
        revision.to_string()
    } else {
        if !is_safe_ref_name(revision) {
            return Err(PullError::Refused(format!("invalid revision {revision:?}")));
        }
        let key = layout.ref_key(&target.repo_id, revision);
        let body = remote.get(&key, MAX_REF_BYTES).await?.ok_or_else(|| {
            PullError::Missing(format!(
                "no ref {revision} for {} on the remote ({key}); push it first, or pass -r with a pushed commit",
                target.repo_id
            ))
        })?;
        ref_name = Some(revision.to_string());
        parse_ref_body(&body)
            .ok_or_else(|| PullError::Refused(format!("{key}: ref body is not a commit hash")))?
    };
    let manifest = match manifest {
        Some(m) => m,
        None => get_manifest(remote, layout, &target.repo_id, &commit)
            .await?
            .ok_or_else(|| {
                PullError::Missing(format!(
                    "no manifest for {}@{} on the remote ({})",
                    target.repo_id,
                    commit,
                    layout.manifest_key(&target.repo_id, &commit)
                ))
            })?,
    };
    if manifest.repo != target.repo_id || manifest.revision != commit {
        return Err(PullError::Refused(format!(
            "manifest {} describes {}@{}, not {}@{}",
            layout.manifest_key(&target.repo_id, &commit),
            manifest.repo,
            manifest.revision,
            target.repo_id,
            commit
        )));
    }
    let repo_type = manifest.repo_type().expect("validated");
    if let Some(wanted) = target.repo_type {
        if wanted != repo_type {
            return Err(PullError::Missing(format!(
                "{} on the remote is a {repo_type}, not a {wanted} (manifest {})",
                target.repo_id,
                layout.manifest_key(&target.repo_id, &commit)
            )));
        }
    }
    let folder = repo_folder_name(repo_type, &target.repo_id);
    let plan = Plan {
        repo_id: target.repo_id.clone(),
        repo_type,
        commit,
        ref_name,
        manifest,
        repo_dir: cache_dir.join(&folder),
        folder,
    };
    check_plan_paths(cache_dir, &plan)?;
    Ok(plan)
}

/// Every folder the plan writes into stays inside the cache dir: a link planted in the local
/// cache (a snapshot folder pointing at `/etc`, say) refuses the pull before anything is written.
fn check_plan_paths(cache_dir: &Path, plan: &Plan) -> Result<(), PullError> {
    let snapshot = plan.repo_dir.join("snapshots").join(&plan.commit);
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    dirs.insert(plan.repo_dir.join("blobs"));
    dirs.insert(cache_dir.join(".locks").join(&plan.folder));
    dirs.insert(snapshot.clone());
    for f in &plan.manifest.files {
        if let Some(parent) = snapshot.join(&f.path).parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    let refs = plan.repo_dir.join("refs");
    match plan
        .ref_name
        .as_deref()
        .and_then(|n| refs.join(n).parent().map(Path::to_path_buf))
    {
        Some(parent) => dirs.insert(parent),
        None => dirs.insert(refs),
    };
    for dir in &dirs {
        check_inside(cache_dir, dir).map_err(|e| {
            PullError::Refused(format!("{e} (pulling {}@{})", plan.repo_id, plan.commit))
        })?;
    }
    Ok(())
}

/// Blobs the plan needs that are not already in the cache. A blob under its name is trusted:
/// only verified bytes are ever given a blob name.
pub fn missing_blobs(index: usize, plan: &Plan, counts: &mut Counts) -> Vec<BlobJob> {
    let mut unique: BTreeMap<&str, u64> = BTreeMap::new();
    for f in &plan.manifest.files {
        unique.insert(&f.blob, f.size);
    }
    let mut jobs = Vec::new();
    for (etag, size) in unique {
        if present(&plan.repo_dir, etag, size) {
            counts.skipped_existing += 1;
        } else {
            jobs.push(BlobJob {
                plan: index,
                etag: etag.to_string(),
                size,
                repo_dir: plan.repo_dir.clone(),
                folder: plan.folder.clone(),
            });
        }
    }
    jobs
}

fn present(repo_dir: &Path, etag: &str, size: u64) -> bool {
    std::fs::metadata(blob_path(repo_dir, etag)).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// What happened to one blob job.
pub enum JobResult {
    Downloaded(u64),
    /// Another process wrote it while we waited for its lock.
    AlreadyThere,
    Failed(TransferError),
}

/// Downloads every job through one pool. A fatal remote error stops the rest.
pub async fn download(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    ctx: &TransferCtx,
    mut jobs: Vec<BlobJob>,
) -> Vec<(BlobJob, JobResult)> {
    ctx.progress
        .add_total(jobs.len() as u64, jobs.iter().map(|j| j.size).sum());
    jobs.sort_by_key(|j| std::cmp::Reverse(j.size));
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stop = &stop;
    let results: Vec<(BlobJob, JobResult)> = stream::iter(jobs)
        .map(|job| async move {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                let err = RemoteError::Other {
                    detail: "not attempted after an earlier fatal error".into(),
                    code: String::new(),
                };
                return (job, JobResult::Failed(err.into()));
            }
            let result = fetch_one(remote, layout, cache_dir, ctx, &job).await;
            ctx.progress.item_done();
            if let JobResult::Failed(TransferError::Remote(e)) = &result {
                if e.is_fatal() {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            (job, result)
        })
        .buffer_unordered(ctx.workers)
        .collect()
        .await;
    // The renames are durable once their folders are synced: once per folder, not per blob.
    let dirs: BTreeSet<PathBuf> = results
        .iter()
        .filter(|(_, r)| matches!(r, JobResult::Downloaded(_)))
        .map(|(job, _)| job.repo_dir.join("blobs"))
        .collect();
    tokio::task::spawn_blocking(move || dirs.iter().for_each(|d| sync_dir(d)))
        .await
        .expect("sync task does not panic");
    results
}

async fn fetch_one(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    ctx: &TransferCtx,
    job: &BlobJob,
) -> JobResult {
    let lock_file = lock_path(cache_dir, &job.folder, &job.etag);
    let timeout = ctx.lock_timeout;
    let on_wait = lock_waiter(
        ctx.progress.clone(),
        lock_file.clone(),
        format!("another process is writing blob {}", job.etag),
        timeout,
    );
    let lock = tokio::task::spawn_blocking(move || lock_blob(&lock_file, timeout, on_wait))
        .await
        .expect("lock task does not panic");
    let _lock = match lock {
        Ok(l) => l,
        Err(e) => return JobResult::Failed(WriteError::from(e).into()),
    };
    // Under the lock, any temporary file for this blob belongs to a run that was killed.
    remove_stale_temps(&job.repo_dir, &job.etag);
    if present(&job.repo_dir, &job.etag, job.size) {
        ctx.progress.add_bytes(job.size);
        return JobResult::AlreadyThere;
    }
    let writer = match ensure_repo_dirs(&job.repo_dir)
        .and_then(|()| BlobWriter::create(&job.repo_dir, &job.etag, job.size))
    {
        Ok(w) => w,
        Err(e) => return JobResult::Failed(e.into()),
    };
    match remote
        .download_blob(&layout.blob_key(&job.etag), writer, job.size, ctx)
        .await
    {
        Ok(_) => JobResult::Downloaded(job.size),
        Err(e) => JobResult::Failed(e),
    }
}

/// Builds the snapshot and writes the ref, once every blob of the revision is in place.
pub fn finish(cache_dir: &Path, plan: &Plan) -> Result<usize, PullError> {
    // Checked again: the cache may have changed while the blobs were downloading.
    check_plan_paths(cache_dir, plan)?;
    for f in &plan.manifest.files {
        if !present(&plan.repo_dir, &f.blob, f.size) {
            return Err(PullError::Missing(format!(
                "blob {} for {} is missing",
                f.blob, f.path
            )));
        }
    }
    for f in &plan.manifest.files {
        link_snapshot_file(&plan.repo_dir, &plan.commit, &f.path, &f.blob)
            .map_err(|e| PullError::Refused(e.to_string()))?;
    }
    ensure_repo_dirs(&plan.repo_dir).map_err(|e| PullError::Refused(e.to_string()))?;
    if let Some(name) = &plan.ref_name {
        write_ref(&plan.repo_dir, name, &plan.commit)
            .map_err(|e| PullError::Refused(e.to_string()))?;
    }
    Ok(plan.manifest.files.len())
}

/// Folds job results into per-plan counts and failures.
pub fn tally(
    results: Vec<(BlobJob, JobResult)>,
    counts: &mut [Counts],
    failures: &mut Vec<(usize, Failure)>,
) -> Option<RemoteError> {
    let mut fatal = None;
    for (job, result) in results {
        let c = &mut counts[job.plan];
        match result {
            JobResult::Downloaded(n) => {
                c.downloaded += 1;
                c.bytes_downloaded += n;
            }
            JobResult::AlreadyThere => c.skipped_existing += 1,
            JobResult::Failed(TransferError::Remote(e)) if e.is_fatal() => {
                c.failed += 1;
                fatal.get_or_insert(e);
            }
            JobResult::Failed(e) => {
                c.failed += 1;
                failures.push((
                    job.plan,
                    Failure {
                        item: format!("blob {}", job.etag),
                        error: e.to_string(),
                    },
                ));
            }
        }
    }
    fatal
}

/// Takes the shared lock of each plan's repo, waiting (bounded) while a prune or rm holds one.
/// Returns the locks and the plans that could not be locked, with why.
async fn lock_repos(
    cache_dir: &Path,
    ctx: &TransferCtx,
    plans: &[Plan],
) -> (Vec<RepoLease>, Vec<(usize, Failure)>) {
    let mut locks = Vec::new();
    let mut failures = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let path = repo_lock_path(cache_dir, &plan.folder);
        let timeout = ctx.lock_timeout;
        let on_wait = lock_waiter(
            ctx.progress.clone(),
            path.clone(),
            format!("a prune or rm of {} is running", plan.repo_id),
            timeout,
        );
        let result = tokio::task::spawn_blocking(move || RepoLease::wait(&path, timeout, on_wait))
            .await
            .expect("lock task does not panic");
        match result {
            Ok(lock) => locks.push(lock),
            Err(e) => failures.push((
                i,
                Failure {
                    item: format!("{}@{}", plan.repo_id, short(&plan.commit)),
                    error: e.to_string(),
                },
            )),
        }
    }
    (locks, failures)
}

/// What [`fetch_plans`] did: per-plan counts, the failed items, and the repo leases to hold
/// until the snapshots are built ([`finish`]).
pub struct Fetched {
    pub counts: Vec<Counts>,
    pub failures: Vec<(usize, Failure)>,
    pub locks: Vec<RepoLease>,
}

/// Fetches what the plans lack through one pool (or only counts it, for a dry run), under the
/// plans' repo locks. A fatal remote error ends the run instead.
pub async fn fetch_plans(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    ctx: &TransferCtx,
    plans: &[Plan],
    dry_run: bool,
) -> Result<Fetched> {
    let mut counts = vec![Counts::default(); plans.len()];
    if dry_run {
        for (i, plan) in plans.iter().enumerate() {
            for job in missing_blobs(i, plan, &mut counts[i]) {
                counts[i].downloaded += 1;
                counts[i].bytes_downloaded += job.size;
            }
        }
        ctx.progress.finish();
        return Ok(Fetched {
            counts,
            failures: Vec::new(),
            locks: Vec::new(),
        });
    }
    std::fs::create_dir_all(cache_dir).map_err(|e| {
        ConfigError::Invalid(format!(
            "cannot create cache dir {}: {e}",
            cache_dir.display()
        ))
    })?;
    let (locks, mut failures) = lock_repos(cache_dir, ctx, plans).await;
    // What is missing is decided under the lock: a prune that ran just before may have removed
    // blobs that were there when the plans were made.
    let mut jobs = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if !failures.iter().any(|(p, _)| *p == i) {
            jobs.extend(missing_blobs(i, plan, &mut counts[i]));
        }
    }
    let results = download(remote, layout, cache_dir, ctx, jobs).await;
    let fatal = tally(results, &mut counts, &mut failures);
    ctx.progress.finish();
    if let Some(fatal) = fatal {
        return Err(fatal.into());
    }
    Ok(Fetched {
        counts,
        failures,
        locks,
    })
}

#[derive(Debug, Serialize)]
pub struct PullSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub repo: String,
    pub repo_type: RepoType,
    pub revision: String,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
    pub files: usize,
    #[serde(flatten)]
    pub counts: Counts,
    pub seconds: f64,
    pub failures: Vec<Failure>,
}

pub struct PullOptions {
    pub target: Target,
    pub transfer: TransferOptions,
}

pub async fn run(app: &App, opts: PullOptions) -> Result<Outcome> {
    let started = Instant::now();
    let (remote, layout) = app.open_remote(opts.transfer.remote.as_deref())?;
    let ctx = app.transfer_ctx(&opts.transfer, "pull");
    let cache_dir = &app.settings.cache_dir;
    let plan = match resolve(&remote, &layout, cache_dir, &opts.target).await {
        Ok(p) => p,
        Err(PullError::Remote(e)) => return Err(e.into()),
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("cannot pull {}", opts.target.repo_id))
            )
        }
    };
    let plans = std::slice::from_ref(&plan);
    let dry_run = opts.transfer.dry_run;
    let Fetched {
        mut counts,
        mut failures,
        locks,
    } = fetch_plans(&remote, &layout, cache_dir, &ctx, plans, dry_run).await?;
    if !dry_run && failures.is_empty() {
        if let Err(e) = finish(cache_dir, &plan) {
            failures.push((
                0,
                Failure {
                    item: format!("{}@{}", plan.repo_id, short(&plan.commit)),
                    error: e.to_string(),
                },
            ));
        }
    }
    drop(locks);
    let summary = PullSummary {
        command: "pull",
        remote: remote.describe(),
        dry_run: opts.transfer.dry_run,
        repo: plan.repo_id.clone(),
        repo_type: plan.repo_type,
        revision: plan.commit.clone(),
        ref_name: plan.ref_name.clone(),
        files: plan.manifest.files.len(),
        counts: counts.remove(0),
        seconds: started.elapsed().as_secs_f64(),
        failures: failures.into_iter().map(|(_, f)| f).collect(),
    };
    let outcome = Outcome::from_failures(summary.failures.len());
    app.printer.result(&summary, || {
        let verb = if summary.dry_run {
            "Would pull"
        } else if outcome == Outcome::Success {
            "Pulled"
        } else {
            "Failed to pull"
        };
        format!(
            "{verb} {} {}@{}{}: {} files, {} blobs downloaded ({}), {} already present, in {:.1}s",
            summary.repo_type,
            summary.repo,
            short(&summary.revision),
            summary
                .ref_name
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            summary.files,
            summary.counts.downloaded,
            human_bytes(summary.counts.bytes_downloaded),
            summary.counts.skipped_existing,
            summary.seconds
        )
    });
    report_failures(app, &summary.failures, cache_dir);
    Ok(outcome)
}

/// Each failure on stderr, then what to do about it.
fn report_failures(app: &App, failures: &[Failure], cache_dir: &Path) {
    let quiet = crate::report::NoProgress;
    for f in failures {
        app.printer
            .error(&quiet, &format!("{}: {}", f.item, f.error));
    }
    if failures.is_empty() {
        return;
    }
    if failures.iter().any(|f| is_disk_full(&f.error)) {
        app.printer.hint(
            &quiet,
            &format!(
                "the disk holding {} is full: free space (hf-cache-sync prune) or pull into \
                 another --cache-dir, then run the same command again",
                cache_dir.display()
            ),
        );
    } else {
        app.printer.hint(
            &quiet,
            "run the same command again to retry; verified blobs are kept",
        );
    }
}

/// Failures are kept as text in summaries; a full disk shows in it as the OS says it.
fn is_disk_full(error: &str) -> bool {
    let text = error.to_lowercase();
    text.contains("no space left on device") || text.contains("disk quota exceeded")
}
