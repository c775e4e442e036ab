//! The blob writer: one blob streamed into its partial download in `blobs/`
//! ([`crate::cache::partial`]), hashed on the way, fsynced and renamed into place only when the
//! whole file matches its name.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::readback::ReadBack;
use super::{copy_chunk, copy_verified, io_err, start_writeback, Verifier, WriteError};
use crate::cache::blob_path;
use crate::cache::partial::PartialFile;

/// The size of one `write()` into a blob: each piece is hashed, then written while it is still in
/// the CPU's cache. Measured on 2 GiB pulls with the page cache dropped before each run
/// (bench/RESULTS.md): hashing then writing a whole 8 MiB part took twice the time and 2.5 times
/// the CPU; pieces of 32 KiB to 1 MiB were within 5% of each other, larger ones a little faster.
/// 256 KiB stays well inside the per-core L2 cache of current server CPUs.
pub const WRITE_PIECE: usize = 256 * 1024;

/// How much is written before the kernel is asked to start writing it back, so the final fsync
/// waits for the tail only and the disk works while the network does.
const WRITEBACK_CHUNK: u64 = 8 * 1024 * 1024;

/// How the bytes of a blob are hashed.
enum Hashing {
    /// Each piece as it is written: a blob written from its start.
    Inline(Verifier),
    /// From the file, by a thread that reads back what is on disk: a resumed partial, whose
    /// kept bytes are hashed while the rest arrives.
    ReadBack(ReadBack),
}

/// Streams one blob into its partial download in `blobs/`, verifying what it writes: a new one,
/// or the longest an earlier run left, resumed where it stopped.
///
/// [`BlobWriter::finish`] fsyncs the file before the rename but not the folder: callers sync each
/// `blobs/` folder once after all their renames ([`super::sync_dir`]), instead of once a blob.
pub struct BlobWriter {
    pub(super) tmp: PartialFile,
    hashing: Hashing,
    etag: String,
    expected: u64,
    written: u64,
    final_path: PathBuf,
    /// Bytes already handed to writeback.
    flushed: u64,
    /// Bytes an earlier run wrote: the partial resumed.
    resumed: u64,
}

impl BlobWriter {
    /// A writer for a new partial download of the blob.
    pub fn create(
        repo_dir: &Path,
        etag: &str,
        expected_size: u64,
    ) -> Result<BlobWriter, WriteError> {
        BlobWriter::open(repo_dir, etag, expected_size, &[])
    }

