//! Operations on many objects at once, for the bucket's lifecycle (`gc --remote`,
//! `prune --remote`): batched deletes, unfinished multipart uploads, and a probe that finds out
//! whether the key may write and delete before anything is deleted.

use std::time::SystemTime;

use futures::stream::{self, StreamExt};

use super::{Access, Remote, RemoteError};
use crate::manifest::Layout;

/// Single DELETE requests in flight at once.
pub const SINGLE_DELETES: usize = 16;

/// A multipart upload that was started and never completed nor aborted.
#[derive(Debug, Clone)]
pub struct OpenUploadInfo {
    pub key: String,
    pub upload_id: String,
    pub initiated: SystemTime,
}

/// What a delete of many keys did.
#[derive(Debug, Default)]
pub struct Deletion {
    /// Keys deleted (or found gone already), in the order asked.
    pub deleted: Vec<String>,
    /// Keys the server would not delete, and why.
    pub failed: Vec<(String, RemoteError)>,
    /// The server refused a batch delete request (DeleteObjects); the keys went one at a time.
    pub batch_refused: Option<RemoteError>,
    /// Delete requests sent.
    pub requests: usize,
}

impl Deletion {
    /// A batch request's answer: every key but the `failed` ones went.
    pub(super) fn record_batch(&mut self, keys: &[String], failed: Vec<(String, RemoteError)>) {
        self.requests += 1;
        let refused: std::collections::HashSet<&str> =
            failed.iter().map(|(k, _)| k.as_str()).collect();
        self.deleted.extend(
            keys.iter()
                .filter(|k| !refused.contains(k.as_str()))
                .cloned(),
        );
        self.failed.extend(failed);
    }

    /// Single deletes' answers; a refusal every other delete would meet too stops the run.
    pub(super) fn record_singles(
        &mut self,
        answers: Vec<(&String, Result<(), RemoteError>)>,
    ) -> Result<(), RemoteError> {
        self.requests += answers.len();
        for (key, answer) in answers {
            match answer {
                Ok(()) => self.deleted.push(key.clone()),
                Err(e) if stops_deleting(&e) => return Err(e),
                Err(e) => self.failed.push((key.clone(), e)),
            }
        }
        Ok(())
    }
}

/// A refusal every later delete would meet too: stop rather than go on or fall back.
pub fn stops_deleting(e: &RemoteError) -> bool {
    e.is_fatal() || e.denied().is_some() || matches!(e, RemoteError::Credentials { .. })
}

/// What writing and deleting a probe object showed.
#[derive(Debug)]
pub enum WriteProbe {
    /// Written and deleted again.
    Deleted,
    /// The write was refused or failed.
    WriteFailed(RemoteError),
    /// Written, but it could not be deleted: it is left on the remote.
    DeleteFailed(RemoteError),
}

impl Remote {
    /// Deletes `keys`: in batches where the store takes them, else one request a key.
    /// A denied delete or a fatal error stops the run; other failures are reported per key.
    pub async fn delete_many(&self, keys: &[String]) -> Result<Deletion, RemoteError> {
        match self {
            Remote::S3(r) => r.delete_many(keys).await,
            Remote::Dir(r) => {
                let mut out = Deletion::default();
                let answers = stream::iter(keys)
                    .map(|key| async move { (key, r.delete(key).await) })
                    .buffer_unordered(SINGLE_DELETES)
                    .collect::<Vec<_>>()
                    .await;
                out.record_singles(answers)?;
                Ok(out)
            }
        }
    }

    /// Every unfinished multipart upload under `prefix`, whatever its age: the caller decides
    /// which are old enough to abort. Directory remotes have none.
    pub async fn open_uploads(&self, prefix: &str) -> Result<Vec<OpenUploadInfo>, RemoteError> {
        match self {
            Remote::S3(r) => r.open_uploads(prefix).await,
            Remote::Dir(_) => Ok(Vec::new()),
        }
    }

    /// Aborts one multipart upload.
    pub async fn abort_upload(&self, upload: &OpenUploadInfo) -> Result<(), RemoteError> {
        match self {
            Remote::S3(r) => r.try_abort_upload(&upload.key, &upload.upload_id).await,
            Remote::Dir(_) => Ok(()),
        }
    }

    /// Writes a small object under the probe folder (`key`) and deletes it again.
    pub async fn probe_write(&self, key: &str) -> WriteProbe {
        let body = bytes::Bytes::from_static(b"hf-cache-sync probe\n");
        if let Err(e) = self.put(key, body).await {
            return WriteProbe::WriteFailed(e);
        }
        let deleted = self.delete(key).await;
        if let Remote::Dir(dir) = self {
            // The probe's folder is ours alone; leave the remote as it was.
            if let Some(parent) = dir.root().join(key).parent() {
                let _ = std::fs::remove_dir(parent);
            }
        }
        match deleted {
            Ok(()) => WriteProbe::Deleted,
            Err(e) => WriteProbe::DeleteFailed(e),
        }
    }

    /// Refuses a key that may not delete, before anything is deleted: a read-only key fails
    /// the probe's write, a key without delete permission its delete.
    pub async fn require_delete(&self, layout: &Layout) -> Result<(), RemoteError> {
        let key = layout.doctor_probe_key(&probe_token());
        match self.probe_write(&key).await {
            WriteProbe::Deleted => Ok(()),
            // Denied a write, the key is denied deletes as well: say what this run needs.
            WriteProbe::WriteFailed(RemoteError::AccessDenied {
                bucket,
                action: Access::Write,
                code,
                key,
            }) => Err(RemoteError::AccessDenied {
                bucket,
                action: Access::Delete,
                code,
                key,
            }),
            WriteProbe::WriteFailed(e) | WriteProbe::DeleteFailed(e) => Err(e),
        }
    }
}

/// A name no other probe uses.
pub fn probe_token() -> String {
    format!("{:016x}", fastrand::u64(..))
}
