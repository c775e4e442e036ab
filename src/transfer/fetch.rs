//! Fetching one blob from the remote into the cache, the one way every command does it (pull,
//! pull-all, `verify --repair`): under the lock huggingface_hub takes for that blob, unless
//! another process wrote it meanwhile, resuming a partial download an earlier run left
//! ([`crate::cache::partial`]), verified while it streams and renamed into place only when the
//! whole file matches its name.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::cache::lock::lock_blob;
use crate::cache::partial::{leftovers_by_blob, Leftovers};
use crate::cache::write::{remove_stale_temps, sync_dir, BlobWriter, WriteError};
use crate::cache::{blob_path, lock_path};
use crate::hub::CommitFile;
use crate::net::TransferCtx;
use crate::report::lock_waiter;
use crate::task::blocking;
use crate::text::error_chain;
use crate::transfer::TransferError;

use super::source::{Fallback, Source, Sources, Wanted};

/// One blob to bring into one repo of the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobJob {
    pub etag: String,
    pub size: u64,
    /// `<cache>/<repo folder>`.
    pub repo_dir: PathBuf,
    /// `models--org--name`: names the lock folder.
    pub folder: String,
    /// The file under the blob's name is known to be wrong (`verify` found it corrupt): fetch
    /// even when one of the right size is there, and rename over it.
    pub replace: bool,
    /// What earlier runs left in `blobs/` for the blob, listed before the run
    /// ([`leftovers_by_blob`]): partial downloads to resume, and older temporary files, removed
    /// under the blob's lock, where they can only be stale.
    pub leftovers: Leftovers,
    /// A file of a commit holding the blob: how the Hub is asked for it.
    pub named_by: Option<CommitFile>,
}

impl BlobJob {
    pub fn wanted(&self) -> Wanted<'_> {
        Wanted {
            etag: &self.etag,
            size: self.size,
            named_by: self.named_by.as_ref(),
        }
    }
}

/// The jobs with what earlier runs left for each of their blobs: one read of each repo's
/// `blobs/` for all of them. Blocking.
pub fn with_leftovers<'a>(jobs: impl IntoIterator<Item = &'a mut BlobJob>) {
    let mut by_repo: HashMap<PathBuf, HashMap<String, Leftovers>> = HashMap::new();
    for job in jobs {
        let found = by_repo
            .entry(job.repo_dir.clone())
            .or_insert_with(|| leftovers_by_blob(&job.repo_dir));
        job.leftovers = found.remove(&job.etag).unwrap_or_default();
    }
}

/// How a fetch ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobFetch {
    /// Downloaded and verified: `transferred` bytes came from the source, after `resumed`
    /// bytes an earlier run left.
    Downloaded { transferred: u64, resumed: u64 },
    /// Another process wrote it while we waited for its lock.
    AlreadyThere,
}

