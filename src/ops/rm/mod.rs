//! `rm`'s operations: the targets as typed (a repo id, a hash prefix or `REPO@REVISION`), what
//! each resolved to, and the errors for targets that match nothing or too much. [`local`] plans
//! and carries out a deletion from the cache, [`remote`] one from the remote.

pub mod local;
pub mod remote;

use serde::Serialize;

use super::repos::{not_found, NotFound, RepoRef};
use crate::cache::RepoType;
use crate::config::ConfigError;

pub use local::{plan_local, RmReport};
pub use remote::{plan_remote, RemoteRmReport};

/// A revision hash prefix shorter than this is not taken as one (git's minimum).
const MIN_PREFIX: usize = 4;

/// One command-line target and what it resolved to.
#[derive(Debug, Clone, Serialize)]
pub struct ResolvedTarget {
    pub target: String,
    /// `type/org/name`, as every JSON document names a repo.
    pub repo: String,
    pub repo_type: RepoType,
    pub repo_id: String,
    /// The revisions it names; every revision of the repo for a repo id. On the remote, less
    /// those kept because a manifest or ref that may concern them cannot be read.
    pub commits: Vec<String>,
    /// True when the target is the whole repo.
    pub whole_repo: bool,
}

impl ResolvedTarget {
    fn new(
        target: String,
        repo_type: RepoType,
        repo_id: String,
        commits: Vec<String>,
        whole_repo: bool,
    ) -> ResolvedTarget {
        ResolvedTarget {
            target,
            repo: format!("{repo_type}/{repo_id}"),
            repo_type,
            repo_id,
            commits,
            whole_repo,
        }
    }
}

/// A target as typed: `org/name`, `model/org/name`, a hash prefix, or `REPO@REVISION`.
enum RmTarget<'a> {
    /// Could be a repo id or a revision hash prefix; a repo wins.
    Name(&'a str),
    /// `REPO@REVISION`: a revision (ref name or hash prefix) of one repo.
    RepoRevision(RepoRef, &'a str),
}

fn parse_target(text: &str) -> Result<RmTarget<'_>, ConfigError> {
    Ok(match text.rsplit_once('@') {
        Some((repo, rev)) if !repo.is_empty() && !rev.is_empty() => {
            RmTarget::RepoRevision(RepoRef::parse(repo)?, rev)
        }
        _ => RmTarget::Name(text),
    })
}

fn looks_like_hash_prefix(s: &str) -> bool {
    s.len() >= MIN_PREFIX && s.len() <= 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A target that names nothing `place` holds: the repos there (`names`, as (id, shown)) that
/// are close to it are named.
fn unknown_target(
    target: &str,
    place: &str,
    names: &[(String, String)],
    list_hint: &str,
) -> NotFound {
    let repo = target.rsplit_once('@').map_or(target, |(repo, _)| repo);
    let wanted = RepoRef::parse(repo).map_or(repo.to_string(), |r| r.repo_id);
    let mut e = not_found(
        &wanted,
        format!("no repo or revision matches {target:?} in {place}"),
        names,
        list_hint,
    );
    e.list_hint = format!(
        "targets are repo ids (org/name, dataset/org/name), revision hashes (at least \
         {MIN_PREFIX} characters) or REPO@REVISION; {list_hint}"
    );
    e
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert!(matches!(parse_target("org/m"), Ok(RmTarget::Name("org/m"))));
        assert!(matches!(
            parse_target("dataset/org/d@abcd").unwrap(),
            RmTarget::RepoRevision(
                RepoRef {
                    repo_type: Some(RepoType::Dataset),
                    ..
                },
                "abcd"
            )
        ));
        assert!(matches!(parse_target("org/m@"), Ok(RmTarget::Name(_))));
        assert!(parse_target("a/b/c/d@abcd").is_err());
        assert!(looks_like_hash_prefix("abcd"));
        assert!(looks_like_hash_prefix("ABCD12"));
        assert!(!looks_like_hash_prefix("abc"));
        assert!(!looks_like_hash_prefix("org/m"));
    }
}
