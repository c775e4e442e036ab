//! The pull engine: resolve a ref to a commit through the source list (the remotes in order,
//! then optionally the Hub), fetch and vet its manifest, fetch the missing blobs of one or many
//! revisions through one pool (each from the source its revision came from, a later source
//! standing in for a blob an earlier one lacks or serves corrupt), then build each snapshot, its
//! tree listing and ref. `pull` and `pull-all` drive it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::fetch::{sync_blob_dirs, with_leftovers, BlobFetch, BlobJob, Served};
use super::fleet::Fleet;
pub use super::plan::{Plan, Target};
use super::pool;
use super::push::PushPolicy;
pub use super::snapshot::{finish, in_cache};
use super::source::{Fallback, Source, Sources};
use crate::cache::lock::RepoLease;
use crate::cache::write::{check_inside, ensure_repo_dirs, WriteError};
use crate::cache::{is_commit_hash, is_safe_ref_name, repo_folder_name, repo_lock_path, RepoType};
use crate::config::ConfigError;
use crate::failure::Failure;
use crate::hub::{CommitFile, Hub, HubError};
use crate::manifest::{
    is_valid_repo_id, parse_ref_body, Layout, Manifest, MAX_MANIFEST_BYTES, MAX_REF_BYTES,
};
use crate::net::TransferCtx;
use crate::remote::{Remote, RemoteError};
use crate::report::lock_waiter;
use crate::task::blocking;
use crate::text::short;
use crate::transfer::TransferError;

/// Why one repo could not be pulled. Remote errors that affect every repo end the run instead.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Missing(String),
    /// The remote has the repo id as another type than `--repo-type` asked for.
    #[error("{repo_id} on the remote is a {found}, not a {asked} (manifest {manifest})")]
    OtherType {
        repo_id: String,
        found: RepoType,
        asked: RepoType,
        manifest: String,
    },
    /// Writing the snapshot or ref failed (a full disk, a read-only cache, a planted link).
    #[error(transparent)]
    Local(#[from] WriteError),
}

impl PullError {
    /// What to do about it, where the error alone does not say.
    pub fn hint(&self) -> Option<String> {
        match self {
            PullError::OtherType { found, asked, .. } => Some(format!(
                "drop --repo-type {asked} (the remote holds it as a {found}), or name the {asked} \
                 you meant"
            )),
            _ => None,
        }
    }
}

/// A blob job of one of the plans.
#[derive(Debug, Clone)]
pub struct PlanJob {
    pub plan: usize,
    pub blob: BlobJob,
}

/// Per-plan transfer counts.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    pub downloaded: usize,
    pub skipped_existing: usize,
    pub failed: usize,
    /// The sizes of the blobs downloaded: `bytes_transferred` plus `bytes_resumed`.
    pub bytes_downloaded: u64,
    /// Bytes that came from the sources in this run.
    pub bytes_transferred: u64,
    /// Bytes of partial downloads earlier runs left, which this run resumed from.
    pub bytes_resumed: u64,
    /// Blobs downloaded from a remote (any of the remotes in the source list).
    pub from_remote: usize,
    /// Blobs downloaded from the Hub.
    pub from_hub: usize,
}

impl Counts {
    /// `, 1.2 GiB of it resumed` when partial downloads were resumed, and `; 2 from the remote,
    /// 1 from the Hub` when the Hub served any blob, for summaries.
    pub fn by_source(&self) -> String {
        let mut out = String::new();
        if self.bytes_resumed > 0 {
            out += &format!(
                ", {} of it resumed",
                crate::report::human_bytes(self.bytes_resumed)
            );
        }
        if self.from_hub > 0 {
            out += &format!(
                "; {} from the remote, {} from the Hub",
                self.from_remote, self.from_hub
            );
        }
        out
    }
}

pub async fn get_manifest(
    remote: &Remote,
    layout: &Layout,
    repo_id: &str,
    commit: &str,
) -> Result<Option<Manifest>, PullError> {
    let key = layout.manifest_key(repo_id, commit);
    match remote.get(&key, MAX_MANIFEST_BYTES).await? {
        None => Ok(None),
        Some(bytes) => Manifest::parse(&bytes)
            .map(Some)
            .map_err(|e| PullError::Refused(format!("{key}: {e}"))),
    }
}

