//! `prune --remote --detached`: deletes the manifests no remote ref points at that were written
//! more than `--older-than` ago (default the gc grace period: a push writes a manifest before
//! its refs). Their blobs stay until `gc --remote` finds no other manifest names them.

use anyhow::Result;
use serde::Serialize;

use super::PruneOptions;
use crate::commands::deletion::remote::{
    delete_objects, may_delete, removal_lines, RemoteObject, Removal,
};
use crate::commands::{parse_age, App, Outcome};
use crate::config::ConfigError;
use crate::text::plural;
use crate::transfer::lifecycle::{plan_detached, DEFAULT_GRACE};

#[derive(Debug, Serialize)]
pub struct RemotePruneSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub older_than: String,
    /// Manifests a ref points at.
    pub attached: usize,
    /// Detached manifests kept because they are younger than `older_than`.
    pub recent: usize,
    /// How many of the objects deleted are tree listings (each deleted with its manifest).
    pub listings: usize,
    /// Manifests and their tree listings deleted, by key.
    #[serde(flatten)]
    pub removal: Removal,
}

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
    let (remote, layout) = app.open_remote(opts.remote.url())?;
    let plan = plan_detached(&remote, &layout, age).await?;
    let doomed: Vec<RemoteObject> = plan.manifests.iter().map(RemoteObject::from).collect();
    let mut summary = RemotePruneSummary {
        command: "prune",
        remote: remote.describe(),
        dry_run: opts.dry_run,
        older_than: age_text,
        attached: plan.attached,
        recent: plan.recent,
        listings: plan.listings,
        removal: Removal::default(),
    };
    if opts.dry_run || doomed.is_empty() {
        summary.removal = Removal::planned(doomed);
    } else {
        let lines: Vec<String> = doomed.iter().map(|o| format!("  {}", o.key)).collect();
        let question = format!(
            "Delete {} no ref points at from {}?",
            plural(doomed.len(), "manifest", "manifests"),
            summary.remote
        );
        if !may_delete(app, &remote, &layout, &lines, &question, opts.yes).await? {
            return Ok(Outcome::Failed);
        }
        summary.removal = delete_objects(app, &remote, &doomed).await?;
    }
    let outcome = Outcome::from_failures(summary.removal.failures.len());
    app.printer.result(&summary, || human(&summary));
    Ok(outcome)
}

fn human(s: &RemotePruneSummary) -> String {
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
