//! `rm --remote`: the manifests and refs the targets name, planned from the remote's catalog
//! ([`crate::ops::rm::remote`]), asked about, then deleted; blobs stay.

use anyhow::Result;

use super::RmOptions;
use crate::commands::deletion::{ask, plural};
use crate::commands::{short, App, Outcome};
use crate::ops::rm::{plan_remote, RemoteRmReport};

pub(super) async fn run(app: &App, opts: &RmOptions) -> Result<Outcome> {
    let (remote, layout) = app.env().open_remote(opts.remote.url())?;
    let mut warnings = Vec::new();
    let planned = plan_remote(&remote, &layout, &opts.targets, &mut warnings).await;
    for w in &warnings {
        app.printer.warn(w);
    }
    let rm = planned?;
    if !opts.dry_run {
        let mut lines: Vec<String> = rm.refs.iter().map(|r| format!("  {}", r.key)).collect();
        lines.extend(rm.manifests.iter().map(|m| format!("  {}", m.key)));
        let question = format!(
            "Delete {} and {} from {}?",
            plural(rm.refs.len(), "ref", "refs"),
            plural(rm.manifests.len(), "manifest", "manifests"),
            rm.place
        );
        if !ask(app, &lines, &question, opts.yes).await? {
            return Ok(Outcome::Failed);
        }
    }
    let summary = rm.execute(&remote, &layout, opts.dry_run).await?;
    let outcome = Outcome::from_failures(summary.failures.len());
    app.printer.result(&summary, || human(&summary));
    Ok(outcome)
}

fn human(summary: &RemoteRmReport) -> String {
    let verb = if summary.dry_run {
        "Would delete"
    } else {
        "Deleted"
    };
    let mut lines = Vec::new();
    // A revision target whose revision stays (see `kept`) deleted nothing.
    for t in summary
        .targets
        .iter()
        .filter(|t| t.whole_repo || !t.commits.is_empty())
    {
        lines.push(format!(
            "{verb} {}: {}",
            t.repo,
            t.commits
                .iter()
                .map(|c| short(c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.push(format!(
        "{verb} {} and {} from {}.",
        plural(summary.refs.len(), "ref", "refs"),
        plural(summary.manifests.len(), "manifest", "manifests"),
        summary.remote
    ));
    for k in &summary.kept {
        lines.push(format!("Kept {}: {}", k.path, k.reason));
    }
    for f in &summary.failures {
        lines.push(format!("Failed to delete {}: {}", f.item, f.error));
    }
    lines.push(
        "Blobs stay on the remote: other revisions may share them, and a remote garbage \
         collection reclaims the rest."
            .into(),
    );
    lines.join("\n")
}
