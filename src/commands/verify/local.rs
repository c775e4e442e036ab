//! The local side of `verify`: every blob hashed against its name on a pool of threads, one file
//! per thread at a time and each file read once, plus what the cache scanner found (broken or
//! escaping links, refs without a snapshot). Links that leave the cache are never followed: the
//! scanner drops them and its warning is a problem.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::repair::Fixer;
use super::structure::structural_problems;
use super::{describe_problems, App, Outcome, Problem, ProblemKind, VerifyOptions};
use crate::cache::hash::{hash_file_with, BlobHasher};
use crate::cache::scan::{CacheScan, FileSource, Repo};
use crate::commands::{require_repos, scan_existing, RepoRef};
use crate::report::{human_bytes, Progress};
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

/// One file to hash, and every repo blob whose content it is (a shared-store file may back the
/// same blob name in several repos).
pub(super) struct HashJob {
    pub path: PathBuf,
    pub etag: String,
    pub size: u64,
    pub owners: Vec<usize>,
}

pub(super) enum Verdict {
    Good,
    Mismatch(String),
    Unreadable(String),
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
    let (jobs, verdicts) = hash_with_progress(app, jobs, opts.workers).await?;
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

/// A problem per repo that owns each blob whose hash or read failed.
pub(super) fn blob_problems(
    scan: &CacheScan,
    jobs: &[HashJob],
    verdicts: Vec<Verdict>,
) -> Vec<Problem> {
    let mut blob_problems = Vec::new();
    for (job, verdict) in jobs.iter().zip(verdicts) {
        let (kind, detail) = match verdict {
            Verdict::Good => continue,
            Verdict::Mismatch(actual) => (
                ProblemKind::CorruptBlob,
                format!(
                    "content does not match its name ({} is {actual})",
                    if job.etag.len() == 64 {
                        "sha256"
                    } else {
                        "git blob id"
                    }
                ),
            ),
            Verdict::Unreadable(e) => (ProblemKind::UnreadableBlob, e),
        };
        for &owner in &job.owners {
            let repo = &scan.repos[owner];
            let mut p = Problem::new(kind, detail.clone());
            p.repo = Some(repo.qualified_id());
            p.etag = Some(job.etag.clone());
            p.paths = users_of(repo, &job.etag);
            if p.paths.is_empty() {
                p.detail.push_str("; no snapshot uses it");
            }
            blob_problems.push(p);
        }
    }
    blob_problems
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
            p.describe(&mut lines);
        }
    }
    describe_problems(&summary.problems, &mut lines);
    lines.join("\n")
}

/// `<commit>/<path>` of every snapshot file linked to `etag`.
fn users_of(repo: &Repo, etag: &str) -> Vec<String> {
    let mut out = Vec::new();
    for rev in &repo.revisions {
        for f in &rev.files {
            if f.source == FileSource::Blob(etag.to_string()) {
                out.push(format!("{}/{}", rev.commit, f.path));
            }
        }
    }
    out
}

/// One job per distinct (content file, blob name), largest first so the pool ends together.
fn hash_jobs(scan: &CacheScan, chosen: &[usize]) -> Vec<HashJob> {
    let mut by_file: BTreeMap<(PathBuf, String), HashJob> = BTreeMap::new();
    for &i in chosen {
        for (etag, blob) in &scan.repos[i].blobs {
            by_file
                .entry((blob.content_path.clone(), etag.clone()))
                .or_insert_with(|| HashJob {
                    path: blob.content_path.clone(),
                    etag: etag.clone(),
                    size: blob.size,
                    owners: Vec::new(),
                })
                .owners
                .push(i);
        }
    }
    let mut jobs: Vec<HashJob> = by_file.into_values().collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.size));
    jobs
}

/// Hashes every job off the async workers, on `--workers` threads (else one a core), with a
/// progress bar; the jobs come back with their verdicts, in order.
pub(super) async fn hash_with_progress(
    app: &App,
    jobs: Vec<HashJob>,
    workers: Option<usize>,
) -> Result<(Vec<HashJob>, Vec<Verdict>)> {
    let progress = app.progress("verify");
    progress.add_total(jobs.len() as u64, jobs.iter().map(|j| j.size).sum());
    let threads = workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let hashing = progress.clone();
    let done = tokio::task::spawn_blocking(move || {
        let verdicts = hash_all(&jobs, threads, hashing.as_ref());
        (jobs, verdicts)
    })
    .await?;
    progress.finish();
    Ok(done)
}

