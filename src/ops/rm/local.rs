//! `rm` on the local cache: the targets resolved against one scan taken under every repo's
//! lock, the deletion planned, then carried out on a blocking thread that Ctrl-C stops between
//! two revisions.

use std::collections::HashSet;
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;

use super::{
    ambiguous, looks_like_hash_prefix, parse_target, unknown_target, ResolvedTarget, RmTarget,
    LOCAL_LIST_HINT, REVISION_HINT, TYPE_HINT,
};
use crate::cache::delete::{Planner, Report};
use crate::cache::scan::CacheScan;
use crate::cancel::Cancel;
use crate::config::ConfigError;
use crate::ops::delete::{Deletion, Locked};
use crate::ops::repos::{cached_names, RepoRef};

#[derive(Debug, Serialize)]
pub struct RmReport {
    pub command: &'static str,
    pub cache_dir: String,
    pub dry_run: bool,
    pub targets: Vec<ResolvedTarget>,
    #[serde(flatten)]
    pub report: Report,
}

/// A target and what it matched: a repo index and, for a revision, its commit.
type Match = (String, usize, Option<String>);

/// A local `rm` planned: what each target resolved to, and the deletion, its repos locked.
pub struct LocalRm {
    pub cache_dir: String,
    pub targets: Vec<ResolvedTarget>,
    pub deletion: Deletion,
}

/// Resolves every target against the locked scan (one that is unknown, ambiguous or in a repo a
/// pull is writing into stops the run, deleting nothing), then plans the deletion; `cancel`
/// cuts the planning short.
pub async fn plan_local(locked: Locked, texts: &[String], cancel: &Cancel) -> Result<LocalRm> {
    let matches = resolve_all(&locked.scan, locked.busy(), texts)?;
    let cache_dir = locked.scan.root.display().to_string();
    let cancel = cancel.clone();
    let (deletion, targets) = locked
        .plan(move |scan, busy| plan(scan, busy, matches, &cancel))
        .await?;
    Ok(LocalRm {
        cache_dir,
        targets,
        deletion,
    })
}

impl LocalRm {
    /// Carries out the deletion (for a dry run, reports what it would remove).
    pub async fn execute(self, dry_run: bool, cancel: &Cancel) -> Result<RmReport> {
        let report = if dry_run {
            self.deletion.preview()
        } else {
            self.deletion.execute(cancel).await?
        };
        Ok(RmReport {
            command: "rm",
            cache_dir: self.cache_dir,
            dry_run,
            targets: self.targets,
            report,
        })
    }
}

/// Every target resolves before anything is deleted; one in a repo a pull is writing into stops
/// the run, deleting nothing.
fn resolve_all(scan: &CacheScan, busy: &HashSet<String>, texts: &[String]) -> Result<Vec<Match>> {
    let mut matches = Vec::new();
    for text in texts {
        let (ri, commit) = resolve_local(scan, text)?;
        let repo = &scan.repos[ri];
        if busy.contains(&repo.folder) {
            anyhow::bail!(
                "cannot remove {text}: a pull is writing into {} {} (it holds {}); nothing was \
                 deleted, run rm again once the pull finishes",
                repo.repo_type,
                repo.repo_id,
                crate::cache::repo_lock_path(&scan.root, &repo.folder).display()
            );
        }
        matches.push((text.clone(), ri, commit));
    }
    Ok(matches)
}

/// Plans the deletion of what the targets matched; cut short by Ctrl-C (`cancel`). Blocking.
fn plan(
    scan: CacheScan,
    busy: &HashSet<String>,
    matches: Vec<Match>,
    cancel: &Cancel,
) -> (Planner, Vec<ResolvedTarget>) {
    let mut planner = Planner::with_busy(scan, SystemTime::now(), false, None, busy);
    let mut targets = Vec::new();
    for (text, ri, commit) in matches {
        let repo = &planner.scan().repos[ri];
        let (repo_type, repo_id) = (repo.repo_type, repo.repo_id.clone());
        let commits: Vec<String> = match &commit {
            Some(c) => vec![c.clone()],
            None => repo.revisions.iter().map(|r| r.commit.clone()).collect(),
        };
        for c in commits.iter().take_while(|_| !cancel.requested()) {
            planner.add_revision(ri, c, "rm");
        }
        if commit.is_none() {
            planner.add_repo(ri, "rm");
        }
        let whole = commit.is_none();
        targets.push(ResolvedTarget::new(
            text, repo_type, repo_id, commits, whole,
        ));
    }
    (planner, targets)
}

/// Matches a target against the cache: repos by id, revisions by hash prefix or ref name.
fn resolve_local(scan: &CacheScan, text: &str) -> Result<(usize, Option<String>)> {
    let place = format!("the cache at {}", scan.root.display());
    let names = cached_names(scan);
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
    match parse_target(text)? {
        RmTarget::Name(name) => {
            if let Some(ri) = one_repo(&RepoRef::parse(name)?)? {
                return Ok((ri, None));
            }
            if !looks_like_hash_prefix(name) {
                return Err(unknown_target(text, &place, &names, LOCAL_LIST_HINT).into());
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
                [] => Err(unknown_target(text, &place, &names, LOCAL_LIST_HINT).into()),
                [(ri, commit)] => Ok((*ri, Some(commit.to_string()))),
                many => Err(anyhow::Error::new(ambiguous(
                    format!("revision {name}"),
                    &many
                        .iter()
                        .map(|(ri, c)| format!("{}@{c}", scan.repos[*ri].qualified_id()))
                        .collect::<Vec<_>>(),
                    REVISION_HINT,
                ))),
            }
        }
        RmTarget::RepoRevision(r, rev) => {
            let Some(ri) = one_repo(&r)? else {
                return Err(unknown_target(text, &place, &names, LOCAL_LIST_HINT).into());
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
                [] => Err(unknown_target(text, &place, &names, LOCAL_LIST_HINT).into()),
                [commit] => Ok((ri, Some(commit.to_string()))),
                many => Err(anyhow::Error::new(ambiguous(
                    format!("revision {rev} of {}", repo.qualified_id()),
                    &many
                        .iter()
                        .map(|c| format!("{}@{c}", repo.qualified_id()))
                        .collect::<Vec<_>>(),
                    REVISION_HINT,
                ))),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{commit, Cache};

    #[test]
    fn targets_resolve_to_repos_revisions_or_refs() {
        let cache = Cache::new();
        let other = format!("aaaab{}", &commit('c')[5..]);
        cache.file("org/m", &commit('a'), "w.bin", b"a");
        cache.file("org/m", &other, "w.bin", b"b");
        cache.reference("org/m", "main", &commit('a'));
        let scan = cache.scan();
        let resolve = |text: &str| resolve_local(&scan, text).map_err(|e| e.to_string());
        assert_eq!(resolve("org/m"), Ok((0, None)));
        assert_eq!(resolve("model/org/m@main"), Ok((0, Some(commit('a')))));
        assert_eq!(resolve("aaaab"), Ok((0, Some(other.clone()))));
        assert_eq!(resolve("org/m@AAAAA"), Ok((0, Some(commit('a')))));
        assert!(resolve("aaaa").unwrap_err().contains("is ambiguous"));
        // Shorter than a hash prefix can be.
        let short = resolve("org/m@aaa").unwrap_err();
        assert!(short.contains("no repo or revision matches"), "{short}");
        assert!(resolve("dataset/org/m").is_err());
    }
}
