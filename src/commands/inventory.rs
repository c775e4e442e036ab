//! What the remote holds, read the cheap way first: LISTs give blob sizes, manifest keys and ref
//! keys. Manifest and ref bodies cost one GET each and are fetched only when a command needs exact
//! repo ids and types, file lists or ref targets (keys are ambiguous: `a/b__c` and `a__b/c` share
//! `a__b__c`).

use std::collections::{BTreeMap, BTreeSet};

use futures::stream::{self, StreamExt};

use crate::manifest::{
    parse_ref_body, safe_repo_key, Layout, Manifest, MAX_MANIFEST_BYTES, MAX_REF_BYTES,
};
use crate::remote::{Remote, RemoteError};

/// The remote's keys, grouped by the `org__name` part.
#[derive(Debug, Default)]
pub struct Inventory {
    /// etag → size; empty unless blobs were listed.
    pub blobs: BTreeMap<String, u64>,
    /// `org__name` → commits that have a manifest.
    pub manifests: BTreeMap<String, BTreeSet<String>>,
    /// `org__name` → ref names.
    pub refs: BTreeMap<String, BTreeSet<String>>,
}

impl Inventory {
    /// LISTs `manifests/` and `refs/`, and `blobs/` when `with_blobs`. No object is read.
    pub async fn list(
        remote: &Remote,
        layout: &Layout,
        with_blobs: bool,
    ) -> Result<Inventory, RemoteError> {
        let mut inv = Inventory::default();
        for o in remote.list(&layout.manifests_prefix()).await? {
            if let Some((safe, commit)) = layout.parse_manifest_key(&o.key) {
                inv.manifests
                    .entry(safe.to_string())
                    .or_default()
                    .insert(commit.to_string());
            }
        }
        for o in remote.list(&layout.refs_prefix()).await? {
            if let Some((safe, name)) = layout.parse_ref_key(&o.key) {
                inv.refs
                    .entry(safe.to_string())
                    .or_default()
                    .insert(name.to_string());
            }
        }
        if with_blobs {
            for o in remote.list(&layout.blobs_prefix()).await? {
                if let Some(etag) = layout.parse_blob_key(&o.key) {
                    inv.blobs.insert(etag.to_string(), o.size);
                }
            }
        }
        Ok(inv)
    }

    pub fn revision_count(&self) -> usize {
        self.manifests.values().map(BTreeSet::len).sum()
    }

    pub fn ref_count(&self) -> usize {
        self.refs.values().map(BTreeSet::len).sum()
    }

    pub fn blob_bytes(&self) -> u64 {
        self.blobs.values().sum()
    }

    /// Every `(org__name, commit)` with a manifest whose key could belong to one of `safe_keys`
    /// (all of them when `None`).
    pub fn manifest_keys(&self, safe_keys: Option<&BTreeSet<String>>) -> Vec<(String, String)> {
        self.manifests
            .iter()
            .filter(|(safe, _)| safe_keys.is_none_or(|k| k.contains(*safe)))
            .flat_map(|(safe, commits)| commits.iter().map(|c| (safe.clone(), c.clone())))
            .collect()
    }

    /// Every `(org__name, ref name)`, restricted like [`Inventory::manifest_keys`].
    pub fn ref_keys(&self, safe_keys: Option<&BTreeSet<String>>) -> Vec<(String, String)> {
        self.refs
            .iter()
            .filter(|(safe, _)| safe_keys.is_none_or(|k| k.contains(*safe)))
            .flat_map(|(safe, names)| names.iter().map(|n| (safe.clone(), n.clone())))
            .collect()
    }
}

/// The repo id a key most likely names, without reading anything: the first `__` is taken as
/// the `/` (organisation names cannot contain `__`; repo names can).
pub fn repo_id_from_key(safe: &str) -> String {
    safe.replacen("__", "/", 1)
}

/// A GET's key, its outcome, and the two key parts it was built from.
type Fetched = (String, Result<Option<Vec<u8>>, RemoteError>, String, String);

