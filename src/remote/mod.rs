//! Where the shared cache lives: an S3-compatible bucket or a directory. Both speak the same keys
//! and offer the same operations, including verified blob transfers.

pub mod aws;
pub mod bucket_lock;
mod bulk;
pub mod catalog;
pub mod dir;
pub mod error;
mod probe;
pub mod s3;

use std::path::PathBuf;

use bytes::Bytes;

pub use bulk::{probe_token, stops_deleting, OpenUploadInfo, WriteProbe};
pub use error::{Access, BlobError, RemoteError};
pub use probe::{default_region, http_date_secs, standalone_chain, RemoteKind};

use crate::cache::write::BlobSink;
use crate::config::{ConfigError, Settings};
use crate::net::TransferCtx;

/// A listed object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The server's ETag without quotes (the MD5 of a single-part object), when it has one.
    pub etag: Option<String>,
    /// When the object was written (S3 LastModified; a file's modification time).
    pub last_modified: Option<std::time::SystemTime>,
}

impl ObjectInfo {
    /// True when the listing proves the object holds exactly `body`, without reading it.
    pub fn holds(&self, body: &[u8]) -> bool {
        use md5::{Digest, Md5};
        self.size == body.len() as u64
            && self
                .etag
                .as_deref()
                .is_some_and(|e| e == format!("{:x}", Md5::digest(body)))
    }
}

/// A local blob to upload.
#[derive(Debug, Clone)]
pub struct BlobSource {
    pub etag: String,
    /// Where the bytes are read from (the shared-store target for linked blobs).
    pub path: PathBuf,
    pub size: u64,
}

/// Where the remote is, parsed from `--remote` or the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteSpec {
    S3 {
        endpoint: Option<String>,
        bucket: String,
        region: Option<String>,
        prefix: String,
    },
    Dir {
        root: PathBuf,
        prefix: String,
    },
}

impl RemoteSpec {
    /// `--remote` wins over `storage.*`; `s3://bucket/prefix` keeps the configured endpoint and
    /// credentials, a path or `file://` URL is a directory remote.
    pub fn resolve(
        settings: &Settings,
        flag: Option<&std::ffi::OsStr>,
    ) -> Result<RemoteSpec, ConfigError> {
        if let Some(flag) = flag {
            // A directory path need not be UTF-8; an s3:// URL is.
            let Some(text) = flag.to_str() else {
                return Ok(RemoteSpec::Dir {
                    root: PathBuf::from(flag),
                    prefix: settings.prefix.clone(),
                });
            };
            let flag = text;
            if let Some(e) = misspelled_url(flag) {
                return Err(e);
            }
            if let Some(rest) = flag.strip_prefix("s3://") {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(ConfigError::Usage {
                        message: format!("--remote {flag}: no bucket name"),
                        hint: "write --remote=s3://bucket[/prefix]".into(),
                    });
                }
                return Ok(RemoteSpec::S3 {
                    endpoint: settings.storage.endpoint.clone(),
                    bucket: bucket.to_string(),
                    region: settings.storage.region.clone(),
                    prefix: crate::config::normalize_prefix(prefix),
                });
            }
            return Ok(RemoteSpec::Dir {
                root: dir_from_url(flag),
                prefix: settings.prefix.clone(),
            });
        }
        if let Some(endpoint) = &settings.storage.endpoint {
            if endpoint.starts_with("file://") {
                return Ok(RemoteSpec::Dir {
                    root: dir_from_url(endpoint),
                    prefix: settings.prefix.clone(),
                });
            }
        }
        let bucket = settings
            .storage
            .bucket
            .clone()
            .ok_or_else(|| ConfigError::Usage {
                message: "no remote configured".into(),
                hint: "set storage.bucket (or B2_BUCKET) or storage.endpoint: file:///shared/dir \
                       (`hf-cache-sync init` writes a config file to fill in), or pass \
                       --remote=s3://bucket[/prefix] or --remote=/path"
                    .into(),
            })?;
        Ok(RemoteSpec::S3 {
            endpoint: settings.storage.endpoint.clone(),
            bucket,
            region: settings.storage.region.clone(),
            prefix: settings.prefix.clone(),
        })
    }

    /// The bucket of an S3 remote.
    pub fn bucket(&self) -> Option<&str> {
        match self {
            RemoteSpec::S3 { bucket, .. } => Some(bucket),
            RemoteSpec::Dir { .. } => None,
        }
    }

    /// The folder of a directory remote.
    pub fn root(&self) -> Option<&std::path::Path> {
        match self {
            RemoteSpec::S3 { .. } => None,
            RemoteSpec::Dir { root, .. } => Some(root),
        }
    }

    pub fn prefix(&self) -> &str {
        match self {
            RemoteSpec::S3 { prefix, .. } | RemoteSpec::Dir { prefix, .. } => prefix,
        }
    }
}

