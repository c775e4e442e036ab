//! Writes into the hub cache that can never leave a wrong blob under a blob name: bytes go to a
//! temporary file beside the blobs, are verified and fsynced, then renamed into place, all
//! under the same lock file huggingface_hub takes for that blob.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::hash::BlobHasher;
use super::lock::LockError;
use super::modes::Sharing;
use super::partial::PartialFile;
use super::temp;
use super::{blob_path, ref_path, snapshot_link_target, snapshot_path};

mod sink;

pub use super::{TEMP_PREFIX, TEMP_SUFFIX};
pub use sink::BlobSink;

/// Why a blob could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("content does not match blob name {etag} (got {actual}); not stored")]
    Mismatch { etag: String, actual: String },
    #[error("blob {etag}: expected {expected} bytes, got {actual}")]
    Size {
        etag: String,
        expected: u64,
        actual: u64,
    },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(transparent)]
    Lock(#[from] LockError),
}

pub fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WriteError + '_ {
    move |source| WriteError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses to write into `dir` (under the cache dir `root`) when an existing folder on the way,
/// `dir` included, is a link that resolves outside `root`: a planted link must never turn a pull
/// into a write elsewhere on the machine. Folders that do not exist yet are fine.
pub fn check_inside(root: &Path, dir: &Path) -> Result<(), WriteError> {
    check_within(root, dir, "the cache dir")
}

