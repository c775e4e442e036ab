//! `rm --remote`: deletes manifests and refs from the remote (refs first, so no reader sees a
//! ref whose manifest is gone). Blobs stay: other revisions may share them. The catalog reads the
//! manifests and refs under the keys the targets concern and says whose each is; one that cannot
//! be read keeps the revisions it may concern, and the run goes on with the rest.

mod resolve;
mod select;

use std::collections::BTreeSet;

use anyhow::Result;
use serde::Serialize;

use super::{looks_like_hash_prefix, parse_target, ResolvedTarget, RmTarget};
use crate::cache::delete::KeptEntry;
use crate::failure::Failure;
use crate::manifest::{safe_repo_key, Layout};
use crate::ops::repos::RepoRef;
use crate::remote::catalog::{Catalog, ReadMode, Scope};
use crate::remote::{stops_deleting, Remote};
use select::{select, Selection};

/// Manifests and refs read at once from the remote.
const REMOTE_READS: usize = 8;

#[derive(Debug, Serialize)]
pub struct RemoteRmReport {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub targets: Vec<ResolvedTarget>,
    /// Ref keys deleted (or, for a dry run, to delete), before the manifests.
    pub refs: Vec<String>,
    pub manifests: Vec<String>,
    pub kept: Vec<KeptEntry>,
    /// Deletes that failed, and manifests or refs the targets concern that could not be read.
    pub failures: Vec<Failure>,
}

/// A ref the run deletes: its key, and the revision it names when it could be read.
#[derive(Debug)]
pub struct RefKey {
    pub key: String,
    safe: String,
    commit: Option<String>,
}

/// A manifest the run deletes, with the tree listing beside it.
#[derive(Debug)]
pub struct ManifestKey {
    pub key: String,
    safe: String,
    commit: String,
}

/// A remote `rm` planned from the catalog: what goes, in order, and what stays.
#[derive(Debug)]
pub struct RemoteRm {
    /// The remote, as people read it.
    pub place: String,
    pub targets: Vec<ResolvedTarget>,
    /// Deleted first, so no reader sees a ref whose manifest is gone.
    pub refs: Vec<RefKey>,
    pub manifests: Vec<ManifestKey>,
    kept: Vec<KeptEntry>,
    failures: Vec<Failure>,
}

/// Reads the manifests and refs the targets concern and decides what goes. A target that is
/// unknown or ambiguous fails the run, deleting nothing; the catalog's warnings are added to
/// `warnings` either way.
pub async fn plan_remote(
    remote: &Remote,
    layout: &Layout,
    texts: &[String],
    warnings: &mut Vec<String>,
) -> Result<RemoteRm> {
    let place = remote.describe();
    // One LIST each of manifests/ and refs/; bodies only under the keys the targets concern.
    let mut catalog = Catalog::list(remote, layout, false)
        .await?
        .reading(REMOTE_READS, ReadMode::Warn);
    let wanted = wanted_keys(texts, &catalog);
    catalog.read(&Scope::Keys(wanted.clone())).await?;
    warnings.extend(catalog.warnings());
    let Selection {
        targets,
        refs,
        manifests,
        kept,
        failures,
    } = select(&catalog, texts, &wanted, &place)?;
    Ok(RemoteRm {
        targets,
        refs: refs
            .iter()
            .map(|r| RefKey {
                key: r.key.clone(),
                safe: r.safe.clone(),
                commit: r.commit().map(str::to_string),
            })
            .collect(),
        manifests: manifests
            .iter()
            .map(|m| ManifestKey {
                key: m.key.clone(),
                safe: m.safe.clone(),
                commit: m.commit.clone(),
            })
            .collect(),
        kept,
        failures,
        place,
    })
}

impl RemoteRm {
    /// Deletes the refs, then the manifests (for a dry run, reports what it would delete).
    pub async fn execute(
        self,
        remote: &Remote,
        layout: &Layout,
        dry_run: bool,
    ) -> Result<RemoteRmReport> {
        let mut report = RemoteRmReport {
            command: "rm",
            remote: remote.url(),
            dry_run,
            targets: self.targets,
            refs: Vec::new(),
            manifests: Vec::new(),
            kept: self.kept,
            failures: self.failures,
        };
        if dry_run {
            report.refs = self.refs.into_iter().map(|r| r.key).collect();
            report.manifests = self.manifests.into_iter().map(|m| m.key).collect();
        } else {
            delete_keys(remote, layout, &self.refs, &self.manifests, &mut report).await?;
        }
        Ok(report)
    }
}

/// The keys each target could concern, from key names alone: their bodies are the ones read.
fn wanted_keys(texts: &[String], catalog: &Catalog) -> BTreeSet<String> {
    let mut wanted = BTreeSet::new();
    for text in texts {
        // A target that does not parse is reported when the targets are resolved.
        match parse_target(text) {
            Err(_) => {}
            Ok(RmTarget::Name(name)) => {
                let Ok(r) = RepoRef::parse(name) else {
                    continue;
                };
                let safe = safe_repo_key(&r.repo_id);
                if catalog.has_key(&safe) {
                    wanted.insert(safe);
                } else if looks_like_hash_prefix(name) {
                    let prefix = name.to_ascii_lowercase();
                    wanted.extend(
                        catalog
                            .manifests()
                            .filter(|m| m.commit.starts_with(&prefix))
                            .map(|m| m.safe.clone()),
                    );
                }
            }
            Ok(RmTarget::RepoRevision(r, _)) => {
                wanted.insert(safe_repo_key(&r.repo_id));
            }
        }
    }
    wanted
}

/// Deletes the refs, then the manifests no failed ref names, each with the tree listing kept
/// beside it.
async fn delete_keys(
    remote: &Remote,
    layout: &Layout,
    refs: &[RefKey],
    manifests: &[ManifestKey],
    summary: &mut RemoteRmReport,
) -> Result<()> {
    // Refs first: a reader must never see a ref whose manifest is gone.
    let mut failed_commits: BTreeSet<(&str, &str)> = BTreeSet::new();
    for r in refs {
        match remote.delete(&r.key).await {
            Ok(()) => summary.refs.push(r.key.clone()),
            Err(e) if stops_deleting(&e) => return Err(e.into()),
            Err(e) => {
                if let Some(c) = &r.commit {
                    failed_commits.insert((&r.safe, c));
                }
                summary.failures.push(Failure::new(r.key.clone(), e));
            }
        }
    }
    for m in manifests {
        if failed_commits.contains(&(m.safe.as_str(), m.commit.as_str())) {
            summary.kept.push(KeptEntry {
                path: m.key.clone(),
                reason: "a ref naming it could not be deleted".into(),
            });
            continue;
        }
        match remote.delete(&m.key).await {
            Ok(()) => summary.manifests.push(m.key.clone()),
            Err(e) if stops_deleting(&e) => return Err(e.into()),
            Err(e) => {
                summary.failures.push(Failure::new(m.key.clone(), e));
                continue;
            }
        }
        // `safe` holds no `/`: it encodes to itself.
        let listing = layout.tree_key(&m.safe, &m.commit);
        match remote.delete(&listing).await {
            Ok(()) => {}
            Err(e) if stops_deleting(&e) => return Err(e.into()),
            Err(e) => summary.failures.push(Failure::new(listing, e)),
        }
    }
    Ok(())
}
