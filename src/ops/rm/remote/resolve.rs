//! `rm --remote` targets against the catalog: a repo id, a hash prefix or `REPO@REVISION`,
//! matched to the revisions whose manifests say they are that repo's. A revision whose manifest
//! or ref cannot be read is named as such, so the run keeps it and goes on with the rest.

use super::super::{
    ambiguous, looks_like_hash_prefix, parse_target, unknown_target, ResolvedTarget, RmTarget,
    REVISION_HINT, TYPE_HINT,
};
use crate::cache::RepoType;
use crate::config::ConfigError;
use crate::manifest::safe_repo_key;
use crate::ops::repos::{remote_names, RepoRef};
use crate::remote::catalog::{Body, Catalog, ManifestEntry, ReadFailure};

const LIST_HINT: &str = "`hf-cache-sync list --remote --revisions` shows what the remote holds";

/// What one target names.
pub(super) enum TargetMatch<'c> {
    /// Revisions of one repo (all of them when the target is the repo itself).
    Found(ResolvedTarget),
    /// The revision it names is behind this manifest or ref key, which cannot be read.
    Unreadable(&'c str),
}

/// Whether a body failed to be read (as opposed to read and refused).
pub(super) fn unreadable<T>(body: &Body<T>) -> bool {
    matches!(body.failure(), Some(ReadFailure::Unreadable(_)))
}

pub(super) struct Resolver<'c> {
    pub catalog: &'c Catalog<'c>,
    pub place: &'c str,
}

