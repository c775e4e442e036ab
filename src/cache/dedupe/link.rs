//! Replacing one copy of a blob by another, in one rename: a reflink (the file system shares the
//! extents, the two names stay separate files) where the file system can, a hard link otherwise.

use std::fs::{self, File};
use std::io;
use std::path::Path;

use crate::cache::reflink::clone_file;
use crate::cache::{temp, TEMP_PREFIX};

/// How a copy was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Reflink,
    Hardlink,
}

/// Replaces `target` by a reflink of `keeper` when `try_reflink`, else (or when the file system
/// cannot) by a hard link to it. Both are in the same folder's file system; the new name is made
/// beside `target` and renamed over it, so `target` is never missing or partial.
pub fn replace(keeper: &Path, target: &Path, etag: &str, try_reflink: bool) -> io::Result<Method> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let prefix = format!("{TEMP_PREFIX}{etag}-");
    if try_reflink {
        if let Some(()) = reflink_over(keeper, target, dir, &prefix)? {
            return Ok(Method::Reflink);
        }
    }
    temp::link_in(dir, &prefix, keeper)?.persist(target)?;
    Ok(Method::Hardlink)
}

/// `Ok(None)` when the file system does not share extents between files.
fn reflink_over(keeper: &Path, target: &Path, dir: &Path, prefix: &str) -> io::Result<Option<()>> {
    let meta = fs::metadata(target)?;
    let source = File::open(keeper)?;
    let tmp = temp::create_in(dir, prefix)?;
    if !clone_file(&source, tmp.as_file())? {
        return Ok(None);
    }
    // The copy keeps what the replaced file had: its mode and times (prune reads the times).
    fs::set_permissions(tmp.path(), meta.permissions())?;
    let mut times = fs::FileTimes::new();
    if let Ok(t) = meta.accessed() {
        times = times.set_accessed(t);
    }
    if let Ok(t) = meta.modified() {
        times = times.set_modified(t);
    }
    tmp.as_file().set_times(times)?;
    tmp.persist(target)?;
    Ok(Some(()))
}

/// Does every extent of `path` already share its storage with another file (a reflink made by
/// an earlier run)? Then replacing it saves nothing. False when unknown.
#[cfg(target_os = "linux")]
pub fn extents_shared(path: &Path) -> bool {
    use std::os::fd::AsRawFd;
    const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
    const EXTENT_LAST: u32 = 0x1;
    const EXTENT_SHARED: u32 = 0x2000;
    const BATCH: usize = 32;
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Extent {
        logical: u64,
        physical: u64,
        length: u64,
        reserved64: [u64; 2],
        flags: u32,
        reserved: [u32; 3],
    }
    #[repr(C)]
    struct Fiemap {
        start: u64,
        length: u64,
        flags: u32,
        mapped: u32,
        count: u32,
        reserved: u32,
        extents: [Extent; BATCH],
    }
    let Ok(file) = File::open(path) else {
        return false;
    };
    let mut start = 0u64;
    let mut any = false;
    loop {
        let mut map = Fiemap {
            start,
            length: u64::MAX - start,
            flags: 0,
            mapped: 0,
            count: BATCH as u32,
            reserved: 0,
            extents: [Extent::default(); BATCH],
        };
        // SAFETY: `map` is a fiemap header followed by room for `count` extents, as the ioctl
        // expects; it lives across the call.
        let r = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP as _, &mut map) };
        if r != 0 || map.mapped == 0 {
            return any && r == 0;
        }
        for e in &map.extents[..map.mapped as usize] {
            if e.flags & EXTENT_SHARED == 0 {
                return false;
            }
            any = true;
            if e.flags & EXTENT_LAST != 0 {
                return true;
            }
            start = e.logical + e.length;
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn extents_shared(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_copy_is_replaced_by_a_link_in_one_step() {
        let dir = tempfile::tempdir().unwrap();
        let keeper = dir.path().join("a");
        let target = dir.path().join("b");
        fs::write(&keeper, b"bytes").unwrap();
        fs::write(&target, b"bytes").unwrap();
        let method = replace(&keeper, &target, "e", true).unwrap();
        let (k, t) = (
            fs::metadata(&keeper).unwrap(),
            fs::metadata(&target).unwrap(),
        );
        match method {
            Method::Hardlink => assert_eq!(k.ino(), t.ino()),
            Method::Reflink => assert_ne!(k.ino(), t.ino()),
        }
        assert_eq!(fs::read(&target).unwrap(), b"bytes");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "no temporary name is left");
        // A file written once shares nothing.
        let lone = dir.path().join("c");
        fs::write(&lone, b"other").unwrap();
        assert!(!extents_shared(&lone));
    }
}
