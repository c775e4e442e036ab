//! `gc --remote`: deletes blobs under the prefix that no manifest names, and multipart uploads
//! left unfinished, once they are older than the grace period. The engine
//! ([`crate::transfer::lifecycle`]) decides what goes, on complete knowledge only; this file asks,
//! deletes and reports every key.

use anyhow::Result;
use serde::Serialize;

use super::deletion::refuse_without_consent;
use super::deletion::remote::{delete_objects, may_delete, removal_lines, RemoteObject, Removal};
use super::{parse_age, App, Failure, Outcome};
use crate::config::ConfigError;
use crate::manifest::Layout;
use crate::remote::bucket_lock::{BucketLock, BucketLockError};
use crate::remote::{OpenUploadInfo, Remote};
use crate::report::timestamp;
use crate::text::plural;
use crate::transfer::lifecycle::{gc_blockers, lock_for_gc, plan_gc, GcPlan, DEFAULT_GRACE};

#[derive(Debug)]
pub struct GcOptions {
    pub remote: super::RemoteChoice,
    pub grace: Option<String>,
    pub dry_run: bool,
    pub yes: bool,
}

/// An unfinished multipart upload aborted (or, for a dry run, to abort).
#[derive(Debug, Serialize)]
pub struct UploadEntry {
    pub key: String,
    pub upload_id: String,
    pub initiated: String,
}

#[derive(Debug, Serialize)]
pub struct GcSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub grace: String,
    /// Manifests read: every one, since any of them may name a blob.
    pub manifests: usize,
    /// Listed blobs some manifest names.
    pub referenced_blobs: usize,
    /// Blobs no manifest names, kept because they are younger than the grace period.
    pub recent_blobs: usize,
    /// Blobs deleted, by key.
    #[serde(flatten)]
    pub removal: Removal,
    pub uploads: Vec<UploadEntry>,
}

pub async fn run(app: &App, opts: GcOptions) -> Result<Outcome> {
    if !opts.remote.asked() {
        return Err(ConfigError::Usage {
            message: "gc works on the remote only: pass --remote".into(),
            hint: "`hf-cache-sync prune` frees the local cache".into(),
        }
        .into());
    }
    let grace_text = opts.grace.clone().unwrap_or_else(|| DEFAULT_GRACE.into());
    let grace = parse_age(&grace_text)?;
    refuse_without_consent(opts.yes, opts.dry_run)?;
    let (remote, layout) = app.open_remote(opts.remote.url())?;
    if opts.dry_run {
        let now = std::time::SystemTime::now();
        let blockers = gc_blockers(&remote, &layout).await?.blocking;
        if !blockers.is_empty() {
            let held: Vec<String> = blockers.iter().map(|l| l.describe(now)).collect();
            app.printer.note(&format!(
                "a real run now would delete nothing: other runs are writing:\n  {}",
                held.join("\n  ")
            ));
        }
        return collect(app, &opts, &remote, &layout, grace, grace_text, None).await;
    }
    let warn = |m: &str| app.printer.warn(m);
    let lock = lock_for_gc(&remote, &layout, &warn).await?;
    let result = collect(app, &opts, &remote, &layout, grace, grace_text, Some(&lock)).await;
    let key = lock.key().to_string();
    if let Err(e) = lock.release().await {
        warn(&format!(
            "cannot remove the lock {key} ({e}); others ignore it once it is stale"
        ));
    }
    result
}

/// Plans, asks, deletes and reports; under the bucket's exclusive `lock` unless a dry run.
async fn collect(
    app: &App,
    opts: &GcOptions,
    remote: &Remote,
    layout: &Layout,
    grace: std::time::Duration,
    grace_text: String,
    lock: Option<&BucketLock>,
) -> Result<Outcome> {
    let plan = plan_gc(remote, layout, grace).await?;
    let doomed: Vec<RemoteObject> = plan.blobs.iter().map(RemoteObject::from).collect();
    let mut summary = GcSummary {
        command: "gc",
        remote: remote.url(),
        dry_run: opts.dry_run,
        grace: grace_text,
        manifests: plan.manifests,
        referenced_blobs: plan.referenced,
        recent_blobs: plan.recent,
        removal: Removal::planned(Vec::new()),
        uploads: Vec::new(),
    };
    if opts.dry_run || (doomed.is_empty() && plan.uploads.is_empty()) {
        summary.removal = Removal::planned(doomed);
        summary.uploads = plan.uploads.iter().map(upload_entry).collect();
        app.printer.result(&summary, || human(&summary));
        return Ok(Outcome::Success);
    }
    if !may_delete(
        app,
        remote,
        layout,
        &lines(&plan),
        &question(&plan, &summary.remote),
        opts.yes,
    )
    .await?
    {
        return Ok(Outcome::Failed);
    }
    if let Some(lock) = lock {
        lock.check().await.map_err(BucketLockError::into_anyhow)?;
    }
    summary.removal = delete_objects(app, remote, &doomed).await?;
    for upload in &plan.uploads {
        match remote.abort_upload(upload).await {
            Ok(()) => summary.uploads.push(upload_entry(upload)),
            Err(e) => summary.removal.failures.push(Failure::new(
                format!("upload {} of {}", upload.upload_id, upload.key),
                e,
            )),
        }
    }
    let outcome = Outcome::from_failures(summary.removal.failures.len());
    app.printer.result(&summary, || human(&summary));
    Ok(outcome)
}

fn upload_entry(u: &OpenUploadInfo) -> UploadEntry {
    UploadEntry {
        key: u.key.clone(),
        upload_id: u.upload_id.clone(),
        initiated: timestamp(u.initiated),
    }
}

/// What the question lists: every blob and upload that goes.
fn lines(plan: &GcPlan) -> Vec<String> {
    let mut lines: Vec<String> = plan.blobs.iter().map(|o| format!("  {}", o.key)).collect();
    lines.extend(
        plan.uploads
            .iter()
            .map(|u| format!("  {} (unfinished upload {})", u.key, u.upload_id)),
    );
    lines
}

fn question(plan: &GcPlan, place: &str) -> String {
    let bytes: u64 = plan.blobs.iter().map(|o| o.size).sum();
    format!(
        "Delete {} ({}) and abort {} on {place}?",
        plural(plan.blobs.len(), "unreferenced blob", "unreferenced blobs"),
        crate::report::human_bytes(bytes),
        plural(
            plan.uploads.len(),
            "unfinished upload",
            "unfinished uploads"
        ),
    )
}

fn human(s: &GcSummary) -> String {
    let mut lines = removal_lines(
        &s.removal,
        s.dry_run,
        "unreferenced blob",
        "unreferenced blobs",
        false,
    );
    let verb = if s.dry_run { "Would abort" } else { "Aborted" };
    if s.dry_run {
        lines.extend(
            s.uploads
                .iter()
                .map(|u| format!("  {} (unfinished upload)", u.key)),
        );
    }
    lines.push(format!(
        "{verb} {} older than {}.",
        plural(s.uploads.len(), "unfinished upload", "unfinished uploads"),
        s.grace
    ));
    lines.push(format!(
        "Kept {} named by {} and {} younger than {}.",
        plural(s.referenced_blobs, "blob", "blobs"),
        plural(s.manifests, "manifest", "manifests"),
        plural(s.recent_blobs, "unreferenced blob", "unreferenced blobs"),
        s.grace
    ));
    lines.push(format!("Remote: {}", s.remote));
    lines.join("\n")
}
