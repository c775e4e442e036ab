//! The accounting behind `status`: what the local cache holds and what it costs on disk against
//! the budget, what could be reclaimed, where the remote is and (when asked) what it holds,
//! counted from LISTs alone.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;

use crate::cache::delete::is_stale;
use crate::cache::file_id;
use crate::cache::scan::{self, CacheScan, FileSource};
use crate::cache::store::{self, Payload};
use crate::manifest::Layout;
use crate::remote::catalog::Catalog;
use crate::remote::{Remote, RemoteSpec};
use crate::report::human_bytes;
use crate::text::plural;

/// `cache.max_local_gb` counts GiB (2^30 bytes), as 0.1 does.
const GB: f64 = (1u64 << 30) as f64;

#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub command: &'static str,
    pub cache_dir: PathBuf,
    pub exists: bool,
    pub repos: usize,
    pub repos_by_type: BTreeMap<&'static str, usize>,
    pub revisions: usize,
    /// Revisions no ref points at.
    pub detached_revisions: usize,
    /// Revisions whose snapshot lacks files the commit's tree listing (`trees/<commit>.json`)
    /// names while every file it has is listed with the same content and no link is broken: a
    /// download of some of the commit's files. `diff` also tells them against the remote's
    /// manifests.
    pub partial_revisions: usize,
    /// Distinct blob files repos link to, each counted once.
    pub blobs: usize,
    /// How many of those live in the cache-wide shared store.
    pub shared_blobs: usize,
    /// Snapshot files stored as copies instead of links (caches written without symlinks).
    pub copied_files: usize,
    /// Blobs, snapshot copies and shared-store payloads, each file counted once.
    pub bytes_on_disk: u64,
    pub budget: Budget,
    pub orphans: Orphans,
    pub shared_store_unreferenced: Orphans,
    pub partials: Partials,
    pub warnings: Vec<String>,
    /// `null` when no remote is configured.
    pub remote: Option<RemoteStatus>,
}

#[derive(Debug, Serialize)]
pub struct Budget {
    pub max_local_gb: f64,
    pub bytes: u64,
    pub used_percent: f64,
    pub over_budget: bool,
}

/// Blobs no revision uses.
#[derive(Debug, Default, Serialize)]
pub struct Orphans {
    pub blobs: usize,
    pub bytes: u64,
}

