//! `--presign`: an LFS file whose blob the bucket holds is answered with a 302 to a presigned
//! GET URL of that blob, as the Hub sends clients to its CDN. The client then fetches the bytes
//! (a Range too) from the bucket itself; serve only answers metadata. huggingface_hub reads the
//! file's metadata off the 302 to a HEAD and does not send its token to the other host.
//!
//! Anything else keeps streaming through the verifier: small (git) files, a blob the bucket
//! lacks or has the wrong size of, one a source served corrupt in this process, and a blob
//! whose HEAD or signing fails (the failure is noted in the server's log).

use std::sync::Arc;

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
    // The bucket's manifest says the blob is there; a HEAD makes sure before a client is sent.
    match remote.object_size(&key).await {
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
