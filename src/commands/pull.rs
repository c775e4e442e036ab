//! `pull`: one revision fetched and landed by [`ops::pull::pull`] (from the remote or the
//! fallbacks after it, written through and laid out in a folder when asked), then said.

use std::path::Path;

use anyhow::Result;

use super::{planned_lines, App, Failure, Outcome};
use crate::ops;
use crate::report::human_bytes;
use crate::text::plural;
use crate::transfer::local_dir::{self, LocalDirError};

pub use crate::ops::pull::{PullOptions, PullReport, PullSummary};

pub async fn run(app: &App, opts: PullOptions) -> Result<Outcome> {
    let summary = match ops::pull::pull(&app.env(), opts).await? {
        PullReport::Pulled(summary) => summary,
        PullReport::WouldFallBack(w) => {
            app.printer.result(&w, || {
                format!(
                    "Would fetch {}@{} from {} ({}); a dry run fetches nothing",
                    w.repo, w.revision, w.would_fetch_from, w.reason
                )
            });
            return Ok(Outcome::Success);
        }
    };
    let outcome = Outcome::from_failures(summary.failures.len());
    let (ok, verbose) = (outcome == Outcome::Success, app.printer.verbose);
    app.printer
        .result(&summary, || human(&summary, ok, verbose));
    for w in summary.write_through.iter().filter(|w| !w.is_written()) {
        app.printer.warn(&w.describe());
    }
    let replaced = summary.local_dir.as_ref();
    if let Some(note) = replaced.and_then(|d| d.replaced_note(summary.dry_run)) {
        app.printer.warn(&note);
    }
    report_failures(app, &summary.failures, &app.settings.cache_dir);
    Ok(outcome)
}

/// The revision's line for people (what a dry run would download before it, with -v), then
/// what was written through.
fn human(s: &PullSummary, ok: bool, verbose: bool) -> String {
    let planned = s.planned.as_deref().unwrap_or_default();
    // The summary line is the revision's: only the blobs, with -v.
    let words = ("would download", "already present");
    let mut lines = planned_lines(planned, words, false, verbose);
    let verb = if s.dry_run {
        "Would pull"
    } else if ok {
        "Pulled"
    } else {
        "Failed to pull"
    };
    let blobs = plural(s.counts.downloaded, "blob", "blobs");
    let bytes = human_bytes(s.counts.bytes_downloaded);
    lines.push(if s.dry_run {
        format!(
            "{verb} {}: {}, would download {blobs} ({bytes}), {} already present",
            s.pulled.describe(),
            files_pulled(s),
            s.counts.skipped_existing,
        )
    } else {
        format!(
            "{verb} {}: {}, {blobs} downloaded ({bytes}{}), {} already present, in {:.1}s",
            s.pulled.describe(),
            files_pulled(s),
            s.counts.by_source(),
            s.counts.skipped_existing,
            s.seconds
        )
    });
    if let Some(d) = &s.local_dir {
        lines.push(local_dir_line(d, s.dry_run));
    }
    for w in s.write_through.iter().filter(|w| w.is_written()) {
        lines.push(w.describe());
    }
    lines.join("\n")
}

/// `3 files`, or `1 of 20 files` when file patterns chose.
fn files_pulled(s: &PullSummary) -> String {
    if s.files == s.files_in_revision {
        return plural(s.files, "file", "files");
    }
    format!(
        "{} of {}",
        s.files,
        plural(s.files_in_revision, "file", "files")
    )
}

/// The summary's line for `--local-dir`.
fn local_dir_line(d: &local_dir::Report, dry_run: bool) -> String {
    let (verb, how) = if dry_run {
        ("Would place", format!("({})", human_bytes(d.bytes_placed)))
    } else {
        (
            "Placed",
            format!("({} reflinked, {} copied)", d.reflinked, d.copied),
        )
    };
    format!(
        "{verb} {} in {} {how}, {} already current",
        plural(d.placed, "file", "files"),
        d.path.display(),
        d.already_current
    )
}

/// Each failure on stderr, then what to do about it.
fn report_failures(app: &App, failures: &[Failure], cache_dir: &Path) {
    for f in failures {
        app.printer.error(&f.to_string());
    }
    if failures.is_empty() {
        return;
    }
    let folder_hint = failures.iter().find_map(|f| {
        (*f.error)
            .downcast_ref::<LocalDirError>()
            .and_then(LocalDirError::hint)
    });
    if failures.iter().any(Failure::is_disk_full) {
        app.printer.hint(&format!(
            "the disk holding {} is full: free space (hf-cache-sync prune) or pull into \
                 another --cache-dir, then run the same command again",
            cache_dir.display()
        ));
    } else if let Some(hint) = folder_hint {
        app.printer.hint(&hint);
    } else {
        app.printer
            .hint("run the same command again to retry; verified blobs are kept");
    }
}
