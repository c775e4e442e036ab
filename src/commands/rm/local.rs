//! `rm` on the local cache: the targets resolved and the deletion planned under every repo's
//! lock ([`crate::ops::rm::local`]), the question asked, then the deletion carried out.

use anyhow::Result;

use super::RmOptions;
use crate::commands::deletion::{
    ask, interrupted_before_deleting, lock_and_scan, plural, report_lines, say_interrupted,
};
use crate::commands::{App, Outcome};
use crate::ops::rm::{plan_local, ResolvedTarget, RmReport};
use crate::report::human_bytes;

pub(super) async fn run(app: &App, opts: &RmOptions) -> Result<Outcome> {
    let locked = lock_and_scan(app).await?;
    let rm = plan_local(locked, &opts.targets, &app.cancel).await?;
    if app.cancel.requested() {
        return Ok(interrupted_before_deleting(app));
    }
    if !opts.dry_run {
        let preview = rm.deletion.preview();
        let question = format!(
            "Delete {}, freeing {}?",
            describe_targets(&rm.targets),
            human_bytes(preview.bytes_freed)
        );
        let lines = report_lines(&preview, true, false);
        if !ask(app, &lines, &question, opts.yes).await? {
            return Ok(Outcome::Failed);
        }
    }
    let summary = rm.execute(opts.dry_run, &app.cancel).await?;
    say_interrupted(app, &summary.report);
    app.printer.result(&summary, || human(&summary));
    Ok(Outcome::from_failures(summary.report.failures.len()))
}

fn human(summary: &RmReport) -> String {
    let mut lines = report_lines(&summary.report, summary.dry_run, false);
    lines.push(if summary.dry_run {
        format!(
            "Would free {}. Nothing was deleted (dry run).",
            human_bytes(summary.report.bytes_freed)
        )
    } else {
        format!("Freed {}.", human_bytes(summary.report.bytes_freed))
    });
    if summary.report.interrupted {
        lines.push("Interrupted before the end: run the same rm again to finish.".into());
    }
    lines.join("\n")
}

fn describe_targets(targets: &[ResolvedTarget]) -> String {
    let repos = targets.iter().filter(|t| t.whole_repo).count();
    let revisions = targets.iter().filter(|t| !t.whole_repo).count();
    match (repos, revisions) {
        (0, n) => plural(n, "revision", "revisions"),
        (n, 0) => plural(n, "repo", "repos"),
        (r, v) => format!(
            "{} and {}",
            plural(r, "repo", "repos"),
            plural(v, "revision", "revisions")
        ),
    }
}
