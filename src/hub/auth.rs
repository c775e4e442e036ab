//! Where the Hub is and who we are to it, found as huggingface_hub finds them: `HF_ENDPOINT`
//! (default the public Hub), the token from `HF_TOKEN`, else the file at `HF_TOKEN_PATH`, else
//! `$HF_HOME/token`, and `HF_HUB_OFFLINE`. The token is a [`Secret`]: never printed.

use std::path::{Path, PathBuf};

use crate::config::{expand_home_in, hf_home, ConfigError, Secret};
use crate::env::EnvVars;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where a token came from, for `-v` (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenSource::Env => f.write_str(EnvVars::HF_TOKEN),
            TokenSource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// The Hub's address, the token and whether the Hub may be contacted at all.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Without a trailing `/`.
    pub endpoint: String,
    pub token: Option<(Secret, TokenSource)>,
    /// The variable that forbids contacting the Hub, when one does.
    pub offline: Option<&'static str>,
}

/// A token as huggingface_hub cleans it: no line breaks, no surrounding spaces, empty is none.
fn clean_token(raw: &str) -> Option<String> {
    let t = raw.replace(['\r', '\n'], "");
    let t = t.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl HubSettings {
    /// From the process environment.
    pub fn from_env() -> Result<HubSettings, ConfigError> {
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        HubSettings::discover(&crate::env::var, home.as_deref())
    }

    /// From the variables `var` gives and the home folder.
    pub fn discover(
        var: &dyn Fn(&str) -> Option<String>,
        home: Option<&Path>,
    ) -> Result<HubSettings, ConfigError> {
        let endpoint = match var(EnvVars::HF_ENDPOINT) {
            Some(e) => {
                let e = e.trim().trim_end_matches('/').to_string();
                if !(e.starts_with("https://") || e.starts_with("http://")) || e.len() < 9 {
                    return Err(ConfigError::Usage {
                        message: format!("{}={e:?} is not an http(s) URL", EnvVars::HF_ENDPOINT),
                        hint: format!(
                            "set {} to the Hub's address, e.g. {DEFAULT_ENDPOINT}, or unset it",
                            EnvVars::HF_ENDPOINT
                        ),
                    });
                }
                e
            }
            None => DEFAULT_ENDPOINT.to_string(),
        };
        let offline = crate::env::offline_in(var);
        let token = match var(EnvVars::HF_TOKEN).and_then(|t| clean_token(&t)) {
            Some(t) => Some((Secret::new(t), TokenSource::Env)),
            None => {
                let path = token_path(var, home);
                match path.map(|p| (std::fs::read_to_string(&p), p)) {
                    Some((Ok(text), p)) => {
                        clean_token(&text).map(|t| (Secret::new(t), TokenSource::File(p)))
                    }
                    Some((Err(e), _)) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Some((Err(e), p)) => {
                        return Err(ConfigError::Usage {
                            message: format!("cannot read the Hub token file {}: {e}", p.display()),
                            hint: format!(
                                "make it readable, or set {} (or {}) instead",
                                EnvVars::HF_TOKEN,
                                EnvVars::HF_TOKEN_PATH
                            ),
                        })
                    }
                    None => None,
                }
            }
        };
        Ok(HubSettings {
            endpoint,
            token,
            offline,
        })
    }
}

/// `HF_TOKEN_PATH`, else `$HF_HOME/token`.
fn token_path(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = var(EnvVars::HF_TOKEN_PATH) {
        return Some(expand_home_in(&p, home));
    }
    Some(hf_home(var, home)?.join("token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn discover(vars: &[(&str, &str)], home: &Path) -> Result<HubSettings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubSettings::discover(&|k| map.get(k).cloned(), Some(home))
    }

    fn token(s: &HubSettings) -> Option<(&str, &TokenSource)> {
        s.token.as_ref().map(|(t, src)| (t.expose(), src))
    }

    #[test]
    fn the_token_is_found_where_huggingface_hub_looks() {
        let home = tempfile::tempdir().unwrap();
        let h = home.path();
        // Nothing anywhere: no token, the public Hub.
        let s = discover(&[], h).unwrap();
        assert_eq!(s.endpoint, DEFAULT_ENDPOINT);
        assert!(s.token.is_none() && s.offline.is_none());
        // ~/.cache/huggingface/token, cleaned.
        let default = h.join(".cache/huggingface/token");
        std::fs::create_dir_all(default.parent().unwrap()).unwrap();
        std::fs::write(&default, "hf_default\r\n").unwrap();
        let s = discover(&[], h).unwrap();
        assert_eq!(token(&s), Some(("hf_default", &TokenSource::File(default))));
        // $HF_HOME/token wins over the default folder; XDG_CACHE_HOME is used when HF_HOME is unset.
        std::fs::create_dir_all(h.join("hfhome")).unwrap();
        std::fs::write(h.join("hfhome/token"), " hf_home ").unwrap();
        let hf_home = h.join("hfhome").display().to_string();
        let s = discover(&[("HF_HOME", &hf_home)], h).unwrap();
        assert_eq!(token(&s).unwrap().0, "hf_home");
        std::fs::create_dir_all(h.join("xdg/huggingface")).unwrap();
        std::fs::write(h.join("xdg/huggingface/token"), "hf_xdg").unwrap();
        let xdg = h.join("xdg").display().to_string();
        assert_eq!(
            token(&discover(&[("XDG_CACHE_HOME", &xdg)], h).unwrap())
                .unwrap()
                .0,
            "hf_xdg"
        );
        // HF_TOKEN_PATH, then HF_TOKEN, win.
        std::fs::write(h.join("tok"), "hf_path").unwrap();
        let path = h.join("tok").display().to_string();
        let s = discover(&[("HF_HOME", &hf_home), ("HF_TOKEN_PATH", &path)], h).unwrap();
        assert_eq!(token(&s).unwrap().0, "hf_path");
        let s = discover(&[("HF_TOKEN_PATH", &path), ("HF_TOKEN", "hf_env\n")], h).unwrap();
        assert_eq!(token(&s), Some(("hf_env", &TokenSource::Env)));
        // An empty token file is no token; a missing HF_TOKEN_PATH file too.
        std::fs::write(h.join("empty"), "\n").unwrap();
        let empty = h.join("empty").display().to_string();
        assert!(discover(&[("HF_TOKEN_PATH", &empty)], h)
            .unwrap()
            .token
            .is_none());
        let missing = h.join("missing").display().to_string();
        assert!(discover(&[("HF_TOKEN_PATH", &missing)], h)
            .unwrap()
            .token
            .is_none());
    }

    #[test]
    fn an_unreadable_token_file_is_an_error_naming_it() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().display().to_string();
        let err = discover(&[("HF_TOKEN_PATH", &dir)], home.path()).unwrap_err();
        assert!(err.to_string().contains(&dir), "{err}");
        assert!(err.hint().unwrap().contains("HF_TOKEN"));
    }

    #[test]
    fn endpoint_and_offline() {
        let home = tempfile::tempdir().unwrap();
        let s = discover(
            &[
                ("HF_ENDPOINT", "http://127.0.0.1:9/"),
                ("HF_HUB_OFFLINE", "yes"),
            ],
            home.path(),
        )
        .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:9");
        assert_eq!(s.offline, Some("HF_HUB_OFFLINE"));
        let s = discover(&[("HF_HUB_OFFLINE", "0")], home.path()).unwrap();
        assert!(s.offline.is_none());
        let err = discover(&[("HF_ENDPOINT", "huggingface.co")], home.path()).unwrap_err();
        assert!(err.to_string().contains("HF_ENDPOINT"), "{err}");
    }

    #[test]
    fn the_token_never_prints() {
        let home = tempfile::tempdir().unwrap();
        let s = discover(&[("HF_TOKEN", "hf_secret_value")], home.path()).unwrap();
        assert!(!format!("{s:?}").contains("hf_secret_value"));
    }
}
