//! `pull-all`: every remote repo with a `main` ref. The remote catalog reads the refs and the
//! manifests they name concurrently, then all revisions are fetched and landed through one
//! pool by [`fetch_and_land`]; a repo that fails does not stop the others.

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::pull::{fetch_and_land, Landing};
use super::repos::REMOTE_LIST_HINT;
use super::{planned_downloads, Env, FallbackOptions, RepoFilter, TransferOptions};
use crate::cache::RepoType;
use crate::manifest::Layout;
use crate::net::TransferCtx;
use crate::remote::catalog::{
    repo_id_from_key, Body, Catalog, ManifestEntry, ReadFailure, ReadMode, RefEntry,
};
use crate::remote::{Remote, RemoteError};
use crate::transfer::pull::{self, Counts, Plan, PullError, Resolution, Target};
use crate::transfer::source::{Fallback, Sources};
use crate::transfer::write_through::Written;
use crate::transfer::PlannedRevision;

pub struct PullAllOptions {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub limit: Option<usize>,
    pub transfer: TransferOptions,
    pub fallback: FallbackOptions,
}

#[derive(Debug, Serialize)]
pub struct RepoResult {
    /// `type/org/name`, as every JSON document names a repo; `org/name` when only a key name
    /// says which repo it is (its manifest could not be read).
    pub repo: String,
    pub repo_type: Option<RepoType>,
    pub repo_id: String,
    pub revision: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Where the revision came from: the remote, or the fallback that had it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What a fallback served, written to the remotes before it (`--write-through`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub write_through: Vec<Written>,
}

#[derive(Debug, Serialize)]
pub struct PullAllSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub repos: Vec<RepoResult>,
    pub downloaded: usize,
    pub skipped_existing: usize,
    pub failed: usize,
    pub bytes_downloaded: u64,
    pub bytes_transferred: u64,
    pub bytes_resumed: u64,
    pub seconds: f64,
    /// What made the pull turn to a later source (a corrupt blob by key, a missing revision).
    pub warnings: Vec<String>,
    /// Dry run only: what each repo would download.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Vec<PlannedRevision>>,
    /// What the repo filter left out for nothing, for stderr.
    #[serde(skip)]
    pub notes: Vec<String>,
}

/// Pulls the `main` revision of every repo on the remote the filter selects.
pub async fn pull_all(env: &Env<'_>, opts: PullAllOptions) -> Result<PullAllSummary> {
    let started = Instant::now();
    let filter = RepoFilter::new(&opts.include, &opts.exclude)?;
    let sources = env.open_sources(opts.transfer.remote.as_deref(), &opts.fallback)?;
    let ctx = env.transfer_ctx(&opts.transfer, "pull-all");
    let cache_dir = &env.settings.cache_dir;
    let dry_run = opts.transfer.dry_run;
    let mut warnings = Vec::new();
    let (listed_at, mut plans, mut repos, ids) =
        list_mains(&sources, cache_dir, &ctx, &filter, &mut warnings).await?;
    let place = sources.get(listed_at).describe();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut notes = filter.check(&ids, plans.len() + repos.len(), &place, REMOTE_LIST_HINT)?;
    if ids.is_empty() {
        notes.push(format!(
            "no repo on {place} has a main ref: nothing to pull"
        ));
    }
    if !dry_run {
        // What the listed remote cannot give (no manifest, one refused), the sources after it may.
        repos = fall_back(
            &sources,
            listed_at,
            cache_dir,
            &ctx,
            repos,
            &mut plans,
            &mut warnings,
        )
        .await;
    }
    plans.sort_by(|a, b| (&a.repo_id, a.repo_type).cmp(&(&b.repo_id, b.repo_type)));
    if let Some(limit) = opts.limit {
        plans.truncate(limit);
    }
    let planned = dry_run.then(|| planned_downloads(&plans));
    let landings = plans
        .into_iter()
        .map(|plan| Landing {
            plan,
            local_dir: None,
        })
        .collect();
    let write_through = env.write_through(&opts.fallback);
    let (landed, fell_back) =
        fetch_and_land(env, &sources, landings, &ctx, &opts.transfer, write_through).await?;
    warnings.extend(fell_back);
    for landed in landed {
        let plan = &landed.plan;
        let error = landed.error_text();
        repos.push(RepoResult {
            repo: format!("{}/{}", plan.repo_type, plan.repo_id),
            repo_type: Some(plan.repo_type),
            repo_id: plan.repo_id.clone(),
            revision: Some(plan.commit.clone()),
            status: if error.is_some() { "failed" } else { "ok" },
            error,
            source: Some(sources.get(plan.tier).url()),
            counts: landed.counts,
            write_through: landed.written,
        });
    }
    repos.sort_by(|a, b| a.repo.cmp(&b.repo));

    let failed = repos.iter().filter(|r| r.status == "failed").count();
    Ok(PullAllSummary {
        command: "pull-all",
        remote: sources.primary().url(),
        dry_run: opts.transfer.dry_run,
        warnings,
        downloaded: repos.iter().map(|r| r.counts.downloaded).sum(),
        skipped_existing: repos.iter().map(|r| r.counts.skipped_existing).sum(),
        bytes_downloaded: repos.iter().map(|r| r.counts.bytes_downloaded).sum(),
        bytes_transferred: repos.iter().map(|r| r.counts.bytes_transferred).sum(),
        bytes_resumed: repos.iter().map(|r| r.counts.bytes_resumed).sum(),
        failed,
        repos,
        seconds: started.elapsed().as_secs_f64(),
        planned,
        notes,
    })
}

