//! The one way tests describe a repo: [`RepoSpec`], its type, revisions, refs and files (git or
//! LFS), written into a cache with [`CacheBuilder`] and checked wherever the binary put it.
//! Ready-made repos are built on it (`RepoSpec::two_revisions`, `resilience::sharded`,
//! `mixed::write`); several repos are a slice of specs, for which the free functions at the end
//! answer what concerns them all (every blob, every remote key, every pull).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::cache::{git_sha1_hex, repo_folder, sha256_hex, CacheBuilder, CacheView};
use super::python::{check_cache, Download};
use super::s3::{blob_key, manifest_key, ref_key};

/// One file of a revision.
pub struct FileSpec {
    pub path: String,
    pub bytes: Vec<u8>,
    /// An LFS file (named by sha256) rather than a git file (named by git blob SHA-1).
    pub lfs: bool,
    /// Its content lives in the cache-wide shared store, linked from the repo's `blobs/`.
    pub shared: bool,
    /// Hashed once: fixtures hold blobs of tens of MiB and tests ask for their names often.
    etag: String,
}

impl FileSpec {
    fn new(path: &str, bytes: &[u8], lfs: bool) -> FileSpec {
        let etag = if lfs {
            sha256_hex(bytes)
        } else {
            git_sha1_hex(bytes)
        };
        FileSpec {
            path: path.to_string(),
            bytes: bytes.to_vec(),
            lfs,
            shared: false,
            etag,
        }
    }

    /// The blob name huggingface_hub gives the file.
    pub fn etag(&self) -> &str {
        &self.etag
    }
}

/// One revision: its commit, the refs naming it and its files.
pub struct RevSpec {
    pub commit: String,
    pub refs: Vec<String>,
    pub files: Vec<FileSpec>,
    /// The snapshot holds copies instead of links and `blobs/` none of its files, as
    /// huggingface_hub writes a revision where symlinks are unavailable.
    pub copies: bool,
}

impl RevSpec {
    /// The file at `path`.
    #[track_caller]
    pub fn file(&self, path: &str) -> &FileSpec {
        self.files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("revision {} has no file {path}", self.commit))
    }
}

/// A repo: `.rev()` starts a revision, `.file()` / `.lfs()` add files to it.
pub struct RepoSpec {
    /// `model`, `dataset` or `space`.
    pub repo_type: &'static str,
    pub repo_id: String,
    pub revisions: Vec<RevSpec>,
}

impl RepoSpec {
    /// A model repo.
    pub fn new(repo_id: &str) -> RepoSpec {
        RepoSpec::of_type("model", repo_id)
    }

    pub fn dataset(repo_id: &str) -> RepoSpec {
        RepoSpec::of_type("dataset", repo_id)
    }

