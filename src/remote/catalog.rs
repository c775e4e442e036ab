//! The one reader of the remote's catalog: which manifests and refs exist (one LIST per prefix,
//! `blobs/` too when asked), their bodies (concurrent, bounded GETs; manifests validated), and
//! whose each ref is. Keys are ambiguous (`a/b__c` and `a__b/c` share `a__b__c`; a model and a
//! dataset may share an id), so a ref belongs to the repo the manifest of the commit it names
//! says, decided here once for every command.
//!
//! A read that fails or is refused becomes a warning carried in the catalog ([`ReadMode::Warn`])
//! or stops the run ([`ReadMode::Strict`], for a failed GET); an error every other request would
//! hit too (rejected credentials, a missing bucket: [`RemoteError::is_fatal`]) always stops.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use futures::stream::{self, StreamExt};

use crate::cache::RepoType;
use crate::manifest::{
    parse_ref_body, safe_repo_key, Layout, Manifest, ManifestError, MAX_MANIFEST_BYTES,
    MAX_REF_BYTES,
};
use crate::remote::{ObjectInfo, Remote, RemoteError};
use crate::text::error_chain;

/// Concurrent GETs unless the caller sets its own number.
const DEFAULT_READS: usize = 8;

/// What a failed GET does to the run. Refused content (a manifest that fails validation, a ref
/// body that is not a commit) is a warning in both modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// The failure is kept with the object's entry and listed by [`Catalog::warnings`].
    Warn,
    /// The first failed GET ends the read with its error.
    Strict,
}

/// Why a manifest or ref body is not usable.
#[derive(Debug)]
pub enum ReadFailure {
    /// The GET failed (after retries).
    Unreadable(RemoteError),
    /// The manifest is not valid JSON of the expected shape, or is hostile.
    Refused(ManifestError),
    /// A valid manifest of another repo or revision than its key names.
    Misplaced(Manifest),
    /// A ref body that is not a commit hash.
    NotACommit,
}

impl fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFailure::Unreadable(e) => write!(f, "{}", error_chain(e)),
            ReadFailure::Refused(e) => write!(f, "{e}"),
            ReadFailure::Misplaced(m) => write!(
                f,
                "describes {}@{}, which belongs under another key",
                m.repo, m.revision
            ),
            ReadFailure::NotACommit => write!(f, "ref body is not a commit hash"),
        }
    }
}

/// A listed object's body, as far as it was read.
#[derive(Debug)]
pub enum Body<T> {
    /// Not asked for.
    Unread,
    /// Deleted between the LIST and the GET.
    Gone,
    Valid(T),
    Failed(ReadFailure),
}

impl<T> Body<T> {
    pub fn valid(&self) -> Option<&T> {
        match self {
            Body::Valid(v) => Some(v),
            _ => None,
        }
    }

    pub fn failure(&self) -> Option<&ReadFailure> {
        match self {
            Body::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// `manifests/<safe>@<commit>.json`.
#[derive(Debug)]
pub struct ManifestEntry {
    pub key: String,
    /// The `org__name` part of the key.
    pub safe: String,
    pub commit: String,
    /// Its size and checksum as listed: push tells by them whether it holds given bytes.
    pub object: ObjectInfo,
    pub body: Body<Manifest>,
}

/// `refs/<safe>/<name>`.
#[derive(Debug)]
pub struct RefEntry {
    pub key: String,
    /// The `org__name` part of the key.
    pub safe: String,
    pub name: String,
    /// Its size and checksum as listed: push tells by them whether it holds given bytes.
    pub object: ObjectInfo,
    /// The commit the ref names.
    pub body: Body<String>,
}

impl RefEntry {
    pub fn commit(&self) -> Option<&str> {
        self.body.valid().map(String::as_str)
    }
}

/// A repo as a ref's owner: the type is unknown when only a key name says whose the ref is.
pub type Owner = (String, Option<RepoType>);

/// Which keys a read covers: all, or those that can belong to some repos.
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    /// `org__name` key parts.
    Keys(BTreeSet<String>),
}

impl Scope {
    /// The keys the given repo ids are stored under; every key when there are none.
    pub fn repos<'a>(repo_ids: impl IntoIterator<Item = &'a str>) -> Scope {
        let keys: BTreeSet<String> = repo_ids.into_iter().map(safe_repo_key).collect();
        if keys.is_empty() {
            Scope::All
        } else {
            Scope::Keys(keys)
        }
    }

    pub fn covers(&self, safe: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Keys(keys) => keys.contains(safe),
        }
    }
}

