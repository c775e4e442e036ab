//! The engine between the commands and storage: the bounded pool every transfer runs in,
//! fetching one blob into the cache, the push and pull engines the commands call, and laying a
//! pulled revision out in a project folder.

pub mod cache_source;
pub mod fetch;
pub mod fleet;
pub mod lifecycle;
pub mod listings;
pub mod local_dir;
pub mod pinned;
pub mod plan;
pub mod pool;
pub mod pull;
pub mod push;
pub mod push_summary;
pub mod snapshot;
pub mod source;
pub mod stream;
pub mod write_through;

use serde::Serialize;

use crate::cache::write::WriteError;
use crate::cache::RepoType;
use crate::hub::{DownloadError, HubError};
use crate::manifest::Manifest;
use crate::remote::{BlobError, RemoteError};

/// A failed blob transfer, from whichever source: the remote or the Hub, or the local side
/// (including content that does not match its name).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Local(#[from] WriteError),
}

impl From<BlobError> for TransferError {
    fn from(e: BlobError) -> TransferError {
        match e {
            BlobError::Remote(e) => TransferError::Remote(e),
            BlobError::Local(e) => TransferError::Local(e),
        }
    }
}

impl From<DownloadError> for TransferError {
    fn from(e: DownloadError) -> TransferError {
        match e {
            DownloadError::Hub(e) => TransferError::Hub(e),
            DownloadError::Local(e) => TransferError::Local(e),
        }
    }
}

/// What a dry run would move for one revision: the blobs it would transfer (a blob two
/// revisions share is listed under the first), and how many are already where they would go.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedRevision {
    /// `type/org/name`.
    pub repo: String,
    pub repo_type: RepoType,
    pub repo_id: String,
    pub revision: String,
    pub refs: Vec<String>,
    pub blobs: Vec<PlannedBlob>,
    /// Bytes of `blobs`.
    pub bytes: u64,
    /// Blobs of the revision already at the destination.
    pub present: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedBlob {
    pub etag: String,
    pub size: u64,
    /// The revision's files that hold it.
    pub paths: Vec<String>,
}

impl PlannedRevision {
    /// The revision of `manifest`, with the blobs `moves` picks (by etag and size) listed and
    /// those `present` picks counted.
    pub fn new(
        manifest: &Manifest,
        repo_type: RepoType,
        refs: Vec<String>,
        mut moves: impl FnMut(&str, u64) -> bool,
        present: impl Fn(&str, u64) -> bool,
    ) -> PlannedRevision {
        let mut by_blob: std::collections::BTreeMap<&str, (u64, Vec<String>)> =
            std::collections::BTreeMap::new();
        for f in &manifest.files {
            let entry = by_blob.entry(&f.blob).or_insert((f.size, Vec::new()));
            entry.1.push(f.path.clone());
        }
        let mut blobs = Vec::new();
        let mut already = 0;
        for (etag, (size, paths)) in by_blob {
            if present(etag, size) {
                already += 1;
            } else if moves(etag, size) {
                blobs.push(PlannedBlob {
                    etag: etag.to_string(),
                    size,
                    paths,
                });
            }
        }
        // Largest first, as they move.
        blobs.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.etag.cmp(&b.etag)));
        PlannedRevision {
            repo: format!("{repo_type}/{}", manifest.repo),
            repo_type,
            repo_id: manifest.repo.clone(),
            revision: manifest.revision.clone(),
            refs,
            bytes: blobs.iter().map(|b| b.size).sum(),
            blobs,
            present: already,
        }
    }
}
