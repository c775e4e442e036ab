//! The push engine: build each revision's manifest from the cache scan, upload the blobs the
//! remote lacks (verified as they are read) through the pool, then publish each revision's tree
//! listing (when the cache has a trusted one), manifests, then refs. A revision is published
//! only when every blob it names is on the remote. `push`, `watch` and write-through drive it;
//! `push` and `watch` each under the cache's push lock ([`lock_cache`]).

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use anyhow::Result;

mod publish;

use super::pool;
pub use super::push_summary::PushSummary;
use super::PlannedRevision;
use crate::cache::hash::sha256_file;
use crate::cache::heuristics::{is_likely_gated, is_pointer_file};
use crate::cache::lock::{LockError, PushLock};
use crate::cache::push_lock_path;
use crate::cache::scan::{FileSource, Repo, TreeFile};
use crate::cache::trees::TreeListing;
use crate::config::ConfigError;
use crate::failure::Failure;
use crate::manifest::{Layout, Manifest, ManifestFile};
use crate::net::TransferCtx;
use crate::remote::bucket_lock::{BucketLock, BucketLockError, LockKind};
use crate::remote::{BlobSource, Remote};
use crate::report::{lock_waiter, Progress};
use crate::text::short;
use crate::transfer::TransferError;

/// A revision ready to publish: its manifest and the blobs it needs.
pub(super) struct RevisionPlan {
    repo_index: usize,
    manifest: Manifest,
    blobs: BTreeSet<String>,
    /// The cache's tree listing of the revision, as its file holds it, when trusted.
    listing: Option<Vec<u8>>,
}

/// What to push, built from the scan before anything is sent.
pub struct PushPlan<'a> {
    /// The repos pushed (likely-gated ones left out unless allowed).
    repos: Vec<&'a Repo>,
    revisions: Vec<RevisionPlan>,
    /// Every blob the revisions name, by etag.
    sources: HashMap<String, BlobSource>,
}

/// What the plan leaves out: likely-gated repos and LFS/Xet pointer files unless allowed.
#[derive(Debug, Clone, Copy)]
pub struct PushPolicy {
    pub allow_gated: bool,
    pub sync_xet: bool,
}

/// Takes the push lock of `cache_dir`, saying so while another push of it (a `watch`, a push in
/// another terminal) holds it. Take it before the scan the push is planned from.
pub async fn lock_cache(cache_dir: &Path, ctx: &TransferCtx) -> Result<PushLock, LockError> {
    let timeout = ctx.lock_timeout;
    let on_wait = lock_waiter(
        ctx.progress.clone(),
        push_lock_path(cache_dir),
        "another push of this cache (a watch, or a push elsewhere) is running".into(),
        timeout,
    );
    let dir = cache_dir.to_path_buf();
    crate::task::blocking(move || PushLock::wait(&dir, timeout, on_wait)).await
}

/// Plans and pushes `repos` (from a scan taken under [`lock_cache`]): [`plan`], then [`execute`].
#[allow(clippy::too_many_arguments)]
pub async fn push_repos(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    repos: Vec<&Repo>,
    policy: PushPolicy,
    dry_run: bool,
    summary: &mut PushSummary,
    warn: &dyn Fn(&str),
) -> Result<()> {
    let plan = plan(repos, policy, ctx.progress.as_ref(), summary).await?;
    execute(remote, layout, ctx, plan, dry_run, summary, warn).await
}

