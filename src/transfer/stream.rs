//! Streaming a blob from the sources to a reader (a client of `serve`) rather than into the
//! cache: the same downloads a pull makes, into a [`StreamSink`] that hashes every byte as it
//! passes and hands the bytes on in pieces, always holding the last one back until the whole
//! blob matched its name. A source whose object turns out corrupt is remembered
//! ([`BadObjects`]) and skipped for that blob from then on.

use std::collections::HashSet;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::source::{Fallback, Sources, Wanted};
use super::TransferError;
use crate::cache::landing::{Landing, Step};
use crate::cache::write::{BlobSink, Verifier, WriteError};
use crate::net::TransferCtx;
use crate::text::error_chain;

/// The largest piece handed on at once: the piece held back at the end is at most this.
pub const PIECE: usize = 256 * 1024;

/// What the reader gets: pieces of the blob, or the error that cut the stream short.
pub type Piece = Result<Bytes, io::Error>;

/// Objects that served bytes not matching their blob's name in this process: `(source index,
/// etag)`. A blob is not asked from such a source again.
#[derive(Default)]
pub struct BadObjects(Mutex<HashSet<(usize, String)>>);

impl BadObjects {
    pub fn mark(&self, tier: usize, etag: &str) {
        self.lock().insert((tier, etag.to_string()));
    }

    pub fn is_bad(&self, tier: usize, etag: &str) -> bool {
        self.lock().contains(&(tier, etag.to_string()))
    }

    /// Whether any source served the blob corrupt in this process.
    pub fn any_bad(&self, etag: &str) -> bool {
        self.lock().iter().any(|(_, e)| e == etag)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(usize, String)>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The bytes `start..end` of a blob, the part a reader asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: u64,
    pub end: u64,
}

/// A [`BlobSink`] that hands the bytes of its [`Window`] on to a reader as they pass, the whole
/// blob hashed: the last piece is sent only once the whole blob matched its name. Bytes outside
/// the window are hashed and dropped. A reader that went away ends the download.
pub struct StreamSink {
    verifier: Verifier,
    window: Window,
    tx: mpsc::Sender<Piece>,
    held: Option<Bytes>,
    /// Bytes handed to the reader, shared with whoever started the download.
    sent: Arc<AtomicU64>,
}

impl StreamSink {
    pub fn new(
        wanted: Wanted<'_>,
        window: Window,
        tx: mpsc::Sender<Piece>,
        sent: Arc<AtomicU64>,
    ) -> Result<StreamSink, WriteError> {
        Ok(StreamSink {
            verifier: Verifier::new(wanted.etag, wanted.size)?,
            window,
            tx,
            held: None,
            sent,
        })
    }
}

/// Piece buffers the readers are done with, kept for the next pieces: a new 256 KiB allocation
/// a piece cost `serve` a `mmap`, a `munmap` and the page faults of fresh memory for each, a
/// quarter of its CPU (bench/RESULTS.md). At most [`FREE_KEPT`] wait here.
static FREE: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Free piece buffers kept at most (16 MiB).
const FREE_KEPT: usize = 64;

/// `bytes` in a piece buffer that goes back to [`FREE`] when the reader is done with it.
fn pooled(bytes: &[u8]) -> Bytes {
    let free = FREE.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut buf = free.unwrap_or_else(|| Vec::with_capacity(PIECE));
    buf.clear();
    buf.extend_from_slice(bytes);
    Bytes::from_owner(Pooled(buf))
}

/// A piece buffer on loan to a reader.
struct Pooled(Vec<u8>);

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.0);
        let mut free = FREE.lock().unwrap_or_else(|e| e.into_inner());
        if free.len() < FREE_KEPT && buf.capacity() >= PIECE {
            free.push(buf);
        }
    }
}

/// Sends `piece` on, blocking while the reader is behind, for at most [`STALLED`].
fn send(tx: &mpsc::Sender<Piece>, sent: &AtomicU64, piece: Bytes) -> Result<(), WriteError> {
    let len = piece.len() as u64;
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => match rt.block_on(tokio::time::timeout(STALLED, tx.send(Ok(piece)))) {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(gone()),
            Err(_) => return Err(stalled()),
        },
        Err(_) => tx.blocking_send(Ok(piece)).map_err(|_| gone())?,
    }
    sent.fetch_add(len, Ordering::Relaxed);
    Ok(())
}

