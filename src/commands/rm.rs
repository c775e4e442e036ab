//! `rm`: deletes repos or revisions from the local cache (snapshots, refs and the blobs only
//! they used, through [`crate::cache::delete`]), or with `--remote` their manifests and refs from
//! the bucket. Targets are resolved in full before anything is deleted: an unknown or ambiguous
//! one is a usage error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::time::SystemTime;

use anyhow::Result;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::{confirm, missing_cache_dir, short, App, Failure, Outcome, RepoRef};
use crate::cache::delete::{KeptEntry, Planner, RepoLocks, Report};
use crate::cache::scan::{self, CacheScan};
use crate::cache::RepoType;
use crate::config::ConfigError;
use crate::manifest::{parse_ref_body, safe_repo_key, Manifest, MAX_MANIFEST_BYTES, MAX_REF_BYTES};
use crate::remote::{Remote, RemoteError};
use crate::report::{human_bytes, NoProgress};

/// A revision hash prefix shorter than this is not taken as one (git's minimum).
const MIN_PREFIX: usize = 4;
/// Manifests and refs read at once from the remote.
const REMOTE_READS: usize = 8;

#[derive(Debug)]
pub struct RmOptions {
    pub targets: Vec<String>,
    pub dry_run: bool,
    pub yes: bool,
    pub remote: bool,
}

/// One command-line target and what it resolved to.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedTarget {
    pub target: String,
    pub repo_type: RepoType,
    pub repo: String,
    /// The revisions it names; every revision of the repo for a repo id.
    pub commits: Vec<String>,
    /// True when the target is the whole repo.
    pub whole_repo: bool,
}

#[derive(Debug, Serialize)]
pub struct RmSummary {
    pub command: &'static str,
    pub cache_dir: String,
    pub dry_run: bool,
    pub targets: Vec<ResolvedTarget>,
    #[serde(flatten)]
    pub report: Report,
}

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

pub async fn run(app: &App, opts: RmOptions) -> Result<Outcome> {
    refuse_without_consent(opts.yes, opts.dry_run)?;
    if opts.remote {
        return run_remote(app, &opts).await;
    }
    tokio::task::block_in_place(|| run_local(app, &opts))
}

/// Without `--yes`, a deletion needs someone at a terminal to say yes: refuse up front, before
/// any work, so a script learns on its first run rather than the day something is deletable.
pub(super) fn refuse_without_consent(yes: bool, dry_run: bool) -> Result<(), ConfigError> {
    if yes || dry_run || std::io::stdin().is_terminal() {
        return Ok(());
    }
    confirm("", false).map(|_| ())
}

/// Shows what is about to go (on stderr) and asks. True to go ahead.
pub(super) fn ask(lines: &[String], question: &str, yes: bool) -> Result<bool> {
    if !yes {
        for line in lines {
            eprintln!("{line}");
        }
    }
    let go = confirm(question, yes)?;
    if !go {
        eprintln!("Nothing deleted.");
    }
    Ok(go)
}

