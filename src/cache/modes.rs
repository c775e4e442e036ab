//! The modes new files get, in the hub cache, a local dir and a directory remote: the ones
//! huggingface_hub gives them, so what one user pulls (root bootstrapping a GPU node, one member
//! of a team sharing a setgid cache) reads for the others as it would had huggingface_hub
//! written it. Also the check `doctor` runs for files other users cannot read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What a new file is, as far as its mode goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharing {
    /// Blobs, refs, a local dir's files and bookkeeping, a directory remote's objects: the mode
    /// a freshly created file gets in its folder (huggingface_hub's `_chmod_and_move` reads it
    /// from a throwaway file it creates there; refs and local-dir metadata are plain writes).
    Shared,
    /// `trees/<commit>.json`: huggingface_hub writes it through `mkstemp`, which makes it 0600
    /// whatever the umask, and renames it into place.
    Private,
}

/// The mode given to open(2) when a file of this kind is created. For [`Sharing::Shared`] the
/// kernel then takes the umask off (or applies the folder's default ACL) and gives the file the
/// group of a setgid folder: the file ends up with exactly the mode a new file gets in that
/// folder, with no need to know the umask.
///
/// The umask is never read. umask(2) can only be read by setting it, and the mask is one for the
/// whole process: while one thread had it set to something else, a file another thread created
/// would get the wrong mode. `/proc/self/status` shows it without changing it, but only on
/// Linux and without default ACLs. Creating every file with the mode above lets the kernel apply
/// whatever rules the folder has, at no cost and with nothing shared between threads.
pub const fn creation_mode(sharing: Sharing) -> u32 {
    match sharing {
        Sharing::Shared => 0o666,
        Sharing::Private => 0o600,
    }
}

/// Can a user other than the owner read this (a file) or look inside it (a folder), through its
/// group or the bits for everyone? A file or folder that only its owner may read makes a cache
/// or a shared folder serve one user.
pub const fn readable_by_others(mode: u32, is_dir: bool) -> bool {
    let group = if is_dir { 0o050 } else { 0o040 };
    let other = if is_dir { 0o005 } else { 0o004 };
    mode & group == group || mode & other == other
}

/// Files and folders that only their owner may read, found by [`survey`].
#[derive(Debug, Default)]
pub struct OwnerOnly {
    /// How many entries were looked at.
    pub checked: usize,
    /// How many of them only their owner may read.
    pub count: usize,
    /// The first few of them, to name in a report.
    pub examples: Vec<PathBuf>,
    /// True when the walk stopped at its limit: there may be more.
    pub truncated: bool,
}

/// How many entries a report names.
const EXAMPLES: usize = 3;

/// Walks `root` (and the folders under it that `descend` accepts, by their path relative to
/// `root`) for entries only their owner may read, looking at no more than `limit` entries; a
/// cache of a hundred thousand blobs on NFS should not keep `doctor` busy for minutes. Entries
/// `skip` accepts (temporary files, trees listings, lock files) are not looked at; symlinks are
/// not followed (a snapshot link has no mode of its own).
pub fn survey(
    root: &Path,
    limit: usize,
    descend: &dyn Fn(&Path) -> bool,
    skip: &dyn Fn(&Path) -> bool,
) -> io::Result<OwnerOnly> {
    let mut found = OwnerOnly::default();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // A folder that vanished (a prune) or that we may not read is not ours to judge
            // here; the root itself must be readable.
            Err(_) if dir.as_path() != root => continue,
            Err(e) => return Err(e),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            if skip(&rel) {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.file_type().is_symlink() {
                continue;
            }
            if found.checked == limit {
                found.truncated = true;
                return Ok(found);
            }
            found.checked += 1;
            if !readable_by_others(mode_of(&meta), meta.is_dir()) {
                found.count += 1;
                if found.examples.len() < EXAMPLES {
                    found.examples.push(path.clone());
                }
            }
            if meta.is_dir() && descend(&rel) {
                pending.push(path);
            }
        }
    }
    Ok(found)
}

/// [`survey`] of a hub cache: its repo folders with their blobs, refs and snapshot folders, the
/// entries huggingface_hub makes as readable as any new file. Left out: tree listings
/// (huggingface_hub writes them 0600 too), lock files, `.no_exist` markers, the shared blob
/// store (huggingface_hub sets its modes from the cache dir's) and temporary files.
pub fn survey_cache(cache_dir: &Path, limit: usize) -> io::Result<OwnerOnly> {
    survey(cache_dir, limit, &|_| true, &|rel| !judged_in_cache(rel))
}

/// Whether [`survey_cache`] looks at `rel`, a path inside the cache dir.
fn judged_in_cache(rel: &Path) -> bool {
    let parts: Vec<&str> = rel.iter().filter_map(|p| p.to_str()).collect();
    if parts.len() != rel.iter().count() || parts.last().is_some_and(|n| is_temporary(n)) {
        return false;
    }
    match parts.as_slice() {
        [repo, rest @ ..] if super::parse_repo_folder(repo).is_some() => match rest {
            [] => true,
            ["blobs"] | ["refs", ..] | ["snapshots", ..] => true,
            ["blobs", name] => super::is_blob_name(name),
            _ => false,
        },
        _ => false,
    }
}

