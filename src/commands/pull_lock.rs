//! `pull --lock FILE`: every pinned revision of a lock file, pulled by
//! [`ops::pull_lock::pull_lock`], then a line a pin and the totals.

use anyhow::Result;

use super::{short, App, Outcome};
use crate::ops;
use crate::report::human_bytes;
use crate::text::plural;

pub use crate::ops::pull_lock::{PullLockOptions, PullLockSummary};

pub async fn run(app: &App, opts: PullLockOptions) -> Result<Outcome> {
    let offline = opts.offline;
    let summary = ops::pull_lock::pull_lock(&app.env(), opts).await?;
    if summary.pins.is_empty() {
        app.printer.warn(&format!(
            "{} pins nothing: `hf-cache-sync lock -o {}` pins what the cache holds",
            summary.lock.display(),
            summary.lock.display()
        ));
    }
    app.printer.result(&summary, || human(&summary));
    for r in &summary.pins {
        let replaced = r.local_dir.as_ref();
        if let Some(note) = replaced.and_then(|d| d.replaced_note(summary.dry_run)) {
            app.printer.warn(&note);
        }
        for w in &r.write_through {
            if w.is_written() {
                app.printer.note(&w.describe());
            } else {
                app.printer.warn(&w.describe());
            }
        }
    }
    for r in summary.pins.iter().filter(|r| r.status == "failed") {
        app.printer.error(&format!(
            "{}:{}: {}@{}: {}",
            summary.lock.display(),
            r.line,
            r.pin.repo,
            short(&r.pin.revision),
            r.error.as_deref().unwrap_or("failed")
        ));
    }
    if summary.failed > 0 && offline {
        app.printer
            .hint("run without --offline to fetch what the cache lacks from the remote");
    }
    Ok(Outcome::from_failures(summary.failed))
}

/// A line a pin, then the totals.
fn human(s: &PullLockSummary) -> String {
    let mut lines: Vec<String> = s
        .pins
        .iter()
        .map(|r| {
            let what = r.pin.describe();
            match r.status {
                "present" => format!("  present     {what}"),
                "failed" => format!("  failed      {what}"),
                "would_pull" => format!(
                    "  would pull  {what}: {} ({})",
                    plural(r.counts.downloaded, "blob", "blobs"),
                    human_bytes(r.counts.bytes_downloaded)
                ),
                _ => format!(
                    "  pulled      {what}: {} ({}){}",
                    plural(r.counts.downloaded, "blob", "blobs"),
                    human_bytes(r.counts.bytes_downloaded),
                    r.counts.by_source()
                ),
            }
        })
        .collect();
    let blobs = plural(s.downloaded, "blob", "blobs");
    let bytes = human_bytes(s.bytes_downloaded);
    lines.push(if s.dry_run {
        format!(
            "Would pull {}: {} already present, {} to pull, {} failed; would download {blobs} \
             ({bytes})",
            s.lock.display(),
            s.present,
            s.pulled,
            s.failed,
        )
    } else {
        format!(
            "Pulled {}: {} already present, {} pulled, {} failed; {blobs} downloaded ({bytes}) in \
             {:.1}s",
            s.lock.display(),
            s.present,
            s.pulled,
            s.failed,
            s.seconds
        )
    });
    lines.join("\n")
}
