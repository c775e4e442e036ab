//! `rm` on the local cache: resolve the targets against one scan taken under every repo's lock,
//! plan, ask, then delete on a blocking thread that Ctrl-C stops between two revisions.

use std::collections::HashSet;
use std::time::SystemTime;

use anyhow::Result;
use serde::Serialize;

use super::{
    ambiguous, looks_like_hash_prefix, parse_target, unknown_target, ResolvedTarget, RmOptions,
    Target, LOCAL_LIST_HINT, REVISION_HINT, TYPE_HINT,
};
use crate::cache::delete::{Planner, Report};
use crate::cache::scan::CacheScan;
use crate::cancel::Cancel;
use crate::commands::deletion::{
    ask, execute, interrupted_before_deleting, lock_and_scan, plural, report_lines, say_interrupted,
};
use crate::commands::repos::cached_names;
use crate::commands::{App, Outcome, RepoRef};
use crate::config::ConfigError;
use crate::report::human_bytes;

#[derive(Debug, Serialize)]
pub struct RmSummary {
    pub command: &'static str,
    pub cache_dir: String,
    pub dry_run: bool,
    pub targets: Vec<ResolvedTarget>,
    #[serde(flatten)]
    pub report: Report,
}

/// A target and what it matched: a repo index and, for a revision, its commit.
type Match = (String, usize, Option<String>);

pub(super) async fn run(app: &App, opts: &RmOptions) -> Result<Outcome> {
    let (locks, scan) = lock_and_scan(app).await?;
    let matches = resolve_all(&scan, locks.busy(), &opts.targets)?;
    let busy = locks.busy().clone();
    let cache_dir = scan.root.display().to_string();
    let cancel = app.cancel.clone();
    let (planner, targets) =
        tokio::task::spawn_blocking(move || plan(scan, &busy, matches, &cancel)).await?;
    if app.cancel.requested() {
        return Ok(interrupted_before_deleting(app));
    }

    let report = if opts.dry_run {
        planner.preview()
    } else {
        let preview = planner.preview();
        let question = format!(
            "Delete {}, freeing {}?",
            describe_targets(&targets),
            human_bytes(preview.bytes_freed)
        );
        let lines = report_lines(&preview, true, false);
        if !ask(app, &lines, &question, opts.yes).await? {
            return Ok(Outcome::Failed);
        }
        execute(planner, locks, &app.cancel).await?
    };
    say_interrupted(app, &report);
    let outcome = Outcome::from_failures(report.failures.len());
    let summary = RmSummary {
        command: "rm",
        cache_dir,
        dry_run: opts.dry_run,
        targets,
        report,
    };
    app.printer.result(&summary, || human(&summary));
    Ok(outcome)
}

fn human(summary: &RmSummary) -> String {
    let mut lines = report_lines(&summary.report, summary.dry_run, false);
    lines.push(if summary.dry_run {
        format!(
            "Would free {}. Nothing was deleted (dry run).",
            human_bytes(summary.report.bytes_freed)
        )
    } else {
        format!("Freed {}.", human_bytes(summary.report.bytes_freed))
    });
    if summary.report.interrupted {
        lines.push("Interrupted before the end: run the same rm again to finish.".into());
    }
    lines.join("\n")
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
    let mut planner = Planner::with_busy(scan, SystemTime::now(), false, false, busy);
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
        Target::Name(name) => {
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
        Target::RepoRevision(r, rev) => {
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
