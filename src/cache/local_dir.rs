//! What huggingface_hub keeps inside a folder it downloads into (`hf download --local-dir DIR`):
//! `DIR/.cache/huggingface/download/<path>.metadata` per file (the commit, the etag and when the
//! two were last known to describe the file), the lock it takes beside it, and the
//! `.gitignore`, `CACHEDIR.TAG` and `trees/<commit>.json` listing in `DIR/.cache/huggingface/`.
//! Pure paths and formats, tested here; the writing is the local-dir engine's.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// `DIR/.cache/huggingface`, relative to DIR.
pub const BOOKKEEPING_DIR: [&str; 2] = [".cache", "huggingface"];

/// What huggingface_hub writes into `.cache/huggingface/.gitignore`: the folder is never
/// committed.
pub const GITIGNORE: &str = "*";

/// The cache directory tag huggingface_hub writes into `.cache/huggingface/`, so backup tools
/// skip it.
pub const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by huggingface_hub.\n\
# For information about cache directory tags, see:\n\
#\thttps://bford.info/cachedir/\n";

/// `DIR/.cache/huggingface`.
pub fn bookkeeping_dir(dir: &Path) -> PathBuf {
    BOOKKEEPING_DIR
        .iter()
        .fold(dir.to_path_buf(), |p, c| p.join(c))
}

/// Whether the repo path `path` would land inside `.cache/huggingface/`, where it would clash
/// with the bookkeeping (a repo file named like a metadata file).
pub fn is_bookkeeping_path(path: &str) -> bool {
    let mut parts = path.split('/');
    parts.next() == Some(BOOKKEEPING_DIR[0]) && parts.next() == Some(BOOKKEEPING_DIR[1])
}

/// Where the repo file `path` (`/`-separated) lands in DIR.
pub fn file_path(dir: &Path, path: &str) -> PathBuf {
    path.split('/').fold(dir.to_path_buf(), |p, c| p.join(c))
}

/// `DIR/.cache/huggingface/download/<path>.metadata`.
pub fn metadata_path(dir: &Path, path: &str) -> PathBuf {
    download_entry(dir, path, "metadata")
}

/// `DIR/.cache/huggingface/download/<path>.lock`: the lock huggingface_hub holds while it reads
/// or writes the file's metadata and while it writes the file (its metadata path with the last
/// suffix replaced).
pub fn lock_path(dir: &Path, path: &str) -> PathBuf {
    download_entry(dir, path, "lock")
}

fn download_entry(dir: &Path, path: &str, suffix: &str) -> PathBuf {
    let mut out = bookkeeping_dir(dir).join("download");
    let mut parts = path.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_some() {
            out.push(part);
        } else {
            out.push(format!("{part}.{suffix}"));
        }
    }
    out
}

/// `DIR/.cache/huggingface/trees/<commit>.json`: the commit's tree listing, as huggingface_hub
/// 2.x caches it for a local dir (the same format as the hub cache's `trees/`).
pub fn listing_path(dir: &Path, commit: &str) -> PathBuf {
    bookkeeping_dir(dir)
        .join("trees")
        .join(format!("{commit}.json"))
}

/// One file's download metadata: three lines, the commit, the etag (the blob name: sha256 for
/// LFS files, git blob SHA-1 otherwise), and the time (seconds since the epoch, a float) when
/// they were last known to describe the file.
#[derive(Debug, Clone, PartialEq)]
pub struct FileMetadata {
    pub commit: String,
    pub etag: String,
    pub timestamp: f64,
}

impl FileMetadata {
    /// Metadata saying `commit` and `etag` describe the file as of `now`.
    pub fn new(commit: &str, etag: &str, now: SystemTime) -> FileMetadata {
        let timestamp = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        FileMetadata {
            commit: commit.to_string(),
            etag: etag.to_string(),
            timestamp,
        }
    }

    /// Reads it as huggingface_hub does: the first three lines, each stripped; `None` when the
    /// timestamp is not a number (huggingface_hub then deletes the file and starts over).
    pub fn parse(text: &str) -> Option<FileMetadata> {
        let mut lines = text.split('\n').map(str::trim);
        let commit = lines.next()?.to_string();
        let etag = lines.next()?.to_string();
        let timestamp = lines.next()?.parse::<f64>().ok()?;
        Some(FileMetadata {
            commit,
            etag,
            timestamp,
        })
    }

    /// The file's content, as huggingface_hub writes it (a trailing newline after each line;
    /// the timestamp as the shortest decimal that reads back the same, as Python prints it).
    pub fn render(&self) -> String {
        format!("{}\n{}\n{}\n", self.commit, self.etag, self.timestamp)
    }

