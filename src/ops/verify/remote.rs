//! The remote side of `verify`: every manifest's blobs on the remote with the sizes it states, every ref
//! naming a commit that has a manifest. The catalog does the reading (one LIST per prefix,
//! concurrent GETs); a manifest or ref that cannot be read or is refused is a problem, and the
//! check goes on with the rest.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use anyhow::Result;
use serde::Serialize;

use super::{Problem, ProblemKind};
use crate::manifest::{Layout, Manifest};
use crate::ops::repos::{require_on_remote, RepoRef};
use crate::remote::catalog::{
    Body, Catalog, ManifestEntry, ReadFailure, ReadMode, RefEntry, Scope,
};
use crate::remote::Remote;

#[derive(Debug, Serialize)]
pub struct RemoteVerifyReport {
    pub command: &'static str,
    pub scope: &'static str,
    pub remote: String,
    pub manifests: usize,
    pub refs: usize,
    /// Distinct blobs the checked manifests name.
    pub blobs: usize,
    pub problems: Vec<Problem>,
    pub seconds: f64,
}

/// Checks the remote's manifests and refs of the repos in `wanted` (all when empty), reading
/// `workers` bodies at once. A repo asked for that the remote lacks fails the run.
pub async fn verify_remote(
    remote: &Remote,
    layout: &Layout,
    wanted: &[RepoRef],
    workers: usize,
) -> Result<RemoteVerifyReport> {
    let started = Instant::now();
    // One LIST each: blobs with their sizes, manifests, refs.
    let mut catalog = Catalog::list(remote, layout, true)
        .await?
        .reading(workers, ReadMode::Warn);
    require_on_remote(&catalog, wanted, &remote.describe())?;
    let scope = Scope::repos(wanted.iter().map(|w| w.repo_id.as_str()));
    catalog.read(&scope).await?;

    let mut check = Check {
        catalog: &catalog,
        layout,
        wanted,
        problems: Vec::new(),
        manifests: 0,
        blobs: HashSet::new(),
    };
    for e in catalog.manifests().filter(|e| scope.covers(&e.safe)) {
        check.manifest(e);
    }
    let mut refs = 0;
    for r in catalog.refs().filter(|r| scope.covers(&r.safe)) {
        refs += 1;
        check.reference(r);
    }
    Ok(RemoteVerifyReport {
        command: "verify",
        scope: "remote",
        remote: remote.url(),
        manifests: check.manifests,
        refs,
        blobs: check.blobs.len(),
        problems: check.problems,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// What the catalog's entries show, problem by problem, in key order.
struct Check<'a> {
    catalog: &'a Catalog<'a>,
    layout: &'a Layout,
    wanted: &'a [RepoRef],
    problems: Vec<Problem>,
    /// Manifests of the repos asked for that were checked.
    manifests: usize,
    blobs: HashSet<String>,
}

impl Check<'_> {
    fn manifest(&mut self, e: &ManifestEntry) {
        let manifest = match &e.body {
            // Deleted between the LIST and the GET: nothing left to check.
            Body::Unread | Body::Gone => return,
            Body::Valid(m) | Body::Failed(ReadFailure::Misplaced(m)) => m,
            Body::Failed(failure) => {
                let detail = match failure {
                    ReadFailure::Unreadable(_) => format!("cannot read: {failure}"),
                    _ => failure.to_string(),
                };
                self.problem(ProblemKind::BadManifest, detail, &e.key);
                return;
            }
        };
        let repo_type = manifest.repo_type().expect("validated");
        let asked = self.wanted.is_empty()
            || self
                .wanted
                .iter()
                .any(|w| w.matches(repo_type, &manifest.repo));
        if !asked {
            return;
        }
        self.manifests += 1;
        if matches!(e.body, Body::Failed(_)) {
            let expected = self.layout.manifest_key(&manifest.repo, &manifest.revision);
            let detail = format!(
                "describes {}@{}, which belongs under {expected}",
                manifest.repo, manifest.revision
            );
            self.problem(ProblemKind::BadManifest, detail, &e.key);
            return;
        }
        self.blobs_of(manifest, &format!("{repo_type}/{}", manifest.repo));
    }

    /// Each (blob, size) the manifest names once, with the paths that use it.
    fn blobs_of(&mut self, manifest: &Manifest, repo: &str) {
        let mut uses: BTreeMap<(&str, u64), Vec<String>> = BTreeMap::new();
        for f in &manifest.files {
            uses.entry((&f.blob, f.size))
                .or_default()
                .push(f.path.clone());
        }
        for ((etag, size), paths) in uses {
            self.blobs.insert(etag.to_string());
            let (kind, detail) = match self.catalog.blobs().get(etag) {
                Some(&actual) if actual == size => continue,
                Some(&actual) => (
                    ProblemKind::SizeMismatch,
                    format!("the manifest says {size} bytes, the remote holds {actual}"),
                ),
                None => (
                    ProblemKind::MissingBlob,
                    "named by the manifest but not on the remote".to_string(),
                ),
            };
            let mut p = Problem::new(kind, detail);
            p.repo = Some(repo.to_string());
            p.revision = Some(manifest.revision.clone());
            p.etag = Some(etag.to_string());
            p.key = Some(self.layout.blob_key(etag));
            p.paths = paths;
            self.problems.push(p);
        }
    }

    fn reference(&mut self, r: &RefEntry) {
        let commit = match &r.body {
            Body::Unread | Body::Gone => return,
            Body::Valid(commit) => commit,
            Body::Failed(failure @ ReadFailure::Unreadable(_)) => {
                let detail = format!("cannot read: {failure}");
                self.problem(ProblemKind::BadRef, detail, &r.key);
                return;
            }
            Body::Failed(_) => {
                let detail = format!("ref {} of {} does not hold a commit hash", r.name, r.safe);
                self.problem(ProblemKind::BadRef, detail, &r.key);
                return;
            }
        };
        if !self.catalog.has_manifest_key(&r.safe, commit) {
            // `safe` has no `/`, so it maps to itself.
            let manifest_key = self.layout.manifest_key(&r.safe, commit);
            let mut p = Problem::new(
                ProblemKind::DanglingRef,
                format!(
                    "ref {} points at {commit}, which has no manifest ({manifest_key})",
                    r.name
                ),
            );
            p.key = Some(r.key.clone());
            p.revision = Some(commit.clone());
            self.problems.push(p);
        }
    }

    fn problem(&mut self, kind: ProblemKind, detail: String, key: &str) {
        let mut p = Problem::new(kind, detail);
        p.key = Some(key.to_string());
        self.problems.push(p);
    }
}