/// URL-like text `--remote` does not take (`s3:/kit`, `S3://kit`, `gs://kit`, `https://host`),
/// refused rather than taken for a directory of that name.
fn misspelled_url(text: &str) -> Option<ConfigError> {
    let (scheme, rest) = text.split_once(':')?;
    let scheme_like = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !scheme_like || text.starts_with("s3://") || text.starts_with("file://") {
        return None;
    }
    let hint = match scheme.to_ascii_lowercase().as_str() {
        "s3" => format!(
            "did you mean --remote=s3://{}?",
            rest.trim_start_matches('/')
        ),
        "file" => format!(
            "did you mean --remote=file:///{}?",
            rest.trim_start_matches('/')
        ),
        "http" | "https" => "the S3 endpoint goes in storage.endpoint (or B2_ENDPOINT); pass the \
                             bucket as --remote=s3://bucket[/prefix]"
            .into(),
        _ => format!(
            "--remote takes s3://bucket[/prefix] or a directory; write ./{text} for a directory \
             by that name"
        ),
    };
    Some(ConfigError::Usage {
        message: format!("--remote {text}: not an s3:// URL or a directory"),
        hint,
    })
}

fn dir_from_url(s: &str) -> PathBuf {
    PathBuf::from(s.strip_prefix("file://").unwrap_or(s))
}

/// The remote a command talks to.
#[derive(Clone)]
pub enum Remote {
    S3(s3::S3Remote),
    Dir(dir::DirRemote),
}

impl Remote {
    /// Opens the remote; S3 needs credentials.
    pub fn open(spec: &RemoteSpec, settings: &Settings) -> Result<Remote, ConfigError> {
        match spec {
            RemoteSpec::S3 {
                endpoint,
                bucket,
                region,
                prefix,
            } => Ok(Remote::S3(
                s3::S3Remote::new(
                    endpoint.as_deref(),
                    bucket,
                    region.as_deref(),
                    &settings.credentials,
                    settings.storage.ca_bundle.as_ref(),
                    settings.transfer.timeout,
                )?
                .with_prefix(prefix),
            )),
            RemoteSpec::Dir { root, prefix } => Ok(Remote::Dir(
                dir::DirRemote::new(root.clone()).with_prefix(prefix),
            )),
        }
    }

    /// `s3://bucket/prefix at https://endpoint` or `/shared/dir (prefix team)`: never a secret.
    pub fn describe(&self) -> String {
        match self {
            Remote::S3(r) => r.describe(),
            Remote::Dir(r) => r.describe(),
        }
    }

