//! The Hub's URLs as `serve` answers them, parsed into a [`Route`]: repo and revision info,
//! tree listings, paths-info and file downloads (`/{prefix}{id}/resolve/{rev}/{path}`), each
//! repo type with its prefix. Pure: no I/O, unit-tested against the URLs huggingface_hub builds.

use crate::cache::RepoType;
use crate::manifest::is_valid_repo_id;

/// A repo as a URL names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RepoName {
    pub repo_type: RepoType,
    pub id: String,
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    /// `GET /`: the page for people.
    Page,
    /// `GET /metrics`: the counters in Prometheus's text format.
    Metrics,
    /// `GET /api/{type}s/{id}` (the default branch) and `/api/{type}s/{id}/revision/{rev}`.
    RepoInfo {
        repo: RepoName,
        revision: Option<String>,
    },
    /// `GET /api/{type}s/{id}/tree/{rev}[/{path}]`.
    Tree {
        repo: RepoName,
        revision: String,
        path: String,
    },
    /// `POST /api/{type}s/{id}/paths-info/{rev}`.
    PathsInfo {
        repo: RepoName,
        revision: String,
    },
    /// `HEAD|GET /{prefix}{id}/resolve/{rev}/{path}`.
    Resolve {
        repo: RepoName,
        revision: String,
        path: String,
    },
    /// A URL of the Hub's that `serve` does not answer, or none of the Hub's at all.
    Unknown,
    /// A URL of the right shape naming no valid repo id, revision or path.
    Invalid(String),
}

