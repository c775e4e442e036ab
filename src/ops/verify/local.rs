//! The local side of `verify`: every blob hashed against its name ([`super::hash`]), plus what
//! the cache scanner found (broken or escaping links, refs without a snapshot), then `--repair`
//! when asked. Links that leave the cache are never followed: the scanner drops them and its
//! warning is a problem.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::hash::{blob_problems, hash_jobs, hash_with_progress};
use super::repair::Fixer;
use super::structure::structural_problems;
use super::Problem;
use crate::cache::scan::Repo;
use crate::ops::repos::{require_repos, RepoRef};
use crate::ops::{scan_existing, Env};
use crate::transfer::source::Source;

#[derive(Debug, Serialize)]
pub struct LocalSummary {
    pub command: &'static str,
    pub scope: &'static str,
    pub cache_dir: PathBuf,
    pub repos: usize,
    /// Distinct blob files hashed.
    pub blobs: usize,
    pub bytes: u64,
    /// What is still wrong.
    pub problems: Vec<Problem>,
    /// What `--repair` fixed.
    pub repaired: Vec<Problem>,
    pub seconds: f64,
    /// For stderr: tree listings not trusted (advisory scan warnings).
    #[serde(skip)]
    pub warnings: Vec<String>,
    /// For stderr: an empty cache.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// What the local check is asked for.
pub struct LocalOptions<'a> {
    /// Repos named (none: the whole cache).
    pub repos: &'a [String],
    /// `--repair`: fetch corrupt and missing blobs again from this remote (`--remote`'s value).
    pub repair_from: Option<Option<&'a std::ffi::OsStr>>,
    pub workers: Option<usize>,
}

/// Hashes every chosen blob, finds what the scanner found, and repairs when asked.
pub async fn verify_local(env: &Env<'_>, opts: LocalOptions<'_>) -> Result<LocalSummary> {
    let started = Instant::now();
    let wanted = RepoRef::parse_all(opts.repos)?;
    // Before hours of hashing, so a configuration problem shows at once.
    let remote = match opts.repair_from {
        Some(flag) => Some(env.open_remote(flag)?),
        None => None,
    };
    let cache_dir = env.settings.cache_dir.clone();
    let scan = scan_existing(&cache_dir).await?;
    require_repos(&scan, &wanted)?;
    let mut notes = Vec::new();
    if scan.repos.is_empty() {
        notes.push(format!(
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
    let warnings: Vec<String> = scan
        .warnings
        .iter()
        .filter(|w| w.advisory && w.repo.as_deref().is_some_and(|r| folders.contains(&r)))
        .map(|w| w.to_string())
        .collect();
    let jobs = hash_jobs(&scan, &chosen);
    let bytes: u64 = jobs.iter().map(|j| j.size).sum();
    let (jobs, verdicts) = hash_with_progress(jobs, opts.workers, env.progress("verify")).await?;
    let mut problems = blob_problems(&scan, &jobs, verdicts);
    problems.extend(structural);

    let mut repaired = Vec::new();
    if let Some((remote, layout)) = remote {
        if problems.iter().any(|p| p.kind.repairable()) {
            let source = Source::Remote { remote, layout };
            let fixer = Fixer {
                env,
                workers: opts.workers,
                source: &source,
                cache_dir: &cache_dir,
            };
            (problems, repaired) = fixer
                .repair_and_recheck(&scan, problems, &selected, wanted.is_empty())
                .await?;
        }
    }

    Ok(LocalSummary {
        command: "verify",
        scope: "local",
        cache_dir: scan.root.clone(),
        repos: chosen.len(),
        blobs: jobs.len(),
        bytes,
        problems,
        repaired,
        seconds: started.elapsed().as_secs_f64(),
        warnings,
        notes,
    })
}
