//! The Hugging Face Hub as a source of blobs, natively (no Python): resolve a revision to its
//! commit, list the commit's files (following the Hub's pagination), and download files by path
//! with ranged parallel parts for large ones. Redirects are followed by hand so the token is
//! only ever sent to the endpoint's own host, never to the CDN large files are served from.

pub mod access;
pub mod auth;
mod download;
pub mod error;
pub mod tree;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, ACCEPT_ENCODING, LINK, LOCATION, RANGE};
use reqwest::{Method, Response, Url};

pub use auth::HubSettings;
pub use error::{DownloadError, HubError};

use crate::cache::trees::TreeListing;
use crate::cache::RepoType;
use crate::config::{ConfigError, Secret, Settings};
use crate::net::retry::RetryPolicy;
use error::Asked;
use tree::{listing_from, next_link, parse_repo_info, parse_tree_page, RepoInfo};

/// Redirects followed for one request (the Hub redirects renamed repos and large files).
const MAX_REDIRECTS: usize = 10;
/// A body that delivers nothing for this long is treated as a dropped connection.
const IDLE_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Larger API answers (one page of a listing, a revision's info) are refused.
const MAX_API_BYTES: usize = 64 * 1024 * 1024;
/// Pages of one listing: the Hub pages by a thousand files, no repo has a billion.
const MAX_PAGES: usize = 1_000_000;

/// A file of a commit on the Hub: how a blob is asked for there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitFile {
    pub repo_type: RepoType,
    pub repo_id: String,
    pub commit: String,
    pub path: String,
}

/// A client of one Hub endpoint. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoint: Url,
    /// As the user wrote it, without a trailing `/`: messages and URLs start with it.
    endpoint_text: String,
    token: Option<Secret>,
    offline: Option<&'static str>,
    idle_timeout: Duration,
    policy: RetryPolicy,
}

/// A range of a file to ask for.
#[derive(Debug, Clone, Copy)]
enum Range {
    /// `start..=end`.
    Part(u64, u64),
    /// From `start` to the end.
    From(u64),
}

impl Range {
    fn header(self) -> String {
        match self {
            Range::Part(s, e) => format!("bytes={s}-{e}"),
            Range::From(s) => format!("bytes={s}-"),
        }
    }
}

/// Which redirects a request follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Follow {
    All,
    /// Stop at the first redirect to another host and return its target unrequested: a signed
    /// CDN address may be valid for GET only.
    SameHost,
}

/// What a request ended with.
enum Answer {
    Response(Response),
    ElsewhereAt(Url),
}

/// Percent-encodes all but unreserved characters (and `/` when `keep_slash`).
fn encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `models`, `datasets`, … in API paths.
fn api_kind(t: RepoType) -> &'static str {
    t.folder_prefix()
}

/// `""`, `datasets/`, … before the repo id in file URLs.
fn url_prefix(t: RepoType) -> &'static str {
    match t {
        RepoType::Model => "",
        RepoType::Dataset => "datasets/",
        RepoType::Space => "spaces/",
        RepoType::Kernel => "kernels/",
    }
}

