//! The revisions `serve` answers for: resolved through the sources by the pull's own
//! resolution (with `--from-cache` a complete revision of the server's cache dir first; a ref
//! the bucket holds, or a commit with a manifest; the Hub after the remotes with `--fallback
//! hf-hub`), with the tree listing a push left beside the manifest, and kept in
//! memory by commit, which never changes. A ref is read again on every request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use super::git;
use super::routes::RepoName;
use crate::cache::trees::TreeListing;
use crate::cache::{is_commit_hash, is_safe_ref_name, RepoType};
use crate::hub::HubError;
use crate::net::TransferCtx;
use crate::text::error_chain;
use crate::transfer::pull::{resolve_through, Plan, PullError, Resolution, Target};
use crate::transfer::source::Sources;

/// Revisions kept in memory at most; the oldest half goes when full.
const KEPT: usize = 512;

/// One file of a revision as the Hub describes it.
#[derive(Debug, Clone)]
pub struct FileInfo {
    /// The blob's name: the LFS sha256, else the git blob id.
    pub blob: String,
    pub size: u64,
    /// The git blob id (an LFS file's is that of its pointer).
    pub blob_id: String,
}

impl FileInfo {
    pub fn is_lfs(&self) -> bool {
        self.blob.len() == 64
    }
}

/// A resolved revision: its commit, where it came from, its files and folders.
#[derive(Debug)]
pub struct Revision {
    pub repo: RepoName,
    pub commit: String,
    /// The source (index in the list) the revision was resolved from.
    pub tier: usize,
    pub files: BTreeMap<String, FileInfo>,
    /// Every folder (the root as `""`) with its git tree id.
    pub folders: BTreeMap<String, String>,
    /// The pull's plan of a revision a later source (the Hub) served, which `--write-through`
    /// fetches into the bucket ([`super::through`]).
    pub plan: Option<Plan>,
}

/// Why a revision cannot be served, as the Hub says it.
#[derive(Debug)]
pub enum Unresolved {
    RepoNotFound,
    RevisionNotFound(String),
    Gated(String),
    /// A source failed (unreachable, a refused manifest): not the client's fault.
    Failed(String),
}

type Key = (RepoType, String, String);

/// Revisions by commit, each with when it was kept (a counter).
type Kept = HashMap<Key, (u64, Arc<Revision>)>;

/// Resolved revisions by commit.
#[derive(Default)]
pub struct Revisions {
    kept: Mutex<(u64, Kept)>,
}

impl Revisions {
    fn get(&self, key: &Key) -> Option<Arc<Revision>> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.1.get(key).map(|(_, r)| r.clone())
    }

    fn keep(&self, key: Key, revision: Arc<Revision>) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.1.len() >= KEPT {
            let mut ages: Vec<u64> = kept.1.values().map(|(n, _)| *n).collect();
            ages.sort_unstable();
            let cut = ages[ages.len() / 2];
            kept.1.retain(|_, (n, _)| *n > cut);
        }
        kept.0 += 1;
        let n = kept.0;
        kept.1.insert(key, (n, revision));
    }

    /// The revision `revision` (a ref or a commit) of `repo`, from memory for a commit seen
    /// before, else through the sources.
    pub async fn resolve(
        &self,
        sources: &Sources,
        ctx: &TransferCtx,
        (cache_dir, allow_gated): (&std::path::Path, bool),
        repo: &RepoName,
        revision: &str,
    ) -> Result<Arc<Revision>, Unresolved> {
        let key = |commit: &str| (repo.repo_type, repo.id.clone(), commit.to_string());
        if is_commit_hash(revision) {
            if let Some(r) = self.get(&key(revision)) {
                return Ok(r);
            }
        }
        if !is_safe_ref_name(revision) {
            return Err(Unresolved::RevisionNotFound(format!(
                "Invalid rev id: {revision}"
            )));
        }
        let target = Target {
            repo_id: repo.id.clone(),
            repo_type: Some(repo.repo_type),
            revision: Some(revision.to_string()),
            files: Default::default(),
        };
        let mut notes = Vec::new();
        let resolved =
            resolve_through(sources, 0, cache_dir, &target, false, ctx, &mut notes).await;
        let mut plan = match resolved {
            Ok(Resolution::Plan(plan)) => *plan,
            Ok(Resolution::WouldFallBack { .. }) => unreachable!("not a dry run"),
            Err(e) => return Err(unresolved(sources, repo, revision, e).await),
        };
        if plan.gated == Some(true) && !allow_gated {
            return Err(Unresolved::Gated(format!(
                "{} is gated on the Hub; this server passes gated repos on only with \
                 team.allow_gated set",
                repo.id
            )));
        }
        if let Some(r) = self.get(&key(&plan.commit)) {
            return Ok(r);
        }
        if plan.listing.is_none() {
            crate::transfer::listings::read_listings(sources, ctx, std::slice::from_mut(&mut plan))
                .await;
        }
        let revision = Arc::new(revision_of(repo, plan, sources.home()));
        self.keep(key(&revision.commit), revision.clone());
        Ok(revision)
    }
}

