//! `push`: one LIST of the remote's blobs, then the missing blobs (verified as they are read),
//! then each revision's manifest, then refs. A revision is published only when every blob it
//! names is on the remote.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;
use bytes::Bytes;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::{
    require_repos, scan_existing, short, App, Failure, Outcome, RepoFilter, RepoRef,
    TransferOptions,
};
use crate::cache::hash::sha256_file;
use crate::cache::heuristics::{is_likely_gated, is_pointer_file};
use crate::cache::scan::{FileSource, Repo};
use crate::config::ConfigError;
use crate::manifest::{
    parse_ref_body, Layout, Manifest, ManifestFile, MAX_MANIFEST_BYTES, MAX_REF_BYTES,
};
use crate::remote::{BlobSource, ObjectInfo, Remote, RemoteError, TransferCtx, TransferError};
use crate::report::human_bytes;

pub struct PushOptions {
    pub repos: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub transfer: TransferOptions,
}

#[derive(Debug, Default, Serialize)]
pub struct PushSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub repos: usize,
    pub revisions: usize,
    pub uploaded: usize,
    pub skipped_existing: usize,
    pub skipped_gated: usize,
    pub skipped_pointer: usize,
    pub failed: usize,
    pub bytes_uploaded: u64,
    pub manifests: usize,
    pub manifests_unchanged: usize,
    pub refs: usize,
    pub refs_unchanged: usize,
    pub seconds: f64,
    pub failures: Vec<Failure>,
}

/// A revision ready to publish: its manifest and the blobs it needs.
struct RevisionPlan {
    repo_index: usize,
    manifest: Manifest,
    blobs: BTreeSet<String>,
}

