//! `dedupe`: stores each blob once across the repos of a cache and across the cache dirs given
//! (a primary cache on the home disk, a secondary on a big disk): copies of a blob become
//! reflinks where the file system supports them, hard links otherwise, never across file
//! systems ([`crate::ops::dedupe`]). `--dry-run` says what a run would save without reading or
//! changing a file.

use std::path::PathBuf;

use anyhow::Result;

use super::{missing_cache_dir, App, Outcome};
use crate::cache::dedupe::Method;
use crate::ops::{scan_caches, DedupeReport};
use crate::report::human_bytes;
use crate::text::plural;

pub struct DedupeOptions {
    /// The cache dirs to take together; the configured one when none is given.
    pub cache_dirs: Vec<PathBuf>,
    pub dry_run: bool,
}

pub async fn run(app: &App, opts: DedupeOptions) -> Result<Outcome> {
    let caches = scan_caches(&opts.cache_dirs).await?;
    // Every dir is checked before anything changes: a typo must not dedupe half a set.
    if let Some(missing) = caches.scans.iter().find(|s| !s.exists) {
        return Err(missing_cache_dir(missing).into());
    }
    for w in caches.scans.iter().flat_map(|s| &s.warnings) {
        app.printer.warn(&w.to_string());
    }
    let summary = crate::ops::dedupe(caches, opts.dry_run, &app.cancel).await?;
    let report = &summary.report;
    if report.interrupted {
        app.printer
            .note("interrupted: stopped between two blobs; run dedupe again to finish");
    }
    for f in &report.failures {
        app.printer.error(&format!("{}: {}", f.path, f.error));
    }
    app.printer.result(&summary, || text(&summary));
    Ok(Outcome::from_failures(report.failures.len()))
}

fn text(s: &DedupeReport) -> String {
    let r = &s.report;
    let blobs: std::collections::BTreeSet<&str> =
        r.linked.iter().map(|l| l.etag.as_str()).collect();
    let how = |m: Method| r.linked.iter().filter(|l| l.method == Some(m)).count();
    let mut lines = Vec::new();
    if r.linked.is_empty() {
        lines.push("Nothing to dedupe: every blob is stored once.".to_string());
    } else if s.dry_run {
        lines.push(format!(
            "Would link {} of {}, saving {}.",
            plural(r.linked.len(), "copy", "copies"),
            plural(blobs.len(), "blob", "blobs"),
            human_bytes(r.bytes_saved)
        ));
    } else {
        lines.push(format!(
            "Linked {} of {} ({} reflinked, {} hard-linked), saving {}.",
            plural(r.linked.len(), "copy", "copies"),
            plural(blobs.len(), "blob", "blobs"),
            how(Method::Reflink),
            how(Method::Hardlink),
            human_bytes(r.bytes_saved)
        ));
    }
    for l in &r.linked {
        lines.push(format!("  {} -> {}", l.path, l.to));
    }
    for k in &r.kept {
        lines.push(format!("kept {}: {}", k.path, k.reason));
    }
    lines.join("\n")
}
