//! `HEAD|GET /{prefix}{id}/resolve/{rev}/{path}`: a file of a revision, with the headers
//! huggingface_hub names its blob by (`X-Repo-Commit`, `ETag` the git blob id, and for LFS files
//! `X-Linked-Etag` the sha256 and `X-Linked-Size`), its bytes streamed from the sources through
//! the verifier ([`stream_through`]).
//!
//! Ranges: a range of a blob cannot be checked alone, so a `Range` request reads the whole blob
//! from the source, hashes all of it, and sends the bytes asked for, the last piece only once
//! the whole matched (206). A blob a source served corrupt in this process is answered whole
//! (200) even to a `Range` request: a client resuming a download that was cut for corruption
//! (huggingface_hub resumes with `Range: bytes=N-`) then starts over, as it does when a server
//! ignores its range, instead of completing a file whose start is wrong.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::metrics::PRESIGNED;
use super::reply::{self, header_value, Body};
use super::revision::{FileInfo, Revision};
use super::through::WAIT;
use super::Shared;
use crate::cache::landing::Landing;
use crate::hub::CommitFile;
use crate::text::error_chain;
use crate::transfer::source::Wanted;
use crate::transfer::stream::{first_usable, stream_landing, stream_through, Window};

/// Pieces buffered between the source and a client: with the piece held back, memory per
/// response stays under a few MiB whatever the blob's size.
const QUEUED: usize = 8;

/// A `Range` header as it applies to a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Ranged {
    Whole,
    /// `start..end`.
    Part(u64, u64),
    Unsatisfiable,
}

/// Reads `bytes=a-b`, `bytes=a-` and `bytes=-n`; several ranges, or another unit, are answered
/// whole, as a server may.
pub fn parse_range(header: Option<&str>, size: u64) -> Ranged {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ranged::Whole;
    };
    if spec.contains(',') || size == 0 {
        return Ranged::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ranged::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(last)) if last >= start => Some((start, (last + 1).min(size))),
        (Ok(start), Err(_)) if b.is_empty() => Some((start, size)),
        (Err(_), Ok(n)) if a.is_empty() && n > 0 => Some((size.saturating_sub(n), size)),
        _ => return Ranged::Whole,
    };
    match range {
        Some((start, end)) if start < size => Ranged::Part(start, end),
        _ => Ranged::Unsatisfiable,
    }
}

/// The headers every answer about the file carries.
pub(super) fn file_headers(rev: &Revision, f: &FileInfo) -> hyper::http::response::Builder {
    let quoted = |v: &str| header_value(&format!("\"{v}\""));
    let mut b = Response::builder()
        .header("x-repo-commit", header_value(&rev.commit))
        .header("etag", quoted(&f.blob_id))
        .header("accept-ranges", "bytes")
        .header("content-type", "application/octet-stream");
    if f.is_lfs() {
        b = b
            .header("x-linked-etag", quoted(&f.blob))
            .header("x-linked-size", f.size);
    }
    b
}

/// The answer for `path` of `rev`: with `--presign`, a 302 to the bucket for an LFS file it
/// holds (HEAD and Range alike); else headers only for HEAD, else the bytes (those of the
/// range asked for, when it can be served).
pub async fn answer(
    shared: &Arc<Shared>,
    rev: &Arc<Revision>,
    path: &str,
    (head, range): (bool, Option<&str>),
    source: &Arc<Mutex<Option<String>>>,
) -> Response<Body> {
    let Some(f) = rev.files.get(path) else {
        let mut r = reply::not_found(
            "EntryNotFound",
            &format!("{path} does not exist in {}@{}", rev.repo.id, rev.commit),
        );
        r.headers_mut()
            .insert("x-repo-commit", header_value(&rev.commit));
        return r;
    };
    if let (Some(through), Some(plan)) = (&shared.through, &rev.plan) {
        // A HEAD starts the flight too: the GET that follows finds it further along.
        let s = shared.clone();
        drop(through.start(plan, move |line| s.note(line)));
    }
    if let Some(found) = super::presign::redirect(shared, rev, f).await {
        *source.lock().unwrap_or_else(|e| e.into_inner()) = Some(PRESIGNED.to_string());
        return found;
    }
    let ranged = if shared.bad.any_bad(&f.blob) {
        Ranged::Whole
    } else {
        parse_range(range, f.size)
    };
    let builder = file_headers(rev, f);
    let (status, window, builder) = match ranged {
        Ranged::Whole => (StatusCode::OK, (0, f.size), builder),
        Ranged::Part(start, end) => (
            StatusCode::PARTIAL_CONTENT,
            (start, end),
            builder.header(
                "content-range",
                format!("bytes {start}-{}/{}", end - 1, f.size),
            ),
        ),
        Ranged::Unsatisfiable => {
            let mut r = reply::error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                None,
                &format!("{path} has {} bytes", f.size),
            );
            r.headers_mut().insert(
                "content-range",
                HeaderValue::from_str(&format!("bytes */{}", f.size)).expect("ASCII"),
            );
            return r;
        }
    };
    let builder = builder
        .status(status)
        .header("content-length", window.1 - window.0);
    if head {
        return builder.body(Body::empty()).expect("a valid response");
    }
    let named_by = commit_file(rev, path);
    let wanted = Wanted {
        etag: &f.blob,
        size: f.size,
        named_by: Some(&named_by),
    };
    if first_usable(&shared.sources, rev.tier, &shared.bad, wanted).is_none() {
        return reply::error(
            StatusCode::BAD_GATEWAY,
            None,
            &format!(
                "blob {} of {path} did not match its name at every source that has it",
                f.blob
            ),
        );
    }
    let body = stream(shared, (rev, named_by), f, window, source);
    builder.body(body).expect("a valid response")
}