pub(super) fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What a deletion removed (or would remove), for people: one line per repo or revision, one per
/// kind of leftover, then what was kept and what failed. `reasons` adds why each revision goes.
pub(super) fn report_lines(report: &Report, dry_run: bool, reasons: bool) -> Vec<String> {
    let verb = if dry_run { "Would remove" } else { "Removed" };
    let mut lines = Vec::new();
    let whole: BTreeSet<(RepoType, &str)> = report
        .repos
        .iter()
        .map(|r| (r.repo_type, r.repo.as_str()))
        .collect();
    for r in &report.repos {
        let revisions = report
            .revisions
            .iter()
            .filter(|v| v.repo_type == r.repo_type && v.repo == r.repo)
            .count();
        let refs: Vec<&str> = report
            .refs
            .iter()
            .filter(|x| x.repo_type == r.repo_type && x.repo == r.repo)
            .map(|x| x.name.as_str())
            .collect();
        let bytes: u64 = report
            .revisions
            .iter()
            .filter(|v| v.repo_type == r.repo_type && v.repo == r.repo)
            .map(|v| v.bytes)
            .sum();
        let refs = if refs.is_empty() {
            String::new()
        } else {
            format!(", refs {}", refs.join(", "))
        };
        lines.push(format!(
            "{verb} {}/{} ({}{refs}, {})",
            r.repo_type,
            r.repo,
            plural(revisions, "revision", "revisions"),
            human_bytes(bytes)
        ));
    }
    for v in &report.revisions {
        if whole.contains(&(v.repo_type, v.repo.as_str())) {
            continue;
        }
        let mut details = Vec::new();
        if reasons {
            details.push(v.reason.clone());
        }
        if !v.refs.is_empty() {
            details.push(format!("refs {}", v.refs.join(", ")));
        }
        if let Some(t) = &v.last_accessed {
            details.push(format!("last accessed {t}"));
        }
        details.push(human_bytes(v.bytes));
        lines.push(format!(
            "{verb} {}/{}@{} ({})",
            v.repo_type,
            v.repo,
            short(&v.commit),
            details.join(", ")
        ));
    }
    let orphans: Vec<_> = report.blobs.iter().filter(|b| b.orphan).collect();
    if !orphans.is_empty() {
        lines.push(format!(
            "{verb} {} ({})",
            plural(orphans.len(), "orphaned blob", "orphaned blobs"),
            human_bytes(orphans.iter().map(|b| b.size).sum())
        ));
    }
    if !report.shared_blobs.is_empty() {
        lines.push(format!(
            "{verb} {} from the shared store ({})",
            plural(report.shared_blobs.len(), "payload", "payloads"),
            human_bytes(report.shared_blobs.iter().map(|b| b.size).sum())
        ));
    }
    if !report.partials.is_empty() {
        lines.push(format!(
            "{verb} {} ({})",
            plural(
                report.partials.len(),
                "stale partial download",
                "stale partial downloads"
            ),
            human_bytes(report.partials.iter().map(|p| p.size).sum())
        ));
    }
    for k in &report.kept {
        lines.push(format!("Kept {}: {}", k.path, k.reason));
    }
    for f in &report.failures {
        lines.push(format!("Failed to remove {}: {}", f.item, f.error));
    }
    lines
}

/// A target as typed: `org/name`, `model/org/name`, a hash prefix, or `REPO@REVISION`.
enum Target<'a> {
    /// Could be a repo id or a revision hash prefix; a repo wins.
    Name(&'a str),
    /// `REPO@REVISION`: a revision (ref name or hash prefix) of one repo.
    RepoRevision(RepoRef, &'a str),
}

fn parse_target(text: &str) -> Target<'_> {
    match text.rsplit_once('@') {
        Some((repo, rev)) if !repo.is_empty() && !rev.is_empty() => {
            Target::RepoRevision(RepoRef::parse(repo), rev)
        }
        _ => Target::Name(text),
    }
}

