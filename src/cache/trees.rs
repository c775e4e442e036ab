//! huggingface_hub's tree listing of a commit, `<repo>/trees/<commit>.json` (format version 1):
//! every file of the commit with its size and blob ids. Offline, huggingface_hub tells a
//! complete snapshot from a partial one by it, so a listing is only ever written whole (from the
//! Hub's full listing, or as another cache had it), and one read from anywhere is validated
//! before it is trusted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{is_commit_hash, is_safe_relative_path};
use crate::manifest::MAX_FILE_SIZE;

/// The folder of a repo that holds the listings.
pub const TREES_DIR: &str = "trees";
/// The only format huggingface_hub reads; it ignores listings of any other.
pub const FORMAT_VERSION: u64 = 1;
/// Larger listings are refused: a million files fit in well under this.
pub const MAX_LISTING_BYTES: usize = 256 * 1024 * 1024;

/// One file of a listing, with the fields huggingface_hub keeps from the Hub's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    pub size: u64,
    /// The git blob SHA-1.
    pub blob_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lfs_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xet_hash: Option<String>,
}

impl TreeEntry {
    /// The name the cache gives the file's blob: the LFS sha256, else the git blob SHA-1.
    pub fn etag(&self) -> &str {
        self.lfs_sha256.as_deref().unwrap_or(&self.blob_id)
    }

    /// The size of the file's content.
    pub fn content_size(&self) -> u64 {
        self.lfs_size.unwrap_or(self.size)
    }
}

/// `{"format_version": 1, "files": {path: entry}}`, files sorted by path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeListing {
    pub format_version: u64,
    pub files: BTreeMap<String, TreeEntry>,
}

/// Why a listing is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TreeError(String);

fn is_hex(s: &str, len: usize, lowercase_only: bool) -> bool {
    s.len() == len
        && s.bytes().all(|b| {
            b.is_ascii_digit()
                || (b'a'..=b'f').contains(&b)
                || (!lowercase_only && (b'A'..=b'F').contains(&b))
        })
}

impl TreeListing {
    pub fn new(files: BTreeMap<String, TreeEntry>) -> TreeListing {
        TreeListing {
            format_version: FORMAT_VERSION,
            files,
        }
    }

    /// Parses and validates an untrusted listing: the format version huggingface_hub reads,
    /// safe relative paths, blob ids of the right shape, sizes a file can have.
    pub fn parse(bytes: &[u8]) -> Result<TreeListing, TreeError> {
        if bytes.len() > MAX_LISTING_BYTES {
            return Err(TreeError(format!("larger than {MAX_LISTING_BYTES} bytes")));
        }
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| TreeError(format!("not valid JSON: {e}")))?;
        match value.get("format_version") {
            Some(v) if v.as_u64() == Some(FORMAT_VERSION) => {}
            Some(v) => {
                return Err(TreeError(format!(
                    "format_version {v} (only {FORMAT_VERSION} is known)"
                )))
            }
            None => return Err(TreeError("no format_version".into())),
        }
        let listing: TreeListing = serde_json::from_value(value)
            .map_err(|e| TreeError(format!("not a tree listing: {e}")))?;
        listing.validate()?;
        Ok(listing)
    }

    fn validate(&self) -> Result<(), TreeError> {
        for (path, e) in &self.files {
            let bad = |what: String| Err(TreeError(format!("{path:?}: {what}")));
            if !is_safe_relative_path(path) || path.contains('\\') {
                return bad("unsafe file path".into());
            }
            if !is_hex(&e.blob_id, 40, true) {
                return bad(format!("blob_id {:?} is not 40 lowercase hex", e.blob_id));
            }
            if let Some(sha) = &e.lfs_sha256 {
                if !is_hex(sha, 64, true) {
                    return bad(format!("lfs_sha256 {sha:?} is not 64 lowercase hex"));
                }
            }
            if let Some(x) = &e.xet_hash {
                if !is_hex(x, 64, false) {
                    return bad(format!("xet_hash {x:?} is not 64 hex"));
                }
            }
            if e.size > MAX_FILE_SIZE || e.lfs_size.is_some_and(|s| s > MAX_FILE_SIZE) {
                return bad("absurd size".into());
            }
        }
        Ok(())
    }

    /// The bytes huggingface_hub writes for this listing (`json.dump(indent=1)`).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        crate::text::python_json(self, b" ")
    }

    /// Checks the listing against files a snapshot holds (path, blob name if known, size): it
    /// must list each of them with the same content. A file stored under the sha256 of a non-LFS
    /// file (a cache without symlinks) or of unknown name is compared by size alone.
    pub fn check_covers<'a>(
        &self,
        files: impl IntoIterator<Item = (&'a str, Option<&'a str>, u64)>,
    ) -> Result<(), TreeError> {
        for (path, etag, size) in files {
            let Some(e) = self.files.get(path) else {
                return Err(TreeError(format!("does not list {path:?}, which it has")));
            };
            let differs = etag
                .filter(|t| t.len() == 40 || e.lfs_sha256.is_some())
                .is_some_and(|t| t != e.etag());
            if differs || e.content_size() != size {
                return Err(TreeError(format!(
                    "lists {path:?} as blob {} ({} bytes), not {} ({size} bytes)",
                    e.etag(),
                    e.content_size(),
                    etag.unwrap_or("a copy")
                )));
            }
        }
        Ok(())
    }
}