/// The revision a plan describes: its manifest's files, with the blob ids of the tree listing
/// when it has one for the same blob, computed otherwise. The plan is kept for
/// `--write-through` when a source after the remote at `home` served it.
fn revision_of(repo: &RepoName, plan: Plan, home: usize) -> Revision {
    let kept = (plan.tier > home).then(|| plan.clone());
    let listing = plan
        .listing
        .as_deref()
        .and_then(|bytes| TreeListing::parse(bytes).ok());
    let files: BTreeMap<String, FileInfo> = plan
        .manifest
        .files
        .into_iter()
        .map(|f| {
            let listed = listing
                .as_ref()
                .and_then(|l| l.files.get(&f.path))
                .filter(|e| e.etag() == f.blob && e.content_size() == f.size);
            let blob_id = match listed {
                Some(e) => e.blob_id.clone(),
                None => git::blob_id(&f.blob, f.size),
            };
            let info = FileInfo {
                blob: f.blob,
                size: f.size,
                blob_id,
            };
            (f.path, info)
        })
        .collect();
    let folders = git::tree_ids(files.iter().map(|(p, f)| (p.as_str(), f.blob_id.as_str())));
    Revision {
        repo: repo.clone(),
        commit: plan.commit,
        tier: plan.tier,
        files,
        folders,
        plan: kept,
    }
}

/// What a failed resolution means to a client: the Hub's own answer when the Hub was the last
/// source asked; a repo the remotes hold under no commit is not found, one they hold is
/// missing the revision.
async fn unresolved(
    sources: &Sources,
    repo: &RepoName,
    revision: &str,
    e: PullError,
) -> Unresolved {
    let message = error_chain(&e);
    match e {
        PullError::Hub(HubError::RepoNotFound { .. } | HubError::Denied { .. }) => {
            Unresolved::RepoNotFound
        }
        PullError::Hub(HubError::RevisionNotFound { .. }) => {
            Unresolved::RevisionNotFound(format!("Invalid rev id: {revision}"))
        }
        PullError::OtherType { .. } => Unresolved::RepoNotFound,
        PullError::Missing(_) => {
            if on_a_remote(sources, &repo.id).await {
                Unresolved::RevisionNotFound(format!("Invalid rev id: {revision}"))
            } else {
                Unresolved::RepoNotFound
            }
        }
        PullError::Hub(_) | PullError::Remote(_) | PullError::Refused(_) | PullError::Local(_) => {
            Unresolved::Failed(message)
        }
    }
}

/// Whether a remote of the list holds a manifest of the repo, any commit, any type.
async fn on_a_remote(sources: &Sources, repo_id: &str) -> bool {
    let safe = crate::manifest::safe_repo_key(repo_id);
    for i in 0..sources.len() {
        let Some((remote, layout)) = sources.remote(i) else {
            continue;
        };
        let prefix = layout.manifest_commit_prefix(repo_id, "");
        if let Ok(listed) = remote.list(&prefix).await {
            if listed
                .iter()
                .filter_map(|o| layout.parse_manifest_key(&o.key))
                .any(|(s, _)| s == safe)
            {
                return true;
            }
        }
    }
    false
}
