//! `pull-all`: every remote repo with a `main` ref. Refs and manifests are resolved concurrently,
//! then all blobs of all repos go through one transfer pool; a repo that fails does not stop the
//! others.

use std::collections::BTreeSet;
use std::time::Instant;

use anyhow::Result;
use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::{short, App, Outcome, RepoFilter, TransferOptions};
use crate::cache::RepoType;
use crate::manifest::{parse_ref_body, MAX_REF_BYTES};
use crate::report::human_bytes;
use crate::transfer::pull::{self, Counts, PullError, Target};

pub struct PullAllOptions {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub limit: Option<usize>,
    pub transfer: TransferOptions,
}

#[derive(Debug, Serialize)]
pub struct RepoResult {
    pub repo: String,
    pub repo_type: Option<RepoType>,
    pub revision: Option<String>,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize)]
pub struct PullAllSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub repos: Vec<RepoResult>,
    pub downloaded: usize,
    pub skipped_existing: usize,
    pub failed: usize,
    pub bytes_downloaded: u64,
    pub seconds: f64,
}

pub async fn run(app: &App, opts: PullAllOptions) -> Result<Outcome> {
    let started = Instant::now();
    let filter = RepoFilter::new(&opts.include, &opts.exclude)?;
    let (remote, layout) = app.open_remote(opts.transfer.remote.as_deref())?;
    let ctx = app.transfer_ctx(&opts.transfer, "pull-all");
    let cache_dir = &app.settings.cache_dir;

    // Every `refs/<repo>/main`; the manifest, not the key, says which repo it is.
    let ref_keys: BTreeSet<String> = remote
        .list(&layout.refs_prefix())
        .await?
        .into_iter()
        .filter(|o| matches!(layout.parse_ref_key(&o.key), Some((_, "main"))))
        .map(|o| o.key)
        .collect();
    let layout_ref = &layout;
    let remote_ref = &remote;
    let resolved: Vec<(String, Result<pull::Plan, PullError>)> = stream::iter(ref_keys)
        .map(|key| async move {
            let (safe, _) = layout_ref.parse_ref_key(&key).expect("filtered above");
            let guess = safe.replacen("__", "/", 1);
            let result = async {
                let body = remote_ref
                    .get(&key, MAX_REF_BYTES)
                    .await?
                    .ok_or_else(|| PullError::Missing(format!("{key} disappeared")))?;
                let commit = parse_ref_body(&body).ok_or_else(|| {
                    PullError::Refused(format!("{key}: ref body is not a commit hash"))
                })?;
                // The key cannot tell `a__b/c` from `a/b__c`; the manifest can.
                let manifest = find_manifest(remote_ref, layout_ref, safe, &commit).await?;
                let target = Target {
                    repo_id: manifest.repo.clone(),
                    repo_type: None,
                    revision: Some("main".into()),
                };
                pull::resolve(remote_ref, layout_ref, cache_dir, &target).await
            }
            .await;
            (guess, result)
        })
        .buffer_unordered(ctx.workers)
        .collect()
        .await;

    let mut plans = Vec::new();
    let mut repos = Vec::new();
    let mut resolved = resolved;
    resolved.sort_by(|a, b| a.0.cmp(&b.0));
    for (guess, result) in resolved {
        match result {
            Ok(plan) if filter.matches(&plan.repo_id) => plans.push(plan),
            Ok(_) => {}
            Err(PullError::Remote(e)) if e.is_fatal() => return Err(e.into()),
            Err(e) if filter.matches(&guess) => repos.push(RepoResult {
                repo: guess,
                repo_type: None,
                revision: None,
                status: "failed",
                error: Some(e.to_string()),
                counts: Counts::default(),
            }),
            Err(_) => {}
        }
    }
    plans.sort_by(|a, b| (&a.repo_id, a.repo_type).cmp(&(&b.repo_id, b.repo_type)));
    if let Some(limit) = opts.limit {
        plans.truncate(limit);
    }

    let dry_run = opts.transfer.dry_run;
    let pull::Fetched {
        counts,
        failures,
        leases,
    } = pull::fetch_plans(&remote, &layout, cache_dir, &ctx, &plans, dry_run).await?;

    for (i, plan) in plans.iter().enumerate() {
        let mut errors: Vec<String> = failures
            .iter()
            .filter(|(p, _)| *p == i)
            .map(|(_, f)| f.to_string())
            .collect();
        if errors.is_empty() && !opts.transfer.dry_run {
            if let Err(e) = pull::finish(cache_dir, plan) {
                errors.push(e.to_string());
            }
        }
        repos.push(RepoResult {
            repo: plan.repo_id.clone(),
            repo_type: Some(plan.repo_type),
            revision: Some(plan.commit.clone()),
            status: if errors.is_empty() { "ok" } else { "failed" },
            error: (!errors.is_empty()).then(|| errors.join("; ")),
            counts: counts[i].clone(),
        });
    }
    drop(leases);
    repos.sort_by(|a, b| a.repo.cmp(&b.repo));

    let failed = repos.iter().filter(|r| r.status == "failed").count();
    let summary = PullAllSummary {
        command: "pull-all",
        remote: remote.describe(),
        dry_run: opts.transfer.dry_run,
        downloaded: repos.iter().map(|r| r.counts.downloaded).sum(),
        skipped_existing: repos.iter().map(|r| r.counts.skipped_existing).sum(),
        bytes_downloaded: repos.iter().map(|r| r.counts.bytes_downloaded).sum(),
        failed,
        repos,
        seconds: started.elapsed().as_secs_f64(),
    };
    app.printer.result(&summary, || {
        let mut lines: Vec<String> = summary
            .repos
            .iter()
            .map(|r| {
                let rev = r.revision.as_deref().map(short).unwrap_or("-");
                match &r.error {
                    None => format!(
                        "  ok      {}@{rev}: {} downloaded, {} already present",
                        r.repo, r.counts.downloaded, r.counts.skipped_existing
                    ),
                    Some(e) => format!("  failed  {}@{rev}: {e}", r.repo),
                }
            })
            .collect();
        lines.push(format!(
            "{} {} repos ({} failed): {} blobs downloaded ({}), {} already present, in {:.1}s",
            if summary.dry_run {
                "Would pull"
            } else {
                "Pulled"
            },
            summary.repos.len(),
            summary.failed,
            summary.downloaded,
            human_bytes(summary.bytes_downloaded),
            summary.skipped_existing,
            summary.seconds
        ));
        lines.join("\n")
    });
    Ok(Outcome::from_failures(failed))
}

/// The manifest a `refs/<safe>/main` points at; tries the decodings of an ambiguous key.
async fn find_manifest(
    remote: &crate::remote::Remote,
    layout: &crate::manifest::Layout,
    safe: &str,
    commit: &str,
) -> Result<crate::manifest::Manifest, PullError> {
    // Any decoding gives the same manifest key, since encoding maps "/" back to "__".
    let candidate = safe.replacen("__", "/", 1);
    pull::get_manifest(remote, layout, &candidate, commit)
        .await?
        .ok_or_else(|| {
            PullError::Missing(format!(
                "no manifest for {candidate}@{commit} on the remote"
            ))
        })
}
