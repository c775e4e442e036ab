//! Where the shared cache lives: an S3-compatible bucket or a directory. Both speak the same keys
//! and offer the same operations, including verified blob transfers.

pub mod aws;
pub mod bucket_lock;
mod bulk;
pub mod catalog;
pub mod dir;
pub mod error;
pub mod ranged;
pub mod s3;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use bulk::{probe_token, stops_deleting, OpenUploadInfo, WriteProbe};
pub use error::{Access, RemoteError, RetryClass, RetryPolicy, Retryable, MAX_RETRY_AFTER};

use crate::cache::write::{BlobWriter, WriteError};
use crate::config::{ConfigError, Settings, MAX_PART_SIZE};
use crate::report::Progress;

const MIB: u64 = 1024 * 1024;
/// S3 allows at most this many parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
const DEFAULT_PART_SIZE: u64 = 8 * MIB;
/// Bytes in flight across all transfers of a run, whatever the number of workers: a few parts
/// in flight already fill a fast link, and GPU nodes pulling 30 GB shards have no memory to spare.
const MEMORY_BUDGET: u64 = 40 * MIB;

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

/// A failed blob transfer: the remote or the Hub, or the local side (including content that does not match
/// its name).
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Hub(#[from] crate::hub::HubError),
    #[error(transparent)]
    Local(#[from] WriteError),
}

/// A local blob to upload.
#[derive(Debug, Clone)]
pub struct BlobSource {
    pub etag: String,
    /// Where the bytes are read from (the shared-store target for linked blobs).
    pub path: PathBuf,
    pub size: u64,
}

/// Limits shared by every transfer of a run, so concurrency and memory stay bounded whatever
/// the number and size of blobs.
#[derive(Clone)]
pub struct TransferCtx {
    /// Concurrent requests.
    pub slots: Arc<Semaphore>,
    /// Buffered bytes, in MiB units.
    memory: Arc<Semaphore>,
    memory_units: u32,
    pub workers: usize,
    pub policy: RetryPolicy,
    pub multipart_threshold: u64,
    pub part_size: Option<u64>,
    pub buffers: Arc<PartBuffers>,
    /// How long to wait for a lock another process holds.
    pub lock_timeout: std::time::Duration,
    pub progress: Arc<dyn Progress>,
}

impl TransferCtx {
    pub fn new(settings: &Settings, workers: usize, progress: Arc<dyn Progress>) -> TransferCtx {
        let part = settings.transfer.part_size.unwrap_or(DEFAULT_PART_SIZE);
        // Room for a part per worker within the budget, and always for at least one whole part.
        let units = (workers as u64 * part)
            .min(MEMORY_BUDGET)
            .max(part)
            .div_ceil(MIB) as u32;
        TransferCtx {
            slots: Arc::new(Semaphore::new(workers)),
            memory: Arc::new(Semaphore::new(units as usize)),
            memory_units: units,
            workers,
            policy: RetryPolicy::default(),
            multipart_threshold: settings.transfer.multipart_threshold,
            part_size: settings.transfer.part_size,
            buffers: Arc::new(PartBuffers::new((units as u64 * MIB / part).max(1) as usize)),
            lock_timeout: settings.transfer.lock_timeout,
            progress,
        }
    }

    /// Reserves buffer space for `bytes` (at most the whole budget, so a large buffer cannot wait
    /// forever).
    pub async fn reserve(&self, bytes: u64) -> OwnedSemaphorePermit {
        let units = (bytes.div_ceil(MIB).max(1) as u32).min(self.memory_units);
        self.memory
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("semaphore never closed")
    }

    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed")
    }

    pub fn part_size_for(&self, size: u64) -> u64 {
        part_size_for(size, self.part_size)
    }
}

/// A part size that keeps `size` within 10,000 parts, rounded up to whole MiB.
pub fn part_size_for(size: u64, configured: Option<u64>) -> u64 {
    let wanted = configured.unwrap_or(DEFAULT_PART_SIZE);
    let minimum = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    wanted.max(minimum).min(MAX_PART_SIZE)
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
    ) -> Result<(), TransferError> {
        match self {
            Remote::S3(r) => r.upload_blob(src, key, ctx).await,
            Remote::Dir(r) => r.upload_blob(src, key, ctx).await,
        }
    }

    /// Downloads into `writer`, which verifies while it writes; returns the final blob path.
    pub async fn download_blob(
        &self,
        key: &str,
        writer: BlobWriter,
        size: u64,
        ctx: &TransferCtx,
    ) -> Result<PathBuf, TransferError> {
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

/// Runs blocking file work (hashing, reading, writing) on the runtime's blocking threads.
///
/// `block_in_place` would freeze every other future of the calling task: transfers polled
/// together by one `buffer_unordered` would then move one blob at a time whatever the number
/// of workers. The closure owns what it works on and hands it back.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Blocking tasks are only cancelled when the runtime shuts down.
        Err(e) => panic!("blocking task did not finish: {e}"),
    }
}

