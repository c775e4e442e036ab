//! `verify`: the local cache (every blob hashed against its name, every snapshot link and ref
//! checked), or with `--remote` the remote (every manifest's blobs present with the stated size,
//! every ref naming a manifest). `--repair` fetches corrupt and missing local blobs again.
//!
//! Hashing runs on a pool of threads, one file per thread at a time, each file read once. Links
//! that leave the cache are never followed: the scanner drops them and its warning is a problem.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::{
    lock_waiter, require_repos, scan_existing, short, App, Outcome, RepoRef, TransferOptions,
};
use crate::cache::hash::{hash_file_with, BlobHasher};
use crate::cache::lock::lock_blob;
use crate::cache::scan::{normalize_lexically, relative_slash_path, CacheScan, FileSource, Repo};
use crate::cache::write::{ensure_repo_dirs, sync_dir, BlobWriter};
use crate::cache::{is_blob_name, lock_path};
use crate::config::ConfigError;
use crate::manifest::{
    parse_ref_body, safe_repo_key, Layout, Manifest, MAX_MANIFEST_BYTES, MAX_REF_BYTES,
};
use crate::remote::{Remote, RemoteError, TransferCtx};
use crate::report::{human_bytes, Progress};

#[derive(Debug)]
pub struct VerifyOptions {
    pub repos: Vec<String>,
    pub remote: bool,
    pub repair: bool,
    pub workers: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A local blob whose content does not hash to its name.
    CorruptBlob,
    /// A local blob that could not be read.
    UnreadableBlob,
    /// A blob that snapshot links (locally) or a manifest (remotely) name, but that is absent.
    MissingBlob,
    /// Anything else the cache scanner found: broken or escaping links, refs without a
    /// snapshot, stray files in `snapshots/`.
    Cache,
    /// A remote blob whose size is not the one its manifest states.
    SizeMismatch,
    /// A remote manifest that cannot be read or is refused.
    BadManifest,
    /// A remote ref whose body is not a commit hash.
    BadRef,
    /// A remote ref naming a commit that has no manifest.
    DanglingRef,
}

impl ProblemKind {
    fn label(self) -> &'static str {
        match self {
            ProblemKind::CorruptBlob => "corrupt blob",
            ProblemKind::UnreadableBlob => "unreadable blob",
            ProblemKind::MissingBlob => "missing blob",
            ProblemKind::Cache => "cache",
            ProblemKind::SizeMismatch => "size mismatch",
            ProblemKind::BadManifest => "bad manifest",
            ProblemKind::BadRef => "bad ref",
            ProblemKind::DanglingRef => "dangling ref",
        }
    }

    /// Problems `--repair` can fix by fetching the blob again.
    fn repairable(self) -> bool {
        matches!(
            self,
            ProblemKind::CorruptBlob | ProblemKind::UnreadableBlob | ProblemKind::MissingBlob
        )
    }
}

/// One thing wrong, with whatever identifies it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// `model/org/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The remote object concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Files that use the blob: `<commit>/<path>` locally, `<path>` in a remote manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    pub detail: String,
    /// Why `--repair` could not fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_error: Option<String>,
}

impl Problem {
    fn new(kind: ProblemKind, detail: String) -> Problem {
        Problem {
            kind,
            repo: None,
            revision: None,
            etag: None,
            key: None,
            paths: Vec::new(),
            detail,
            repair_error: None,
        }
    }

    fn describe(&self, lines: &mut Vec<String>) {
        let mut head = format!("  {}", self.kind.label());
        if self.kind == ProblemKind::Cache {
            head = format!("  {}", self.detail);
        } else {
            if let Some(etag) = &self.etag {
                head.push_str(&format!(" {etag}"));
            } else if let Some(key) = &self.key {
                head.push_str(&format!(" {key}"));
            }
            if let Some(repo) = &self.repo {
                head.push_str(&format!(" in {repo}"));
                if let Some(rev) = &self.revision {
                    head.push_str(&format!("@{}", short(rev)));
                }
            }
            head.push_str(&format!(": {}", self.detail));
        }
        lines.push(head);
        if !self.paths.is_empty() {
            let paths: Vec<String> = self.paths.iter().map(|p| short_path(p)).collect();
            lines.push(format!("      used by {}", paths.join(", ")));
        }
        if let Some(e) = &self.repair_error {
            lines.push(format!("      not repaired: {e}"));
        }
    }
}