/// Builds every revision's manifest from the scanned repos. Files that cannot be read are
/// failures in `summary`, and their revision is not planned: a manifest missing a file it
/// should list would mislead every puller.
pub async fn plan<'a>(
    repos: Vec<&'a Repo>,
    policy: PushPolicy,
    progress: &dyn Progress,
    summary: &mut PushSummary,
) -> Result<PushPlan<'a>> {
    let mut sources: HashMap<String, BlobSource> = HashMap::new();
    let mut pointers: BTreeSet<String> = BTreeSet::new();
    let mut revisions: Vec<RevisionPlan> = Vec::new();
    let mut pushed: Vec<&Repo> = Vec::new();
    for repo in repos {
        if !policy.allow_gated && is_likely_gated(repo) {
            summary.skipped_gated += 1;
            progress.log(&format!(
                "skipping {} (likely gated: its license asks users to accept terms); set team.allow_gated: true to push it",
                repo.repo_id
            ));
            continue;
        }
        let repo_index = pushed.len();
        pushed.push(repo);
        for rev in &repo.revisions {
            let mut files = Vec::new();
            let mut blobs = BTreeSet::new();
            let mut unreadable = false;
            for file in &rev.files {
                let (etag, path) = match &file.source {
                    FileSource::Blob(etag) => (etag.clone(), repo.blobs[etag].content_path.clone()),
                    FileSource::Copy(path) => {
                        let p = path.clone();
                        match crate::task::blocking(move || sha256_file(&p)).await {
                            Ok((etag, _)) => (etag, path.clone()),
                            Err(e) => {
                                let item = format!(
                                    "{}@{}/{}",
                                    repo.repo_id,
                                    short(&rev.commit),
                                    file.path
                                );
                                summary.failures.push(Failure::message(
                                    item,
                                    format!("cannot read {}: {e}", path.display()),
                                ));
                                unreadable = true;
                                continue;
                            }
                        }
                    }
                };
                if !policy.sync_xet
                    && (pointers.contains(&etag) || is_pointer_file(&path, file.size))
                {
                    pointers.insert(etag);
                    continue;
                }
                sources.entry(etag.clone()).or_insert_with(|| BlobSource {
                    etag: etag.clone(),
                    path,
                    size: file.size,
                });
                blobs.insert(etag.clone());
                files.push(ManifestFile {
                    path: file.path.clone(),
                    blob: etag,
                    size: file.size,
                });
            }
            if files.is_empty() || unreadable {
                continue;
            }
            let listing = match repo.trees.get(&rev.commit) {
                Some(TreeFile {
                    path,
                    listing: Some(_),
                }) => {
                    let p = path.clone();
                    crate::task::blocking(move || std::fs::read(p))
                        .await
                        .ok()
                        .filter(|b| TreeListing::parse(b).is_ok())
                }
                _ => None,
            };
            revisions.push(RevisionPlan {
                repo_index,
                listing,
                manifest: Manifest {
                    repo: repo.repo_id.clone(),
                    revision: rev.commit.clone(),
                    repo_type: repo.repo_type.as_str().to_string(),
                    files,
                },
                blobs,
            });
        }
    }
    summary.repos = pushed.len();
    summary.revisions = revisions.len();
    summary.skipped_pointer = pointers.len();
    Ok(PushPlan {
        repos: pushed,
        revisions,
        sources,
    })
}

/// Sends what the plan needs and the remote lacks: blobs, then the manifests of revisions whose
/// blobs all made it, then their refs. A fatal remote error ends the run.
///
/// A real run holds a shared lock on the bucket from before it lists the blobs there until its
/// refs are written, so a gc cannot delete a blob it found and skipped; while a gc holds the
/// bucket it waits, at most the lock timeout.
pub async fn execute(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    plan: PushPlan<'_>,
    dry_run: bool,
    summary: &mut PushSummary,
    warn: &dyn Fn(&str),
) -> Result<()> {
    if dry_run {
        return send(remote, layout, ctx, plan, None, summary, warn).await;
    }
    let note = |m: &str| ctx.progress.log(m);
    let lock = BucketLock::acquire(remote, layout, LockKind::Shared, ctx.lock_timeout, &note)
        .await
        .map_err(BucketLockError::into_anyhow)?;
    let now = std::time::SystemTime::now();
    for stale in lock.stale() {
        warn(&format!(
            "ignoring a stale lock on the bucket: {}; delete it if that process is gone",
            stale.describe(now)
        ));
    }
    let result = send(remote, layout, ctx, plan, Some(&lock), summary, warn).await;
    let key = lock.key().to_string();
    if let Err(e) = lock.release().await {
        warn(&format!(
            "cannot remove the lock {key} ({e}); others ignore it once it is stale"
        ));
    }
    result
}

