//! Repos named on the command line. Every form the tool prints is read back the same way by
//! every command: `org/name`, `type/org/name` (what `list -q`, `diff` and `list --remote -q`
//! print) and `hf://[datasets/|spaces/|kernels/|models/]org/name` (as `hf cache rm` takes). A repo
//! that is not there fails the same way everywhere: [`NotFound`], exit 1, naming close matches.

use crate::cache::scan::CacheScan;
use crate::cache::RepoType;
use crate::config::ConfigError;
use crate::manifest::{is_valid_repo_id, safe_repo_key};
use crate::remote::catalog::{repo_id_from_key, Catalog};
use crate::text::close_matches;

const HF_SCHEME: &str = "hf://";
const FORMS_HINT: &str = "repo ids look like org/name, model/org/name, dataset/org/name or \
                          hf://datasets/org/name";
pub const LOCAL_LIST_HINT: &str = "`hf-cache-sync list` shows what is cached";
pub const REMOTE_LIST_HINT: &str = "`hf-cache-sync list --remote` shows what the remote holds";

/// A repo named on the command line: its id, and its type when the text gave one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRef {
    pub repo_type: Option<RepoType>,
    pub repo_id: String,
}

impl RepoRef {
    /// Reads any form the tool prints. A leading type (`model/`, `dataset/`, …) is taken as
    /// the type, so `model/gpt2` is the model `gpt2`, as `list` prints it.
    pub fn parse(text: &str) -> Result<RepoRef, ConfigError> {
        let parsed = match text.strip_prefix(HF_SCHEME) {
            Some(body) => parse_uri_body(body),
            None => parse_plain(text),
        };
        parsed
            .filter(|r| is_valid_repo_id(&r.repo_id))
            .ok_or_else(|| ConfigError::Usage {
                message: format!("invalid repo id {text:?}"),
                hint: FORMS_HINT.into(),
            })
    }

    pub fn parse_all(texts: &[String]) -> Result<Vec<RepoRef>, ConfigError> {
        texts.iter().map(|t| RepoRef::parse(t)).collect()
    }

    pub fn matches(&self, repo_type: RepoType, repo_id: &str) -> bool {
        self.repo_id == repo_id && self.repo_type.is_none_or(|t| t == repo_type)
    }

    /// The type a `--repo-type` flag gives, which must agree with one the id gave.
    pub fn with_type_flag(mut self, flag: Option<RepoType>) -> Result<RepoRef, ConfigError> {
        match (self.repo_type, flag) {
            (Some(named), Some(flag)) if named != flag => Err(ConfigError::Usage {
                message: format!(
                    "{} names a {named}, but --repo-type says {flag}",
                    self.qualified()
                ),
                hint: "drop --repo-type, or the type in front of the repo id".into(),
            }),
            (named, flag) => {
                self.repo_type = named.or(flag);
                Ok(self)
            }
        }
    }

    /// `type/org/name`, or `org/name` when no type was given.
    pub fn qualified(&self) -> String {
        match self.repo_type {
            Some(t) => format!("{t}/{}", self.repo_id),
            None => self.repo_id.clone(),
        }
    }
}

/// `hf://` URIs default to models; the type is plural there (`hf://datasets/org/name`).
fn parse_uri_body(body: &str) -> Option<RepoRef> {
    let typed = body.split_once('/').and_then(|(first, rest)| {
        let t = RepoType::ALL
            .into_iter()
            .find(|t| t.folder_prefix() == first)?;
        Some(RepoRef {
            repo_type: Some(t),
            repo_id: rest.to_string(),
        })
    });
    Some(typed.unwrap_or(RepoRef {
        repo_type: Some(RepoType::Model),
        repo_id: body.to_string(),
    }))
}

/// `org/name`, `type/org/name`, or `type/name` with the singular type `list` prints.
fn parse_plain(text: &str) -> Option<RepoRef> {
    let parts: Vec<&str> = text.split('/').collect();
    let typed = match parts.as_slice() {
        [first, _, _] => RepoType::parse(first),
        [first, _] => RepoType::ALL.into_iter().find(|t| t.as_str() == *first),
        _ => None,
    };
    Some(match typed {
        Some(t) => RepoRef {
            repo_type: Some(t),
            repo_id: text.split_once('/')?.1.to_string(),
        },
        None => RepoRef {
            repo_type: None,
            repo_id: text.to_string(),
        },
    })
}

/// A repo (or revision) the user named that is not where they said: exit 1, with the close
/// matches found there.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NotFound {
    /// `repo model/org/name is not in the cache at /path`, …
    pub message: String,
    pub close: Vec<String>,
    /// How to see what is there.
    pub list_hint: String,
}

impl NotFound {
    pub fn hint(&self) -> String {
        match self.close.as_slice() {
            [] => self.list_hint.clone(),
            close => format!("did you mean {}? {}", close.join(" or "), self.list_hint),
        }
    }
}

/// The cache's repos as (id, `type/org/name`), for close matches.
pub fn cached_names(scan: &CacheScan) -> Vec<(String, String)> {
    scan.repos
        .iter()
        .map(|r| (r.repo_id.clone(), r.qualified_id()))
        .collect()
}

