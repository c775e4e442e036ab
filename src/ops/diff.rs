//! The comparison behind `diff`: local revisions against remote manifests, revision by revision
//! (in sync, partial, local only, remote only, incomplete), and refs side by side. Read-only on
//! both sides; the report says what differs and the command renders it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::repos::{cached_names, not_found, remote_names, NotFound, RepoRef};
use crate::cache::heuristics::is_pointer_file;
use crate::cache::scan::{self, FileSource, Repo, Revision};
use crate::cache::RepoType;
use crate::manifest::{Layout, Manifest};
use crate::remote::catalog::{Catalog, Owner, ReadMode, Scope};
use crate::remote::Remote;

/// What `diff` compares, and how.
#[derive(Debug)]
pub struct DiffOptions {
    /// The repos to compare; empty: every repo either side has.
    pub repos: Vec<RepoRef>,
    /// How many manifests are read at once.
    pub workers: usize,
    /// Whether LFS/Xet pointer files are pushed (`cache.sync_xet`), so a remote lacking them differs.
    pub sync_xet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    InSync,
    /// Every file the snapshot has is the manifest's and intact, the bucket has every blob the
    /// manifest names, but the snapshot lacks some of the revision's files.
    Partial,
    LocalOnly,
    RemoteOnly,
    Incomplete,
}

