//! Blobs hashed against their names on a pool of threads, one file per thread at a time and
//! each file read once, and the problems a failed hash or read makes for every repo that owns
//! the blob.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;

use super::{Problem, ProblemKind};
use crate::cache::hash::{hash_file_with, BlobHasher};
use crate::cache::scan::{CacheScan, FileSource, Repo};
use crate::report::Progress;

/// One file to hash, and every repo blob whose content it is (a shared-store file may back the
/// same blob name in several repos).
pub struct HashJob {
    pub path: PathBuf,
    pub etag: String,
    pub size: u64,
    pub owners: Vec<usize>,
}

pub enum Verdict {
    Good,
    Mismatch(String),
    Unreadable(String),
}

/// A problem per repo that owns each blob whose hash or read failed.
pub fn blob_problems(scan: &CacheScan, jobs: &[HashJob], verdicts: Vec<Verdict>) -> Vec<Problem> {
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
pub fn hash_jobs(scan: &CacheScan, chosen: &[usize]) -> Vec<HashJob> {
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

/// Hashes every job off the async workers, on `workers` threads (else one a core), reporting to
/// `progress`; the jobs come back with their verdicts, in order.
pub async fn hash_with_progress(
    jobs: Vec<HashJob>,
    workers: Option<usize>,
    progress: Arc<dyn Progress>,
) -> Result<(Vec<HashJob>, Vec<Verdict>)> {
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
    use crate::ops::verify::structure::structural_problems;
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
