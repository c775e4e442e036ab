//! The local side of `verify`: every blob hashed against its name ([`crate::ops::verify::hash`]),
//! plus what the cache scanner found (broken or escaping links, refs without a snapshot), then
//! `--repair` when asked. Links that leave the cache are never followed: the scanner drops them
//! and its warning is a problem.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::repair::Fixer;
use super::{describe_problem, describe_problems, App, Outcome, VerifyOptions};
use crate::cache::scan::Repo;
use crate::commands::{require_repos, scan_existing, RepoRef};
use crate::ops::verify::hash::{blob_problems, hash_jobs, hash_with_progress};
use crate::ops::verify::structure::structural_problems;
use crate::ops::verify::Problem;
use crate::report::human_bytes;
use crate::text::plural;
use crate::transfer::source::Source;

#[derive(Debug, Serialize)]
struct LocalSummary {
    command: &'static str,
    scope: &'static str,
    cache_dir: PathBuf,
    repos: usize,
    /// Distinct blob files hashed.
    blobs: usize,
    bytes: u64,
    /// What is still wrong.
    problems: Vec<Problem>,
    /// What `--repair` fixed.
    repaired: Vec<Problem>,
    seconds: f64,
}

pub(super) async fn verify(app: &App, opts: &VerifyOptions) -> Result<Outcome> {
    let started = Instant::now();
    let wanted = RepoRef::parse_all(&opts.repos)?;
    // Before hours of hashing, so a configuration problem shows at once.
    let remote = if opts.repair {
        Some(app.open_remote(opts.remote.url())?)
    } else {
        None
    };
    let cache_dir = app.settings.cache_dir.clone();
    let scan = scan_existing(&cache_dir).await?;
    require_repos(&scan, &wanted)?;
    if scan.repos.is_empty() {
        app.printer.note(&format!(
            "no repos in {}: nothing to verify",
            scan.root.display()
        ));
    }
    let selected =
        |r: &Repo| wanted.is_empty() || wanted.iter().any(|w| w.matches(r.repo_type, &r.repo_id));
    let chosen: Vec<usize> = (0..scan.repos.len())
        .filter(|&i| selected(&scan.repos[i]))
        .collect();

    let structural = structural_problems(&scan, &chosen, wanted.is_empty());
    // A tree listing that is malformed or contradicts its snapshot is never trusted, by
    // huggingface_hub or this tool: a warning, not a fault of the cache.
    let folders: Vec<&str> = chosen
        .iter()
        .map(|&i| scan.repos[i].folder.as_str())
        .collect();
    for w in scan.warnings.iter().filter(|w| w.advisory) {
        if w.repo.as_deref().is_some_and(|r| folders.contains(&r)) {
            app.printer.warn(&w.to_string());
        }
    }
    let jobs = hash_jobs(&scan, &chosen);
    let bytes: u64 = jobs.iter().map(|j| j.size).sum();
    let (jobs, verdicts) = hash_with_progress(jobs, opts.workers, app.progress("verify")).await?;
    let mut problems = blob_problems(&scan, &jobs, verdicts);
    problems.extend(structural);

    let mut repaired = Vec::new();
    if let Some((remote, layout)) = remote {
        if problems.iter().any(|p| p.kind.repairable()) {
            let source = Source::Remote { remote, layout };
            let fixer = Fixer {
                app,
                opts,
                source: &source,
                cache_dir: &cache_dir,
            };
            (problems, repaired) = fixer
                .repair_and_recheck(&scan, problems, &selected, wanted.is_empty())
                .await?;
        }
    }

    let summary = LocalSummary {
        command: "verify",
        scope: "local",
        cache_dir: scan.root.clone(),
        repos: chosen.len(),
        blobs: jobs.len(),
        bytes,
        problems,
        repaired,
        seconds: started.elapsed().as_secs_f64(),
    };
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
