//! Publishing a push's revisions once their blobs are on the remote: tree listings, then
//! manifests, then refs, each compared with what the remote holds first (same content is left
//! alone, another repo's is never overwritten).

use std::collections::{BTreeSet, HashMap};

use anyhow::Result;
use bytes::Bytes;

use super::{PushSummary, RevisionPlan};
use crate::cache::scan::Repo;
use crate::failure::Failure;
use crate::manifest::{safe_repo_key, Layout, Manifest};
use crate::net::TransferCtx;
use crate::remote::catalog::{Body, Catalog, ReadFailure, ReadMode};
use crate::remote::{Remote, RemoteError};
use crate::text::short;
use crate::transfer::pool;

/// Why a manifest or ref was not written.
enum PublishError {
    Remote(RemoteError),
    Refused(String),
}

impl From<RemoteError> for PublishError {
    fn from(e: RemoteError) -> Self {
        PublishError::Remote(e)
    }
}

impl pool::Fatal for PublishError {
    fn is_fatal(&self) -> bool {
        matches!(self, PublishError::Remote(e) if e.is_fatal())
    }
}

/// Files publish results in the summary; a fatal remote error ends the run instead.
fn record<I>(
    summary: &mut PushSummary,
    mut ran: pool::Ran<I, bool, PublishError>,
    item: impl Fn(&I) -> String,
    unchanged: fn(&mut PushSummary) -> &mut usize,
    written: fn(&mut PushSummary) -> &mut usize,
) -> Result<(), RemoteError> {
    if let Some(PublishError::Remote(e)) = ran.take_fatal() {
        return Err(e);
    }
    for (i, result) in ran.done {
        match result {
            Ok(true) => *written(summary) += 1,
            Ok(false) => *unchanged(summary) += 1,
            Err(PublishError::Remote(e)) => summary.failures.push(Failure::new(item(&i), e)),
            Err(PublishError::Refused(error)) => {
                summary.failures.push(Failure::message(item(&i), error))
            }
        }
    }
    Ok(())
}

/// Whether the remote already holds what we would write, or another repo's data.
enum Existing {
    Absent,
    Same,
    Ours,
    Foreign(String),
}

/// A ref to publish: the repo, its name and the commit it names.
type RefJob<'a> = (&'a Repo, &'a String, &'a String);

/// The refs of the pushed repos that name one of the planned revisions, with the repo's index.
fn ref_jobs<'a>(repos: &[&'a Repo], plans: &[&RevisionPlan]) -> Vec<(usize, RefJob<'a>)> {
    let planned: BTreeSet<(usize, &str)> = plans
        .iter()
        .map(|p| (p.repo_index, p.manifest.revision.as_str()))
        .collect();
    let mut jobs = Vec::new();
    for (index, repo) in repos.iter().enumerate() {
        for (name, commit) in &repo.refs {
            if planned.contains(&(index, commit.as_str())) {
                jobs.push((index, (*repo, name, commit)));
            }
        }
    }
    jobs
}

/// The remote's manifests and refs where the plans publish, read through the catalog: one LIST
/// each, and a GET only of those whose listing does not already prove them ours byte for byte.
async fn read_catalog<'r>(
    remote: &'r Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    plans: &[&RevisionPlan],
    refs: &[(usize, RefJob<'_>)],
) -> Result<Catalog<'r>, RemoteError> {
    let mut catalog = Catalog::list(remote, layout, false)
        .await?
        .reading(ctx.workers, ReadMode::Warn);
    let manifests: BTreeSet<(String, String)> = plans
        .iter()
        .map(|p| &p.manifest)
        .filter_map(|m| {
            let safe = safe_repo_key(&m.repo);
            let e = catalog.manifest_entry(&safe, &m.revision)?;
            (!e.object.holds(&m.to_json_bytes())).then(|| (safe, m.revision.clone()))
        })
        .collect();
    catalog
        .read_manifests(|safe, commit| manifests.contains(&(safe.to_string(), commit.to_string())))
        .await?;
    let refs: BTreeSet<(String, String)> = refs
        .iter()
        .filter_map(|(_, (repo, name, commit))| {
            let safe = safe_repo_key(&repo.repo_id);
            let e = catalog.ref_entry(&safe, name)?;
            (!e.object.holds(commit.as_bytes())).then(|| (safe, name.to_string()))
        })
        .collect();
    catalog
        .read_ref_targets(|safe, name| refs.contains(&(safe.to_string(), name.to_string())))
        .await?;
    Ok(catalog)
}

/// What the remote holds under the key manifest `m` would be written to, and what to write
/// there: `m`, or `m` with the files the remote's manifest of the same revision names beyond
/// it (a cache holding part of a revision never shrinks the remote's manifest).
fn manifest_state(
    catalog: &Catalog,
    key: &str,
    m: &Manifest,
) -> (Result<Existing, PublishError>, Vec<u8>) {
    let body = m.to_json_bytes();
    let Some(e) = catalog.manifest_entry(&safe_repo_key(&m.repo), &m.revision) else {
        return (Ok(Existing::Absent), body);
    };
    if e.object.holds(&body) {
        return (Ok(Existing::Same), body);
    }
    if let Body::Valid(current) = &e.body {
        if let Some(union) = m.union(current) {
            let state = if union.same_content(current) {
                Existing::Same
            } else {
                Existing::Ours
            };
            return (Ok(state), union.to_json_bytes());
        }
    }
    (manifest_existing(catalog, key, m, &e.body), body)
}

