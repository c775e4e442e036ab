//! `serve`: the team cache as a Hugging Face Hub endpoint, so a huggingface_hub client pulls
//! from the bucket with `HF_ENDPOINT` alone. Revisions resolve through the pull's sources (the
//! remote, then each fallback), files stream from them through the verifier, and the answers
//! carry the Hub's headers and JSON. HTTP/1.1 on hyper; a stop request ends accepting and lets
//! the responses in flight finish for a grace period.

mod api;
pub mod auth;
mod files;
mod gate;
mod git;
mod handler;
pub mod metrics;
pub mod page;
mod presign;
pub mod reply;
mod revision;
mod routes;
pub mod through;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

pub use auth::Tokens;
pub use gate::HubGate;
pub use metrics::Metrics;
pub use page::{ListRepos, RepoRow};
pub use reply::{Access, AccessLog};

use crate::net::TransferCtx;
use crate::transfer::source::Sources;
use crate::transfer::stream::BadObjects;

/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// What every request is answered with: the sources and the limits transfers share, what
/// this process learned (revisions, corrupt objects), who may read, where the log goes.
pub struct Shared {
    pub sources: Sources,
    pub ctx: TransferCtx,
    pub bad: BadObjects,
    revisions: revision::Revisions,
    pub tokens: Option<Tokens>,
    /// `--auth hub`: the upstream Hub decides who reads gated and private repos.
    pub gate: Option<HubGate>,
    /// The local cache dir, which the pull's resolution checks paths against (written only
    /// with `--write-through`, by the pull that fetches a revision the remote lacks; read
    /// first with `--from-cache`, as the first of the sources).
    pub cache_dir: PathBuf,
    pub allow_gated: bool,
    pub log: AccessLog,
    requests: AtomicU64,
    pub metrics: Arc<Metrics>,
    /// The remote's repos for the page at `/`, listed at most a short while ago.
    repos: page::RepoCache,
    /// The sources as the page names them.
    described: Vec<String>,
    /// `--write-through`: what a later source serves lands in the bucket, one fetch a revision.
    pub through: Option<through::ReadThrough>,
    /// `--presign`: LFS files the bucket holds are answered with a 302 to a URL valid this long.
    pub presign: Option<Duration>,
    /// Blobs a HEAD found whole in the bucket, for `--presign`.
    confirmed: presign::Confirmed,
}

impl Shared {
    pub fn new(
        sources: Sources,
        ctx: TransferCtx,
        (tokens, gate): (Option<Tokens>, Option<HubGate>),
        (cache_dir, allow_gated): (PathBuf, bool),
        log: AccessLog,
    ) -> Shared {
        let metrics = Arc::new(Metrics::new(sources.home_source().url()));
        let described = sources.describe();
        Shared {
            sources,
            ctx,
            bad: BadObjects::default(),
            revisions: revision::Revisions::default(),
            tokens,
            gate,
            cache_dir,
            allow_gated,
            log,
            requests: AtomicU64::new(0),
            metrics,
            repos: page::RepoCache::new(None),
            described,
            through: None,
            presign: None,
            confirmed: presign::Confirmed::default(),
        }
    }

    /// Writes what a later source serves through to the bucket with `fetch`.
    pub fn writing_through(mut self, fetch: through::FetchRevision) -> Shared {
        self.through = Some(through::ReadThrough::new(fetch));
        self
    }

    /// Answers LFS files the bucket holds with a 302 to a presigned URL valid for `ttl`.
    pub fn presigning(mut self, ttl: Duration) -> Shared {
        self.presign = Some(ttl);
        self
    }

    /// Lists the remote's repos for the page at `/` with `lister`.
    pub fn listing_with(mut self, lister: ListRepos) -> Shared {
        self.repos = page::RepoCache::new(Some(lister));
        self
    }

    /// A line for the server's log that is not a request's.
    fn note(&self, line: &str) {
        self.ctx.progress.log(line);
    }
}

/// How the server stopped.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stopped {
    pub requests: u64,
    /// Connections still busy when the grace period ran out, dropped.
    pub cut_at_stop: bool,
}

/// Answers connections on `listener` until `stop` resolves, then stops accepting and gives
/// the responses in flight up to `grace` to finish.
pub async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    stop: impl Future<Output = ()>,
    grace: Duration,
) -> Stopped {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(got) => got,
                Err(e) => {
                    // Out of descriptors, a connection reset before it was taken: the next
                    // one may do, after a breath.
                    shared.note(&format!("warning: accepting a connection: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let s = shared.clone();
        let service = service_fn(move |req| {
            s.requests.fetch_add(1, Ordering::Relaxed);
            handler::handle(s.clone(), peer, req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    drop(listener);
    let cut_at_stop = tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err();
    Stopped {
        requests: shared.requests.load(Ordering::Relaxed),
        cut_at_stop,
    }
}

/// Whether clients on other machines can reach `addr`.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().is_loopback()
}
