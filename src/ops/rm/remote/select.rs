//! Which refs and manifests the targets delete, and which stay and why, decided from the
//! catalog before anything is deleted. A ref goes with the revision it names; a dangling one
//! goes with its repo when the catalog says it is that repo's. A manifest or ref the targets
//! concern that cannot be read is a failure, and every revision it may concern stays.

use std::collections::{BTreeMap, BTreeSet};

use super::resolve::{unreadable, Resolver, TargetMatch};
use crate::cache::delete::KeptEntry;
use crate::cache::RepoType;
use crate::failure::Failure;
use crate::manifest::safe_repo_key;
use crate::ops::rm::ResolvedTarget;
use crate::remote::catalog::{Catalog, ManifestEntry, ReadFailure, RefEntry};

/// What a run deletes, in order, and what it leaves.
pub(super) struct Selection<'c> {
    pub targets: Vec<ResolvedTarget>,
    /// Deleted first, so no reader sees a ref whose manifest is gone.
    pub refs: Vec<&'c RefEntry>,
    pub manifests: Vec<&'c ManifestEntry>,
    pub kept: Vec<KeptEntry>,
    /// Manifests and refs the targets concern that could not be read.
    pub failures: Vec<Failure>,
}

/// A revision as its manifest key names it: (`org__name`, commit).
type Rev = (String, String);

/// Resolves every target (one that is unknown or ambiguous stops the run, deleting nothing),
/// then sorts the manifests and refs under the `wanted` keys into what goes and what stays.
pub(super) fn select<'c>(
    catalog: &'c Catalog<'c>,
    texts: &[String],
    wanted: &'c BTreeSet<String>,
    place: &'c str,
) -> anyhow::Result<Selection<'c>> {
    let resolver = Resolver { catalog, place };
    let mut s = Selecting {
        catalog,
        wanted,
        doomed: BTreeSet::new(),
        whole: BTreeMap::new(),
        named: BTreeSet::new(),
        held: BTreeMap::new(),
        murky: BTreeSet::new(),
        kept: Vec::new(),
        failures: Vec::new(),
    };
    let mut targets = Vec::new();
    for text in texts {
        match resolver.resolve(text)? {
            TargetMatch::Found(target) => {
                let safe = safe_repo_key(&target.repo_id);
                for c in &target.commits {
                    s.doomed.insert((safe.clone(), c.clone()));
                }
                if target.whole_repo {
                    s.whole
                        .insert(safe, (target.repo_type, target.repo_id.clone()));
                }
                targets.push(target);
            }
            TargetMatch::Unreadable(key) => {
                s.named.insert(key.to_string());
            }
        }
    }
    s.hold_unreadable_manifests();
    s.hold_for_unreadable_refs();
    for t in &mut targets {
        let safe = safe_repo_key(&t.repo_id);
        t.commits
            .retain(|c| s.doomed.contains(&(safe.clone(), c.clone())));
    }
    let refs = s.refs();
    let manifests = catalog
        .manifests()
        .filter(|m| s.doomed.contains(&(m.safe.clone(), m.commit.clone())))
        .collect();
    Ok(Selection {
        targets,
        refs,
        manifests,
        kept: s.kept,
        failures: s.failures,
    })
}

struct Selecting<'c> {
    catalog: &'c Catalog<'c>,
    /// The keys the targets concern: the only ones whose bodies were read.
    wanted: &'c BTreeSet<String>,
    /// Revisions to delete.
    doomed: BTreeSet<Rev>,
    /// Repos removed whole, by key: (type, id).
    whole: BTreeMap<String, (RepoType, String)>,
    /// Keys a target named that cannot be read.
    named: BTreeSet<String>,
    /// Revisions that stay, and why, as the refs naming them are told.
    held: BTreeMap<Rev, String>,
    /// Keys with a manifest the targets concern that cannot be read: whose the dangling refs
    /// under them are cannot be told.
    murky: BTreeSet<String>,
    kept: Vec<KeptEntry>,
    failures: Vec<Failure>,
}