/// How the Hub is asked for the file.
fn commit_file(rev: &Revision, path: &str) -> CommitFile {
    CommitFile {
        repo_type: rev.repo.repo_type,
        repo_id: rev.repo.id.clone(),
        commit: rev.commit.clone(),
        path: path.to_string(),
    }
}

/// The bytes `start..end` of the file, streamed from the source its revision came from (or
/// those after it) by a task of their own.
fn stream(
    shared: &Arc<Shared>,
    (rev, named_by): (&Arc<Revision>, CommitFile),
    f: &FileInfo,
    (start, end): (u64, u64),
    source: &Arc<Mutex<Option<String>>>,
) -> Body {
    let (tx, rx) = mpsc::channel(QUEUED);
    let (shared, etag, size) = (shared.clone(), f.blob.clone(), f.size);
    let (source, rev) = (source.clone(), rev.clone());
    tokio::spawn(async move {
        let wanted = Wanted {
            etag: &etag,
            size,
            named_by: Some(&named_by),
        };
        let window = Window { start, end };
        let s = &shared;
        let said = |what: String| *source.lock().unwrap_or_else(|e| e.into_inner()) = Some(what);
        let streamed = match where_from(&shared, &rev, wanted).await {
            Origin::Landing(landing) => {
                said(READ_THROUGH.to_string());
                stream_landing(landing, (wanted, window), &tx).await
            }
            Origin::Tier(tier) => {
                let trying = |tier: usize| said(s.sources.get(tier).url());
                let first = (tier, &trying as &(dyn Fn(usize) + Send + Sync));
                stream_through(&s.sources, first, &s.bad, (wanted, window), &tx, &s.ctx)
                    .await
                    .map(drop)
            }
        };
        if let Err(e) = streamed {
            let cut = std::io::Error::other(error_chain(&e));
            let _ = tx.send(Err(cut)).await;
        }
    });
    Body::stream(rx, end - start)
}

/// What the access log and `/metrics` call bytes read from a blob as `--write-through`'s fetch
/// lands it.
pub const READ_THROUGH: &str = "read-through";

/// Where a file's bytes come from.
enum Origin {
    /// The source at this index, and those after it.
    Tier(usize),
    /// The blob as `--write-through`'s fetch of its revision lands it in the cache dir.
    Landing(Landing),
}

/// Where to stream a file of `rev` from: with `--write-through`, the first source once the
/// revision's one fetch landed it (the bucket, or with `--from-cache` the cache dir the fetch
/// wrote it into), or else the blob as that fetch writes it into the cache dir, as soon as it
/// has started on it (one copy from the Hub, however many clients ask); within [`WAIT`] for
/// either, otherwise from where the revision came from.
async fn where_from(shared: &Arc<Shared>, rev: &Revision, wanted: Wanted<'_>) -> Origin {
    let (Some(through), Some(plan)) = (&shared.through, &rev.plan) else {
        return Origin::Tier(rev.tier);
    };
    let s = shared.clone();
    let flight = through.start(plan, move |line| s.note(line));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match tokio::time::timeout(LOOK_AGAIN, flight.clone()).await {
            Ok(true) => return Origin::Tier(0),
            Ok(false) => return Origin::Tier(rev.tier),
            Err(_) => {}
        }
        if let Some(landing) = Landing::find(&plan.repo_dir, wanted.etag, wanted.size) {
            return Origin::Landing(landing);
        }
        if tokio::time::Instant::now() >= deadline {
            return Origin::Tier(rev.tier);
        }
    }
}

/// How often a request waiting for its revision's fetch looks for its blob in the cache dir.
const LOOK_AGAIN: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), Ranged::Whole);
        assert_eq!(parse_range(Some("bytes=2-4"), 10), Ranged::Part(2, 5));
        assert_eq!(parse_range(Some("bytes=2-"), 10), Ranged::Part(2, 10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Ranged::Part(7, 10));
        assert_eq!(parse_range(Some("bytes=5-100"), 10), Ranged::Part(5, 10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Ranged::Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Ranged::Whole);
        assert_eq!(parse_range(Some("items=0-1"), 10), Ranged::Whole);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Ranged::Whole);
    }
}
