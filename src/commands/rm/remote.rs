//! `rm --remote`: deletes manifests and refs from the bucket (refs first, so no reader sees a
//! ref whose manifest is gone). Blobs stay: other revisions may share them.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::{
    ambiguous, looks_like_hash_prefix, parse_target, unknown_target, ResolvedTarget, RmOptions,
    Target, REVISION_HINT, TYPE_HINT,
};
use crate::cache::delete::KeptEntry;
use crate::cache::RepoType;
use crate::commands::deletion::{ask, plural};
use crate::commands::{short, App, Failure, Outcome, RepoRef};
use crate::config::ConfigError;
use crate::manifest::{
    parse_ref_body, safe_repo_key, Layout, Manifest, MAX_MANIFEST_BYTES, MAX_REF_BYTES,
};
use crate::remote::{Remote, RemoteError};

/// Manifests and refs read at once from the remote.
const REMOTE_READS: usize = 8;

#[derive(Debug, Serialize)]
pub struct RemoteRmSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub targets: Vec<ResolvedTarget>,
    /// Ref keys deleted (or, for a dry run, to delete), before the manifests.
    pub refs: Vec<String>,
    pub manifests: Vec<String>,
    pub kept: Vec<KeptEntry>,
    pub failures: Vec<Failure>,
}

/// A manifest on the remote: its key, commit and (once read) body.
struct RemoteManifest {
    key: String,
    safe: String,
    commit: String,
    manifest: Option<Manifest>,
}

/// A ref on the remote and the commit it names.
struct RemoteRef {
    key: String,
    safe: String,
    name: String,
    commit: Option<String>,
}

pub(super) async fn run(app: &App, opts: &RmOptions) -> Result<Outcome> {
    let (remote, layout) = app.open_remote(None)?;
    let place = remote.describe();
    let (mut manifests, mut refs) = list_catalog(&remote, &layout).await?;
    let wanted_safes = wanted_safes(&opts.targets, &manifests, &refs);
    read_bodies(&remote, &mut manifests, &mut refs, &wanted_safes).await?;

    let mut targets = Vec::new();
    // (safe, commit) of the revisions to delete, and the repos (by safe key) whose dangling refs go.
    let mut doomed: BTreeSet<(String, String)> = BTreeSet::new();
    let mut whole_repos: BTreeMap<String, (RepoType, String)> = BTreeMap::new();
    for text in &opts.targets {
        let (target, whole) = resolve_remote(text, &manifests, &refs, &place)?;
        for c in &target.commits {
            doomed.insert((safe_repo_key(&target.repo), c.clone()));
        }
        if whole {
            whole_repos.insert(
                safe_repo_key(&target.repo),
                (target.repo_type, target.repo.clone()),
            );
        }
        targets.push(target);
    }
    let doomed_refs = DoomedRefs {
        manifests: &manifests,
        refs: &refs,
        wanted_safes: &wanted_safes,
        doomed: &doomed,
        whole_repos: &whole_repos,
    };
    let (kept, ref_keys) = doomed_refs.select();
    let manifest_keys: Vec<String> = manifests
        .iter()
        .filter(|m| doomed.contains(&(m.safe.clone(), m.commit.clone())))
        .map(|m| m.key.clone())
        .collect();

    if !opts.dry_run {
        let mut lines: Vec<String> = ref_keys.iter().map(|k| format!("  {k}")).collect();
        lines.extend(manifest_keys.iter().map(|k| format!("  {k}")));
        let question = format!(
            "Delete {} and {} from {place}?",
            plural(ref_keys.len(), "ref", "refs"),
            plural(manifest_keys.len(), "manifest", "manifests")
        );
        if !ask(app, &lines, &question, opts.yes).await? {
            return Ok(Outcome::Failed);
        }
    }

    let mut summary = RemoteRmSummary {
        command: "rm",
        remote: place.clone(),
        dry_run: opts.dry_run,
        targets,
        refs: Vec::new(),
        manifests: Vec::new(),
        kept,
        failures: Vec::new(),
    };
    if opts.dry_run {
        summary.refs = ref_keys;
        summary.manifests = manifest_keys;
    } else {
        delete_keys(&remote, &manifests, &refs, &doomed, ref_keys, &mut summary).await?;
    }
    let outcome = Outcome::from_failures(summary.failures.len());
    app.printer.result(&summary, || human(&summary));
    Ok(outcome)
}

