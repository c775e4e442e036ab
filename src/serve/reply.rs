//! Answers as the Hub gives them: JSON bodies, errors with `X-Error-Code` and
//! `X-Error-Message` (which huggingface_hub turns into its own exceptions), and file bodies
//! streamed from a channel. Every answer's body writes the request's access-log entry when it
//! is done with, so the entry has the bytes that really went out and how the body ended.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper::{Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::transfer::stream::Piece;

/// One request as the access log tells it.
#[derive(Debug, Clone, Serialize)]
pub struct Access {
    pub peer: String,
    pub method: String,
    /// The path asked for, without the query.
    pub path: String,
    pub status: u16,
    /// Body bytes sent.
    pub bytes: u64,
    pub duration: Duration,
    /// Where a file's bytes came from (a remote's URL, the Hub's endpoint).
    pub source: Option<String>,
    /// Why the body was cut short, when it was.
    pub cut: Option<String>,
}

/// The cut of a body whose client went away (or whose server stopped) before its end.
pub const ENDED_FIRST: &str = "the connection ended first";

/// Where finished entries go.
pub type AccessLog = Arc<dyn Fn(&Access) + Send + Sync>;

/// What a body reports when done: the entry so far, and where its source is written once known.
pub struct Entry {
    pub access: Access,
    pub started: Instant,
    pub source: Arc<Mutex<Option<String>>>,
    pub log: AccessLog,
    /// The request counted in flight; counts it finished when the entry is written.
    pub in_flight: super::metrics::InFlight,
}

enum Content {
    Full(Option<Bytes>),
    /// Pieces, and how many bytes they come to: hyper stops asking once it has sent them all.
    Stream(mpsc::Receiver<Piece>, u64),
}

/// A response body: whole, or pieces from a channel (an error piece cuts the connection).
pub struct Body {
    content: Content,
    entry: Option<Entry>,
    sent: u64,
    cut: Option<String>,
    ended: bool,
}

impl Body {
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        Body::of(Content::Full(Some(bytes.into())))
    }

    pub fn empty() -> Body {
        Body::of(Content::Full(None))
    }

    /// `len` bytes from `rx`.
    pub fn stream(rx: mpsc::Receiver<Piece>, len: u64) -> Body {
        Body::of(Content::Stream(rx, len))
    }

    fn of(content: Content) -> Body {
        Body {
            content,
            entry: None,
            sent: 0,
            cut: None,
            ended: false,
        }
    }

    /// Logs `entry` (with this body's status, bytes and end) when the body is done with.
    pub fn logged(mut self, entry: Entry) -> Body {
        self.entry = Some(entry);
        self
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let polled = match &mut self.content {
            Content::Full(bytes) => Poll::Ready(bytes.take().map(Ok)),
            Content::Stream(rx, _) => rx.poll_recv(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(b))) => self.sent += b.len() as u64,
            Poll::Ready(Some(Err(e))) => self.cut = Some(e.to_string()),
            Poll::Ready(None) => self.ended = true,
            Poll::Pending => {}
        }
        polled.map(|piece| piece.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.content, Content::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match &self.content {
            Content::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Content::Full(None) => SizeHint::with_exact(0),
            Content::Stream(_, len) => SizeHint::with_exact(*len),
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        let Some(mut entry) = self.entry.take() else {
            return;
        };
        entry.access.bytes = self.sent;
        entry.access.duration = entry.started.elapsed();
        entry.access.source = entry.source.lock().ok().and_then(|s| s.clone());
        entry.access.cut = self.cut.take().or_else(|| match &self.content {
            // Dropped before its end: the client went away, or the server stopped.
            Content::Stream(_, len) if !self.ended && self.sent < *len => Some(ENDED_FIRST.into()),
            _ => None,
        });
        entry.in_flight.finished(&entry.access);
        (entry.log)(&entry.access);
    }
}

/// `status` with `body` as JSON.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> Response<Body> {
    let text = serde_json::to_vec(body).expect("serializes");
    Response::builder()
        .status(status)
        .header("content-type", "application/json; charset=utf-8")
        .header("content-length", text.len())
        .body(Body::full(text))
        .expect("a valid response")
}

/// `status` with `body` as text of type `content_type`.
pub fn text(status: StatusCode, content_type: &str, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("content-length", body.len())
        .body(Body::full(body))
        .expect("a valid response")
}

/// An error as the Hub gives it: `X-Error-Code` (when it has one) and `X-Error-Message`
/// headers, and `{"error": message}`.
pub fn error(status: StatusCode, code: Option<&str>, message: &str) -> Response<Body> {
    error_saying(status, (code, message), message)
}

/// [`error`] whose body says more than its `X-Error-Message` header.
pub fn error_saying(
    status: StatusCode,
    (code, message): (Option<&str>, &str),
    body: &str,
) -> Response<Body> {
    let mut r = json(status, &serde_json::json!({ "error": body }));
    let h = r.headers_mut();
    if let Some(code) = code {
        h.insert("x-error-code", header_value(code));
    }
    h.insert("x-error-message", header_value(message));
    r
}

/// A header value from text, with what a header may not hold replaced.
pub fn header_value(text: &str) -> hyper::header::HeaderValue {
    let clean: String = text
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect();
    hyper::header::HeaderValue::from_str(&clean).expect("printable ASCII")
}

pub fn not_found(code: &str, message: &str) -> Response<Body> {
    error(StatusCode::NOT_FOUND, Some(code), message)
}
