//! What can go wrong talking to the Hub, as kinds a person can act on, and which of them are
//! retried (through the same [`RetryPolicy`](crate::net::retry::RetryPolicy) as the remote's).

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::StatusCode;

use crate::cache::write::WriteError;
use crate::env::EnvVars;
use crate::net::retry::{RetryClass, Retryable, MAX_RETRY_AFTER};

/// A failed download from the Hub: the Hub's side, or the local one (including content that does
/// not match its name).
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(transparent)]
    Hub(#[from] HubError),
    #[error(transparent)]
    Local(#[from] WriteError),
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum HubError {
    #[error("{var} is set: the Hugging Face Hub may not be contacted")]
    Offline { var: &'static str },
    /// 401/403: gated, private, or a token the Hub rejects.
    #[error("access to {repo} denied by {endpoint} (HTTP {status}){}", if *.with_token { "" } else { " and no Hub token is set" })]
    Denied {
        repo: String,
        endpoint: String,
        status: u16,
        with_token: bool,
    },
    #[error("repo {repo} not found on {endpoint}")]
    RepoNotFound { repo: String, endpoint: String },
    #[error("revision {revision} of {repo} not found on {endpoint}")]
    RevisionNotFound {
        repo: String,
        revision: String,
        endpoint: String,
    },
    #[error("{path} not found in {repo}@{commit} on the Hub")]
    EntryNotFound {
        repo: String,
        commit: String,
        path: String,
    },
    #[error("rate limited by {endpoint} (HTTP 429){}", asked_to_wait(*retry_after))]
    RateLimited {
        endpoint: String,
        /// How long the answer's `Retry-After` asked to wait, when it said (in seconds).
        retry_after: Option<Duration>,
    },
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    #[error("{endpoint}: TLS certificate not trusted ({detail})")]
    Certificate { endpoint: String, detail: String },
    /// Server errors, timeouts, dropped connections: worth another try.
    #[error("{detail}")]
    Transient { detail: String },
    #[error("{detail}")]
    Other { detail: String },
}

/// What a request was about, so its status becomes the right error.
#[derive(Debug, Clone, Copy)]
pub enum Asked<'a> {
    /// The repo's API (revision, tree) at a revision.
    Repo { repo: &'a str, revision: &'a str },
    /// A file of a commit.
    File {
        repo: &'a str,
        commit: &'a str,
        path: &'a str,
    },
}

/// `; asked to wait 5m` when a 429 said how long.
fn asked_to_wait(retry_after: Option<Duration>) -> String {
    retry_after
        .map(|d| format!("; asked to wait {}", humantime::format_duration(d)))
        .unwrap_or_default()
}

impl HubError {
    /// The error for a non-success answer: the status and the Hub's `X-Error-Code`.
    pub fn from_status(
        status: StatusCode,
        headers: &HeaderMap,
        asked: Asked<'_>,
        endpoint: &str,
        with_token: bool,
        url_path: &str,
    ) -> HubError {
        let code = headers
            .get("x-error-code")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let repo = match asked {
            Asked::Repo { repo, .. } | Asked::File { repo, .. } => repo.to_string(),
        };
        let endpoint = endpoint.to_string();
        match status.as_u16() {
            429 => HubError::RateLimited {
                endpoint,
                retry_after: headers
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
            },
            401 | 403 | 404 if code == "RepoNotFound" => HubError::RepoNotFound { repo, endpoint },
            401 | 403 => HubError::Denied {
                repo,
                endpoint,
                status: status.as_u16(),
                with_token,
            },
            404 if code == "RevisionNotFound" => HubError::RevisionNotFound {
                repo,
                revision: match asked {
                    Asked::Repo { revision, .. } => revision.to_string(),
                    Asked::File { commit, .. } => commit.to_string(),
                },
                endpoint,
            },
            404 => match asked {
                Asked::File { commit, path, .. } => HubError::EntryNotFound {
                    repo,
                    commit: commit.to_string(),
                    path: path.to_string(),
                },
                Asked::Repo { .. } => HubError::RepoNotFound { repo, endpoint },
            },
            s if s >= 500 || s == 408 => HubError::Transient {
                detail: format!("{endpoint}{url_path}: HTTP {s}"),
            },
            s => HubError::Other {
                detail: format!("{endpoint}{url_path}: unexpected HTTP {s}"),
            },
        }
    }

    /// Errors of the set-up, not of the run: exit 2.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            HubError::Offline { .. } | HubError::Denied { .. } | HubError::Certificate { .. }
        )
    }

    /// Errors every other request would hit too: stop the run's other transfers.
    pub fn is_fatal(&self) -> bool {
        self.is_configuration()
            || matches!(
                self,
                HubError::Unreachable { .. } | HubError::RateLimited { .. }
            )
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            HubError::Offline { var } => format!(
                "unset {var} to let the pull fetch from the Hub, or pull without --fallback hf-hub"
            ),
            HubError::Denied { repo, endpoint, .. } => format!(
                "the repo is gated or private: set {} with access to {repo}; accept the terms on \
                 its page ({endpoint}/{repo})",
                EnvVars::HF_TOKEN
            ),
            HubError::RepoNotFound { .. } => format!(
                "check the repo id and --repo-type; if the repo is private, set {} with access to it",
                EnvVars::HF_TOKEN
            ),
            HubError::RevisionNotFound { .. } => {
                "check -r: a branch, a tag or a commit hash of the repo".into()
            }
            HubError::RateLimited {
                retry_after: Some(d),
                ..
            } if *d > MAX_RETRY_AFTER => format!(
                "the Hub asks to wait {} before the next request: run the same command again \
                 after that; requests with a token ({}) get a higher limit",
                humantime::format_duration(*d),
                EnvVars::HF_TOKEN
            ),
            HubError::RateLimited { .. } => format!(
                "the Hub kept answering 429 after the retries: wait a few minutes; requests with \
                 a token ({}) get a higher limit",
                EnvVars::HF_TOKEN
            ),
            HubError::Unreachable { .. } => format!(
                "check {} (default the public Hub), the network, and any proxy or VPN",
                EnvVars::HF_ENDPOINT
            ),
            HubError::Certificate { endpoint, .. } => format!(
                "if {endpoint} uses a company or self-signed CA, point AWS_CA_BUNDLE at a PEM file \
                 holding it"
            ),
            _ => return None,
        })
    }
}