/// One LIST each of manifests/ and refs/, as keys (bodies are read later, for the keys that
/// matter).
async fn list_catalog(
    remote: &Remote,
    layout: &Layout,
) -> Result<(Vec<RemoteManifest>, Vec<RemoteRef>)> {
    let (manifests_prefix, refs_prefix) = (layout.manifests_prefix(), layout.refs_prefix());
    let (manifest_objs, ref_objs) =
        tokio::try_join!(remote.list(&manifests_prefix), remote.list(&refs_prefix))?;
    let manifests: Vec<RemoteManifest> = manifest_objs
        .into_iter()
        .filter_map(|o| {
            let (safe, commit) = layout.parse_manifest_key(&o.key)?;
            Some(RemoteManifest {
                safe: safe.to_string(),
                commit: commit.to_string(),
                key: o.key,
                manifest: None,
            })
        })
        .collect();
    let refs: Vec<RemoteRef> = ref_objs
        .into_iter()
        .filter_map(|o| {
            let (safe, name) = layout.parse_ref_key(&o.key)?;
            Some(RemoteRef {
                safe: safe.to_string(),
                name: name.to_string(),
                key: o.key.clone(),
                commit: None,
            })
        })
        .collect();
    Ok((manifests, refs))
}

/// Which keys each target could concern, before reading any bodies.
fn wanted_safes(
    texts: &[String],
    manifests: &[RemoteManifest],
    refs: &[RemoteRef],
) -> BTreeSet<String> {
    let mut wanted_safes: BTreeSet<String> = BTreeSet::new();
    for text in texts {
        match parse_target(text) {
            Target::Name(name) => {
                let r = RepoRef::parse(name);
                let safe = safe_repo_key(&r.repo_id);
                let known =
                    manifests.iter().any(|m| m.safe == safe) || refs.iter().any(|x| x.safe == safe);
                if known {
                    wanted_safes.insert(safe);
                } else if looks_like_hash_prefix(name) {
                    let prefix = name.to_ascii_lowercase();
                    wanted_safes.extend(
                        manifests
                            .iter()
                            .filter(|m| m.commit.starts_with(&prefix))
                            .map(|m| m.safe.clone()),
                    );
                }
            }
            Target::RepoRevision(r, _) => {
                wanted_safes.insert(safe_repo_key(&r.repo_id));
            }
        }
    }
    wanted_safes
}

/// What decides which refs go.
struct DoomedRefs<'a> {
    manifests: &'a [RemoteManifest],
    refs: &'a [RemoteRef],
    wanted_safes: &'a BTreeSet<String>,
    doomed: &'a BTreeSet<(String, String)>,
    whole_repos: &'a BTreeMap<String, (RepoType, String)>,
}

impl DoomedRefs<'_> {
    /// Refs go with the revisions they name; a dangling ref goes with its repo only when no
    /// other repo shares its key. Returns what is kept and the ref keys to delete.
    fn select(&self) -> (Vec<KeptEntry>, Vec<String>) {
        let (manifests, wanted_safes, doomed, whole_repos) = (
            self.manifests,
            self.wanted_safes,
            self.doomed,
            self.whole_repos,
        );
        let mut kept = Vec::new();
        let mut ref_keys = Vec::new();
        for r in self.refs {
            if !wanted_safes.contains(&r.safe) {
                continue;
            }
            let Some(commit) = &r.commit else {
                if whole_repos.contains_key(&r.safe) {
                    kept.push(KeptEntry {
                        path: r.key.clone(),
                        reason: "unreadable ref body; left in place".into(),
                    });
                }
                continue;
            };
            if doomed.contains(&(r.safe.clone(), commit.clone())) {
                ref_keys.push(r.key.clone());
                continue;
            }
            let Some((repo_type, repo)) = whole_repos.get(&r.safe) else {
                continue;
            };
            let has_manifest = manifests
                .iter()
                .any(|m| m.safe == r.safe && &m.commit == commit);
            let owners = owners_of(manifests, &r.safe);
            if !has_manifest && owners.iter().all(|(t, id)| t == repo_type && id == repo) {
                ref_keys.push(r.key.clone());
            } else if !has_manifest {
                kept.push(KeptEntry {
                    path: r.key.clone(),
                    reason: format!(
                        "names {commit}, which has no manifest, and other repos share its key; \
                         left in place"
                    ),
                });
            }
        }
        (kept, ref_keys)
    }
}