/// [`check_inside`] for any folder `root` a command writes into, called `what` in the error
/// (`the cache dir`, `the local dir`).
pub fn check_within(root: &Path, dir: &Path, what: &str) -> Result<(), WriteError> {
    let Ok(rel) = dir.strip_prefix(root) else {
        return Err(WriteError::Io {
            path: dir.to_path_buf(),
            source: io::Error::other(format!("not inside {what}; refusing to write there")),
        });
    };
    let Ok(canonical_root) = fs::canonicalize(root) else {
        return Ok(());
    };
    let mut cur = root.to_path_buf();
    for part in rel.components() {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Err(_) => return Ok(()),
            Ok(m) if m.file_type().is_symlink() => match fs::canonicalize(&cur) {
                Ok(target) if target.starts_with(&canonical_root) => {}
                Ok(target) => {
                    return Err(WriteError::Io {
                        source: io::Error::other(format!(
                            "a link to {}, outside {what}; refusing to write through it",
                            target.display()
                        )),
                        path: cur,
                    })
                }
                Err(_) => {
                    return Err(WriteError::Io {
                        path: cur,
                        source: io::Error::other("a broken link; refusing to write through it"),
                    })
                }
            },
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Creates `blobs/`, `snapshots/` and `refs/` together: huggingface_hub calls a repo folder
/// without `snapshots/` corrupted, and a pull that fails half-way must still leave a clean cache.
pub fn ensure_repo_dirs(repo_dir: &Path) -> Result<(), WriteError> {
    for sub in ["blobs", "snapshots", "refs"] {
        let dir = repo_dir.join(sub);
        fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    }
    Ok(())
}

/// Checks bytes against a blob name as they pass: never more than the expected size, and the
/// hash at the end. Every path that moves a blob goes through one.
pub struct Verifier {
    hasher: BlobHasher,
    etag: String,
    expected: u64,
    seen: u64,
}

impl Verifier {
    pub fn new(etag: &str, expected: u64) -> Result<Verifier, WriteError> {
        let hasher = BlobHasher::for_name(etag, expected).ok_or_else(|| WriteError::Mismatch {
            etag: etag.to_string(),
            actual: "an unsupported blob name".into(),
        })?;
        Ok(Verifier {
            hasher,
            etag: etag.to_string(),
            expected,
            seen: 0,
        })
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Fails, hashing nothing, when `len` more bytes would run past the expected size.
    pub fn check_room(&self, len: usize) -> Result<(), WriteError> {
        let seen = self.seen + len as u64;
        if seen > self.expected {
            return Err(self.size_error(seen));
        }
        Ok(())
    }

    pub fn update(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let seen = self.seen + bytes.len() as u64;
        if seen > self.expected {
            return Err(self.size_error(seen));
        }
        self.hasher.update(bytes);
        self.seen = seen;
        Ok(())
    }

    fn size_error(&self, actual: u64) -> WriteError {
        WriteError::Size {
            etag: self.etag.clone(),
            expected: self.expected,
            actual,
        }
    }

    pub fn check(self) -> Result<(), WriteError> {
        if self.seen != self.expected {
            return Err(self.size_error(self.seen));
        }
        let actual = self.hasher.finish();
        if actual != self.etag {
            return Err(WriteError::Mismatch {
                etag: self.etag,
                actual,
            });
        }
        Ok(())
    }
}

/// The size of one `write()` into a blob: each piece is hashed, then written while it is still in
/// the CPU's cache. Measured on 2 GiB pulls with the page cache dropped before each run
/// (bench/RESULTS.md): hashing then writing a whole 8 MiB part took twice the time and 2.5 times
/// the CPU; pieces of 32 KiB to 1 MiB were within 5% of each other, larger ones a little faster.
/// 256 KiB stays well inside the per-core L2 cache of current server CPUs.
pub const WRITE_PIECE: usize = 256 * 1024;

/// How much is written before the kernel is asked to start writing it back, so the final fsync
/// waits for the tail only and the disk works while the network does.
const WRITEBACK_CHUNK: u64 = 8 * 1024 * 1024;

/// Streams one blob into its partial download in `blobs/` ([`super::partial`]), verifying as
/// it goes: a new one, or the longest an earlier run left, resumed where it stopped.
///
/// [`BlobWriter::finish`] fsyncs the file before the rename but not the folder: callers sync each
/// `blobs/` folder once after all their renames ([`sync_dir`]), instead of once a blob.
pub struct BlobWriter {
    tmp: PartialFile,
    verifier: Verifier,
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
    /// [`super::partial::Leftovers`]), after claiming each and hashing the one it keeps; the others are removed.
    /// A new partial when none is left or usable. Call under the blob's lock.
    pub fn open(
        repo_dir: &Path,
        etag: &str,
        expected_size: u64,
        partials: &[PathBuf],
    ) -> Result<BlobWriter, WriteError> {
        let mut verifier = Verifier::new(etag, expected_size)?;
        let final_path = blob_path(repo_dir, etag);
        let dir = final_path.parent().expect("blob path has a parent");
        let resumed = claim_longest(dir, etag, expected_size, partials)
            .and_then(|(tmp, len)| hash_prefix(tmp, len, &mut verifier));
        let (tmp, resumed) = match resumed {
            Some(found) => found,
            None => {
                verifier = Verifier::new(etag, expected_size)?;
                (create_partial(dir, etag)?, 0)
            }
        };
        Ok(BlobWriter {
            tmp,
            verifier,
            final_path,
            flushed: resumed,
            resumed,
        })
    }

    pub fn written(&self) -> u64 {
        self.verifier.seen()
    }

    /// Bytes an earlier run left that this writer resumed from.
    pub fn resumed(&self) -> u64 {
        self.resumed
    }

    pub fn is_complete(&self) -> bool {
        self.written() == self.verifier.expected
    }

    /// Bytes that do not match the blob make the partial worthless, and on a full disk it only
    /// keeps the space others need: it goes with the writer.
    fn failed(&mut self, e: WriteError) -> WriteError {
        let worthless = match &e {
            WriteError::Mismatch { .. } | WriteError::Size { .. } => true,
            WriteError::Io { source, .. } => is_disk_full(source),
            WriteError::Lock(_) => false,
        };
        if worthless {
            self.tmp.discard_on_drop();
        }
        e
    }

    /// Fills the blob from `src` (from its offset to its end) with a copy inside the kernel,
    /// verifying what landed ([`copy_verified`]). `Ok(false)`, with nothing written, when the
    /// kernel cannot copy between the two files: [`BlobWriter::write`] them instead.
    pub fn copy_from(
        &mut self,
        src: &File,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<bool, WriteError> {
        let (file, path) = (self.tmp.as_file(), self.tmp.path().to_path_buf());
        let flushed = &mut self.flushed;
        let copied = copy_verified(src, file, &path, &mut self.verifier, |at, n| {
            let written = at + n;
            if written - *flushed >= WRITEBACK_CHUNK {
                start_writeback(file, *flushed, written - *flushed);
                *flushed = written;
            }
            on_bytes(n);
        });
        copied.map_err(|e| self.failed(e))
    }

    /// Hashes and writes `bytes` a [`WRITE_PIECE`] at a time: each piece is still in the CPU's
    /// cache when the kernel copies it into the page cache, and the kernel's copy of one large
    /// buffer costs several times the system time of the same bytes in small writes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        if let Err(e) = self.verifier.check_room(bytes.len()) {
            return Err(self.failed(e));
        }
        let path = self.tmp.path().to_path_buf();
        for piece in bytes.chunks(WRITE_PIECE) {
            self.verifier.update(piece)?;
            if let Err(e) = self.tmp.as_file_mut().write_all(piece) {
                return Err(self.failed(io_err(&path)(e)));
            }
        }
        let written = self.verifier.seen();
        if written - self.flushed >= WRITEBACK_CHUNK {
            start_writeback(self.tmp.as_file(), self.flushed, written - self.flushed);
            self.flushed = written;
        }
        Ok(())
    }

    /// Verifies, fsyncs and renames into place. A partial whose bytes do not match is removed;
    /// one cut short stays for the next run.
    pub fn finish(self) -> Result<PathBuf, WriteError> {
        let BlobWriter {
            tmp,
            verifier,
            final_path,
            ..
        } = self;
        if let Err(e) = verifier.check() {
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

/// Feeds the first `len` bytes of a claimed partial to `verifier` and leaves the file's offset
/// at its end, where the download goes on. `None` (the partial removed) when it cannot be read.
fn hash_prefix(
    mut tmp: PartialFile,
    len: u64,
    verifier: &mut Verifier,
) -> Option<(PartialFile, u64)> {
    use std::io::{Read, Seek};
    let mut buf = vec![0u8; super::hash::READ_CHUNK];
    let file = tmp.as_file_mut();
    let mut left = len;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        if file.read_exact(&mut buf[..want]).is_err() || verifier.update(&buf[..want]).is_err() {
            tmp.discard();
            return None;
        }
        left -= want as u64;
    }
    if file.seek(io::SeekFrom::Start(len)).is_err() {
        tmp.discard();
        return None;
    }
    Some((tmp, len))
}

/// Removes temporary files of an older kind ([`super::partial::Leftovers::temps`]) for one blob, so a re-run
/// does not keep a partial copy of a shard next to the new one. Call only while holding the
/// blob's lock: a writer of the same blob that was live when they were listed held it, so they
/// are stale now.
pub fn remove_stale_temps(temps: &[PathBuf]) {
    for t in temps {
        let _ = fs::remove_file(t);
    }
}

/// Copies `src` (from its offset to its end) into `dst` (at its offset) inside the kernel with
/// `copy_file_range`, then reads each chunk back from `dst` into `verifier`: what is verified is
/// what was written, whatever happens to `src` meanwhile. Copying through user memory (read,
/// then write) costs several times as much CPU as this on the machines measured. `on_chunk`
/// gets each chunk's offset and length. `Ok(false)`, with nothing copied, when the kernel cannot
/// copy between the two files (other filesystems on an older kernel, special files, not Linux).
pub fn copy_verified(
    src: &File,
    dst: &File,
    dst_path: &Path,
    verifier: &mut Verifier,
    mut on_chunk: impl FnMut(u64, u64),
) -> Result<bool, WriteError> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; super::hash::READ_CHUNK];
    let mut copied = false;
    loop {
        let n = match copy_chunk(src, dst, buf.len()) {
            Ok(0) => return Ok(true),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if !copied && cannot_copy_in_kernel(&e) => return Ok(false),
            Err(e) => return Err(io_err(dst_path)(e)),
        };
        copied = true;
        let at = verifier.seen();
        dst.read_exact_at(&mut buf[..n], at)
            .map_err(io_err(dst_path))?;
        verifier.update(&buf[..n])?;
        on_chunk(at, n as u64);
    }
}

/// One `copy_file_range` of up to `len` bytes between the files' offsets, advancing both.
#[cfg(target_os = "linux")]
fn copy_chunk(src: &File, dst: &File, len: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: two valid open descriptors; null offsets make the kernel use and advance the
    // files' own offsets.
    let n = unsafe {
        libc::copy_file_range(
            src.as_raw_fd(),
            std::ptr::null_mut(),
            dst.as_raw_fd(),
            std::ptr::null_mut(),
            len,
            0,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

#[cfg(not(target_os = "linux"))]
fn copy_chunk(_src: &File, _dst: &File, _len: usize) -> io::Result<usize> {
    Err(io::ErrorKind::Unsupported.into())
}

/// The answers that mean "not between these files", not "something went wrong".
fn cannot_copy_in_kernel(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Unsupported
        || matches!(
            e.raw_os_error(),
            Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::EBADF)
        )
}

/// Starts writing a range of a file back to disk without waiting for it (Linux); elsewhere the
/// final fsync does all the work.
#[cfg(target_os = "linux")]
fn start_writeback(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid open descriptor and a plain range; the call only schedules I/O.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as libc::off64_t,
            len as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _offset: u64, _len: u64) {}

/// Makes a rename durable. Best effort: some filesystems refuse to fsync a directory.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// How a snapshot file ended up on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    Symlink,
    Hardlink,
    Copy,
}

/// Points `snapshots/<commit>/<path>` at `blobs/<etag>` with a relative symlink, falling back to
/// a hardlink and then a copy where symlinks are unavailable.
pub fn link_snapshot_file(
    repo_dir: &Path,
    commit: &str,
    path: &str,
    etag: &str,
) -> Result<LinkKind, WriteError> {
    let link = snapshot_path(repo_dir, commit).join(path);
    let parent = link.parent().expect("snapshot file has a parent");
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let target = snapshot_link_target(path, etag);
    // Already right: leave it (and its atime) alone.
    if fs::read_link(&link).ok().as_deref() == Some(target.as_path()) {
        return Ok(LinkKind::Symlink);
    }
    if fs::symlink_metadata(&link).is_ok_and(|m| m.is_dir()) {
        return Err(WriteError::Io {
            path: link.clone(),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "a folder is in the way"),
        });
    }
    // Made under a temporary name, then renamed over whatever is there: another process linking
    // the same file at the same moment (a second pull) can neither make this fail nor, through a
    // link it just made, get a copy written into the blob itself.
    let blob = blob_path(repo_dir, etag);
    let made = |make: &dyn Fn(&Path) -> io::Result<()>| {
        tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .make_in(parent, |tmp| make(tmp))
    };
    let (tmp, kind) = if let Ok(t) = made(&|tmp| make_symlink(&target, tmp)) {
        (t, LinkKind::Symlink)
    } else if let Ok(t) = made(&|tmp| fs::hard_link(&blob, tmp)) {
        (t, LinkKind::Hardlink)
    } else {
        let t = made(&|tmp| fs::copy(&blob, tmp).map(drop)).map_err(io_err(&link))?;
        (t, LinkKind::Copy)
    };
    tmp.persist(&link).map_err(|e| WriteError::Io {
        path: link.clone(),
        source: e.error,
    })?;
    Ok(kind)
}

/// Writes `snapshots/<commit>/<path>` as a plain file holding blob `etag`, as huggingface_hub
/// does with symlinks off: with `take` the blob itself is renamed there and leaves `blobs/`;
/// otherwise a copy is made under a temporary name and renamed into place, and the blob stays.
pub fn copy_snapshot_file(
    repo_dir: &Path,
    commit: &str,
    path: &str,
    etag: &str,
    take: bool,
) -> Result<(), WriteError> {
    let file = snapshot_path(repo_dir, commit).join(path);
    let parent = file.parent().expect("snapshot file has a parent");
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    if fs::symlink_metadata(&file).is_ok_and(|m| m.is_dir()) {
        return Err(WriteError::Io {
            path: file.clone(),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "a folder is in the way"),
        });
    }
    let blob = blob_path(repo_dir, etag);
    if take {
        return fs::rename(&blob, &file).map_err(io_err(&file));
    }
    let tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .make_in(parent, |tmp| fs::copy(&blob, tmp).map(drop))
        .map_err(io_err(&file))?;
    tmp.persist(&file).map_err(|e| WriteError::Io {
        path: file.clone(),
        source: e.error,
    })?;
    Ok(())
}

#[cfg(unix)]
pub fn make_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
pub fn make_symlink(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

/// Writes `refs/<name>` atomically, with no trailing newline (huggingface_hub reads it raw).
///
/// The temporary file lives in `blobs/`, not `refs/`: huggingface_hub reads every file under
/// `refs/` as a ref, so a run killed before the rename must not leave one there. In `blobs/` it
/// is a name no scanner takes for a blob, and the stale-partial cleanup removes it.
///
/// A ref that already names `commit` is left as it is: a pull of what the cache holds changes
/// nothing on disk.
pub fn write_ref(repo_dir: &Path, name: &str, commit: &str) -> Result<(), WriteError> {
    let path = ref_path(repo_dir, name);
    if fs::read(&path).is_ok_and(|body| body == commit.as_bytes()) {
        return Ok(());
    }
    write_atomic_via(
        &path,
        &repo_dir.join("blobs"),
        commit.as_bytes(),
        Sharing::Shared,
    )
}

/// Writes a small file via a temporary sibling and a rename, with the mode any new file gets
/// there (a directory remote's manifests and refs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic_via(path, parent_of(path), bytes, Sharing::Shared)
}

/// [`write_atomic`] for a file only its owner may read: a commit's tree listing, which
/// huggingface_hub writes 0600.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    write_atomic_via(path, parent_of(path), bytes, Sharing::Private)
}