/// Resolves the revision and vets the manifest: nothing is written before this succeeds.
pub async fn resolve(
    remote: &Remote,
    layout: &Layout,
    cache_dir: &Path,
    target: &Target,
) -> Result<Plan, PullError> {
    if !is_valid_repo_id(&target.repo_id) {
        return Err(PullError::Refused(format!(
            "invalid repo id {:?}",
            target.repo_id
        )));
    }
    let revision = target.revision.as_deref().unwrap_or("main");
    let mut manifest = None;
    let mut ref_name = None;
    let commit = if is_commit_hash(revision) {
        manifest = get_manifest(remote, layout, &target.repo_id, revision).await?;
        revision.to_string()
    } else {
        if !is_safe_ref_name(revision) {
            return Err(PullError::Refused(format!("invalid revision {revision:?}")));
        }
        let key = layout.ref_key(&target.repo_id, revision);
        match remote.get(&key, MAX_REF_BYTES).await? {
            Some(body) => {
                ref_name = Some(revision.to_string());
                parse_ref_body(&body).ok_or_else(|| {
                    PullError::Refused(format!("{key}: ref body is not a commit hash"))
                })?
            }
            None if is_short_hash(revision) => {
                expand_short_hash(remote, layout, &target.repo_id, revision).await?
            }
            None => {
                return Err(PullError::Missing(format!(
                    "no ref {revision} for {} on the remote ({key}); push it first, or pass -r with a pushed commit",
                    target.repo_id
                )))
            }
        }
    };
    let manifest = match manifest {
        Some(m) => m,
        None => get_manifest(remote, layout, &target.repo_id, &commit)
            .await?
            .ok_or_else(|| {
                PullError::Missing(format!(
                    "no manifest for {}@{} on the remote ({})",
                    target.repo_id,
                    commit,
                    layout.manifest_key(&target.repo_id, &commit)
                ))
            })?,
    };
    plan_for(layout, cache_dir, target, manifest, commit, ref_name)
}

