//! `verify --repair`: corrupt and missing local blobs fetched again from the remote, each under
//! huggingface_hub's lock and verified while it streams, then the cache checked again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::structure::structural_problems;
use super::{Problem, ProblemKind};
use crate::cache::scan::{CacheScan, Repo};
use crate::ops::{scan_existing, Env, TransferOptions};
use crate::text::error_chain;
use crate::transfer::fetch::{fetch_blob, sync_blob_dirs, with_leftovers, BlobJob};
use crate::transfer::pool;
use crate::transfer::source::Source;

/// What `--repair` needs: the remote to fetch from and the cache to write to.
pub(super) struct Fixer<'a> {
    pub(super) env: &'a Env<'a>,
    /// Transfers at once (`--workers`).
    pub(super) workers: Option<usize>,
    /// The remote, as the source blobs are fetched from.
    pub(super) source: &'a Source,
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
        let outcomes = self.repair(targets).await?;
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

    /// Fetches each target's blob from the remote (sizes from one LIST of `blobs/`) through the
    /// transfer engine: under the blob's lock, verified while it streams and renamed over the bad
    /// file only once it matches. Result per (repo, etag). A fatal remote error (rejected
    /// credentials, a missing bucket) ends the run with one message instead.
    async fn repair(
        &self,
        targets: Vec<RepairTarget>,
    ) -> Result<HashMap<(String, String), Result<(), String>>> {
        let Source::Remote { remote, layout } = self.source else {
            unreachable!("verify repairs from the remote");
        };
        let mut outcomes = HashMap::new();
        let sizes: HashMap<String, u64> = match remote.list(&layout.blobs_prefix()).await {
            Ok(objects) => objects
                .iter()
                .filter_map(|o| Some((layout.parse_blob_key(&o.key)?.to_string(), o.size)))
                .collect(),
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                let msg = format!("cannot list {}: {e}", remote.describe());
                for t in targets {
                    outcomes.insert((t.repo, t.etag), Err(msg.clone()));
                }
                return Ok(outcomes);
            }
        };
        let transfer = TransferOptions {
            workers: self.workers,
            ..Default::default()
        };
        let ctx = self.env.transfer_ctx(&transfer, "repair");
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
        let jobs: Vec<(String, BlobJob)> = ready
            .into_iter()
            .map(|(t, size)| {
                let job = BlobJob {
                    etag: t.etag,
                    size,
                    repo_dir: t.repo_dir,
                    folder: t.folder,
                    // The file under this name was found corrupt: its size proves nothing.
                    replace: true,
                    leftovers: Default::default(),
                    named_by: None,
                };
                (t.repo, job)
            })
            .collect();
        let jobs = crate::task::blocking(move || {
            let mut jobs = jobs;
            with_leftovers(jobs.iter_mut().map(|(_, job)| job));
            jobs
        })
        .await;
        let mut ran = pool::run(jobs, ctx.workers, async |(_, job)| {
            let result = fetch_blob(self.source, self.cache_dir, ctx, job).await;
            ctx.progress.item_done();
            result
        })
        .await;
        sync_blob_dirs(ran.done.iter().map(|((_, job), _)| job)).await;
        ctx.progress.finish();
        if let Some(fatal) = ran.take_fatal() {
            return Err(fatal.into());
        }
        for ((repo, job), result) in ran.done {
            let result = result.map(|_| ()).map_err(|e| error_chain(&e));
            outcomes.insert((repo, job.etag), result);
        }
        Ok(outcomes)
    }
}

pub(super) struct RepairTarget {
    repo: String,
    repo_dir: PathBuf,
    folder: String,
    etag: String,
}