/// The repos the remote's keys name (types unknown without reading manifests).
pub fn remote_names(catalog: &Catalog) -> Vec<(String, String)> {
    catalog
        .key_names()
        .into_iter()
        .map(|safe| {
            let id = repo_id_from_key(safe);
            (id.clone(), id)
        })
        .collect()
}

/// `wanted` is not there (`message` says where); the close matches among `names` ((id, shown)
/// pairs) are named.
pub fn not_found(
    wanted: &str,
    message: String,
    names: &[(String, String)],
    list_hint: &str,
) -> NotFound {
    NotFound {
        message,
        close: close_matches(wanted, names),
        list_hint: list_hint.into(),
    }
}

/// Every repo named on the command line must be in the scan.
pub fn require_repos(scan: &CacheScan, wanted: &[RepoRef]) -> Result<(), NotFound> {
    for w in wanted {
        if !scan
            .repos
            .iter()
            .any(|r| w.matches(r.repo_type, &r.repo_id))
        {
            return Err(not_found(
                &w.repo_id,
                format!(
                    "repo {} is not in the cache at {}",
                    w.qualified(),
                    scan.root.display()
                ),
                &cached_names(scan),
                LOCAL_LIST_HINT,
            ));
        }
    }
    Ok(())
}

/// The first repo named that has no manifest or ref on the remote, as the error to report.
pub fn require_on_remote(
    catalog: &Catalog,
    wanted: &[RepoRef],
    place: &str,
) -> Result<(), NotFound> {
    for w in wanted {
        if !catalog.has_key(&safe_repo_key(&w.repo_id)) {
            return Err(not_found(
                &w.repo_id,
                format!("repo {} is not on {place}", w.qualified()),
                &remote_names(catalog),
                REMOTE_LIST_HINT,
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> (Option<RepoType>, String) {
        let r = RepoRef::parse(text).unwrap();
        (r.repo_type, r.repo_id)
    }

    #[test]
    fn every_printed_form_reads_back() {
        use RepoType::*;
        assert_eq!(parsed("org/m"), (None, "org/m".into()));
        assert_eq!(parsed("gpt2"), (None, "gpt2".into()));
        assert_eq!(
            parsed("model/acme/small-lm"),
            (Some(Model), "acme/small-lm".into())
        );
        assert_eq!(parsed("dataset/org/d"), (Some(Dataset), "org/d".into()));
        assert_eq!(parsed("datasets/org/d"), (Some(Dataset), "org/d".into()));
        assert_eq!(parsed("kernel/org/k"), (Some(Kernel), "org/k".into()));
        assert_eq!(parsed("model/gpt2"), (Some(Model), "gpt2".into()));
        // A plural in front of a bare name is an organisation, as on the Hub.
        assert_eq!(parsed("datasets/squad"), (None, "datasets/squad".into()));
        assert_eq!(parsed("hf://org/m"), (Some(Model), "org/m".into()));
        assert_eq!(parsed("hf://models/org/m"), (Some(Model), "org/m".into()));
        assert_eq!(
            parsed("hf://datasets/org/d"),
            (Some(Dataset), "org/d".into())
        );
        assert_eq!(parsed("hf://spaces/org/s"), (Some(Space), "org/s".into()));
        assert_eq!(
            parsed("hf://datasets/squad"),
            (Some(Dataset), "squad".into())
        );
        for bad in [
            "",
            "a/b/c/d",
            "hf://",
            "org//m",
            "../x",
            "hf://datasets/a/b/c",
            "org/m@v1",
        ] {
            let err = RepoRef::parse(bad).unwrap_err();
            assert!(err.to_string().contains("invalid repo id"), "{bad}: {err}");
            assert!(err.hint().is_some(), "{bad}");
        }
        assert!(RepoRef::parse("org/m").unwrap().matches(Space, "org/m"));
        assert!(!RepoRef::parse("model/org/m")
            .unwrap()
            .matches(Dataset, "org/m"));
        assert_eq!(
            RepoRef::parse("hf://datasets/o/d").unwrap().qualified(),
            "dataset/o/d"
        );
    }

    #[test]
    fn a_missing_repo_names_close_matches() {
        let names = vec![
            (
                "acme/small-lm".to_string(),
                "model/acme/small-lm".to_string(),
            ),
            ("acme/big-lm".to_string(), "model/acme/big-lm".to_string()),
            ("other/thing".to_string(), "dataset/other/thing".to_string()),
        ];
        let e = not_found(
            "acme/smal-lm",
            "repo acme/smal-lm is not in the cache at /c".into(),
            &names,
            LOCAL_LIST_HINT,
        );
        assert_eq!(e.to_string(), "repo acme/smal-lm is not in the cache at /c");
        assert!(
            e.hint().starts_with("did you mean model/acme/small-lm?"),
            "{}",
            e.hint()
        );
        let none = not_found("zzz/qqq", "gone".into(), &names, "look");
        assert_eq!(none.hint(), "look");
    }
}