fn looks_like_hash_prefix(s: &str) -> bool {
    s.len() >= MIN_PREFIX && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn unknown_target(target: &str, place: &str, list_hint: &str) -> ConfigError {
    ConfigError::Usage {
        message: format!("no repo or revision matches {target:?} in {place}"),
        hint: format!(
            "targets are repo ids (org/name, dataset/org/name), revision hashes (at least \
             {MIN_PREFIX} characters) or REPO@REVISION; {list_hint}"
        ),
    }
}

fn ambiguous(what: String, candidates: &[String], hint: &str) -> ConfigError {
    ConfigError::Usage {
        message: format!(
            "{what} is ambiguous; it matches:\n  {}",
            candidates.join("\n  ")
        ),
        hint: hint.to_string(),
    }
}

const LOCAL_LIST_HINT: &str = "`hf-cache-sync list --revisions` shows what is cached";
const REVISION_HINT: &str = "give more characters of the hash, or name the repo as REPO@REVISION";
const TYPE_HINT: &str =
    "put the repo type in front: model/org/name, dataset/org/name or space/org/name";

/// Matches a target against the cache: repos by id, revisions by hash prefix or ref name.
fn resolve_local(scan: &CacheScan, text: &str) -> Result<(usize, Option<String>), ConfigError> {
    let place = format!("the cache at {}", scan.root.display());
    let repos_matching = |r: &RepoRef| -> Vec<usize> {
        scan.repos
            .iter()
            .enumerate()
            .filter(|(_, repo)| r.matches(repo.repo_type, &repo.repo_id))
            .map(|(i, _)| i)
            .collect()
    };
    let one_repo = |r: &RepoRef| -> Result<Option<usize>, ConfigError> {
        let found = repos_matching(r);
        match found.len() {
            0 => Ok(None),
            1 => Ok(Some(found[0])),
            _ => Err(ambiguous(
                format!("repo {}", r.repo_id),
                &found
                    .iter()
                    .map(|i| scan.repos[*i].qualified_id())
                    .collect::<Vec<_>>(),
                TYPE_HINT,
            )),
        }
    };
    match parse_target(text) {
        Target::Name(name) => {
            if let Some(ri) = one_repo(&RepoRef::parse(name))? {
                return Ok((ri, None));
            }
            if !looks_like_hash_prefix(name) {
                return Err(unknown_target(text, &place, LOCAL_LIST_HINT));
            }
            let prefix = name.to_ascii_lowercase();
            let found: Vec<(usize, &str)> = scan
                .repos
                .iter()
                .enumerate()
                .flat_map(|(ri, repo)| {
                    repo.revisions
                        .iter()
                        .filter(|rev| rev.commit.starts_with(&prefix))
                        .map(move |rev| (ri, rev.commit.as_str()))
                })
                .collect();
            match found.as_slice() {
                [] => Err(unknown_target(text, &place, LOCAL_LIST_HINT)),
                [(ri, commit)] => Ok((*ri, Some(commit.to_string()))),
                many => Err(ambiguous(
                    format!("revision {name}"),
                    &many
                        .iter()
                        .map(|(ri, c)| format!("{}@{c}", scan.repos[*ri].qualified_id()))
                        .collect::<Vec<_>>(),
                    REVISION_HINT,
                )),
            }
        }
        Target::RepoRevision(r, rev) => {
            let Some(ri) = one_repo(&r)? else {
                return Err(unknown_target(text, &place, LOCAL_LIST_HINT));
            };
            let repo = &scan.repos[ri];
            if let Some(commit) = repo.refs.get(rev) {
                if repo.revision(commit).is_some() {
                    return Ok((ri, Some(commit.clone())));
                }
            }
            let prefix = rev.to_ascii_lowercase();
            let found: Vec<&str> = repo
                .revisions
                .iter()
                .filter(|v| looks_like_hash_prefix(rev) && v.commit.starts_with(&prefix))
                .map(|v| v.commit.as_str())
                .collect();
            match found.as_slice() {
                [] => Err(unknown_target(text, &place, LOCAL_LIST_HINT)),
                [commit] => Ok((ri, Some(commit.to_string()))),
                many => Err(ambiguous(
                    format!("revision {rev} of {}", repo.qualified_id()),
                    &many
                        .iter()
                        .map(|c| format!("{}@{c}", repo.qualified_id()))
                        .collect::<Vec<_>>(),
                    REVISION_HINT,
                )),
            }
        }
    }
}

fn run_local(app: &App, opts: &RmOptions) -> Result<Outcome> {
    // Before the scan, so no pull changes a repo between the scan and the deletion.
    let locks = RepoLocks::take(&app.settings.cache_dir);
    let scan = scan::scan(&app.settings.cache_dir);
    if !scan.exists {
        return Err(missing_cache_dir(&scan).into());
    }
    for w in &scan.warnings {
        app.printer.warn(&NoProgress, w);
    }
    // Every target resolves before anything is deleted.
    let mut resolved = Vec::new();
    for text in &opts.targets {
        let (ri, commit) = resolve_local(&scan, text)?;
        let repo = &scan.repos[ri];
        if locks.busy().contains(&repo.folder) {
            anyhow::bail!(
                "cannot remove {text}: a pull is writing into {} {} (it holds {}); nothing was \
                 deleted, run rm again once the pull finishes",
                repo.repo_type,
                repo.repo_id,
                crate::cache::repo_lock_path(&scan.root, &repo.folder).display()
            );
        }
        resolved.push((text, (ri, commit)));
    }
    let mut planner = Planner::with_busy(&scan, SystemTime::now(), false, false, locks.busy());
    let mut targets = Vec::new();
    for (text, (ri, commit)) in resolved {
        let repo = &scan.repos[ri];
        let commits: Vec<String> = match &commit {
            Some(c) => vec![c.clone()],
            None => repo.revisions.iter().map(|r| r.commit.clone()).collect(),
        };
        for c in &commits {
            planner.add_revision(ri, c, "rm");
        }
        if commit.is_none() {
            planner.add_repo(ri, "rm");
        }
        targets.push(ResolvedTarget {
            target: text.clone(),
            repo_type: repo.repo_type,
            repo: repo.repo_id.clone(),
            commits,
            whole_repo: commit.is_none(),
        });
    }

    if !opts.dry_run {
        let preview = planner.preview();
        let question = format!(
            "Delete {}, freeing {}?",
            describe_targets(&targets),
            human_bytes(preview.bytes_freed)
        );
        if !ask(&report_lines(&preview, true, false), &question, opts.yes)? {
            return Ok(Outcome::Failed);
        }
    }
    let report = if opts.dry_run {
        planner.preview()
    } else {
        planner.execute()
    };
    let outcome = Outcome::from_failures(report.failures.len());
    let summary = RmSummary {
        command: "rm",
        cache_dir: scan.root.display().to_string(),
        dry_run: opts.dry_run,
        targets,
        report,
    };
    app.printer.result(&summary, || {
        let mut lines = report_lines(&summary.report, summary.dry_run, false);
        lines.push(if summary.dry_run {
            format!(
                "Would free {}. Nothing was deleted (dry run).",
                human_bytes(summary.report.bytes_freed)
            )
        } else {
            format!("Freed {}.", human_bytes(summary.report.bytes_freed))
        });
        lines.join("\n")
    });
    Ok(outcome)
}

fn describe_targets(targets: &[ResolvedTarget]) -> String {
    let repos = targets.iter().filter(|t| t.whole_repo).count();
    let revisions = targets.iter().filter(|t| !t.whole_repo).count();
    match (repos, revisions) {
        (0, n) => plural(n, "revision", "revisions"),
        (n, 0) => plural(n, "repo", "repos"),
        (r, v) => format!(
            "{} and {}",
            plural(r, "repo", "repos"),
            plural(v, "revision", "revisions")
        ),
    }
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

async fn run_remote(app: &App, opts: &RmOptions) -> Result<Outcome> {
    let (remote, layout) = app.open_remote(None)?;
    let place = remote.describe();
    // One LIST each of manifests/ and refs/.
    let (manifests_prefix, refs_prefix) = (layout.manifests_prefix(), layout.refs_prefix());
    let (manifest_objs, ref_objs) =
        tokio::try_join!(remote.list(&manifests_prefix), remote.list(&refs_prefix))?;
    let mut manifests: Vec<RemoteManifest> = manifest_objs
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
    let mut refs: Vec<RemoteRef> = ref_objs
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

    // Which keys each target could concern, before reading any bodies.
    let mut wanted_safes: BTreeSet<String> = BTreeSet::new();
    for text in &opts.targets {
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

    // Refs go with the revisions they name; a dangling ref goes with its repo only when no other
    // repo shares its key.
    let mut kept = Vec::new();
    let mut ref_keys = Vec::new();
    for r in &refs {
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
        let owners = owners_of(&manifests, &r.safe);
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
        if !ask(&lines, &question, opts.yes)? {
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
    }
    let outcome = Outcome::from_failures(summary.failures.len());
    app.printer.result(&summary, || {
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
    });
    Ok(outcome)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(matches!(parse_target("org/m"), Target::Name("org/m")));
        assert!(matches!(
            parse_target("dataset/org/d@abcd"),
            Target::RepoRevision(
                RepoRef {
                    repo_type: Some(RepoType::Dataset),
                    ..
                },
                "abcd"
            )
        ));
        assert!(matches!(parse_target("org/m@"), Target::Name(_)));
        assert!(looks_like_hash_prefix("abcd"));
        assert!(looks_like_hash_prefix("ABCD12"));
        assert!(!looks_like_hash_prefix("abc"));
        assert!(!looks_like_hash_prefix("org/m"));
    }
}
