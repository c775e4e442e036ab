//! `push`: scan the cache, choose the repos, and run the push engine: blobs the remote lacks,
//! then manifests, then refs.

use std::time::Instant;

use anyhow::Result;

use super::repos::LOCAL_LIST_HINT;
use super::{
    planned_lines, require_repos, scan_existing, App, Outcome, RepoFilter, RepoRef, TransferOptions,
};
use crate::cache::scan::Repo;
use crate::transfer::push::{self, PushPolicy, PushSummary};

pub struct PushOptions {
    pub repos: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub transfer: TransferOptions,
}

pub async fn run(app: &App, opts: PushOptions) -> Result<Outcome> {
    let started = Instant::now();
    let filter = RepoFilter::new(&opts.include, &opts.exclude)?;
    let wanted = RepoRef::parse_all(&opts.repos)?;
    let (mut remote, layout) = app.open_remote(opts.transfer.remote.as_deref())?;
    let ctx = app.transfer_ctx(&opts.transfer, "push");
    let progress = ctx.progress.clone();
    // `push --remote DIR` makes its destination, as cp and rsync do; a pull never does.
    if opts.transfer.remote.is_some() {
        if let Some(root) = remote.create_for_push(opts.transfer.dry_run)? {
            let verb = if opts.transfer.dry_run {
                "would create"
            } else {
                "created"
            };
            progress.log(&format!("{verb} remote directory {}", root.display()));
        }
    }

    let _lock = push::lock_cache(&app.settings.cache_dir, &ctx).await?;
    let scan = scan_existing(&app.settings.cache_dir).await?;
    for w in &scan.warnings {
        app.printer.warn(&w.to_string());
    }
    require_repos(&scan, &wanted)?;
    if scan.repos.is_empty() {
        app.printer.note(&format!(
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
    for note in filter.check(&ids, repos.len(), &place, LOCAL_LIST_HINT)? {
        app.printer.note(&note);
    }

    let mut summary = PushSummary {
        command: "push",
        remote: remote.url(),
        dry_run: opts.transfer.dry_run,
        ..Default::default()
    };
    let policy = PushPolicy {
        allow_gated: app.settings.allow_gated,
        sync_xet: app.settings.sync_xet,
    };
    let warn = |msg: &str| app.printer.warn(msg);
    push::push_repos(
        &remote,
        &layout,
        &ctx,
        repos,
        policy,
        opts.transfer.dry_run,
        &mut summary,
        &warn,
    )
    .await?;
    summary.seconds = started.elapsed().as_secs_f64();
    let outcome = Outcome::from_failures(summary.failures.len());
    let verbose = app.printer.verbose;
    app.printer
        .result(&summary, || human_summary(&summary, verbose));
    Ok(outcome)
}

/// What a dry run would move, revision by revision (blob by blob with -v), then the totals.
fn human_summary(s: &PushSummary, verbose: bool) -> String {
    let planned = s.planned.as_deref().unwrap_or_default();
    let words = ("would upload", "already on the remote");
    let mut lines = planned_lines(planned, words, true, verbose);
    lines.push(s.text());
    lines.join("\n")
}
