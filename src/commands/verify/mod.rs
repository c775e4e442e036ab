//! `verify`: the local cache (every blob hashed against its name, every snapshot link and ref
//! checked), or with `--remote` the remote (every manifest's blobs present with the stated size,
//! every ref naming a manifest). `--repair` fetches corrupt and missing local blobs again.
//!
//! Here: the options and the problems both sides report; `local` hashes and checks the cache,
//! `repair` fetches what `--repair` can fix, `remote` checks the bucket through the catalog.

mod local;
mod lock;
mod remote;
mod repair;
mod structure;

use anyhow::Result;
use serde::Serialize;

use super::{short, App, Outcome, RemoteChoice};
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A local blob whose content does not hash to its name.
    CorruptBlob,
    /// A local blob that could not be read.
    UnreadableBlob,
    /// A blob that snapshot links (locally) or a manifest (remotely) name, but that is absent.
    MissingBlob,
    /// Anything else the cache scanner found: broken or escaping links, refs without a
    /// snapshot, stray files in `snapshots/`.
    Cache,
    /// A remote blob whose size is not the one its manifest states.
    SizeMismatch,
    /// A remote manifest that cannot be read or is refused.
    BadManifest,
    /// A remote ref whose body is not a commit hash.
    BadRef,
    /// A remote ref naming a commit that has no manifest.
    DanglingRef,
    /// A revision or file a lock file pins that the cache lacks.
    MissingPin,
    /// A file of a pin's `local-dir=` folder that is missing, differs or is not current.
    LocalDir,
}

impl ProblemKind {
    fn label(self) -> &'static str {
        match self {
            ProblemKind::CorruptBlob => "corrupt blob",
            ProblemKind::UnreadableBlob => "unreadable blob",
            ProblemKind::MissingBlob => "missing blob",
            ProblemKind::Cache => "cache",
            ProblemKind::SizeMismatch => "size mismatch",
            ProblemKind::BadManifest => "bad manifest",
            ProblemKind::BadRef => "bad ref",
            ProblemKind::DanglingRef => "dangling ref",
            ProblemKind::MissingPin => "missing",
            ProblemKind::LocalDir => "local dir",
        }
    }

    /// Problems `--repair` can fix by fetching the blob again.
    pub(super) fn repairable(self) -> bool {
        matches!(
            self,
            ProblemKind::CorruptBlob | ProblemKind::UnreadableBlob | ProblemKind::MissingBlob
        )
    }
}

/// One thing wrong, with whatever identifies it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// `model/org/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The remote object concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Files that use the blob: `<commit>/<path>` locally, `<path>` in a remote manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    pub detail: String,
    /// Why `--repair` could not fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_error: Option<String>,
}

impl Problem {
    pub(super) fn new(kind: ProblemKind, detail: String) -> Problem {
        Problem {
            kind,
            repo: None,
            revision: None,
            etag: None,
            key: None,
            paths: Vec::new(),
            detail,
            repair_error: None,
        }
    }

    pub(super) fn describe(&self, lines: &mut Vec<String>) {
        let mut head = format!("  {}", self.kind.label());
        if self.kind == ProblemKind::Cache {
            head = format!("  {}", self.detail);
        } else {
            if let Some(etag) = &self.etag {
                head.push_str(&format!(" {etag}"));
            } else if let Some(key) = &self.key {
                head.push_str(&format!(" {key}"));
            }
            if let Some(repo) = &self.repo {
                head.push_str(&format!(" in {repo}"));
                if let Some(rev) = &self.revision {
                    head.push_str(&format!("@{}", short(rev)));
                }
            }
            head.push_str(&format!(": {}", self.detail));
        }
        lines.push(head);
        if !self.paths.is_empty() {
            let paths: Vec<String> = self.paths.iter().map(|p| short_path(p)).collect();
            lines.push(format!("      used by {}", paths.join(", ")));
        }
        if let Some(e) = &self.repair_error {
            lines.push(format!("      not repaired: {e}"));
        }
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
        p.describe(lines);
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
