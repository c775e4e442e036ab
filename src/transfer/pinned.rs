//! What the cache holds of a pinned revision (a lock-file entry): the files the pin covers, or
//! what is missing. The tree listing huggingface_hub keeps (`trees/<commit>.json`) says which
//! files the commit has; without one, the snapshot's own files are all there is to go by.
//! `pull --lock` needs no remote for a pin found complete; `verify --lock` hashes the files.

use crate::cache::scan::{FileSource, Repo, SnapshotFile};
use crate::manifest::ManifestFile;
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
    let chosen: Vec<&SnapshotFile> = rev
        .files
        .iter()
        .filter(|f| files.matches(&f.path))
        .collect();
    if let Some(listing) = listing {
        let missing: Vec<String> = listing
            .files
            .keys()
            .filter(|p| files.matches(p))
            .filter(|p| !chosen.iter().any(|f| &f.path == *p) && !rev.broken.contains(p))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Gap::MissingFiles(missing));
        }
    }
    // A link whose blob is gone is left out of the snapshot's files by the scan: it is a file
    // the pin wants and the cache cannot give, whether or not a listing names it.
    let mut broken: Vec<String> = rev
        .broken
        .iter()
        .filter(|p| files.matches(p))
        .cloned()
        .collect();
    if chosen.is_empty() && broken.is_empty() {
        return Err(Gap::NoFiles);
    }
    broken.extend(
        chosen
            .iter()
            .filter(|f| {
                let listed = listing.and_then(|l| l.files.get(&f.path));
                let blob = f.etag().map(|e| repo.blobs.get(e));
                let blob_ok = blob.is_none_or(|b| b.is_some_and(|b| b.size == f.size));
                let size_ok = listed.is_none_or(|entry| entry.content_size() == f.size);
                !(blob_ok && size_ok)
            })
            .map(|f| f.path.clone()),
    );
    broken.sort();
    if !broken.is_empty() {
        return Err(Gap::BrokenFiles(broken));
    }
    Ok(chosen)
}

/// The pin's files as a manifest names them (path, blob, size), read from the cache: for
/// laying them out in a folder and checking one. A snapshot copy's blob comes from the tree
/// listing; without one it cannot be named, and the pin is refused saying so.
pub fn manifest_files(
    repo: Option<&Repo>,
    commit: &str,
    files: &FileFilter,
) -> Result<Vec<ManifestFile>, String> {
    let chosen = covered(repo, commit, files).map_err(|gap| gap.describe())?;
    let repo = repo.expect("covered");
    chosen
        .into_iter()
        .map(|f| {
            let blob = blob_of(repo, commit, f).ok_or_else(|| {
                format!(
                    "{} is a plain file in the snapshot and no tree listing names its blob",
                    f.path
                )
            })?;
            Ok(ManifestFile {
                path: f.path.clone(),
                blob,
                size: f.size,
            })
        })
        .collect()
}

/// The blob a snapshot file of `commit` holds: the one it links to, or for a plain file (a
/// cache written without symlinks) the one the commit's tree listing names; `None` when neither
/// says.
pub fn blob_of(repo: &Repo, commit: &str, file: &SnapshotFile) -> Option<String> {
    match &file.source {
        FileSource::Blob(etag) => Some(etag.clone()),
        FileSource::Copy(_) => repo
            .trees
            .get(commit)
            .and_then(|t| t.listing.as_ref())
            .and_then(|l| l.files.get(&file.path))
            .map(|e| e.etag().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::scan::scan_repo;
    use std::fs;
    use std::os::unix::fs::symlink;

    const COMMIT: &str = "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1";
    const WEIGHTS: &str = "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1";
    const CONFIG: &str = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1";

    /// `org/m` at one commit: `model.bin` and `config.json`, each linked to its blob.
    fn cache() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("models--org--m");
        fs::create_dir_all(repo.join("blobs")).unwrap();
        fs::create_dir_all(repo.join("snapshots").join(COMMIT)).unwrap();
        for (name, etag, body) in [
            ("model.bin", WEIGHTS, &b"weights"[..]),
            ("config.json", CONFIG, b"{}"),
        ] {
            fs::write(repo.join("blobs").join(etag), body).unwrap();
            symlink(
                format!("../../blobs/{etag}"),
                repo.join("snapshots").join(COMMIT).join(name),
            )
            .unwrap();
        }
        dir
    }

    fn gap(dir: &std::path::Path, files: &FileFilter) -> Result<usize, Gap> {
        let repo = scan_repo(dir, "models--org--m").map(|(r, _)| r);
        covered(repo.as_ref(), COMMIT, files).map(|f| f.len())
    }

    #[test]
    fn a_whole_snapshot_is_covered() {
        let dir = cache();
        assert_eq!(gap(dir.path(), &FileFilter::default()), Ok(2));
    }

    #[test]
    fn a_link_whose_blob_is_gone_is_a_gap_without_a_listing() {
        let dir = cache();
        fs::remove_file(dir.path().join("models--org--m/blobs").join(WEIGHTS)).unwrap();
        assert_eq!(
            gap(dir.path(), &FileFilter::default()),
            Err(Gap::BrokenFiles(vec!["model.bin".into()]))
        );
        // Only when the pin wants the file.
        let config = FileFilter::new(&["config.json".into()], &[]).unwrap();
        assert_eq!(gap(dir.path(), &config), Ok(1));
        // All the pin wants is a dangling link: still a gap, not "no file matches".
        let weights = FileFilter::new(&["*.bin".into()], &[]).unwrap();
        assert_eq!(
            gap(dir.path(), &weights),
            Err(Gap::BrokenFiles(vec!["model.bin".into()]))
        );
    }
}
