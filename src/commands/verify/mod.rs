//! `verify`: the local cache (every blob hashed against its name, every snapshot link and ref
//! checked), or with `--remote` the remote (every manifest's blobs present with the stated size,
//! every ref naming a manifest). `--repair` fetches corrupt and missing local blobs again.
//!
//! Here: the options and the problems both sides report; `local` hashes and checks the cache,
//! `repair` fetches what `--repair` can fix, `remote` checks the bucket through the catalog.

mod local;
mod lock;
mod remote;

use anyhow::Result;

use super::{short, App, Outcome, RemoteChoice};
use crate::ops::verify::{Problem, ProblemKind};
use crate::text::plural;

#[derive(Debug)]
pub struct VerifyOptions {
    pub repos: Vec<String>,
    /// Without `repair`, the remote to verify; with it, the remote to repair from.
    pub remote: RemoteChoice,
    pub repair: bool,
    /// `--lock FILE`: the pinned revisions instead.
    pub lock: Option<std::path::PathBuf>,
    pub workers: Option<usize>,
}

/// One problem for people: what, where, who uses it, why `--repair` could not fix it.
pub(super) fn describe_problem(problem: &Problem, lines: &mut Vec<String>) {
    let mut head = format!("  {}", problem.kind.label());
    if problem.kind == ProblemKind::Cache {
        head = format!("  {}", problem.detail);
    } else {
        if let Some(etag) = &problem.etag {
            head.push_str(&format!(" {etag}"));
        } else if let Some(key) = &problem.key {
            head.push_str(&format!(" {key}"));
        }
        if let Some(repo) = &problem.repo {
            head.push_str(&format!(" in {repo}"));
            if let Some(rev) = &problem.revision {
                head.push_str(&format!("@{}", short(rev)));
            }
        }
        head.push_str(&format!(": {}", problem.detail));
    }
    lines.push(head);
    if !problem.paths.is_empty() {
        let paths: Vec<String> = problem.paths.iter().map(|p| short_path(p)).collect();
        lines.push(format!("      used by {}", paths.join(", ")));
    }
    if let Some(e) = &problem.repair_error {
        lines.push(format!("      not repaired: {e}"));
    }
}

/// The human report's list of problems, or the all-clear.
pub(super) fn describe_problems(problems: &[Problem], lines: &mut Vec<String>) {
    if problems.is_empty() {
        lines.push("No problems found.".into());
        return;
    }
    lines.push(format!(
        "{}:",
        plural(problems.len(), "problem", "problems")
    ));
    for p in problems {
        describe_problem(p, lines);
    }
}

/// `<12 hex>/<path>` for `<40 hex>/<path>`, as people read commits.
fn short_path(p: &str) -> String {
    match p.split_once('/') {
        Some((commit, rest)) if commit.len() == 40 => format!("{}/{rest}", short(commit)),
        _ => p.to_string(),
    }
}

pub async fn run(app: &App, opts: VerifyOptions) -> Result<Outcome> {
    if let Some(file) = &opts.lock {
        return lock::verify(app, file, opts.workers).await;
    }
    if opts.remote.asked() && !opts.repair {
        remote::verify(app, &opts).await
    } else {
        local::verify(app, &opts).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_paths() {
        assert_eq!(
            short_path(&format!("{}/a/b", "a".repeat(40))),
            "aaaaaaaaaaaa/a/b"
        );
    }
}