    /// A writer for the blob that resumes the longest of `partials` (partial downloads of it,
    /// [`crate::cache::partial::Leftovers`]) after claiming each; the others are removed. A new
    /// partial when none is left or usable. Call under the blob's lock.
    pub fn open(
        repo_dir: &Path,
        etag: &str,
        expected_size: u64,
        partials: &[PathBuf],
    ) -> Result<BlobWriter, WriteError> {
        let verifier = Verifier::new(etag, expected_size)?;
        let final_path = blob_path(repo_dir, etag);
        let dir = final_path.parent().expect("blob path has a parent");
        let resumed =
            claim_longest(dir, etag, expected_size, partials).and_then(|(mut tmp, len)| {
                // The download goes on at the end.
                let end = io::Seek::seek(tmp.as_file_mut(), io::SeekFrom::End(0)).ok()?;
                let appending = end == len;
                let reader = tmp.as_file().try_clone().ok()?;
                let path = tmp.path().to_path_buf();
                let hasher = ReadBack::start(reader, path, verifier, len).ok();
                match hasher.filter(|_| appending) {
                    Some(hasher) => Some((tmp, len, hasher)),
                    None => {
                        tmp.discard();
                        None
                    }
                }
            });
        let (tmp, resumed, hashing) = match resumed {
            Some((tmp, len, hasher)) => (tmp, len, Hashing::ReadBack(hasher)),
            None => {
                let verifier = Verifier::new(etag, expected_size)?;
                (create_partial(dir, etag)?, 0, Hashing::Inline(verifier))
            }
        };
        Ok(BlobWriter {
            tmp,
            hashing,
            etag: etag.to_string(),
            expected: expected_size,
            written: resumed,
            final_path,
            flushed: resumed,
            resumed,
        })
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// The writer hashes what it writes itself (no read-back thread, or no longer).
    #[cfg(test)]
    pub(super) fn hashes_inline(&self) -> bool {
        matches!(self.hashing, Hashing::Inline(_))
    }

    /// Bytes an earlier run left that this writer resumed from.
    pub fn resumed(&self) -> u64 {
        self.resumed
    }

    pub fn is_complete(&self) -> bool {
        self.written == self.expected
    }

    /// Fails, writing nothing, when `len` more bytes would run past the blob's size.
    fn check_room(&mut self, len: u64) -> Result<(), WriteError> {
        if self.written + len <= self.expected {
            return Ok(());
        }
        let e = WriteError::Size {
            etag: self.etag.clone(),
            expected: self.expected,
            actual: self.written + len,
        };
        Err(self.failed(e))
    }

    /// Bytes that do not match the blob make the partial worthless, and on a full disk it only
    /// keeps the space others need: it goes with the writer.
    fn failed(&mut self, e: WriteError) -> WriteError {
        let worthless = match &e {
            WriteError::Mismatch { .. } | WriteError::Size { .. } => true,
            WriteError::Unreadable { .. } => true,
            WriteError::Io { source, .. } => is_disk_full(source),
            WriteError::Lock(_) => false,
        };
        if worthless {
            self.tmp.discard_on_drop();
        }
        e
    }

    /// `written` bytes are on disk now: hand what is due to writeback, tell the read-back hasher.
    fn advanced(&mut self, written: u64) {
        self.written = written;
        if let Hashing::ReadBack(hasher) = &self.hashing {
            hasher.advance(written);
        }
        if written - self.flushed >= WRITEBACK_CHUNK {
            start_writeback(self.tmp.as_file(), self.flushed, written - self.flushed);
            self.flushed = written;
        }
    }

    /// Once the read-back hasher of a resumed partial has hashed all that is on disk, the rest
    /// is hashed as it is written rather than read back.
    fn take_hash_back(&mut self) -> Result<(), WriteError> {
        let Hashing::ReadBack(hasher) = &mut self.hashing else {
            return Ok(());
        };
        match hasher.take_if_caught_up(self.written) {
            None => Ok(()),
            Some(Ok(verifier)) => {
                self.hashing = Hashing::Inline(verifier);
                Ok(())
            }
            Some(Err(e)) => Err(self.failed(e)),
        }
    }

    /// Fills the blob from `src` (from its offset to its end) with a copy inside the kernel,
    /// verifying what landed ([`copy_verified`], or the read-back hasher). `Ok(false)`, with
    /// nothing written, when the kernel cannot copy between the two files: [`BlobWriter::write`]
    /// them instead.
    pub fn copy_from(
        &mut self,
        src: &File,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<bool, WriteError> {
        let path = self.tmp.path().to_path_buf();
        let dst = self.tmp.as_file().try_clone().map_err(io_err(&path))?;
        let copied = match &mut self.hashing {
            Hashing::Inline(verifier) => {
                let (written, flushed) = (&mut self.written, &mut self.flushed);
                copy_verified(src, &dst, &path, verifier, |at, n| {
                    *written = at + n;
                    if *written - *flushed >= WRITEBACK_CHUNK {
                        start_writeback(&dst, *flushed, *written - *flushed);
                        *flushed = *written;
                    }
                    on_bytes(n);
                })
            }
            Hashing::ReadBack(_) => self.copy_unhashed(src, &dst, &path, &mut on_bytes),
        };
        copied.map_err(|e| self.failed(e))
    }

    /// A kernel copy for a resumed partial: the read-back hasher checks what lands.
    fn copy_unhashed(
        &mut self,
        src: &File,
        dst: &File,
        path: &Path,
        on_bytes: &mut impl FnMut(u64),
    ) -> Result<bool, WriteError> {
        let mut copied = false;
        loop {
            // One byte more than the blob lacks: a source that is too long shows itself.
            let room =
                (self.expected - self.written + 1).min(super::super::hash::READ_CHUNK as u64);
            let n = match copy_chunk(src, dst, room as usize) {
                Ok(0) => return Ok(true),
                Ok(n) => n as u64,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if !copied && super::cannot_copy_in_kernel(&e) => return Ok(false),
                Err(e) => return Err(io_err(path)(e)),
            };
            copied = true;
            self.check_room(n)?;
            self.advanced(self.written + n);
            on_bytes(n);
        }
    }

    /// Writes `bytes` a [`WRITE_PIECE`] at a time, each piece hashed just before it is written
    /// while it is still in the CPU's cache: the kernel's copy of one large buffer costs several
    /// times the system time of the same bytes in small writes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.check_room(bytes.len() as u64)?;
        self.take_hash_back()?;
        let path = self.tmp.path().to_path_buf();
        for piece in bytes.chunks(WRITE_PIECE) {
            if let Hashing::Inline(verifier) = &mut self.hashing {
                verifier.update(piece)?;
            }
            if let Err(e) = self.tmp.as_file_mut().write_all(piece) {
                return Err(self.failed(io_err(&path)(e)));
            }
        }
        self.advanced(self.written + bytes.len() as u64);
        Ok(())
    }

    /// Verifies, fsyncs and renames into place. A partial whose bytes do not match is removed;
    /// one cut short stays for the next run.
    pub fn finish(self) -> Result<PathBuf, WriteError> {
        let BlobWriter {
            tmp,
            hashing,
            final_path,
            written,
            ..
        } = self;
        let verifier = match hashing {
            Hashing::Inline(verifier) => Ok(verifier),
            Hashing::ReadBack(hasher) => hasher.finish(written),
        };
        if let Err(e) = verifier.and_then(Verifier::check) {
            tmp.discard();
            return Err(e);
        }
        if let Err(e) = tmp.as_file().sync_all() {
            let e = io_err(tmp.path())(e);
            if matches!(&e, WriteError::Io { source, .. } if is_disk_full(source)) {
                tmp.discard();
            }
            return Err(e);
        }
        tmp.persist(&final_path).map_err(io_err(&final_path))?;
        Ok(final_path)
    }
}

/// No space left on the device, or in the user's quota.
fn is_disk_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT))
}

