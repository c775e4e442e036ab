//! `verify --repair`: corrupt and missing local blobs fetched again from the remote, each under
//! huggingface_hub's lock and verified while it streams, then the cache checked again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Result;
use futures::stream::{self, StreamExt};

use super::local::structural_problems;
use super::{Problem, ProblemKind, VerifyOptions};
use crate::cache::lock_path;
use crate::cache::scan::{CacheScan, Repo};
use crate::cache::write::{ensure_repo_dirs, lock_blob, sync_dir, BlobWriter};
use crate::commands::{lock_waiter, scan_existing, App, TransferOptions};
use crate::manifest::Layout;
use crate::remote::{Remote, TransferCtx};
use crate::report::Progress;

/// What `--repair` needs: the remote to fetch from and the cache to write to.
pub(super) struct Fixer<'a> {
    pub(super) app: &'a App,
    pub(super) opts: &'a VerifyOptions,
    pub(super) remote: &'a Remote,
    pub(super) layout: &'a Layout,
    pub(super) cache_dir: &'a Path,
}

impl Fixer<'_> {
    /// Fetches the blobs of the repairable problems, then checks the cache again: returns what
    /// is still wrong and what was fixed. Fetched blobs were verified as they were written, so
    /// only the scan runs again, not the hashing.
    pub(super) async fn repair_and_recheck(
        &self,
        scan: &CacheScan,
        problems: Vec<Problem>,
        selected: &dyn Fn(&Repo) -> bool,
        whole_cache: bool,
    ) -> Result<(Vec<Problem>, Vec<Problem>)> {
        let targets: Vec<RepairTarget> = problems
            .iter()
            .filter(|p| p.kind.repairable())
            .map(|p| {
                let repo = scan
                    .repos
                    .iter()
                    .find(|r| Some(r.qualified_id()) == p.repo)
                    .expect("problems name scanned repos");
                RepairTarget {
                    repo: repo.qualified_id(),
                    repo_dir: repo.dir.clone(),
                    folder: repo.folder.clone(),
                    etag: p.etag.clone().expect("blob problems name their blob"),
                }
            })
            .collect();
        let outcomes = self.repair(targets).await;
        let id = |p: &Problem| {
            (
                p.repo.clone().unwrap_or_default(),
                p.etag.clone().unwrap_or_default(),
            )
        };

        let mut remaining = Vec::new();
        let mut repaired = Vec::new();
        for mut p in problems {
            // Everything else is found again (or not) by the new scan below.
            if !p.kind.repairable() {
                continue;
            }
            match outcomes.get(&id(&p)) {
                Some(Ok(())) => repaired.push(p),
                Some(Err(e)) => {
                    p.repair_error = Some(e.clone());
                    if p.kind != ProblemKind::MissingBlob {
                        remaining.push(p);
                    }
                }
                None => remaining.push(p),
            }
        }
        let rescan = scan_existing(self.cache_dir).await?;
        let chosen: Vec<usize> = (0..rescan.repos.len())
            .filter(|&i| selected(&rescan.repos[i]))
            .collect();
        for mut p in structural_problems(&rescan, &chosen, whole_cache) {
            if let Some(Err(e)) = outcomes.get(&id(&p)) {
                p.repair_error = Some(e.clone());
            }
            remaining.push(p);
        }
        Ok((remaining, repaired))
    }

    /// Fetches each target's blob from the remote (sizes from one LIST of `blobs/`), verified
    /// while it streams and renamed over the bad file only once it matches. Result per
    /// (repo, etag).
    async fn repair(
        &self,
        targets: Vec<RepairTarget>,
    ) -> HashMap<(String, String), Result<(), String>> {
        let (remote, layout) = (self.remote, self.layout);
        let mut outcomes = HashMap::new();
        let sizes: HashMap<String, u64> = match remote.list(&layout.blobs_prefix()).await {
            Ok(objects) => objects
                .iter()
                .filter_map(|o| Some((layout.parse_blob_key(&o.key)?.to_string(), o.size)))
                .collect(),
            Err(e) => {
                if let Some(h) = e.hint() {
                    eprintln!("hint: {h}");
                }
                let msg = format!("cannot list {}: {e}", remote.describe());
                for t in targets {
                    outcomes.insert((t.repo, t.etag), Err(msg.clone()));
                }
                return outcomes;
            }
        };
        let transfer = TransferOptions {
            workers: self.opts.workers,
            ..Default::default()
        };
        let ctx = self.app.transfer_ctx(&transfer, "repair");
        let mut ready = Vec::new();
        for t in targets {
            match sizes.get(&t.etag) {
                Some(&size) => ready.push((t, size)),
                None => {
                    let msg = format!(
                        "not on the remote ({} at {})",
                        layout.blob_key(&t.etag),
                        remote.describe()
                    );
                    outcomes.insert((t.repo, t.etag), Err(msg));
                }
            }
        }
        ctx.progress
            .add_total(ready.len() as u64, ready.iter().map(|(_, s)| s).sum());
        let ctx = &ctx;
        let results: Vec<_> = stream::iter(ready)
            .map(|(t, size)| async move {
                let result = repair_one(remote, layout, self.cache_dir, ctx, &t, size).await;
                ctx.progress.item_done();
                (t, result)
            })
            .buffer_unordered(ctx.workers)
            .collect()
            .await;
        ctx.progress.finish();
        for (t, result) in results {
            outcomes.insert((t.repo, t.etag), result);
        }
        outcomes
    }
}

struct RepairTarget {
    repo: String,
    repo_dir: PathBuf,
    folder: String,
    etag: String,
}

async fn repair_one(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    ctx: &TransferCtx,
    t: &RepairTarget,
    size: u64,
) -> Result<(), String> {
    // The same lock huggingface_hub takes, so neither writes this blob while the other does.
    let lock_file = lock_path(cache_dir, &t.folder, &t.etag);
    let progress: Arc<dyn Progress> = ctx.progress.clone();
    let timeout = ctx.lock_timeout;
    let on_wait = lock_waiter(
        progress,
        lock_file.clone(),
        format!("another process is writing blob {}", t.etag),
        timeout,
    );
    let _lock = tokio::task::spawn_blocking(move || lock_blob(&lock_file, timeout, on_wait))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let writer = ensure_repo_dirs(&t.repo_dir)
        .and_then(|()| BlobWriter::create(&t.repo_dir, &t.etag, size))
        .map_err(|e| e.to_string())?;
    let path = remote
        .download_blob(&layout.blob_key(&t.etag), writer, size, ctx)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}
