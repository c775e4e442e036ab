//! `verify --lock FILE`: every pin of a lock file checked by [`ops::verify::lock`], every byte
//! hashed; what a pin lacks and every corrupt blob is a problem named with its line.

use std::path::Path;

use anyhow::Result;

use super::{describe_problems, App, Outcome};
use crate::ops;
use crate::ops::verify::lock::LockSummary;
use crate::report::human_bytes;
use crate::text::plural;

pub(super) async fn verify(app: &App, file: &Path, workers: Option<usize>) -> Result<Outcome> {
    let summary = ops::verify::lock::verify_lock(&app.env(), file, workers).await?;
    app.printer.result(&summary, || human(&summary));
    if !summary.problems.is_empty() {
        app.printer.hint(&format!(
            "`hf-cache-sync pull --lock {}` fetches what is missing or corrupt",
            summary.lock.display()
        ));
    }
    Ok(Outcome::from_failures(summary.problems.len()))
}

fn human(s: &LockSummary) -> String {
    let mut lines = vec![format!(
        "Verified {} of {} in {}: {} ({}) hashed in {:.1}s",
        plural(s.pins, "pin", "pins"),
        s.lock.display(),
        s.cache_dir.display(),
        plural(s.blobs, "blob", "blobs"),
        human_bytes(s.bytes),
        s.seconds
    )];
    describe_problems(&s.problems, &mut lines);
    lines.join("\n")
}
