//! `prune`: frees disk space in the local cache.
//!
//! Always removes orphaned blobs and abandoned partial downloads. With `--detached`, removes every
//! revision no ref points at (as `hf cache prune` does). Then, as hf-cache-sync 0.1 does, evicts
//! revisions least recently accessed first until the cache's distinct blob bytes fit the budget,
//! never one a ref points at. `--older-than` spares revisions accessed more recently
//! ([`crate::ops::prune`]). `--remote --detached` prunes the remote's detached manifests instead
//! ([`remote`]).

mod remote;

use anyhow::Result;

use super::deletion::{
    ask, interrupted_before_deleting, lock_and_scan, plural, refuse_without_consent, report_lines,
    say_interrupted,
};
use super::{parse_age, App, Outcome};
use crate::cache::delete::Report;
use crate::config::ConfigError;
use crate::ops::{plan_prune, PruneReport};
use crate::report::{budget, human_bytes};

#[derive(Debug)]
pub struct PruneOptions {
    pub max_gb: Option<f64>,
    pub detached: bool,
    pub older_than: Option<String>,
    pub dry_run: bool,
    pub yes: bool,
    /// Prune the remote's detached manifests instead of the local cache.
    pub remote: super::RemoteChoice,
}

pub async fn run(app: &App, opts: PruneOptions) -> Result<Outcome> {
    if opts.remote.asked() {
        refuse_without_consent(opts.yes, opts.dry_run)?;
        return remote::run(app, &opts).await;
    }
    let max_gb = opts.max_gb.unwrap_or(app.settings.max_local_gb);
    if !(max_gb.is_finite() && max_gb >= 0.0) {
        return Err(ConfigError::Usage {
            message: format!("--max-gb must be a non-negative number of GiB, got {max_gb}"),
            hint: "e.g. --max-gb 100 for 100 GiB (2^30 bytes each), as cache.max_local_gb".into(),
        }
        .into());
    }
    let older_than = match &opts.older_than {
        Some(text) => Some((text.clone(), parse_age(text)?)),
        None => None,
    };
    refuse_without_consent(opts.yes, opts.dry_run)?;
    let locked = lock_and_scan(app).await?;
    let ops_opts = crate::ops::PruneOptions {
        max_gb,
        detached: opts.detached,
        older_than,
        partial_max_age: app.settings.partial_max_age,
    };
    let prune = plan_prune(locked, &ops_opts, &app.cancel).await?;
    if app.cancel.requested() {
        return Ok(interrupted_before_deleting(app));
    }
    let preview = prune.deletion.preview();
    if !opts.dry_run && !preview.is_empty() {
        let question = format!(
            "Remove {}, freeing {}?",
            what(&preview),
            human_bytes(preview.bytes_freed)
        );
        let lines = report_lines(&preview, true, true);
        if !ask(app, &lines, &question, opts.yes).await? {
            return Ok(Outcome::Failed);
        }
    }
    let summary = prune.execute(opts.dry_run, &app.cancel).await?;
    say_interrupted(app, &summary.report);
    if !summary.within_budget && !summary.report.interrupted {
        app.printer.warn(&format!(
            "the cache still takes {} of blobs, over the {} budget: what is left is pointed \
                 at by refs{} (remove it with `hf-cache-sync rm`)",
            human_bytes(summary.size_after),
            budget(max_gb),
            if summary.older_than.is_some() {
                " or was used too recently for --older-than"
            } else {
                ""
            }
        ));
    }
    app.printer.result(&summary, || human(&summary));
    Ok(Outcome::from_failures(summary.report.failures.len()))
}

/// "3 revisions, 2 orphaned blobs and 1 stale partial download"
fn what(report: &Report) -> String {
    let mut parts = Vec::new();
    if !report.revisions.is_empty() {
        parts.push(plural(report.revisions.len(), "revision", "revisions"));
    }
    let orphans = report.orphans();
    if orphans > 0 {
        parts.push(plural(orphans, "orphaned blob", "orphaned blobs"));
    }
    if !report.shared_blobs.is_empty() {
        parts.push(plural(
            report.shared_blobs.len(),
            "shared-store payload",
            "shared-store payloads",
        ));
    }
    if !report.partials.is_empty() {
        parts.push(plural(
            report.partials.len(),
            "stale partial download",
            "stale partial downloads",
        ));
    }
    match parts.len() {
        0 => "nothing".into(),
        1 => parts.remove(0),
        _ => {
            let last = parts.pop().unwrap_or_default();
            format!("{} and {last}", parts.join(", "))
        }
    }
}

fn human(s: &PruneReport) -> String {
    let mut lines = vec![format!(
        "Cache at {}: {} of blobs, budget {}.",
        s.cache_dir,
        human_bytes(s.size_before),
        budget(s.max_gb)
    )];
    if let Some(k) = s.detached_kept {
        lines.push(format!(
            "Kept {} no ref points at ({}): --detached removes {}, as `hf cache prune` does.",
            plural(k.revisions, "revision", "revisions"),
            human_bytes(k.bytes),
            if k.revisions == 1 { "it" } else { "them" }
        ));
    }
    if s.report.is_empty() && s.report.kept.is_empty() && s.report.failures.is_empty() {
        lines.push(if s.size_before <= s.budget_bytes {
            format!(
                "Nothing to prune: under budget ({} of {}), and no orphaned blob or stale \
                 partial download.",
                human_bytes(s.size_before),
                budget(s.max_gb)
            )
        } else {
            format!(
                "Nothing to prune: over budget ({} of {}), but every revision is pointed at by \
                 a ref{}.",
                human_bytes(s.size_before),
                budget(s.max_gb),
                if s.older_than.is_some() {
                    " or was used too recently for --older-than"
                } else {
                    ""
                }
            )
        });
        return lines.join("\n");
    }
    lines.extend(report_lines(&s.report, s.dry_run, true));
    lines.push(if s.dry_run {
        format!(
            "Would free {}; blobs would take {}. Nothing was deleted (dry run).",
            human_bytes(s.report.bytes_freed),
            human_bytes(s.size_after)
        )
    } else {
        format!(
            "Freed {}; blobs now take {}.",
            human_bytes(s.report.bytes_freed),
            human_bytes(s.size_after)
        )
    });
    if s.report.interrupted {
        lines.push("Interrupted before the end: run the same prune again to finish.".into());
    }
    lines.join("\n")
}
