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
}