/// `%2F` and friends decoded; `None` when the result is not UTF-8.
pub fn decode(segment: &str) -> Option<String> {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

fn type_of_plural(p: &str) -> Option<RepoType> {
    RepoType::ALL.into_iter().find(|t| t.folder_prefix() == p)
}

/// The route of `method` on `path` (without the query).
pub fn route(method: &str, path: &str) -> Route {
    if path == "/healthz" {
        return Route::Health;
    }
    if matches!(method, "GET" | "HEAD") {
        match path {
            "/" => return Route::Page,
            "/metrics" => return Route::Metrics,
            _ => {}
        }
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.first() {
        Some(&"api") => api_route(method, &segments[1..]),
        Some(_) if matches!(method, "GET" | "HEAD") => resolve_route(&segments),
        _ => Route::Unknown,
    }
}

/// `{types}/{id}[/{keyword}/{rev}[/{path}]]`: the id is one or two segments (`gpt2`,
/// `org/name`), told apart by where the keyword is.
fn api_route(method: &str, segments: &[&str]) -> Route {
    let Some(repo_type) = segments.first().and_then(|p| type_of_plural(p)) else {
        return Route::Unknown;
    };
    let rest = &segments[1..];
    let keyword = |s: &str| matches!(s, "revision" | "tree" | "paths-info");
    let id_len = match rest.len() {
        1 => 1,
        2 if !keyword(rest[1]) => 2,
        _ if rest.len() >= 3 && keyword(rest[2]) => 2,
        _ if rest.len() >= 2 && keyword(rest[1]) => 1,
        _ => return Route::Unknown,
    };
    let id = rest[..id_len].join("/");
    let Some(repo) = repo_name(repo_type, &id) else {
        return Route::Invalid(format!("invalid repo id {id:?}"));
    };
    let tail = &rest[id_len..];
    if tail.is_empty() {
        return match method {
            "GET" | "HEAD" => Route::RepoInfo {
                repo,
                revision: None,
            },
            _ => Route::Unknown,
        };
    }
    let Some(revision) = tail
        .get(1)
        .and_then(|r| decode(r))
        .filter(|r| !r.is_empty())
    else {
        return Route::Unknown;
    };
    let path = match tail[2..]
        .iter()
        .map(|s| decode(s))
        .collect::<Option<Vec<_>>>()
    {
        Some(parts) => parts.join("/"),
        None => return Route::Invalid("a path that is not UTF-8".into()),
    };
    match (tail[0], method) {
        ("revision", "GET" | "HEAD") if path.is_empty() => Route::RepoInfo {
            repo,
            revision: Some(revision),
        },
        ("tree", "GET" | "HEAD") => Route::Tree {
            repo,
            revision,
            path: path.trim_matches('/').to_string(),
        },
        ("paths-info", "POST") if path.is_empty() => Route::PathsInfo { repo, revision },
        _ => Route::Unknown,
    }
}

/// `[datasets/|spaces/|kernels/]{id}/resolve/{rev}/{path}`.
fn resolve_route(segments: &[&str]) -> Route {
    let (repo_type, rest) = match segments.first().and_then(|p| type_of_plural(p)) {
        Some(t) if t != RepoType::Model => (t, &segments[1..]),
        _ => (RepoType::Model, segments),
    };
    let at = match rest.iter().position(|s| *s == "resolve") {
        Some(i @ (1 | 2)) => i,
        _ => return Route::Unknown,
    };
    let id = rest[..at].join("/");
    let Some(repo) = repo_name(repo_type, &id) else {
        return Route::Invalid(format!("invalid repo id {id:?}"));
    };
    let (Some(revision), true) = (
        rest.get(at + 1)
            .and_then(|r| decode(r))
            .filter(|r| !r.is_empty()),
        rest.len() > at + 2,
    ) else {
        return Route::Unknown;
    };
    match rest[at + 2..]
        .iter()
        .map(|s| decode(s))
        .collect::<Option<Vec<_>>>()
    {
        Some(parts) => Route::Resolve {
            repo,
            revision,
            path: parts.join("/"),
        },
        None => Route::Invalid("a path that is not UTF-8".into()),
    }
}

fn repo_name(repo_type: RepoType, id: &str) -> Option<RepoName> {
    is_valid_repo_id(id).then(|| RepoName {
        repo_type,
        id: id.to_string(),
    })
}

/// The value of `name` in a query string (`a=1&b=2`), decoded (`+` is a space).
pub fn query_value(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| decode(&v.replace('+', " ")))
}

/// `true`, `True`, `1` as a query flag.
pub fn query_flag(query: &str, name: &str) -> bool {
    query_value(query, name).is_some_and(|v| matches!(v.as_str(), "true" | "True" | "1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str) -> RepoName {
        RepoName {
            repo_type: RepoType::Model,
            id: id.into(),
        }
    }

    #[test]
    fn api_urls() {
        assert_eq!(
            route("GET", "/api/models/org/m/revision/main"),
            Route::RepoInfo {
                repo: model("org/m"),
                revision: Some("main".into())
            }
        );
        assert_eq!(
            route("GET", "/api/models/gpt2"),
            Route::RepoInfo {
                repo: model("gpt2"),
                revision: None
            }
        );
        assert_eq!(
            route("GET", "/api/models/org/m"),
            Route::RepoInfo {
                repo: model("org/m"),
                revision: None
            }
        );
        assert_eq!(
            route("GET", "/api/models/gpt2/revision/refs%2Fpr%2F1"),
            Route::RepoInfo {
                repo: model("gpt2"),
                revision: Some("refs/pr/1".into())
            }
        );
        assert_eq!(
            route("GET", "/api/datasets/org/d/tree/main/sub%2Fdir"),
            Route::Tree {
                repo: RepoName {
                    repo_type: RepoType::Dataset,
                    id: "org/d".into()
                },
                revision: "main".into(),
                path: "sub/dir".into()
            }
        );
        assert_eq!(
            route("POST", "/api/models/org/m/paths-info/main"),
            Route::PathsInfo {
                repo: model("org/m"),
                revision: "main".into()
            }
        );
        assert_eq!(
            route("GET", "/api/models/org/m/paths-info/main"),
            Route::Unknown
        );
        assert_eq!(route("GET", "/api/agent-harnesses"), Route::Unknown);
        assert!(matches!(
            route("GET", "/api/models/org/../revision/main"),
            Route::Invalid(_)
        ));
        assert_eq!(route("GET", "/healthz"), Route::Health);
        assert_eq!(route("GET", "/"), Route::Page);
        assert_eq!(route("GET", "/metrics"), Route::Metrics);
        assert_eq!(route("POST", "/metrics"), Route::Unknown);
    }

    #[test]
    fn resolve_urls() {
        assert_eq!(
            route("HEAD", "/org/m/resolve/main/sub/a%20b.json"),
            Route::Resolve {
                repo: model("org/m"),
                revision: "main".into(),
                path: "sub/a b.json".into()
            }
        );
        assert_eq!(
            route("GET", "/gpt2/resolve/refs%2Fpr%2F1/config.json"),
            Route::Resolve {
                repo: model("gpt2"),
                revision: "refs/pr/1".into(),
                path: "config.json".into()
            }
        );
        for (prefix, t) in [
            ("datasets", RepoType::Dataset),
            ("spaces", RepoType::Space),
            ("kernels", RepoType::Kernel),
        ] {
            assert_eq!(
                route("GET", &format!("/{prefix}/org/x/resolve/v1/f.bin")),
                Route::Resolve {
                    repo: RepoName {
                        repo_type: t,
                        id: "org/x".into()
                    },
                    revision: "v1".into(),
                    path: "f.bin".into()
                }
            );
        }
        assert_eq!(route("GET", "/org/m/resolve/main"), Route::Unknown);
        assert_eq!(route("POST", "/org/m/resolve/main/f"), Route::Unknown);
        assert_eq!(route("GET", "/favicon.ico"), Route::Unknown);
    }

    #[test]
    fn queries() {
        assert!(query_flag("recursive=True&expand=False", "recursive"));
        assert!(!query_flag("recursive=True&expand=False", "expand"));
        assert_eq!(query_value("cursor=12&x", "cursor").as_deref(), Some("12"));
        assert_eq!(decode("a%2Fb%"), Some("a/b%".into()));
    }
}