/// Hashes every job on `threads` threads; verdicts in job order.
fn hash_all(jobs: &[HashJob], threads: usize, progress: &dyn Progress) -> Vec<Verdict> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, Verdict)>> = Mutex::new(Vec::with_capacity(jobs.len()));
    std::thread::scope(|s| {
        for _ in 0..threads.clamp(1, jobs.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                let verdict = check_blob(job, progress);
                progress.item_done();
                done.lock().expect("not poisoned").push((i, verdict));
            });
        }
    });
    let mut done = done.into_inner().expect("not poisoned");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, v)| v).collect()
}

fn check_blob(job: &HashJob, progress: &dyn Progress) -> Verdict {
    let size = match fs::metadata(&job.path) {
        Ok(m) => m.len(),
        Err(e) => return Verdict::Unreadable(format!("{}: {e}", job.path.display())),
    };
    let Some(hasher) = BlobHasher::for_name(&job.etag, size) else {
        return Verdict::Mismatch("not a blob name".into());
    };
    match hash_file_with(&job.path, hasher, |n| progress.add_bytes(n)) {
        Ok((_, read)) if read != size => Verdict::Unreadable(format!(
            "{} changed while it was read ({size} bytes, then {read})",
            job.path.display()
        )),
        Ok((digest, _)) if digest == job.etag => Verdict::Good,
        Ok((digest, _)) => Verdict::Mismatch(digest),
        Err(e) => Verdict::Unreadable(format!("{}: {e}", job.path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NoProgress;
    use std::os::unix::fs::symlink;
    use std::path::Path;

    const C1: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const HELLO_SHA1: &str = "ce013625030ba8dba906f756967f9e9ca394464a";

    fn repo_with_hello(root: &Path) -> PathBuf {
        let repo = root.join("models--org--m");
        fs::create_dir_all(repo.join("blobs")).unwrap();
        fs::create_dir_all(repo.join("snapshots").join(C1).join("sub")).unwrap();
        fs::write(repo.join("blobs").join(HELLO_SHA1), b"hello\n").unwrap();
        symlink(
            format!("../../../blobs/{HELLO_SHA1}"),
            repo.join("snapshots").join(C1).join("sub/h.txt"),
        )
        .unwrap();
        repo
    }

    fn verdicts(root: &Path) -> Vec<(String, bool)> {
        let scan = crate::cache::scan::scan(root);
        let chosen: Vec<usize> = (0..scan.repos.len()).collect();
        let jobs = hash_jobs(&scan, &chosen);
        let v = hash_all(&jobs, 3, &NoProgress);
        jobs.iter()
            .zip(v)
            .map(|(j, v)| (j.etag.clone(), matches!(v, Verdict::Good)))
            .collect()
    }

    #[test]
    fn good_and_corrupt_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo_with_hello(dir.path());
        assert_eq!(verdicts(dir.path()), vec![(HELLO_SHA1.to_string(), true)]);
        fs::write(repo.join("blobs").join(HELLO_SHA1), b"HELLO\n").unwrap();
        assert_eq!(verdicts(dir.path()), vec![(HELLO_SHA1.to_string(), false)]);
    }

    #[test]
    fn missing_blob_behind_a_link_is_one_problem() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo_with_hello(dir.path());
        fs::remove_file(repo.join("blobs").join(HELLO_SHA1)).unwrap();
        let scan = crate::cache::scan::scan(dir.path());
        let problems = structural_problems(&scan, &[0], true);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].kind, ProblemKind::MissingBlob);
        assert_eq!(problems[0].etag.as_deref(), Some(HELLO_SHA1));
        assert_eq!(problems[0].paths, vec![format!("{C1}/sub/h.txt")]);
    }

    #[test]
    fn warnings_are_attributed_to_their_repo() {
        let dir = tempfile::tempdir().unwrap();
        let repo = repo_with_hello(dir.path());
        fs::create_dir_all(repo.join("refs")).unwrap();
        fs::write(repo.join("refs/main"), "b".repeat(40)).unwrap();
        let other = dir.path().join("models--org--m2");
        fs::create_dir_all(other.join("blobs")).unwrap();
        let scan = crate::cache::scan::scan(dir.path());
        let only_m = structural_problems(&scan, &[0], false);
        assert_eq!(only_m.len(), 1, "{only_m:?}");
        assert_eq!(only_m[0].repo.as_deref(), Some("model/org/m"));
        assert!(only_m[0].detail.contains("no snapshot"));
        let all = structural_problems(&scan, &[0, 1], true);
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(all[1].repo.as_deref(), Some("model/org/m2"), "{all:?}");
    }
}
