//! A blob on its way into this cache, read as it lands: the bytes a download has written of it
//! so far (its partial download, which is always a prefix), then more as they arrive, up to its
//! size. Once renamed into place the same file is the blob, so the reader follows it there.
//!
//! Nothing here is trusted: what is read goes through a verifier like any source's bytes, and a
//! download that is given up (its file removed before it was whole) ends the read.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::blob_path;
use super::partial::leftovers_by_blob;

/// A blob being written into the cache (or already there), read from its start as it grows.
pub struct Landing {
    file: File,
    size: u64,
    pos: u64,
}

/// What one read of a [`Landing`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// This many bytes were read.
    Read(usize),
    /// Nothing new yet: the download has not written more.
    Waiting,
    /// All `size` bytes were read.
    Whole,
    /// The download was given up: its file was removed before it was whole.
    Gone,
}

impl Landing {
    /// The blob `etag` (of `size` bytes) of the repo in `repo_dir`: the blob when it is in
    /// place, else the longest partial download of it; `None` when there is neither.
    pub fn find(repo_dir: &Path, etag: &str, size: u64) -> Option<Landing> {
        let open = |path: &Path| File::open(path).ok();
        let file = open(&blob_path(repo_dir, etag)).or_else(|| {
            let mut partials = leftovers_by_blob(repo_dir).remove(etag)?.partials;
            partials.sort_by_key(|p| std::cmp::Reverse(p.metadata().map_or(0, |m| m.len())));
            partials.iter().find_map(|p| open(p))
        })?;
        Some(Landing { file, size, pos: 0 })
    }

    /// Reads what the download has written past what was read, into `buf`.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<Step> {
        let left = self.size - self.pos;
        if left == 0 {
            return Ok(Step::Whole);
        }
        let want = (left as usize).min(buf.len());
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n > 0 {
            self.pos += n as u64;
            return Ok(Step::Read(n));
        }
        // Read again after the check: bytes written just before the file went are still bytes.
        let gone = self.file.metadata()?.nlink() == 0;
        match self.file.read_at(&mut buf[..want], self.pos)? {
            0 if gone => Ok(Step::Gone),
            0 => Ok(Step::Waiting),
            n => {
                self.pos += n as u64;
                Ok(Step::Read(n))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const ETAG: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn read_all(l: &mut Landing) -> (Vec<u8>, Step) {
        let mut got = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            match l.read(&mut buf).unwrap() {
                Step::Read(n) => got.extend_from_slice(&buf[..n]),
                other => return (got, other),
            }
        }
    }

    #[test]
    fn a_partial_is_followed_as_it_grows_and_into_place() {
        let repo = tempfile::tempdir().unwrap();
        let blobs = repo.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        assert!(Landing::find(repo.path(), ETAG, 10).is_none());
        let partial = blobs.join(format!("{ETAG}.0a0b0c0d.incomplete"));
        let mut w = File::create(&partial).unwrap();
        w.write_all(b"hello").unwrap();
        let mut l = Landing::find(repo.path(), ETAG, 11).unwrap();
        assert_eq!(read_all(&mut l), (b"hello".to_vec(), Step::Waiting));
        w.write_all(b" wor").unwrap();
        std::fs::rename(&partial, blobs.join(ETAG)).unwrap();
        w.write_all(b"ld").unwrap();
        assert_eq!(read_all(&mut l), (b" world".to_vec(), Step::Whole));
    }

    #[test]
    fn a_download_given_up_ends_the_read() {
        let repo = tempfile::tempdir().unwrap();
        let blobs = repo.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        let short = blobs.join(format!("{ETAG}.0a0b0c0d.incomplete"));
        let long = blobs.join(format!("{ETAG}.incomplete"));
        std::fs::write(&short, b"ab").unwrap();
        std::fs::write(&long, b"abcd").unwrap();
        let mut l = Landing::find(repo.path(), ETAG, 10).unwrap();
        assert_eq!(read_all(&mut l), (b"abcd".to_vec(), Step::Waiting));
        std::fs::remove_file(&long).unwrap();
        assert_eq!(read_all(&mut l), (Vec::new(), Step::Gone));
    }
}