/// Deletes the refs, then the manifests no failed ref names.
async fn delete_keys(
    remote: &Remote,
    manifests: &[RemoteManifest],
    refs: &[RemoteRef],
    doomed: &BTreeSet<(String, String)>,
    ref_keys: Vec<String>,
    summary: &mut RemoteRmSummary,
) -> Result<()> {
    // Refs first: a reader must never see a ref whose manifest is gone.
    let mut failed_commits: BTreeSet<(String, String)> = BTreeSet::new();
    for key in ref_keys {
        match remote.delete(&key).await {
            Ok(()) => summary.refs.push(key),
            Err(e) if stops_the_run(&e) => return Err(e.into()),
            Err(e) => {
                if let Some(r) = refs.iter().find(|r| r.key == key) {
                    if let Some(c) = &r.commit {
                        failed_commits.insert((r.safe.clone(), c.clone()));
                    }
                }
                summary.failures.push(Failure::new(key, e));
            }
        }
    }
    for m in manifests
        .iter()
        .filter(|m| doomed.contains(&(m.safe.clone(), m.commit.clone())))
    {
        if failed_commits.contains(&(m.safe.clone(), m.commit.clone())) {
            summary.kept.push(KeptEntry {
                path: m.key.clone(),
                reason: "a ref naming it could not be deleted".into(),
            });
            continue;
        }
        match remote.delete(&m.key).await {
            Ok(()) => summary.manifests.push(m.key.clone()),
            Err(e) if stops_the_run(&e) => return Err(e.into()),
            Err(e) => summary.failures.push(Failure::new(m.key.clone(), e)),
        }
    }
    Ok(())
}

