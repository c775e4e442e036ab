//! The git object ids the Hub's listings carry, for files whose only name in the bucket is a
//! blob name: an LFS file's id is that of its pointer file (the canonical git-lfs pointer of
//! its sha256 and size), a folder's that of the git tree of its entries.

use std::collections::BTreeMap;

use sha1::{Digest, Sha1};

/// The git-lfs pointer file of content with this sha256 and size, as the Hub stores it.
pub fn lfs_pointer(sha256: &str, size: u64) -> String {
    format!("version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n")
}

/// git's object id of `kind` (`blob`, `tree`) content.
fn object_id(kind: &str, content: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(format!("{kind} {}\0", content.len()).as_bytes());
    h.update(content);
    h.finalize().into()
}

fn hex(id: &[u8]) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<[u8; 20]> {
    let mut out = [0u8; 20];
    if text.len() != 40 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The git blob id of a file named by blob `etag` (its git id for 40 hex, the id of its LFS
/// pointer for a sha256).
pub fn blob_id(etag: &str, size: u64) -> String {
    if etag.len() == 64 {
        hex(&object_id("blob", lfs_pointer(etag, size).as_bytes()))
    } else {
        etag.to_string()
    }
}

/// A folder's entries: name → (is a folder, the id once known).
type Entries = BTreeMap<String, (bool, Option<[u8; 20]>)>;

/// The git tree id of every folder of a commit whose files have these blob ids (`path` →
/// id), each file taken as a regular, non-executable one (mode 100644), as model repos hold.
pub fn tree_ids<'a>(
    files: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> BTreeMap<String, String> {
    // Folder → its entries.
    let mut folders: BTreeMap<String, Entries> = BTreeMap::new();
    for (path, id) in files {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        folders
            .entry(parent.to_string())
            .or_default()
            .insert(name.to_string(), (false, unhex(id)));
        let mut dir = parent;
        while !dir.is_empty() {
            let (up, name) = dir.rsplit_once('/').unwrap_or(("", dir));
            folders
                .entry(up.to_string())
                .or_default()
                .insert(name.to_string(), (true, None));
            dir = up;
        }
    }
    let mut ids = BTreeMap::new();
    // Deepest first: a folder's id needs those of the folders in it.
    let mut order: Vec<String> = folders.keys().cloned().collect();
    order.sort_by_key(|f| std::cmp::Reverse(f.matches('/').count() + usize::from(!f.is_empty())));
    for folder in order {
        let entries = folders.remove(&folder).unwrap_or_default();
        // git sorts a folder's entries by name, a folder's name read with a `/` after it.
        let mut sorted: Vec<(String, bool, [u8; 20])> = entries
            .into_iter()
            .map(|(name, (is_dir, id))| {
                let path = if folder.is_empty() {
                    name.clone()
                } else {
                    format!("{folder}/{name}")
                };
                let id = match (is_dir, id) {
                    (_, Some(id)) => id,
                    (true, None) => ids
                        .get(&path)
                        .and_then(|h: &String| unhex(h))
                        .unwrap_or([0; 20]),
                    (false, None) => [0; 20],
                };
                (name, is_dir, id)
            })
            .collect();
        sorted.sort_by_key(|a| sort_key(&a.0, a.1));
        let mut content = Vec::new();
        for (name, is_dir, id) in &sorted {
            content.extend_from_slice(if *is_dir { b"40000 " } else { b"100644 " });
            content.extend_from_slice(name.as_bytes());
            content.push(0);
            content.extend_from_slice(id);
        }
        ids.insert(folder, hex(&object_id("tree", &content)));
    }
    ids
}

fn sort_key(name: &str, is_dir: bool) -> Vec<u8> {
    let mut key = name.as_bytes().to_vec();
    if is_dir {
        key.push(b'/');
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lfs_file_is_named_by_its_pointer() {
        let sha = "a".repeat(64);
        let pointer = lfs_pointer(&sha, 5);
        assert_eq!(pointer.len(), 126, "{pointer}");
        // `git hash-object` of the pointer text.
        assert_eq!(blob_id(&sha, 5), "618734ee7a80f3093cc3e4ff40347a121c645800");
        assert_eq!(blob_id(&"b".repeat(40), 5), "b".repeat(40));
    }

    #[test]
    fn tree_ids_are_those_git_writes() {
        // a = "hello\n", d/b = "x\n", d/e/c = "y\n", d.txt = "z\n"; `git write-tree` and
        // `git rev-parse <tree>:d`. `d.txt` sorts before the folder `d`, read as `d/`.
        let id = |text: &[u8]| hex(&object_id("blob", text));
        let (a, b, c, z) = (id(b"hello\n"), id(b"x\n"), id(b"y\n"), id(b"z\n"));
        let files = [("a", &a), ("d/b", &b), ("d/e/c", &c), ("d.txt", &z)];
        let ids = tree_ids(files.iter().map(|(p, i)| (*p, i.as_str())));
        assert_eq!(ids[""], "cbbd17ceae38df81f6737b0bacfc480fb5d4c6a1");
        assert_eq!(ids["d"], "617c88aad5de706a412368ac021f82bb35f79d04");
        assert_eq!(ids.len(), 3);
    }
}
