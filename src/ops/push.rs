//! Pushing the cache to a remote. [`push`] is the job of `push`: the cache scanned under its
//! push lock, the repos chosen, then one [`push_round`]. A round — blobs the remote lacks, then
//! manifests, then refs, under the bucket's shared lock — is what `watch` runs each time
//! downloads settle, and what write-through runs for a revision a fallback served.

use std::sync::Mutex;
use std::time::Instant;

use anyhow::Result;

use super::repos::{require_repos, RepoRef, LOCAL_LIST_HINT};
use super::{Env, RepoFilter, TransferOptions};
use crate::cache::scan::Repo;
use crate::manifest::Layout;
use crate::net::TransferCtx;
use crate::remote::Remote;
use crate::transfer::push::{self, PushSummary};

pub struct PushOptions {
    /// Repos named on the command line (none: every repo).
    pub repos: Vec<String>,
    /// `--include` / `--exclude` globs over repo ids.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub transfer: TransferOptions,
}

/// What a push did, and what it has to say besides.
pub struct Pushed {
    pub summary: PushSummary,
    /// Lines for stderr: an odd cache entry, a file left out.
    pub warnings: Vec<String>,
    /// What the selection left out for nothing, an empty cache.
    pub notes: Vec<String>,
}

/// `push`: see the module doc.
pub async fn push(env: &Env<'_>, opts: PushOptions) -> Result<Pushed> {
    let started = Instant::now();
    let filter = RepoFilter::new(&opts.include, &opts.exclude)?;
    let wanted = RepoRef::parse_all(&opts.repos)?;
    let (mut remote, layout) = env.open_remote(opts.transfer.remote.as_deref())?;
    let ctx = env.transfer_ctx(&opts.transfer, "push");
    // `push --remote DIR` makes its destination, as cp and rsync do; a pull never does.
    if opts.transfer.remote.is_some() {
        if let Some(root) = remote.create_for_push(opts.transfer.dry_run)? {
            let verb = if opts.transfer.dry_run {
                "would create"
            } else {
                "created"
            };
            ctx.progress
                .log(&format!("{verb} remote directory {}", root.display()));
        }
    }
    let cache_dir = &env.settings.cache_dir;
    let _lock = push::lock_cache(cache_dir, &ctx).await?;
    let scan = super::scan_existing(cache_dir).await?;
    let mut warnings: Vec<String> = scan.warnings.iter().map(|w| w.to_string()).collect();
    require_repos(&scan, &wanted)?;
    let mut notes = Vec::new();
    if scan.repos.is_empty() {
        notes.push(format!(
            "no repos in {}: nothing to push",
            scan.root.display()
        ));
    }
    let named: Vec<&Repo> = scan
        .repos
        .iter()
        .filter(|r| wanted.is_empty() || wanted.iter().any(|w| w.matches(r.repo_type, &r.repo_id)))
        .collect();
    let repos: Vec<&Repo> = named
        .iter()
        .copied()
        .filter(|r| filter.matches(&r.repo_id))
        .collect();
    let ids: Vec<&str> = named.iter().map(|r| r.repo_id.as_str()).collect();
    let place = format!("the cache at {}", scan.root.display());
    notes.extend(filter.check(&ids, repos.len(), &place, LOCAL_LIST_HINT)?);
    let round = Round {
        remote: &remote,
        layout: &layout,
        ctx: &ctx,
        dry_run: opts.transfer.dry_run,
        command: "push",
    };
    let (mut summary, said) = push_round(env, &round, repos).await?;
    warnings.extend(said);
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(Pushed {
        summary,
        warnings,
        notes,
    })
}

/// Where a round pushes to and how.
pub struct Round<'a> {
    pub remote: &'a Remote,
    pub layout: &'a Layout,
    pub ctx: &'a TransferCtx,
    pub dry_run: bool,
    /// The command the summary names (`push`, `watch`).
    pub command: &'static str,
}

/// Pushes `repos` (from a scan taken under the cache's push lock) as the settings' policy
/// allows: the summary, and the warnings said on the way. An error every later round would hit
/// too (credentials, the bucket) ends it.
pub async fn push_round(
    env: &Env<'_>,
    round: &Round<'_>,
    repos: Vec<&Repo>,
) -> Result<(PushSummary, Vec<String>)> {
    let mut summary = PushSummary {
        command: round.command,
        remote: round.remote.url(),
        dry_run: round.dry_run,
        ..Default::default()
    };
    let warnings = Mutex::new(Vec::new());
    let warn = |msg: &str| warnings.lock().expect("not poisoned").push(msg.to_string());
    push::push_repos(
        round.remote,
        round.layout,
        round.ctx,
        repos,
        env.push_policy(),
        round.dry_run,
        &mut summary,
        &warn,
    )
    .await?;
    Ok((summary, warnings.into_inner().expect("not poisoned")))
}