    pub fn of_type(repo_type: &'static str, repo_id: &str) -> RepoSpec {
        RepoSpec {
            repo_type,
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
            copies: false,
        });
        self
    }

    /// A regular (git) file of the current revision.
    pub fn file(mut self, path: &str, bytes: &[u8]) -> Self {
        self.current().files.push(FileSpec::new(path, bytes, false));
        self
    }

    /// An LFS file of the current revision.
    pub fn lfs(mut self, path: &str, bytes: &[u8]) -> Self {
        self.current().files.push(FileSpec::new(path, bytes, true));
        self
    }

    /// The last file added goes to the cache-wide shared store, as huggingface_hub ≥ 1.x keeps
    /// Xet files.
    pub fn shared_store(mut self) -> Self {
        let file = self.current().files.last_mut();
        file.expect("shared_store() needs a file first").shared = true;
        self
    }

    /// The current revision is a snapshot of copies (see [`RevSpec::copies`]).
    pub fn copies(mut self) -> Self {
        self.current().copies = true;
        self
    }

    fn current(&mut self) -> &mut RevSpec {
        self.revisions.last_mut().expect("call .rev() first")
    }

    /// Writes every revision into `cache`, as huggingface_hub lays it out.
    pub fn write(&self, cache: &Path) {
        let mut b = CacheBuilder::new(cache).repo_of_type(self.repo_type, &self.repo_id);
        for rev in &self.revisions {
            b = b.rev(&rev.commit);
            if rev.copies {
                b = b.no_symlinks();
            }
            for f in &rev.files {
                b = if f.lfs {
                    b.lfs_file(&f.path, &f.bytes)
                } else {
                    b.file(&f.path, &f.bytes)
                };
                if f.shared {
                    b = b.shared_store();
                }
            }
            for r in &rev.refs {
                b = b.ref_(r, &rev.commit);
            }
        }
        // Without symlinks huggingface_hub writes the files straight into the snapshot.
        let linked: BTreeSet<&str> = self
            .revisions
            .iter()
            .filter(|r| !r.copies)
            .flat_map(|r| r.files.iter().map(FileSpec::etag))
            .collect();
        let view = self.view(cache);
        for f in self
            .revisions
            .iter()
            .filter(|r| r.copies)
            .flat_map(|r| &r.files)
        {
            if !linked.contains(f.etag()) && view.has_blob(f.etag()) {
                std::fs::remove_file(view.blob(f.etag())).expect("remove blob of a copy");
            }
        }
    }

    /// The repo's folder in `cache`.
    pub fn dir(&self, cache: &Path) -> PathBuf {
        cache.join(repo_folder(self.repo_type, &self.repo_id))
    }

    /// The repo as it is in `cache`.
    pub fn view(&self, cache: &Path) -> CacheView {
        CacheView::new(cache, self.repo_type, &self.repo_id)
    }

    /// The revision `revision` names: its commit, or one of its refs in this spec (whatever a
    /// cache's refs say).
    #[track_caller]
    pub fn revision(&self, revision: &str) -> &RevSpec {
        self.revisions
            .iter()
            .find(|r| r.commit == revision || r.refs.iter().any(|n| n == revision))
            .unwrap_or_else(|| panic!("{} has no revision {revision}", self.repo_id))
    }

    /// The commit `reference` (a ref of this spec, or the commit itself) names.
    #[track_caller]
    pub fn commit(&self, reference: &str) -> &str {
        &self.revision(reference).commit
    }

    /// The commit of the one revision no ref names.
    #[track_caller]
    pub fn detached(&self) -> &str {
        let detached: Vec<&RevSpec> = self
            .revisions
            .iter()
            .filter(|r| r.refs.is_empty())
            .collect();
        match detached[..] {
            [rev] => &rev.commit,
            _ => panic!("{} has {} detached revisions", self.repo_id, detached.len()),
        }
    }

    /// The distinct blob names of every revision, sorted.
    pub fn etags(&self) -> Vec<String> {
        self.etags_where(|_| true)
    }

    /// The distinct blob names of `revisions` (commits or refs), sorted.
    pub fn etags_of(&self, revisions: &[&str]) -> Vec<String> {
        let commits: Vec<&str> = revisions.iter().map(|r| self.commit(r)).collect();
        self.etags_where(|rev| commits.contains(&rev.commit.as_str()))
    }

    fn etags_where(&self, keep: impl Fn(&RevSpec) -> bool) -> Vec<String> {
        let etags: BTreeSet<&str> = self
            .revisions
            .iter()
            .filter(|r| keep(r))
            .flat_map(|r| r.files.iter().map(FileSpec::etag))
            .collect();
        etags.into_iter().map(String::from).collect()
    }

    /// Bytes of all distinct blobs.
    pub fn total_bytes(&self) -> u64 {
        total_bytes(std::slice::from_ref(self))
    }

    /// Every remote key a complete push of the repo writes, relative to the prefix.
    pub fn remote_keys(&self) -> BTreeSet<String> {
        let mut keys: BTreeSet<String> = self.etags().iter().map(|e| blob_key(e)).collect();
        for rev in &self.revisions {
            keys.insert(manifest_key(&self.repo_id, &rev.commit));
            for r in &rev.refs {
                keys.insert(ref_key(&self.repo_id, r));
            }
        }
        keys
    }

    /// The arguments of the pulls that bring every revision over, one command each, each
    /// revision named by its first ref (its commit when detached).
    pub fn pulls(&self) -> Vec<Vec<String>> {
        self.revisions
            .iter()
            .map(|rev| {
                let name = rev.refs.first().unwrap_or(&rev.commit);
                let mut args = vec!["pull".to_string(), self.repo_id.clone()];
                args.extend(["-r".to_string(), name.clone()]);
                if self.repo_type != "model" {
                    args.extend(["--repo-type".to_string(), self.repo_type.to_string()]);
                }
                args
            })
            .collect()
    }

    /// `cache` holds revision `revision` (a commit or a ref of this spec) with huggingface_hub's
    /// links (or copies, see [`RevSpec::copies`]), each reading the right bytes.
    #[track_caller]
    pub fn assert_linked(&self, cache: &Path, revision: &str) {
        let view = self.view(cache);
        let rev = self.revision(revision);
        for f in &rev.files {
            if rev.copies {
                view.assert_file(&rev.commit, &f.path, &f.bytes);
            } else {
                view.assert_linked_file(&rev.commit, &f.path, f.etag(), &f.bytes);
            }
        }
    }

    /// [`RepoSpec::assert_linked`], and every blob of the repo there is verified against its
    /// name.
    #[track_caller]
    pub fn assert_pulled(&self, cache: &Path, revision: &str) {
        self.assert_linked(cache, revision);
        self.view(cache).assert_blobs_clean();
    }

    /// Each file of the revision `revision` names, loaded through `revision` (a ref name or the
    /// commit itself).
    pub fn downloads<'a>(&'a self, revision: &'a str) -> Vec<Download<'a>> {
        self.revision(revision)
            .files
            .iter()
            .map(|f| self.download(revision, f))
            .collect()
    }

    fn download<'a>(&'a self, revision: &'a str, f: &'a FileSpec) -> Download<'a> {
        Download {
            repo_type: self.repo_type,
            repo_id: &self.repo_id,
            revision,
            filename: &f.path,
            bytes: &f.bytes,
        }
    }
}

