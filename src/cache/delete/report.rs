//! What a deletion removed, kept and failed on: the [`Report`] commands print and serialize,
//! and [`Done`], the executor's running tally that becomes it.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::index::Index;
use super::Selection;
use crate::cache::RepoType;

/// What was (or, for a dry run, would be) deleted. Commands flatten it into their summary.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Repo folders removed whole.
    pub repos: Vec<RepoEntry>,
    pub revisions: Vec<RevisionEntry>,
    pub refs: Vec<RefEntry>,
    pub blobs: Vec<BlobEntry>,
    /// Payloads of the cache-wide shared store.
    pub shared_blobs: Vec<FileEntry>,
    pub partials: Vec<FileEntry>,
    /// Snapshot folders an interrupted run had set aside but not yet deleted.
    pub leftovers: Vec<String>,
    /// Things that would have been deleted but were left alone, and why.
    pub kept: Vec<KeptEntry>,
    pub failures: Vec<FailureEntry>,
    /// Distinct bytes released: a file linked from several places counts once, and only when
    /// its last name goes.
    pub bytes_freed: u64,
    /// What [`crate::cache::scan::CacheScan::blob_bytes`] counts of what went: a blob linked
    /// from another cache dir too leaves this cache, but frees nothing on disk.
    #[serde(skip)]
    pub blob_bytes_freed: u64,
    /// Stopped by Ctrl-C between two items: the rest of the plan was not carried out (a re-run
    /// finishes it).
    pub interrupted: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoEntry {
    /// `type/org/name`, as every JSON document names a repo.
    pub repo: String,
    pub repo_type: RepoType,
    pub repo_id: String,
    pub path: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RevisionEntry {
    /// `type/org/name`, as every JSON document names a repo.
    pub repo: String,
    pub repo_type: RepoType,
    pub repo_id: String,
    pub commit: String,
    /// Refs that pointed at it.
    pub refs: Vec<String>,
    /// `budget`, `detached`, `rm`, …
    pub reason: String,
    /// Bytes it added to the total when it was chosen (revisions chosen earlier may share blobs).
    pub bytes: u64,
    /// Latest access of its blobs, RFC 3339.
    pub last_accessed: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RefEntry {
    /// `type/org/name`, as every JSON document names a repo.
    pub repo: String,
    pub repo_type: RepoType,
    pub repo_id: String,
    pub name: String,
    pub commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobEntry {
    /// `type/org/name`, as every JSON document names a repo.
    pub repo: String,
    pub repo_type: RepoType,
    pub repo_id: String,
    pub etag: String,
    pub size: u64,
    /// No snapshot linked it before this run.
    pub orphan: bool,
    /// A link into the shared store (its payload is listed in `shared_blobs` if collected).
    pub shared: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptEntry {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureEntry {
    pub item: String,
    pub error: String,
}

impl Report {
    pub fn is_empty(&self) -> bool {
        self.repos.is_empty()
            && self.revisions.is_empty()
            && self.refs.is_empty()
            && self.blobs.is_empty()
            && self.shared_blobs.is_empty()
            && self.partials.is_empty()
            && self.leftovers.is_empty()
    }

    /// Blobs removed that were orphans before the run.
    pub fn orphans(&self) -> usize {
        self.blobs.iter().filter(|b| b.orphan).count()
    }
}

/// What was actually deleted (or, for a preview, what the plan deletes).
#[derive(Debug, Default)]
pub(super) struct Done {
    pub repos: Vec<usize>,
    pub revisions: Vec<(usize, String)>,
    pub refs: Vec<(usize, String, String)>,
    pub blobs: Vec<(usize, String, bool)>,
    pub store: Vec<(PathBuf, u64)>,
    pub partials: Vec<(PathBuf, u64)>,
    pub leftovers: Vec<PathBuf>,
    pub kept: Vec<KeptEntry>,
    pub failures: Vec<FailureEntry>,
    /// Names deleted, for counting freed bytes.
    pub deleted: HashSet<PathBuf>,
    pub interrupted: bool,
}

impl Done {
    pub fn fail(&mut self, path: &Path, err: io::Error) {
        self.failures.push(FailureEntry {
            item: path.display().to_string(),
            error: err.to_string(),
        });
    }

    pub fn keep(&mut self, path: &Path, reason: &str) {
        self.kept.push(KeptEntry {
            path: path.display().to_string(),
            reason: reason.to_string(),
        });
    }

    pub fn into_report(mut self, index: &Index, sel: &Selection) -> Report {
        let repos = &index.scan.repos;
        let seq = |ri: usize, commit: &str| {
            sel.revisions
                .get(&(ri, commit.to_string()))
                .or_else(|| sel.repos.get(&ri))
                .map_or(usize::MAX, |c| c.seq)
        };
        self.revisions
            .sort_by_key(|(ri, commit)| (seq(*ri, commit), *ri, commit.clone()));
        let partial_bytes: u64 = self.partials.iter().map(|(_, s)| s).sum();
        let (all, blobs) = index.freed(&self.deleted);
        let mut report = Report {
            bytes_freed: all + partial_bytes,
            blob_bytes_freed: blobs,
            kept: self.kept,
            failures: self.failures,
            interrupted: self.interrupted,
            ..Default::default()
        };
        for ri in self.repos {
            let repo = &repos[ri];
            report.repos.push(RepoEntry {
                repo: repo.qualified_id(),
                repo_type: repo.repo_type,
                repo_id: repo.repo_id.clone(),
                path: repo.dir.display().to_string(),
            });
        }
        for (ri, commit) in self.revisions {
            let repo = &repos[ri];
            // Revisions chosen one by one carry their own bytes; those that go only because
            // their whole repo does carry none (the repo's extra bytes are its orphans).
            let (reason, bytes) = match sel.revisions.get(&(ri, commit.clone())) {
                Some(c) => (c.reason.clone(), c.bytes),
                None => (
                    sel.repos
                        .get(&ri)
                        .map_or_else(|| "repo removed".to_string(), |c| c.reason.clone()),
                    0,
                ),
            };
            let last_accessed = repo
                .revision(&commit)
                .and_then(|r| r.last_accessed(repo))
                .map(|t| humantime::format_rfc3339_seconds(t).to_string());
            report.revisions.push(RevisionEntry {
                repo: repo.qualified_id(),
                repo_type: repo.repo_type,
                repo_id: repo.repo_id.clone(),
                refs: repo
                    .refs_to(&commit)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                commit,
                reason,
                bytes,
                last_accessed,
            });
        }
        for (ri, name, commit) in self.refs {
            let repo = &repos[ri];
            report.refs.push(RefEntry {
                repo: repo.qualified_id(),
                repo_type: repo.repo_type,
                repo_id: repo.repo_id.clone(),
                name,
                commit,
            });
        }
        for (ri, etag, orphan) in self.blobs {
            let repo = &repos[ri];
            let blob = &repo.blobs[&etag];
            report.blobs.push(BlobEntry {
                repo: repo.qualified_id(),
                repo_type: repo.repo_type,
                repo_id: repo.repo_id.clone(),
                size: blob.size,
                shared: blob.shared,
                etag,
                orphan,
            });
        }
        report.shared_blobs = self
            .store
            .into_iter()
            .map(|(p, size)| FileEntry {
                path: p.display().to_string(),
                size,
            })
            .collect();
        report.leftovers = self
            .leftovers
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        report.partials = self
            .partials
            .into_iter()
            .map(|(p, size)| FileEntry {
                path: p.display().to_string(),
                size,
            })
            .collect();
        report
    }
}
