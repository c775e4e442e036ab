//! `diff`: local revisions against remote manifests, revision by revision: in sync, partial (the
//! snapshot holds some of the revision's files, each as the manifest names it: a pull of some
//! files), local only, remote only, or incomplete (the remote lacks files the snapshot has, the
//! bucket lacks a blob a manifest names, content differs, or a snapshot link is broken). Refs are
//! compared too. Read-only on both sides; `--exit-code` turns any difference into exit 1 for CI
//! gates.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use super::repos::{cached_names, not_found, remote_names};
use super::{short, App, Outcome, RemoteChoice, RepoRef};
use crate::cache::heuristics::is_pointer_file;
use crate::cache::scan::{self, FileSource, Repo, Revision};
use crate::cache::RepoType;
use crate::manifest::Manifest;
use crate::remote::catalog::{Catalog, Owner, ReadMode, Scope};
use crate::report::table;

#[derive(Debug)]
pub struct DiffOptions {
    pub repos: Vec<String>,
    pub remote: RemoteChoice,
    pub exit_code: bool,
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
    fn label(self) -> &'static str {
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
pub struct DiffSummary {
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
}

/// (repo id, type): how both sides name a repo.
type RepoKey = (String, RepoType);

pub async fn run(app: &App, opts: DiffOptions) -> Result<Outcome> {
    let wanted = RepoRef::parse_all(&opts.repos)?;
    let in_scope =
        |t: RepoType, id: &str| wanted.is_empty() || wanted.iter().any(|w| w.matches(t, id));
    let (remote, layout) = app.open_remote(opts.remote.url())?;

    let cache_dir = app.settings.cache_dir.clone();
    let scan = tokio::task::spawn_blocking(move || scan::scan(&cache_dir)).await?;
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
    let mut catalog = Catalog::list(&remote, &layout, true)
        .await?
        .reading(app.settings.transfer.workers, ReadMode::Warn);
    catalog
        .read(&Scope::repos(wanted.iter().map(|w| w.repo_id.as_str())))
        .await?;
    warnings.extend(catalog.warnings());
    for w in &warnings {
        app.printer.warn(w);
    }

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
    let sync_xet = app.settings.sync_xet;
    // Pointer-file checks read small local files.
    let revisions = tokio::task::block_in_place(|| {
        revision_diffs(
            &local,
            &remote_revs,
            &remote_refs,
            catalog.blobs(),
            sync_xet,
        )
    });
    let refs = ref_diffs(&local, &remote_refs);

    for w in &wanted {
        let known = revisions.iter().any(|d| w.matches(d.repo_type, &d.repo_id))
            || refs.iter().any(|r| r.repo_id == w.repo_id);
        if !known {
            let mut names = cached_names(&scan);
            names.extend(remote_names(&catalog));
            return Err(not_found(
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
            .into());
        }
    }

    let count = |s: State| revisions.iter().filter(|d| d.state == s).count();
    let refs_differ = refs.iter().filter(|r| r.state != RefState::Same).count();
    let mut summary = DiffSummary {
        command: "diff",
        cache_dir: scan.root.clone(),
        remote: remote.describe(),
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
    };
    summary.differences = summary.partial
        + summary.local_only
        + summary.remote_only
        + summary.incomplete
        + summary.refs_differ;
    app.printer.result(&summary, || human(&summary));
    Ok(if opts.exit_code && summary.differences > 0 {
        Outcome::Failed
    } else {
        Outcome::Success
    })
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

fn human(s: &DiffSummary) -> String {
    let mut out = Vec::new();
    if s.revisions.is_empty() && s.refs.is_empty() {
        out.push("nothing to compare: no revisions in the cache or on the remote".to_string());
        return out.join("\n");
    }
    if !s.revisions.is_empty() {
        let rows: Vec<Vec<String>> = s
            .revisions
            .iter()
            .map(|d| {
                let refs: BTreeSet<&String> = d.local_refs.iter().chain(&d.remote_refs).collect();
                let state = if d.partial && d.state == State::LocalOnly {
                    "local only, partial".to_string()
                } else {
                    d.state.label().to_string()
                };
                vec![
                    state,
                    d.repo.clone(),
                    short(&d.revision).to_string(),
                    refs.into_iter().cloned().collect::<Vec<_>>().join(", "),
                ]
            })
            .collect();
        let text = table(&["STATE", "REPO", "REVISION", "REFS"], &rows, &[]);
        let mut lines = text.lines();
        out.push(lines.next().unwrap_or_default().to_string());
        for (d, line) in s.revisions.iter().zip(lines) {
            out.push(line.to_string());
            for (what, files) in [
                ("missing locally", &d.missing_locally),
                ("missing on the remote", &d.missing_remotely),
                ("different content", &d.different),
                ("broken links", &d.broken_locally),
            ] {
                if !files.is_empty() {
                    out.push(format!("    {what}: {}", files.join(", ")));
                }
            }
        }
    }
    let changed: Vec<&RefDiff> = s
        .refs
        .iter()
        .filter(|r| r.state != RefState::Same)
        .collect();
    if !changed.is_empty() {
        out.push(String::new());
        for r in changed {
            let side = |c: &Option<String>| {
                c.as_deref()
                    .map_or("-".to_string(), |c| short(c).to_string())
            };
            out.push(format!(
                "ref {} of {}: local {}, remote {}",
                r.name,
                r.repo,
                side(&r.local),
                side(&r.remote)
            ));
        }
    }
    out.push(String::new());
    out.push(format!(
        "{} in sync, {} partial, {} local only, {} remote only, {} incomplete; {}",
        s.in_sync,
        s.partial,
        s.local_only,
        s.remote_only,
        s.incomplete,
        match s.refs_differ {
            0 => "refs agree".to_string(),
            1 => "1 ref differs".to_string(),
            n => format!("{n} refs differ"),
        }
    ));
    out.join("\n")
}
