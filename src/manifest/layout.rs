//! The remote's keys, as hf-cache-sync 0.1 lays them out under an optional team prefix:
//! `blobs/<etag>`, `manifests/<org__name>@<commit>.json`, `refs/<org__name>/<ref>`; and two
//! families 0.1 ignores: `trees/` (a commit's file listing) and `locks/` (runs that must not overlap).

use crate::cache::{is_blob_name, is_safe_ref_name};

const BLOBS: &str = "blobs/";
const MANIFESTS: &str = "manifests/";
const REFS: &str = "refs/";
const TREES: &str = "trees/";
const MANIFEST_SUFFIX: &str = ".json";
const LOCKS: &str = "locks/";
const LOCK_SUFFIX: &str = ".json";
/// Where `doctor` writes its probe object: outside `blobs/`, which push trusts as an index.
const DOCTOR_PROBES: &str = "_hf_cache_sync_doctor/";

/// `org/name` → `org__name`, as 0.1 encodes repo ids in keys.
pub fn safe_repo_key(repo_id: &str) -> String {
    repo_id.replace('/', "__")
}

/// Builds and parses object keys under an optional team prefix.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Empty, or the prefix followed by `/`.
    prefix: String,
}

impl Layout {
    pub fn new(prefix: &str) -> Layout {
        let p = prefix.trim_matches('/');
        Layout {
            prefix: if p.is_empty() {
                String::new()
            } else {
                format!("{p}/")
            },
        }
    }

    pub fn blobs_prefix(&self) -> String {
        format!("{}{BLOBS}", self.prefix)
    }
    pub fn manifests_prefix(&self) -> String {
        format!("{}{MANIFESTS}", self.prefix)
    }
    pub fn refs_prefix(&self) -> String {
        format!("{}{REFS}", self.prefix)
    }
    pub fn trees_prefix(&self) -> String {
        format!("{}{TREES}", self.prefix)
    }

    pub fn blob_key(&self, etag: &str) -> String {
        format!("{}{BLOBS}{etag}", self.prefix)
    }

    pub fn manifest_key(&self, repo_id: &str, revision: &str) -> String {
        format!(
            "{}{MANIFESTS}{}@{revision}{MANIFEST_SUFFIX}",
            self.prefix,
            safe_repo_key(repo_id)
        )
    }

    /// The start of the manifest keys of `repo_id`'s commits that begin with `commit_prefix`:
    /// listing it finds the commits a short hash may mean.
    pub fn manifest_commit_prefix(&self, repo_id: &str, commit_prefix: &str) -> String {
        format!(
            "{}{MANIFESTS}{}@{commit_prefix}",
            self.prefix,
            safe_repo_key(repo_id)
        )
    }

    /// The tree listing of a revision, beside its manifest.
    pub fn tree_key(&self, repo_id: &str, revision: &str) -> String {
        format!(
            "{}{TREES}{}@{revision}{MANIFEST_SUFFIX}",
            self.prefix,
            safe_repo_key(repo_id)
        )
    }

    pub fn ref_key(&self, repo_id: &str, ref_name: &str) -> String {
        format!("{}{REFS}{}/{ref_name}", self.prefix, safe_repo_key(repo_id))
    }

    /// `doctor`'s write probe, `[prefix/]_hf_cache_sync_doctor/probe-<token>`, as 0.1 names it.
    pub fn doctor_probe_key(&self, token: &str) -> String {
        format!("{}{DOCTOR_PROBES}probe-{token}", self.prefix)
    }

    /// Where bucket locks live (see [`crate::remote::bucket_lock`]).
    pub fn locks_prefix(&self) -> String {
        format!("{}{LOCKS}", self.prefix)
    }

    /// A bucket lock, `[prefix/]locks/<kind>-<id>.json`; `kind` holds no `-`.
    pub fn lock_key(&self, kind: &str, id: &str) -> String {
        format!("{}{LOCKS}{kind}-{id}{LOCK_SUFFIX}", self.prefix)
    }

    /// The lease on fetching one revision from the Hub for every node,
    /// `[prefix/]leases/<repo folder>@<commit>.json` (`models--org--name@<commit>.json`).
    pub fn lease_key(&self, folder: &str, commit: &str) -> String {
        format!("{}leases/{folder}@{commit}{LOCK_SUFFIX}", self.prefix)
    }

    /// (kind, id) of a `locks/<kind>-<id>.json` key, if it is one.
    pub fn parse_lock_key<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        let body = key
            .strip_prefix(&self.prefix)?
            .strip_prefix(LOCKS)?
            .strip_suffix(LOCK_SUFFIX)?;
        let (kind, id) = body.split_once('-')?;
        (!kind.is_empty() && !id.is_empty() && !body.contains('/')).then_some((kind, id))
    }

    /// The etag of a `blobs/<etag>` key, if it is one.
    pub fn parse_blob_key<'a>(&self, key: &'a str) -> Option<&'a str> {
        let etag = key.strip_prefix(&self.prefix)?.strip_prefix(BLOBS)?;
        is_blob_name(etag).then_some(etag)
    }

    /// (`org__name`, commit) of a `manifests/<org__name>@<commit>.json` key, if it is one.
    pub fn parse_manifest_key<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        self.parse_revision_key(key, MANIFESTS)
    }

    /// (`org__name`, commit) of a `trees/<org__name>@<commit>.json` key, if it is one.
    #[cfg(test)]
    pub fn parse_tree_key<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        self.parse_revision_key(key, TREES)
    }

    /// (`org__name`, commit) of a `<dir><org__name>@<commit>.json` key.
    fn parse_revision_key<'a>(&self, key: &'a str, dir: &str) -> Option<(&'a str, &'a str)> {
        let body = key
            .strip_prefix(&self.prefix)?
            .strip_prefix(dir)?
            .strip_suffix(MANIFEST_SUFFIX)?;
        // Repo ids cannot hold `@`; the last one separates the commit.
        let (safe, commit) = body.rsplit_once('@')?;
        (!safe.is_empty()
            && !safe.contains('/')
            && is_safe_ref_name(commit)
            && !commit.contains('/'))
        .then_some((safe, commit))
    }

    /// (`org__name`, ref name) of a ref key; ref names may be nested (`pr/1`).
    pub fn parse_ref_key<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        let body = key.strip_prefix(&self.prefix)?.strip_prefix(REFS)?;
        let (safe, name) = body.split_once('/')?;
        (!safe.is_empty() && is_safe_ref_name(name)).then_some((safe, name))
    }
}
