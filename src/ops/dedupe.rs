//! `dedupe`'s operation: each blob stored once across the repos of a cache and across the cache
//! dirs given, copies becoming reflinks or hard links, never across file systems. Planning and
//! linking are [`crate::cache::dedupe`]'s; this takes the caches together and reports.

use std::path::PathBuf;

use anyhow::Result;
use serde::Serialize;

use crate::cache::dedupe::{self, Report};
use crate::cache::scan::{self, CacheScan};
use crate::cancel::Cancel;

#[derive(Debug, Serialize)]
pub struct DedupeReport {
    pub command: &'static str,
    pub dry_run: bool,
    pub cache_dirs: Vec<PathBuf>,
    #[serde(flatten)]
    pub report: Report,
}

/// The caches a dedupe takes together, each scanned.
pub struct Caches {
    pub dirs: Vec<PathBuf>,
    /// One a dir, in order; a dir that does not exist is `!exists`, and nothing may change then.
    pub scans: Vec<CacheScan>,
}

/// Scans each of `dirs` once: the same dir named twice (or through a link) is one cache.
pub async fn scan_caches(dirs: &[PathBuf]) -> Result<Caches> {
    let mut distinct: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let canonical = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
        if !distinct
            .iter()
            .any(|d| std::fs::canonicalize(d).is_ok_and(|c| c == canonical))
        {
            distinct.push(dir.clone());
        }
    }
    let scan_dirs = distinct.clone();
    let scans: Vec<CacheScan> =
        tokio::task::spawn_blocking(move || scan_dirs.iter().map(|d| scan::scan(d)).collect())
            .await?;
    Ok(Caches {
        dirs: distinct,
        scans,
    })
}

/// Links the copies of each blob across `caches` (for a dry run, says what it would link
/// without reading or changing a file). `cancel` stops it between two blobs.
pub async fn dedupe(caches: Caches, dry_run: bool, cancel: &Cancel) -> Result<DedupeReport> {
    let (groups, cross_fs) = dedupe::plan(dedupe::copies(&caches.scans));
    let mut report = if dry_run {
        dedupe::preview(&groups)
    } else {
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || dedupe::execute(&groups, &|| cancel.requested()))
            .await?
    };
    report.kept.extend(cross_fs);
    Ok(DedupeReport {
        command: "dedupe",
        dry_run,
        cache_dirs: caches.dirs,
        report,
    })
}