/// The plans of the first remote that can be listed: one that cannot be reached or keeps
/// failing hands over to the next remote in the list (never on a set-up error). Returns the
/// index of the remote listed, and the ids of its repos with a `main` ref.
async fn list_mains(
    sources: &Sources,
    cache_dir: &Path,
    ctx: &TransferCtx,
    filter: &RepoFilter,
    warnings: &mut Vec<String>,
) -> Result<(usize, Vec<Plan>, Vec<RepoResult>, Vec<String>)> {
    let mut tier = 0;
    loop {
        let (remote, layout) = sources.remote(tier).expect("listed sources are remotes");
        let e = match main_plans(remote, layout, cache_dir, ctx, filter).await {
            Ok((mut plans, repos, ids)) => {
                plans.iter_mut().for_each(|p| p.tier = tier);
                return Ok((tier, plans, repos, ids));
            }
            Err(e) => e,
        };
        let next = tier + 1;
        let listable = next < sources.len() && sources.remote(next).is_some();
        let falls_back = e
            .downcast_ref::<RemoteError>()
            .and_then(Fallback::of_remote)
            .is_some();
        if !(listable && falls_back) {
            return Err(e);
        }
        let note = format!(
            "cannot list {}: {e:#}; listing {} instead",
            remote.describe(),
            sources.get(next).describe()
        );
        ctx.progress.log(&format!("warning: {note}"));
        warnings.push(note);
        sources.mark_down(tier);
        tier = next;
    }
}

/// Each repo the listed remote could not give (its manifest missing or refused) resolved
/// through the sources after it instead; the repos still failed are returned.
async fn fall_back(
    sources: &Sources,
    listed_at: usize,
    cache_dir: &Path,
    ctx: &TransferCtx,
    failed: Vec<RepoResult>,
    plans: &mut Vec<Plan>,
    warnings: &mut Vec<String>,
) -> Vec<RepoResult> {
    if listed_at + 1 >= sources.len() {
        return failed;
    }
    let mut still = Vec::new();
    for mut r in failed {
        let target = Target {
            repo_id: r.repo.clone(),
            repo_type: None,
            revision: Some("main".into()),
            files: Default::default(),
        };
        let first = listed_at + 1;
        match pull::resolve_through(sources, first, cache_dir, &target, false, ctx, warnings).await
        {
            Ok(Resolution::Plan(plan)) => {
                let note = format!(
                    "{}: {}; fetching it from {}",
                    r.repo,
                    r.error.take().unwrap_or_default(),
                    sources.get(plan.tier).describe()
                );
                ctx.progress.log(&format!("warning: {note}"));
                warnings.push(note);
                plans.push(*plan);
            }
            Ok(Resolution::WouldFallBack { .. }) => still.push(r),
            Err(e) => {
                r.error = Some(format!("{}; then: {e}", r.error.take().unwrap_or_default()));
                still.push(r);
            }
        }
    }
    still
}

