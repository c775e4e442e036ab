//! What the cache holds of a pinned revision (a lock-file entry): the files the pin covers, or
//! what is missing. The tree listing huggingface_hub keeps (`trees/<commit>.json`) says which
//! files the commit has; without one, the snapshot's own files are all there is to go by.
//! `pull --lock` needs no remote for a pin found complete; `verify --lock` hashes the files.

use crate::cache::scan::{Repo, SnapshotFile};
use crate::patterns::FileFilter;

/// Why a pin is not complete in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gap {
    /// No folder for the repo.
    NoRepo,
    /// The repo is cached, the commit is not.
    NoRevision,
    /// No file of the snapshot matches the pin's patterns.
    NoFiles,
    /// Files of the commit (by its tree listing) the pin wants and the snapshot lacks.
    MissingFiles(Vec<String>),
    /// Snapshot files whose blob is absent, or not of the size the listing gives.
    BrokenFiles(Vec<String>),
}

impl Gap {
    pub fn describe(&self) -> String {
        let list = |paths: &[String]| {
            let mut shown: Vec<&str> = paths.iter().take(5).map(String::as_str).collect();
            if paths.len() > 5 {
                shown.push("…");
            }
            shown.join(", ")
        };
        match self {
            Gap::NoRepo => "the repo is not in the cache".into(),
            Gap::NoRevision => "the pinned revision is not in the cache".into(),
            Gap::NoFiles => "no file of the cached snapshot matches the pin".into(),
            Gap::MissingFiles(p) => format!(
                "the snapshot lacks {}: {}",
                crate::text::plural(p.len(), "file", "files"),
                list(p)
            ),
            Gap::BrokenFiles(p) => format!(
                "{} without {}: {}",
                crate::text::plural(p.len(), "file", "files"),
                if p.len() == 1 {
                    "its blob"
                } else {
                    "their blobs"
                },
                list(p)
            ),
        }
    }
}

/// The snapshot files of `commit` in `repo` that the pin covers, when the cache holds every one
/// the pin wants (sizes as the listing gives them, blobs present); else what is missing.
pub fn covered<'r>(
    repo: Option<&'r Repo>,
    commit: &str,
    files: &FileFilter,
) -> Result<Vec<&'r SnapshotFile>, Gap> {
    let repo = repo.ok_or(Gap::NoRepo)?;
    let rev = repo.revision(commit).ok_or(Gap::NoRevision)?;
    let listing = repo.trees.get(commit).and_then(|t| t.listing.as_ref());
    let chosen: Vec<&SnapshotFile> = rev.files.iter().filter(|f| files.matches(&f.path)).collect();
    if let Some(listing) = listing {
        let missing: Vec<String> = listing
            .files
            .keys()
            .filter(|p| files.matches(p))
            .filter(|p| !chosen.iter().any(|f| &f.path == *p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Gap::MissingFiles(missing));
        }
    }
    if chosen.is_empty() {
        return Err(Gap::NoFiles);
    }
    let broken: Vec<String> = chosen
        .iter()
        .filter(|f| {
            let listed = listing.and_then(|l| l.files.get(&f.path));
            let blob_ok = f.etag().is_none_or(|e| repo.blobs.contains_key(e));
            let size_ok = listed.is_none_or(|entry| entry.content_size() == f.size);
            !(blob_ok && size_ok)
        })
        .map(|f| f.path.clone())
        .collect();
    if !broken.is_empty() {
        return Err(Gap::BrokenFiles(broken));
    }
    Ok(chosen)
}