/// Aborts a spawned task when dropped, so a failed transfer stops its siblings.
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = T;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| match r {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("transfer task cancelled while awaited"),
        })
    }
}

/// Reads the next `len` bytes of `file` into `buf` (whose old content is dropped, its memory
/// kept): no zero-filling, and no fresh allocation when `buf` is large enough.
pub fn read_part(
    file: &mut std::fs::File,
    path: &Path,
    len: u64,
    mut buf: Vec<u8>,
) -> Result<Vec<u8>, WriteError> {
    use std::io::Read;
    buf.clear();
    buf.reserve_exact(len as usize);
    let read = file
        .take(len)
        .read_to_end(&mut buf)
        .map_err(crate::cache::write::io_err(path))?;
    if read as u64 != len {
        let cut = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!(
                "the file ended after {read} of {len} bytes of a part: it changed while being read"
            ),
        );
        return Err(crate::cache::write::io_err(path)(cut));
    }
    Ok(buf)
}

/// Part buffers handed back after each upload: a multipart upload reads every part into a buffer
/// an earlier part used, so a run allocates (and the kernel faults in) its part memory once, not
/// once per part. Holds at most as many buffers as the memory budget has room for.
pub struct PartBuffers {
    free: std::sync::Mutex<Vec<Vec<u8>>>,
    keep: usize,
}

impl PartBuffers {
    pub fn new(keep: usize) -> PartBuffers {
        PartBuffers {
            free: std::sync::Mutex::new(Vec::new()),
            keep,
        }
    }

    /// A buffer to read a part into: a used one when there is one.
    pub fn take(&self) -> Vec<u8> {
        self.lock().pop().unwrap_or_default()
    }

    /// Keeps `used` for the next part.
    pub fn give_back(&self, used: Vec<u8>) {
        let mut free = self.lock();
        if free.len() < self.keep {
            free.push(used);
        }
    }

    /// Keeps the buffer of `used` for the next part, when nothing else still refers to it.
    pub fn give_back_bytes(&self, used: Bytes) {
        if let Ok(buf) = used.try_into_mut() {
            self.give_back(Vec::from(buf));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        self.free.lock().unwrap_or_else(|p| p.into_inner())
    }
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

    #[test]
    fn part_sizes_respect_the_part_limit() {
        assert_eq!(part_size_for(100 * MIB, None), DEFAULT_PART_SIZE);
        assert_eq!(part_size_for(100 * MIB, Some(5 * MIB)), 5 * MIB);
        let huge = 1024 * 1024 * MIB; // 1 TiB
        let p = part_size_for(huge, None);
        assert!(huge.div_ceil(p) <= MAX_PARTS);
        assert_eq!(p % MIB, 0);
    }

    #[test]
    fn parts_are_read_into_the_buffers_earlier_parts_used() {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(&[7u8; 3000]).unwrap();
        std::io::Seek::rewind(&mut f).unwrap();
        let path = Path::new("blob");
        let pool = PartBuffers::new(1);
        let first = read_part(&mut f, path, 2000, pool.take()).unwrap();
        assert_eq!(first, vec![7u8; 2000]);
        let at = first.as_ptr();
        pool.give_back_bytes(Bytes::from(first));
        let second = read_part(&mut f, path, 1000, pool.take()).unwrap();
        assert_eq!(
            (second.len(), second.as_ptr()),
            (1000, at),
            "the buffer is reused"
        );

        // A buffer something else still reads from is not reused, and the pool keeps at most
        // `keep` buffers.
        let shared = Bytes::from(second);
        let reader = shared.clone();
        pool.give_back_bytes(shared);
        assert!(pool.take().capacity() == 0 && reader.len() == 1000);
        pool.give_back(vec![1u8; 10]);
        pool.give_back(vec![2u8; 10]);
        assert_eq!(pool.lock().len(), 1);

        // A file shorter than the part is an error, not a short part.
        let err = read_part(&mut f, path, 10, Vec::new()).unwrap_err();
        assert!(
            err.to_string().contains("changed while being read"),
            "{err}"
        );
    }
}
