//! What `doctor` and a first push ask of a remote beyond the everyday operations: whether it
//! answers at all, where its credentials came from, the server's clock, files other users cannot
//! read, and making a directory remote's missing folder.

use std::path::PathBuf;

use super::{Remote, RemoteError};
use crate::cache::modes::OwnerOnly;
use crate::config::Settings;

pub use super::s3::{default_region, http_date_secs};

/// The kind of storage behind a remote, for the words that differ between them: a bucket is
/// reached with a key, a directory with the file system's permissions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    Bucket,
    Directory,
}

impl Remote {
    pub fn kind(&self) -> RemoteKind {
        match self {
            Remote::S3(_) => RemoteKind::Bucket,
            Remote::Dir(_) => RemoteKind::Directory,
        }
    }

    /// Whether the remote is there and may be listed: a bucket answers a LIST of one key; a
    /// directory remote's folder exists.
    pub async fn probe(&self) -> Result<(), RemoteError> {
        match self {
            Remote::S3(r) => r.probe_bucket().await,
            Remote::Dir(r) => r.check_root(),
        }
    }

    /// Runs the AWS credential chain now: the source that answered and the access key id.
    /// `None` when the remote does not use the chain (a key set directly, a directory remote).
    pub async fn credential_chain(&self) -> Option<Result<(String, String), RemoteError>> {
        match self {
            Remote::S3(r) => r.resolve_chain().await,
            Remote::Dir(_) => None,
        }
    }

    /// The `Date` header of the server's latest answer, to compare clocks with. `None` inside
    /// when the server sent none; `None` outside for a remote that has no server clock.
    pub fn server_date(&self) -> Option<Option<String>> {
        match self {
            Remote::S3(r) => Some(r.last_server_date()),
            Remote::Dir(_) => None,
        }
    }

    /// Files and folders of a directory remote that only their owner may read, looking at no
    /// more than `limit`; `None` for a bucket, whose objects have no file modes.
    pub async fn owner_only(&self, limit: usize) -> Option<(PathBuf, std::io::Result<OwnerOnly>)> {
        match self {
            Remote::S3(_) => None,
            Remote::Dir(dir) => {
                let (remote, root) = (dir.clone(), dir.root().to_path_buf());
                let found = crate::task::blocking(move || remote.owner_only(limit)).await;
                Some((root, found))
            }
        }
    }

    /// Makes a directory remote's missing folder for a push, as cp and rsync make their
    /// destination (a pull never does); a dry run only plans it, and the remote then reads as
    /// empty. Returns the folder created (or that would be); `None` when there is nothing to
    /// make: a bucket, or a folder that exists.
    pub fn create_for_push(&mut self, dry_run: bool) -> Result<Option<PathBuf>, RemoteError> {
        let Remote::Dir(dir) = self else {
            return Ok(None);
        };
        if dir.root().exists() {
            return Ok(None);
        }
        if dry_run {
            dir.plan_creation();
        } else {
            dir.create_root()?;
        }
        Ok(Some(dir.root().to_path_buf()))
    }
}

/// The AWS credential chain run on its own, for a setup whose remote cannot be opened: the
/// source that answered and the access key id.
pub async fn standalone_chain(settings: &Settings) -> Result<(String, String), RemoteError> {
    let storage = &settings.storage;
    let region = storage
        .region
        .clone()
        .unwrap_or_else(|| default_region(storage.endpoint.as_deref()));
    super::aws::CredentialChain::new(&region, None)
        .probe()
        .await
        .map_err(|detail| RemoteError::NoCredentials {
            endpoint: storage.endpoint.clone().unwrap_or_else(|| "AWS S3".into()),
            detail,
        })
}
