//! The Hub's answers, parsed: a revision's commit and gating, pages of a commit's recursive
//! tree with the `Link` header that chains them, and the whole listing turned into the cache's
//! tree listing and the manifest the pull engine plans from. Everything here is untrusted input.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cache::trees::{TreeEntry, TreeListing};
use crate::cache::{is_commit_hash, RepoType};
use crate::manifest::{Manifest, ManifestFile};

/// What `/api/{type}s/{id}/revision/{rev}` says about a revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoInfo {
    pub commit: String,
    /// The Hub's own answer: users must accept terms to download (`"auto"`, `"manual"`).
    pub gated: bool,
}

#[derive(Deserialize)]
struct RawInfo {
    sha: Option<String>,
    #[serde(default)]
    gated: serde_json::Value,
}

pub fn parse_repo_info(bytes: &[u8]) -> Result<RepoInfo, String> {
    let raw: RawInfo =
        serde_json::from_slice(bytes).map_err(|e| format!("not the repo info expected: {e}"))?;
    let commit = raw.sha.ok_or("the repo info names no commit (sha)")?;
    if !is_commit_hash(&commit) {
        return Err(format!(
            "the repo info's sha {commit:?} is not a commit hash"
        ));
    }
    let gated = !matches!(
        raw.gated,
        serde_json::Value::Null | serde_json::Value::Bool(false)
    );
    Ok(RepoInfo { commit, gated })
}

/// One entry of a tree page.
#[derive(Debug, Deserialize)]
pub struct TreeItem {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: Option<String>,
    #[serde(default)]
    lfs: Option<LfsInfo>,
    #[serde(default, rename = "xetHash")]
    xet_hash: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

pub fn parse_tree_page(bytes: &[u8]) -> Result<Vec<TreeItem>, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("not a tree listing page: {e}"))
}

/// The `rel="next"` target of a `Link` header (RFC 8288), as the Hub paginates listings.
pub fn next_link(header: &str) -> Option<String> {
    let mut rest = header;
    while let Some(open) = rest.find('<') {
        let close = open + rest[open..].find('>')?;
        let target = &rest[open + 1..close];
        let params_end = rest[close..].find('<').map_or(rest.len(), |i| close + i);
        let params = &rest[close + 1..params_end];
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches('"')
                        .split_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        if is_next {
            return Some(target.to_string());
        }
        rest = &rest[params_end..];
    }
    None
}

/// The files of all pages as the cache's tree listing (folders left out). Refused when an
/// entry lacks its blob id or a path comes twice: a listing must describe the commit exactly.
pub fn listing_from(items: Vec<TreeItem>) -> Result<TreeListing, String> {
    let mut files = BTreeMap::new();
    for item in items {
        if item.kind != "file" {
            continue;
        }
        let Some(blob_id) = item.oid else {
            return Err(format!("{:?} has no oid", item.path));
        };
        let entry = TreeEntry {
            size: item.size,
            blob_id,
            lfs_sha256: item.lfs.as_ref().map(|l| l.oid.clone()),
            lfs_size: item.lfs.as_ref().map(|l| l.size),
            xet_hash: item.xet_hash,
        };
        if files.insert(item.path.clone(), entry).is_some() {
            return Err(format!("{:?} is listed twice", item.path));
        }
    }
    // Validated as any listing read from elsewhere is.
    let listing = TreeListing::new(files);
    TreeListing::parse(&listing.to_json_bytes()).map_err(|e| e.to_string())
}

