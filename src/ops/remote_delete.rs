//! Deleting objects from the remote, as `gc --remote` and `prune --remote` do: the batched
//! deletes and the [`Removal`] naming every key deleted and every one that failed.

use anyhow::Result;
use serde::Serialize;

use crate::failure::Failure;
use crate::remote::{ObjectInfo, Remote};
use crate::text::error_chain;

/// An object deleted from the remote (for a dry run: one a real run deletes).
#[derive(Debug, Clone, Serialize)]
pub struct RemoteObject {
    pub key: String,
    pub size: u64,
}

impl From<&ObjectInfo> for RemoteObject {
    fn from(o: &ObjectInfo) -> RemoteObject {
        RemoteObject {
            key: o.key.clone(),
            size: o.size,
        }
    }
}

/// What a deletion from the remote did (or, for a dry run, would do).
#[derive(Debug, Default, Serialize)]
pub struct Removal {
    /// Every key deleted, in key order.
    pub deleted: Vec<RemoteObject>,
    /// How many were deleted, and their bytes.
    pub objects: usize,
    pub bytes: u64,
    /// Keys that could not be deleted.
    pub failures: Vec<Failure>,
    /// Why the server's batch delete (DeleteObjects) was refused, when keys went one at a time.
    pub batch_refused: Option<String>,
    /// Delete requests sent.
    pub delete_requests: usize,
}

impl Removal {
    /// A dry run: what a real run deletes, nothing sent.
    pub fn planned(objects: Vec<RemoteObject>) -> Removal {
        let mut removal = Removal::default();
        removal.add(objects);
        removal
    }

    fn add(&mut self, objects: Vec<RemoteObject>) {
        self.objects += objects.len();
        self.bytes += objects.iter().map(|o| o.size).sum::<u64>();
        self.deleted.extend(objects);
    }
}

/// Deletes `objects` (batched where the store allows), reporting each key; a batch delete the
/// server refused is [`Removal::batch_refused`].
pub async fn delete_objects(remote: &Remote, objects: &[RemoteObject]) -> Result<Removal> {
    let keys: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
    let done = remote.delete_many(&keys).await?;
    let mut removal = Removal {
        delete_requests: done.requests,
        ..Removal::default()
    };
    if let Some(e) = &done.batch_refused {
        removal.batch_refused = Some(error_chain(e));
    }
    let deleted: std::collections::HashSet<&str> =
        done.deleted.iter().map(String::as_str).collect();
    removal.add(
        objects
            .iter()
            .filter(|o| deleted.contains(o.key.as_str()))
            .cloned()
            .collect(),
    );
    removal.failures = done
        .failed
        .into_iter()
        .map(|(key, e)| Failure::new(key, e))
        .collect();
    Ok(removal)
}
