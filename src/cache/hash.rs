//! Content hashes that name blobs: sha256 for LFS files, git blob SHA-1 for the rest.
//!
//! A [`BlobHasher`] is fed the bytes as they move, so verification costs no extra pass.

use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

/// Hashes content the way its blob name says it was hashed.
#[derive(Clone)]
pub enum BlobHasher {
    Sha256(Sha256),
    /// git's object id: sha1 over `blob <len>\0` then the content, so the length comes first.
    GitSha1(Sha1),
}

impl BlobHasher {
    /// `size` is the content length; git blob ids need it up front. `None` for a name that is
    /// neither 40 nor 64 characters.
    pub fn for_name(etag: &str, size: u64) -> Option<BlobHasher> {
        match etag.len() {
            64 => Some(BlobHasher::Sha256(Sha256::new())),
            40 => {
                let mut h = Sha1::new();
                h.update(format!("blob {size}\0").as_bytes());
                Some(BlobHasher::GitSha1(h))
            }
            _ => None,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        match self {
            BlobHasher::Sha256(h) => h.update(bytes),
            BlobHasher::GitSha1(h) => h.update(bytes),
        }
    }

    pub fn finish(self) -> String {
        match self {
            BlobHasher::Sha256(h) => format!("{:x}", h.finalize()),
            BlobHasher::GitSha1(h) => format!("{:x}", h.finalize()),
        }
    }
}

/// Lowercase hex sha256 of a byte slice.
#[cfg(test)]
pub fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

pub const READ_CHUNK: usize = 1024 * 1024;

/// Hashes a whole file with `hasher`; returns the digest and the bytes read.
pub fn hash_file(path: &Path, hasher: BlobHasher) -> std::io::Result<(String, u64)> {
    hash_file_with(path, hasher, |_| {})
}

/// [`hash_file`], calling `on_read` with the length of each chunk as it is hashed, so a long
/// read can show progress.
pub fn hash_file_with(
    path: &Path,
    mut hasher: BlobHasher,
    mut on_read: impl FnMut(u64),
) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
        on_read(n as u64);
    }
    Ok((hasher.finish(), total))
}

/// sha256 of a file's content, used to name files of the no-symlink layout.
pub fn sha256_file(path: &Path) -> std::io::Result<(String, u64)> {
    hash_file(path, BlobHasher::Sha256(Sha256::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash_of(etag_len: usize, content: &[u8]) -> String {
        let name = "0".repeat(etag_len);
        let mut h = BlobHasher::for_name(&name, content.len() as u64).unwrap();
        h.update(content);
        h.finish()
    }

    #[test]
    fn git_blob_sha1_matches_git() {
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            hash_of(40, b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        // The empty blob every git user has seen.
        assert_eq!(hash_of(40, b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            hash_of(64, b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(sha256_hex(b"abc"), hash_of(64, b"abc"));
    }

    #[test]
    fn other_lengths_have_no_hasher() {
        assert!(BlobHasher::for_name("abc", 0).is_none());
    }

    #[test]
    fn hash_file_reads_everything() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(sha256_file(&p).unwrap(), (sha256_hex(b"abc"), 3));
    }
}
