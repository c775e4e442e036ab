//! What `gc --remote` and `prune --remote` share around deleting objects from the remote: the
//! check that the key may delete (before anything goes), the question, and the report of every
//! key deleted for people. The deletes are [`crate::ops::remote_delete`]'s.

use anyhow::Result;

use super::ask;
use crate::commands::App;
use crate::manifest::Layout;
use crate::remote::Remote;
use crate::report::human_bytes;
use crate::text::plural;

pub use crate::ops::remote_delete::Removal;

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