/// [`execute`]'s work, under `lock` unless a dry run.
async fn send(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    plan: PushPlan<'_>,
    lock: Option<&BucketLock>,
    summary: &mut PushSummary,
    warn: &dyn Fn(&str),
) -> Result<()> {
    let dry_run = lock.is_none();
    let progress = ctx.progress.clone();
    // Multipart uploads a killed push left open cost storage until aborted. The sweep and the
    // one LIST that answers which blobs exist (no HEAD per blob) go out together.
    let blobs_prefix = layout.blobs_prefix();
    let sweep = async {
        if dry_run {
            return Ok(None);
        }
        let grace = stale_upload_age()?;
        anyhow::Ok(Some(remote.abort_stale_uploads(&blobs_prefix, grace).await))
    };
    let (swept, listed) = tokio::join!(sweep, remote.list(&blobs_prefix));
    match swept? {
        None | Some(Ok(0)) => {}
        Some(Ok(n)) => progress.log(&format!(
            "aborted {n} multipart uploads left unfinished by an earlier run"
        )),
        Some(Err(e)) if e.is_fatal() => return Err(e.into()),
        // A key allowed to write but not to list uploads: not worth failing the push.
        Some(Err(e)) => warn(&format!("cannot list unfinished uploads: {e}")),
    }
    let existing: HashMap<String, u64> = listed?
        .into_iter()
        .filter_map(|o| {
            layout
                .parse_blob_key(&o.key)
                .map(|e| (e.to_string(), o.size))
        })
        .collect();
    let mut to_upload: Vec<BlobSource> = Vec::new();
    for (etag, src) in plan.sources {
        if existing.contains_key(&etag) {
            summary.skipped_existing += 1;
        } else {
            to_upload.push(src);
        }
    }
    // Big blobs first: they set the run's length, small ones fill the gaps.
    to_upload.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.etag.cmp(&b.etag)));

    let mut failed_blobs: BTreeSet<String> = BTreeSet::new();
    if dry_run {
        summary.uploaded = to_upload.len();
        summary.bytes_uploaded = to_upload.iter().map(|s| s.size).sum();
        summary.planned = Some(planned(&plan.repos, &plan.revisions, &to_upload, &existing));
    } else {
        let (uploaded, bytes, failures) = upload_all(remote, layout, ctx, to_upload).await?;
        summary.uploaded = uploaded;
        summary.bytes_uploaded = bytes;
        for (etag, f) in failures {
            failed_blobs.insert(etag);
            summary.failures.push(f);
        }
    }
    summary.failed = failed_blobs.len();

    // Manifests of revisions whose blobs are all there, then refs pointing at them.
    let (publishable, blocked): (Vec<&RevisionPlan>, Vec<&RevisionPlan>) = plan
        .revisions
        .iter()
        .partition(|p| p.blobs.is_disjoint(&failed_blobs));
    for p in blocked {
        summary.failures.push(Failure::message(
            format!("{}@{}", p.manifest.repo, short(&p.manifest.revision)),
            "not published: some of its blobs failed to upload",
        ));
    }
    // The blobs found on the remote are only still there if the lock held all along.
    if let Some(lock) = lock {
        lock.check().await.map_err(BucketLockError::into_anyhow)?;
    }
    publish::publish_all(
        remote,
        layout,
        ctx,
        &plan.repos,
        &publishable,
        dry_run,
        summary,
    )
    .await?;
    progress.finish();
    Ok(())
}

/// What each revision of the plan would upload, in plan order; a blob several revisions need
/// is listed under the first.
fn planned(
    repos: &[&Repo],
    revisions: &[RevisionPlan],
    to_upload: &[BlobSource],
    existing: &HashMap<String, u64>,
) -> Vec<PlannedRevision> {
    let mut unlisted: BTreeSet<&str> = to_upload.iter().map(|s| s.etag.as_str()).collect();
    revisions
        .iter()
        .map(|p| {
            let repo = repos[p.repo_index];
            let refs = repo.refs_to(&p.manifest.revision);
            PlannedRevision::new(
                &p.manifest,
                repo.repo_type,
                refs.into_iter().map(String::from).collect(),
                |etag, _| unlisted.remove(etag),
                |etag, _| existing.contains_key(etag),
            )
        })
        .collect()
}

/// Unfinished uploads younger than this may belong to a push still running elsewhere.
const DEFAULT_STALE_UPLOAD_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn stale_upload_age() -> Result<std::time::Duration, ConfigError> {
    match crate::env::var(crate::env::EnvVars::STALE_UPLOAD_AGE) {
        Some(v) => crate::config::parse_duration(&v).map_err(|e| ConfigError::Usage {
            message: format!("{}: {e}", crate::env::EnvVars::STALE_UPLOAD_AGE),
            hint: crate::config::DURATION_HINT.into(),
        }),
        None => Ok(DEFAULT_STALE_UPLOAD_AGE),
    }
}

/// Blobs uploaded, their bytes, and each failed blob's etag with why.
type UploadResult = (usize, u64, Vec<(String, Failure)>);

/// Uploads through the pool. A fatal error (a read-only key, rejected credentials) stops new
/// uploads and is returned as the run's error.
async fn upload_all(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    jobs: Vec<BlobSource>,
) -> Result<UploadResult, TransferError> {
    ctx.progress
        .add_total(jobs.len() as u64, jobs.iter().map(|j| j.size).sum());
    let mut ran = pool::run(jobs, ctx.workers, async |src| {
        let result = remote
            .upload_blob(src, &layout.blob_key(&src.etag), ctx)
            .await
            .map_err(TransferError::from);
        ctx.progress.item_done();
        result
    })
    .await;
    if let Some(fatal) = ran.take_fatal() {
        return Err(fatal);
    }
    let mut uploaded = 0;
    let mut bytes = 0;
    let mut failures = Vec::new();
    for (src, result) in ran.done {
        match result {
            Ok(()) => {
                uploaded += 1;
                bytes += src.size;
            }
            Err(e) => failures.push((
                src.etag.clone(),
                Failure::new(format!("blob {}", src.etag), e),
            )),
        }
    }
    failures.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((uploaded, bytes, failures))
}