/// `<12 hex>/<path>` for `<40 hex>/<path>`, as people read commits.
/// The human report's list of problems, or the all-clear.
fn describe_problems(problems: &[Problem], lines: &mut Vec<String>) {
    if problems.is_empty() {
        lines.push("No problems found.".into());
        return;
    }
    lines.push(format!("{}:", count(problems.len(), "problem", "problems")));
    for p in problems {
        p.describe(lines);
    }
}

fn short_path(p: &str) -> String {
    match p.split_once('/') {
        Some((commit, rest)) if commit.len() == 40 => format!("{}/{rest}", short(commit)),
        _ => p.to_string(),
    }
}

fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

pub async fn run(app: &App, opts: VerifyOptions) -> Result<Outcome> {
    if opts.remote && opts.repair {
        return Err(ConfigError::Invalid(
            "--repair fixes the local cache from the remote; run it without --remote".into(),
        )
        .into());
    }
    if opts.remote {
        verify_remote(app, &opts).await
    } else {
        verify_local(app, &opts).await
    }
}

// ---------------------------------------------------------------------------------------------
// Local

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
struct HashJob {
    path: PathBuf,
    etag: String,
    size: u64,
    owners: Vec<usize>,
}

enum Verdict {
    Good,
    Mismatch(String),
    Unreadable(String),
}

