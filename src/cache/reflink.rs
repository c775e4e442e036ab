//! Copies that share storage where the file system can: FICLONE makes a second file share the
//! first one's extents (btrfs, XFS, bcachefs, ...), so a copy of a 30 GB shard costs no space and
//! no time, and the two files stay separate (writing one never changes the other). Used by
//! `dedupe` and by pulls into a project folder.

use std::fs::File;
use std::io;

/// How a file's content was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Copied {
    /// The file system shares the extents.
    Reflink,
    /// The bytes were copied.
    Copy,
}

/// FICLONE: makes `dest` share `source`'s extents. False when the file system cannot.
#[cfg(target_os = "linux")]
pub fn clone_file(source: &File, dest: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: both descriptors are open for the duration of the call; FICLONE takes the source
    // descriptor as its argument and reads no memory of ours.
    let r = unsafe { libc::ioctl(dest.as_raw_fd(), libc::FICLONE, source.as_raw_fd()) };
    if r == 0 {
        return Ok(true);
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EOPNOTSUPP | libc::ENOTTY | libc::EINVAL | libc::EXDEV | libc::ENOSYS) => {
            Ok(false)
        }
        _ => Err(err),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn clone_file(_source: &File, _dest: &File) -> io::Result<bool> {
    Ok(false)
}

/// Fills the empty `dest` with `source`'s content: a reflink where the file system can, a copy
/// of the bytes otherwise. Never a hard link: `dest` is a file of its own.
pub fn clone_or_copy(source: &mut File, dest: &mut File) -> io::Result<Copied> {
    if clone_file(source, dest)? {
        return Ok(Copied::Reflink);
    }
    // std copies file to file in the kernel (copy_file_range) where it can.
    io::copy(source, dest)?;
    Ok(Copied::Copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};

    #[test]
    fn a_clone_or_copy_is_a_separate_file_with_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, b"the bytes").unwrap();
        let mut source = File::open(&a).unwrap();
        let mut dest = tempfile::tempfile_in(dir.path()).unwrap();
        clone_or_copy(&mut source, &mut dest).unwrap();
        // Writing the copy leaves the original alone, whichever way it was made.
        dest.seek(io::SeekFrom::Start(0)).unwrap();
        dest.write_all(b"THE").unwrap();
        dest.seek(io::SeekFrom::Start(0)).unwrap();
        let mut got = String::new();
        dest.read_to_string(&mut got).unwrap();
        assert_eq!(got, "THE bytes");
        assert_eq!(std::fs::read(&a).unwrap(), b"the bytes");
    }
}
