//! Where a pull gets revisions and blobs: a list of sources tried in order, remotes first (a
//! node-local share, then the team bucket, …) and optionally the Hub last; `serve --from-cache`
//! puts its own cache dir before them all ([`super::cache_source`]). "NFS share, then
//! bucket, then Hub" is a list, not a code path. A later source is asked only when an earlier
//! one lacks something or keeps failing; never when it is set up wrong (rejected credentials, a
//! missing bucket, a denied read), which must be fixed rather than hidden.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::cache::write::{BlobSink, WriteError};
use crate::hub::{CommitFile, Hub};
use crate::manifest::Layout;
use crate::net::TransferCtx;
use crate::remote::{Remote, RemoteError};
use crate::transfer::cache_source;
use crate::transfer::TransferError;

/// A blob as a source is asked for it: by name and size, and by a file of a commit that holds
/// it, which is how the Hub serves blobs.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub etag: &'a str,
    pub size: u64,
    pub named_by: Option<&'a CommitFile>,
}

/// One source of blobs.
// A pull holds a few of these for its whole run: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Source {
    Remote {
        remote: Remote,
        layout: Layout,
    },
    Hub(Hub),
    /// A Hugging Face cache dir: complete revisions (those with a tree listing) only.
    Cache {
        dir: PathBuf,
    },
}

impl Source {
    /// `s3://bucket at …`, `/shared/dir` or `the Hub at …`: never a secret.
    pub fn describe(&self) -> String {
        match self {
            Source::Remote { remote, .. } => remote.describe(),
            Source::Hub(hub) => hub.describe(),
            Source::Cache { dir } => format!("the cache dir {}", dir.display()),
        }
    }

    /// The remote's URL or path, or the Hub's endpoint: what JSON documents name a source by.
    pub fn url(&self) -> String {
        match self {
            Source::Remote { remote, .. } => remote.url(),
            Source::Hub(hub) => hub.endpoint_url(),
            Source::Cache { .. } => cache_source::CACHE_SOURCE.to_string(),
        }
    }

    pub fn is_hub(&self) -> bool {
        matches!(self, Source::Hub(_))
    }

    /// The Hub serves files by path, and a cache dir keeps blobs by repo: either can serve a
    /// blob only when a file of a commit names it.
    pub fn can_serve(&self, job: Wanted<'_>) -> bool {
        match self {
            Source::Remote { .. } => true,
            Source::Hub(_) | Source::Cache { .. } => job.named_by.is_some(),
        }
    }

    /// Where the blob is kept here, for messages: its key, or its file on the Hub.
    pub fn locate(&self, job: Wanted<'_>) -> String {
        match (self, job.named_by) {
            (Source::Remote { layout, .. }, _) => layout.blob_key(job.etag),
            (Source::Hub(_), Some(f)) => format!("{}@{}/{}", f.repo_id, f.commit, f.path),
            (Source::Hub(_), None) => job.etag.to_string(),
            (Source::Cache { dir }, _) => cache_source::blob_file(dir, job)
                .map_or_else(|| job.etag.to_string(), |p| p.display().to_string()),
        }
    }

    /// Downloads the job's blob into `writer`, which verifies while it writes.
    pub async fn download<W: BlobSink>(
        &self,
        job: Wanted<'_>,
        writer: W,
        ctx: &TransferCtx,
    ) -> Result<W::Done, TransferError> {
        match self {
            Source::Remote { remote, layout } => remote
                .download_blob(&layout.blob_key(job.etag), writer, job.size, ctx)
                .await
                .map_err(Into::into),
            Source::Hub(hub) => match job.named_by {
                Some(file) => hub
                    .download(file, writer, job.size, ctx)
                    .await
                    .map_err(Into::into),
                None => Err(RemoteError::NotFound {
                    key: job.etag.to_string(),
                }
                .into()),
            },
            Source::Cache { dir } => cache_source::download(dir, job, writer, ctx).await,
        }
    }
}