/// A plan for every remote repo with a `main` ref that `filter` selects, sorted by repo, a
/// failed result for each selected one that cannot be pulled, and the ids of every repo with a
/// `main` ref, selected or not. The remote catalog reads the refs and the manifests they name
/// once; a fatal remote error ends the run.
async fn main_plans(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    ctx: &TransferCtx,
    filter: &RepoFilter,
) -> Result<(Vec<Plan>, Vec<RepoResult>, Vec<String>)> {
    let mut catalog = Catalog::list(remote, layout, false)
        .await?
        .reading(ctx.workers, ReadMode::Warn);
    catalog.read_ref_targets(|_, name| name == "main").await?;
    let mut plans = Vec::new();
    let mut failed = Vec::new();
    let mut ids = Vec::new();
    for r in catalog.refs().filter(|r| r.name == "main") {
        // The key cannot tell `a__b/c` from `a/b__c`; the manifest of the commit can.
        let guess = repo_id_from_key(&r.safe);
        let plan = main_plan(&catalog, layout, cache_dir, r);
        ids.push(plan.as_ref().map_or(guess.clone(), |p| p.repo_id.clone()));
        match plan {
            Ok(plan) if filter.matches(&plan.repo_id) => plans.push(plan),
            Ok(_) => {}
            Err(PullError::Remote(e)) if e.is_fatal() => return Err(e.into()),
            Err(e) if filter.matches(&guess) => failed.push(RepoResult {
                repo: guess.clone(),
                repo_type: None,
                repo_id: guess,
                revision: None,
                status: "failed",
                error: Some(e.to_string()),
                counts: Counts::default(),
                source: None,
                write_through: Vec::new(),
            }),
            Err(_) => {}
        }
    }
    plans.sort_by(|a, b| (&a.repo_id, a.repo_type).cmp(&(&b.repo_id, b.repo_type)));
    Ok((plans, failed, ids))
}

/// The plan for the revision a `main` ref names, from the manifest the catalog read for it.
fn main_plan(
    catalog: &Catalog,
    layout: &Layout,
    cache_dir: &Path,
    r: &RefEntry,
) -> Result<Plan, PullError> {
    let commit = match &r.body {
        Body::Valid(commit) => commit,
        Body::Failed(ReadFailure::Unreadable(e)) => return Err(PullError::Remote(e.clone())),
        Body::Failed(f) => return Err(PullError::Refused(format!("{}: {f}", r.key))),
        Body::Gone | Body::Unread => {
            return Err(PullError::Missing(format!("{} disappeared", r.key)))
        }
    };
    let Some(manifest) = catalog.manifest_named_by(r) else {
        return Err(match catalog.manifest_entry(&r.safe, commit) {
            Some(ManifestEntry {
                body: Body::Failed(ReadFailure::Unreadable(e)),
                ..
            }) => PullError::Remote(e.clone()),
            Some(ManifestEntry {
                key,
                body: Body::Failed(f),
                ..
            }) => PullError::Refused(format!("{key}: {f}")),
            _ => PullError::Missing(format!(
                "no manifest for {}@{commit} on the remote",
                repo_id_from_key(&r.safe)
            )),
        });
    };
    let target = Target {
        repo_id: manifest.repo.clone(),
        repo_type: None,
        revision: Some("main".into()),
        files: Default::default(),
    };
    pull::plan_for(
        layout,
        cache_dir,
        &target,
        manifest.clone(),
        commit.clone(),
        Some("main".into()),
    )
}
