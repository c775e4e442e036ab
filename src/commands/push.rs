//! `push`: the cache's repos sent to the remote by [`ops::push::push`] (blobs the remote lacks,
//! then manifests, then refs), then said.

use anyhow::Result;

use super::{planned_lines, App, Outcome};
use crate::ops;
use crate::transfer::push::PushSummary;

pub use crate::ops::push::PushOptions;

pub async fn run(app: &App, opts: PushOptions) -> Result<Outcome> {
    let pushed = ops::push::push(&app.env(), opts).await?;
    for w in &pushed.warnings {
        app.printer.warn(w);
    }
    for note in &pushed.notes {
        app.printer.note(note);
    }
    let summary = pushed.summary;
    let verbose = app.printer.verbose;
    app.printer
        .result(&summary, || human_summary(&summary, verbose));
    Ok(Outcome::from_failures(summary.failures.len()))
}

/// What a dry run would move, revision by revision (blob by blob with -v), then the totals.
fn human_summary(s: &PushSummary, verbose: bool) -> String {
    let planned = s.planned.as_deref().unwrap_or_default();
    let words = ("would upload", "already on the remote");
    let mut lines = planned_lines(planned, words, true, verbose);
    lines.push(s.text());
    lines.join("\n")
}