// ---- several repos ----

/// Writes every repo into `cache`.
pub fn write_all(repos: &[RepoSpec], cache: &Path) {
    for repo in repos {
        repo.write(cache);
    }
}

/// Every distinct blob of `repos`: its name and bytes.
pub fn blobs(repos: &[RepoSpec]) -> BTreeMap<&str, &[u8]> {
    repos
        .iter()
        .flat_map(|repo| &repo.revisions)
        .flat_map(|rev| &rev.files)
        .map(|f| (f.etag(), f.bytes.as_slice()))
        .collect()
}

/// Every distinct blob name of `repos`.
pub fn etags(repos: &[RepoSpec]) -> BTreeSet<String> {
    blobs(repos).into_keys().map(String::from).collect()
}

/// Bytes of all distinct blobs of `repos`.
pub fn total_bytes(repos: &[RepoSpec]) -> u64 {
    blobs(repos).values().map(|b| b.len() as u64).sum()
}

/// Every remote key a complete push of `repos` writes, relative to the prefix.
pub fn remote_keys(repos: &[RepoSpec]) -> BTreeSet<String> {
    repos.iter().flat_map(RepoSpec::remote_keys).collect()
}

/// The pulls that bring every revision of `repos` over (see [`RepoSpec::pulls`]).
pub fn pulls(repos: &[RepoSpec]) -> Vec<Vec<String>> {
    repos.iter().flat_map(RepoSpec::pulls).collect()
}

/// Every file of every revision of `repos`, loaded through each ref of the revision (its commit
/// when detached).
pub fn downloads(repos: &[RepoSpec]) -> Vec<Download<'_>> {
    let mut out = Vec::new();
    for repo in repos {
        for rev in &repo.revisions {
            let names = if rev.refs.is_empty() {
                std::slice::from_ref(&rev.commit)
            } else {
                rev.refs.as_slice()
            };
            for name in names {
                out.extend(rev.files.iter().map(|f| repo.download(name, f)));
            }
        }
    }
    out
}

/// `cache` holds every revision of `repos`, linked as huggingface_hub links them, with its refs,
/// and huggingface_hub loads each file offline through each ref.
#[track_caller]
pub fn assert_all_pulled(repos: &[RepoSpec], cache: &Path) {
    for repo in repos {
        let view = repo.view(cache);
        for rev in &repo.revisions {
            repo.assert_linked(cache, &rev.commit);
            for r in &rev.refs {
                assert_eq!(
                    view.ref_(r).as_deref(),
                    Some(rev.commit.as_str()),
                    "refs/{r} of {}",
                    repo.repo_id
                );
            }
        }
    }
    check_cache(cache, &downloads(repos));
}
