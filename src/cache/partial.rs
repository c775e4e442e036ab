//! Partial downloads: `blobs/<etag>.<8 hex>.incomplete`, where huggingface_hub 2.x leaves its
//! own (older versions: `<etag>.incomplete`), so `status`, `prune` and `rm` treat both alike.
//!
//! Bytes reach a partial in order, so a partial is always a prefix of its blob. A run that
//! needs a blob claims every partial of it by renaming each to a name of its own: a rename
//! succeeds for one claimant only, even on file systems where `flock` silently succeeds
//! (Lustre, GPFS, some NFS). It resumes the longest and removes the others. A partial is never
//! trusted: the blob gets its name only once the whole file matches it.
//!
//! A partial this process writes stays on disk when the run is interrupted or its source fails
//! (the next run resumes it), and goes when its bytes turn out wrong or it is renamed into place.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::modes::{creation_mode, Sharing};
use super::temp::{registry, Registry};
use super::{is_blob_name, TEMP_PREFIX, TEMP_SUFFIX};

pub const SUFFIX: &str = ".incomplete";

/// The blob a partial download is for: `<etag>.<8 hex>.incomplete` or `<etag>.incomplete`.
pub fn blob_of(name: &str) -> Option<&str> {
    let stem = name.strip_suffix(SUFFIX)?;
    let etag = match stem.split_once('.') {
        Some((etag, tag)) if tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit()) => etag,
        Some(_) => return None,
        None => stem,
    };
    is_blob_name(etag).then_some(etag)
}

/// The blob one of this tool's temporary files of an older kind is for:
/// `.hfcs-<etag>-….tmp`.
pub fn temp_of(name: &str) -> Option<&str> {
    name.strip_prefix(TEMP_PREFIX)
        .filter(|_| name.ends_with(TEMP_SUFFIX))
        .and_then(|rest| rest.split_once('-'))
        .map(|(etag, _)| etag)
        .filter(|e| is_blob_name(e))
}

/// What earlier runs left in a repo's `blobs/` for one blob.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leftovers {
    /// Partial downloads, this tool's or huggingface_hub's: claimed and resumed.
    pub partials: Vec<PathBuf>,
    /// This tool's temporary files of an older kind (`.hfcs-<etag>-….tmp`): stale once the
    /// blob's lock is ours.
    pub temps: Vec<PathBuf>,
}

/// The partial downloads and temporary files in a repo's `blobs/`, by the blob each is for.
/// One read of the folder serves every blob a run fetches into the repo: a read per blob would
/// cost a run of thousands of blobs a quadratic number of entries.
pub fn leftovers_by_blob(repo_dir: &Path) -> HashMap<String, Leftovers> {
    let mut out: HashMap<String, Leftovers> = HashMap::new();
    let Ok(entries) = fs::read_dir(repo_dir.join("blobs")) else {
        return out;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if let Some(etag) = blob_of(&name) {
            out.entry(etag.to_string())
                .or_default()
                .partials
                .push(entry.path());
            continue;
        }
        if let Some(etag) = temp_of(&name) {
            out.entry(etag.to_string())
                .or_default()
                .temps
                .push(entry.path());
        }
    }
    out
}

/// A partial download this process writes, on the process's record.
pub struct PartialFile {
    file: File,
    path: PathBuf,
    registry: &'static Registry,
    /// Renamed into place or removed: off the record.
    done: bool,
    /// Its bytes are wrong: removed when this value goes.
    discard: bool,
}

