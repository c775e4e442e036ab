//! `gc --remote`: deletes blobs under the prefix that no manifest names, and multipart uploads
//! left unfinished, once they are older than the grace period. [`ops::gc`] takes the bucket's
//! lock and decides what goes, on complete knowledge only; this file asks and reports every key.

use anyhow::Result;

use super::deletion::refuse_without_consent;
use super::deletion::remote::{may_delete, removal_lines};
use super::{parse_age, App, Outcome};
use crate::config::ConfigError;
use crate::ops;
use crate::ops::gc::{GcRun, GcSummary};
use crate::text::plural;
use crate::transfer::lifecycle::{GcPlan, DEFAULT_GRACE};

#[derive(Debug)]
pub struct GcOptions {
    pub remote: super::RemoteChoice,
    pub grace: Option<String>,
    pub dry_run: bool,
    pub yes: bool,
}

pub async fn run(app: &App, opts: GcOptions) -> Result<Outcome> {
    if !opts.remote.asked() {
        return Err(ConfigError::Usage {
            message: "gc works on the remote only: pass --remote".into(),
            hint: "`hf-cache-sync prune` frees the local cache".into(),
        }
        .into());
    }
    let grace_text = opts.grace.clone().unwrap_or_else(|| DEFAULT_GRACE.into());
    let grace = parse_age(&grace_text)?;
    refuse_without_consent(opts.yes, opts.dry_run)?;
    let mut run = ops::gc::plan(
        &app.env(),
        opts.remote.url(),
        (grace_text, grace),
        opts.dry_run,
    )
    .await?;
    let result = ask_and_delete(app, &opts, &mut run).await;
    run.release().await;
    say(app, &mut run);
    let outcome = result?;
    if outcome == Outcome::Success || !run.summary.removal.failures.is_empty() {
        app.printer.result(&run.summary, || human(&run.summary));
    }
    Ok(outcome)
}

/// Asks (unless a dry run, or nothing goes), then deletes.
async fn ask_and_delete(app: &App, opts: &GcOptions, run: &mut GcRun) -> Result<Outcome> {
    say(app, run);
    if opts.dry_run || !run.has_work() {
        return Ok(Outcome::Success);
    }
    let question = question(&run.plan, &run.summary.remote);
    let lines = lines(&run.plan);
    if !may_delete(app, &run.remote, &run.layout, &lines, &question, opts.yes).await? {
        return Ok(Outcome::Failed);
    }
    run.execute().await?;
    Ok(Outcome::from_failures(run.summary.removal.failures.len()))
}

/// What the run has to say on stderr so far, said once.
fn say(app: &App, run: &mut GcRun) {
    for w in run.warnings.drain(..) {
        app.printer.warn(&w);
    }
    for n in run.notes.drain(..) {
        app.printer.note(&n);
    }
}

/// What the question lists: every blob and upload that goes.
fn lines(plan: &GcPlan) -> Vec<String> {
    let mut lines: Vec<String> = plan.blobs.iter().map(|o| format!("  {}", o.key)).collect();
    lines.extend(
        plan.uploads
            .iter()
            .map(|u| format!("  {} (unfinished upload {})", u.key, u.upload_id)),
    );
    lines
}

fn question(plan: &GcPlan, place: &str) -> String {
    let bytes: u64 = plan.blobs.iter().map(|o| o.size).sum();
    format!(
        "Delete {} ({}) and abort {} on {place}?",
        plural(plan.blobs.len(), "unreferenced blob", "unreferenced blobs"),
        crate::report::human_bytes(bytes),
        plural(
            plan.uploads.len(),
            "unfinished upload",
            "unfinished uploads"
        ),
    )
}

fn human(s: &GcSummary) -> String {
    let mut lines = removal_lines(
        &s.removal,
        s.dry_run,
        "unreferenced blob",
        "unreferenced blobs",
        false,
    );
    let verb = if s.dry_run { "Would abort" } else { "Aborted" };
    if s.dry_run {
        lines.extend(
            s.uploads
                .iter()
                .map(|u| format!("  {} (unfinished upload)", u.key)),
        );
    }
    lines.push(format!(
        "{verb} {} older than {}.",
        plural(s.uploads.len(), "unfinished upload", "unfinished uploads"),
        s.grace
    ));
    lines.push(format!(
        "Kept {} named by {} and {} younger than {}.",
        plural(s.referenced_blobs, "blob", "blobs"),
        plural(s.manifests, "manifest", "manifests"),
        plural(s.recent_blobs, "unreferenced blob", "unreferenced blobs"),
        s.grace
    ));
    lines.push(format!("Remote: {}", s.remote));
    lines.join("\n")
}
