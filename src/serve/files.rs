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

use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use tokio::sync::mpsc;

use super::metrics::PRESIGNED;
use super::reply::{self, header_value, Body};
use super::revision::{FileInfo, Revision};
use super::through::{Waited, WAIT};
use super::Shared;
use crate::hub::CommitFile;
use crate::text::error_chain;
use crate::transfer::source::Wanted;
use crate::transfer::stream::{first_usable, stream_through, Window};

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
        let tier = landed_tier(&shared, &rev).await;
        let wanted = Wanted {
            etag: &etag,
            size,
            named_by: Some(&named_by),
        };
        let window = Window { start, end };
        let s = &shared;
        let trying = |tier: usize| {
            *source.lock().unwrap_or_else(|e| e.into_inner()) = Some(s.sources.get(tier).url());
        };
        let first = (tier, &trying as &(dyn Fn(usize) + Send + Sync));
        let streamed = stream_through(&s.sources, first, &s.bad, (wanted, window), &tx, &s.ctx);
        if let Err(e) = streamed.await {
            let cut = std::io::Error::other(error_chain(&e));
            let _ = tx.send(Err(cut)).await;
        }
    });
    Body::stream(rx, end - start)
}

/// The source to stream a file of `rev` from: the bucket once `--write-through` landed the
/// revision there (waiting a bounded while for its one flight), else where it came from.
async fn landed_tier(shared: &Arc<Shared>, rev: &Revision) -> usize {
    let (Some(through), Some(plan)) = (&shared.through, &rev.plan) else {
        return rev.tier;
    };
    let s = shared.clone();
    match through.wait(plan, WAIT, move |line| s.note(line)).await {
        Waited::Landed => 0,
        Waited::NotLanded => rev.tier,
    }
}

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