/// The manifest of a whole commit: every listed file under the cache's blob name for it.
pub fn manifest_from(
    repo_id: &str,
    repo_type: RepoType,
    commit: &str,
    listing: &TreeListing,
) -> Result<Manifest, String> {
    let manifest = Manifest {
        repo: repo_id.to_string(),
        revision: commit.to_string(),
        repo_type: repo_type.as_str().to_string(),
        files: listing
            .files
            .iter()
            .map(|(path, e)| ManifestFile {
                path: path.clone(),
                blob: e.etag().to_string(),
                size: e.content_size(),
            })
            .collect(),
    };
    manifest.validate().map_err(|e| e.to_string())?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "ce013625030ba8dba906f756967f9e9ca394464a";

    #[test]
    fn repo_info_gives_the_commit_and_gating() {
        let c = "a".repeat(40);
        let info = |gated: &str| {
            parse_repo_info(format!(r#"{{"id":"org/m","sha":"{c}","gated":{gated}}}"#).as_bytes())
        };
        assert_eq!(
            info("false").unwrap(),
            RepoInfo {
                commit: c.clone(),
                gated: false
            }
        );
        assert!(info("\"auto\"").unwrap().gated);
        assert!(info("\"manual\"").unwrap().gated);
        assert!(
            !parse_repo_info(format!(r#"{{"sha":"{c}"}}"#).as_bytes())
                .unwrap()
                .gated
        );
        assert!(parse_repo_info(br#"{"sha":"main"}"#).is_err());
        assert!(parse_repo_info(br#"{"id":"org/m"}"#).is_err());
        assert!(parse_repo_info(b"<html>").is_err());
    }

    #[test]
    fn link_headers() {
        let next = "https://hub/api/models/org/m/tree/c?recursive=true&cursor=abc";
        assert_eq!(
            next_link(&format!("<{next}>; rel=\"next\"")).as_deref(),
            Some(next)
        );
        assert_eq!(
            next_link(&format!(
                "<https://hub/prev>; rel=\"prev\", <{next}>; rel=next"
            ))
            .as_deref(),
            Some(next)
        );
        assert_eq!(
            next_link(&format!("<{next}>; title=\"a, b\"; rel=\"last next\"")).as_deref(),
            Some(next)
        );
        assert_eq!(next_link("<https://hub/prev>; rel=\"prev\""), None);
        assert_eq!(next_link(""), None);
        assert_eq!(next_link("<unterminated; rel=next"), None);
    }

    #[test]
    fn tree_pages_become_the_listing_and_the_manifest() {
        let sha = "b".repeat(64);
        let page = format!(
            r#"[{{"type":"directory","oid":"{SHA1}","size":0,"path":"w"}},
               {{"type":"file","oid":"{SHA1}","size":6,"path":"config.json"}},
               {{"type":"file","oid":"{}","size":1234,"path":"w/m.safetensors",
                 "lfs":{{"oid":"{sha}","size":1234,"pointerSize":134}},"xetHash":"{}"}}]"#,
            "a".repeat(40),
            "c".repeat(64)
        );
        let items = parse_tree_page(page.as_bytes()).unwrap();
        let listing = listing_from(items).unwrap();
        assert_eq!(listing.files.len(), 2);
        let w = &listing.files["w/m.safetensors"];
        assert_eq!(w.lfs_sha256.as_deref(), Some(sha.as_str()));
        assert_eq!(w.xet_hash.as_deref(), Some("c".repeat(64).as_str()));
        let commit = "d".repeat(40);
        let m = manifest_from("org/m", RepoType::Model, &commit, &listing).unwrap();
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[0].blob, SHA1);
        assert_eq!(m.files[1].blob, sha);
        assert_eq!(m.files[1].size, 1234);
    }

    #[test]
    fn hostile_or_broken_trees_are_refused() {
        let file = |path: &str, oid: &str| {
            format!(r#"{{"type":"file","oid":"{oid}","size":6,"path":"{path}"}}"#)
        };
        for (page, why) in [
            (
                format!("[{}]", file("../etc/passwd", SHA1)),
                "unsafe file path",
            ),
            (format!("[{}]", file("a", "zz")), "blob_id"),
            (
                format!("[{},{}]", file("a", SHA1), file("a", SHA1)),
                "twice",
            ),
            (
                r#"[{"type":"file","size":6,"path":"a"}]"#.to_string(),
                "no oid",
            ),
        ] {
            let items = parse_tree_page(page.as_bytes()).unwrap();
            let err = listing_from(items).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
        assert!(parse_tree_page(b"{\"error\":\"x\"}").is_err());
        // A path that is both a file and a folder passes the listing, not the manifest.
        let page = format!("[{},{}]", file("a", SHA1), file("a/b", SHA1));
        let listing = listing_from(parse_tree_page(page.as_bytes()).unwrap()).unwrap();
        assert!(manifest_from("org/m", RepoType::Model, &"d".repeat(40), &listing).is_err());
    }
}