fn human(summary: &RemoteRmSummary) -> String {
    let verb = if summary.dry_run {
        "Would delete"
    } else {
        "Deleted"
    };
    let mut lines = Vec::new();
    for t in &summary.targets {
        lines.push(format!(
            "{verb} {}/{}: {}",
            t.repo_type,
            t.repo,
            t.commits
                .iter()
                .map(|c| short(c))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.push(format!(
        "{verb} {} and {} from {}.",
        plural(summary.refs.len(), "ref", "refs"),
        plural(summary.manifests.len(), "manifest", "manifests"),
        summary.remote
    ));
    for k in &summary.kept {
        lines.push(format!("Kept {}: {}", k.path, k.reason));
    }
    for f in &summary.failures {
        lines.push(format!("Failed to delete {}: {}", f.item, f.error));
    }
    lines.push(
        "Blobs stay on the remote: other revisions may share them, and a remote garbage \
         collection reclaims the rest."
            .into(),
    );
    lines.join("\n")
}

/// A denied delete fails every other delete the same way: stop at the first.
fn stops_the_run(e: &RemoteError) -> bool {
    matches!(
        e,
        RemoteError::AccessDenied { .. } | RemoteError::Credentials { .. }
    ) || e.is_fatal()
}

/// A read body by list position: missing objects are `None`.
type Bodies = Vec<(usize, Result<Option<Vec<u8>>, RemoteError>)>;

/// Reads the manifests and refs under the given keys (a few at a time).
async fn read_bodies(
    remote: &Remote,
    manifests: &mut [RemoteManifest],
    refs: &mut [RemoteRef],
    safes: &BTreeSet<String>,
) -> Result<()> {
    let reads: Bodies = stream::iter(
        manifests
            .iter()
            .enumerate()
            .filter(|(_, m)| safes.contains(&m.safe)),
    )
    .map(|(i, m)| async move { (i, remote.get(&m.key, MAX_MANIFEST_BYTES).await) })
    .buffer_unordered(REMOTE_READS)
    .collect()
    .await;
    for (i, body) in reads {
        if let Some(bytes) = body? {
            match Manifest::parse(&bytes) {
                Ok(m) => manifests[i].manifest = Some(m),
                Err(e) => eprintln!("warning: {}: {e}; ignored", manifests[i].key),
            }
        }
    }
    let reads: Bodies = stream::iter(
        refs.iter()
            .enumerate()
            .filter(|(_, r)| safes.contains(&r.safe)),
    )
    .map(|(i, r)| async move { (i, remote.get(&r.key, MAX_REF_BYTES).await) })
    .buffer_unordered(REMOTE_READS)
    .collect()
    .await;
    for (i, body) in reads {
        refs[i].commit = body?.as_deref().and_then(parse_ref_body);
    }
    Ok(())
}

/// (type, id) of every repo whose manifests live under `safe`.
fn owners_of(manifests: &[RemoteManifest], safe: &str) -> BTreeSet<(RepoType, String)> {
    manifests
        .iter()
        .filter(|m| m.safe == safe)
        .filter_map(|m| m.manifest.as_ref())
        .filter_map(|m| Some((m.repo_type()?, m.repo.clone())))
        .collect()
}

/// Matches a target against the remote's manifests (the bodies say whose they are). Returns the
/// target and whether it is a whole repo.
fn resolve_remote(
    text: &str,
    manifests: &[RemoteManifest],
    refs: &[RemoteRef],
    place: &str,
) -> Result<(ResolvedTarget, bool), ConfigError> {
    const LIST_HINT: &str = "`hf-cache-sync list --remote --revisions` shows what the remote holds";
    let revisions_of = |t: RepoType, id: &str| -> Vec<&RemoteManifest> {
        manifests
            .iter()
            .filter(|m| {
                m.manifest
                    .as_ref()
                    .is_some_and(|b| b.repo == id && b.repo_type() == Some(t))
            })
            .collect()
    };
    let one_repo = |r: &RepoRef| -> Result<Option<(RepoType, String)>, ConfigError> {
        let safe = safe_repo_key(&r.repo_id);
        let owners: Vec<(RepoType, String)> = owners_of(manifests, &safe)
            .into_iter()
            .filter(|(t, id)| r.matches(*t, id))
            .collect();
        match owners.len() {
            0 => {
                // Only dangling refs: still a repo the user can remove, if its type is clear.
                let has_refs = refs.iter().any(|x| x.safe == safe);
                Ok(has_refs.then(|| (r.repo_type.unwrap_or(RepoType::Model), r.repo_id.clone())))
            }
            1 => Ok(owners.into_iter().next()),
            _ => Err(ambiguous(
                format!("repo {}", r.repo_id),
                &owners
                    .iter()
                    .map(|(t, id)| format!("{t}/{id}"))
                    .collect::<Vec<_>>(),
                TYPE_HINT,
            )),
        }
    };
    let target = |t: RepoType, id: String, commits: Vec<String>, whole: bool| ResolvedTarget {
        target: text.to_string(),
        repo_type: t,
        repo: id,
        commits,
        whole_repo: whole,
    };
    match parse_target(text) {
        Target::Name(name) => {
            if let Some((t, id)) = one_repo(&RepoRef::parse(name))? {
                let commits = revisions_of(t, &id)
                    .iter()
                    .map(|m| m.commit.clone())
                    .collect();
                return Ok((target(t, id, commits, true), true));
            }
            if !looks_like_hash_prefix(name) {
                return Err(unknown_target(text, place, LIST_HINT));
            }
            let prefix = name.to_ascii_lowercase();
            let found: Vec<&RemoteManifest> = manifests
                .iter()
                .filter(|m| m.commit.starts_with(&prefix))
                .collect();
            match found.as_slice() {
                [] => Err(unknown_target(text, place, LIST_HINT)),
                [m] => {
                    let Some(body) = &m.manifest else {
                        return Err(ConfigError::Invalid(format!(
                            "{}: manifest could not be read; cannot tell whose it is",
                            m.key
                        )));
                    };
                    let t = body.repo_type().unwrap_or(RepoType::Model);
                    Ok((
                        target(t, body.repo.clone(), vec![m.commit.clone()], false),
                        false,
                    ))
                }
                many => Err(ambiguous(
                    format!("revision {name}"),
                    &many.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
                    REVISION_HINT,
                )),
            }
        }
        Target::RepoRevision(r, rev) => {
            let Some((t, id)) = one_repo(&r)? else {
                return Err(unknown_target(text, place, LIST_HINT));
            };
            let safe = safe_repo_key(&id);
            let ours = revisions_of(t, &id);
            // A ref name first (`org/m@main`), then a hash prefix.
            let by_ref: Option<String> = refs
                .iter()
                .find(|x| x.safe == safe && x.name == rev)
                .and_then(|x| x.commit.clone())
                .filter(|c| ours.iter().any(|m| &m.commit == c));
            if let Some(commit) = by_ref {
                return Ok((target(t, id, vec![commit], false), false));
            }
            let prefix = rev.to_ascii_lowercase();
            let found: Vec<&&RemoteManifest> = ours
                .iter()
                .filter(|m| looks_like_hash_prefix(rev) && m.commit.starts_with(&prefix))
                .collect();
            match found.as_slice() {
                [] => Err(unknown_target(text, place, LIST_HINT)),
                [m] => Ok((target(t, id, vec![m.commit.clone()], false), false)),
                many => Err(ambiguous(
                    format!("revision {rev} of {t}/{id}"),
                    &many.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
                    REVISION_HINT,
                )),
            }
        }
    }
}
