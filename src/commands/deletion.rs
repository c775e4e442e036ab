//! What `prune` and `rm` share around a deletion: asking for consent (a prompt Ctrl-C can
//! interrupt), the scan's warnings, and describing what went for people. [`remote`] holds what
//! deletions from the remote (`gc --remote`, `prune --remote`) share.

pub mod remote;

use std::collections::BTreeSet;
use std::io::IsTerminal;

use anyhow::Result;

use super::{confirm, missing_cache_dir, short, App, Outcome};
use crate::cache::delete::Report;
use crate::config::ConfigError;
use crate::ops::delete::Locked;
use crate::report::human_bytes;

/// Without `--yes`, a deletion needs someone at a terminal to say yes: refuse up front, before
/// any work, so a script learns on its first run rather than the day something is deletable.
pub fn refuse_without_consent(yes: bool, dry_run: bool) -> Result<(), ConfigError> {
    if yes || dry_run || std::io::stdin().is_terminal() {
        return Ok(());
    }
    confirm("", false).map(|_| ())
}

/// Shows what is about to go (on stderr) and asks. True to go ahead; false when the answer is
/// no or Ctrl-C comes first (`cancel`).
pub async fn ask(app: &App, lines: &[String], question: &str, yes: bool) -> Result<bool> {
    if yes {
        return Ok(true);
    }
    for line in lines {
        app.printer.note(line);
    }
    // The terminal is read on a thread of its own: a read cannot be abandoned, and a detached
    // thread does not hold up the exit once Ctrl-C ends the run.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let question = question.to_string();
    std::thread::spawn(move || {
        let _ = tx.send(confirm(&question, false));
    });
    let go = tokio::select! {
        answer = rx => answer.map_err(|_| anyhow::anyhow!("the prompt thread ended without an answer"))??,
        () = app.cancel.requested_async() => {
            // The prompt line is still open: end it before saying anything.
            app.printer.note("");
            interrupted_before_deleting(app);
            return Ok(false);
        }
    };
    if !go {
        app.printer.note("Nothing deleted.");
    }
    Ok(go)
}

/// Locks every repo of the cache, then scans it ([`Locked::take`]); prints the scan's warnings.
/// A cache dir that does not exist is refused.
pub async fn lock_and_scan(app: &App) -> Result<Locked> {
    let locked = Locked::take(&app.settings.cache_dir).await?;
    if !locked.scan.exists {
        return Err(missing_cache_dir(&locked.scan).into());
    }
    for w in &locked.scan.warnings {
        app.printer.warn(&w.to_string());
    }
    Ok(locked)
}

/// Ctrl-C came before anything was deleted (while the cache was scanned or the deletion
/// planned): say so, and end the run.
pub fn interrupted_before_deleting(app: &App) -> Outcome {
    app.printer.note("interrupted: nothing was deleted");
    Outcome::Failed
}

/// After Ctrl-C stopped a deletion: what was removed so far, on stderr, and how to finish.
pub fn say_interrupted(app: &App, report: &Report) {
    if !report.interrupted {
        return;
    }
    let p = &app.printer;
    p.note("interrupted: stopped between two items; removed so far:");
    let lines = report_lines(report, false, false);
    if lines.is_empty() {
        p.note("  nothing");
    }
    for line in lines {
        p.note(&format!("  {line}"));
    }
    p.note("run the same command again to finish");
}

pub use crate::text::plural;

/// What a deletion removed (or would remove), for people: one line per repo or revision, one per
/// kind of leftover, then what was kept and what failed. `reasons` adds why each revision goes.
pub fn report_lines(report: &Report, dry_run: bool, reasons: bool) -> Vec<String> {
    let verb = if dry_run { "Would remove" } else { "Removed" };
    let mut lines = Vec::new();
    let whole: BTreeSet<&str> = report.repos.iter().map(|r| r.repo.as_str()).collect();
    for r in &report.repos {
        let revisions = report.revisions.iter().filter(|v| v.repo == r.repo).count();
        let refs: Vec<&str> = report
            .refs
            .iter()
            .filter(|x| x.repo == r.repo)
            .map(|x| x.name.as_str())
            .collect();
        let bytes: u64 = report
            .revisions
            .iter()
            .filter(|v| v.repo == r.repo)
            .map(|v| v.bytes)
            .sum();
        let refs = if refs.is_empty() {
            String::new()
        } else {
            format!(", refs {}", refs.join(", "))
        };
        lines.push(format!(
            "{verb} {} ({}{refs}, {})",
            r.repo,
            plural(revisions, "revision", "revisions"),
            human_bytes(bytes)
        ));
    }
    for v in &report.revisions {
        if whole.contains(v.repo.as_str()) {
            continue;
        }
        let mut details = Vec::new();
        if reasons {
            details.push(v.reason.clone());
        }
        if !v.refs.is_empty() {
            details.push(format!("refs {}", v.refs.join(", ")));
        }
        if let Some(t) = &v.last_accessed {
            details.push(format!("last accessed {t}"));
        }
        details.push(human_bytes(v.bytes));
        lines.push(format!(
            "{verb} {}@{} ({})",
            v.repo,
            short(&v.commit),
            details.join(", ")
        ));
    }
    let orphans: Vec<_> = report.blobs.iter().filter(|b| b.orphan).collect();
    if !orphans.is_empty() {
        lines.push(format!(
            "{verb} {} ({})",
            plural(orphans.len(), "orphaned blob", "orphaned blobs"),
            human_bytes(orphans.iter().map(|b| b.size).sum())
        ));
    }
    if !report.shared_blobs.is_empty() {
        lines.push(format!(
            "{verb} {} from the shared store ({})",
            plural(report.shared_blobs.len(), "payload", "payloads"),
            human_bytes(report.shared_blobs.iter().map(|b| b.size).sum())
        ));
    }
    if !report.partials.is_empty() {
        lines.push(format!(
            "{verb} {} ({})",
            plural(
                report.partials.len(),
                "stale partial download",
                "stale partial downloads"
            ),
            human_bytes(report.partials.iter().map(|p| p.size).sum())
        ));
    }
    if !report.leftovers.is_empty() {
        lines.push(format!(
            "{verb} {} an interrupted run had set aside",
            plural(
                report.leftovers.len(),
                "snapshot folder",
                "snapshot folders"
            )
        ));
    }
    for k in &report.kept {
        lines.push(format!("Kept {}: {}", k.path, k.reason));
    }
    for f in &report.failures {
        lines.push(format!("Failed to remove {}: {}", f.item, f.error));
    }
    lines
}
