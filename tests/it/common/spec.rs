//! Repos described file by file ([`RepoSpec`]), for tests that need their own shapes: written into
//! a cache, then checked wherever the binary put them.

use std::collections::BTreeSet;
use std::path::Path;

use super::cache::{git_sha1_hex, sha256_hex, CacheBuilder, CacheView};
use super::python::Download;

/// One file of a revision.
pub struct FileSpec {
    pub path: String,
    pub bytes: Vec<u8>,
    /// An LFS file (named by sha256) rather than a git file (named by git blob SHA-1).
    pub lfs: bool,
}

impl FileSpec {
    pub fn etag(&self) -> String {
        if self.lfs {
            sha256_hex(&self.bytes)
        } else {
            git_sha1_hex(&self.bytes)
        }
    }
}

pub struct RevSpec {
    pub commit: String,
    pub refs: Vec<String>,
    pub files: Vec<FileSpec>,
}

/// A model repo: `.rev()` starts a revision, `.file()` / `.lfs()` add files to it.
pub struct RepoSpec {
    pub repo_id: String,
    pub revisions: Vec<RevSpec>,
}

impl RepoSpec {
    pub fn new(repo_id: &str) -> RepoSpec {
        RepoSpec {
            repo_id: repo_id.to_string(),
            revisions: Vec::new(),
        }
    }

    /// A new revision with these refs pointing at it.
    pub fn rev(mut self, commit: &str, refs: &[&str]) -> Self {
        self.revisions.push(RevSpec {
            commit: commit.to_string(),
            refs: refs.iter().map(|r| r.to_string()).collect(),
            files: Vec::new(),
        });
        self
    }

    pub fn file(self, path: &str, bytes: &[u8]) -> Self {
        self.add(path, bytes, false)
    }

    pub fn lfs(self, path: &str, bytes: &[u8]) -> Self {
        self.add(path, bytes, true)
    }

    fn add(mut self, path: &str, bytes: &[u8], lfs: bool) -> Self {
        self.revisions
            .last_mut()
            .expect("call .rev() first")
            .files
            .push(FileSpec {
                path: path.to_string(),
                bytes: bytes.to_vec(),
                lfs,
            });
        self
    }

    /// Writes every revision into `cache`, as huggingface_hub lays it out.
    pub fn write(&self, cache: &Path) {
        let mut b = CacheBuilder::new(cache).repo(&self.repo_id);
        for rev in &self.revisions {
            b = b.rev(&rev.commit);
            for f in &rev.files {
                b = if f.lfs {
                    b.lfs_file(&f.path, &f.bytes)
                } else {
                    b.file(&f.path, &f.bytes)
                };
            }
            for r in &rev.refs {
                b = b.ref_(r, &rev.commit);
            }
        }
    }

    #[track_caller]
    pub fn revision(&self, commit: &str) -> &RevSpec {
        self.revisions
            .iter()
            .find(|r| r.commit == commit)
            .unwrap_or_else(|| panic!("{} has no revision {commit}", self.repo_id))
    }

    /// The distinct blob names of `commits` (every revision when empty).
    pub fn etags(&self, commits: &[&str]) -> BTreeSet<String> {
        self.revisions
            .iter()
            .filter(|r| commits.is_empty() || commits.contains(&r.commit.as_str()))
            .flat_map(|r| r.files.iter().map(FileSpec::etag))
            .collect()
    }

    /// `cache` holds revision `commit` with huggingface_hub's links, each reading the right
    /// bytes, and every blob of the repo there is verified against its name.
    #[track_caller]
    pub fn assert_pulled(&self, cache: &Path, commit: &str) {
        let view = CacheView::model(cache, &self.repo_id);
        for f in &self.revision(commit).files {
            view.assert_linked_file(commit, &f.path, &f.etag(), &f.bytes);
        }
        view.assert_blobs_clean();
    }

    /// Each file of `commit`, loaded through `revision` (a ref name or the commit itself).
    pub fn downloads<'a>(&'a self, revision: &'a str, commit: &str) -> Vec<Download<'a>> {
        self.revision(commit)
            .files
            .iter()
            .map(|f| Download::model(&self.repo_id, revision, &f.path, &f.bytes))
            .collect()
    }
}
