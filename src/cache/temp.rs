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

use super::TEMP_SUFFIX;

/// The temporary files on record. The process has one ([`create_in`], [`remove_all`]).
pub struct Registry(Mutex<Record>);

struct Record {
    paths: BTreeSet<PathBuf>,
    /// Set by [`Registry::remove_all`]: the run is ending, no new temporary file may start.
    closed: bool,
}

static LIVE: Registry = Registry::new();

/// Creates `<dir>/<prefix>XXXXXX<TEMP_SUFFIX>` on the process's record.
pub fn create_in(dir: &Path, prefix: &str) -> io::Result<TempFile> {
    LIVE.create_in(dir, prefix)
}

/// Removes every temporary file still on the process's record and refuses new ones: the last
/// step of an interrupted run. Returns how many were removed.
pub fn remove_all() -> usize {
    LIVE.remove_all()
}

impl Registry {
    pub const fn new() -> Registry {
        Registry(Mutex::new(Record {
            paths: BTreeSet::new(),
            closed: false,
        }))
    }

    fn record(&self) -> MutexGuard<'_, Record> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates `<dir>/<prefix>XXXXXX<TEMP_SUFFIX>`, refused once the run is ending.
    pub fn create_in(&'static self, dir: &Path, prefix: &str) -> io::Result<TempFile> {
        let file = tempfile::Builder::new()
            .prefix(prefix)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(dir)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn files_on_record_are_removed_and_none_start_after() {
        let live: &'static Registry = Box::leak(Box::new(Registry::new()));
        let dir = tempfile::tempdir().unwrap();
        let mut kept = live.create_in(dir.path(), "a-").unwrap();
        kept.as_file_mut().write_all(b"partial").unwrap();
        let done = live.create_in(dir.path(), "b-").unwrap();
        done.persist(&dir.path().join("final")).unwrap();
        let dropped = live.create_in(dir.path(), "c-").unwrap();
        let dropped_path = dropped.path().to_path_buf();
        drop(dropped);
        assert!(!dropped_path.exists());

        // A writer still holding `kept` (a busy thread) does not stop its removal.
        assert_eq!(live.remove_all(), 1);
        assert!(!kept.path().exists());
        let err = live.create_in(dir.path(), "d-").err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::Interrupted);
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, vec![std::ffi::OsString::from("final")]);
        drop(kept);
    }
}
