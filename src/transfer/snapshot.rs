//! The last step of a pull: a revision's snapshot built from blobs already in place (relative
//! links, or plain files as huggingface_hub writes them with symlinks off), then its tree
//! listing and ref.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::fetch::present;
use super::pull::{check_plan_paths, Plan, PullError};
use crate::cache::trees::write_listing;
use crate::cache::write::{
    copy_snapshot_file, ensure_repo_dirs, link_snapshot_file, write_ref, WriteError,
};

/// Builds the snapshot and writes the ref, once every blob of the revision is in place.
pub fn finish(cache_dir: &Path, plan: &Plan) -> Result<usize, PullError> {
    // Checked again: the cache may have changed while the blobs were downloading.
    check_plan_paths(cache_dir, plan)?;
    for f in &plan.manifest.files {
        let in_place = plan.copies && copied(plan, &f.blob);
        if !in_place && !present(&plan.repo_dir, &f.blob, f.size) {
            return Err(PullError::Missing(format!(
                "blob {} for {} is missing",
                f.blob, f.path
            )));
        }
    }
    if plan.copies {
        place_copies(plan)?;
    }
    for f in plan.manifest.files.iter().filter(|_| !plan.copies) {
        link_snapshot_file(&plan.repo_dir, &plan.commit, &f.path, &f.blob)?;
    }
    ensure_repo_dirs(&plan.repo_dir)?;
    if let Some(listing) = &plan.listing {
        write_listing(&plan.repo_dir, &plan.commit, listing)?;
    }
    if let Some(name) = &plan.ref_name {
        write_ref(&plan.repo_dir, name, &plan.commit)?;
    }
    Ok(plan.manifest.files.len())
}

/// Whether the plan needs nothing fetched for blob `etag`: it is in `blobs/`, or (writing
/// copies) every file holding it is already in the snapshot.
pub fn in_cache(plan: &Plan, etag: &str, size: u64) -> bool {
    present(&plan.repo_dir, etag, size) || (plan.copies && copied(plan, etag))
}

/// Whether every file of the plan holding blob `etag` is already a plain file of its size in
/// the snapshot (written with symlinks off): nothing to fetch for it.
fn copied(plan: &Plan, etag: &str) -> bool {
    let snapshot = plan.repo_dir.join("snapshots").join(&plan.commit);
    plan.manifest
        .files
        .iter()
        .filter(|f| f.blob == etag)
        .all(|f| {
            std::fs::symlink_metadata(snapshot.join(&f.path))
                .is_ok_and(|m| m.is_file() && m.len() == f.size)
        })
}

/// Writes the snapshot as huggingface_hub does with symlinks off: each file a plain file. A
/// blob nothing else in the repo links to moves into its last file and leaves `blobs/`, as a
/// blob huggingface_hub has just downloaded does; one another snapshot links to is copied and
/// stays.
fn place_copies(plan: &Plan) -> Result<(), WriteError> {
    let linked = linked_blobs(&plan.repo_dir, &plan.commit);
    let mut by_blob: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in &plan.manifest.files {
        by_blob.entry(&f.blob).or_default().push(&f.path);
    }
    for (etag, paths) in by_blob {
        if copied(plan, etag) {
            continue;
        }
        let last = paths.len() - 1;
        for (i, path) in paths.into_iter().enumerate() {
            let take = i == last && !linked.contains(etag);
            copy_snapshot_file(&plan.repo_dir, &plan.commit, path, etag, take)?;
        }
    }
    Ok(())
}

/// The blobs the repo's other snapshots link to.
fn linked_blobs(repo_dir: &Path, commit: &str) -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            match std::fs::read_link(&path) {
                Ok(target) => {
                    if let Some(name) = target.file_name().and_then(|n| n.to_str()) {
                        out.insert(name.to_string());
                    }
                }
                Err(_) if path.is_dir() => walk(&path, out),
                Err(_) => {}
            }
        }
    }
    let mut out = BTreeSet::new();
    let snapshots = repo_dir.join("snapshots");
    for e in std::fs::read_dir(&snapshots)
        .into_iter()
        .flatten()
        .flatten()
    {
        if e.file_name() != commit {
            walk(&e.path(), &mut out);
        }
    }
    out
}
