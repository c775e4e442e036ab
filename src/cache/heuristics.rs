//! The two content heuristics hf-cache-sync 0.1 applies before pushing: likely-gated repos and
//! Git-LFS / Xet pointer files (a pointer in place of the weights is useless to a puller).

use std::path::Path;

use super::scan::Repo;

const POINTER_MAX_SIZE: u64 = 1024;
const POINTER_MARKERS: [&[u8]; 3] = [b"version https://", b"oid sha256:", b"oid xet:"];

const LICENSE_FILES: [&str; 4] = ["LICENSE", "LICENSE.md", "LICENSE.txt", "USE_POLICY.md"];
const GATED_KEYWORDS: [&str; 6] = [
    "agreement",
    "meta llama",
    "acceptable use",
    "community license",
    "you must accept",
    "gated",
];

/// A small file that holds an LFS/Xet pointer instead of content.
pub fn is_pointer_file(path: &Path, size: u64) -> bool {
    if size > POINTER_MAX_SIZE {
        return false;
    }
    match std::fs::read(path) {
        Ok(head) => POINTER_MARKERS
            .iter()
            .any(|m| head.windows(m.len()).any(|w| w == *m)),
        Err(_) => false,
    }
}

/// Best effort: a license or use policy in any snapshot that asks the user to accept terms.
pub fn is_likely_gated(repo: &Repo) -> bool {
    repo.revisions.iter().any(|rev| {
        LICENSE_FILES.iter().any(|name| {
            std::fs::read(rev.dir.join(name))
                .map(|bytes| {
                    let text = String::from_utf8_lossy(&bytes).to_lowercase();
                    GATED_KEYWORDS.iter().any(|k| text.contains(k))
                })
                .unwrap_or(false)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("p");
        std::fs::write(
            &p,
            b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12\n",
        )
        .unwrap();
        assert!(is_pointer_file(&p, 60));
        assert!(!is_pointer_file(&p, 2048));
        std::fs::write(&p, b"{\"a\": 1}").unwrap();
        assert!(!is_pointer_file(&p, 8));
    }
}
