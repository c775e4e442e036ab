//! What `gc --remote` and `prune --remote` share around deleting objects from the remote: the
//! check that the key may delete (before anything goes), the question, the batched deletes, and
//! the report of every key deleted.

use anyhow::Result;
use serde::Serialize;

use super::ask;
use crate::commands::{App, Failure};
use crate::manifest::Layout;
use crate::remote::{ObjectInfo, Remote};
use crate::report::human_bytes;
use crate::text::{error_chain, plural};

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

/// Refuses a key that may not delete before anything is deleted, then asks (unless `yes`).
/// False when the answer is no.
pub async fn may_delete(
    app: &App,
    remote: &Remote,
    layout: &Layout,
    lines: &[String],
    question: &str,
    yes: bool,
) -> Result<bool> {
    remote.require_delete(layout).await?;
    ask(app, lines, question, yes).await
}

/// Deletes `objects` (batched where the store allows), reporting each key.
pub async fn delete_objects(
    app: &App,
    remote: &Remote,
    objects: &[RemoteObject],
) -> Result<Removal> {
    let keys: Vec<String> = objects.iter().map(|o| o.key.clone()).collect();
    let done = remote.delete_many(&keys).await?;
    let mut removal = Removal {
        delete_requests: done.requests,
        ..Removal::default()
    };
    if let Some(e) = &done.batch_refused {
        let why = error_chain(e);
        app.printer.note(&format!(
            "the server refused a batch delete ({why}); deleting one object at a time"
        ));
        removal.batch_refused = Some(why);
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

/// `Deleted 3 blobs (1.2 GiB)` and a line per failure, for people; `-v` lists every key.
pub fn removal_lines(
    removal: &Removal,
    dry_run: bool,
    one: &str,
    many: &str,
    every_key: bool,
) -> Vec<String> {
    let verb = if dry_run { "Would delete" } else { "Deleted" };
    let mut lines = Vec::new();
    if every_key || dry_run {
        lines.extend(removal.deleted.iter().map(|o| format!("  {}", o.key)));
    }
    lines.push(format!(
        "{verb} {} ({}).",
        plural(removal.objects, one, many),
        human_bytes(removal.bytes)
    ));
    for f in &removal.failures {
        lines.push(format!("Failed to delete {}: {}", f.item, f.error));
    }
    lines
}