fn parent_of(path: &Path) -> &Path {
    path.parent().expect("path has a parent")
}

/// Writes a small file of the user's own (a lock file, a local dir's bookkeeping) through a
/// temporary file beside it, made with the mode any new file gets, and a rename: a reader never
/// sees half of it.
pub fn write_user_file(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let parent = parent_of(path);
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    let mut tmp = temp::create_in(parent, TEMP_PREFIX).map_err(io_err(parent))?;
    tmp.as_file_mut().write_all(bytes).map_err(io_err(path))?;
    tmp.persist(path).map_err(io_err(path))
}

/// Writes a small file via a temporary file in `tmp_dir` (same filesystem) and a rename.
fn write_atomic_via(
    path: &Path,
    tmp_dir: &Path,
    bytes: &[u8],
    sharing: Sharing,
) -> Result<(), WriteError> {
    let dir = parent_of(path);
    fs::create_dir_all(dir).map_err(io_err(dir))?;
    fs::create_dir_all(tmp_dir).map_err(io_err(tmp_dir))?;
    let mut tmp = temp::create_with(tmp_dir, TEMP_PREFIX, sharing).map_err(io_err(tmp_dir))?;
    tmp.as_file_mut().write_all(bytes).map_err(io_err(path))?;
    tmp.as_file().sync_all().map_err(io_err(path))?;
    tmp.persist(path).map_err(io_err(path))
}

#[cfg(test)]
mod tests;
