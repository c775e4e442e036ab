//! The remote side of `list`: rows from key names alone (one LIST each of `manifests/` and
//! `refs/`), or, when exact ids, types or sizes are needed, from the manifest and ref bodies the
//! catalog reads, each ref under the repo the catalog says owns it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;

use super::{Content, Entry, Listing, Source};
use crate::cache::RepoType;
use crate::manifest::{Layout, Manifest};
use crate::remote::catalog::{repo_id_from_key, Catalog, Owner, ReadMode, Scope};
use crate::remote::Remote;

/// A remote repo as its manifests (or, without them, its key name) describe it.
#[derive(Default)]
struct RemoteGroup<'a> {
    repo_type: Option<RepoType>,
    repo_id: String,
    revisions: Vec<&'a Manifest>,
    /// Names of key-listed refs, or (with bodies) name → commit.
    refs: BTreeMap<String, Option<String>>,
    /// Revisions only known from keys.
    commits: BTreeSet<String>,
}

pub(super) async fn listing(
    remote: &Remote,
    layout: &Layout,
    workers: usize,
    revisions: bool,
    read: bool,
) -> Result<Listing> {
    let mut catalog = Catalog::list(remote, layout, false)
        .await?
        .reading(workers, ReadMode::Warn);
    if read {
        catalog.read(&Scope::All).await?;
    } else {
        // One manifest a key name, for the repo's type: `model/org/name`, as every command
        // names a repo, takes one small GET a repo, not one a revision. A key that two ids may
        // share (`a__b__c`: `a/b__c` or `a__b/c`) is left a guess, untyped.
        let mut first: BTreeMap<String, String> = BTreeMap::new();
        for e in catalog.manifests() {
            if e.safe.matches("__").count() == 1 {
                first
                    .entry(e.safe.clone())
                    .or_insert_with(|| e.commit.clone());
            }
        }
        catalog
            .read_manifests(|safe, commit| first.get(safe).is_some_and(|c| c == commit))
            .await?;
    }
    let groups = if read {
        groups_from_bodies(&catalog)
    } else {
        groups_from_keys(&catalog)
    };
    let entries = groups
        .values()
        .flat_map(|g| group_entries(g, revisions, read))
        .collect();
    Ok(Listing {
        source: Source::Remote {
            describe: remote.url(),
            manifests_read: read,
        },
        entries,
        // Read for its type alone, a manifest that cannot be read leaves its repo untyped and
        // the listing whole: only `--manifests` reports what it could not read.
        warnings: if read { catalog.warnings() } else { Vec::new() },
        revisions,
        sized: read,
        timed: false,
        matched: false,
    })
}

/// Repos as the manifest bodies name them, with the refs the catalog attributes to each.
fn groups_from_bodies<'a>(catalog: &'a Catalog) -> BTreeMap<Owner, RemoteGroup<'a>> {
    let mut groups: BTreeMap<Owner, RemoteGroup> = BTreeMap::new();
    for m in catalog.revisions() {
        let t = m.repo_type();
        let g = groups.entry((m.repo.clone(), t)).or_default();
        g.repo_type = t;
        g.repo_id = m.repo.clone();
        g.revisions.push(m);
    }
    for r in catalog.refs() {
        let Some(commit) = r.commit() else {
            continue;
        };
        let owner = catalog.ref_owner(r);
        let g = groups.entry(owner.clone()).or_default();
        g.repo_id = owner.0;
        g.repo_type = owner.1;
        g.refs.insert(r.name.clone(), Some(commit.to_string()));
    }
    groups
}

/// Repos as the key names decode, each with the type the one manifest read of it says.
fn groups_from_keys<'a>(catalog: &Catalog) -> BTreeMap<Owner, RemoteGroup<'a>> {
    let mut groups: BTreeMap<Owner, RemoteGroup> = BTreeMap::new();
    let types: HashMap<&str, RepoType> = catalog
        .manifests()
        .filter_map(|e| {
            let m = e.body.valid()?;
            // A manifest under another repo's key says nothing of that repo.
            (repo_id_from_key(&e.safe) == m.repo).then_some((e.safe.as_str(), m.repo_type()?))
        })
        .collect();
    fn group<'g, 'a>(
        groups: &'g mut BTreeMap<Owner, RemoteGroup<'a>>,
        types: &HashMap<&str, RepoType>,
        safe: &str,
    ) -> &'g mut RemoteGroup<'a> {
        let id = repo_id_from_key(safe);
        let repo_type = types.get(safe).copied();
        let g = groups.entry((id.clone(), repo_type)).or_default();
        g.repo_id = id;
        g.repo_type = repo_type;
        g
    }
    for e in catalog.manifests() {
        group(&mut groups, &types, &e.safe)
            .commits
            .insert(e.commit.clone());
    }
    for r in catalog.refs() {
        group(&mut groups, &types, &r.safe)
            .refs
            .insert(r.name.clone(), None);
    }
    groups
}

/// One row for the repo, or one per revision.
fn group_entries(g: &RemoteGroup, revisions: bool, read: bool) -> Vec<Entry> {
    let repo = match g.repo_type {
        Some(t) => format!("{t}/{}", g.repo_id),
        None => g.repo_id.clone(),
    };
    if !revisions {
        let content: Vec<(Content, u64)> = g
            .revisions
            .iter()
            .flat_map(|m| blobs_of(m))
            .collect::<HashMap<_, _>>()
            .into_iter()
            .collect();
        return vec![Entry {
            id: repo.clone(),
            repo_type: g.repo_type,
            repo_id: g.repo_id.clone(),
            repo,
            size: read.then(|| content.iter().map(|(_, s)| s).sum()),
            revisions: g.revisions.len() + g.commits.len(),
            refs: Some(g.refs.keys().cloned().collect()),
            content,
            ..Default::default()
        }];
    }
    // A revision's row; what its manifest says is added when it was read.
    let row = |commit: &String| Entry {
        id: commit.clone(),
        repo_type: g.repo_type,
        repo_id: g.repo_id.clone(),
        repo: repo.clone(),
        revision: Some(commit.clone()),
        revisions: 1,
        ..Default::default()
    };
    let mut entries = Vec::new();
    for m in &g.revisions {
        let commit = &m.revision;
        let content: Vec<(Content, u64)> = blobs_of(m).into_iter().collect();
        entries.push(Entry {
            size: Some(content.iter().map(|(_, s)| s).sum()),
            files: Some(m.files.len()),
            refs: Some(
                g.refs
                    .iter()
                    .filter(|(_, c)| c.as_deref() == Some(commit.as_str()))
                    .map(|(n, _)| n.clone())
                    .collect(),
            ),
            content,
            ..row(commit)
        });
    }
    entries.extend(g.commits.iter().map(row));
    entries
}

/// The distinct blobs a manifest names, with their sizes.
fn blobs_of(m: &Manifest) -> HashMap<Content, u64> {
    m.files
        .iter()
        .map(|f| (Content::Blob(f.blob.clone()), f.size))
        .collect()
}