/// Whose the manifest at `key` is, when it differs from `m`.
fn manifest_existing(
    catalog: &Catalog,
    key: &str,
    m: &Manifest,
    body: &Body<Manifest>,
) -> Result<Existing, PublishError> {
    match body {
        Body::Failed(ReadFailure::Unreadable(err)) => Err(err.clone().into()),
        Body::Gone => Ok(Existing::Absent),
        _ => Ok(match catalog.owner_of_manifest_key(key) {
            Some((t, id)) if id != m.repo || t.as_str() != m.repo_type => {
                Existing::Foreign(format!("{t} {id}"))
            }
            _ => Existing::Ours,
        }),
    }
}

/// What the remote holds under the key a ref would be written to. Keys are ambiguous: the
/// manifest of the commit a ref names says whose it is, and another repo's is never taken over.
fn ref_state(catalog: &Catalog, key: &str, job: &RefJob) -> Result<Existing, PublishError> {
    let (repo, name, commit) = *job;
    let Some(e) = catalog.ref_entry(&safe_repo_key(&repo.repo_id), name) else {
        return Ok(Existing::Absent);
    };
    if e.object.holds(commit.as_bytes()) || e.commit() == Some(commit.as_str()) {
        return Ok(Existing::Same);
    }
    if let Body::Failed(ReadFailure::Unreadable(err)) = &e.body {
        return Err(err.clone().into());
    }
    Ok(match catalog.owner_of_ref_key(key) {
        Some((t, id)) if id != repo.repo_id || t != repo.repo_type => {
            Existing::Foreign(format!("{t} {id}"))
        }
        _ => Existing::Ours,
    })
}

/// Writes `body` at `key` unless the remote already holds it or another repo's data is there.
/// `Ok(true)`: written (or would be, in a dry run); `Ok(false)`: already there.
async fn publish(
    remote: &Remote,
    key: &str,
    state: Result<Existing, PublishError>,
    body: Vec<u8>,
    dry_run: bool,
) -> Result<bool, PublishError> {
    match state? {
        Existing::Same => Ok(false),
        Existing::Foreign(owner) => Err(PublishError::Refused(format!(
            "remote {key} belongs to {owner}; refusing to overwrite it"
        ))),
        Existing::Absent | Existing::Ours if dry_run => Ok(true),
        Existing::Absent | Existing::Ours => {
            remote.put(key, Bytes::from(body)).await?;
            Ok(true)
        }
    }
}

/// Writes each revision's tree listing the remote does not hold byte for byte (one LIST of
/// `trees/` tells): the sidecar a puller writes back beside the snapshot.
async fn publish_listings(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    plans: &[&RevisionPlan],
    dry_run: bool,
    summary: &mut PushSummary,
) -> Result<(), RemoteError> {
    if plans.iter().all(|p| p.listing.is_none()) {
        return Ok(());
    }
    let listed: HashMap<String, crate::remote::ObjectInfo> = remote
        .list(&layout.trees_prefix())
        .await?
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect();
    let jobs = plans
        .iter()
        .filter_map(|p| Some((&p.manifest, p.listing.as_ref()?)));
    let ran = pool::run(jobs, ctx.workers, async |(m, body)| {
        let key = layout.tree_key(&m.repo, &m.revision);
        let state = match listed.get(&key) {
            Some(o) if o.holds(body) => Existing::Same,
            Some(_) => Existing::Ours,
            None => Existing::Absent,
        };
        publish(remote, &key, Ok(state), body.to_vec(), dry_run).await
    })
    .await;
    record(
        summary,
        ran,
        |(m, _)| format!("{}@{} tree listing", m.repo, short(&m.revision)),
        |s| &mut s.trees_unchanged,
        |s| &mut s.trees,
    )
}

/// Writes the manifests, then the refs that name a revision now published: a reader that sees
/// a ref can rely on its manifest, and on every blob the manifest names.
pub(super) async fn publish_all(
    remote: &Remote,
    layout: &Layout,
    ctx: &TransferCtx,
    repos: &[&Repo],
    plans: &[&RevisionPlan],
    dry_run: bool,
    summary: &mut PushSummary,
) -> Result<(), RemoteError> {
    let refs = ref_jobs(repos, plans);
    let catalog = read_catalog(remote, layout, ctx, plans, &refs).await?;
    let catalog = &catalog;
    publish_listings(remote, layout, ctx, plans, dry_run, summary).await?;
    let ran = pool::run(plans.iter().copied(), ctx.workers, async |plan| {
        let m = &plan.manifest;
        let key = layout.manifest_key(&m.repo, &m.revision);
        let (state, body) = manifest_state(catalog, &key, m);
        publish(remote, &key, state, body, dry_run).await
    })
    .await;
    let published: BTreeSet<(usize, String)> = ran
        .done
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(p, _)| (p.repo_index, p.manifest.revision.clone()))
        .collect();
    record(
        summary,
        ran,
        |p| format!("{}@{}", p.manifest.repo, short(&p.manifest.revision)),
        |s| &mut s.manifests_unchanged,
        |s| &mut s.manifests,
    )?;
    let refs = refs
        .into_iter()
        .filter(|(i, (_, _, commit))| published.contains(&(*i, commit.to_string())))
        .map(|(_, job)| job);
    let ran = pool::run(refs, ctx.workers, async |job| {
        let (repo, name, commit) = *job;
        let key = layout.ref_key(&repo.repo_id, name);
        let state = ref_state(catalog, &key, job);
        publish(remote, &key, state, commit.clone().into_bytes(), dry_run).await
    })
    .await;
    record(
        summary,
        ran,
        |(repo, name, _)| format!("{} ref {name}", repo.repo_id),
        |s| &mut s.refs_unchanged,
        |s| &mut s.refs,
    )
}