impl Retryable for HubError {
    fn retry_after(&self) -> Option<Duration> {
        match self {
            HubError::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    fn retry_class(&self) -> RetryClass {
        match self {
            HubError::RateLimited { .. } | HubError::Transient { .. } => RetryClass::Busy,
            HubError::Unreachable { .. } => RetryClass::Unreachable,
            _ => RetryClass::Never,
        }
    }

    fn after_attempts(self, tries: u32) -> Self {
        let note = |d: String| format!("{d} (gave up after {tries} attempts)");
        match self {
            HubError::Transient { detail } => HubError::Transient {
                detail: note(detail),
            },
            HubError::Unreachable { endpoint, detail } => HubError::Unreachable {
                endpoint,
                detail: note(detail),
            },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn err(status: u16, code: &str, asked: Asked<'_>, token: bool) -> HubError {
        let mut h = HeaderMap::new();
        if !code.is_empty() {
            h.insert("x-error-code", HeaderValue::from_str(code).unwrap());
        }
        let s = StatusCode::from_u16(status).unwrap();
        HubError::from_status(s, &h, asked, "http://hub", token, "/x")
    }

    #[test]
    fn statuses_become_errors_a_person_can_act_on() {
        let repo = Asked::Repo {
            repo: "org/m",
            revision: "main",
        };
        let file = Asked::File {
            repo: "org/m",
            commit: "c",
            path: "w.bin",
        };
        let gated = err(401, "GatedRepo", repo, false);
        assert!(gated.is_configuration());
        assert!(gated.to_string().contains("no Hub token is set"), "{gated}");
        let hint = gated.hint().unwrap();
        assert!(
            hint.contains("set HF_TOKEN with access to org/m; accept the terms on its page"),
            "{hint}"
        );
        assert!(!err(403, "", repo, true)
            .to_string()
            .contains("no Hub token"));
        assert!(matches!(
            err(401, "RepoNotFound", repo, false),
            HubError::RepoNotFound { .. }
        ));
        assert!(matches!(
            err(404, "RevisionNotFound", repo, false),
            HubError::RevisionNotFound { .. }
        ));
        assert!(matches!(
            err(404, "EntryNotFound", file, false),
            HubError::EntryNotFound { .. }
        ));
        let limited = err(429, "", repo, false);
        assert_eq!(limited.retry_class(), RetryClass::Busy);
        assert!(limited.is_fatal() && !limited.is_configuration());
        assert_eq!(err(503, "", file, false).retry_class(), RetryClass::Busy);
        assert_eq!(err(400, "", file, false).retry_class(), RetryClass::Never);
    }
}