impl Orphans {
    /// `3 blobs, 1.2 MiB` and what they are, for people.
    pub fn describe(&self, (one, many): (&str, &str), what: &str) -> String {
        format!(
            "{}, {} {what}",
            plural(self.blobs, one, many),
            human_bytes(self.bytes)
        )
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Partials {
    pub count: usize,
    pub bytes: u64,
    /// Untouched for at least `stale_after_seconds`.
    pub stale: usize,
    pub stale_bytes: u64,
    pub stale_after_seconds: u64,
    /// Each of them: a pull of its blob resumes it; prune removes it once stale.
    pub files: Vec<PartialEntry>,
}

/// One partial download.
#[derive(Debug, Serialize)]
pub struct PartialEntry {
    /// The repo it is in, as `list` names repos.
    pub repo: String,
    pub path: std::path::PathBuf,
    /// The blob it is the start of, when its name says.
    pub blob: Option<String>,
    pub bytes: u64,
    /// Since it last changed.
    pub age_seconds: Option<u64>,
    pub stale: bool,
}

/// Where the remote is: never a credential.
#[derive(Debug, Serialize)]
pub struct RemoteStatus {
    /// `s3` or `dir`.
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    pub prefix: String,
    /// What the remote holds; only with `--remote`.
    pub contents: Option<RemoteContents>,
}

/// Counted from key names: repos are distinct `org__name` key parts.
#[derive(Debug, Serialize)]
pub struct RemoteContents {
    pub repos: usize,
    pub revisions: usize,
    pub refs: usize,
    pub blobs: usize,
    pub bytes: u64,
}

/// Where `status` looks.
pub struct StatusOptions<'a> {
    pub cache_dir: &'a Path,
    /// `cache.max_local_gb`.
    pub max_local_gb: f64,
    /// `cache.partial_max_age`: partial downloads untouched for this long are stale.
    pub partial_max_age: std::time::Duration,
    /// The remote to describe; `None` when none is configured.
    pub remote: Option<&'a RemoteSpec>,
    /// The remote opened, to count what it holds (`--remote`).
    pub contents: Option<(&'a Remote, &'a Layout)>,
}

/// Accounts for the cache (and, with [`StatusOptions::contents`], the remote). The scan's
/// warnings are in the report.
pub async fn status(opts: &StatusOptions<'_>) -> Result<StatusReport> {
    let cache_dir = opts.cache_dir.to_path_buf();
    let (scan, store) = tokio::task::spawn_blocking(move || {
        let scan = scan::scan(&cache_dir);
        let store = store::payloads(&cache_dir);
        (scan, store)
    })
    .await?;
    let limits = (opts.max_local_gb, opts.partial_max_age);
    let mut report = local_summary(&scan, &store, limits, SystemTime::now());
    // Without contents asked for the remote is described, not contacted: no credentials needed.
    report.remote = opts.remote.map(describe);
    if let Some((remote, layout)) = opts.contents {
        let catalog = Catalog::list(remote, layout, true).await?;
        if let Some(r) = report.remote.as_mut() {
            r.contents = Some(RemoteContents {
                repos: catalog.key_count(),
                revisions: catalog.revision_count(),
                refs: catalog.ref_count(),
                blobs: catalog.blobs().len(),
                bytes: catalog.blob_bytes(),
            });
        }
    }
    Ok(report)
}

fn local_summary(
    scan: &CacheScan,
    store: &[Payload],
    (max_local_gb, partial_max_age): (f64, std::time::Duration),
    now: SystemTime,
) -> StatusReport {
    let mut by_type: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut revisions = 0;
    let mut detached = 0;
    let mut partial = 0;
    let mut shared = HashSet::new();
    // Blobs first, each file once; then what else holds bytes, unless it is one of them.
    let mut seen: HashSet<(u64, u64)> = scan
        .repos
        .iter()
        .flat_map(|r| r.blobs.values().map(|b| b.file_id))
        .collect();
    let mut bytes = scan.blob_bytes();
    let mut copies = 0;
    // A file id of (0, 0) means the platform cannot tell files apart: count it every time.
    let mut count_once = |id: (u64, u64), size: u64, seen: &mut HashSet<(u64, u64)>| {
        if id == (0, 0) || seen.insert(id) {
            bytes += size;
            true
        } else {
            false
        }
    };
    let mut referenced = HashSet::new();
    for repo in &scan.repos {
        *by_type.entry(repo.repo_type.as_str()).or_default() += 1;
        revisions += repo.revisions.len();
        detached += repo
            .revisions
            .iter()
            .filter(|r| repo.refs_to(&r.commit).is_empty())
            .count();
        partial += repo.revisions.iter().filter(|r| r.is_partial(repo)).count();
        for blob in repo.blobs.values() {
            if blob.shared {
                shared.insert(blob.file_id);
            }
        }
        for rev in &repo.revisions {
            for f in &rev.files {
                match &f.source {
                    FileSource::Blob(etag) => {
                        if let Some(b) = repo.blobs.get(etag) {
                            referenced.insert(b.file_id);
                        }
                    }
                    FileSource::Copy(path) => {
                        if let Ok(meta) = fs::metadata(path) {
                            if count_once(file_id(&meta), meta.len(), &mut seen) {
                                copies += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    let mut unreferenced = Orphans::default();
    for payload in store {
        if count_once(payload.file_id, payload.size, &mut seen) {
            unreferenced.blobs += 1;
            unreferenced.bytes += payload.size;
        }
    }

    let orphans = orphans(scan, &referenced);
    let partials = partials(scan, now, partial_max_age);
    let budget_bytes = (max_local_gb * GB) as u64;
    StatusReport {
        command: "status",
        cache_dir: scan.root.clone(),
        exists: scan.exists,
        repos: scan.repos.len(),
        repos_by_type: by_type,
        revisions,
        detached_revisions: detached,
        partial_revisions: partial,
        blobs: scan.blob_count(),
        shared_blobs: shared.len(),
        copied_files: copies,
        bytes_on_disk: bytes,
        budget: Budget {
            max_local_gb,
            bytes: budget_bytes,
            used_percent: if budget_bytes == 0 {
                0.0
            } else {
                (bytes as f64 / budget_bytes as f64 * 1000.0).round() / 10.0
            },
            over_budget: bytes > budget_bytes,
        },
        orphans,
        shared_store_unreferenced: unreferenced,
        partials,
        warnings: scan.warnings.iter().map(ToString::to_string).collect(),
        remote: None,
    }
}

/// Blobs no revision uses, each file once; a shared-store blob another repo still uses frees
/// nothing and is not one.
fn orphans(scan: &CacheScan, referenced: &HashSet<(u64, u64)>) -> Orphans {
    let mut orphans = Orphans::default();
    let mut orphan_ids = HashSet::new();
    for repo in &scan.repos {
        for blob in repo.orphans() {
            if !referenced.contains(&blob.file_id) && orphan_ids.insert(blob.file_id) {
                orphans.blobs += 1;
                orphans.bytes += blob.size;
            }
        }
    }
    orphans
}

/// Partial downloads, and which of them are stale by the rule prune deletes by: what status
/// calls stale, prune collects.
fn partials(scan: &CacheScan, now: SystemTime, max_age: std::time::Duration) -> Partials {
    let mut partials = Partials {
        stale_after_seconds: max_age.as_secs(),
        ..Default::default()
    };
    for (repo, p) in scan
        .repos
        .iter()
        .flat_map(|r| r.partials.iter().map(move |p| (r, p)))
    {
        let stale = is_stale(p, now, max_age);
        partials.count += 1;
        partials.bytes += p.size;
        if stale {
            partials.stale += 1;
            partials.stale_bytes += p.size;
        }
        partials.files.push(PartialEntry {
            repo: repo.qualified_id(),
            path: p.path.clone(),
            blob: p.etag.clone(),
            bytes: p.size,
            age_seconds: p
                .modified
                .and_then(|m| now.duration_since(m).ok())
                .map(|age| age.as_secs()),
            stale,
        });
    }
    partials
}

/// Endpoint, bucket, region and prefix; an endpoint's `user:password@` part is hidden.
fn describe(spec: &RemoteSpec) -> RemoteStatus {
    match spec {
        RemoteSpec::S3 {
            endpoint,
            bucket,
            region,
            prefix,
        } => RemoteStatus {
            kind: "s3",
            endpoint: endpoint.as_deref().map(without_userinfo),
            bucket: Some(bucket.clone()),
            region: region.clone(),
            path: None,
            prefix: prefix.clone(),
            contents: None,
        },
        RemoteSpec::Dir { root, prefix } => RemoteStatus {
            kind: "dir",
            endpoint: None,
            bucket: None,
            region: None,
            path: Some(root.clone()),
            prefix: prefix.clone(),
            contents: None,
        },
    }
}

fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{commit, Cache};

    #[test]
    fn shared_blobs_count_once_and_orphans_and_detached_revisions_are_counted() {
        let cache = Cache::new();
        let (a, b) = (commit('a'), commit('b'));
        cache.file("org/m", &a, "w.bin", &[1; 1000]);
        cache.file("org/m", &b, "w.bin", &[1; 1000]);
        cache.file("org/m", &b, "x.bin", &[2; 24]);
        cache.reference("org/m", "main", &b);
        let orphan = cache.repo_dir("org/m").join("blobs").join("0".repeat(64));
        fs::write(orphan, [3; 76]).unwrap();
        let scan = cache.scan();
        let limits = (1000.0 / GB, crate::cache::delete::PARTIAL_AGE);
        let report = local_summary(&scan, &[], limits, SystemTime::now());
        assert_eq!(report.repos, 1);
        assert_eq!(report.repos_by_type["model"], 1);
        assert_eq!(report.revisions, 2);
        assert_eq!(report.detached_revisions, 1);
        assert_eq!(report.blobs, 3);
        assert_eq!(report.bytes_on_disk, 1100);
        assert_eq!((report.orphans.blobs, report.orphans.bytes), (1, 76));
        assert_eq!(report.budget.bytes, 1000);
        assert_eq!(report.budget.used_percent, 110.0);
        assert!(report.budget.over_budget);
    }

    #[test]
    fn endpoints_lose_their_userinfo() {
        assert_eq!(
            without_userinfo("https://key:secret@s3.example.com/x"),
            "https://***@s3.example.com/x"
        );
        assert_eq!(
            without_userinfo("http://127.0.0.1:9000"),
            "http://127.0.0.1:9000"
        );
        assert_eq!(without_userinfo("s3.example.com"), "s3.example.com");
    }
}