impl State {
    /// The state as people read it.
    pub fn label(self) -> &'static str {
        match self {
            State::InSync => "in sync",
            State::Partial => "partial",
            State::LocalOnly => "local only",
            State::RemoteOnly => "remote only",
            State::Incomplete => "incomplete",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RevisionDiff {
    /// `model/org/name`.
    pub repo: String,
    pub repo_type: RepoType,
    pub repo_id: String,
    pub revision: String,
    pub state: State,
    pub local_refs: Vec<String>,
    pub remote_refs: Vec<String>,
    /// The local snapshot lacks some of the revision's files, and what it has is intact and
    /// (when the remote has the revision) the manifest's: `state` is `partial`, or `local_only`
    /// for a revision the remote lacks whose tree listing names more files.
    pub partial: bool,
    /// Files the remote manifest or the commit's tree listing (`trees/<commit>.json`) names that
    /// the local snapshot lacks.
    pub missing_locally: Vec<String>,
    /// Local files the manifest lacks, or whose blob the remote lacks.
    pub missing_remotely: Vec<String>,
    /// Files both sides have with different content (blob name or size).
    pub different: Vec<String>,
    /// Snapshot links that lead to no file (the blob is missing, or the link dangles).
    pub broken_locally: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefState {
    Same,
    LocalOnly,
    RemoteOnly,
    Differs,
}

#[derive(Debug, Serialize)]
pub struct RefDiff {
    /// `model/org/name`, or `org/name` when only a key name says whose ref it is.
    pub repo: String,
    pub repo_type: Option<RepoType>,
    pub repo_id: String,
    pub name: String,
    pub local: Option<String>,
    pub remote: Option<String>,
    pub state: RefState,
}

#[derive(Debug, Serialize)]
pub struct DiffReport {
    pub command: &'static str,
    pub cache_dir: PathBuf,
    pub remote: String,
    pub revisions: Vec<RevisionDiff>,
    pub refs: Vec<RefDiff>,
    pub in_sync: usize,
    pub partial: usize,
    pub local_only: usize,
    pub remote_only: usize,
    pub incomplete: usize,
    pub refs_differ: usize,
    /// Revisions not in sync plus refs that differ: what `--exit-code` tests.
    pub differences: usize,
    pub warnings: Vec<String>,
    /// A repo asked for that neither side has: the run fails with it, after the warnings.
    #[serde(skip)]
    pub not_found: Option<NotFound>,
}

/// (repo id, type): how both sides name a repo.
type RepoKey = (String, RepoType);

/// Compares the cache at `cache_dir` with the remote, revision by revision and ref by ref. A
/// repo asked for that neither side has is [`DiffReport::not_found`]; the warnings gathered so
/// far are in the report all the same.
pub async fn diff(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    opts: &DiffOptions,
) -> Result<DiffReport> {
    let wanted = &opts.repos;
    let in_scope =
        |t: RepoType, id: &str| wanted.is_empty() || wanted.iter().any(|w| w.matches(t, id));

    let dir = cache_dir.to_path_buf();
    let scan = tokio::task::spawn_blocking(move || scan::scan(&dir)).await?;
    let mut warnings: Vec<String> = scan.warnings.iter().map(ToString::to_string).collect();
    if !scan.exists {
        warnings.push(format!(
            "cache dir {} does not exist: nothing is cached yet",
            scan.root.display()
        ));
    }
    let local: BTreeMap<RepoKey, &Repo> = scan
        .repos
        .iter()
        .filter(|r| in_scope(r.repo_type, &r.repo_id))
        .map(|r| ((r.repo_id.clone(), r.repo_type), r))
        .collect();

    // Only keys that can belong to the repos asked for are read.
    let mut catalog = Catalog::list(remote, layout, true)
        .await?
        .reading(opts.workers, ReadMode::Warn);
    catalog
        .read(&Scope::repos(wanted.iter().map(|w| w.repo_id.as_str())))
        .await?;
    warnings.extend(catalog.warnings());

    let mut remote_revs: BTreeMap<(RepoKey, String), &Manifest> = BTreeMap::new();
    for m in catalog.revisions() {
        let t = m.repo_type().expect("validated manifest");
        if in_scope(t, &m.repo) {
            remote_revs.insert(((m.repo.clone(), t), m.revision.clone()), m);
        }
    }

    let in_scope_owner = |owner: &Owner| match owner.1 {
        Some(t) => in_scope(t, &owner.0),
        None => wanted.is_empty() || wanted.iter().any(|w| w.repo_id == owner.0),
    };
    let remote_refs = attribute_refs(&catalog, &local, &remote_revs)
        .into_iter()
        .filter(|(owner, _)| in_scope_owner(owner))
        .collect();
    // Pointer-file checks read small local files.
    let revisions = tokio::task::block_in_place(|| {
        revision_diffs(
            &local,
            &remote_revs,
            &remote_refs,
            catalog.blobs(),
            opts.sync_xet,
        )
    });
    let refs = ref_diffs(&local, &remote_refs);

    let unknown = wanted.iter().find(|w| {
        !(revisions.iter().any(|d| w.matches(d.repo_type, &d.repo_id))
            || refs.iter().any(|r| r.repo_id == w.repo_id))
    });
    let not_found = unknown.map(|w| {
        let mut names = cached_names(&scan);
        names.extend(remote_names(&catalog));
        not_found(
            &w.repo_id,
            format!(
                "repo {} is neither in the cache at {} nor on {}",
                w.qualified(),
                scan.root.display(),
                remote.describe()
            ),
            &names,
            "`hf-cache-sync list` and `hf-cache-sync list --remote` show what each side holds",
        )
    });
    Ok(DiffReport::new(
        scan.root.clone(),
        remote.url(),
        revisions,
        refs,
        warnings,
        not_found,
    ))
}

impl DiffReport {
    /// The report of these rows, counted.
    fn new(
        cache_dir: PathBuf,
        remote: String,
        revisions: Vec<RevisionDiff>,
        refs: Vec<RefDiff>,
        warnings: Vec<String>,
        not_found: Option<NotFound>,
    ) -> DiffReport {
        let count = |s: State| revisions.iter().filter(|d| d.state == s).count();
        let refs_differ = refs.iter().filter(|r| r.state != RefState::Same).count();
        let mut report = DiffReport {
            command: "diff",
            cache_dir,
            remote,
            in_sync: count(State::InSync),
            partial: count(State::Partial),
            local_only: count(State::LocalOnly),
            remote_only: count(State::RemoteOnly),
            incomplete: count(State::Incomplete),
            refs_differ,
            differences: 0,
            revisions,
            refs,
            warnings,
            not_found,
        };
        report.differences = report.partial
            + report.local_only
            + report.remote_only
            + report.incomplete
            + report.refs_differ;
        report
    }
}

/// Whose is each remote ref that was read (owner → name → commit)? The catalog decides, the
/// candidates for a dangling ref being the repos of either side.
fn attribute_refs(
    catalog: &Catalog,
    local: &BTreeMap<RepoKey, &Repo>,
    remote_revs: &BTreeMap<(RepoKey, String), &Manifest>,
) -> BTreeMap<Owner, BTreeMap<String, String>> {
    let candidates: BTreeSet<&RepoKey> = local
        .keys()
        .chain(remote_revs.keys().map(|(k, _)| k))
        .collect();
    let mut owned: BTreeMap<Owner, BTreeMap<String, String>> = BTreeMap::new();
    for r in catalog.refs() {
        let Some(commit) = r.commit() else {
            continue;
        };
        let owner = catalog.ref_owner_among(r, candidates.iter().map(|&k| k.clone()));
        owned
            .entry(owner)
            .or_default()
            .insert(r.name.clone(), commit.to_string());
    }
    owned
}

/// One row per revision either side has.
fn revision_diffs(
    local: &BTreeMap<RepoKey, &Repo>,
    remote_revs: &BTreeMap<(RepoKey, String), &Manifest>,
    remote_refs: &BTreeMap<Owner, BTreeMap<String, String>>,
    blobs: &BTreeMap<String, u64>,
    sync_xet: bool,
) -> Vec<RevisionDiff> {
    let mut keys: BTreeSet<(RepoKey, String)> = remote_revs.keys().cloned().collect();
    for (key, repo) in local {
        for rev in &repo.revisions {
            keys.insert((key.clone(), rev.commit.clone()));
        }
    }
    let no_refs = BTreeMap::new();
    let mut out = Vec::new();
    for (key, commit) in keys {
        let repo = local.get(&key).copied();
        let rev = repo.and_then(|r| r.revision(&commit));
        let manifest = remote_revs.get(&(key.clone(), commit.clone())).copied();
        let refs = remote_refs
            .get(&(key.0.clone(), Some(key.1)))
            .unwrap_or(&no_refs);
        let mut d = RevisionDiff {
            repo: format!("{}/{}", key.1, key.0),
            repo_type: key.1,
            repo_id: key.0.clone(),
            revision: commit.clone(),
            state: State::InSync,
            local_refs: repo
                .map(|r| r.refs_to(&commit).into_iter().map(String::from).collect())
                .unwrap_or_default(),
            remote_refs: refs
                .iter()
                .filter(|(_, c)| **c == commit)
                .map(|(n, _)| n.clone())
                .collect(),
            partial: false,
            missing_locally: Vec::new(),
            missing_remotely: Vec::new(),
            different: Vec::new(),
            broken_locally: Vec::new(),
        };
        if let Some((repo, rev)) = repo.zip(rev) {
            d.broken_locally.clone_from(&rev.broken);
            if let Some(missing) = rev.missing_listed(repo) {
                d.missing_locally
                    .extend(missing.into_iter().map(String::from));
            }
        }
        d.state = match (repo.zip(rev), manifest) {
            (Some(_), None) => State::LocalOnly,
            (None, Some(_)) => State::RemoteOnly,
            (Some((repo, rev)), Some(m)) => {
                compare(repo, rev, m, blobs, sync_xet, &mut d);
                State::InSync
            }
            (None, None) => continue,
        };
        d.missing_locally.sort();
        d.missing_locally.dedup();
        let intact =
            d.missing_remotely.is_empty() && d.different.is_empty() && d.broken_locally.is_empty();
        d.partial = intact && !d.missing_locally.is_empty();
        if d.state == State::InSync {
            d.state = match (intact, d.partial) {
                (false, _) => State::Incomplete,
                (true, true) => State::Partial,
                (true, false) => State::InSync,
            };
        }
        out.push(d);
    }
    out
}

/// One row per ref name either side has, repo by repo.
fn ref_diffs(
    local: &BTreeMap<RepoKey, &Repo>,
    remote_refs: &BTreeMap<Owner, BTreeMap<String, String>>,
) -> Vec<RefDiff> {
    let mut owners: BTreeSet<Owner> = remote_refs.keys().cloned().collect();
    owners.extend(local.keys().map(|(id, t)| (id.clone(), Some(*t))));
    let no_refs = BTreeMap::new();
    let mut out = Vec::new();
    for owner in owners {
        let local_refs = owner
            .1
            .and_then(|t| local.get(&(owner.0.clone(), t)))
            .map_or(&no_refs, |r| &r.refs);
        let remote = remote_refs.get(&owner).unwrap_or(&no_refs);
        let names: BTreeSet<&String> = local_refs.keys().chain(remote.keys()).collect();
        for name in names {
            let l = local_refs.get(name).cloned();
            let r = remote.get(name).cloned();
            let state = match (&l, &r) {
                (Some(a), Some(b)) if a == b => RefState::Same,
                (Some(_), Some(_)) => RefState::Differs,
                (Some(_), None) => RefState::LocalOnly,
                _ => RefState::RemoteOnly,
            };
            out.push(RefDiff {
                repo: match owner.1 {
                    Some(t) => format!("{t}/{}", owner.0),
                    None => owner.0.clone(),
                },
                repo_type: owner.1,
                repo_id: owner.0.clone(),
                name: name.clone(),
                local: l,
                remote: r,
                state,
            });
        }
    }
    out
}

/// Fills the file lists of a revision both sides have. A linked file is the manifest's when its
/// blob has the manifest's name and size; files stored as copies (no symlinks) have no blob name
/// to compare and are compared by size.
fn compare(
    repo: &Repo,
    rev: &Revision,
    manifest: &Manifest,
    blobs: &BTreeMap<String, u64>,
    sync_xet: bool,
    d: &mut RevisionDiff,
) {
    let local: BTreeMap<&str, &scan::SnapshotFile> =
        rev.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut named = BTreeSet::new();
    for mf in &manifest.files {
        named.insert(mf.path.as_str());
        if !blobs.contains_key(&mf.blob) {
            d.missing_remotely.push(mf.path.clone());
        }
        match local.get(mf.path.as_str()) {
            None => d.missing_locally.push(mf.path.clone()),
            Some(f) => {
                let same = match &f.source {
                    FileSource::Blob(etag) => *etag == mf.blob && f.size == mf.size,
                    FileSource::Copy(_) => f.size == mf.size,
                };
                if !same {
                    d.different.push(mf.path.clone());
                }
            }
        }
    }
    for f in &rev.files {
        if named.contains(f.path.as_str()) {
            continue;
        }
        // push leaves LFS/Xet pointer files out unless cache.sync_xet is set.
        let content = match &f.source {
            FileSource::Blob(etag) => repo.blobs.get(etag).map(|b| b.content_path.clone()),
            FileSource::Copy(p) => Some(p.clone()),
        };
        if !sync_xet && content.is_some_and(|p| is_pointer_file(&p, f.size)) {
            continue;
        }
        d.missing_remotely.push(f.path.clone());
    }
    d.missing_remotely.sort();
    d.missing_remotely.dedup();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ManifestFile;
    use crate::ops::testing::{commit, Cache};

    fn manifest(commit: &str, files: &[(&str, &str, u64)]) -> Manifest {
        Manifest {
            repo: "org/m".into(),
            revision: commit.into(),
            repo_type: "model".into(),
            files: files
                .iter()
                .map(|(path, blob, size)| ManifestFile {
                    path: (*path).into(),
                    blob: (*blob).into(),
                    size: *size,
                })
                .collect(),
        }
    }

    fn by_key(scan: &scan::CacheScan) -> BTreeMap<RepoKey, &Repo> {
        scan.repos
            .iter()
            .map(|r| ((r.repo_id.clone(), r.repo_type), r))
            .collect()
    }

    /// The rows for the cache against these manifests, the bucket holding `blobs`.
    fn rows(cache: &Cache, manifests: &[Manifest], blobs: &[&str]) -> Vec<RevisionDiff> {
        let scan = cache.scan();
        let local = by_key(&scan);
        let remote: BTreeMap<(RepoKey, String), &Manifest> = manifests
            .iter()
            .map(|m| ((("org/m".into(), RepoType::Model), m.revision.clone()), m))
            .collect();
        let blobs = blobs.iter().map(|b| (b.to_string(), 1)).collect();
        revision_diffs(&local, &remote, &BTreeMap::new(), &blobs, false)
    }

    #[test]
    fn revisions_are_told_apart_by_what_each_side_has() {
        let cache = Cache::new();
        let (a, b, c) = (commit('a'), commit('b'), commit('c'));
        let one = cache.file("org/m", &a, "one.bin", b"one");
        cache.file("org/m", &b, "only-local.bin", b"local");
        let two = cache.file("org/m", &c, "two.bin", b"two");
        let missing = "f".repeat(64);
        let manifests = [
            manifest(&a, &[("one.bin", &one, 3)]),
            manifest(&c, &[("two.bin", &two, 3), ("three.bin", &missing, 5)]),
            manifest(&commit('d'), &[("x", &missing, 1)]),
        ];
        let rows = rows(&cache, &manifests, &[&one, &two]);
        let states: Vec<(String, State)> = rows
            .iter()
            .map(|d| (d.revision[..1].to_string(), d.state))
            .collect();
        assert_eq!(
            states,
            [
                ("a".to_string(), State::InSync),
                ("b".into(), State::LocalOnly),
                ("c".into(), State::Incomplete),
                ("d".into(), State::RemoteOnly),
            ]
        );
        let c_row = &rows[2];
        assert_eq!(c_row.missing_locally, ["three.bin"]);
        assert_eq!(c_row.missing_remotely, ["three.bin"]);
    }

    #[test]
    fn a_snapshot_with_some_of_the_files_is_partial_and_other_content_differs() {
        let cache = Cache::new();
        let (a, b) = (commit('a'), commit('b'));
        let one = cache.file("org/m", &a, "one.bin", b"one");
        let two = cache.file("org/m", &b, "two.bin", b"two");
        let other = "e".repeat(64);
        let manifests = [
            manifest(&a, &[("one.bin", &one, 3), ("more.bin", &other, 4)]),
            manifest(&b, &[("two.bin", &other, 3)]),
        ];
        let rows = rows(&cache, &manifests, &[&one, &two, &other]);
        assert_eq!(rows[0].state, State::Partial);
        assert!(rows[0].partial);
        assert_eq!(rows[0].missing_locally, ["more.bin"]);
        assert_eq!(rows[1].state, State::Incomplete);
        assert_eq!(rows[1].different, ["two.bin"]);
    }

    #[test]
    fn refs_compare_by_name_on_each_side() {
        let cache = Cache::new();
        let (a, b) = (commit('a'), commit('b'));
        cache.file("org/m", &a, "one.bin", b"one");
        cache.reference("org/m", "main", &a);
        cache.reference("org/m", "dev", &a);
        let scan = cache.scan();
        let local = by_key(&scan);
        let owner: Owner = ("org/m".into(), Some(RepoType::Model));
        let remote = BTreeMap::from([(
            owner,
            BTreeMap::from([("main".to_string(), b.clone()), ("v1".to_string(), a)]),
        )]);
        let states: Vec<(String, RefState)> = ref_diffs(&local, &remote)
            .into_iter()
            .map(|r| (r.name, r.state))
            .collect();
        assert_eq!(
            states,
            [
                ("dev".to_string(), RefState::LocalOnly),
                ("main".into(), RefState::Differs),
                ("v1".into(), RefState::RemoteOnly),
            ]
        );
    }
}