    /// Whether the metadata still speaks for a file last modified at `modified`: huggingface_hub
    /// ignores it once the file changed more than a second after it was written (the second
    /// allows for coarse modification times).
    pub fn is_fresh_for(&self, modified: SystemTime) -> bool {
        let mtime = match modified.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        mtime - 1.0 <= self.timestamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const COMMIT: &str = "11c5a3d5811f50298f278a704980280950aedb10";
    const SHA1: &str = "a16a55fda99d2f2e7b69cce5cf93ff4ad3049930";
    const SHA256: &str = "7c5d3f4b8b76583b422fcb9189ad6c89d5d97a094541ce8932dce3ecabde1421";

    #[test]
    fn paths_are_where_huggingface_hub_looks() {
        let dir = Path::new("/p/models/m");
        assert_eq!(
            metadata_path(dir, "config.json"),
            PathBuf::from("/p/models/m/.cache/huggingface/download/config.json.metadata")
        );
        assert_eq!(
            lock_path(dir, "config.json"),
            PathBuf::from("/p/models/m/.cache/huggingface/download/config.json.lock")
        );
        assert_eq!(
            metadata_path(dir, "a/b/model.safetensors"),
            PathBuf::from("/p/models/m/.cache/huggingface/download/a/b/model.safetensors.metadata")
        );
        // A name without a suffix, and a dot file: the suffix is added, never replaced.
        assert_eq!(
            lock_path(dir, "LICENSE"),
            PathBuf::from("/p/models/m/.cache/huggingface/download/LICENSE.lock")
        );
        assert_eq!(
            lock_path(dir, "sub/.gitattributes"),
            PathBuf::from("/p/models/m/.cache/huggingface/download/sub/.gitattributes.lock")
        );
        assert_eq!(
            file_path(dir, "a/b/c.bin"),
            PathBuf::from("/p/models/m/a/b/c.bin")
        );
        assert_eq!(
            listing_path(dir, COMMIT),
            PathBuf::from(format!(
                "/p/models/m/.cache/huggingface/trees/{COMMIT}.json"
            ))
        );
        assert!(is_bookkeeping_path(
            ".cache/huggingface/download/x.metadata"
        ));
        assert!(!is_bookkeeping_path(".cache/other"));
        assert!(!is_bookkeeping_path("x/.cache/huggingface/y"));
    }

    #[test]
    fn metadata_reads_what_huggingface_hub_writes() {
        // As written by huggingface_hub (Python's str(time.time())).
        let text = format!("{COMMIT}\n{SHA256}\n1712656091.1234567\n");
        let m = FileMetadata::parse(&text).unwrap();
        assert_eq!(m.commit, COMMIT);
        assert_eq!(m.etag, SHA256);
        assert_eq!(m.timestamp, 1712656091.1234567);
        // Surrounding blanks are stripped; extra lines are ignored.
        let m2 = FileMetadata::parse(&format!(" {COMMIT} \r\n{SHA256}\n1712656091.1234567\nx"));
        assert_eq!(m2, Some(m));
        assert_eq!(
            FileMetadata::parse(&format!("{COMMIT}\n{SHA1}\n1712656091\n"))
                .unwrap()
                .timestamp,
            1712656091.0
        );
        for bad in [
            String::new(),
            format!("{COMMIT}\n{SHA1}\n"),
            format!("{COMMIT}\n{SHA1}\nyesterday\n"),
        ] {
            assert_eq!(FileMetadata::parse(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn metadata_is_written_as_huggingface_hub_writes_it() {
        let now = UNIX_EPOCH + Duration::from_micros(1_712_656_091_123_456);
        let m = FileMetadata::new(COMMIT, SHA1, now);
        let text = m.render();
        assert_eq!(text, format!("{COMMIT}\n{SHA1}\n1712656091.123456\n"));
        assert_eq!(FileMetadata::parse(&text), Some(m));
        let whole = FileMetadata::new(
            COMMIT,
            SHA1,
            UNIX_EPOCH + Duration::from_secs(1_712_656_091),
        );
        // Python's float() reads it back; an integer is a float to it.
        assert_eq!(whole.render(), format!("{COMMIT}\n{SHA1}\n1712656091\n"));
    }

    #[test]
    fn metadata_goes_stale_once_the_file_is_modified_after_it() {
        let at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let m = FileMetadata::new(COMMIT, SHA1, at);
        assert!(m.is_fresh_for(at - Duration::from_secs(60)));
        assert!(m.is_fresh_for(at));
        // Within the second huggingface_hub allows for coarse modification times.
        assert!(m.is_fresh_for(at + Duration::from_millis(999)));
        assert!(!m.is_fresh_for(at + Duration::from_millis(1001)));
        assert!(!m.is_fresh_for(at + Duration::from_secs(3600)));
    }
}
