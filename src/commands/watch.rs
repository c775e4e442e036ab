//! `watch`: push what huggingface_hub downloads, as it lands. Starts with a push of whatever the
//! remote lacks, then watches the cache: a finished blob, a snapshot link or a ref marks its repo;
//! once the cache has been quiet for the debounce, the marked repos go through the push engine
//! under the cache's push lock (so a manual push waits for it, and it for a manual push).
//!
//! A repo with a download still in progress waits for the next round, so no manifest lists part
//! of a revision. The first Ctrl-C (or SIGTERM) lets a push in flight finish and exits 0; a
//! second one abandons it (main cleans up and exits 130).

use std::collections::BTreeSet;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Result;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{scan_existing, App, Outcome, RepoFilter, TransferOptions};
use crate::cache::lock::WatchLock;
use crate::cache::scan::Repo;
use crate::cache::watch::{download_in_progress, CacheWatch, Seen};
use crate::config::ConfigError;
use crate::manifest::Layout;
use crate::ops::push::{push_round, Round};
use crate::remote::{Remote, RemoteError};
use crate::report::print_data;
use crate::transfer::push::{self, PushSummary};
use crate::transfer::TransferError;

pub struct WatchOptions {
    /// How long the cache must be quiet before a push.
    pub debounce: Duration,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub transfer: TransferOptions,
}

/// After a failed push, the next try waits this long, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Repos waiting to be pushed, and when.
struct Pending {
    /// Repo folders marked by events.
    folders: BTreeSet<String>,
    /// Every repo: at the start, and after the watch lost events.
    all: bool,
    last_activity: Instant,
    /// Not before this (after a failure, or while a download goes on).
    not_before: Option<Instant>,
    backoff: Duration,
}

impl Pending {
    fn record(&mut self, seen: Seen) {
        match seen {
            Seen::Ready(folder) => {
                self.folders.insert(folder);
            }
            Seen::Busy(_) => {}
            Seen::Rescan => self.all = true,
        }
        self.last_activity = Instant::now();
    }

    /// When the next push is due, if anything waits.
    fn due(&self, debounce: Duration) -> Option<Instant> {
        if self.folders.is_empty() && !self.all {
            return None;
        }
        let quiet = self.last_activity + debounce;
        Some(self.not_before.map_or(quiet, |t| t.max(quiet)))
    }

    fn wants(&self, repo: &Repo) -> bool {
        self.all || self.folders.contains(&repo.folder)
    }
}

pub async fn run(app: &App, opts: WatchOptions) -> Result<Outcome> {
    let cache_dir = app.settings.cache_dir.clone();
    let filter = RepoFilter::new(&opts.include, &opts.exclude)?;
    if !cache_dir.is_dir() {
        return Err(ConfigError::Usage {
            message: format!("cannot watch {}: no such directory", cache_dir.display()),
            hint: "point --cache-dir, cache.hf_cache_dir or HF_HUB_CACHE at the cache \
                   huggingface_hub downloads into (or create it first)"
                .into(),
        }
        .into());
    }
    let _one_watch = match WatchLock::try_take(&cache_dir) {
        Ok(Some(lock)) => Some(lock),
        Ok(None) => {
            return Err(ConfigError::Usage {
                message: format!("another watch is already watching {}", cache_dir.display()),
                hint: "one watch a cache pushes every change; stop the other one first".into(),
            }
            .into())
        }
        Err(e) => {
            app.printer.warn(&format!(
                "cannot take the watch lock of {}: {e}",
                cache_dir.display()
            ));
            None
        }
    };
    let (remote, layout) = app.env().open_remote(opts.transfer.remote.as_deref())?;
    let (send, mut events) = tokio::sync::mpsc::unbounded_channel();
    let _watch = CacheWatch::start(&cache_dir, move |seen| {
        let _ = send.send(seen);
    })?;
    app.printer.note(&format!(
        "watching {}: pushing to {} once the cache has been quiet for {} (Ctrl-C to stop)",
        cache_dir.display(),
        remote.describe(),
        humantime::format_duration(opts.debounce)
    ));
    let mut pending = Pending {
        folders: BTreeSet::new(),
        all: true,
        last_activity: Instant::now() - opts.debounce,
        not_before: None,
        backoff: FIRST_BACKOFF,
    };
    let watcher = Watcher {
        app,
        opts: &opts,
        filter: &filter,
        remote: &remote,
        layout: &layout,
    };
    loop {
        tokio::select! {
            biased;
            _ = app.cancel.requested_async() => break,
            seen = events.recv() => match seen {
                Some(seen) => pending.record(seen),
                None => anyhow::bail!("the watch of {} ended", cache_dir.display()),
            },
            _ = sleep_until(pending.due(opts.debounce)) => {
                drain(&mut events, &mut pending);
                if pending.last_activity + opts.debounce <= Instant::now() {
                    watcher.round(&mut pending).await?;
                }
            }
        }
    }
    app.printer.note("stopped watching");
    Ok(Outcome::Success)
}

