//! Verifying a lock file's pins: the cache holds every pinned revision and file, every byte
//! hashed against its blob name — what a project's asset check asks of its model folder, for
//! Hub caches. What a pin lacks (the repo, the revision, files its tree listing names, a blob a
//! link leads to) and every corrupt or unreadable blob is a problem, named with the lock file's
//! line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::hash::{blob_problems, hash_with_progress, HashJob};
use super::{Problem, ProblemKind};
use crate::cache::scan::{CacheScan, FileSource};
use crate::lockfile::{LockFile, Pin};
use crate::ops::{scan_existing, Env};
use crate::transfer::local_dir;
use crate::transfer::pinned::{blob_of, covered, manifest_files};

#[derive(Debug, Serialize)]
pub struct LockSummary {
    pub command: &'static str,
    pub scope: &'static str,
    pub lock: PathBuf,
    pub cache_dir: PathBuf,
    pub pins: usize,
    /// Distinct blob files hashed.
    pub blobs: usize,
    pub bytes: u64,
    pub problems: Vec<Problem>,
    pub seconds: f64,
}

/// Checks every pin of the lock file `file` against the cache, hashing with `workers` threads.
pub async fn verify_lock(
    env: &Env<'_>,
    file: &Path,
    workers: Option<usize>,
) -> Result<LockSummary> {
    let started = Instant::now();
    let lock = LockFile::read(file)?;
    let scan = scan_existing(&env.settings.cache_dir).await?;
    let mut problems = Vec::new();
    let mut jobs: BTreeMap<(PathBuf, String), HashJob> = BTreeMap::new();
    for entry in &lock.entries {
        match pinned_jobs(&scan, entry, &mut jobs) {
            Ok(()) => {}
            Err(detail) => problems.push(missing(&lock, entry, detail)),
        }
    }
    let folders = check_folders(&scan, &lock).await?;
    problems.extend(folders);
    let mut jobs: Vec<HashJob> = jobs.into_values().collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.size));
    let bytes: u64 = jobs.iter().map(|j| j.size).sum();
    let (jobs, verdicts) = hash_with_progress(jobs, workers, env.progress("verify")).await?;
    problems.extend(blob_problems(&scan, &jobs, verdicts));
    Ok(LockSummary {
        command: "verify",
        scope: "lock",
        lock: lock.path.clone(),
        cache_dir: scan.root.clone(),
        pins: lock.entries.len(),
        blobs: jobs.len(),
        bytes,
        problems,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Adds the blobs behind the pin's files to `jobs`, or says what the cache lacks of it.
fn pinned_jobs(
    scan: &CacheScan,
    entry: &Pin,
    jobs: &mut BTreeMap<(PathBuf, String), HashJob>,
) -> Result<(), String> {
    let index = scan
        .repos
        .iter()
        .position(|r| r.repo_type == entry.repo_type && r.repo_id == entry.repo_id);
    let repo = index.map(|i| &scan.repos[i]);
    let files = covered(repo, &entry.commit, &entry.files).map_err(|gap| gap.describe())?;
    let (repo, index) = (repo.expect("covered"), index.expect("covered"));
    for f in files {
        // A copy (a cache written without symlinks) whose name no tree listing gives counts
        // by its presence alone.
        let Some(etag) = blob_of(repo, &entry.commit, f) else {
            continue;
        };
        let path = match &f.source {
            FileSource::Blob(_) => match repo.blobs.get(&etag) {
                Some(blob) => blob.content_path.clone(),
                None => continue,
            },
            FileSource::Copy(path) => path.clone(),
        };
        let job = jobs
            .entry((path.clone(), etag.clone()))
            .or_insert_with(|| HashJob {
                path,
                etag,
                size: f.size,
                owners: Vec::new(),
            });
        if !job.owners.contains(&index) {
            job.owners.push(index);
        }
    }
    Ok(())
}

/// The folders pins name (`local-dir=`): every file there, hashed, with the metadata that makes
/// huggingface_hub take it as current. A pin whose cache lacks it is already a problem.
async fn check_folders(scan: &CacheScan, lock: &LockFile) -> Result<Vec<Problem>> {
    let mut wanted = Vec::new();
    for entry in &lock.entries {
        let Some(dir) = &entry.local_dir else {
            continue;
        };
        let repo = scan
            .repos
            .iter()
            .find(|r| r.repo_type == entry.repo_type && r.repo_id == entry.repo_id);
        if let Ok(files) = manifest_files(repo, &entry.commit, &entry.files) {
            wanted.push((entry.clone(), dir.clone(), files));
        }
    }
    let problems = tokio::task::spawn_blocking(move || {
        let mut problems = Vec::new();
        for (entry, dir, files) in wanted {
            for p in local_dir::check(&dir, &entry.commit, &files) {
                let mut problem = Problem::new(
                    ProblemKind::LocalDir,
                    format!("{}: {}", dir.join(&p.path).display(), p.detail),
                );
                problem.repo = Some(format!("{}/{}", entry.repo_type, entry.repo_id));
                problem.revision = Some(entry.commit.clone());
                problem.paths = vec![p.path];
                problems.push(problem);
            }
        }
        problems
    })
    .await?;
    Ok(problems)
}

fn missing(lock: &LockFile, entry: &Pin, detail: String) -> Problem {
    let mut p = Problem::new(
        ProblemKind::MissingPin,
        format!("{detail} ({}:{})", lock.path.display(), entry.line),
    );
    p.repo = Some(format!("{}/{}", entry.repo_type, entry.repo_id));
    p.revision = Some(entry.commit.clone());
    p
}
