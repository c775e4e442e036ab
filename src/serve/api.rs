//! The Hub's JSON API for a revision `serve` resolved: repo and revision info (`sha`,
//! `siblings`, `gated`, `private`), tree listings (recursive or not, paginated with a `Link:
//! <…>; rel="next"` header and a cursor, as the Hub pages them) and paths-info. Xet hashes are
//! never listed: a client must fetch the bytes from here, not from Xet's storage.

use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::reply::{self, Body};
use super::revision::{FileInfo, Revision};
use super::routes::{query_flag, query_value};
use crate::cache::RepoType;

/// Entries of one page of a tree listing, as the Hub pages them.
pub const PAGE: usize = 1000;

/// `GET /api/{type}s/{id}[/revision/{rev}]`.
pub fn repo_info(rev: &Revision) -> Response<Body> {
    let siblings: Vec<Value> = rev
        .files
        .iter()
        .map(|(path, f)| {
            let mut s = json!({"rfilename": path, "size": f.size, "blobId": f.blob_id});
            if f.is_lfs() {
                s["lfs"] = json!({
                    "sha256": f.blob,
                    "size": f.size,
                    "pointerSize": pointer_size(f),
                });
            }
            s
        })
        .collect();
    let mut info = json!({
        "id": rev.repo.id,
        "author": rev.repo.id.split_once('/').map(|(org, _)| org),
        "sha": rev.commit,
        "private": false,
        "gated": false,
        "disabled": false,
        "siblings": siblings,
    });
    if rev.repo.repo_type == RepoType::Model {
        info["modelId"] = json!(rev.repo.id);
    }
    reply::json(StatusCode::OK, &info)
}

fn pointer_size(f: &FileInfo) -> usize {
    super::git::lfs_pointer(&f.blob, f.size).len()
}

/// A file's entry as the tree and paths-info list it.
fn file_entry(path: &str, f: &FileInfo) -> Value {
    let mut e = json!({"type": "file", "oid": f.blob_id, "size": f.size, "path": path});
    if f.is_lfs() {
        e["lfs"] = json!({"oid": f.blob, "size": f.size, "pointerSize": pointer_size(f)});
    }
    e
}

fn folder_entry(path: &str, tree_id: &str) -> Value {
    json!({"type": "directory", "oid": tree_id, "size": 0, "path": path})
}

/// Whether `path` lies under `folder` (`""` is the root), and `only_children` directly in it.
fn under(path: &str, folder: &str, only_children: bool) -> bool {
    let rest = if folder.is_empty() {
        Some(path)
    } else {
        path.strip_prefix(folder).and_then(|r| r.strip_prefix('/'))
    };
    rest.is_some_and(|r| !r.is_empty() && (!only_children || !r.contains('/')))
}

/// Every entry under `folder` (only its children unless `recursive`), folders and files
/// together, sorted by path.
fn entries(rev: &Revision, folder: &str, recursive: bool) -> Vec<Value> {
    let mut all: Vec<(&str, Value)> = rev
        .folders
        .iter()
        .filter(|(p, _)| under(p, folder, !recursive))
        .map(|(p, id)| (p.as_str(), folder_entry(p, id)))
        .chain(
            rev.files
                .iter()
                .filter(|(p, _)| under(p, folder, !recursive))
                .map(|(p, f)| (p.as_str(), file_entry(p, f))),
        )
        .collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    all.into_iter().map(|(_, v)| v).collect()
}

/// `GET /api/{type}s/{id}/tree/{rev}[/{path}]?recursive=…&cursor=…`: a page of entries, with a
/// `Link` to the next page when there is one. `base` is `http://host`, for that link.
pub fn tree(
    rev: &Revision,
    folder: &str,
    (path, query, base): (&str, &str, &str),
) -> Response<Body> {
    if !folder.is_empty() && !rev.folders.contains_key(folder) {
        let mut r = reply::not_found(
            "EntryNotFound",
            &format!("{folder} is not a folder of {}@{}", rev.repo.id, rev.commit),
        );
        r.headers_mut()
            .insert("x-repo-commit", reply::header_value(&rev.commit));
        return r;
    }
    let all = entries(rev, folder, query_flag(query, "recursive"));
    let cursor = match query_value(query, "cursor").map(|c| c.parse::<usize>()) {
        None => 0,
        Some(Ok(c)) => c.min(all.len()),
        Some(Err(_)) => {
            return reply::error(StatusCode::BAD_REQUEST, None, "invalid cursor");
        }
    };
    let end = (cursor + PAGE).min(all.len());
    let mut r = reply::json(StatusCode::OK, &all[cursor..end]);
    if end < all.len() {
        let kept: Vec<&str> = query
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("cursor="))
            .collect();
        let mut next = format!("{base}{path}?");
        for kv in kept {
            next.push_str(kv);
            next.push('&');
        }
        next.push_str(&format!("cursor={end}"));
        r.headers_mut().insert(
            "link",
            reply::header_value(&format!("<{next}>; rel=\"next\"")),
        );
    }
    r
}

/// The paths of a paths-info body: a form (`paths=a&paths=b`, as huggingface_hub posts them)
/// or JSON (`{"paths": [...]}`).
pub fn paths_of(body: &[u8], json_body: bool) -> Result<Vec<String>, String> {
    if json_body {
        let v: Value = serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
        return match &v["paths"] {
            Value::String(p) => Ok(vec![p.clone()]),
            Value::Array(a) => a
                .iter()
                .map(|p| {
                    p.as_str()
                        .map(str::to_string)
                        .ok_or("paths must be strings".into())
                })
                .collect(),
            _ => Err("no paths given".into()),
        };
    }
    let text = std::str::from_utf8(body).map_err(|_| "the form is not UTF-8".to_string())?;
    Ok(text
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| *k == "paths" || *k == "paths%5B%5D" || *k == "paths[]")
        .filter_map(|(_, v)| super::routes::decode(&v.replace('+', " ")))
        .collect())
}

/// `POST /api/{type}s/{id}/paths-info/{rev}`: the entries of those paths that exist.
pub fn paths_info(rev: &Revision, paths: &[String]) -> Response<Body> {
    let found: Vec<Value> = paths
        .iter()
        .map(|p| p.trim_matches('/'))
        .filter_map(|p| match (rev.files.get(p), rev.folders.get(p)) {
            (Some(f), _) => Some(file_entry(p, f)),
            (None, Some(id)) if !p.is_empty() => Some(folder_entry(p, id)),
            _ => None,
        })
        .collect();
    reply::json(StatusCode::OK, &found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_and_their_children() {
        assert!(under("a/b", "", false));
        assert!(!under("a/b", "", true));
        assert!(under("a", "", true));
        assert!(under("a/b", "a", true));
        assert!(!under("ab/c", "a", false));
        assert!(!under("a", "a", false));
    }

    #[test]
    fn paths_from_a_form_or_json() {
        assert_eq!(
            paths_of(b"paths=a.json&paths=sub%2Fb+c.bin&expand=False", false).unwrap(),
            vec!["a.json", "sub/b c.bin"]
        );
        assert_eq!(
            paths_of(br#"{"paths": ["x", "y/z"]}"#, true).unwrap(),
            vec!["x", "y/z"]
        );
        assert!(paths_of(b"{}", true).is_err());
    }
}
