//! `rm --remote`: deletes manifests and refs from the bucket (refs first, so no reader sees a
//! ref whose manifest is gone). Blobs stay: other revisions may share them. The catalog reads the
//! manifests and refs under the keys the targets concern and says whose each is; one that cannot
//! be read keeps the revisions it may concern, and the run goes on with the rest.

mod resolve;
mod select;

use std::collections::BTreeSet;

use anyhow::Result;
use serde::Serialize;

use super::{looks_like_hash_prefix, parse_target, ResolvedTarget, RmOptions, Target};
use crate::cache::delete::KeptEntry;
use crate::commands::deletion::{ask, plural};
use crate::commands::{short, App, Failure, Outcome, RepoRef};
use crate::manifest::{safe_repo_key, Layout};
use crate::remote::catalog::{Catalog, ManifestEntry, ReadMode, RefEntry, Scope};
use crate::remote::{stops_deleting, Remote};
use select::{select, Selection};

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
    /// Deletes that failed, and manifests or refs the targets concern that could not be read.
    pub failures: Vec<Failure>,
}

pub(super) async fn run(app: &App, opts: &RmOptions) -> Result<Outcome> {
    let (remote, layout) = app.open_remote(opts.remote.url())?;
    let place = remote.describe();
    // One LIST each of manifests/ and refs/; bodies only under the keys the targets concern.
    let mut catalog = Catalog::list(&remote, &layout, false)
        .await?
        .reading(REMOTE_READS, ReadMode::Warn);
    let wanted = wanted_keys(&opts.targets, &catalog);
    catalog.read(&Scope::Keys(wanted.clone())).await?;
    for w in catalog.warnings() {
        app.printer.warn(&w);
    }
    let Selection {
        targets,
        refs,
        manifests,
        kept,
        failures,
    } = select(&catalog, &opts.targets, &wanted, &place)?;

    if !opts.dry_run {
        let mut lines: Vec<String> = refs.iter().map(|r| format!("  {}", r.key)).collect();
        lines.extend(manifests.iter().map(|m| format!("  {}", m.key)));
        let question = format!(
            "Delete {} and {} from {place}?",
            plural(refs.len(), "ref", "refs"),
            plural(manifests.len(), "manifest", "manifests")
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
        failures,
    };
    if opts.dry_run {
        summary.refs = refs.iter().map(|r| r.key.clone()).collect();
        summary.manifests = manifests.iter().map(|m| m.key.clone()).collect();
    } else {
        delete_keys(&remote, &layout, &refs, &manifests, &mut summary).await?;
    }
    let outcome = Outcome::from_failures(summary.failures.len());
    app.printer.result(&summary, || human(&summary));
    Ok(outcome)
}

/// The keys each target could concern, from key names alone: their bodies are the ones read.
fn wanted_keys(texts: &[String], catalog: &Catalog) -> BTreeSet<String> {
    let mut wanted = BTreeSet::new();
    for text in texts {
        // A target that does not parse is reported when the targets are resolved.
        match parse_target(text) {
            Err(_) => {}
            Ok(Target::Name(name)) => {
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
            Ok(Target::RepoRevision(r, _)) => {
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
    refs: &[&RefEntry],
    manifests: &[&ManifestEntry],
    summary: &mut RemoteRmSummary,
) -> Result<()> {
    // Refs first: a reader must never see a ref whose manifest is gone.
    let mut failed_commits: BTreeSet<(&str, &str)> = BTreeSet::new();
    for r in refs {
        match remote.delete(&r.key).await {
            Ok(()) => summary.refs.push(r.key.clone()),
            Err(e) if stops_deleting(&e) => return Err(e.into()),
            Err(e) => {
                if let Some(c) = r.commit() {
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

fn human(summary: &RemoteRmSummary) -> String {
    let verb = if summary.dry_run {
        "Would delete"
    } else {
        "Deleted"
    };
    let mut lines = Vec::new();
    // A revision target whose revision stays (see `kept`) deleted nothing.
    for t in summary
        .targets
        .iter()
        .filter(|t| t.whole_repo || !t.commits.is_empty())
    {
        lines.push(format!(
            "{verb} {}: {}",
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