/// Is the blob in the repo with the right size? A blob under its name is trusted: only
/// verified bytes are ever given a blob name.
pub fn present(repo_dir: &Path, etag: &str, size: u64) -> bool {
    std::fs::metadata(blob_path(repo_dir, etag)).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// Fetches `job` from `source` into the cache, whose repo folder exists (with `snapshots/`:
/// huggingface_hub calls a repo folder without it corrupted). The rename is not yet durable:
/// call [`sync_blob_dirs`] once all fetches of a run are done.
///
/// A resumed partial whose whole does not match the blob's name is discarded and the blob is
/// fetched whole from the same source, once.
pub async fn fetch_blob(
    source: &Source,
    cache_dir: &Path,
    ctx: &TransferCtx,
    job: &BlobJob,
) -> Result<BlobFetch, TransferError> {
    let lock_file = lock_path(cache_dir, &job.folder, &job.etag);
    let timeout = ctx.lock_timeout;
    let on_wait = lock_waiter(
        ctx.progress.clone(),
        lock_file.clone(),
        format!("another process is writing blob {}", job.etag),
        timeout,
    );
    let (repo_dir, etag, size, replace) = (
        job.repo_dir.clone(),
        job.etag.clone(),
        job.size,
        job.replace,
    );
    let leftovers = job.leftovers.clone();
    // Lock, clean up, claim and check on a blocking thread: waiting on another process's lock
    // and hashing a resumed partial must not hold the transfers running beside this one.
    let prepared = blocking(move || {
        let lock = lock_blob(&lock_file, timeout, on_wait).map_err(WriteError::from)?;
        // Under the lock, the temporary files listed for this blob before the run are stale: a
        // writer that was live then held this lock, and is done now.
        remove_stale_temps(&leftovers.temps);
        if !replace && present(&repo_dir, &etag, size) {
            return Ok((lock, None));
        }
        // Those listed before the run, and what this run kept from a source it gave up on.
        let mut partials = leftovers.partials;
        let blobs = repo_dir.join("blobs");
        partials.extend(crate::cache::temp::registry().kept_for(&blobs, &etag));
        let writer = BlobWriter::open(&repo_dir, &etag, size, &partials)?;
        Ok::<_, WriteError>((lock, Some(writer)))
    })
    .await?;
    let (_lock, writer) = prepared;
    let Some(writer) = writer else {
        ctx.progress.add_bytes(job.size);
        return Ok(BlobFetch::AlreadyThere);
    };
    let resumed = writer.resumed();
    if resumed > 0 {
        ctx.progress.add_resumed(resumed);
    }
    let failed = match download(source, job, writer, ctx).await {
        Ok(()) => {
            return Ok(BlobFetch::Downloaded {
                transferred: job.size - resumed,
                resumed,
            })
        }
        Err(e) => e,
    };
    if resumed == 0 || Fallback::of(&failed) != Some(Fallback::Corrupt) {
        return Err(failed);
    }
    ctx.progress.log(&format!(
        "warning: blob {}: the partial download resumed ({resumed} bytes) did not verify \
         ({}); discarded, fetching the whole blob",
        job.etag,
        error_chain(&failed)
    ));
    ctx.progress.add_resumed_discarded(resumed);
    let (repo_dir, etag) = (job.repo_dir.clone(), job.etag.clone());
    let writer = blocking(move || BlobWriter::create(&repo_dir, &etag, size)).await?;
    download(source, job, writer, ctx).await?;
    Ok(BlobFetch::Downloaded {
        transferred: job.size,
        resumed: 0,
    })
}

/// Downloads the rest of the blob into `writer` and names it; a writer that already holds the
/// whole blob (a run killed just before the rename) only has it checked.
async fn download(
    source: &Source,
    job: &BlobJob,
    writer: BlobWriter,
    ctx: &TransferCtx,
) -> Result<(), TransferError> {
    if writer.is_complete() {
        blocking(move || writer.finish()).await?;
    } else {
        source.download(job.wanted(), writer, ctx).await?;
    }
    Ok(())
}

/// A blob fetched through the source list: which source served it, and what went wrong with
/// the sources tried before it (a corrupt object named by its key, a missing one).
pub struct Served {
    pub tier: usize,
    pub fetched: BlobFetch,
}

/// Fetches `job` from source `first`, and from the next sources that can serve it while a
/// source lacks the blob, serves bytes that do not match its name, or keeps failing. Each
/// fallback is logged and kept in `notes`. A set-up or local error ends the job at once.
pub async fn fetch_through(
    sources: &Sources,
    first: usize,
    cache_dir: &Path,
    ctx: &TransferCtx,
    job: &BlobJob,
    notes: &std::sync::Mutex<Vec<String>>,
) -> Result<Served, TransferError> {
    let mut tier = first;
    if sources.is_down(tier) {
        tier = sources.next_for(tier, job.wanted()).unwrap_or(tier);
    }
    loop {
        let source = sources.get(tier);
        let e = match fetch_blob(source, cache_dir, ctx, job).await {
            Ok(fetched) => return Ok(Served { tier, fetched }),
            Err(e) => e,
        };
        let why = Fallback::of(&e);
        let Some((why, next)) = why.zip(sources.next_for(tier, job.wanted())) else {
            return Err(e);
        };
        if why == Fallback::Down {
            sources.mark_down(tier);
        }
        let note = format!(
            "blob {} from {} ({}): {}; fetching it from {}",
            job.etag,
            source.describe(),
            source.locate(job.wanted()),
            error_chain(&e),
            sources.get(next).describe()
        );
        ctx.progress.log(&format!("warning: {note}"));
        notes.lock().expect("not poisoned").push(note);
        tier = next;
    }
}

/// Makes the renames of a run's fetches durable: one fsync per `blobs/` folder, not per blob.
pub async fn sync_blob_dirs<'a>(jobs: impl IntoIterator<Item = &'a BlobJob>) {
    let dirs: BTreeSet<PathBuf> = jobs
        .into_iter()
        .map(|job| job.repo_dir.join("blobs"))
        .collect();
    blocking(move || dirs.iter().for_each(|d| sync_dir(d))).await;
}