/// A revision that may be an abbreviated commit hash, as git takes them: 4 to 39 lowercase hex.
fn is_short_hash(revision: &str) -> bool {
    (4..40).contains(&revision.len())
        && revision
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The one commit of the repo on the remote whose hash starts with `short` (a revision with no
/// ref of that name), as git expands an abbreviated hash; several are named, none is missing.
async fn expand_short_hash(
    remote: &Remote,
    layout: &Layout,
    repo_id: &str,
    short: &str,
) -> Result<String, PullError> {
    let listed = remote
        .list(&layout.manifest_commit_prefix(repo_id, short))
        .await?;
    let safe = crate::manifest::safe_repo_key(repo_id);
    let mut commits: Vec<&str> = listed
        .iter()
        .filter_map(|o| layout.parse_manifest_key(&o.key))
        .filter(|(s, commit)| *s == safe && is_commit_hash(commit))
        .map(|(_, commit)| commit)
        .collect();
    commits.sort_unstable();
    commits.dedup();
    match commits[..] {
        [commit] => Ok(commit.to_string()),
        [] => Err(PullError::Missing(format!(
            "no ref {short} and no commit starting with {short} for {repo_id} on the remote; \
             `hf-cache-sync list --remote --revisions` shows what it holds"
        ))),
        _ => Err(PullError::Refused(format!(
            "{short} is the start of {} commits of {repo_id} on the remote: {}; pass more of \
             the hash",
            commits.len(),
            commits.join(", ")
        ))),
    }
}

/// Resolves the revision on the Hub: its commit (and whether the repo is gated), then the
/// commit's whole tree, which becomes both the manifest and the tree listing huggingface_hub
/// keeps. A partial file set never makes a listing.
pub async fn resolve_hub(hub: &Hub, cache_dir: &Path, target: &Target) -> Result<Plan, PullError> {
    let repo_type = target.repo_type.unwrap_or(RepoType::Model);
    let revision = target.revision.as_deref().unwrap_or("main");
    let info = hub.repo_info(repo_type, &target.repo_id, revision).await?;
    let listing = hub
        .list_tree(repo_type, &target.repo_id, &info.commit)
        .await?;
    let manifest =
        crate::hub::tree::manifest_from(&target.repo_id, repo_type, &info.commit, &listing)
            .map_err(|e| {
                PullError::Refused(format!(
                    "{}'s tree of {}@{} is refused: {e}",
                    hub.describe(),
                    target.repo_id,
                    info.commit
                ))
            })?;
    // huggingface_hub writes `refs/<revision>` for whatever was asked that is not the commit.
    let ref_name = (revision != info.commit).then(|| revision.to_string());
    let target = Target {
        repo_type: Some(repo_type),
        ..target.clone()
    };
    let mut plan = plan_for(
        &Layout::default(),
        cache_dir,
        &target,
        manifest,
        info.commit,
        ref_name,
    )?;
    plan.listing = Some(listing.to_json_bytes());
    plan.gated = Some(info.gated);
    Ok(plan)
}

/// How resolving through the source list ended.
pub enum Resolution {
    Plan(Box<Plan>),
    /// A dry run whose first source lacks the revision: which source a pull would ask next,
    /// and why. Nothing later in the list is asked in a dry run.
    WouldFallBack {
        to: String,
        why: String,
    },
}

/// Resolves the revision from the first source from `first` on that has it. A source that lacks it (or whose
/// manifest or ref is refused, or that keeps failing) hands over to the next, with a warning
/// logged and kept in `notes`; a set-up error (rejected credentials, a missing bucket, a denied
/// read) ends the pull, as does the last source's failure.
pub async fn resolve_through(
    sources: &Sources,
    first: usize,
    cache_dir: &Path,
    target: &Target,
    dry_run: bool,
    ctx: &TransferCtx,
    notes: &mut Vec<String>,
) -> Result<Resolution, PullError> {
    check_target(target)?;
    let mut tier = first;
    loop {
        let source = sources.get(tier);
        let result = match source {
            Source::Remote { remote, layout } => resolve(remote, layout, cache_dir, target).await,
            Source::Hub(hub) => resolve_hub(hub, cache_dir, target).await,
            Source::Cache { dir } => super::cache_source::resolve(dir, target),
        };
        let e = match result {
            Ok(mut plan) => {
                plan.tier = tier;
                return Ok(Resolution::Plan(Box::new(plan)));
            }
            Err(e) => e,
        };
        let why = match &e {
            PullError::Missing(_) | PullError::Refused(_) | PullError::OtherType { .. } => {
                Some(Fallback::Missing)
            }
            PullError::Remote(re) => Fallback::of_remote(re),
            PullError::Hub(_) | PullError::Local(_) => None,
        };
        let Some(why) = why.filter(|_| tier + 1 < sources.len()) else {
            return Err(e);
        };
        if why == Fallback::Down {
            sources.mark_down(tier);
        }
        let next = sources.get(tier + 1).describe();
        let why = format!("{}: {}", source.describe(), crate::text::error_chain(&e));
        if dry_run {
            return Ok(Resolution::WouldFallBack { to: next, why });
        }
        let note = format!("{why}; trying {next}");
        // A cache dir asked first lacks most revisions: not worth a warning each time.
        if !matches!((source, &e), (Source::Cache { .. }, PullError::Missing(_))) {
            ctx.progress.log(&format!("warning: {note}"));
        }
        notes.push(note);
        tier += 1;
    }
}

/// The repo id and revision are safe to use in keys, URLs and paths.
fn check_target(target: &Target) -> Result<(), PullError> {
    if !is_valid_repo_id(&target.repo_id) {
        return Err(PullError::Refused(format!(
            "invalid repo id {:?}",
            target.repo_id
        )));
    }
    match target.revision.as_deref() {
        Some(r) if !is_safe_ref_name(r) => {
            Err(PullError::Refused(format!("invalid revision {r:?}")))
        }
        _ => Ok(()),
    }
}

/// The plan for a manifest already read (by [`resolve`], or from the remote catalog): checks it
/// describes what was asked for and that everything it writes stays inside the cache dir.
pub fn plan_for(
    layout: &Layout,
    cache_dir: &Path,
    target: &Target,
    manifest: Manifest,
    commit: String,
    ref_name: Option<String>,
) -> Result<Plan, PullError> {
    if manifest.repo != target.repo_id || manifest.revision != commit {
        return Err(PullError::Refused(format!(
            "manifest {} describes {}@{}, not {}@{}",
            layout.manifest_key(&target.repo_id, &commit),
            manifest.repo,
            manifest.revision,
            target.repo_id,
            commit
        )));
    }
    let repo_type = manifest.repo_type().expect("validated");
    if let Some(wanted) = target.repo_type {
        if wanted != repo_type {
            return Err(PullError::OtherType {
                repo_id: target.repo_id.clone(),
                found: repo_type,
                asked: wanted,
                manifest: layout.manifest_key(&target.repo_id, &commit),
            });
        }
    }
    let folder = repo_folder_name(repo_type, &target.repo_id);
    let files_in_revision = manifest.files.len();
    let manifest = target.files.select(manifest).map_err(PullError::Missing)?;
    let plan = Plan {
        repo_id: target.repo_id.clone(),
        repo_type,
        commit,
        ref_name,
        manifest,
        files_in_revision,
        repo_dir: cache_dir.join(&folder),
        folder,
        tier: 0,
        listing: None,
        gated: None,
        copies: false,
    };
    check_plan_paths(cache_dir, &plan)?;
    Ok(plan)
}

/// Every folder the plan writes into stays inside the cache dir: a link planted in the local
/// cache (a snapshot folder pointing at `/etc`, say) refuses the pull before anything is written.
pub(super) fn check_plan_paths(cache_dir: &Path, plan: &Plan) -> Result<(), PullError> {
    let snapshot = plan.repo_dir.join("snapshots").join(&plan.commit);
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    dirs.insert(plan.repo_dir.join("blobs"));
    dirs.insert(cache_dir.join(".locks").join(&plan.folder));
    dirs.insert(snapshot.clone());
    for f in &plan.manifest.files {
        if let Some(parent) = snapshot.join(&f.path).parent() {
            dirs.insert(parent.to_path_buf());
        }
    }
    let refs = plan.repo_dir.join("refs");
    match plan
        .ref_name
        .as_deref()
        .and_then(|n| refs.join(n).parent().map(Path::to_path_buf))
    {
        Some(parent) => dirs.insert(parent),
        None => dirs.insert(refs),
    };
    for dir in &dirs {
        check_inside(cache_dir, dir).map_err(|e| {
            PullError::Refused(format!("{e} (pulling {}@{})", plan.repo_id, plan.commit))
        })?;
    }
    Ok(())
}

/// Blobs the plan needs that are not already in the cache, each with a file of the revision
/// that holds it (how the Hub is asked for it).
pub fn missing_blobs(index: usize, plan: &Plan, counts: &mut Counts) -> Vec<PlanJob> {
    let mut unique: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    for f in &plan.manifest.files {
        unique.entry(&f.blob).or_insert((f.size, &f.path));
    }
    let mut jobs = Vec::new();
    for (etag, (size, path)) in unique {
        if in_cache(plan, etag, size) {
            counts.skipped_existing += 1;
        } else {
            jobs.push(PlanJob {
                plan: index,
                blob: BlobJob {
                    etag: etag.to_string(),
                    size,
                    repo_dir: plan.repo_dir.clone(),
                    folder: plan.folder.clone(),
                    replace: false,
                    leftovers: Default::default(),
                    named_by: Some(CommitFile {
                        repo_type: plan.repo_type,
                        repo_id: plan.repo_id.clone(),
                        commit: plan.commit.clone(),
                        path: path.to_string(),
                    }),
                },
            });
        }
    }
    jobs
}

/// Fetches every job through one pool, largest first: they set the run's length, small ones
/// fill the gaps. Each blob comes from its revision's source, or a later one standing in for
/// it. A fatal error stops the rest.
pub async fn download(
    sources: &Sources,
    cache_dir: &Path,
    ctx: &TransferCtx,
    (plans, fleet): (&[Plan], &Fleet),
    mut jobs: Vec<PlanJob>,
    notes: &std::sync::Mutex<Vec<String>>,
) -> pool::Ran<PlanJob, Served, TransferError> {
    ctx.progress
        .add_total(jobs.len() as u64, jobs.iter().map(|j| j.blob.size).sum());
    jobs.sort_by_key(|j| std::cmp::Reverse(j.blob.size));
    let ran = pool::run(jobs, ctx.workers, async |job| {
        let first = plans[job.plan].tier;
        let result = fleet
            .fetch((job.plan, first), sources, cache_dir, ctx, &job.blob, notes)
            .await;
        ctx.progress.item_done();
        result
    })
    .await;
    let fetched = ran
        .done
        .iter()
        .filter(|(_, r)| matches!(r, Ok(s) if matches!(s.fetched, BlobFetch::Downloaded { .. })))
        .map(|(job, _)| &job.blob);
    sync_blob_dirs(fetched).await;
    ran
}

/// Folds job results into per-plan counts and failures; the first fatal error is the run's.
pub fn tally(
    mut ran: pool::Ran<PlanJob, Served, TransferError>,
    sources: &Sources,
    counts: &mut [Counts],
    failures: &mut Vec<(usize, Failure)>,
) -> Option<TransferError> {
    let fatal = ran.take_fatal();
    for (job, result) in ran.done {
        let c = &mut counts[job.plan];
        match result {
            Ok(Served {
                tier,
                fetched:
                    BlobFetch::Downloaded {
                        transferred,
                        resumed,
                    },
            }) => {
                c.downloaded += 1;
                c.bytes_downloaded += transferred + resumed;
                c.bytes_transferred += transferred;
                c.bytes_resumed += resumed;
                if sources.get(tier).is_hub() {
                    c.from_hub += 1;
                } else {
                    c.from_remote += 1;
                }
            }
            Ok(Served {
                fetched: BlobFetch::AlreadyThere,
                ..
            }) => c.skipped_existing += 1,
            Err(e) => {
                c.failed += 1;
                failures.push((job.plan, Failure::new(format!("blob {}", job.blob.etag), e)));
            }
        }
    }
    for job in ran.not_started {
        counts[job.plan].failed += 1;
    }
    fatal
}

/// The shared leases on the repos a pull writes into ([`repo_lock_path`]). While they are held,
/// prune and rm leave those repos alone, so nothing they delete can be a blob the pull has just
/// written but not yet linked, or a revision it is still building. Hold them until
/// [`finish`] is done.
pub struct RepoLeases {
    _leases: Vec<RepoLease>,
}

/// Takes the shared lock of each plan's repo, waiting (bounded) while a prune or rm holds one.
/// Returns the locks and the plans that could not be locked, with why.
async fn lease_repos(
    cache_dir: &Path,
    ctx: &TransferCtx,
    plans: &[Plan],
) -> (RepoLeases, Vec<(usize, Failure)>) {
    let mut locks = Vec::new();
    let mut failures = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        let path = repo_lock_path(cache_dir, &plan.folder);
        let timeout = ctx.lock_timeout;
        let on_wait = lock_waiter(
            ctx.progress.clone(),
            path.clone(),
            format!("a prune or rm of {} is running", plan.repo_id),
            timeout,
        );
        match blocking(move || RepoLease::wait(&path, timeout, on_wait)).await {
            Ok(lock) => locks.push(lock),
            Err(e) => failures.push((
                i,
                Failure::new(format!("{}@{}", plan.repo_id, short(&plan.commit)), e),
            )),
        }
    }
    (RepoLeases { _leases: locks }, failures)
}

/// What [`fetch_plans`] did: per-plan counts, the failed items, and the repo locks to hold
/// until the snapshots are built.
pub struct FetchedPlans {
    pub counts: Vec<Counts>,
    pub failures: Vec<(usize, Failure)>,
    pub leases: RepoLeases,
    /// The plans' leases in the bucket: release each once its revision is written through.
    pub fleet: Fleet,
    /// Blobs a later source stood in for, and why.
    pub notes: Vec<String>,
}

/// Fetches what the plans lack through one pool (or only counts it, for a dry run), under the
/// plans' repo locks. With `write_through` (its policy), what the Hub serves is fetched once
/// for every node pulling it at the same time ([`Fleet`]). A fatal remote error ends the run
/// instead.
pub async fn fetch_plans(
    sources: &Sources,
    cache_dir: &Path,
    ctx: &TransferCtx,
    plans: &mut [Plan],
    (dry_run, write_through): (bool, Option<&PushPolicy>),
) -> Result<FetchedPlans> {
    let mut counts = vec![Counts::default(); plans.len()];
    if dry_run {
        for (i, plan) in plans.iter().enumerate() {
            for job in missing_blobs(i, plan, &mut counts[i]) {
                counts[i].downloaded += 1;
                counts[i].bytes_downloaded += job.blob.size;
                counts[i].bytes_transferred += job.blob.size;
            }
        }
        ctx.progress.finish();
        return Ok(FetchedPlans {
            counts,
            failures: Vec::new(),
            leases: RepoLeases {
                _leases: Vec::new(),
            },
            fleet: Fleet::none(plans.len()),
            notes: Vec::new(),
        });
    }
    let unwritable = |what: &str, e: std::io::Error| ConfigError::Usage {
        message: format!("cannot {what} cache dir {}: {e}", cache_dir.display()),
        hint: "point --cache-dir (or HF_HUB_CACHE) at a folder you may write to".into(),
    };
    std::fs::create_dir_all(cache_dir).map_err(|e| unwritable("create", e))?;
    // A cache dir that exists but may not be written (another user's, a read-only mount) is
    // the same mistake as one that cannot be made: said once, before any repo fails on it.
    crate::cache::temp::probe_writable(cache_dir).map_err(|e| unwritable("write to", e))?;
    let (leases, mut failures) = lease_repos(cache_dir, ctx, plans).await;
    // The folders every blob of a repo goes into, once a repo rather than once a blob.
    let repo_dirs: Vec<(usize, PathBuf)> = plans
        .iter()
        .enumerate()
        .filter(|(i, _)| !failures.iter().any(|(p, _)| p == i))
        .map(|(i, plan)| (i, plan.repo_dir.clone()))
        .collect();
    let made = blocking(move || {
        repo_dirs
            .into_iter()
            .filter_map(|(i, dir)| ensure_repo_dirs(&dir).err().map(|e| (i, e)))
            .collect::<Vec<_>>()
    })
    .await;
    for (i, e) in made {
        let plan = &plans[i];
        let item = format!("{}@{}", plan.repo_id, short(&plan.commit));
        failures.push((i, Failure::new(item, e)));
    }
    // What is missing is decided under the lock: a prune that ran just before may have removed
    // blobs that were there when the plans were made.
    let mut jobs = Vec::new();
    for (i, plan) in plans.iter().enumerate() {
        if !failures.iter().any(|(p, _)| *p == i) {
            jobs.extend(missing_blobs(i, plan, &mut counts[i]));
        }
    }
    let jobs = blocking(move || {
        let mut jobs = jobs;
        with_leftovers(jobs.iter_mut().map(|j| &mut j.blob));
        jobs
    })
    .await;
    let notes = std::sync::Mutex::new(super::listings::read_listings(sources, ctx, plans).await);
    let plans = &*plans;
    let fleet = match write_through {
        Some(policy) if !jobs.is_empty() => {
            Fleet::gather(sources, plans, policy, &notes, ctx).await
        }
        _ => Fleet::none(plans.len()),
    };
    let ran = download(sources, cache_dir, ctx, (plans, &fleet), jobs, &notes).await;
    let fatal = tally(ran, sources, &mut counts, &mut failures);
    ctx.progress.finish();
    if let Some(fatal) = fatal {
        return Err(fatal.into());
    }
    Ok(FetchedPlans {
        counts,
        failures,
        leases,
        fleet,
        notes: notes.into_inner().expect("not poisoned"),
    })
}