/// A file being written: this tool's temporary files and huggingface_hub's partial downloads.
pub fn is_temporary(name: &str) -> bool {
    name.starts_with(super::TEMP_PREFIX) || name.ends_with(".incomplete")
}

#[cfg(unix)]
fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode()
}

/// Elsewhere access is not told by mode bits: everything reads as readable.
#[cfg(not(unix))]
fn mode_of(_meta: &fs::Metadata) -> u32 {
    0o777
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// The mode a file of kind `Shared` gets when created in `dir` by a process whose umask is
    /// `mask`: made in a child process, so no other test thread sees the mask.
    fn under_umask(mask: libc::mode_t, dir: &Path, name: &str) -> u32 {
        let path = dir.join(name);
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        let mode = creation_mode(Sharing::Shared) as libc::c_uint;
        // SAFETY: the child calls only async-signal-safe functions (umask, open, _exit) on
        // memory prepared before the fork.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            unsafe {
                libc::umask(mask);
                let fd = libc::open(
                    c_path.as_ptr(),
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                    mode,
                );
                libc::_exit(if fd >= 0 { 0 } else { 1 });
            }
        }
        let mut status = 0;
        // SAFETY: waits for the child made above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(status, 0, "the child could not create {name}");
        fs::metadata(&path).unwrap().mode() & 0o7777
    }

    #[test]
    fn shared_files_get_the_mode_of_a_new_file_and_private_ones_stay_private() {
        assert_eq!(creation_mode(Sharing::Shared), 0o666);
        assert_eq!(creation_mode(Sharing::Private), 0o600);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(under_umask(0o022, dir.path(), "a"), 0o644);
        assert_eq!(under_umask(0o002, dir.path(), "b"), 0o664);
        assert_eq!(under_umask(0o077, dir.path(), "c"), 0o600);
    }

    #[test]
    fn readable_means_group_or_others_may_read() {
        assert!(readable_by_others(0o644, false));
        assert!(readable_by_others(0o640, false));
        assert!(readable_by_others(0o604, false));
        assert!(!readable_by_others(0o600, false));
        assert!(!readable_by_others(0o622, false));
        assert!(readable_by_others(0o755, true));
        assert!(readable_by_others(0o2770, true));
        // A folder others may read but not enter serves nobody else.
        assert!(!readable_by_others(0o744, true));
        assert!(!readable_by_others(0o700, true));
    }

    #[test]
    fn survey_counts_owner_only_entries_and_stops_at_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("blobs")).unwrap();
        fs::create_dir_all(root.join("trees")).unwrap();
        for (name, mode) in [("blobs/a", 0o644), ("blobs/b", 0o600), ("trees/t", 0o600)] {
            fs::write(root.join(name), b"x").unwrap();
            fs::set_permissions(root.join(name), fs::Permissions::from_mode(mode)).unwrap();
        }
        std::os::unix::fs::symlink("blobs/b", root.join("link")).unwrap();
        let everywhere = |_: &Path| true;
        let trees = |p: &Path| p.starts_with("trees");
        let found = survey(root, 100, &everywhere, &trees).unwrap();
        assert_eq!((found.checked, found.count), (3, 1), "{found:?}");
        assert_eq!(found.examples, vec![root.join("blobs/b")]);
        assert!(!found.truncated);
        let nowhere = |_: &Path| false;
        let found = survey(root, 100, &nowhere, &trees).unwrap();
        assert_eq!((found.checked, found.count), (1, 0), "{found:?}");
        let found = survey(root, 2, &everywhere, &|_: &Path| false).unwrap();
        assert_eq!(found.checked, 2);
        assert!(found.truncated);
        assert!(survey(&root.join("absent"), 10, &everywhere, &trees).is_err());
    }

    #[test]
    fn a_cache_is_judged_by_its_blobs_refs_and_snapshot_folders() {
        let blob = "a".repeat(64);
        for judged in [
            "models--org--m".to_string(),
            "models--org--m/blobs".into(),
            format!("models--org--m/blobs/{blob}"),
            "models--org--m/refs/pr/1".into(),
            "datasets--org--d/snapshots/c0ffee/sub".into(),
        ] {
            assert!(judged_in_cache(Path::new(&judged)), "{judged}");
        }
        for left_out in [
            "CACHEDIR.TAG".to_string(),
            ".locks/models--org--m/x.lock".into(),
            "blobs/aa/abcdef".into(),
            "models--org--m/trees/c0ffee.json".into(),
            "models--org--m/.no_exist/c0ffee/x".into(),
            format!("models--org--m/blobs/{blob}.1234abcd.incomplete"),
            format!("models--org--m/blobs/.hfcs-{blob}-xyz.tmp"),
            "models--org--m/blobs/notes.txt".into(),
        ] {
            assert!(!judged_in_cache(Path::new(&left_out)), "{left_out}");
        }
    }
}
