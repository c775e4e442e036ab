//! `prune --remote --detached`: deletes the manifests no remote ref points at that were written
//! more than `--older-than` ago (default the gc grace period: a push writes a manifest before
//! its refs), as [`crate::ops::prune::remote`] plans them. Their blobs stay until `gc --remote`
//! finds no other manifest names them.

use anyhow::Result;

use super::PruneOptions;
use crate::commands::deletion::remote::{may_delete, removal_lines};
use crate::commands::{parse_age, App, Outcome};
use crate::config::ConfigError;
use crate::ops::prune::remote::{plan_remote_prune, RemotePruneReport};
use crate::text::plural;
use crate::transfer::lifecycle::DEFAULT_GRACE;

pub(super) async fn run(app: &App, opts: &PruneOptions) -> Result<Outcome> {
    if !opts.detached || opts.max_gb.is_some() {
        return Err(ConfigError::Usage {
            message: "prune --remote removes detached revisions only: pass --detached (and no \
                      --max-gb)"
                .into(),
            hint: "the remote keeps no access times; `hf-cache-sync rm --remote` removes given \
                   repos or revisions"
                .into(),
        }
        .into());
    }
    let age_text = opts
        .older_than
        .clone()
        .unwrap_or_else(|| DEFAULT_GRACE.into());
    let age = parse_age(&age_text)?;
    let (remote, layout) = app.env().open_remote(opts.remote.url())?;
    let prune = plan_remote_prune(&remote, &layout, (age_text, age)).await?;
    if !opts.dry_run && !prune.doomed.is_empty() {
        let lines: Vec<String> = prune
            .doomed
            .iter()
            .map(|o| format!("  {}", o.key))
            .collect();
        let question = format!(
            "Delete {} no ref points at from {}?",
            plural(prune.doomed.len(), "manifest", "manifests"),
            prune.place()
        );
        if !may_delete(app, &remote, &layout, &lines, &question, opts.yes).await? {
            return Ok(Outcome::Failed);
        }
    }
    let summary = prune.execute(&remote, opts.dry_run).await?;
    if let Some(why) = &summary.removal.batch_refused {
        app.printer.note(&format!(
            "the server refused a batch delete ({why}); deleting one object at a time"
        ));
    }
    let outcome = Outcome::from_failures(summary.removal.failures.len());
    app.printer.result(&summary, || human(&summary));
    Ok(outcome)
}

fn human(s: &RemotePruneReport) -> String {
    let (one, many) = if s.listings > 0 {
        (
            "detached manifest or its tree listing",
            "detached manifests and tree listings",
        )
    } else {
        ("detached manifest", "detached manifests")
    };
    let mut lines = removal_lines(&s.removal, s.dry_run, one, many, true);
    lines.push(format!(
        "Kept {} a ref points at and {} written within {}.",
        plural(s.attached, "manifest", "manifests"),
        plural(s.recent, "detached manifest", "detached manifests"),
        s.older_than
    ));
    lines.push(
        "Their blobs stay until `hf-cache-sync gc --remote` finds no other manifest names them."
            .into(),
    );
    lines.push(format!("Remote: {}", s.remote));
    lines.join("\n")
}
