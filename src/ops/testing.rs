//! A small cache builder for the operations' unit tests: repos of linked snapshot files, refs,
//! and the scan of it all, as huggingface_hub lays them out.

use std::fs;
use std::path::{Path, PathBuf};

use crate::cache::hash::sha256_hex;
use crate::cache::scan::{self, CacheScan};

/// A throwaway hub cache.
pub struct Cache {
    dir: tempfile::TempDir,
}

impl Cache {
    pub fn new() -> Cache {
        Cache {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The folder of model `org/name`.
    pub fn repo_dir(&self, repo_id: &str) -> PathBuf {
        self.root()
            .join(format!("models--{}", repo_id.replace('/', "--")))
    }

    /// Writes `content` as file `path` of model `repo_id` at `commit`: the blob named by its
    /// sha256, the snapshot link to it. Returns the blob's name.
    pub fn file(&self, repo_id: &str, commit: &str, path: &str, content: &[u8]) -> String {
        let repo = self.repo_dir(repo_id);
        let etag = sha256_hex(content);
        fs::create_dir_all(repo.join("blobs")).unwrap();
        fs::write(repo.join("blobs").join(&etag), content).unwrap();
        let link = repo.join("snapshots").join(commit).join(path);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        let depth = path.matches('/').count();
        let target = format!("{}../../blobs/{etag}", "../".repeat(depth));
        std::os::unix::fs::symlink(target, link).unwrap();
        etag
    }

    /// Points ref `name` of model `repo_id` at `commit`.
    pub fn reference(&self, repo_id: &str, name: &str, commit: &str) {
        let refs = self.repo_dir(repo_id).join("refs");
        fs::create_dir_all(&refs).unwrap();
        fs::write(refs.join(name), commit).unwrap();
    }

    pub fn scan(&self) -> CacheScan {
        scan::scan(self.root())
    }
}

/// A 40-hex commit made of one repeated digit.
pub fn commit(digit: char) -> String {
    std::iter::repeat_n(digit, 40).collect()
}