/// The repo id a key most likely names, without reading anything: the first `__` is taken as
/// the `/` (organisation names cannot contain `__`; repo names can). Encoding the guess again
/// gives back the key it came from.
pub fn repo_id_from_key(safe: &str) -> String {
    safe.replacen("__", "/", 1)
}

/// The remote's manifests and refs (and blob sizes when listed), with whatever bodies were read.
pub struct Catalog<'r> {
    remote: &'r Remote,
    layout: Layout,
    workers: usize,
    mode: ReadMode,
    /// etag → size; empty unless blobs were listed.
    blobs: BTreeMap<String, u64>,
    /// The listed blobs as objects (with their ages), in key order; empty unless listed.
    blob_objects: Vec<ObjectInfo>,
    /// By key, so iteration follows the bucket's order.
    manifests: BTreeMap<String, ManifestEntry>,
    refs: BTreeMap<String, RefEntry>,
}

impl<'r> Catalog<'r> {
    /// LISTs `manifests/` and `refs/`, and `blobs/` when `with_blobs`, at once. No body is read.
    pub async fn list(
        remote: &'r Remote,
        layout: &Layout,
        with_blobs: bool,
    ) -> Result<Catalog<'r>, RemoteError> {
        let (manifests_prefix, refs_prefix, blobs_prefix) = (
            layout.manifests_prefix(),
            layout.refs_prefix(),
            layout.blobs_prefix(),
        );
        let blob_list = async {
            if with_blobs {
                remote.list(&blobs_prefix).await
            } else {
                Ok(Vec::new())
            }
        };
        let (manifest_objects, ref_objects, blob_objects) = tokio::try_join!(
            remote.list(&manifests_prefix),
            remote.list(&refs_prefix),
            blob_list
        )?;
        let mut catalog = Catalog {
            remote,
            layout: layout.clone(),
            workers: DEFAULT_READS,
            mode: ReadMode::Warn,
            blobs: BTreeMap::new(),
            blob_objects: Vec::new(),
            manifests: BTreeMap::new(),
            refs: BTreeMap::new(),
        };
        for o in blob_objects {
            if let Some(etag) = layout.parse_blob_key(&o.key) {
                catalog.blobs.insert(etag.to_string(), o.size);
                catalog.blob_objects.push(o);
            }
        }
        for o in manifest_objects {
            if let Some((safe, commit)) = layout.parse_manifest_key(&o.key) {
                let entry = ManifestEntry {
                    key: o.key.clone(),
                    safe: safe.to_string(),
                    commit: commit.to_string(),
                    object: o,
                    body: Body::Unread,
                };
                catalog.manifests.insert(entry.key.clone(), entry);
            }
        }
        for o in ref_objects {
            if let Some((safe, name)) = layout.parse_ref_key(&o.key) {
                let entry = RefEntry {
                    key: o.key.clone(),
                    safe: safe.to_string(),
                    name: name.to_string(),
                    object: o,
                    body: Body::Unread,
                };
                catalog.refs.insert(entry.key.clone(), entry);
            }
        }
        Ok(catalog)
    }

    /// How later reads go: `workers` GETs at a time, failures handled as `mode` says.
    pub fn reading(mut self, workers: usize, mode: ReadMode) -> Catalog<'r> {
        self.workers = workers.max(1);
        self.mode = mode;
        self
    }

    // ---- reading bodies ----

    /// Reads the manifests and refs whose key `scope` covers.
    pub async fn read(&mut self, scope: &Scope) -> Result<(), RemoteError> {
        self.read_manifests(|safe, _| scope.covers(safe)).await?;
        self.read_refs(|safe, _| scope.covers(safe)).await
    }

    /// GETs and validates the listed manifests `wanted(org__name, commit)` picks, unless read
    /// already. A manifest whose body names another repo or revision than its key is refused.
    pub async fn read_manifests(
        &mut self,
        wanted: impl Fn(&str, &str) -> bool,
    ) -> Result<(), RemoteError> {
        let keys: Vec<String> = self
            .manifests
            .values()
            .filter(|e| matches!(e.body, Body::Unread) && wanted(&e.safe, &e.commit))
            .map(|e| e.key.clone())
            .collect();
        let mode = self.mode;
        let entries = &mut self.manifests;
        fetch(
            self.remote,
            keys,
            MAX_MANIFEST_BYTES,
            self.workers,
            |key, got| {
                let entry = entries.get_mut(&key).expect("a listed key");
                entry.body = settle(mode, got, |bytes| {
                    manifest_body(&bytes, &entry.safe, &entry.commit)
                })?;
                Ok(())
            },
        )
        .await
    }

    /// GETs the listed refs `wanted(org__name, ref name)` picks, unless read already.
    pub async fn read_refs(
        &mut self,
        wanted: impl Fn(&str, &str) -> bool,
    ) -> Result<(), RemoteError> {
        let keys: Vec<String> = self
            .refs
            .values()
            .filter(|e| matches!(e.body, Body::Unread) && wanted(&e.safe, &e.name))
            .map(|e| e.key.clone())
            .collect();
        let mode = self.mode;
        let entries = &mut self.refs;
        fetch(
            self.remote,
            keys,
            MAX_REF_BYTES,
            self.workers,
            |key, got| {
                let entry = entries.get_mut(&key).expect("a listed key");
                entry.body = settle(mode, got, |bytes| match parse_ref_body(&bytes) {
                    Some(commit) => Body::Valid(commit),
                    None => Body::Failed(ReadFailure::NotACommit),
                })?;
                Ok(())
            },
        )
        .await
    }

    // ---- the listing ----

    /// etag → size of every listed blob; empty unless blobs were listed.
    pub fn blobs(&self) -> &BTreeMap<String, u64> {
        &self.blobs
    }

    /// Every listed blob object, with its size and age; empty unless blobs were listed.
    pub fn blob_objects(&self) -> &[ObjectInfo] {
        &self.blob_objects
    }

    pub fn blob_bytes(&self) -> u64 {
        self.blobs.values().sum()
    }

    /// Every listed manifest, in key order.
    pub fn manifests(&self) -> impl Iterator<Item = &ManifestEntry> {
        self.manifests.values()
    }

    /// Every listed ref, in key order.
    pub fn refs(&self) -> impl Iterator<Item = &RefEntry> {
        self.refs.values()
    }

    /// Listed manifests: one per revision.
    pub fn revision_count(&self) -> usize {
        self.manifests.len()
    }

    pub fn ref_count(&self) -> usize {
        self.refs.len()
    }

    /// Distinct `org__name` key parts among manifests and refs: repos as key names count them.
    pub fn key_count(&self) -> usize {
        self.key_names().len()
    }

    /// The distinct `org__name` key parts among manifests and refs.
    pub fn key_names(&self) -> BTreeSet<&str> {
        self.manifests
            .values()
            .map(|m| m.safe.as_str())
            .chain(self.refs.values().map(|r| r.safe.as_str()))
            .collect()
    }

    /// Whether any manifest or ref is stored under `safe`.
    pub fn has_key(&self, safe: &str) -> bool {
        self.manifests_under(safe).next().is_some() || self.refs.values().any(|r| r.safe == safe)
    }

    /// Whether a manifest is listed for `commit` under `safe`, whatever its body.
    pub fn has_manifest_key(&self, safe: &str, commit: &str) -> bool {
        self.manifest_entry(safe, commit).is_some()
    }

    // ---- lookups ----

    pub fn manifest_entry(&self, safe: &str, commit: &str) -> Option<&ManifestEntry> {
        // `safe` holds no `/`, so it encodes to itself: this is the listed key.
        self.manifests.get(&self.layout.manifest_key(safe, commit))
    }

    /// The valid manifest stored under `safe` for `commit`.
    pub fn manifest(&self, safe: &str, commit: &str) -> Option<&Manifest> {
        self.manifest_entry(safe, commit)?.body.valid()
    }

    /// Every valid manifest read, in key order.
    pub fn revisions(&self) -> impl Iterator<Item = &Manifest> {
        self.manifests.values().filter_map(|e| e.body.valid())
    }

    /// The listed manifests under `safe`.
    fn manifests_under<'a>(&'a self, safe: &'a str) -> impl Iterator<Item = &'a ManifestEntry> {
        // Keys sort by their `<safe>@` start; a longer key part such as `<safe>@x` may sort
        // among them, hence the check on `safe`.
        let start = format!("{}{safe}@", self.layout.manifests_prefix());
        self.manifests
            .range(start.clone()..)
            .take_while(move |(k, _)| k.starts_with(&start))
            .map(|(_, e)| e)
            .filter(move |e| e.safe == safe)
    }

    /// (type, id) of every repo a valid manifest under `safe` belongs to.
    pub fn repos_under(&self, safe: &str) -> BTreeSet<(RepoType, String)> {
        self.manifests_under(safe)
            .filter_map(|e| e.body.valid())
            .filter_map(|m| Some((m.repo_type()?, m.repo.clone())))
            .collect()
    }

    // ---- ownership ----

    /// The manifest of the commit `r` names: what says whose `r` is.
    pub fn manifest_named_by(&self, r: &RefEntry) -> Option<&Manifest> {
        self.manifest(&r.safe, r.commit()?)
    }

    /// Whose `r` is: the manifest of the commit it names says; failing that (a dangling or
    /// unread ref), the one repo among `candidates` stored under its key; failing that, the id
    /// its key decodes to, of unknown type.
    pub fn ref_owner_among(
        &self,
        r: &RefEntry,
        candidates: impl IntoIterator<Item = (String, RepoType)>,
    ) -> Owner {
        if let Some(m) = self.manifest_named_by(r) {
            return (m.repo.clone(), m.repo_type());
        }
        let same_key: BTreeSet<(String, RepoType)> = candidates
            .into_iter()
            .filter(|(id, _)| safe_repo_key(id) == r.safe)
            .collect();
        let mut same_key = same_key.into_iter();
        match (same_key.next(), same_key.next()) {
            (Some((id, t)), None) => (id, Some(t)),
            _ => (repo_id_from_key(&r.safe), None),
        }
    }

    /// Whose `r` is, the candidates being the repos whose manifests were read.
    pub fn ref_owner(&self, r: &RefEntry) -> Owner {
        let candidates = self.repos_under(&r.safe).into_iter().map(|(t, id)| (id, t));
        self.ref_owner_among(r, candidates)
    }

    // ---- what went wrong ----

    /// One line per failed or refused read: manifests first, then refs, each group sorted.
    pub fn warnings(&self) -> Vec<String> {
        let mut manifests: Vec<String> = self
            .manifests
            .values()
            .filter_map(|e| Some(warning_line(&e.key, e.body.failure()?)))
            .collect();
        let mut refs: Vec<String> = self
            .refs
            .values()
            .filter_map(|e| Some(warning_line(&e.key, e.body.failure()?)))
            .collect();
        manifests.sort();
        refs.sort();
        manifests.extend(refs);
        manifests
    }
}

