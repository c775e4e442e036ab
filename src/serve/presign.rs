//! `--presign`: an LFS file whose blob the bucket holds is answered with a 302 to a presigned
//! GET URL of that blob, as the Hub sends clients to its CDN. The client then fetches the bytes
//! (a Range too) from the bucket itself; serve only answers metadata. huggingface_hub reads the
//! file's metadata off the 302 to a HEAD and does not send its token to the other host.
//!
//! Anything else keeps streaming through the verifier: small (git) files, a blob the bucket
//! lacks or has the wrong size of, one a source served corrupt in this process, and a blob
//! whose HEAD or signing fails (the failure is noted in the server's log).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};

use super::files::file_headers;
use super::reply::Body;
use super::revision::{FileInfo, Revision};
use super::Shared;

/// The 302 to the bucket for `f`, when `--presign` is on and the bucket holds its blob whole.
pub async fn redirect(
    shared: &Arc<Shared>,
    rev: &Revision,
    f: &FileInfo,
) -> Option<Response<Body>> {
    let ttl = shared.presign?;
    // The remote: with --from-cache the cache dir is asked before it.
    let home = shared.sources.home();
    if !f.is_lfs() || shared.bad.any_bad(&f.blob) || shared.sources.is_down(home) {
        return None;
    }
    let (remote, layout) = shared.sources.remote(home)?;
    let key = layout.blob_key(&f.blob);
    let streaming = |why: String| {
        shared.note(&format!(
            "warning: --presign: {key}: {why}; streaming it instead"
        ));
    };
    // The bucket's manifest says the blob is there; a HEAD makes sure before a client is sent,
    // once in a while per blob rather than for every request.
    match shared.confirmed.size_of(remote, &key).await {
        Ok(Some(size)) if size == f.size => {}
        Ok(Some(size)) => {
            streaming(format!(
                "the bucket holds {size} bytes, the file has {}",
                f.size
            ));
            return None;
        }
        Ok(None) => return None,
        Err(e) => {
            streaming(crate::text::error_chain(&e));
            return None;
        }
    }
    let url = match remote.presign_get(&key, ttl).await {
        Ok(Some(url)) => url,
        Ok(None) => return None,
        Err(e) => {
            streaming(crate::text::error_chain(&e));
            return None;
        }
    };
    let location = HeaderValue::from_str(&url).ok()?;
    // As the Hub's 302: the file's size is in X-Linked-Size, the length is the empty body's.
    let r = file_headers(rev, f)
        .status(StatusCode::FOUND)
        .header("location", location)
        .header("content-length", 0)
        .body(Body::empty())
        .expect("a valid response");
    Some(r)
}

/// How long a HEAD's word that the bucket holds a blob whole is taken for.
const CONFIRMED_FOR: Duration = Duration::from_secs(60);

/// The sizes of blobs a HEAD recently found in the bucket, by key: one HEAD a blob a minute
/// rather than one for every request sent there.
#[derive(Default)]
pub struct Confirmed(Mutex<HashMap<String, (u64, Instant)>>);

impl Confirmed {
    /// The size of the object `key` (`None` when the bucket lacks it), asked of `remote`
    /// unless a HEAD found it less than [`CONFIRMED_FOR`] ago.
    async fn size_of(
        &self,
        remote: &crate::remote::Remote,
        key: &str,
    ) -> Result<Option<u64>, crate::remote::RemoteError> {
        if let Some((size, at)) = self.lock().get(key) {
            if at.elapsed() < CONFIRMED_FOR {
                return Ok(Some(*size));
            }
        }
        let size = remote.object_size(key).await?;
        if let Some(size) = size {
            self.lock().insert(key.to_string(), (size, Instant::now()));
        }
        Ok(size)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u64, Instant)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