pub async fn run(app: &App, opts: PushOptions) -> Result<Outcome> {
    let started = Instant::now();
    let filter = RepoFilter::new(&opts.include, &opts.exclude)?;
    let wanted: Vec<RepoRef> = opts.repos.iter().map(|r| RepoRef::parse(r)).collect();
    let (remote, layout) = app.open_remote(opts.transfer.remote.as_deref())?;
    let ctx = app.transfer_ctx(&opts.transfer, "push");
    let progress = ctx.progress.clone();

    let scan = scan_existing(&app.settings.cache_dir).await?;
    for w in &scan.warnings {
        app.printer.warn(progress.as_ref(), &w.to_string());
    }
    require_repos(&scan, &wanted)?;

    let mut summary = PushSummary {
        command: "push",
        remote: remote.describe(),
        dry_run: opts.transfer.dry_run,
        ..Default::default()
    };
    let repos: Vec<&Repo> = scan
        .repos
        .iter()
        .filter(|r| wanted.is_empty() || wanted.iter().any(|w| w.matches(r.repo_type, &r.repo_id)))
        .filter(|r| filter.matches(&r.repo_id))
        .collect();

    // Build every revision's manifest locally first.
    let sync_xet = app.settings.sync_xet;
    let allow_gated = app.settings.allow_gated;
    let mut sources: HashMap<String, BlobSource> = HashMap::new();
    let mut pointers: BTreeSet<String> = BTreeSet::new();
    let mut plans: Vec<RevisionPlan> = Vec::new();
    let mut pushed_repos: Vec<&Repo> = Vec::new();
    for repo in repos {
        if !allow_gated && is_likely_gated(repo) {
            summary.skipped_gated += 1;
            progress.log(&format!(
                "skipping {} (likely gated: its license asks users to accept terms); set team.allow_gated: true to push it",
                repo.repo_id
            ));
            continue;
        }
        let repo_index = pushed_repos.len();
        pushed_repos.push(repo);
        for rev in &repo.revisions {
            let mut files = Vec::new();
            let mut blobs = BTreeSet::new();
            let mut unreadable = false;
            for file in &rev.files {
                let (etag, path) = match &file.source {
                    FileSource::Blob(etag) => (etag.clone(), repo.blobs[etag].content_path.clone()),
                    FileSource::Copy(path) => {
                        let p = path.clone();
                        match tokio::task::spawn_blocking(move || sha256_file(&p)).await? {
                            Ok((etag, _)) => (etag, path.clone()),
                            Err(e) => {
                                summary.failures.push(Failure {
                                    item: format!(
                                        "{}@{}/{}",
                                        repo.repo_id,
                                        short(&rev.commit),
                                        file.path
                                    ),
                                    error: format!("cannot read {}: {e}", path.display()),
                                });
                                unreadable = true;
                                continue;
                            }
                        }
                    }
                };
                if !sync_xet && (pointers.contains(&etag) || is_pointer_file(&path, file.size)) {
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
            // A manifest missing a file it should list would mislead every puller.
            if files.is_empty() || unreadable {
                continue;
            }
            plans.push(RevisionPlan {
                repo_index,
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
    summary.repos = pushed_repos.len();
    summary.revisions = plans.len();
    summary.skipped_pointer = pointers.len();

    // Multipart uploads a killed push left open cost storage until aborted. The sweep and the
    // one LIST that answers which blobs exist (no HEAD per blob) go out together.
    let blobs_prefix = layout.blobs_prefix();
    let sweep = async {
        if opts.transfer.dry_run {
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
        Some(Err(e)) => app.printer.warn(
            progress.as_ref(),
            &format!("cannot list unfinished uploads: {e}"),
        ),
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
    for (etag, src) in sources {
        if existing.contains_key(&etag) {
            summary.skipped_existing += 1;
        } else {
            to_upload.push(src);
        }
    }
    // Big blobs first: they set the run's length, small ones fill the gaps.
    to_upload.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.etag.cmp(&b.etag)));

    let mut failed_blobs: BTreeSet<String> = BTreeSet::new();
    if opts.transfer.dry_run {
        summary.uploaded = to_upload.len();
        summary.bytes_uploaded = to_upload.iter().map(|s| s.size).sum();
    } else {
        let (uploaded, bytes, failures) = upload_all(&remote, &layout, &ctx, to_upload).await?;
        summary.uploaded = uploaded;
        summary.bytes_uploaded = bytes;
        for (etag, error) in failures {
            failed_blobs.insert(etag.clone());
            summary.failures.push(Failure {
                item: format!("blob {etag}"),
                error,
            });
        }
    }
    summary.failed = failed_blobs.len();

    // Manifests of revisions whose blobs are all there, then refs pointing at them.
    let publishable: Vec<&RevisionPlan> = plans
        .iter()
        .filter(|p| p.blobs.is_disjoint(&failed_blobs))
        .collect();
    for p in plans.iter().filter(|p| !p.blobs.is_disjoint(&failed_blobs)) {
        summary.failures.push(Failure {
            item: format!("{}@{}", p.manifest.repo, short(&p.manifest.revision)),
            error: "not published: some of its blobs failed to upload".into(),
        });
    }
    let published = publish_manifests(
        &remote,
        &layout,
        &ctx,
        &publishable,
        opts.transfer.dry_run,
        &mut summary,
    )
    .await?;
    publish_refs(
        &remote,
        &layout,
        &ctx,
        &pushed_repos,
        &published,
        opts.transfer.dry_run,
        &mut summary,
    )
    .await?;

    progress.finish();
    summary.seconds = started.elapsed().as_secs_f64();
    let outcome = Outcome::from_failures(summary.failures.len());
    app.printer.result(&summary, || human_summary(&summary));
    Ok(outcome)
}

/// Unfinished uploads younger than this may belong to a push still running elsewhere.
const DEFAULT_STALE_UPLOAD_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

fn stale_upload_age() -> Result<std::time::Duration, ConfigError> {
    match crate::env::var(crate::env::EnvVars::STALE_UPLOAD_AGE) {
        Some(v) => humantime::parse_duration(v.trim()).map_err(|e| {
            ConfigError::Invalid(format!(
                "{}: invalid duration {v:?}: {e}",
                crate::env::EnvVars::STALE_UPLOAD_AGE
            ))
        }),
        None => Ok(DEFAULT_STALE_UPLOAD_AGE),
    }
}

type UploadResult = (usize, u64, Vec<(String, String)>);

/// Uploads concurrently. A fatal error (a read-only key, rejected credentials) stops new uploads
/// and is returned as the run's error.
async fn upload_all(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    jobs: Vec<BlobSource>,
) -> Result<UploadResult, RemoteError> {
    ctx.progress
        .add_total(jobs.len() as u64, jobs.iter().map(|j| j.size).sum());
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let fatal: Mutex<Option<RemoteError>> = Mutex::new(None);
    let fatal = &fatal;
    let results: Vec<(BlobSource, Result<(), String>)> = stream::iter(jobs)
        .map(|src| async move {
            if stop.load(Ordering::Relaxed) {
                return (
                    src,
                    Err("not attempted after an earlier fatal error".to_string()),
                );
            }
            let key = layout.blob_key(&src.etag);
            let result = remote.upload_blob(&src, &key, ctx).await;
            ctx.progress.item_done();
            match result {
                Ok(()) => (src, Ok(())),
                Err(TransferError::Remote(e)) if e.is_fatal() => {
                    stop.store(true, Ordering::Relaxed);
                    let text = e.to_string();
                    fatal.lock().expect("not poisoned").get_or_insert(e);
                    (src, Err(text))
                }
                Err(e) => (src, Err(error_text(&e))),
            }
        })
        .buffer_unordered(ctx.workers)
        .collect()
        .await;
    let mut uploaded = 0;
    let mut bytes = 0;
    let mut failures = Vec::new();
    for (src, r) in results {
        match r {
            Ok(()) => {
                uploaded += 1;
                bytes += src.size;
            }
            Err(e) => failures.push((src.etag, e)),
        }
    }
    if let Some(e) = fatal.lock().expect("not poisoned").take() {
        return Err(e);
    }
    failures.sort();
    Ok((uploaded, bytes, failures))
}

fn error_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Listed objects by key.
async fn listing(
    remote: &Remote,
    prefix: &str,
) -> Result<HashMap<String, ObjectInfo>, RemoteError> {
    Ok(remote
        .list(prefix)
        .await?
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect())
}

/// Why a manifest or ref was not written.
enum PublishError {
    Remote(RemoteError),
    Refused(String),
}

impl From<RemoteError> for PublishError {
    fn from(e: RemoteError) -> Self {
        PublishError::Remote(e)
    }
}

/// Files publish failures in the summary; a fatal remote error ends the run instead.
fn record(
    summary: &mut PushSummary,
    item: String,
    result: Result<bool, PublishError>,
    unchanged: fn(&mut PushSummary) -> &mut usize,
    written: fn(&mut PushSummary) -> &mut usize,
) -> Result<(), RemoteError> {
    match result {
        Ok(true) => *written(summary) += 1,
        Ok(false) => *unchanged(summary) += 1,
        Err(PublishError::Remote(e)) if e.is_fatal() => return Err(e),
        Err(PublishError::Remote(e)) => summary.failures.push(Failure {
            item,
            error: e.to_string(),
        }),
        Err(PublishError::Refused(error)) => summary.failures.push(Failure { item, error }),
    }
    Ok(())
}

/// Whether the remote already holds what we would write, or another repo's data.
enum Existing {
    Absent,
    Same,
    Ours,
    Foreign(String),
}

fn describe_owner(m: &Manifest) -> String {
    format!("{} {}", m.repo_type, m.repo)
}

async fn check_manifest(
    remote: &Remote,
    key: &str,
    ours: &Manifest,
    body: &[u8],
) -> Result<Existing, RemoteError> {
    let Some(current) = remote.get(key, MAX_MANIFEST_BYTES).await? else {
        return Ok(Existing::Absent);
    };
    if current == body {
        return Ok(Existing::Same);
    }
    match serde_json::from_slice::<Manifest>(&current) {
        Ok(m) if m.repo != ours.repo || m.repo_type != ours.repo_type => {
            Ok(Existing::Foreign(describe_owner(&m)))
        }
        _ => Ok(Existing::Ours),
    }
}

/// Writes manifests; returns (repo index, commit) of every revision now published.
async fn publish_manifests(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    plans: &[&RevisionPlan],
    dry_run: bool,
    summary: &mut PushSummary,
) -> Result<BTreeSet<(usize, String)>> {
    let existing = listing(remote, &layout.manifests_prefix()).await?;
    let existing = &existing;
    let results: Vec<(usize, String, Result<bool, PublishError>)> = stream::iter(plans.iter())
        .map(|plan| async move {
            let m = &plan.manifest;
            let key = layout.manifest_key(&m.repo, &m.revision);
            let body = m.to_json_bytes();
            let state = match existing.get(&key) {
                // The listing's checksum proves it is already there, byte for byte.
                Some(o) if o.holds(&body) => Existing::Same,
                Some(_) => match check_manifest(remote, &key, m, &body).await {
                    Ok(s) => s,
                    Err(e) => return (plan.repo_index, m.revision.clone(), Err(e.into())),
                },
                None => Existing::Absent,
            };
            let result = match state {
                Existing::Same => Ok(false),
                Existing::Foreign(owner) => Err(PublishError::Refused(format!(
                    "remote manifest {key} belongs to {owner}; refusing to overwrite it"
                ))),
                Existing::Absent | Existing::Ours if dry_run => Ok(true),
                Existing::Absent | Existing::Ours => remote
                    .put(&key, Bytes::from(body))
                    .await
                    .map(|_| true)
                    .map_err(PublishError::from),
            };
            (plan.repo_index, m.revision.clone(), result)
        })
        .buffer_unordered(ctx.workers)
        .collect()
        .await;
    let mut published = BTreeSet::new();
    for (repo_index, commit, result) in results {
        let repo_id = &plans
            .iter()
            .find(|p| p.repo_index == repo_index)
            .expect("plan")
            .manifest
            .repo;
        if result.is_ok() {
            published.insert((repo_index, commit.clone()));
        }
        let item = format!("{repo_id}@{}", short(&commit));
        record(
            summary,
            item,
            result,
            |s| &mut s.manifests_unchanged,
            |s| &mut s.manifests,
        )?;
    }
    Ok(published)
}

async fn publish_refs(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    repos: &[&Repo],
    published: &BTreeSet<(usize, String)>,
    dry_run: bool,
    summary: &mut PushSummary,
) -> Result<()> {
    let existing = listing(remote, &layout.refs_prefix()).await?;
    let mut jobs: Vec<(&Repo, &String, &String)> = Vec::new();
    for (index, repo) in repos.iter().enumerate() {
        for (name, commit) in &repo.refs {
            if published.contains(&(index, commit.clone())) {
                jobs.push((repo, name, commit));
            }
        }
    }
    let existing = &existing;
    let results: Vec<(String, Result<bool, PublishError>)> = stream::iter(jobs)
        .map(|(repo, name, commit)| async move {
            let key = layout.ref_key(&repo.repo_id, name);
            let item = format!("{} ref {name}", repo.repo_id);
            let result = async {
                if let Some(listed) = existing.get(&key) {
                    if listed.holds(commit.as_bytes()) {
                        return Ok(false);
                    }
                    let current = remote.get(&key, MAX_REF_BYTES).await?;
                    let current = current.as_deref().and_then(parse_ref_body);
                    if current.as_deref() == Some(commit.as_str()) {
                        return Ok(false);
                    }
                    // Never silently take over another repo's ref (keys are ambiguous).
                    if let Some(old) = current {
                        let mkey = layout.manifest_key(&repo.repo_id, &old);
                        if let Ok(Some(bytes)) = remote.get(&mkey, MAX_MANIFEST_BYTES).await {
                            if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                                if m.repo != repo.repo_id || m.repo_type != repo.repo_type.as_str()
                                {
                                    return Err(PublishError::Refused(format!(
                                        "remote ref {key} belongs to {}; refusing to overwrite it",
                                        describe_owner(&m)
                                    )));
                                }
                            }
                        }
                    }
                }
                if dry_run {
                    return Ok(true);
                }
                remote
                    .put(&key, Bytes::from(commit.clone().into_bytes()))
                    .await
                    .map(|_| true)
                    .map_err(PublishError::from)
            }
            .await;
            (item, result)
        })
        .buffer_unordered(ctx.workers)
        .collect()
        .await;
    for (item, result) in results {
        record(
            summary,
            item,
            result,
            |s| &mut s.refs_unchanged,
            |s| &mut s.refs,
        )?;
    }
    Ok(())
}

fn human_summary(s: &PushSummary) -> String {
    let verb = if s.dry_run {
        "Would upload"
    } else {
        "Uploaded"
    };
    let mut lines = vec![format!(
        "{verb} {} blobs ({}), skipped {} already on the remote; {} manifests and {} refs {} ({} and {} unchanged); {} repos, {} revisions in {:.1}s",
        s.uploaded,
        human_bytes(s.bytes_uploaded),
        s.skipped_existing,
        s.manifests,
        s.refs,
        if s.dry_run { "to write" } else { "written" },
        s.manifests_unchanged,
        s.refs_unchanged,
        s.repos,
        s.revisions,
        s.seconds
    )];
    if s.skipped_gated > 0 {
        lines.push(format!("Skipped {} likely-gated repos", s.skipped_gated));
    }
    if s.skipped_pointer > 0 {
        lines.push(format!(
            "Skipped {} LFS/Xet pointer files (set cache.sync_xet: true to push them)",
            s.skipped_pointer
        ));
    }
    if !s.failures.is_empty() {
        lines.push(format!("{} failed:", s.failures.len()));
        for f in &s.failures {
            lines.push(format!("  {}: {}", f.item, f.error));
        }
    }
    lines.join("\n")
}
