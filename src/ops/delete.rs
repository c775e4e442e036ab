//! What `rm` and `prune` share around a local deletion: the cache scanned under every repo's
//! lock, and the planned deletion carried out on a blocking thread that stops between two items
//! when asked. Planning itself is [`crate::cache::delete::Planner`]'s.

use std::collections::HashSet;
use std::path::Path;

use anyhow::Result;

use crate::cache::delete::{Planner, Report};
use crate::cache::lock::RepoLockSet;
use crate::cache::scan::{self, CacheScan};
use crate::cancel::Cancel;

/// The cache scanned while every repo of it is locked, so no pull changes a repo between the
/// scan and the deletion.
pub struct Locked {
    pub scan: CacheScan,
    locks: RepoLockSet,
}

impl Locked {
    /// Locks every repo of the cache, then scans it, on a blocking thread. The scan's warnings
    /// are [`CacheScan::warnings`]; a cache dir that does not exist is `!scan.exists`.
    pub async fn take(cache_dir: &Path) -> Result<Locked> {
        let cache_dir = cache_dir.to_path_buf();
        let (locks, scan) = tokio::task::spawn_blocking(move || {
            let locks = RepoLockSet::take(&cache_dir);
            (locks, scan::scan(&cache_dir))
        })
        .await?;
        Ok(Locked { scan, locks })
    }

    /// The repo folders a pull is writing into: nothing of theirs is deleted.
    pub fn busy(&self) -> &HashSet<String> {
        self.locks.busy()
    }

    /// Plans on a blocking thread with `plan`, which gets the scan and the busy folders; the
    /// locks stay held for the deletion.
    pub async fn plan<T: Send + 'static>(
        self,
        plan: impl FnOnce(CacheScan, &HashSet<String>) -> (Planner, T) + Send + 'static,
    ) -> Result<(Deletion, T)> {
        let Locked { scan, locks } = self;
        let busy = locks.busy().clone();
        let (planner, extra) = tokio::task::spawn_blocking(move || plan(scan, &busy)).await?;
        Ok((Deletion { planner, locks }, extra))
    }
}

/// A planned deletion, its repos still locked.
pub struct Deletion {
    planner: Planner,
    locks: RepoLockSet,
}

impl Deletion {
    /// What it would remove.
    pub fn preview(&self) -> Report {
        self.planner.preview()
    }

    /// The blob bytes it frees.
    pub fn blob_bytes_freed(&self) -> u64 {
        self.planner.blob_bytes_freed()
    }

    /// Carries it out on a blocking thread, holding the repo locks until it is done. `cancel`
    /// stops it between two items; the report then says it was interrupted.
    pub async fn execute(self, cancel: &Cancel) -> Result<Report> {
        let cancel = cancel.clone();
        let Deletion { planner, locks } = self;
        let report = tokio::task::spawn_blocking(move || {
            let report = planner.execute(&|| cancel.requested());
            drop(locks);
            report
        })
        .await?;
        Ok(report)
    }
}