impl<'c> Selecting<'c> {
    /// A manifest that cannot be read under a repo removed whole, or that a target names, may
    /// be a revision to delete: it stays, with the refs naming it.
    fn hold_unreadable_manifests(&mut self) {
        let catalog = self.catalog;
        for m in catalog.manifests().filter(|m| unreadable(&m.body)) {
            if !self.whole.contains_key(&m.safe) && !self.named.contains(&m.key) {
                continue;
            }
            self.fail(&m.key, m.body.failure(), "whose revision it is");
            self.held.insert(
                (m.safe.clone(), m.commit.clone()),
                "whose manifest cannot be read".into(),
            );
            self.murky.insert(m.safe.clone());
        }
    }

    /// A ref that cannot be read under a key with revisions to delete may name any of them:
    /// they stay.
    fn hold_for_unreadable_refs(&mut self) {
        let catalog = self.catalog;
        for r in catalog.refs().filter(|r| unreadable(&r.body)) {
            let concerned = self.whole.contains_key(&r.safe)
                || self.named.contains(&r.key)
                || self.doomed.iter().any(|(safe, _)| *safe == r.safe);
            if !concerned {
                continue;
            }
            self.fail(&r.key, r.body.failure(), "which revision it names");
            let blocked: Vec<Rev> = self
                .doomed
                .iter()
                .filter(|(safe, _)| *safe == r.safe)
                .cloned()
                .collect();
            for rev in blocked {
                self.doomed.remove(&rev);
                if let Some(m) = catalog.manifest_entry(&rev.0, &rev.1) {
                    self.keep(&m.key, format!("{} cannot be read and may name it", r.key));
                }
                let why = format!("which stays: {} cannot be read and may name it", r.key);
                self.held.insert(rev, why);
            }
        }
    }

    /// The refs to delete: those naming a revision to delete, and the dangling ones of repos
    /// removed whole.
    fn refs(&mut self) -> Vec<&'c RefEntry> {
        let (catalog, wanted) = (self.catalog, self.wanted);
        let mut out = Vec::new();
        for r in catalog.refs().filter(|r| wanted.contains(&r.safe)) {
            if unreadable(&r.body) {
                // A failure already, where it matters.
                continue;
            }
            let Some(commit) = r.commit() else {
                if self.whole.contains_key(&r.safe) {
                    self.keep(&r.key, "unreadable ref body".into());
                }
                continue;
            };
            let rev = (r.safe.clone(), commit.to_string());
            if let Some(why) = self.held.get(&rev) {
                let reason = format!("names {commit}, {why}");
                self.keep(&r.key, reason);
            } else if self.doomed.contains(&rev) || self.dangling_goes(r, commit) {
                out.push(r);
            }
        }
        out
    }

    /// Whether `r`, naming a `commit` that is not to be deleted, goes with a repo removed
    /// whole: only when that commit has no manifest and the catalog says the ref is the repo's.
    fn dangling_goes(&mut self, r: &RefEntry, commit: &str) -> bool {
        let Some((repo_type, repo)) = self.whole.get(&r.safe) else {
            return false;
        };
        if self.catalog.has_manifest_key(&r.safe, commit) {
            // Another repo's revision under the same key, or a manifest that was refused.
            return false;
        }
        let owner = (repo.clone(), Some(*repo_type));
        if self.murky.contains(&r.safe) {
            let reason = format!(
                "names {commit}, which has no manifest, and a manifest under its key cannot be \
                 read"
            );
            self.keep(&r.key, reason);
            return false;
        }
        let candidates = self
            .catalog
            .repos_under(&r.safe)
            .into_iter()
            .map(|(t, id)| (id, t))
            .chain([(repo.clone(), *repo_type)]);
        if self.catalog.ref_owner_among(r, candidates) == owner {
            return true;
        }
        let reason =
            format!("names {commit}, which has no manifest, and other repos share its key");
        self.keep(&r.key, reason);
        false
    }

    fn keep(&mut self, key: &str, reason: String) {
        self.kept.push(KeptEntry {
            path: key.to_string(),
            reason: format!("{reason}; left in place"),
        });
    }

    /// An object that cannot be read: a failure, and kept since `unknown` cannot be told.
    fn fail(&mut self, key: &str, failure: Option<&ReadFailure>, unknown: &str) {
        let error = failure.map(ToString::to_string).unwrap_or_default();
        self.failures
            .push(Failure::message(key, format!("cannot read: {error}")));
        self.keep(key, format!("cannot be read, so {unknown} cannot be told"));
    }
}
