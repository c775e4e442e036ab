//! `pull-all`: every remote repo with a `main` ref, pulled by [`ops::pull_all::pull_all`], then
//! a line a repo and the totals.

use anyhow::Result;

use super::{planned_lines, short, App, Outcome};
use crate::ops;
use crate::report::human_bytes;
use crate::text::plural;

pub use crate::ops::pull_all::{PullAllOptions, PullAllSummary};

pub async fn run(app: &App, opts: PullAllOptions) -> Result<Outcome> {
    let summary = ops::pull_all::pull_all(&app.env(), opts).await?;
    for note in &summary.notes {
        app.printer.note(note);
    }
    let verbose = app.printer.verbose;
    app.printer.result(&summary, || human(&summary, verbose));
    for r in &summary.repos {
        for w in &r.write_through {
            if w.is_written() {
                app.printer.note(&w.describe());
            } else {
                app.printer.warn(&w.describe());
            }
        }
    }
    Ok(Outcome::from_failures(summary.failed))
}

/// The run for people: what a dry run would download, each repo's result, then the totals.
fn human(s: &PullAllSummary, verbose: bool) -> String {
    let planned = s.planned.as_deref().unwrap_or_default();
    let words = ("  would download", "already present");
    let mut lines = planned_lines(planned, words, true, verbose);
    let failures = s.repos.iter().filter(|r| !s.dry_run || r.error.is_some());
    lines.extend(failures.map(|r| {
        let rev = r.revision.as_deref().map(short).unwrap_or("-");
        match &r.error {
            None => format!(
                "  ok      {}@{rev}: {} downloaded{}, {} already present",
                r.repo,
                r.counts.downloaded,
                r.counts.by_source(),
                r.counts.skipped_existing
            ),
            Some(e) => format!("  failed  {}@{rev}: {e}", r.repo),
        }
    }));
    let repos = plural(s.repos.len(), "repo", "repos");
    let blobs = plural(s.downloaded, "blob", "blobs");
    let bytes = human_bytes(s.bytes_downloaded);
    lines.push(if s.dry_run {
        format!(
            "Would pull {repos} ({} failed): would download {blobs} ({bytes}), {} already present",
            s.failed, s.skipped_existing
        )
    } else {
        format!(
            "Pulled {repos} ({} failed): {blobs} downloaded ({bytes}), {} already present, in {:.1}s",
            s.failed, s.skipped_existing, s.seconds
        )
    });
    lines.join("\n")
}