/// A manifest read from the remote and vetted, with the key part it was found under.
#[derive(Debug, Clone)]
pub struct RemoteRevision {
    pub safe: String,
    pub manifest: Manifest,
}

/// GETs and validates the manifests at `keys`, `workers` at a time. An unreadable or foreign
/// manifest becomes a warning; an error that would fail every request ends the read.
pub async fn read_manifests(
    remote: &Remote,
    layout: &Layout,
    keys: Vec<(String, String)>,
    workers: usize,
) -> Result<(Vec<RemoteRevision>, Vec<String>), RemoteError> {
    let results: Vec<Fetched> = stream::iter(keys)
        .map(|(safe, commit)| async move {
            // Decoding and re-encoding the id gives back the listed key exactly.
            let key = layout.manifest_key(&repo_id_from_key(&safe), &commit);
            let body = remote.get(&key, MAX_MANIFEST_BYTES).await;
            (key, body, safe, commit)
        })
        .buffer_unordered(workers.max(1))
        .collect()
        .await;
    let mut revisions = Vec::new();
    let mut warnings = Vec::new();
    for (key, body, safe, commit) in results {
        let bytes = match body {
            Ok(Some(b)) => b,
            // Deleted between the LIST and the GET.
            Ok(None) => continue,
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => {
                warnings.push(format!("cannot read {key}: {e}"));
                continue;
            }
        };
        match Manifest::parse(&bytes) {
            Ok(m) if m.revision != commit || safe_repo_key(&m.repo) != safe => {
                warnings.push(format!(
                    "{key} describes {}@{}, which belongs under another key; ignored",
                    m.repo, m.revision
                ));
            }
            Ok(manifest) => revisions.push(RemoteRevision { safe, manifest }),
            Err(e) => warnings.push(format!("{key}: {e}; ignored")),
        }
    }
    revisions.sort_by(|a, b| {
        (
            &a.manifest.repo,
            &a.manifest.repo_type,
            &a.manifest.revision,
        )
            .cmp(&(
                &b.manifest.repo,
                &b.manifest.repo_type,
                &b.manifest.revision,
            ))
    });
    warnings.sort();
    Ok((revisions, warnings))
}

/// GETs the refs at `keys`: `(org__name, ref name)` → commit. Unreadable refs become warnings.
pub async fn read_refs(
    remote: &Remote,
    layout: &Layout,
    keys: Vec<(String, String)>,
    workers: usize,
) -> Result<(BTreeMap<(String, String), String>, Vec<String>), RemoteError> {
    let results: Vec<Fetched> = stream::iter(keys)
        .map(|(safe, name)| async move {
            let key = layout.ref_key(&repo_id_from_key(&safe), &name);
            let body = remote.get(&key, MAX_REF_BYTES).await;
            (key, body, safe, name)
        })
        .buffer_unordered(workers.max(1))
        .collect()
        .await;
    let mut refs = BTreeMap::new();
    let mut warnings = Vec::new();
    for (key, body, safe, name) in results {
        match body {
            Ok(Some(bytes)) => match parse_ref_body(&bytes) {
                Some(commit) => {
                    refs.insert((safe, name), commit);
                }
                None => warnings.push(format!("{key}: ref body is not a commit hash; ignored")),
            },
            Ok(None) => {}
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => warnings.push(format!("cannot read {key}: {e}")),
        }
    }
    warnings.sort();
    Ok((refs, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_decoding_takes_the_first_separator() {
        assert_eq!(repo_id_from_key("org__name"), "org/name");
        assert_eq!(repo_id_from_key("org__na__me"), "org/na__me");
        assert_eq!(repo_id_from_key("gpt2"), "gpt2");
        // Whatever the guess, encoding it again gives back the key it came from.
        for safe in ["org__name", "a__b__c", "gpt2"] {
            assert_eq!(safe_repo_key(&repo_id_from_key(safe)), safe);
        }
    }
}