impl<'c> Resolver<'c> {
    /// Matches a target against the remote's manifests (the bodies say whose they are).
    pub fn resolve(&self, text: &str) -> anyhow::Result<TargetMatch<'c>> {
        match parse_target(text)? {
            RmTarget::Name(name) => {
                if let Some((t, id)) = self.one_repo(&RepoRef::parse(name)?)? {
                    let commits = self
                        .revisions_of(t, &id)
                        .iter()
                        .map(|m| m.commit.clone())
                        .collect();
                    return Ok(found(text, t, id, commits, true));
                }
                if !looks_like_hash_prefix(name) {
                    return Err(unknown_target(
                        text,
                        self.place,
                        &remote_names(self.catalog),
                        LIST_HINT,
                    )
                    .into());
                }
                self.by_hash_prefix(text, name)
            }
            RmTarget::RepoRevision(r, rev) => self.repo_revision(text, &r, rev),
        }
    }

    /// The revisions the catalog's manifests say are `t`/`id`'s.
    fn revisions_of(&self, t: RepoType, id: &str) -> Vec<&'c ManifestEntry> {
        self.catalog
            .manifests()
            .filter(|m| {
                m.body
                    .valid()
                    .is_some_and(|b| b.repo == id && b.repo_type() == Some(t))
            })
            .collect()
    }

    /// The listed manifests under `safe` that cannot be read.
    fn unreadable_under(&self, safe: &str) -> impl Iterator<Item = &'c ManifestEntry> + '_ {
        let safe = safe.to_string();
        self.catalog
            .manifests()
            .filter(move |m| m.safe == safe && unreadable(&m.body))
    }

    /// The one repo `r` names, as the manifests under its key say; without any that say so, a
    /// repo with only refs (or only manifests that cannot be read) is still one the user can
    /// remove, taken as a model unless typed.
    fn one_repo(&self, r: &RepoRef) -> Result<Option<(RepoType, String)>, ConfigError> {
        let safe = safe_repo_key(&r.repo_id);
        let owners: Vec<(RepoType, String)> = self
            .catalog
            .repos_under(&safe)
            .into_iter()
            .filter(|(t, id)| r.matches(*t, id))
            .collect();
        match owners.len() {
            0 => {
                let known = self.catalog.refs().any(|x| x.safe == safe)
                    || self.unreadable_under(&safe).next().is_some();
                Ok(known.then(|| (r.repo_type.unwrap_or(RepoType::Model), r.repo_id.clone())))
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
    }

    /// A bare hash prefix: the one manifest whose commit starts with it, whoever's it is.
    fn by_hash_prefix(&self, text: &str, name: &str) -> anyhow::Result<TargetMatch<'c>> {
        let what = format!("revision {name}");
        self.by_prefix(text, self.catalog.manifests(), name, what, |m| {
            let Some(body) = m.body.valid() else {
                return Err(ConfigError::Usage {
                    message: format!(
                        "{}: manifest could not be read; cannot tell whose it is",
                        m.key
                    ),
                    hint: "`hf-cache-sync verify --remote` says what is wrong with it; name \
                               the revision as REPO@REVISION to remove it anyway"
                        .into(),
                }
                .into());
            };
            let t = body.repo_type().unwrap_or(RepoType::Model);
            Ok(found_revision(text, t, body.repo.clone(), &m.commit))
        })
    }

    /// The one manifest among `candidates` whose commit starts with `prefix` (any case): none
    /// is an unknown target, several are ambiguous (`what` names them), an unreadable one is
    /// what it resolves to, and a readable one is `found`'s to resolve.
    fn by_prefix(
        &self,
        text: &str,
        candidates: impl IntoIterator<Item = &'c ManifestEntry>,
        prefix: &str,
        what: String,
        found: impl FnOnce(&'c ManifestEntry) -> anyhow::Result<TargetMatch<'c>>,
    ) -> anyhow::Result<TargetMatch<'c>> {
        let prefix = prefix.to_ascii_lowercase();
        let matching: Vec<&'c ManifestEntry> = candidates
            .into_iter()
            .filter(|m| m.commit.starts_with(&prefix))
            .collect();
        match matching.as_slice() {
            [] => {
                Err(unknown_target(text, self.place, &remote_names(self.catalog), LIST_HINT).into())
            }
            [m] if unreadable(&m.body) => Ok(TargetMatch::Unreadable(&m.key)),
            [m] => found(m),
            many => Err(ambiguous(
                what,
                &many.iter().map(|m| m.key.clone()).collect::<Vec<_>>(),
                REVISION_HINT,
            )
            .into()),
        }
    }

    /// `REPO@REVISION`: a ref name first (`org/m@main`), then a hash prefix among the repo's
    /// revisions and the manifests under its key that cannot be read (either may be it).
    fn repo_revision(&self, text: &str, r: &RepoRef, rev: &str) -> anyhow::Result<TargetMatch<'c>> {
        let Some((t, id)) = self.one_repo(r)? else {
            return Err(
                unknown_target(text, self.place, &remote_names(self.catalog), LIST_HINT).into(),
            );
        };
        let safe = safe_repo_key(&id);
        let ours = self.revisions_of(t, &id);
        if let Some(x) = self.catalog.ref_entry(&safe, rev) {
            if unreadable(&x.body) {
                return Ok(TargetMatch::Unreadable(&x.key));
            }
            if let Some(commit) = x.commit() {
                if ours.iter().any(|m| m.commit == commit) {
                    return Ok(found_revision(text, t, id, commit));
                }
                if let Some(m) = self.unreadable_under(&safe).find(|m| m.commit == commit) {
                    return Ok(TargetMatch::Unreadable(&m.key));
                }
            }
        }
        if !looks_like_hash_prefix(rev) {
            return Err(
                unknown_target(text, self.place, &remote_names(self.catalog), LIST_HINT).into(),
            );
        }
        let candidates = ours.into_iter().chain(self.unreadable_under(&safe));
        let what = format!("revision {rev} of {t}/{id}");
        self.by_prefix(text, candidates, rev, what, |m| {
            Ok(found_revision(text, t, id, &m.commit))
        })
    }
}

fn found(
    text: &str,
    repo_type: RepoType,
    repo: String,
    commits: Vec<String>,
    whole: bool,
) -> TargetMatch<'static> {
    TargetMatch::Found(ResolvedTarget::new(
        text.to_string(),
        repo_type,
        repo,
        commits,
        whole,
    ))
}

fn found_revision(text: &str, t: RepoType, id: String, commit: &str) -> TargetMatch<'static> {
    found(text, t, id, vec![commit.to_string()], false)
}
