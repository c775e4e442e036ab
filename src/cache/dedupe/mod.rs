//! Storing each blob once, for `dedupe`: the same blob (same name) held as separate files by
//! several repos, or by several cache dirs of one machine, becomes one file with several names.
//!
//! [`plan`] groups the copies by blob name and file system (nothing is ever linked across file
//! systems) and picks the file each group keeps; [`execute`] verifies the kept file against its
//! name under its blob lock (unverified bytes are never linked), then replaces each other copy,
//! under its own blob lock, by a reflink or hard link made beside it and renamed over it.

mod link;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::hash::{hash_file, BlobHasher};
use super::lock::{self, TransientLock};
use super::scan::CacheScan;
use super::{file_id, lock_path};
pub use link::Method;

/// One file holding a blob: a repo's `blobs/<etag>`, as a regular file.
#[derive(Debug, Clone)]
pub struct Copy {
    pub etag: String,
    pub path: PathBuf,
    /// The blob lock huggingface_hub takes while writing it.
    pub lock: PathBuf,
    /// (device, inode).
    pub id: (u64, u64),
    pub size: u64,
    /// Hard links to the file, wherever they are.
    pub links: u64,
}

/// The copies of one blob on one file system. `files[0]` is kept unless it fails verification;
/// each file is a list of the names the scans found for it.
#[derive(Debug)]
pub struct Group {
    pub etag: String,
    pub size: u64,
    /// Distinct files, best keeper first (most names, then most links).
    pub files: Vec<Vec<Copy>>,
}

/// A copy replaced (or, in a dry run, to be replaced) by a link to the kept file.
#[derive(Debug, Clone, Serialize)]
pub struct Linked {
    pub etag: String,
    pub size: u64,
    pub path: String,
    /// The file it now shares.
    pub to: String,
    /// `null` in a dry run: the file system decides when it is tried.
    pub method: Option<Method>,
}

/// A copy left as it is, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Kept {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failed {
    pub path: String,
    pub error: String,
}

/// What a run did (or would do).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub linked: Vec<Linked>,
    /// Bytes no longer stored twice: a file counts once every name of it was replaced.
    pub bytes_saved: u64,
    pub kept: Vec<Kept>,
    pub failures: Vec<Failed>,
    /// Stopped by Ctrl-C between two blobs.
    pub interrupted: bool,
}

/// Every blob of the scanned caches stored as a regular file in a repo's `blobs/`. Links into
/// the shared store and blobs that are links themselves are left alone: they are one file
/// already, or belong to another layout's bookkeeping.
pub fn copies(scans: &[CacheScan]) -> Vec<Copy> {
    let mut out = Vec::new();
    for scan in scans {
        let root = fs::canonicalize(&scan.root).unwrap_or_else(|_| scan.root.clone());
        for repo in &scan.repos {
            for (etag, blob) in &repo.blobs {
                if blob.content_path != blob.path || blob.shared {
                    continue;
                }
                out.push(Copy {
                    etag: etag.clone(),
                    path: blob.path.clone(),
                    lock: lock_path(&root, &repo.folder, etag),
                    id: blob.file_id,
                    size: blob.size,
                    links: blob.links,
                });
            }
        }
    }
    out
}

/// Groups `copies` by blob and file system. Copies of a blob on another file system than the
/// group's are reported kept: a link cannot cross file systems, and a copy across them is not a
/// duplicate the disk pays for twice.
pub fn plan(copies: Vec<Copy>) -> (Vec<Group>, Vec<Kept>) {
    let mut by_blob: BTreeMap<String, BTreeMap<u64, BTreeMap<u64, Vec<Copy>>>> = BTreeMap::new();
    for c in copies {
        // Files the platform cannot identify could be one file: never touch them.
        if c.id == (0, 0) {
            continue;
        }
        let (dev, ino) = c.id;
        by_blob
            .entry(c.etag.clone())
            .or_default()
            .entry(dev)
            .or_default()
            .entry(ino)
            .or_default()
            .push(c);
    }
    let mut groups = Vec::new();
    let mut kept = Vec::new();
    for (etag, devices) in by_blob {
        let mut first_elsewhere: Option<PathBuf> = None;
        for files in devices.into_values() {
            let mut files: Vec<Vec<Copy>> = files.into_values().collect();
            for names in &mut files {
                names.sort_by(|a, b| a.path.cmp(&b.path));
            }
            files.sort_by(|a, b| {
                b.len()
                    .cmp(&a.len())
                    .then(b[0].links.cmp(&a[0].links))
                    .then(a[0].path.cmp(&b[0].path))
            });
            match &first_elsewhere {
                None => first_elsewhere = Some(files[0][0].path.clone()),
                Some(other) => kept.push(Kept {
                    path: files[0][0].path.display().to_string(),
                    reason: format!(
                        "on another file system than {}: links never cross file systems",
                        other.display()
                    ),
                }),
            }
            if files.len() > 1 {
                groups.push(Group {
                    etag: etag.clone(),
                    size: files[0][0].size,
                    files,
                });
            }
        }
    }
    (groups, kept)
}