async fn verify_local(app: &App, opts: &VerifyOptions) -> Result<Outcome> {
    let started = Instant::now();
    let wanted: Vec<RepoRef> = opts.repos.iter().map(|r| RepoRef::parse(r)).collect();
    // Before hours of hashing, so a configuration problem shows at once.
    let remote = if opts.repair {
        Some(app.open_remote(None)?)
    } else {
        None
    };
    let cache_dir = app.settings.cache_dir.clone();
    let scan = scan_existing(&cache_dir).await?;
    require_repos(&scan, &wanted)?;
    let selected =
        |r: &Repo| wanted.is_empty() || wanted.iter().any(|w| w.matches(r.repo_type, &r.repo_id));
    let chosen: Vec<usize> = (0..scan.repos.len())
        .filter(|&i| selected(&scan.repos[i]))
        .collect();

    let structural = structural_problems(&scan, &chosen, wanted.is_empty());
    let jobs = hash_jobs(&scan, &chosen);
    let bytes: u64 = jobs.iter().map(|j| j.size).sum();
    let progress = app.progress("verify");
    progress.add_total(jobs.len() as u64, bytes);
    let threads = opts.workers.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let (jobs, verdicts) = {
        let progress = progress.clone();
        tokio::task::spawn_blocking(move || {
            let verdicts = hash_all(&jobs, threads, progress.as_ref());
            (jobs, verdicts)
        })
        .await?
    };
    progress.finish();
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
    let mut problems = blob_problems;
    problems.extend(structural);

    let mut repaired = Vec::new();
    if let Some((remote, layout)) = remote {
        if problems.iter().any(|p| p.kind.repairable()) {
            let fixer = Fixer {
                app,
                opts,
                remote: &remote,
                layout: &layout,
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
    app.printer.result(&summary, || {
        let mut lines = vec![format!(
            "Verified {} in {}: {} ({}) hashed in {:.1}s",
            count(summary.repos, "repo", "repos"),
            summary.cache_dir.display(),
            count(summary.blobs, "blob", "blobs"),
            human_bytes(summary.bytes),
            summary.seconds
        )];
        if !summary.repaired.is_empty() {
            lines.push(format!(
                "Repaired {}:",
                count(summary.repaired.len(), "blob", "blobs")
            ));
            for p in &summary.repaired {
                p.describe(&mut lines);
            }
        }
        describe_problems(&summary.problems, &mut lines);
        lines.join("\n")
    });
    if !opts.repair && summary.problems.iter().any(|p| p.kind.repairable()) {
        eprintln!(
            "hint: `hf-cache-sync verify --repair` fetches corrupt and missing blobs again from the remote"
        );
    }
    Ok(Outcome::from_failures(summary.problems.len()))
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

/// Missing blobs (from broken snapshot links) and the scanner's other findings, for the chosen
/// repos; warnings about no repo in particular only when the whole cache is checked.
fn structural_problems(scan: &CacheScan, chosen: &[usize], whole_cache: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Links already reported as a missing blob: the scanner's warning about each says no more.
    let mut explained: Vec<PathBuf> = Vec::new();
    for &i in chosen {
        let repo = &scan.repos[i];
        for (etag, uses) in missing_blobs(repo) {
            let n = uses.len();
            let mut p = Problem::new(
                ProblemKind::MissingBlob,
                format!(
                    "blobs/{etag} is missing or unusable; {} broken",
                    count(n, "snapshot link is", "snapshot links are")
                ),
            );
            p.repo = Some(repo.qualified_id());
            p.etag = Some(etag);
            for (path, link) in uses {
                p.paths.push(path);
                explained.push(link);
            }
            problems.push(p);
        }
    }
    for w in &scan.warnings {
        if explained.contains(&w.path) {
            continue;
        }
        let owner = chosen
            .iter()
            .map(|&i| &scan.repos[i])
            .find(|r| w.repo.as_deref() == Some(r.folder.as_str()));
        if owner.is_none() && !whole_cache {
            continue;
        }
        let mut p = Problem::new(ProblemKind::Cache, w.to_string());
        p.repo = owner.map(Repo::qualified_id);
        problems.push(p);
    }
    problems
}

/// Snapshot links into this repo's `blobs/` whose blob the scanner did not accept (absent, a
/// broken link, a link out of the cache): etag → (`<commit>/<path>`, link).
fn missing_blobs(repo: &Repo) -> BTreeMap<String, Vec<(String, PathBuf)>> {
    let mut out: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    let blobs_dir = normalize_lexically(&repo.dir.join("blobs"));
    let Ok(entries) = fs::read_dir(repo.dir.join("snapshots")) else {
        return out;
    };
    for entry in entries.filter_map(Result::ok) {
        let root = entry.path();
        if !root.is_dir() {
            continue;
        }
        let Ok(commit) = entry.file_name().into_string() else {
            continue;
        };
        let mut links = Vec::new();
        collect_links(&root, &mut links);
        for link in links {
            let Ok(target) = fs::read_link(&link) else {
                continue;
            };
            let Some(parent) = link.parent() else {
                continue;
            };
            let joined = normalize_lexically(&parent.join(target));
            let name = joined.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if joined.parent() != Some(blobs_dir.as_path())
                || !is_blob_name(name)
                || repo.blobs.contains_key(name)
            {
                continue;
            }
            let Some(rel) = relative_slash_path(&root, &link) else {
                continue;
            };
            out.entry(name.to_string())
                .or_default()
                .push((format!("{commit}/{rel}"), link));
        }
    }
    out
}

fn collect_links(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_links(&entry.path(), out),
            Ok(t) if t.is_symlink() => out.push(entry.path()),
            _ => {}
        }
    }
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

/// What `--repair` needs: the remote to fetch from and the cache to write to.
struct Fixer<'a> {
    app: &'a App,
    opts: &'a VerifyOptions,
    remote: &'a Remote,
    layout: &'a Layout,
    cache_dir: &'a Path,
}

impl Fixer<'_> {
    /// Fetches the blobs of the repairable problems, then checks the cache again: returns what
    /// is still wrong and what was fixed. Fetched blobs were verified as they were written, so
    /// only the scan runs again, not the hashing.
    async fn repair_and_recheck(
        &self,
        scan: &CacheScan,
        problems: Vec<Problem>,
        selected: &dyn Fn(&Repo) -> bool,
        whole_cache: bool,
    ) -> Result<(Vec<Problem>, Vec<Problem>)> {
        let targets: Vec<RepairTarget> = problems
            .iter()
            .filter(|p| p.kind.repairable())
            .map(|p| {
                let repo = scan
                    .repos
                    .iter()
                    .find(|r| Some(r.qualified_id()) == p.repo)
                    .expect("problems name scanned repos");
                RepairTarget {
                    repo: repo.qualified_id(),
                    repo_dir: repo.dir.clone(),
                    folder: repo.folder.clone(),
                    etag: p.etag.clone().expect("blob problems name their blob"),
                }
            })
            .collect();
        let outcomes = self.repair(targets).await;
        let id = |p: &Problem| {
            (
                p.repo.clone().unwrap_or_default(),
                p.etag.clone().unwrap_or_default(),
            )
        };

        let mut remaining = Vec::new();
        let mut repaired = Vec::new();
        for mut p in problems {
            // Everything else is found again (or not) by the new scan below.
            if !p.kind.repairable() {
                continue;
            }
            match outcomes.get(&id(&p)) {
                Some(Ok(())) => repaired.push(p),
                Some(Err(e)) => {
                    p.repair_error = Some(e.clone());
                    if p.kind != ProblemKind::MissingBlob {
                        remaining.push(p);
                    }
                }
                None => remaining.push(p),
            }
        }
        let rescan = scan_existing(self.cache_dir).await?;
        let chosen: Vec<usize> = (0..rescan.repos.len())
            .filter(|&i| selected(&rescan.repos[i]))
            .collect();
        for mut p in structural_problems(&rescan, &chosen, whole_cache) {
            if let Some(Err(e)) = outcomes.get(&id(&p)) {
                p.repair_error = Some(e.clone());
            }
            remaining.push(p);
        }
        Ok((remaining, repaired))
    }

    /// Fetches each target's blob from the remote (sizes from one LIST of `blobs/`), verified
    /// while it streams and renamed over the bad file only once it matches. Result per
    /// (repo, etag).
    async fn repair(
        &self,
        targets: Vec<RepairTarget>,
    ) -> HashMap<(String, String), Result<(), String>> {
        let (remote, layout) = (self.remote, self.layout);
        let mut outcomes = HashMap::new();
        let sizes: HashMap<String, u64> = match remote.list(&layout.blobs_prefix()).await {
            Ok(objects) => objects
                .iter()
                .filter_map(|o| Some((layout.parse_blob_key(&o.key)?.to_string(), o.size)))
                .collect(),
            Err(e) => {
                if let Some(h) = e.hint() {
                    eprintln!("hint: {h}");
                }
                let msg = format!("cannot list {}: {e}", remote.describe());
                for t in targets {
                    outcomes.insert((t.repo, t.etag), Err(msg.clone()));
                }
                return outcomes;
            }
        };
        let transfer = TransferOptions {
            workers: self.opts.workers,
            ..Default::default()
        };
        let ctx = self.app.transfer_ctx(&transfer, "repair");
        let mut ready = Vec::new();
        for t in targets {
            match sizes.get(&t.etag) {
                Some(&size) => ready.push((t, size)),
                None => {
                    let msg = format!(
                        "not on the remote ({} at {})",
                        layout.blob_key(&t.etag),
                        remote.describe()
                    );
                    outcomes.insert((t.repo, t.etag), Err(msg));
                }
            }
        }
        ctx.progress
            .add_total(ready.len() as u64, ready.iter().map(|(_, s)| s).sum());
        let ctx = &ctx;
        let results: Vec<_> = stream::iter(ready)
            .map(|(t, size)| async move {
                let result = repair_one(remote, layout, self.cache_dir, ctx, &t, size).await;
                ctx.progress.item_done();
                (t, result)
            })
            .buffer_unordered(ctx.workers)
            .collect()
            .await;
        ctx.progress.finish();
        for (t, result) in results {
            outcomes.insert((t.repo, t.etag), result);
        }
        outcomes
    }
}

struct RepairTarget {
    repo: String,
    repo_dir: PathBuf,
    folder: String,
    etag: String,
}

async fn repair_one(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    ctx: &TransferCtx,
    t: &RepairTarget,
    size: u64,
) -> Result<(), String> {
    // The same lock huggingface_hub takes, so neither writes this blob while the other does.
    let lock_file = lock_path(cache_dir, &t.folder, &t.etag);
    let progress: Arc<dyn Progress> = ctx.progress.clone();
    let timeout = ctx.lock_timeout;
    let on_wait = lock_waiter(
        progress,
        lock_file.clone(),
        format!("another process is writing blob {}", t.etag),
        timeout,
    );
    let _lock = tokio::task::spawn_blocking(move || lock_blob(&lock_file, timeout, on_wait))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let writer = ensure_repo_dirs(&t.repo_dir)
        .and_then(|()| BlobWriter::create(&t.repo_dir, &t.etag, size))
        .map_err(|e| e.to_string())?;
    let path = remote
        .download_blob(&layout.blob_key(&t.etag), writer, size, ctx)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(dir) = path.parent() {
        sync_dir(dir);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Remote

#[derive(Debug, Serialize)]
struct RemoteSummary {
    command: &'static str,
    scope: &'static str,
    remote: String,
    manifests: usize,
    refs: usize,
    /// Distinct blobs the checked manifests name.
    blobs: usize,
    problems: Vec<Problem>,
    seconds: f64,
}

/// A manifest key and what reading it gave.
type Fetched<'a> = (&'a str, Result<Option<Vec<u8>>, RemoteError>);

async fn verify_remote(app: &App, opts: &VerifyOptions) -> Result<Outcome> {
    let started = Instant::now();
    let wanted: Vec<RepoRef> = opts.repos.iter().map(|r| RepoRef::parse(r)).collect();
    let wanted_keys: HashSet<String> = wanted.iter().map(|w| safe_repo_key(&w.repo_id)).collect();
    let wants_key = |safe: &str| wanted.is_empty() || wanted_keys.contains(safe);
    let (remote, layout) = app.open_remote(None)?;
    let workers = opts.workers.unwrap_or(app.settings.transfer.workers);

    // One LIST each: blobs with their sizes, manifests, refs.
    let (blobs_prefix, manifests_prefix, refs_prefix) = (
        layout.blobs_prefix(),
        layout.manifests_prefix(),
        layout.refs_prefix(),
    );
    let (blob_objects, manifest_objects, ref_objects) = tokio::try_join!(
        remote.list(&blobs_prefix),
        remote.list(&manifests_prefix),
        remote.list(&refs_prefix),
    )?;
    let blob_sizes: HashMap<&str, u64> = blob_objects
        .iter()
        .filter_map(|o| Some((layout.parse_blob_key(&o.key)?, o.size)))
        .collect();
    let manifest_keys: HashSet<&str> = manifest_objects.iter().map(|o| o.key.as_str()).collect();

    let mut problems = Vec::new();
    let to_fetch: Vec<&str> = manifest_objects
        .iter()
        .map(|o| o.key.as_str())
        .filter(|k| {
            layout
                .parse_manifest_key(k)
                .is_some_and(|(safe, _)| wants_key(safe))
        })
        .collect();
    let mut fetched: Vec<Fetched> = stream::iter(to_fetch)
        .map(|key| {
            let remote = &remote;
            async move { (key, remote.get(key, MAX_MANIFEST_BYTES).await) }
        })
        .buffer_unordered(workers)
        .collect()
        .await;
    fetched.sort_by(|a, b| a.0.cmp(b.0));

    let mut manifests = 0;
    let mut checked_blobs: HashSet<String> = HashSet::new();
    for (key, result) in fetched {
        let bytes = match result {
            Ok(Some(b)) => b,
            // Deleted between the LIST and the GET: nothing left to check.
            Ok(None) => continue,
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                let mut p = Problem::new(ProblemKind::BadManifest, format!("cannot read: {e}"));
                p.key = Some(key.to_string());
                problems.push(p);
                continue;
            }
        };
        let manifest = match Manifest::parse(&bytes) {
            Ok(m) => m,
            Err(e) => {
                let mut p = Problem::new(ProblemKind::BadManifest, e.to_string());
                p.key = Some(key.to_string());
                problems.push(p);
                continue;
            }
        };
        let repo_type = manifest.repo_type().expect("validated");
        if !wanted.is_empty() && !wanted.iter().any(|w| w.matches(repo_type, &manifest.repo)) {
            continue;
        }
        manifests += 1;
        let repo = format!("{repo_type}/{}", manifest.repo);
        let expected_key = layout.manifest_key(&manifest.repo, &manifest.revision);
        if expected_key != key {
            let mut p = Problem::new(
                ProblemKind::BadManifest,
                format!(
                    "describes {}@{}, which belongs under {expected_key}",
                    manifest.repo, manifest.revision
                ),
            );
            p.key = Some(key.to_string());
            problems.push(p);
            continue;
        }
        // Each (blob, size) once, with the paths that use it.
        let mut uses: BTreeMap<(&str, u64), Vec<String>> = BTreeMap::new();
        for f in &manifest.files {
            uses.entry((&f.blob, f.size))
                .or_default()
                .push(f.path.clone());
        }
        for ((etag, size), paths) in uses {
            checked_blobs.insert(etag.to_string());
            let detail = match blob_sizes.get(etag) {
                Some(&actual) if actual == size => continue,
                Some(&actual) => (
                    ProblemKind::SizeMismatch,
                    format!("the manifest says {size} bytes, the remote holds {actual}"),
                ),
                None => (
                    ProblemKind::MissingBlob,
                    "named by the manifest but not on the remote".to_string(),
                ),
            };
            let mut p = Problem::new(detail.0, detail.1);
            p.repo = Some(repo.clone());
            p.revision = Some(manifest.revision.clone());
            p.etag = Some(etag.to_string());
            p.key = Some(layout.blob_key(etag));
            p.paths = paths;
            problems.push(p);
        }
    }

    let ref_keys: Vec<(&str, &str, &str)> = ref_objects
        .iter()
        .filter_map(|o| {
            let (safe, name) = layout.parse_ref_key(&o.key)?;
            wants_key(safe).then_some((o.key.as_str(), safe, name))
        })
        .collect();
    let refs = ref_keys.len();
    let mut bodies: Vec<_> = stream::iter(ref_keys)
        .map(|(key, safe, name)| {
            let remote = &remote;
            async move { (key, safe, name, remote.get(key, MAX_REF_BYTES).await) }
        })
        .buffer_unordered(workers)
        .collect()
        .await;
    bodies.sort_by(|a, b| a.0.cmp(b.0));
    for (key, safe, name, result) in bodies {
        let body = match result {
            Ok(Some(b)) => b,
            Ok(None) => continue,
            Err(e) if e.is_fatal() => return Err(e.into()),
            Err(e) => {
                let mut p = Problem::new(ProblemKind::BadRef, format!("cannot read: {e}"));
                p.key = Some(key.to_string());
                problems.push(p);
                continue;
            }
        };
        let Some(commit) = parse_ref_body(&body) else {
            let mut p = Problem::new(
                ProblemKind::BadRef,
                format!("ref {name} of {safe} does not hold a commit hash"),
            );
            p.key = Some(key.to_string());
            problems.push(p);
            continue;
        };
        // `safe` has no `/`, so it maps to itself.
        let manifest_key = layout.manifest_key(safe, &commit);
        if !manifest_keys.contains(manifest_key.as_str()) {
            let mut p = Problem::new(
                ProblemKind::DanglingRef,
                format!("ref {name} points at {commit}, which has no manifest ({manifest_key})"),
            );
            p.key = Some(key.to_string());
            p.revision = Some(commit);
            problems.push(p);
        }
    }

    for w in &wanted {
        let safe = safe_repo_key(&w.repo_id);
        let known = manifest_objects.iter().any(|o| {
            layout
                .parse_manifest_key(&o.key)
                .is_some_and(|(s, _)| s == safe)
        }) || ref_objects
            .iter()
            .any(|o| layout.parse_ref_key(&o.key).is_some_and(|(s, _)| s == safe));
        if !known {
            return Err(ConfigError::Invalid(format!(
                "repo {} has no manifests or refs on {}",
                w.repo_id,
                remote.describe()
            ))
            .into());
        }
    }

    let summary = RemoteSummary {
        command: "verify",
        scope: "remote",
        remote: remote.describe(),
        manifests,
        refs,
        blobs: checked_blobs.len(),
        problems,
        seconds: started.elapsed().as_secs_f64(),
    };
    app.printer.result(&summary, || {
        let mut lines = vec![format!(
            "Verified {}, {} and {} on {} in {:.1}s",
            count(summary.manifests, "manifest", "manifests"),
            count(summary.refs, "ref", "refs"),
            count(summary.blobs, "blob", "blobs"),
            summary.remote,
            summary.seconds
        )];
        describe_problems(&summary.problems, &mut lines);
        lines.join("\n")
    });
    Ok(Outcome::from_failures(summary.problems.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::NoProgress;
    use std::os::unix::fs::symlink;

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

    #[test]
    fn short_paths() {
        assert_eq!(short_path(&format!("{C1}/a/b")), "aaaaaaaaaaaa/a/b");
    }
}