/// Takes the events already queued, so a push never starts on a cache that just changed.
fn drain(events: &mut UnboundedReceiver<Seen>, pending: &mut Pending) {
    while let Ok(seen) = events.try_recv() {
        pending.record(seen);
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// What a round needs.
struct Watcher<'a> {
    app: &'a App,
    opts: &'a WatchOptions,
    filter: &'a RepoFilter,
    remote: &'a Remote,
    layout: &'a Layout,
}

impl Watcher<'_> {
    /// Pushes the pending repos whose downloads are done. Errors that no retry can fix (the
    /// credentials, the bucket, a read-only key) end the watch; others are retried later.
    async fn round(&self, pending: &mut Pending) -> Result<()> {
        let app = self.app;
        let cache_dir = &app.settings.cache_dir;
        let started = Instant::now();
        let ctx = app.env().transfer_ctx(&self.opts.transfer, "push");
        let _lock = match push::lock_cache(cache_dir, &ctx).await {
            Ok(lock) => lock,
            Err(e) => {
                app.printer.error(&format!("{e}; trying again later"));
                self.retry_later(pending);
                return Ok(());
            }
        };
        let scan = scan_existing(cache_dir).await?;
        let now = SystemTime::now();
        let mut ready: Vec<&Repo> = Vec::new();
        let mut waiting: BTreeSet<String> = BTreeSet::new();
        for repo in scan.repos.iter().filter(|r| pending.wants(r)) {
            if !self.filter.matches(&repo.repo_id) {
                continue;
            }
            if download_in_progress(cache_dir, repo, now, self.opts.debounce) {
                waiting.insert(repo.folder.clone());
            } else {
                ready.push(repo);
            }
        }
        // What the round takes on is no longer pending; what it leaves is, or is again.
        pending.all = false;
        pending.folders = waiting;
        pending.not_before =
            (!pending.folders.is_empty()).then(|| Instant::now() + self.opts.debounce);
        if ready.is_empty() {
            return Ok(());
        }
        let folders: Vec<String> = ready.iter().map(|r| r.folder.clone()).collect();
        let names: Vec<String> = ready.iter().map(|r| r.qualified_id()).collect();
        let round = Round {
            remote: self.remote,
            layout: self.layout,
            ctx: &ctx,
            dry_run: false,
            command: "watch",
        };
        let pushed = push_round(&app.env(), &round, ready).await;
        let (mut summary, warnings) = match pushed {
            Ok(pushed) => pushed,
            Err(e) if ends_the_watch(&e) => return Err(e),
            Err(e) => {
                app.printer
                    .error(&format!("push failed: {e:#}; trying again later"));
                pending.folders.extend(folders);
                self.retry_later(pending);
                return Ok(());
            }
        };
        summary.seconds = started.elapsed().as_secs_f64();
        for w in &warnings {
            app.printer.warn(w);
        }
        self.report(&summary, &names);
        if summary.failures.is_empty() {
            pending.backoff = FIRST_BACKOFF;
        } else {
            pending.folders.extend(folders);
            self.retry_later(pending);
        }
        Ok(())
    }

    fn retry_later(&self, pending: &mut Pending) {
        pending.not_before = Some(Instant::now() + pending.backoff);
        pending.backoff = (pending.backoff * 2).min(MAX_BACKOFF);
    }

    /// One JSON line a round with `--json`; otherwise a line on stderr when anything moved or
    /// failed.
    fn report(&self, summary: &PushSummary, repos: &[String]) {
        let printer = &self.app.printer;
        if printer.json {
            print_data(&serde_json::to_string(summary).expect("summaries serialize"));
            return;
        }
        let moved = summary.uploaded + summary.manifests + summary.refs;
        if moved == 0 && summary.failures.is_empty() {
            return;
        }
        printer.note(&format!("pushed {}: {}", repos.join(", "), summary.text()));
    }
}

/// Errors that every later push would hit too: the watch stops and says what to fix.
fn ends_the_watch(e: &anyhow::Error) -> bool {
    let remote = e.chain().find_map(|c| {
        c.downcast_ref::<RemoteError>()
            .or_else(|| match c.downcast_ref::<TransferError>() {
                Some(TransferError::Remote(r)) => Some(r),
                _ => None,
            })
    });
    match remote {
        // The network comes back; a watch waits for it.
        Some(RemoteError::Unreachable { .. }) => false,
        Some(r) => r.is_fatal(),
        None => e.downcast_ref::<ConfigError>().is_some(),
    }
}
