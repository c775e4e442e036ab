//! What the cache scanner finds wrong with a repo beyond its blobs' content: snapshot links to
//! blobs that are missing, and the scanner's own warnings, attributed to their repo.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{Problem, ProblemKind};
use crate::cache::is_blob_name;
use crate::cache::scan::{normalize_lexically, relative_slash_path, CacheScan, Repo};
use crate::text::plural;

/// Missing blobs (from broken snapshot links) and the scanner's other findings, for the chosen
/// repos; warnings about no repo in particular only when the whole cache is checked.
pub fn structural_problems(scan: &CacheScan, chosen: &[usize], whole_cache: bool) -> Vec<Problem> {
    let mut problems = Vec::new();
    // Links already reported as a missing blob: the scanner's warning about each says no more.
    let mut explained: Vec<PathBuf> = Vec::new();
    for &i in chosen {
        let repo = &scan.repos[i];
        for (etag, uses) in missing_blobs(repo) {
            let n = uses.len();
            let mut p = Problem::new(
                ProblemKind::MissingBlob,
                format!(
                    "blobs/{etag} is missing or unusable; {} broken",
                    plural(n, "snapshot link is", "snapshot links are")
                ),
            );
            p.repo = Some(repo.qualified_id());
            p.etag = Some(etag);
            for (path, link) in uses {
                p.paths.push(path);
                explained.push(link);
            }
            problems.push(p);
        }
    }
    for w in &scan.warnings {
        if explained.contains(&w.path) || w.advisory {
            continue;
        }
        let owner = chosen
            .iter()
            .map(|&i| &scan.repos[i])
            .find(|r| w.repo.as_deref() == Some(r.folder.as_str()));
        if owner.is_none() && !whole_cache {
            continue;
        }
        let mut p = Problem::new(ProblemKind::Cache, w.to_string());
        p.repo = owner.map(Repo::qualified_id);
        problems.push(p);
    }
    problems
}

/// Snapshot links into this repo's `blobs/` whose blob the scanner did not accept (absent, a
/// broken link, a link out of the cache): etag → (`<commit>/<path>`, link).
pub fn missing_blobs(repo: &Repo) -> BTreeMap<String, Vec<(String, PathBuf)>> {
    let mut out: BTreeMap<String, Vec<(String, PathBuf)>> = BTreeMap::new();
    let blobs_dir = normalize_lexically(&repo.dir.join("blobs"));
    let Ok(entries) = fs::read_dir(repo.dir.join("snapshots")) else {
        return out;
    };
    for entry in entries.filter_map(Result::ok) {
        let root = entry.path();
        if !root.is_dir() {
            continue;
        }
        let Ok(commit) = entry.file_name().into_string() else {
            continue;
        };
        let mut links = Vec::new();
        collect_links(&root, &mut links);
        for link in links {
            let Ok(target) = fs::read_link(&link) else {
                continue;
            };
            let Some(parent) = link.parent() else {
                continue;
            };
            let joined = normalize_lexically(&parent.join(target));
            let name = joined.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if joined.parent() != Some(blobs_dir.as_path())
                || !is_blob_name(name)
                || repo.blobs.contains_key(name)
            {
                continue;
            }
            let Some(rel) = relative_slash_path(&root, &link) else {
                continue;
            };
            out.entry(name.to_string())
                .or_default()
                .push((format!("{commit}/{rel}"), link));
        }
    }
    out
}

fn collect_links(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        match entry.file_type() {
            Ok(t) if t.is_dir() => collect_links(&entry.path(), out),
            Ok(t) if t.is_symlink() => out.push(entry.path()),
            _ => {}
        }
    }
}
