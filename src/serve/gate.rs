//! `--auth hub`: a gated or private repo is served only to a client whose own token the
//! upstream Hub admits, as the Hub itself would; a public one to anyone. Whether a repo is
//! public is asked once per repo (this process's own token), whether a token is admitted once
//! per token and repo (that token alone); both answers are kept for a while, keyed by the
//! token's sha256, never the token. A repo the Hub does not know is served only to a token of
//! `--auth tokens=FILE`, when given.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::{Response, StatusCode};

use super::auth::{bearer, digest, Tokens};
use super::reply::{self, Body};
use super::routes::RepoName;
use crate::cache::RepoType;
use crate::config::Secret;
use crate::hub::access::Visibility;
use crate::hub::Hub;

/// How long the Hub's word that a repo is public, gated or private holds.
const VISIBILITY_TTL: Duration = Duration::from_secs(5 * 60);
/// How long an admitted token stays admitted to a repo.
const YES_TTL: Duration = Duration::from_secs(5 * 60);
/// How long a refused token stays refused (it may be granted access meanwhile).
const NO_TTL: Duration = Duration::from_secs(30);
/// Answers kept per kind; past this, the expired go, then all.
const MAX_KEPT: usize = 10_000;

type RepoKey = (RepoType, String);

/// Answers that hold until their time runs out, at most [`MAX_KEPT`].
struct Expiring<K, V> {
    kept: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Copy> Expiring<K, V> {
    fn new() -> Self {
        Expiring {
            kept: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &K) -> Option<V> {
        let kept = self.kept.lock().unwrap();
        kept.get(key)
            .filter(|(until, _)| *until > Instant::now())
            .map(|(_, v)| *v)
    }

    fn put(&self, key: K, value: V, ttl: Duration) {
        let mut kept = self.kept.lock().unwrap();
        let now = Instant::now();
        if kept.len() >= MAX_KEPT {
            kept.retain(|_, (until, _)| *until > now);
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
        }
        kept.insert(key, (now + ttl, value));
    }
}

/// The upstream Hub's say on who may read, remembered for a while.
pub struct HubGate {
    hub: Hub,
    visibility: Expiring<RepoKey, Visibility>,
    admitted: Expiring<([u8; 32], RepoKey), bool>,
}

impl HubGate {
    pub fn new(hub: Hub) -> HubGate {
        HubGate {
            hub,
            visibility: Expiring::new(),
            admitted: Expiring::new(),
        }
    }

    /// The Hub asked about, for the line that says the server is ready.
    pub fn describe(&self) -> String {
        self.hub.describe()
    }

    /// The Hub's endpoint.
    pub fn endpoint_url(&self) -> String {
        self.hub.endpoint_url()
    }

    /// `Ok` when the client with this `Authorization` header may read `repo`, else the answer
    /// the Hub would give (no bytes). `team` is `--auth tokens=FILE`, for repos the Hub does
    /// not know.
    pub async fn check(
        &self,
        repo: &RepoName,
        authorization: Option<&[u8]>,
        team: Option<&Tokens>,
    ) -> Result<(), Response<Body>> {
        let key: RepoKey = (repo.repo_type, repo.id.clone());
        let visibility = match self.visibility.get(&key) {
            Some(v) => v,
            None => {
                let v = self
                    .hub
                    .visibility(repo.repo_type, &repo.id)
                    .await
                    .map_err(|e| upstream_failed(&e))?;
                self.visibility.put(key.clone(), v, VISIBILITY_TTL);
                v
            }
        };
        match visibility {
            Visibility::Public => Ok(()),
            Visibility::Unknown => match team {
                Some(t) if t.admits(authorization) => Ok(()),
                _ => Err(repo_not_found()),
            },
            Visibility::Gated | Visibility::Private => {
                let private = visibility == Visibility::Private;
                let Some(token) = authorization.and_then(bearer) else {
                    return Err(refused(repo, private, false));
                };
                if self.admits(token, key).await? {
                    Ok(())
                } else {
                    Err(refused(repo, private, true))
                }
            }
        }
    }

    /// Whether the Hub admits `token` to the repo, from memory when asked lately.
    async fn admits(&self, token: &[u8], key: RepoKey) -> Result<bool, Response<Body>> {
        let cache_key = (digest(token), key);
        if let Some(yes) = self.admitted.get(&cache_key) {
            return Ok(yes);
        }
        let Ok(text) = std::str::from_utf8(token) else {
            return Ok(false);
        };
        let secret = Secret::new(text.to_string());
        let (t, id) = &cache_key.1;
        let yes = self
            .hub
            .admits(*t, id, &secret)
            .await
            .map_err(|e| upstream_failed(&e))?;
        self.admitted
            .put(cache_key, yes, if yes { YES_TTL } else { NO_TTL });
        Ok(yes)
    }
}

/// What the Hub says of a repo it does not show this client.
fn repo_not_found() -> Response<Body> {
    reply::error(
        StatusCode::UNAUTHORIZED,
        Some("RepoNotFound"),
        "Repository not found",
    )
}

/// A gated repo refused: 401 without a token, 403 with one the Hub does not admit. A private
/// one is not found, as the Hub says.
fn refused(repo: &RepoName, private: bool, with_token: bool) -> Response<Body> {
    if private {
        return repo_not_found();
    }
    let (status, message) = if with_token {
        (
            StatusCode::FORBIDDEN,
            format!(
                "Access to {} is restricted: the Hub does not admit your token to it",
                repo.id
            ),
        )
    } else {
        (
            StatusCode::UNAUTHORIZED,
            format!(
                "Access to {} is restricted: you must be authenticated (set HF_TOKEN to a \
                 token the Hub admits to it)",
                repo.id
            ),
        )
    };
    reply::error(status, Some("GatedRepo"), &message)
}

/// The Hub could not be asked: no answer to cache, the client may retry.
fn upstream_failed(e: &crate::hub::HubError) -> Response<Body> {
    reply::error(
        StatusCode::BAD_GATEWAY,
        None,
        &format!("cannot ask the Hub who may read: {e}"),
    )
}
