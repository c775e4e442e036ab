//! `gc --remote`: blobs under the prefix that no manifest names, and multipart uploads left
//! unfinished, deleted once older than the grace period. [`plan`] takes the bucket's exclusive
//! lock (not for a dry run) and decides what goes, on complete knowledge only
//! ([`crate::transfer::lifecycle`]); the command asks; [`GcRun::execute`] deletes under the
//! lock, checked fresh first; [`GcRun::release`] gives the lock back whatever happened.

use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;

use super::remote_delete::{delete_objects, RemoteObject, Removal};
use super::Env;
use crate::failure::Failure;
use crate::manifest::Layout;
use crate::remote::bucket_lock::{BucketLock, BucketLockError};
use crate::remote::{OpenUploadInfo, Remote};
use crate::report::timestamp;
use crate::transfer::lifecycle::{gc_blockers, lock_for_gc, plan_gc, GcPlan};

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

/// A gc planned: what goes, under the lock taken for it.
pub struct GcRun {
    pub remote: Remote,
    pub layout: Layout,
    pub plan: GcPlan,
    /// The summary as planned: for a dry run (or nothing to delete), the final one.
    pub summary: GcSummary,
    /// For stderr: the runs a real run would be refused by (a dry run), a batch delete refused.
    pub notes: Vec<String>,
    /// For stderr: locks left by killed runs removed, a lock that could not be given back.
    pub warnings: Vec<String>,
    lock: Option<BucketLock>,
}

/// Opens the remote, takes the exclusive lock (unless `dry_run`) and plans. `grace` as given,
/// parsed into `age`.
pub async fn plan(
    env: &Env<'_>,
    remote_flag: Option<&std::ffi::OsStr>,
    grace: (String, std::time::Duration),
    dry_run: bool,
) -> Result<GcRun> {
    let (remote, layout) = env.open_remote(remote_flag)?;
    let mut notes = Vec::new();
    let mut warnings = Vec::new();
    let lock = if dry_run {
        let blockers = gc_blockers(&remote, &layout).await?.blocking;
        if !blockers.is_empty() {
            let now = SystemTime::now();
            let held: Vec<String> = blockers.iter().map(|l| l.describe(now)).collect();
            notes.push(format!(
                "a real run now would delete nothing: other runs are writing:\n  {}",
                held.join("\n  ")
            ));
        }
        None
    } else {
        let said = std::sync::Mutex::new(Vec::new());
        let report = |m: &str| said.lock().expect("not poisoned").push(m.to_string());
        let lock = lock_for_gc(&remote, &layout, &report).await;
        warnings.extend(said.into_inner().expect("not poisoned"));
        Some(lock?)
    };
    let plan = match plan_gc(&remote, &layout, grace.1).await {
        Ok(plan) => plan,
        Err(e) => {
            if let Some(lock) = lock {
                // The error is what the user needs; a lock left behind goes stale on its own.
                let _ = lock.release().await;
            }
            return Err(e);
        }
    };
    let summary = GcSummary {
        command: "gc",
        remote: remote.url(),
        dry_run,
        grace: grace.0,
        manifests: plan.manifests,
        referenced_blobs: plan.referenced,
        recent_blobs: plan.recent,
        removal: Removal::planned(plan.blobs.iter().map(RemoteObject::from).collect()),
        uploads: plan.uploads.iter().map(upload_entry).collect(),
    };
    Ok(GcRun {
        remote,
        layout,
        plan,
        summary,
        notes,
        warnings,
        lock,
    })
}

impl GcRun {
    /// Whether there is anything to delete or abort.
    pub fn has_work(&self) -> bool {
        !(self.plan.blobs.is_empty() && self.plan.uploads.is_empty())
    }

    /// Deletes what the plan names, once the lock is checked still fresh (a gc whose lock went
    /// stale may be racing a push that took it for dead).
    pub async fn execute(&mut self) -> Result<()> {
        if let Some(lock) = &self.lock {
            lock.check().await.map_err(BucketLockError::into_anyhow)?;
        }
        let doomed: Vec<RemoteObject> = self.plan.blobs.iter().map(RemoteObject::from).collect();
        let removal = delete_objects(&self.remote, &doomed).await?;
        if let Some(why) = &removal.batch_refused {
            self.notes.push(format!(
                "the server refused a batch delete ({why}); deleting one object at a time"
            ));
        }
        self.summary.removal = removal;
        self.summary.uploads.clear();
        for upload in &self.plan.uploads {
            match self.remote.abort_upload(upload).await {
                Ok(()) => self.summary.uploads.push(upload_entry(upload)),
                Err(e) => self.summary.removal.failures.push(Failure::new(
                    format!("upload {} of {}", upload.upload_id, upload.key),
                    e,
                )),
            }
        }
        Ok(())
    }

    /// Gives the bucket lock back; one that cannot be removed is said (others ignore it once
    /// it is stale).
    pub async fn release(&mut self) {
        if let Some(lock) = self.lock.take() {
            let key = lock.key().to_string();
            if let Err(e) = lock.release().await {
                self.warnings.push(format!(
                    "cannot remove the lock {key} ({e}); others ignore it once it is stale"
                ));
            }
        }
    }
}

fn upload_entry(u: &OpenUploadInfo) -> UploadEntry {
    UploadEntry {
        key: u.key.clone(),
        upload_id: u.upload_id.clone(),
        initiated: timestamp(u.initiated),
    }
}