impl Hub {
    /// The Hub named by `HF_ENDPOINT`, with the token huggingface_hub would use, over a client
    /// that trusts the company CA the remote trusts (`AWS_CA_BUNDLE`, `SSL_CERT_FILE`).
    pub fn open(settings: &Settings) -> Result<Hub, ConfigError> {
        let hub = HubSettings::from_env()?;
        let endpoint = Url::parse(&format!("{}/", hub.endpoint))
            .map_err(|e| ConfigError::Invalid(format!("HF_ENDPOINT={}: {e}", hub.endpoint)))?;
        let idle_timeout = settings.transfer.timeout.unwrap_or(IDLE_BODY_TIMEOUT);
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hf-cache-sync/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(idle_timeout);
        if let Some(bundle) = &settings.storage.ca_bundle {
            let pem =
                crate::net::tls::read_bundle(&bundle.path).map_err(|why| ConfigError::Usage {
                    message: format!("{}: {why}", bundle.describe()),
                    hint: format!(
                        "point {} at a PEM file of CA certificates, or unset it",
                        bundle.var
                    ),
                })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ConfigError::Invalid(format!("{}: {e}", bundle.describe())))?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ConfigError::Invalid(format!("cannot set up the Hub client: {e}")))?;
        Ok(Hub {
            inner: Arc::new(Inner {
                http,
                endpoint,
                endpoint_text: hub.endpoint,
                token: hub.token.map(|(t, _)| t),
                offline: hub.offline,
                idle_timeout,
                policy: RetryPolicy::default(),
            }),
        })
    }

    /// `the Hub at https://huggingface.co`: never the token.
    pub fn describe(&self) -> String {
        format!("the Hub at {}", self.inner.endpoint_text)
    }

    /// The endpoint's URL.
    pub fn endpoint_url(&self) -> String {
        self.inner.endpoint_text.clone()
    }

    /// The revision's commit and whether the repo is gated.
    pub async fn repo_info(
        &self,
        t: RepoType,
        repo_id: &str,
        revision: &str,
    ) -> Result<RepoInfo, HubError> {
        let url = self.url(&format!(
            "api/{}/{repo_id}/revision/{}",
            api_kind(t),
            encode(revision, false)
        ))?;
        let asked = Asked::Repo {
            repo: repo_id,
            revision,
        };
        let (body, _) = self.get_api(&url, asked).await?;
        parse_repo_info(&body).map_err(|e| self.protocol(&url, e))
    }

    /// Every file of the commit, from the Hub's recursive tree, page after page.
    pub async fn list_tree(
        &self,
        t: RepoType,
        repo_id: &str,
        commit: &str,
    ) -> Result<TreeListing, HubError> {
        let mut url = self.url(&format!(
            "api/{}/{repo_id}/tree/{commit}?recursive=true&expand=false",
            api_kind(t)
        ))?;
        let asked = Asked::Repo {
            repo: repo_id,
            revision: commit,
        };
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        loop {
            let (body, link) = self.get_api(&url, asked).await?;
            items.extend(parse_tree_page(&body).map_err(|e| self.protocol(&url, e))?);
            let Some(next) = link.as_deref().and_then(next_link) else {
                break;
            };
            let next = url
                .join(&next)
                .map_err(|e| self.protocol(&url, e.to_string()))?;
            if !seen.insert(next.clone()) || seen.len() > MAX_PAGES {
                return Err(self.protocol(&url, "the listing's pages go round in a loop".into()));
            }
            url = next;
        }
        listing_from(items).map_err(|e| self.protocol(&url, e))
    }

    /// A GET of an API answer, retried: its body (bounded) and its `Link` header.
    async fn get_api(
        &self,
        url: &Url,
        asked: Asked<'_>,
    ) -> Result<(Vec<u8>, Option<String>), HubError> {
        self.get_api_as(url, asked, self.inner.token.as_ref()).await
    }

    /// [`Hub::get_api`] with `token` (or none) in place of this process's own.
    async fn get_api_as(
        &self,
        url: &Url,
        asked: Asked<'_>,
        token: Option<&Secret>,
    ) -> Result<(Vec<u8>, Option<String>), HubError> {
        self.inner
            .policy
            .run(|| async {
                let resp = match self
                    .send(Method::GET, url, None, asked, (Follow::All, token))
                    .await?
                {
                    Answer::Response(r) => r,
                    Answer::ElsewhereAt(_) => unreachable!("every redirect is followed"),
                };
                let link = resp
                    .headers()
                    .get(LINK)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let body = self.read_capped(resp, MAX_API_BYTES).await?;
                Ok((body, link))
            })
            .await
    }

    fn url(&self, rel: &str) -> Result<Url, HubError> {
        let text = format!("{}/{rel}", self.inner.endpoint_text);
        Url::parse(&text).map_err(|e| HubError::Other {
            detail: format!("{text}: {e}"),
        })
    }

    /// `/{prefix}{id}/resolve/{commit}/{path}`.
    fn file_url(&self, f: &CommitFile) -> Result<Url, HubError> {
        self.url(&format!(
            "{}{}/resolve/{}/{}",
            url_prefix(f.repo_type),
            f.repo_id,
            f.commit,
            encode(&f.path, true)
        ))
    }

    fn protocol(&self, url: &Url, why: String) -> HubError {
        HubError::Other {
            detail: format!("{}{}: {why}", self.inner.endpoint_text, url.path()),
        }
    }

    /// Is `url` on the endpoint's own scheme, host and port? Only there is the token sent.
    fn is_endpoint(&self, url: &Url) -> bool {
        let e = &self.inner.endpoint;
        url.scheme() == e.scheme()
            && url.host_str() == e.host_str()
            && url.port_or_known_default() == e.port_or_known_default()
    }

    /// A request that must succeed, every redirect followed.
    async fn response(
        &self,
        method: Method,
        url: &Url,
        range: Option<Range>,
        asked: Asked<'_>,
    ) -> Result<Response, HubError> {
        let own = self.inner.token.as_ref();
        match self
            .send(method, url, range, asked, (Follow::All, own))
            .await?
        {
            Answer::Response(r) => Ok(r),
            Answer::ElsewhereAt(_) => unreachable!("every redirect is followed"),
        }
    }

    /// Sends one request, following redirects as `follow` says; `token` goes only to the
    /// endpoint's host. A non-success answer is an error naming what was asked.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        range: Option<Range>,
        asked: Asked<'_>,
        (follow, token): (Follow, Option<&Secret>),
    ) -> Result<Answer, HubError> {
        if let Some(var) = self.inner.offline {
            return Err(HubError::Offline { var });
        }
        let mut url = url.clone();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self
                .inner
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
            if let (Some(token), true) = (token, self.is_endpoint(&url)) {
                req = req.bearer_auth(token.expose());
            }
            if let Some(r) = range {
                req = req.header(RANGE, r.header());
            }
            let resp = req.send().await.map_err(|e| self.transport(&e))?;
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|l| url.join(l).ok());
                if let Some(next) = location {
                    if follow == Follow::SameHost && !self.is_endpoint(&next) {
                        return Ok(Answer::ElsewhereAt(next));
                    }
                    url = next;
                    continue;
                }
            }
            if status.is_success() {
                return Ok(Answer::Response(resp));
            }
            return Err(HubError::from_status(
                status,
                resp.headers(),
                asked,
                &self.inner.endpoint_text,
                token.is_some(),
                url.path(),
            ));
        }
        Err(HubError::Other {
            detail: format!(
                "{}{}: more than {MAX_REDIRECTS} redirects",
                self.inner.endpoint_text,
                url.path()
            ),
        })
    }

    /// A failed connection or body, classified: a certificate the client does not trust is a
    /// set-up problem, anything else is worth retrying.
    fn transport(&self, e: &reqwest::Error) -> HubError {
        let detail = crate::text::error_chain(e);
        let endpoint = self.inner.endpoint_text.clone();
        if crate::net::tls::is_certificate_error(&detail) {
            HubError::Certificate { endpoint, detail }
        } else if e.is_connect() {
            HubError::Unreachable { endpoint, detail }
        } else {
            HubError::Transient { detail }
        }
    }

    /// The next chunk of a body, or an error when it stalls or breaks.
    async fn next_chunk(&self, resp: &mut Response) -> Result<Option<bytes::Bytes>, HubError> {
        match tokio::time::timeout(self.inner.idle_timeout, resp.chunk()).await {
            Err(_) => Err(HubError::Transient {
                detail: format!(
                    "{}{}: download stalled for {}s",
                    self.inner.endpoint_text,
                    resp.url().path(),
                    self.inner.idle_timeout.as_secs_f64()
                ),
            }),
            Ok(Ok(chunk)) => Ok(chunk),
            Ok(Err(e)) => Err(HubError::Transient {
                detail: format!(
                    "{}{}: connection dropped mid-body: {}",
                    self.inner.endpoint_text,
                    resp.url().path(),
                    crate::text::error_chain(&e)
                ),
            }),
        }
    }

    async fn read_capped(&self, mut resp: Response, max: usize) -> Result<Vec<u8>, HubError> {
        let mut body = Vec::new();
        while let Some(chunk) = self.next_chunk(&mut resp).await? {
            body.extend_from_slice(&chunk);
            if body.len() > max {
                return Err(HubError::Other {
                    detail: format!(
                        "{}{}: answer larger than {max} bytes; refused",
                        self.inner.endpoint_text,
                        resp.url().path()
                    ),
                });
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_encoded_for_urls() {
        assert_eq!(encode("refs/pr/1", false), "refs%2Fpr%2F1");
        assert_eq!(encode("a b/c+d.bin", true), "a%20b/c%2Bd.bin");
        assert_eq!(encode("é", true), "%C3%A9");
        assert_eq!(url_prefix(RepoType::Dataset), "datasets/");
        assert_eq!(api_kind(RepoType::Kernel), "kernels");
    }
}