/// What push (may this manifest or ref key be overwritten?), pull-all (every repo with a `main`
/// ref) and rm's remote part (which revisions and refs are whose) ask of the catalog.
impl Catalog<'_> {
    /// Reads the refs `wanted` picks, then the manifests of the commits they name, so each
    /// ref's owner is known (pull-all: every `main`).
    pub async fn read_ref_targets(
        &mut self,
        wanted: impl Fn(&str, &str) -> bool,
    ) -> Result<(), RemoteError> {
        self.read_refs(&wanted).await?;
        let named: BTreeSet<(String, String)> = self
            .refs
            .values()
            .filter(|r| wanted(&r.safe, &r.name))
            .filter_map(|r| Some((r.safe.clone(), r.commit()?.to_string())))
            .collect();
        self.read_manifests(|safe, commit| named.contains(&(safe.to_string(), commit.to_string())))
            .await
    }

    pub fn ref_entry(&self, safe: &str, name: &str) -> Option<&RefEntry> {
        self.refs.get(&self.layout.ref_key(safe, name))
    }

    /// The manifest of `commit` of `repo_id`: the one at its key, if its body names that repo.
    /// No command asks for it yet (pull reads its manifest by itself).
    #[allow(dead_code)]
    pub fn manifest_of(&self, repo_id: &str, commit: &str) -> Option<&Manifest> {
        self.manifest(&safe_repo_key(repo_id), commit)
            .filter(|m| m.repo == repo_id)
    }

    /// (type, id) of the repo the ref at `key` belongs to, as the manifest of the commit it
    /// names says; `None` when the key is not a listed ref, its body was not read or is not a
    /// commit, or that commit has no valid manifest (push: nobody's ref to protect).
    pub fn owner_of_ref_key(&self, key: &str) -> Option<(RepoType, String)> {
        let m = self.manifest_named_by(self.refs.get(key)?)?;
        Some((m.repo_type()?, m.repo.clone()))
    }

    /// (type, id) of the repo the manifest at `key` belongs to, as its valid body says.
    pub fn owner_of_manifest_key(&self, key: &str) -> Option<(RepoType, String)> {
        let m = self.manifests.get(key)?.body.valid()?;
        Some((m.repo_type()?, m.repo.clone()))
    }
}