/// `<repo>/trees/<commit>.json`.
pub fn tree_path(repo_dir: &Path, commit: &str) -> PathBuf {
    repo_dir.join(TREES_DIR).join(format!("{commit}.json"))
}

/// Writes the listing of `commit` (validated bytes) unless the cache already holds these bytes;
/// atomically, so huggingface_hub never reads half a listing.
pub fn write_listing(
    repo_dir: &Path,
    commit: &str,
    bytes: &[u8],
) -> Result<(), super::write::WriteError> {
    let path = tree_path(repo_dir, commit);
    if std::fs::read(&path).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    super::write::write_private(&path, bytes)
}

/// The commit of a `<commit>.json` name in `trees/`, if it is one.
pub fn parse_tree_file_name(name: &str) -> Option<&str> {
    name.strip_suffix(".json").filter(|c| is_commit_hash(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "ce013625030ba8dba906f756967f9e9ca394464a";

    fn sample() -> TreeListing {
        let mut files = BTreeMap::new();
        files.insert(
            "config.json".to_string(),
            TreeEntry {
                size: 6,
                blob_id: SHA1.into(),
                lfs_sha256: None,
                lfs_size: None,
                xet_hash: None,
            },
        );
        files.insert(
            "w/model.safetensors".to_string(),
            TreeEntry {
                size: 1234,
                blob_id: "a".repeat(40),
                lfs_sha256: Some("b".repeat(64)),
                lfs_size: Some(1234),
                xet_hash: None,
            },
        );
        TreeListing::new(files)
    }

    #[test]
    fn written_as_huggingface_hub_writes_it() {
        let text = String::from_utf8(sample().to_json_bytes()).unwrap();
        let expected = format!(
            "{{\n \"format_version\": 1,\n \"files\": {{\n  \"config.json\": {{\n   \"size\": 6,\n   \
             \"blob_id\": \"{SHA1}\"\n  }},\n  \"w/model.safetensors\": {{\n   \"size\": 1234,\n   \
             \"blob_id\": \"{}\",\n   \"lfs_sha256\": \"{}\",\n   \"lfs_size\": 1234\n  }}\n }}\n}}",
            "a".repeat(40),
            "b".repeat(64)
        );
        assert_eq!(text, expected);
        assert_eq!(TreeListing::parse(text.as_bytes()).unwrap(), sample());
    }

    #[test]
    fn malformed_listings_are_refused() {
        let ok = String::from_utf8(sample().to_json_bytes()).unwrap();
        for (bad, why) in [
            ("not json".to_string(), "not valid JSON"),
            (
                ok.replace("\"format_version\": 1", "\"format_version\": 2"),
                "format_version 2",
            ),
            (
                ok.replace("\"format_version\": 1,", ""),
                "no format_version",
            ),
            (
                ok.replace("config.json", "../config.json"),
                "unsafe file path",
            ),
            (ok.replace(SHA1, "XYZ"), "blob_id"),
            (ok.replace(&"b".repeat(64), "b"), "lfs_sha256"),
            (
                ok.replace("\"size\": 6", "\"size\": -6"),
                "not a tree listing",
            ),
        ] {
            let err = TreeListing::parse(bad.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
    }

    #[test]
    fn a_listing_must_cover_the_snapshot() {
        let l = sample();
        let (b64, c40, d64) = ("b".repeat(64), "c".repeat(40), "d".repeat(64));
        let covers = |path: &str, etag: Option<&str>, size: u64| {
            l.check_covers([(path, etag, size)]).is_ok()
        };
        assert!(covers("config.json", Some(SHA1), 6));
        assert!(covers("w/model.safetensors", Some(&b64), 1234));
        assert!(!covers("other.txt", Some(SHA1), 6));
        assert!(!covers("config.json", Some(&c40), 6));
        assert!(!covers("config.json", Some(SHA1), 7));
        // A non-LFS file named by its sha256 (no-symlink cache), or a copy, is compared by size.
        assert!(covers("config.json", Some(&d64), 6));
        assert!(covers("config.json", None, 6));
    }

    #[test]
    fn file_names() {
        let c = "c".repeat(40);
        assert_eq!(parse_tree_file_name(&format!("{c}.json")), Some(c.as_str()));
        assert_eq!(parse_tree_file_name("tmpab12.tmp"), None);
        assert_eq!(parse_tree_file_name("main.json"), None);
        assert_eq!(
            tree_path(Path::new("/c/models--a--b"), &c),
            PathBuf::from(format!("/c/models--a--b/trees/{c}.json"))
        );
    }
}
