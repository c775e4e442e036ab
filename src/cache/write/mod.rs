//! Writes into the hub cache that can never leave a wrong blob under a blob name: bytes go to a
//! temporary file beside the blobs, are verified and fsynced, then renamed into place, all
//! under the same lock file huggingface_hub takes for that blob.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::hash::BlobHasher;
use super::lock::LockError;
use super::modes::Sharing;
use super::temp;

mod blob;
mod readback;

use super::{blob_path, ref_path, snapshot_link_target, snapshot_path};
pub use blob::{remove_stale_temps, BlobWriter};

mod sink;

pub use super::{TEMP_PREFIX, TEMP_SUFFIX};
pub use sink::{fill_from_file, BlobSink};

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
    /// A resumed partial download could not be read back to be hashed: it is not trusted.
    #[error("cannot read back partial download {}: {source}", path.display())]
    Unreadable { path: PathBuf, source: io::Error },
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