/// A new partial download of `etag` in `dir`, creating the folder only when it is missing (a
/// pull of thousands of small blobs would otherwise pay a failed mkdir for each).
fn create_partial(dir: &Path, etag: &str) -> Result<PartialFile, WriteError> {
    match PartialFile::create(dir, etag) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
            PartialFile::create(dir, etag)
        }
        other => other,
    }
    .map_err(io_err(dir))
}

/// Claims every one of `partials` ([`PartialFile::claim`]) and keeps the longest no longer than
/// the blob, with its length; the others are removed.
fn claim_longest(
    dir: &Path,
    etag: &str,
    size: u64,
    partials: &[PathBuf],
) -> Option<(PartialFile, u64)> {
    let mut claimed: Vec<(PartialFile, u64)> = partials
        .iter()
        .filter_map(|p| PartialFile::claim(dir, etag, p).ok().flatten())
        .filter_map(|f| {
            let len = f.as_file().metadata().ok()?.len();
            Some((f, len))
        })
        .collect();
    claimed.sort_by_key(|(_, len)| std::cmp::Reverse(*len));
    let mut kept = None;
    for (f, len) in claimed {
        if kept.is_none() && len <= size && len > 0 {
            kept = Some((f, len));
        } else {
            f.discard();
        }
    }
    kept
}

/// Removes temporary files of an older kind ([`crate::cache::partial::Leftovers::temps`]) for
/// one blob, so a re-run does not keep a partial copy of a shard next to the new one. Call only
/// while holding the blob's lock: a writer of the same blob that was live when they were listed
/// held it, so they are stale now.
pub fn remove_stale_temps(temps: &[PathBuf]) {
    for t in temps {
        let _ = fs::remove_file(t);
    }
}
