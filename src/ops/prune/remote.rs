//! `prune --remote --detached`: the manifests no remote ref points at that were written more
//! than `older_than` ago (a push writes a manifest before its refs), deleted with their tree
//! listings. Their blobs stay until `gc --remote` finds no other manifest names them.

use std::time::Duration;

use anyhow::Result;
use serde::Serialize;

use crate::manifest::Layout;
use crate::ops::remote_delete::{delete_objects, RemoteObject, Removal};
use crate::remote::Remote;
use crate::transfer::lifecycle::plan_detached;

#[derive(Debug, Serialize)]
pub struct RemotePruneReport {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub older_than: String,
    /// Manifests a ref points at.
    pub attached: usize,
    /// Detached manifests kept because they are younger than `older_than`.
    pub recent: usize,
    /// How many of the objects deleted are tree listings (each deleted with its manifest).
    pub listings: usize,
    /// Manifests and their tree listings deleted, by key.
    #[serde(flatten)]
    pub removal: Removal,
}

/// A remote prune planned: the manifests (and listings) to delete.
pub struct RemotePrune {
    pub doomed: Vec<RemoteObject>,
    report: RemotePruneReport,
}

/// Finds the detached manifests written more than `older_than` (the text as given, and the age
/// it reads as) ago.
pub async fn plan_remote_prune(
    remote: &Remote,
    layout: &Layout,
    older_than: (String, Duration),
) -> Result<RemotePrune> {
    let plan = plan_detached(remote, layout, older_than.1).await?;
    let doomed: Vec<RemoteObject> = plan.manifests.iter().map(RemoteObject::from).collect();
    let report = RemotePruneReport {
        command: "prune",
        remote: remote.url(),
        dry_run: false,
        older_than: older_than.0,
        attached: plan.attached,
        recent: plan.recent,
        listings: plan.listings,
        removal: Removal::default(),
    };
    Ok(RemotePrune { doomed, report })
}

impl RemotePrune {
    /// The remote, as people read it.
    pub fn place(&self) -> &str {
        &self.report.remote
    }

    /// Deletes what was planned (for a dry run, or when nothing is, reports it).
    pub async fn execute(self, remote: &Remote, dry_run: bool) -> Result<RemotePruneReport> {
        let RemotePrune { doomed, mut report } = self;
        report.dry_run = dry_run;
        report.removal = if dry_run || doomed.is_empty() {
            Removal::planned(doomed)
        } else {
            delete_objects(remote, &doomed).await?
        };
        Ok(report)
    }
}