/// Would a run save these bytes? Files with names outside the scanned caches would stay on
/// disk through them, and are reported instead.
fn replaceable(file: &[Copy]) -> Result<(), String> {
    let links = file[0].links;
    if links > file.len() as u64 {
        Err(format!(
            "the file has {links} names, {} of them in the caches given: replacing these would \
             free nothing",
            file.len()
        ))
    } else {
        Ok(())
    }
}

/// What a dry run reports: the plan, with no file read or changed.
pub fn preview(groups: &[Group]) -> Report {
    let mut report = Report::default();
    for g in groups {
        let keeper = &g.files[0][0];
        for file in &g.files[1..] {
            if let Err(reason) = replaceable(file) {
                report.kept.push(kept(&file[0].path, &reason));
                continue;
            }
            report.bytes_saved += g.size;
            for c in file {
                report.linked.push(linked(g, c, keeper, None));
            }
        }
    }
    report
}

fn kept(path: &Path, reason: &str) -> Kept {
    Kept {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn linked(g: &Group, c: &Copy, keeper: &Copy, method: Option<Method>) -> Linked {
    Linked {
        etag: g.etag.clone(),
        size: g.size,
        path: c.path.display().to_string(),
        to: keeper.path.display().to_string(),
        method,
    }
}

/// Carries out the plan. `stop` is asked between blobs; once it says yes, nothing more changes.
/// Blocking.
pub fn execute(groups: &[Group], stop: &dyn Fn() -> bool) -> Report {
    let mut report = Report::default();
    // Devices whose file system turned out unable to share extents.
    let mut no_reflink: HashMap<u64, bool> = HashMap::new();
    for g in groups {
        if stop() {
            report.interrupted = true;
            break;
        }
        run_group(g, &mut no_reflink, &mut report);
    }
    report
}

/// Holds the lock of a copy: `None` (with the copy reported kept) when someone else holds it.
fn lock_copy(c: &Copy, report: &mut Report) -> Option<TransientLock> {
    match lock::try_lock(&c.lock) {
        Ok(Some(guard)) => Some(guard),
        Ok(None) => {
            report.kept.push(kept(
                &c.path,
                "its lock is held: a download of it is in progress",
            ));
            None
        }
        Err(e) => {
            report.failures.push(Failed {
                path: c.lock.display().to_string(),
                error: e.to_string(),
            });
            None
        }
    }
}

/// Is the file at `c.path` still the one planned, whole?
fn unchanged(c: &Copy) -> bool {
    fs::symlink_metadata(&c.path)
        .is_ok_and(|m| m.is_file() && file_id(&m) == c.id && m.len() == c.size)
}

/// Does the file hash to its blob name?
fn verified(c: &Copy) -> bool {
    let Some(hasher) = BlobHasher::for_name(&c.etag, c.size) else {
        return false;
    };
    matches!(hash_file(&c.path, hasher), Ok((digest, n)) if digest == c.etag && n == c.size)
}

/// One blob: find a keeper that verifies (under its lock), then replace the other files.
fn run_group(g: &Group, no_reflink: &mut HashMap<u64, bool>, report: &mut Report) {
    let mut keeper = None;
    // Files passed over as keepers stay as they are: one that does not match its name is for
    // `verify --repair` to deal with, and one that is busy is someone else's.
    let mut passed_over = Vec::new();
    for (i, file) in g.files.iter().enumerate() {
        let c = &file[0];
        passed_over.push(i);
        let Some(guard) = lock_copy(c, report) else {
            continue;
        };
        if unchanged(c) && verified(c) {
            passed_over.pop();
            keeper = Some((i, guard));
            break;
        }
        report.kept.push(kept(
            &c.path,
            "does not match its name (run `hf-cache-sync verify --repair`); never linked",
        ));
    }
    let Some((k, _keeper_lock)) = keeper else {
        return;
    };
    let keeper = &g.files[k][0];
    let dev = keeper.id.0;
    for (i, file) in g.files.iter().enumerate() {
        if i == k || passed_over.contains(&i) {
            continue;
        }
        if let Err(reason) = replaceable(file) {
            report.kept.push(kept(&file[0].path, &reason));
            continue;
        }
        let reflink = !no_reflink.get(&dev).copied().unwrap_or(false);
        if reflink && link::extents_shared(&file[0].path) {
            report.kept.push(kept(
                &file[0].path,
                "already shares its storage (a reflink)",
            ));
            continue;
        }
        let mut all_names = true;
        for c in file {
            let Some(_guard) = lock_copy(c, report) else {
                all_names = false;
                continue;
            };
            if !unchanged(c) {
                report.kept.push(kept(&c.path, "changed since the scan"));
                all_names = false;
                continue;
            }
            let reflink = !no_reflink.get(&dev).copied().unwrap_or(false);
            match link::replace(&keeper.path, &c.path, &g.etag, reflink) {
                Ok(method) => {
                    if reflink && method == Method::Hardlink {
                        no_reflink.insert(dev, true);
                    }
                    report.linked.push(linked(g, c, keeper, Some(method)));
                }
                Err(e) => {
                    report.failures.push(Failed {
                        path: c.path.display().to_string(),
                        error: e.to_string(),
                    });
                    all_names = false;
                }
            }
        }
        if all_names {
            report.bytes_saved += g.size;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(path: &str, dev: u64, ino: u64, links: u64) -> Copy {
        Copy {
            etag: "e".repeat(64),
            path: PathBuf::from(path),
            lock: PathBuf::from(format!("{path}.lock")),
            id: (dev, ino),
            size: 10,
            links,
        }
    }

    #[test]
    fn copies_are_grouped_by_file_system_and_never_linked_across() {
        let (groups, kept) = plan(vec![
            copy("/home/a", 1, 10, 1),
            copy("/home/b", 1, 11, 1),
            copy("/big/c", 2, 20, 1),
        ]);
        assert_eq!(groups.len(), 1);
        let paths: Vec<&Path> = groups[0]
            .files
            .iter()
            .map(|f| f[0].path.as_path())
            .collect();
        assert_eq!(paths, [Path::new("/home/a"), Path::new("/home/b")]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].path, "/big/c");
        assert!(kept[0].reason.contains("another file system"), "{kept:?}");
        let report = preview(&groups);
        assert_eq!(report.bytes_saved, 10);
        assert_eq!(report.linked.len(), 1);
        assert_eq!(report.linked[0].path, "/home/b");
    }

    #[test]
    fn the_file_with_most_names_is_kept_and_outside_links_save_nothing() {
        let (groups, _) = plan(vec![
            copy("/c/x", 1, 5, 1),
            copy("/c/y", 1, 6, 2),
            copy("/c/z", 1, 6, 2),
            copy("/c/w", 1, 7, 2),
        ]);
        let g = &groups[0];
        assert_eq!(g.files[0].len(), 2, "inode 6 has two names here");
        let report = preview(&groups);
        assert_eq!(report.bytes_saved, 10, "only /c/x frees its bytes");
        assert_eq!(report.kept.len(), 1);
        assert_eq!(report.kept[0].path, "/c/w");
        // Already one file: nothing to do.
        let (groups, kept) = plan(vec![copy("/c/a", 1, 5, 2), copy("/c/b", 1, 5, 2)]);
        assert!(groups.is_empty() && kept.is_empty());
    }
}