    /// `s3://bucket[/prefix]`, or the folder keys go under: the remote in JSON documents, where
    /// a program reads it, rather than prose.
    pub fn url(&self) -> String {
        match self {
            Remote::S3(r) => r.url(),
            Remote::Dir(r) => r.url(),
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, RemoteError> {
        match self {
            Remote::S3(r) => r.list(prefix).await,
            Remote::Dir(r) => r.list(prefix).await,
        }
    }

    /// A small object's body, or `None` when it does not exist. Larger than `max` is an error.
    pub async fn get(&self, key: &str, max: usize) -> Result<Option<Vec<u8>>, RemoteError> {
        match self {
            Remote::S3(r) => r.get(key, max).await,
            Remote::Dir(r) => r.get(key, max).await,
        }
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), RemoteError> {
        match self {
            Remote::S3(r) => r.put(key, body).await,
            Remote::Dir(r) => r.put(key, body).await,
        }
    }

    /// Writes `key` unless it exists, where the store can tell (`If-None-Match: *`; a
    /// directory's link): `Ok(false)` when it exists. Some stores (Garage) ignore the condition
    /// and write it anyway: never rely on this alone.
    pub async fn put_new(&self, key: &str, body: Bytes) -> Result<bool, RemoteError> {
        match self {
            Remote::S3(r) => r.put_new(key, body).await,
            Remote::Dir(r) => r.put_new(key, body).await,
        }
    }

    /// The size of the object at `key`, or `None` when there is none.
    pub async fn object_size(&self, key: &str) -> Result<Option<u64>, RemoteError> {
        match self {
            Remote::S3(r) => r.object_size(key).await,
            Remote::Dir(r) => r.object_size(key).await,
        }
    }

    /// Whether [`Remote::presign_get`] can hand out URLs: an S3 remote can, a directory cannot.
    pub fn can_presign(&self) -> bool {
        matches!(self, Remote::S3(_))
    }

    /// A short-lived URL that GETs `key` without credentials, for a client to fetch the object
    /// from the store itself; `None` for a directory remote, which has no such URL.
    pub async fn presign_get(
        &self,
        key: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<String>, RemoteError> {
        match self {
            Remote::S3(r) => r.presign_get(key, ttl).await.map(Some),
            Remote::Dir(_) => Ok(None),
        }
    }

    /// Aborts multipart uploads under `prefix` older than `older_than`, left by killed runs.
    /// Directory remotes have none: their temporary files are skipped by every reader.
    pub async fn abort_stale_uploads(
        &self,
        prefix: &str,
        older_than: std::time::Duration,
    ) -> Result<usize, RemoteError> {
        match self {
            Remote::S3(r) => r.abort_stale_uploads(prefix, older_than).await,
            Remote::Dir(_) => Ok(0),
        }
    }

    /// Deletes an object; deleting one that does not exist is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), RemoteError> {
        match self {
            Remote::S3(r) => r.delete(key).await,
            Remote::Dir(r) => r.delete(key).await,
        }
    }

    /// Uploads a blob, checking its bytes against its name in the same read; content that does
    /// not match never reaches the remote.
    pub async fn upload_blob(
        &self,
        src: &BlobSource,
        key: &str,
        ctx: &TransferCtx,
    ) -> Result<(), BlobError> {
        match self {
            Remote::S3(r) => r.upload_blob(src, key, ctx).await,
            Remote::Dir(r) => r.upload_blob(src, key, ctx).await,
        }
    }

    /// Downloads into `writer`, which verifies while it writes; returns what the writer makes
    /// of it (the final blob path, for a blob of the cache).
    pub async fn download_blob<W: BlobSink>(
        &self,
        key: &str,
        writer: W,
        size: u64,
        ctx: &TransferCtx,
    ) -> Result<W::Done, BlobError> {
        match self {
            Remote::S3(r) => r.download_blob(key, writer, size, ctx).await,
            Remote::Dir(r) => r.download_blob(key, writer, size, ctx).await,
        }
    }
}

/// Why a small object (a manifest, a ref) was refused unread: it is larger than any real one.
pub fn too_large(key: &str, max: usize) -> String {
    format!(
        "{key}: object is larger than {} ({max} bytes); refused",
        crate::report::human_bytes(max as u64)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_that_are_not_remotes_are_refused_not_taken_for_directories() {
        let settings = crate::config::Settings::load_without_file(&Default::default()).unwrap();
        let resolve = |text: &str| RemoteSpec::resolve(&settings, Some(std::ffi::OsStr::new(text)));
        for (text, hint) in [
            ("s3:/kit", "did you mean --remote=s3://kit?"),
            ("S3://kit/p", "did you mean --remote=s3://kit/p?"),
            ("https://s3.example.com/b", "storage.endpoint"),
            ("gs://kit", "./gs://kit"),
            ("s3://", "s3://bucket"),
        ] {
            let err = resolve(text).unwrap_err();
            assert!(
                err.hint().unwrap().contains(hint),
                "{text}: {:?}",
                err.hint()
            );
        }
        assert!(matches!(resolve("s3://kit/p"), Ok(RemoteSpec::S3 { .. })));
        for dir in ["/mnt/share", "./a:b", "share", "C:\\share", "file:///mnt/x"] {
            assert!(matches!(resolve(dir), Ok(RemoteSpec::Dir { .. })), "{dir}");
        }
    }

    #[test]
    fn a_listing_proves_content_by_its_md5() {
        let o = ObjectInfo {
            key: "k".into(),
            size: 3,
            etag: Some("900150983cd24fb0d6963f7d28e17f72".into()),
            last_modified: None,
        };
        assert!(o.holds(b"abc"));
        assert!(!o.holds(b"abd"));
        let multipart = ObjectInfo {
            etag: Some("900150983cd24fb0d6963f7d28e17f72-2".into()),
            ..o.clone()
        };
        assert!(!multipart.holds(b"abc"));
        assert!(!ObjectInfo { etag: None, ..o }.holds(b"abc"));
    }
}