/// A failed read as a warning line names it.
fn warning_line(key: &str, failure: &ReadFailure) -> String {
    match failure {
        ReadFailure::Unreadable(_) => format!("cannot read {key}: {failure}"),
        ReadFailure::Misplaced(_) => format!("{key} {failure}; ignored"),
        ReadFailure::Refused(_) | ReadFailure::NotACommit => format!("{key}: {failure}; ignored"),
    }
}

/// A validated manifest, or why it is refused.
fn manifest_body(bytes: &[u8], safe: &str, commit: &str) -> Body<Manifest> {
    match Manifest::parse(bytes) {
        Err(e) => Body::Failed(ReadFailure::Refused(e)),
        Ok(m) if m.revision != commit || safe_repo_key(&m.repo) != safe => {
            Body::Failed(ReadFailure::Misplaced(m))
        }
        Ok(m) => Body::Valid(m),
    }
}

/// What a GET gave as a body, or the error that stops the run.
fn settle<T>(
    mode: ReadMode,
    got: Result<Option<Vec<u8>>, RemoteError>,
    parse: impl FnOnce(Vec<u8>) -> Body<T>,
) -> Result<Body<T>, RemoteError> {
    match got {
        Ok(Some(bytes)) => Ok(parse(bytes)),
        Ok(None) => Ok(Body::Gone),
        Err(e) if e.is_fatal() || mode == ReadMode::Strict => Err(e),
        Err(e) => Ok(Body::Failed(ReadFailure::Unreadable(e))),
    }
}

/// GETs `keys`, `workers` at a time, handing each result to `settle` as it arrives; the first
/// error `settle` returns drops the reads still in flight and ends the run.
async fn fetch(
    remote: &Remote,
    keys: Vec<String>,
    max: usize,
    workers: usize,
    mut settle: impl FnMut(String, Result<Option<Vec<u8>>, RemoteError>) -> Result<(), RemoteError>,
) -> Result<(), RemoteError> {
    let mut reads = stream::iter(keys)
        .map(|key| async move {
            let got = remote.get(&key, max).await;
            (key, got)
        })
        .buffer_unordered(workers.max(1));
    while let Some((key, got)) = reads.next().await {
        settle(key, got)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
