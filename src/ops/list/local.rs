//! The local side of `list`: rows from a cache scan, sized and timed the way
//! `huggingface_hub.scan_cache_dir()` reports them.

use std::path::Path;
use std::time::SystemTime;

use anyhow::Result;

use super::{Content, Entry, Listing, Source};
use crate::cache::scan::{self, CacheScan, FileSource, Repo, Revision};

pub(super) async fn listing(cache_dir: &Path, revisions: bool) -> Result<Listing> {
    let cache_dir = cache_dir.to_path_buf();
    let scan = tokio::task::spawn_blocking(move || scan::scan(&cache_dir)).await?;
    let mut warnings = Vec::new();
    if !scan.exists {
        warnings.push(format!(
            "cache dir {} does not exist: nothing is cached yet",
            scan.root.display()
        ));
    }
    warnings.extend(scan.warnings.iter().map(ToString::to_string));
    Ok(Listing {
        entries: local_entries(&scan, revisions),
        source: Source::Local {
            cache_dir: scan.root,
        },
        warnings,
        revisions,
        sized: true,
        timed: true,
        matched: false,
    })
}

/// Where a revision's bytes are, with each file's content identity.
fn content_of<'a>(
    repo: &Repo,
    revisions: impl IntoIterator<Item = &'a Revision>,
) -> Vec<(Content, u64)> {
    let mut out = Vec::new();
    for rev in revisions {
        for f in &rev.files {
            match &f.source {
                FileSource::Blob(etag) => {
                    if let Some(b) = repo.blobs.get(etag) {
                        out.push((Content::File(b.content_path.clone()), b.size));
                    }
                }
                FileSource::Copy(path) => out.push((Content::File(path.clone()), f.size)),
            }
        }
    }
    out
}

/// Access and modification times of snapshot files stored as copies, which have no blob.
fn copy_times<'a>(
    revisions: impl IntoIterator<Item = &'a Revision>,
) -> (Option<SystemTime>, Option<SystemTime>) {
    let mut accessed = None;
    let mut modified = None;
    for rev in revisions {
        for f in &rev.files {
            if let FileSource::Copy(path) = &f.source {
                if let Ok(meta) = std::fs::metadata(path) {
                    accessed = accessed.max(meta.accessed().ok());
                    modified = modified.max(meta.modified().ok());
                }
            }
        }
    }
    (accessed, modified)
}

fn local_entries(scan: &CacheScan, revisions: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    for repo in &scan.repos {
        let qualified = repo.qualified_id();
        if !revisions {
            // As huggingface_hub reports them: files the revisions use, orphans left out.
            let (copy_accessed, copy_modified) = copy_times(&repo.revisions);
            out.push(Entry {
                id: qualified.clone(),
                repo_type: Some(repo.repo_type),
                repo_id: repo.repo_id.clone(),
                repo: qualified,
                revision: None,
                size: Some(repo.size_on_disk()),
                revisions: repo.revisions.len(),
                files: None,
                accessed_at: repo.last_accessed().max(copy_accessed),
                modified_at: repo.last_modified().max(copy_modified),
                refs: Some(repo.refs.keys().cloned().collect()),
                path: Some(repo.dir.clone()),
                content: content_of(repo, &repo.revisions),
            });
            continue;
        }
        for rev in &repo.revisions {
            let (copy_accessed, _) = copy_times([rev]);
            out.push(Entry {
                id: rev.commit.clone(),
                repo_type: Some(repo.repo_type),
                repo_id: repo.repo_id.clone(),
                repo: qualified.clone(),
                revision: Some(rev.commit.clone()),
                size: Some(repo.size_of([rev])),
                revisions: 1,
                files: Some(rev.files.len()),
                accessed_at: rev.last_accessed(repo).max(copy_accessed),
                // As huggingface_hub reports it: when the snapshot folder last changed.
                modified_at: rev.modified,
                refs: Some(
                    repo.refs_to(&rev.commit)
                        .into_iter()
                        .map(String::from)
                        .collect(),
                ),
                path: Some(rev.dir.clone()),
                content: content_of(repo, [rev]),
            });
        }
    }
    out
}
