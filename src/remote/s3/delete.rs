//! Deleting many objects: DeleteObjects, up to 1,000 keys a request, and one DELETE a key where
//! a store does not offer it (some S3-compatible servers answer NotImplemented or reject the
//! request's checksum header).

use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use futures::stream::{self, StreamExt};

use super::S3Remote;
use crate::remote::bulk::{stops_deleting, Deletion, SINGLE_DELETES};
use crate::remote::{Access, RemoteError};

/// S3 takes at most this many keys in one DeleteObjects request.
pub const BATCH: usize = 1000;

/// DeleteObjects requests in flight at once, after the first has shown the store takes them.
const BATCHES_IN_FLIGHT: usize = 4;

impl S3Remote {
    /// Deletes `keys` a batch at a time: the first batch alone, then several at once. Keys of a
    /// batch request the server refuses go one DELETE a key (and so do all the rest when the
    /// first is refused). A denied or fatal error stops the run; a key the server could not
    /// delete is a failure of its own.
    pub async fn delete_many(&self, keys: &[String]) -> Result<Deletion, RemoteError> {
        let mut out = Deletion::default();
        let mut chunks = keys.chunks(BATCH);
        let Some(first) = chunks.next() else {
            return Ok(out);
        };
        match self.delete_batch(first).await {
            Ok(failed) => out.record_batch(first, failed),
            Err(e) if stops_deleting(&e) => return Err(e),
            Err(e) => {
                out.batch_refused = Some(e);
                self.delete_singly(keys, &mut out).await?;
                return Ok(out);
            }
        }
        let answers = stream::iter(chunks)
            .map(|chunk| async move { (chunk, self.delete_batch(chunk).await) })
            .buffered(BATCHES_IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        let mut refused: Vec<String> = Vec::new();
        for (chunk, answer) in answers {
            match answer {
                Ok(failed) => out.record_batch(chunk, failed),
                Err(e) if stops_deleting(&e) => return Err(e),
                Err(e) => {
                    out.batch_refused.get_or_insert(e);
                    refused.extend_from_slice(chunk);
                }
            }
        }
        self.delete_singly(&refused, &mut out).await?;
        Ok(out)
    }

    /// One DELETE a key, several at once.
    async fn delete_singly(&self, keys: &[String], out: &mut Deletion) -> Result<(), RemoteError> {
        let singles = stream::iter(keys)
            .map(|key| async move { (key, self.delete(key).await) })
            .buffer_unordered(SINGLE_DELETES)
            .collect::<Vec<_>>()
            .await;
        out.record_singles(singles)
    }

    /// One DeleteObjects request (quiet: only failures come back).
    async fn delete_batch(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, RemoteError)>, RemoteError> {
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| RemoteError::Other {
                detail: format!("cannot build a delete request: {e}"),
                code: String::new(),
            })?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(|e| RemoteError::Other {
                detail: format!("cannot build a delete request: {e}"),
                code: String::new(),
            })?;
        let first = keys.first().map_or("", String::as_str);
        let out = self
            .call(
                || {
                    self.client
                        .delete_objects()
                        .bucket(&self.bucket)
                        .delete(delete.clone())
                        .send()
                },
                Access::Delete,
                first,
            )
            .await?;
        Ok(out
            .errors()
            .iter()
            .filter_map(|e| {
                let key = e.key()?.to_string();
                let err = self.classify(
                    0,
                    e.code().unwrap_or("").to_string(),
                    e.message().unwrap_or("").to_string(),
                    Access::Delete,
                    &key,
                );
                Some((key, err))
            })
            .collect())
    }
}