impl PartialFile {
    /// A new, empty `<dir>/<etag>.<8 hex>.incomplete`, with the mode any new file gets in `dir`.
    pub fn create(dir: &Path, etag: &str) -> io::Result<PartialFile> {
        loop {
            let path = dir.join(fresh_name(etag));
            match open_options().create_new(true).open(&path) {
                Ok(file) => return PartialFile::track(file, path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Claims the partial at `from` by renaming it to a fresh name of this process's. `Ok(None)`
    /// when it is gone: another run claimed it first, or finished it.
    pub fn claim(dir: &Path, etag: &str, from: &Path) -> io::Result<Option<PartialFile>> {
        let path = dir.join(fresh_name(etag));
        match fs::rename(from, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        }
        let file = match open_options().open(&path) {
            Ok(file) => file,
            Err(e) => {
                let _ = fs::remove_file(&path);
                return Err(e);
            }
        };
        PartialFile::track(file, path).map(Some)
    }

    fn track(file: File, path: PathBuf) -> io::Result<PartialFile> {
        let registry = registry();
        if let Err(e) = registry.track_partial(&path) {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
        Ok(PartialFile {
            file,
            path,
            registry,
            done: false,
            discard: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn as_file(&self) -> &File {
        &self.file
    }

    pub fn as_file_mut(&mut self) -> &mut File {
        &mut self.file
    }

    /// Removes the file: its bytes are wrong, or of no more use.
    pub fn discard(mut self) {
        self.remove();
    }

    /// Removes the file when this value goes, instead of keeping it for the next run.
    pub fn discard_on_drop(&mut self) {
        self.discard = true;
    }

    fn remove(&mut self) {
        self.done = true;
        let _ = fs::remove_file(&self.path);
        self.registry.untrack_partial(&self.path, false);
    }

    /// Renames the file to `dest`, replacing what is there. On failure the file is removed.
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        let renamed = fs::rename(&self.path, dest);
        match renamed {
            Ok(()) => {
                self.done = true;
                self.registry.untrack_partial(&self.path, false);
                Ok(())
            }
            Err(e) => {
                self.remove();
                Err(e)
            }
        }
    }
}

impl Drop for PartialFile {
    /// A partial whose bytes are not known to be wrong stays for the next run; an empty one is
    /// of no use to it.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.discard || self.file.metadata().is_ok_and(|m| m.len() == 0) {
            self.remove();
        } else {
            self.registry.untrack_partial(&self.path, true);
        }
    }
}

fn fresh_name(etag: &str) -> String {
    format!("{etag}.{:08x}{SUFFIX}", fastrand::u32(..))
}

fn open_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Passed to open(2), which takes the umask off: see `creation_mode`.
        o.mode(creation_mode(Sharing::Shared));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn partial_names_are_recognised_and_others_are_not() {
        assert_eq!(blob_of(&format!("{E}.0a1b2c3d.incomplete")), Some(E));
        assert_eq!(blob_of(&format!("{E}.incomplete")), Some(E));
        assert_eq!(blob_of(&format!("{E}.0a1b2c3.incomplete")), None);
        assert_eq!(blob_of(&format!("{E}.zzzzzzzz.incomplete")), None);
        assert_eq!(blob_of("download.incomplete"), None);
        assert_eq!(blob_of(E), None);
        assert_eq!(blob_of(&fresh_name(E)), Some(E));
    }

    #[test]
    fn a_partial_is_claimed_once_and_kept_unless_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let left = dir.path().join(format!("{E}.incomplete"));
        fs::write(&left, b"hel").unwrap();
        let claimed = PartialFile::claim(dir.path(), E, &left).unwrap().unwrap();
        assert!(!left.exists());
        assert!(
            PartialFile::claim(dir.path(), E, &left).unwrap().is_none(),
            "a second claimant finds it gone"
        );
        let path = claimed.path().to_path_buf();
        assert_eq!(
            blob_of(&path.file_name().unwrap().to_string_lossy()),
            Some(E)
        );
        drop(claimed);
        assert_eq!(fs::read(&path).unwrap(), b"hel", "kept for the next run");
        assert!(kept_has(&path));

        let again = PartialFile::claim(dir.path(), E, &path).unwrap().unwrap();
        let again_path = again.path().to_path_buf();
        again.discard();
        assert!(!again_path.exists() && !kept_has(&again_path));

        let empty = PartialFile::create(dir.path(), E).unwrap();
        let empty_path = empty.path().to_path_buf();
        drop(empty);
        assert!(!empty_path.exists(), "an empty partial is of no use");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    fn kept_has(path: &Path) -> bool {
        registry().kept_partials().iter().any(|(p, _)| p == path)
    }

    #[test]
    fn leftovers_are_listed_by_blob() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = dir.path().join("blobs");
        fs::create_dir(&blobs).unwrap();
        for name in [
            format!("{E}.0a1b2c3d.incomplete"),
            format!("{E}.incomplete"),
            format!("{TEMP_PREFIX}{E}-abc123{TEMP_SUFFIX}"),
            E.to_string(),
            "download.incomplete".to_string(),
        ] {
            fs::write(blobs.join(name), b"x").unwrap();
        }
        let found = leftovers_by_blob(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!((found[E].partials.len(), found[E].temps.len()), (2, 1));
    }
}
