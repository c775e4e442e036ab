//! The local side of `verify`: every blob hashed and the cache's structure checked by
//! [`ops::verify::local`], repaired from the remote with `--repair`, then said.

use anyhow::Result;

use super::{describe_problem, describe_problems, App, Outcome, VerifyOptions};
use crate::ops;
use crate::ops::verify::local::{LocalOptions, LocalSummary};
use crate::report::human_bytes;
use crate::text::plural;

pub(super) async fn verify(app: &App, opts: &VerifyOptions) -> Result<Outcome> {
    let local = LocalOptions {
        repos: &opts.repos,
        repair_from: opts.repair.then(|| opts.remote.url()),
        workers: opts.workers,
    };
    let summary = ops::verify::local::verify_local(&app.env(), local).await?;
    for w in &summary.warnings {
        app.printer.warn(w);
    }
    for n in &summary.notes {
        app.printer.note(n);
    }
    app.printer.result(&summary, || human(&summary));
    if !opts.repair && summary.problems.iter().any(|p| p.kind.repairable()) {
        app.printer.hint(
            "`hf-cache-sync verify --repair` fetches corrupt and missing blobs again from the remote",
        );
    }
    Ok(Outcome::from_failures(summary.problems.len()))
}

/// The human report: what was hashed, what was repaired, what is still wrong.
fn human(summary: &LocalSummary) -> String {
    let mut lines = vec![format!(
        "Verified {} in {}: {} ({}) hashed in {:.1}s",
        plural(summary.repos, "repo", "repos"),
        summary.cache_dir.display(),
        plural(summary.blobs, "blob", "blobs"),
        human_bytes(summary.bytes),
        summary.seconds
    )];
    if !summary.repaired.is_empty() {
        lines.push(format!(
            "Repaired {}:",
            plural(summary.repaired.len(), "blob", "blobs")
        ));
        for p in &summary.repaired {
            describe_problem(p, &mut lines);
        }
    }
    describe_problems(&summary.problems, &mut lines);
    lines.join("\n")
}
