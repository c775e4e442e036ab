//! Filesystem steps of a deletion that can never reach outside the cache dir: every path is
//! checked against the canonical root just before it is unlinked, and links are followed hop
//! by hop rather than through.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::cache::scan::normalize_lexically;
use crate::cache::store::canonical_name;

/// Each hop of the link chain starting at `link` (not `link` itself), as canonical names.
pub(super) fn link_hops(link: &Path) -> Vec<PathBuf> {
    let mut hops = Vec::new();
    let mut cur = link.to_path_buf();
    for _ in 0..16 {
        let Ok(target) = fs::read_link(&cur) else {
            break;
        };
        let Some(parent) = cur.parent() else { break };
        let next = normalize_lexically(&parent.join(target));
        match canonical_name(&next) {
            Some(c) => hops.push(c),
            None => break,
        }
        cur = next;
    }
    hops
}

/// Is `path` strictly inside `root` (canonical), with its parent resolved through links? The
/// last check before anything is unlinked.
pub(super) fn inside_root(root: &Path, path: &Path) -> bool {
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(_)) => fs::canonicalize(parent).is_ok_and(|p| p.starts_with(root)),
        _ => false,
    }
}

fn outside_error(path: &Path) -> io::Error {
    io::Error::other(format!(
        "{} is not inside the cache dir; refusing to delete it",
        path.display()
    ))
}

pub(super) fn remove_file_in(root: &Path, path: &Path) -> io::Result<()> {
    if !inside_root(root, path) {
        return Err(outside_error(path));
    }
    match fs::remove_file(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes a folder and everything in it, never following links out of it.
pub(super) fn remove_dir_in(root: &Path, path: &Path) -> io::Result<()> {
    if !inside_root(root, path) {
        return Err(outside_error(path));
    }
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Where a repo's snapshot folders wait to be deleted: moved there in one rename, so a
/// revision disappears at once however many files it has, and deleted file by file afterwards,
/// which Ctrl-C may cut short. huggingface_hub and the scanner look only at `blobs/`,
/// `snapshots/` and `refs/`, so what is left there is invisible to both; the next deletion in
/// the repo finishes it.
const TRASH: &str = ".hf-cache-sync-trash";

pub(super) fn trash_dir(repo_dir: &Path) -> PathBuf {
    repo_dir.join(TRASH)
}

/// Moves the folder `path` (inside `repo_dir`) into the repo's trash, under a name no other
/// run uses.
pub(super) fn move_to_trash(root: &Path, repo_dir: &Path, path: &Path) -> io::Result<PathBuf> {
    if !inside_root(root, path) {
        return Err(outside_error(path));
    }
    let trash = trash_dir(repo_dir);
    fs::create_dir_all(&trash)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{stamp}", std::process::id()));
    let target = trash.join(name);
    if !inside_root(root, &target) {
        return Err(outside_error(&target));
    }
    fs::rename(path, &target)?;
    Ok(target)
}

/// Removes the folder `dir` and everything in it entry by entry, never following links, asking
/// `stop` before each entry. `Ok(false)` when stopped first: what is left stays for a later run.
pub(super) fn remove_tree(root: &Path, dir: &Path, stop: &dyn Fn() -> bool) -> io::Result<bool> {
    if !inside_root(root, dir) {
        return Err(outside_error(dir));
    }
    remove_tree_below(dir, stop)
}

fn remove_tree_below(dir: &Path, stop: &dyn Fn() -> bool) -> io::Result<bool> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(true),
        Err(e) => return Err(e),
    };
    for entry in entries {
        if stop() {
            return Ok(false);
        }
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if !remove_tree_below(&path, stop)? {
                return Ok(false);
            }
        } else {
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(true),
    }
}

/// Removes empty folders from `dir` up to, not including, `stop`.
pub(super) fn remove_empty_parents(dir: &Path, stop: &Path) {
    let mut cur = dir.to_path_buf();
    while cur.starts_with(stop) && cur != stop {
        if fs::remove_dir(&cur).is_err() {
            break;
        }
        if !cur.pop() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn paths_outside_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::write(outside.path().join("f"), b"x").unwrap();
        symlink(outside.path(), dir.path().join("link")).unwrap();
        assert!(!inside_root(&root, &dir.path().join("link/f")));
        assert!(remove_file_in(&root, &dir.path().join("link/f")).is_err());
        assert!(outside.path().join("f").exists());
        assert!(!inside_root(&root, &root));
        assert!(inside_root(&root, &dir.path().join("link")));
    }

    #[test]
    fn a_folder_moved_to_the_trash_goes_entry_by_entry_until_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let repo = root.join("models--a--b");
        let snap = repo.join("snapshots/c1");
        fs::create_dir_all(snap.join("sub")).unwrap();
        for name in ["a", "sub/b", "sub/c"] {
            fs::write(snap.join(name), b"x").unwrap();
        }
        symlink(root.join("elsewhere"), snap.join("link")).unwrap();
        let moved = move_to_trash(&root, &repo, &snap).unwrap();
        assert!(!snap.exists());
        assert!(moved.starts_with(trash_dir(&repo)));
        let asked = std::cell::Cell::new(0);
        let stop = || {
            asked.set(asked.get() + 1);
            asked.get() > 2
        };
        assert!(!remove_tree(&root, &moved, &stop).unwrap(), "stopped");
        assert!(moved.exists(), "the rest waits for a later run");
        assert!(remove_tree(&root, &moved, &|| false).unwrap());
        assert!(!moved.exists());
    }
}
