//! Temporary files this process is writing, kept on record until they are renamed into place or
//! removed. An interrupted run removes what is still on record before it exits, even while the
//! thread writing one is busy with it: the process does not wait for such threads (a copy of a
//! 5 GB shard from a directory remote would hold the exit for seconds).

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use tempfile::NamedTempFile;

use super::modes::{creation_mode, Sharing};
use super::TEMP_SUFFIX;

/// The temporary files on record. The process has one ([`create_in`], [`remove_all`]).
pub struct Registry(Mutex<Record>);

struct Record {
    paths: BTreeSet<PathBuf>,
    /// Partial downloads being written ([`super::partial`]): kept, not removed, when the run
    /// is interrupted, so the next run resumes them.
    partials: BTreeSet<PathBuf>,
    /// Partial downloads this run stopped writing and left for the next one.
    kept: BTreeSet<PathBuf>,
    /// Set by [`Registry::remove_all`]: the run is ending, no new temporary file may start.
    closed: bool,
}

static LIVE: Registry = Registry::new();

/// Creates `<dir>/<prefix>XXXXXX<TEMP_SUFFIX>` on the process's record, with the mode any new
/// file gets in `dir` ([`Sharing::Shared`]): what blobs, refs, a local dir's files and a
/// directory remote's objects are made with.
pub fn create_in(dir: &Path, prefix: &str) -> io::Result<TempFile> {
    LIVE.create_with(dir, prefix, Sharing::Shared)
}

/// Proves this process may create files in `dir` (not another user's folder, not a read-only
/// mount): a temporary file made there and removed at once.
pub fn probe_writable(dir: &Path) -> io::Result<()> {
    create_in(dir, ".hf-cache-sync-probe-").map(drop)
}

/// [`create_in`] with the mode [`creation_mode`] gives `sharing`: [`Sharing::Private`] for a
/// file only its owner may read.
pub fn create_with(dir: &Path, prefix: &str, sharing: Sharing) -> io::Result<TempFile> {
    LIVE.create_with(dir, prefix, sharing)
}

/// Makes `<dir>/<prefix>XXXXXX<TEMP_SUFFIX>` a hard link to `original`, on the process's record.
pub fn link_in(dir: &Path, prefix: &str, original: &Path) -> io::Result<TempLink> {
    LIVE.link_in(dir, prefix, original)
}

/// The process's record of temporary files and partial downloads.
pub fn registry() -> &'static Registry {
    &LIVE
}

/// The partial downloads this run leaves for the next one to resume, with their sizes.
pub fn kept_partials() -> Vec<(PathBuf, u64)> {
    LIVE.kept_partials()
}

/// Removes every temporary file still on the process's record and refuses new ones: the last
/// step of an interrupted run. Partial downloads stay for the next run. Returns how many
/// files were removed.
pub fn remove_all() -> usize {
    LIVE.remove_all()
}

impl Registry {
    pub const fn new() -> Registry {
        Registry(Mutex::new(Record {
            paths: BTreeSet::new(),
            partials: BTreeSet::new(),
            kept: BTreeSet::new(),
            closed: false,
        }))
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates `<dir>/<prefix>XXXXXX<TEMP_SUFFIX>` with the mode [`creation_mode`] gives
    /// `sharing`, refused once the run is ending. The file keeps that mode through its rename.
    pub fn create_with(
        &'static self,
        dir: &Path,
        prefix: &str,
        sharing: Sharing,
    ) -> io::Result<TempFile> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(prefix).suffix(TEMP_SUFFIX);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Passed to open(2), which takes the umask off: see `creation_mode`.
            builder.permissions(std::fs::Permissions::from_mode(creation_mode(sharing)));
        }
        #[cfg(not(unix))]
        let _ = sharing;
        let file = builder.tempfile_in(dir)?;
        let path = file.path().to_path_buf();
        let mut record = self.record();
        if record.closed {
            // `file` is removed as it drops.
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "interrupted: no new temporary files",
            ));
        }
        record.paths.insert(path.clone());
        Ok(TempFile {
            file: Some(file),
            path,
            registry: self,
        })
    }

    /// A new hard link to `original` under a temporary name in `dir`, refused once the run is
    /// ending.
    pub fn link_in(
        &'static self,
        dir: &Path,
        prefix: &str,
        original: &Path,
    ) -> io::Result<TempLink> {
        loop {
            let path = dir.join(format!(
                "{prefix}{:06x}{TEMP_SUFFIX}",
                fastrand::u32(..1 << 24)
            ));
            let mut record = self.record();
            if record.closed {
                return Err(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "interrupted: no new temporary files",
                ));
            }
            match std::fs::hard_link(original, &path) {
                Ok(()) => {
                    record.paths.insert(path.clone());
                    return Ok(TempLink {
                        path: Some(path),
                        registry: self,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Puts a partial download on record, refused once the run is ending.
    pub fn track_partial(&self, path: &Path) -> io::Result<()> {
        let mut record = self.record();
        if record.closed {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "interrupted: no new partial downloads",
            ));
        }
        record.partials.insert(path.to_path_buf());
        Ok(())
    }

    /// Takes a partial download off the record: renamed into place or removed, or (`kept`)
    /// left for the next run.
    pub fn untrack_partial(&self, path: &Path, kept: bool) {
        let mut record = self.record();
        record.partials.remove(path);
        if kept {
            record.kept.insert(path.to_path_buf());
        } else {
            record.kept.remove(path);
        }
    }

    /// The partial downloads of blob `etag` in `dir` this run stopped writing: what a fetch of
    /// the blob from another source resumes.
    pub fn kept_for(&self, dir: &Path, etag: &str) -> Vec<PathBuf> {
        let prefix = format!("{etag}.");
        self.record()
            .kept
            .iter()
            .filter(|p| p.parent() == Some(dir))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            })
            .cloned()
            .collect()
    }

    /// The partial downloads this run leaves for the next one, with their sizes: those it
    /// stopped writing and those still being written.
    pub fn kept_partials(&self) -> Vec<(PathBuf, u64)> {
        let record = self.record();
        record
            .kept
            .iter()
            .chain(&record.partials)
            .filter_map(|p| Some((p.clone(), std::fs::metadata(p).ok()?.len())))
            .filter(|(_, len)| *len > 0)
            .collect()
    }

    pub fn remove_all(&self) -> usize {
        let mut record = self.record();
        record.closed = true;
        std::mem::take(&mut record.paths)
            .iter()
            .filter(|p| std::fs::remove_file(p).is_ok())
            .count()
    }
}

