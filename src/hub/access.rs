//! Who may read a repo, as the Hub says: whether it is public, gated or private
//! (`/api/{type}s/{id}`, asked with this process's own token), and whether a given token is
//! admitted to it (`/api/{type}s/{id}/auth-check`, asked with that token alone).

use serde::Deserialize;

use super::error::Asked;
use super::{api_kind, Hub, HubError};
use crate::cache::RepoType;
use crate::config::Secret;

/// How the Hub shows a repo to the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Anyone may download.
    Public,
    /// Users must be granted access (accept the terms).
    Gated,
    /// Only its owners' tokens see it.
    Private,
    /// The Hub does not know it (or hides it from this process's token).
    Unknown,
}

#[derive(Deserialize)]
struct RawVisibility {
    #[serde(default)]
    private: bool,
    #[serde(default)]
    gated: serde_json::Value,
}

/// The visibility the repo info's `private` and `gated` say.
pub fn parse_visibility(bytes: &[u8]) -> Result<Visibility, String> {
    let raw: RawVisibility =
        serde_json::from_slice(bytes).map_err(|e| format!("not the repo info expected: {e}"))?;
    let gated = !matches!(
        raw.gated,
        serde_json::Value::Null | serde_json::Value::Bool(false)
    );
    Ok(match (raw.private, gated) {
        (true, _) => Visibility::Private,
        (false, true) => Visibility::Gated,
        (false, false) => Visibility::Public,
    })
}

impl Hub {
    /// Whether the repo is public, gated, private or unknown to the Hub.
    pub async fn visibility(&self, t: RepoType, repo_id: &str) -> Result<Visibility, HubError> {
        let url = self.url(&format!("api/{}/{repo_id}", api_kind(t)))?;
        let asked = Asked::Repo {
            repo: repo_id,
            revision: "main",
        };
        match self.get_api(&url, asked).await {
            Ok((body, _)) => parse_visibility(&body).map_err(|e| self.protocol(&url, e)),
            Err(HubError::RepoNotFound { .. }) => Ok(Visibility::Unknown),
            // Hidden from this process's token: only a client's own token can tell.
            Err(HubError::Denied { .. }) => Ok(Visibility::Private),
            Err(e) => Err(e),
        }
    }

    /// Whether the Hub lets `token` read the repo: `Ok(false)` for a refusal (gated, private,
    /// or a token the Hub does not accept); other failures are errors. This process's own
    /// token is never sent here.
    pub async fn admits(
        &self,
        t: RepoType,
        repo_id: &str,
        token: &Secret,
    ) -> Result<bool, HubError> {
        let url = self.url(&format!("api/{}/{repo_id}/auth-check", api_kind(t)))?;
        let asked = Asked::Repo {
            repo: repo_id,
            revision: "main",
        };
        match self.get_api_as(&url, asked, Some(token)).await {
            Ok(_) => Ok(true),
            Err(HubError::Denied { .. } | HubError::RepoNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_from_repo_info() {
        let v = |s: &str| parse_visibility(s.as_bytes()).unwrap();
        assert_eq!(v(r#"{"id":"a/b","gated":false}"#), Visibility::Public);
        assert_eq!(v(r#"{"id":"a/b"}"#), Visibility::Public);
        assert_eq!(v(r#"{"gated":"manual"}"#), Visibility::Gated);
        assert_eq!(v(r#"{"gated":"auto","private":true}"#), Visibility::Private);
        assert!(parse_visibility(b"\"nope\"").is_err());
    }
}
