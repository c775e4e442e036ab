//! One request, start to end: its route, the token check, the revision resolved, the answer,
//! and the access-log entry its body writes when done.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};

use super::reply::{self, Access, Body, Entry};
use super::revision::{Revision, Unresolved};
use super::routes::{route, RepoName, Route};
use super::{api, files, Shared};

/// The largest paths-info body read.
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// What the Hub says to a request without a token it accepts: this message makes
/// huggingface_hub raise its HTTP error (401) rather than call the repo missing.
const BAD_CREDENTIALS: &str = "Invalid credentials in Authorization header";

pub async fn handle(
    shared: Arc<Shared>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let started = Instant::now();
    let in_flight = shared.metrics.started();
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let source = Arc::new(Mutex::new(None));
    let response = answer(&shared, req, &source).await;
    let entry = Entry {
        access: Access {
            peer: peer.ip().to_string(),
            method,
            path,
            status: response.status().as_u16(),
            bytes: 0,
            duration: Duration::ZERO,
            source: None,
            cut: None,
        },
        started,
        source,
        log: shared.log.clone(),
        in_flight,
    };
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(parts, body.logged(entry)))
}

async fn answer(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    source: &Arc<Mutex<Option<String>>>,
) -> Response<Body> {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let which = route(&method, &path);
    if which == Route::Health {
        return reply::json(StatusCode::OK, &serde_json::json!({"status": "ok"}));
    }
    let given = req.headers().get("authorization").map(|v| v.as_bytes());
    if let Some(gate) = &shared.gate {
        if let Some(repo) = repo_of(&which) {
            if let Err(refused) = gate.check(repo, given, shared.tokens.as_ref()).await {
                return refused;
            }
        }
    } else if let Some(tokens) = &shared.tokens {
        if !tokens.admits(given) {
            return reply::error_saying(
                StatusCode::UNAUTHORIZED,
                (None, BAD_CREDENTIALS),
                "this server wants one of its team's tokens (--auth tokens=FILE) as a bearer \
                 token: set HF_TOKEN to it",
            );
        }
    }
    match which {
        Route::Health => unreachable!("answered above"),
        Route::Page => {
            let repos = shared.repos.rows().await;
            let html = super::page::render(&shared.described, &repos, &shared.metrics.last_hour());
            reply::text(StatusCode::OK, "text/html; charset=utf-8", html)
        }
        // The scrape itself is not counted in flight: at rest the gauge reads 0.
        Route::Metrics => reply::text(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            shared.metrics.render(1),
        ),
        Route::Unknown => reply::error(StatusCode::NOT_FOUND, None, "Not Found"),
        Route::Invalid(why) => reply::error(StatusCode::BAD_REQUEST, None, &why),
        Route::RepoInfo { repo, revision } => {
            let revision = revision.as_deref().unwrap_or("main");
            match resolve(shared, &repo, revision).await {
                Ok(rev) => api::repo_info(&rev),
                Err(r) => r,
            }
        }
        Route::Tree {
            repo,
            revision,
            path: folder,
        } => match resolve(shared, &repo, &revision).await {
            Ok(rev) => {
                let base = base_url(&req);
                api::tree(&rev, &folder, (&path, &query, &base))
            }
            Err(r) => r,
        },
        Route::PathsInfo { repo, revision } => {
            let json_body = req
                .headers()
                .get("content-type")
                .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
            let rev = match resolve(shared, &repo, &revision).await {
                Ok(rev) => rev,
                Err(r) => return r,
            };
            let limited = http_body_util::Limited::new(req.into_body(), MAX_FORM_BYTES);
            let body = match limited.collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => return reply::error(StatusCode::BAD_REQUEST, None, &e.to_string()),
            };
            match api::paths_of(&body, json_body) {
                Ok(paths) => api::paths_info(&rev, &paths),
                Err(why) => reply::error(StatusCode::BAD_REQUEST, None, &why),
            }
        }
        Route::Resolve {
            repo,
            revision,
            path: file,
        } => {
            let head = method == "HEAD";
            let range = req
                .headers()
                .get("range")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            match resolve(shared, &repo, &revision).await {
                Ok(rev) => {
                    files::answer(shared, &rev, &file, (head, range.as_deref()), source).await
                }
                Err(r) => r,
            }
        }
    }
}

/// The repo a route reads from.
fn repo_of(which: &Route) -> Option<&RepoName> {
    match which {
        Route::RepoInfo { repo, .. }
        | Route::Tree { repo, .. }
        | Route::PathsInfo { repo, .. }
        | Route::Resolve { repo, .. } => Some(repo),
        Route::Health | Route::Page | Route::Metrics | Route::Unknown | Route::Invalid(_) => None,
    }
}

/// The revision, or the Hub's answer when it cannot be served.
async fn resolve(
    shared: &Arc<Shared>,
    repo: &RepoName,
    revision: &str,
) -> Result<Arc<Revision>, Response<Body>> {
    let s = shared;
    // Under `--auth hub` the Hub admitted this client to the repo before it got here.
    let settings = (s.cache_dir.as_path(), s.allow_gated || s.gate.is_some());
    match s
        .revisions
        .resolve(&s.sources, &s.ctx, settings, repo, revision)
        .await
    {
        Ok(rev) => Ok(rev),
        // A miss is an answer like any other: the access log has it.
        Err(Unresolved::RepoNotFound) => {
            Err(reply::not_found("RepoNotFound", "Repository not found"))
        }
        Err(Unresolved::RevisionNotFound(why)) => Err(reply::not_found("RevisionNotFound", &why)),
        Err(Unresolved::Gated(why)) => {
            Err(reply::error(StatusCode::FORBIDDEN, Some("GatedRepo"), &why))
        }
        Err(Unresolved::Failed(why)) => {
            s.note(&format!("warning: {}@{revision}: {why}", repo.id));
            Err(reply::error(StatusCode::BAD_GATEWAY, None, &why))
        }
    }
}

/// `http://host[:port]` as the client reached this server (its `Host` header), for links.
fn base_url(req: &Request<Incoming>) -> String {
    let host = req
        .headers()
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|p| *p == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}