/// A temporary file on record; dropping it removes the file.
pub struct TempFile {
    file: Option<NamedTempFile>,
    path: PathBuf,
    registry: &'static Registry,
}

impl TempFile {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn as_file(&self) -> &File {
        self.file
            .as_ref()
            .expect("present until persisted")
            .as_file()
    }

    pub fn as_file_mut(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("present until persisted")
            .as_file_mut()
    }

    /// Renames the file to `dest` (replacing what is there).
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        let file = self.file.take().expect("present until persisted");
        // On failure the error holds the file, which is removed as it drops.
        file.persist(dest).map(drop).map_err(|e| e.error)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.registry.record().paths.remove(&self.path);
    }
}

/// A hard link under a temporary name, on record; dropping it removes the name.
pub struct TempLink {
    /// `None` once renamed into place.
    path: Option<PathBuf>,
    registry: &'static Registry,
}

impl TempLink {
    /// Renames the link to `dest`, replacing what is there in one step.
    pub fn persist(mut self, dest: &Path) -> io::Result<()> {
        let path = self.path.take().expect("present until persisted");
        let renamed = std::fs::rename(&path, dest);
        self.registry.record().paths.remove(&path);
        if renamed.is_err() {
            let _ = std::fs::remove_file(&path);
        }
        renamed
    }
}

impl Drop for TempLink {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(&path);
            self.registry.record().paths.remove(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn files_on_record_are_removed_and_none_start_after() {
        let live: &'static Registry = Box::leak(Box::new(Registry::new()));
        let dir = tempfile::tempdir().unwrap();
        let mut kept = live.create_with(dir.path(), "a-", Sharing::Shared).unwrap();
        kept.as_file_mut().write_all(b"partial").unwrap();
        let done = live.create_with(dir.path(), "b-", Sharing::Shared).unwrap();
        done.persist(&dir.path().join("final")).unwrap();
        let dropped = live
            .create_with(dir.path(), "c-", Sharing::Private)
            .unwrap();
        let dropped_path = dropped.path().to_path_buf();
        drop(dropped);
        assert!(!dropped_path.exists());

        // A writer still holding `kept` (a busy thread) does not stop its removal.
        assert_eq!(live.remove_all(), 1);
        assert!(!kept.path().exists());
        let err = live
            .create_with(dir.path(), "d-", Sharing::Shared)
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("final")]);
        drop(kept);
    }

    #[test]
    fn a_shared_file_gets_the_mode_of_any_new_file_there_and_a_private_one_0600() {
        use std::os::unix::fs::PermissionsExt;
        let live: &'static Registry = Box::leak(Box::new(Registry::new()));
        let dir = tempfile::tempdir().unwrap();
        // What huggingface_hub reads: the mode a file created plainly in the folder gets.
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let shared = live.create_with(dir.path(), "s-", Sharing::Shared).unwrap();
        assert_eq!(mode(shared.path()), mode(&plain));
        let private = live
            .create_with(dir.path(), "p-", Sharing::Private)
            .unwrap();
        assert_eq!(mode(private.path()), 0o600);
        // The rename keeps it.
        let dest = dir.path().join("dest");
        shared.persist(&dest).unwrap();
        assert_eq!(mode(&dest), mode(&plain));
    }

    #[test]
    fn temporary_links_go_on_record_and_replace_in_one_step() {
        let live: &'static Registry = Box::leak(Box::new(Registry::new()));
        let dir = tempfile::tempdir().unwrap();
        let original = dir.path().join("original");
        let dest = dir.path().join("dest");
        std::fs::write(&original, b"same bytes").unwrap();
        std::fs::write(&dest, b"same bytes").unwrap();
        let link = live.link_in(dir.path(), ".t-", &original).unwrap();
        link.persist(&dest).unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(ino(&dest), ino(&original));
        let dropped = live.link_in(dir.path(), ".t-", &original).unwrap();
        drop(dropped);
        let interrupted = live.link_in(dir.path(), ".t-", &original).unwrap();
        assert_eq!(live.remove_all(), 1);
        drop(interrupted);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            vec![std::ffi::OsString::from("dest"), "original".into()]
        );
    }
}
