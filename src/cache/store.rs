//! huggingface_hub's cache-wide shared blob store (≥ 1.x): `<cache>/blobs/<2 hex>/<hash>`
//! payloads, recognised by the `<cache>/blobs/.huggingface-shared-blobs` marker, each with a
//! `<hash>.refs` manifest (the repo blob links to it) and a `<hash>.lock` beside it. Per-repo
//! `blobs/<etag>` entries may be relative links into it.
//!
//! Without the marker, nothing in the store is touched or counted: a `blobs/` folder at the
//! top of a cache could be anything.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::file_id;
use super::parse_repo_folder;
use super::scan::normalize_lexically;

const STORE_DIR: &str = "blobs";
const MARKER: &str = ".huggingface-shared-blobs";
const MARKER_CONTENT: &str = "1\n";
const REFS_SUFFIX: &str = ".refs";
const LOCK_SUFFIX: &str = ".lock";

/// A payload file of the store.
#[derive(Debug, Clone)]
pub struct Payload {
    pub path: PathBuf,
    pub file_id: (u64, u64),
    pub size: u64,
}

/// `<cache>/blobs`: where the store lives, marked or not.
pub fn store_dir(cache_dir: &Path) -> PathBuf {
    cache_dir.join(STORE_DIR)
}

/// Does `cache_dir` hold a store huggingface_hub marked as its own (the marker file with its
/// exact content)?
pub fn is_marked(cache_dir: &Path) -> bool {
    let marker = store_dir(cache_dir).join(MARKER);
    fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file())
        && fs::read_to_string(&marker).is_ok_and(|s| s == MARKER_CONTENT)
}

fn with_suffix(payload: &Path, suffix: &str) -> PathBuf {
    let mut name = payload.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    payload.with_file_name(name)
}

/// `<hash>.refs` beside a payload: the repo blob links huggingface_hub made to it.
pub fn refs_path(payload: &Path) -> PathBuf {
    with_suffix(payload, REFS_SUFFIX)
}

/// `<hash>.lock` beside a payload: held while huggingface_hub writes or collects it.
pub fn lock_path(payload: &Path) -> PathBuf {
    with_suffix(payload, LOCK_SUFFIX)
}

/// A store payload is named by a 64-hex hash.
pub fn is_payload_name(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Every payload of the store in `cache_dir` (regular files named by their hash under the
/// folder of its first two characters), sorted by path; nothing when the store is not marked.
/// Blocking.
pub fn payloads(cache_dir: &Path) -> Vec<Payload> {
    let mut out = Vec::new();
    if !is_marked(cache_dir) {
        return out;
    }
    let Ok(prefixes) = fs::read_dir(store_dir(cache_dir)) else {
        return out;
    };
    for prefix in prefixes.filter_map(Result::ok) {
        let Ok(pname) = prefix.file_name().into_string() else {
            continue;
        };
        if pname.len() != 2 || !prefix.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Ok(entries) = fs::read_dir(prefix.path()) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if !is_payload_name(&name) || !name.starts_with(&pname) {
                continue;
            }
            let path = entry.path();
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_file() => out.push(Payload {
                    file_id: file_id(&meta),
                    size: meta.len(),
                    path,
                }),
                _ => {}
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// `p` with its parent folder resolved through links: the form in which paths are compared.
pub fn canonical_name(p: &Path) -> Option<PathBuf> {
    let parent = fs::canonicalize(p.parent()?).ok()?;
    Some(parent.join(p.file_name()?))
}

/// The repo blob links a payload's `.refs` manifest lists that still point at it, as
/// huggingface_hub validates them (`root` is the canonical cache dir). `None` when the manifest
/// is missing or unreadable: then the payload must be left alone.
pub fn live_refs(root: &Path, payload: &Path) -> Option<Vec<PathBuf>> {
    let manifest = refs_path(payload);
    let meta = fs::symlink_metadata(&manifest).ok()?;
    if !meta.is_file() {
        return None;
    }
    let text = fs::read_to_string(&manifest).ok()?;
    let mut live = Vec::new();
    for line in text.lines() {
        let parts: Vec<&str> = line.split('/').collect();
        if parts.len() != 3
            || parse_repo_folder(parts[0]).is_none()
            || parts[1] != "blobs"
            || parts[2].is_empty()
            || parts[2] == ".."
            || parts[2] == "."
        {
            continue;
        }
        let candidate = root.join(line);
        let target = match fs::read_link(&candidate) {
            Ok(t) => t,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::InvalidInput
                ) =>
            {
                continue
            }
            Err(_) => return None,
        };
        let resolved = normalize_lexically(&candidate.parent()?.join(target));
        if resolved == payload || canonical_name(&resolved).as_deref() == Some(payload) {
            live.push(candidate);
        }
    }
    Some(live)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn hash(c: char) -> String {
        c.to_string().repeat(64)
    }

    /// A marked store with payloads `a…` and `b…`; `models--org--m/blobs/e1` links to `a…`.
    fn store(root: &Path) -> PathBuf {
        let dir = store_dir(root);
        for c in ['a', 'b'] {
            let prefix = dir.join(format!("{c}{c}"));
            fs::create_dir_all(&prefix).unwrap();
            fs::write(prefix.join(hash(c)), b"payload").unwrap();
        }
        fs::write(dir.join(MARKER), MARKER_CONTENT).unwrap();
        let blobs = root.join("models--org--m/blobs");
        fs::create_dir_all(&blobs).unwrap();
        symlink(format!("../../blobs/aa/{}", hash('a')), blobs.join("e1")).unwrap();
        dir.join("aa").join(hash('a'))
    }

    #[test]
    fn paths_beside_a_payload() {
        let p = Path::new("/c/blobs/ab/abcd");
        assert_eq!(refs_path(p), PathBuf::from("/c/blobs/ab/abcd.refs"));
        assert_eq!(lock_path(p), PathBuf::from("/c/blobs/ab/abcd.lock"));
        assert!(is_payload_name(&"a".repeat(64)));
        assert!(!is_payload_name(&"a".repeat(40)));
        assert!(!is_payload_name(&"A".repeat(64)));
    }

    #[test]
    fn only_a_marked_store_is_walked() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        store(&root);
        let names: Vec<PathBuf> = payloads(&root).into_iter().map(|p| p.path).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        // Manifests, locks and misplaced files are not payloads.
        fs::write(refs_path(&names[0]), "").unwrap();
        fs::write(lock_path(&names[0]), "").unwrap();
        fs::write(store_dir(&root).join("aa").join(hash('b')), b"x").unwrap();
        assert_eq!(payloads(&root).len(), 2);
        // A marker with other content is not huggingface_hub's.
        fs::write(store_dir(&root).join(MARKER), "2\n").unwrap();
        assert!(!is_marked(&root));
        assert!(payloads(&root).is_empty());
    }

    #[test]
    fn live_refs_are_the_listed_links_that_still_point_here() {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        let payload = store(&root);
        assert_eq!(live_refs(&root, &payload), None, "no manifest: unknown");
        fs::write(
            refs_path(&payload),
            "models--org--m/blobs/e1\nmodels--org--m/blobs/gone\n../../etc/passwd\n",
        )
        .unwrap();
        assert_eq!(
            live_refs(&root, &payload),
            Some(vec![root.join("models--org--m/blobs/e1")])
        );
        fs::remove_file(root.join("models--org--m/blobs/e1")).unwrap();
        assert_eq!(live_refs(&root, &payload), Some(Vec::new()));
    }
}