/// Why a transfer from one source may be retried from the next one, if it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The source lacks it.
    Missing,
    /// The source's bytes do not match the blob's name: that object is bad.
    Corrupt,
    /// The source kept failing after the retries.
    Failing,
    /// Nothing answers: later jobs skip the source.
    Down,
}

impl Fallback {
    /// The fallback a failed blob transfer allows; `None` for a set-up error or a local one.
    pub fn of(e: &TransferError) -> Option<Fallback> {
        match e {
            TransferError::Local(
                WriteError::Mismatch { .. }
                | WriteError::Size { .. }
                | WriteError::Unreadable { .. },
            ) => Some(Fallback::Corrupt),
            TransferError::Local(_) => None,
            TransferError::Remote(e) => Fallback::of_remote(e),
            TransferError::Hub(_) => None,
        }
    }

    /// The fallback a failed read of the remote allows.
    /// Set-up errors never fall back: a denied read is the set-up's as much as bad keys are.
    pub fn of_remote(e: &RemoteError) -> Option<Fallback> {
        match e {
            _ if e.is_configuration() => None,
            RemoteError::AccessDenied { .. } | RemoteError::DirDenied { .. } => None,
            RemoteError::NotFound { .. } => Some(Fallback::Missing),
            RemoteError::Unreachable { .. } => Some(Fallback::Down),
            _ => Some(Fallback::Failing),
        }
    }
}

/// A source in the list, and whether this run gave up on it.
pub struct Tier {
    pub source: Source,
    down: AtomicBool,
}

/// The sources of a pull, nearest first.
pub struct Sources {
    tiers: Vec<Tier>,
}

impl Sources {
    pub fn new(sources: Vec<Source>) -> Sources {
        assert!(!sources.is_empty(), "a pull has a source");
        Sources {
            tiers: sources
                .into_iter()
                .map(|source| Tier {
                    source,
                    down: AtomicBool::new(false),
                })
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.tiers.len()
    }

    pub fn get(&self, i: usize) -> &Source {
        &self.tiers[i].source
    }

    /// The first source: the remote the command names (or `serve --from-cache`'s cache dir).
    pub fn primary(&self) -> &Source {
        &self.tiers[0].source
    }

    /// The same sources with `source` asked before them all.
    pub fn led_by(self, source: Source) -> Sources {
        let mut tiers = self.tiers;
        tiers.insert(
            0,
            Tier {
                source,
                down: AtomicBool::new(false),
            },
        );
        Sources { tiers }
    }

    /// The index of the first remote: the bucket the command names, which `--write-through`
    /// writes to and the page lists (0 unless a cache dir is asked first).
    pub fn home(&self) -> usize {
        (0..self.len())
            .find(|&i| self.remote(i).is_some())
            .unwrap_or(0)
    }

    /// The source at [`Sources::home`]: the bucket the command names.
    pub fn home_source(&self) -> &Source {
        self.get(self.home())
    }

    /// The remote at `i` with its layout, unless it is the Hub or a cache dir.
    pub fn remote(&self, i: usize) -> Option<(&Remote, &Layout)> {
        match &self.tiers[i].source {
            Source::Remote { remote, layout } => Some((remote, layout)),
            Source::Hub(_) | Source::Cache { .. } => None,
        }
    }

    pub fn mark_down(&self, i: usize) {
        self.tiers[i].down.store(true, Ordering::Relaxed);
    }

    pub fn is_down(&self, i: usize) -> bool {
        self.tiers[i].down.load(Ordering::Relaxed)
    }

    /// The next source after `i` that can serve `job` and is not down.
    pub fn next_for(&self, i: usize, job: Wanted<'_>) -> Option<usize> {
        (i + 1..self.tiers.len()).find(|&j| !self.is_down(j) && self.get(j).can_serve(job))
    }

    /// Descriptions of all sources, in order.
    pub fn describe(&self) -> Vec<String> {
        self.tiers.iter().map(|t| t.source.describe()).collect()
    }

    /// The URLs of the Hubs among the sources, in order.
    pub fn hub_urls(&self) -> Vec<String> {
        self.tiers
            .iter()
            .filter(|t| t.source.is_hub())
            .map(|t| t.source.url())
            .collect()
    }
}