/// How long a reader may take nothing before it is let go: its download holds a connection to
/// the source and a thread.
const STALLED: Duration = Duration::from_secs(300);

fn stalled() -> WriteError {
    WriteError::Io {
        path: "the client".into(),
        source: io::Error::new(io::ErrorKind::TimedOut, "took nothing for 5 minutes"),
    }
}

/// The reader stopped reading: not the source's fault, nothing to fall back for.
fn gone() -> WriteError {
    WriteError::Io {
        path: "the client".into(),
        source: io::Error::new(io::ErrorKind::BrokenPipe, "went away"),
    }
}

impl BlobSink for StreamSink {
    type Done = ();

    fn written(&self) -> u64 {
        self.verifier.seen()
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        let at = self.verifier.seen();
        self.verifier.update(bytes)?;
        let from = self.window.start.max(at);
        let to = self.window.end.min(at + bytes.len() as u64);
        if from >= to {
            return Ok(());
        }
        let inside = &bytes[(from - at) as usize..(to - at) as usize];
        for piece in inside.chunks(PIECE) {
            if let Some(before) = self.held.replace(pooled(piece)) {
                send(&self.tx, &self.sent, before)?;
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(), WriteError> {
        let StreamSink {
            verifier,
            tx,
            held,
            sent,
            ..
        } = self;
        verifier.check()?;
        if let Some(last) = held {
            send(&tx, &sent, last)?;
        }
        Ok(())
    }
}

/// Streams the window of `wanted` to `tx` from the first source from `first` on that can serve
/// it and has not served it corrupt, falling back as a pull does (missing, corrupt, failing)
/// as long as nothing has reached the reader. Once bytes have gone out, a failure ends the
/// stream: the reader gets the error instead of the last piece. A corrupt object is logged by
/// its key and marked in `bad`. `trying` is told each source as it is asked; the one that
/// served the stream is returned.
pub async fn stream_through(
    sources: &Sources,
    (first, trying): (usize, &(dyn Fn(usize) + Send + Sync)),
    bad: &BadObjects,
    (wanted, window): (Wanted<'_>, Window),
    tx: &mpsc::Sender<Piece>,
    ctx: &TransferCtx,
) -> Result<usize, TransferError> {
    let next_from = |i: usize| first_usable(sources, i, bad, wanted);
    let Some(mut tier) = next_from(first) else {
        return Err(no_source(wanted));
    };
    let sent = Arc::new(AtomicU64::new(0));
    loop {
        let source = sources.get(tier);
        trying(tier);
        let sink = StreamSink::new(wanted, window, tx.clone(), sent.clone())?;
        let e = match source.download(wanted, sink, ctx).await {
            Ok(()) => return Ok(tier),
            Err(e) => e,
        };
        let why = Fallback::of(&e);
        if why == Some(Fallback::Corrupt) {
            bad.mark(tier, wanted.etag);
        }
        let what = format!(
            "blob {} from {} ({}): {}",
            wanted.etag,
            source.describe(),
            source.locate(wanted),
            error_chain(&e)
        );
        let next = next_from(tier + 1).filter(|_| sent.load(Ordering::Relaxed) == 0);
        let Some((why, next)) = why.zip(next) else {
            if why.is_some() {
                ctx.progress.log(&format!("warning: {what}"));
            }
            return Err(e);
        };
        if why == Fallback::Down {
            sources.mark_down(tier);
        }
        ctx.progress.log(&format!(
            "warning: {what}; streaming it from {}",
            sources.get(next).describe()
        ));
        tier = next;
    }
}

/// How long a blob landing in the cache may not grow before a reader following it is cut off
/// (the client then asks again, and is served from wherever the blob is by then).
pub const LANDING_STALLED: Duration = Duration::from_secs(30);

/// How often a reader following a landing blob looks for more bytes.
const LANDING_POLL: Duration = Duration::from_millis(20);

/// Streams the window of `wanted` from its copy landing in this machine's cache as another task
/// downloads it ([`Landing`]): bytes go out as they are written, verified like any source's,
/// the last piece once the whole blob matched. Ends with an error when the download is given
/// up or stops growing for [`LANDING_STALLED`].
pub async fn stream_landing(
    mut landing: Landing,
    (wanted, window): (Wanted<'_>, Window),
    tx: &mpsc::Sender<Piece>,
) -> Result<(), TransferError> {
    let mut sink = StreamSink::new(wanted, window, tx.clone(), Arc::default())?;
    let follow = move || -> Result<(), WriteError> {
        let mut buf = vec![0u8; PIECE];
        let mut grew = Instant::now();
        let landing_err = |what: &str| WriteError::Io {
            path: "the blob landing in the cache".into(),
            source: io::Error::other(what.to_string()),
        };
        loop {
            let step = landing
                .read(&mut buf)
                .map_err(|e| landing_err(&e.to_string()))?;
            match step {
                Step::Read(n) => {
                    sink.write(&buf[..n])?;
                    grew = Instant::now();
                }
                Step::Whole => return sink.finish(),
                Step::Gone => return Err(landing_err("its download was given up")),
                Step::Waiting if grew.elapsed() > LANDING_STALLED => {
                    return Err(landing_err(&format!(
                        "it did not grow for {} s",
                        LANDING_STALLED.as_secs()
                    )))
                }
                Step::Waiting => std::thread::sleep(LANDING_POLL),
            }
        }
    };
    Ok(crate::task::blocking(follow).await?)
}

/// The first source from `first` on that can serve `wanted`, is not down and has not served
/// it corrupt; `None` when none is left.
pub fn first_usable(
    sources: &Sources,
    first: usize,
    bad: &BadObjects,
    wanted: Wanted<'_>,
) -> Option<usize> {
    (first..sources.len()).find(|&i| {
        !sources.is_down(i) && !bad.is_bad(i, wanted.etag) && sources.get(i).can_serve(wanted)
    })
}

/// Every source lacks the blob, is down, or served it corrupt.
fn no_source(wanted: Wanted<'_>) -> TransferError {
    TransferError::Remote(crate::remote::RemoteError::NotFound {
        key: format!("blob {} (no source left to serve it)", wanted.etag),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::hash::sha256_hex;

    fn run(body: &[u8], etag: &str, window: Window) -> (Vec<Piece>, Result<(), WriteError>) {
        let (tx, mut rx) = mpsc::channel(1024);
        let sent = Arc::new(AtomicU64::new(0));
        let wanted = Wanted {
            etag,
            size: body.len() as u64,
            named_by: None,
        };
        let mut sink = StreamSink::new(wanted, window, tx, sent).unwrap();
        let mut result = Ok(());
        for chunk in body.chunks(100_000) {
            result = sink.write(chunk);
            if result.is_err() {
                break;
            }
        }
        if result.is_ok() {
            result = sink.finish();
        } else {
            drop(sink);
        }
        let mut got = Vec::new();
        while let Ok(p) = rx.try_recv() {
            got.push(p);
        }
        (got, result)
    }

    fn joined(pieces: &[Piece]) -> Vec<u8> {
        pieces
            .iter()
            .flat_map(|p| p.as_ref().unwrap().to_vec())
            .collect()
    }

    #[test]
    fn the_window_is_sent_whole_once_the_blob_matches() {
        let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let etag = sha256_hex(&body);
        let all = Window {
            start: 0,
            end: body.len() as u64,
        };
        let (pieces, result) = run(&body, &etag, all);
        result.unwrap();
        assert_eq!(joined(&pieces), body);
        assert!(pieces.iter().all(|p| p.as_ref().unwrap().len() <= PIECE));
        let part = Window {
            start: 123_456,
            end: 654_321,
        };
        let (pieces, result) = run(&body, &etag, part);
        result.unwrap();
        assert_eq!(joined(&pieces), &body[123_456..654_321]);
    }

    #[test]
    fn a_corrupt_blob_never_reaches_the_reader_whole() {
        let body: Vec<u8> = (0..1_000_000u32).map(|i| (i % 7) as u8).collect();
        let etag = sha256_hex(&body);
        let mut bad = body.clone();
        bad[999_999] ^= 1;
        let all = Window {
            start: 0,
            end: body.len() as u64,
        };
        let (pieces, result) = run(&bad, &etag, all);
        assert!(
            matches!(result, Err(WriteError::Mismatch { .. })),
            "{result:?}"
        );
        let got = joined(&pieces);
        assert!(got.len() < body.len(), "the last piece was held back");
        assert_eq!(got, &bad[..got.len()]);
    }
}
