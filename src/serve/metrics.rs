//! What `serve` counts, for `/metrics` (Prometheus text format 0.0.4) and the page at `/`:
//! requests by method and status code, bytes sent by source, fetches from the sources after
//! the remote, `--presign` redirects (which send no file bytes, so count none), errors (bodies
//! cut short, 5xx answers), requests in flight, and a ring of
//! per-minute buckets for the last hour.
//!
//! Hand-written rather than `prometheus-client`: five metrics, whose labels are a handful of
//! methods, status codes and source URLs, rendered by one function; a registry, its encoder
//! and their types would outweigh the job. Counters are updated once a request, when its
//! access-log entry is written, so a mutex per map costs nothing worth measuring.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use super::reply::{Access, ENDED_FIRST};

/// The `source` label of bytes the server made itself (JSON, errors, this page).
pub const SERVER: &str = "server";
/// The source of a `--presign` answer: a 302 that sends the client to the bucket.
pub const PRESIGNED: &str = "presign";
/// Minutes the ring keeps.
const MINUTES: u64 = 60;

/// One minute of requests.
#[derive(Debug, Default, Clone)]
struct Minute {
    /// Minutes since the Unix epoch.
    at: u64,
    requests: u64,
    bytes: BTreeMap<String, u64>,
}

/// The requests and bytes (by source) of the last hour.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recent {
    pub requests: u64,
    pub bytes: BTreeMap<String, u64>,
}

/// Every counter of the server, shared by all requests.
pub struct Metrics {
    /// The remote's URL: bytes from any other source but the cache dir were fetched upstream.
    primary: String,
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    sent: Mutex<BTreeMap<String, u64>>,
    upstream: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    /// 302s to presigned URLs, by status code (a HEAD's and a GET's alike).
    presigned: Mutex<BTreeMap<u16, u64>>,
    in_flight: AtomicI64,
    recent: Mutex<VecDeque<Minute>>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A method as a label: the few HTTP has, so a client cannot grow the label set.
fn method_label(method: &str) -> &'static str {
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
    KNOWN.into_iter().find(|m| *m == method).unwrap_or("other")
}

fn now_minute() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

/// A label value with `\`, `"` and newlines escaped, as the text format wants.
pub fn label_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A request being answered: counted in flight until dropped (its body done with, or the
/// request given up before an answer).
pub struct InFlight(Arc<Metrics>);

impl InFlight {
    /// Counts the finished request `a`.
    pub fn finished(&self, a: &Access) {
        self.0.record(a, now_minute());
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn new(primary: String) -> Metrics {
        Metrics {
            primary,
            requests: Mutex::default(),
            sent: Mutex::default(),
            upstream: Mutex::default(),
            errors: Mutex::default(),
            presigned: Mutex::default(),
            in_flight: AtomicI64::new(0),
            recent: Mutex::default(),
        }
    }

    /// A request starts.
    pub fn started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn record(&self, a: &Access, minute: u64) {
        *locked(&self.requests)
            .entry((method_label(&a.method), a.status))
            .or_default() += 1;
        let source = a.source.as_deref().unwrap_or(SERVER);
        // The bucket sends a redirect's bytes, and says nothing of them to this server.
        let redirect = source == PRESIGNED;
        if redirect {
            *locked(&self.presigned).entry(a.status).or_default() += 1;
        } else {
            *locked(&self.sent).entry(source.to_string()).or_default() += a.bytes;
        }
        let near = |s: &str| s == self.primary || s == crate::transfer::cache_source::CACHE_SOURCE;
        if !redirect && a.source.as_deref().is_some_and(|s| !near(s)) {
            *locked(&self.upstream)
                .entry(source.to_string())
                .or_default() += 1;
        }
        let mut errors = locked(&self.errors);
        // A client that went away cut nothing of the server's doing.
        if a.cut.as_deref().is_some_and(|c| c != ENDED_FIRST) {
            *errors.entry("cut").or_default() += 1;
        }
        if a.status >= 500 {
            *errors.entry("status_5xx").or_default() += 1;
        }
        drop(errors);
        let mut ring = locked(&self.recent);
        if ring.back().is_none_or(|m| m.at != minute) {
            ring.push_back(Minute {
                at: minute,
                ..Minute::default()
            });
        }
        while ring.front().is_some_and(|m| m.at + MINUTES <= minute) {
            ring.pop_front();
        }
        let m = ring.back_mut().expect("pushed above");
        m.requests += 1;
        if !redirect {
            *m.bytes.entry(source.to_string()).or_default() += a.bytes;
        }
    }

    /// The requests and bytes of the 60 minutes up to `minute` (this one included).
    fn recent_at(&self, minute: u64) -> Recent {
        let mut r = Recent::default();
        for m in locked(&self.recent).iter() {
            if m.at + MINUTES > minute && m.at <= minute {
                r.requests += m.requests;
                for (s, b) in &m.bytes {
                    *r.bytes.entry(s.clone()).or_default() += b;
                }
            }
        }
        r
    }

    /// The last hour's requests and bytes by source.
    pub fn last_hour(&self) -> Recent {
        self.recent_at(now_minute())
    }

    /// Every metric in the text exposition format 0.0.4, the in-flight gauge less `asking`
    /// (the scrapes being answered, which are not what anyone wants to see).
    pub fn render(&self, asking: i64) -> String {
        let mut out = String::new();
        let head = |out: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        let name = "hfcs_serve_requests_total";
        head(
            &mut out,
            name,
            "counter",
            "Requests answered, by method and status code.",
        );
        for ((method, code), n) in locked(&self.requests).iter() {
            let _ = writeln!(out, "{name}{{method=\"{method}\",code=\"{code}\"}} {n}");
        }
        let by_source = [
            (
                "hfcs_serve_sent_bytes_total",
                "Body bytes sent, by the source they came from (`server` for answers the server made).",
                &self.sent,
            ),
            (
                "hfcs_serve_upstream_fetches_total",
                "File responses streamed from a source after the remote (a fallback, the Hub).",
                &self.upstream,
            ),
        ];
        for (name, help, map) in by_source {
            head(&mut out, name, "counter", help);
            for (source, n) in locked(map).iter() {
                let _ = writeln!(out, "{name}{{source=\"{}\"}} {n}", label_value(source));
            }
        }
        let name = "hfcs_serve_presigned_redirects_total";
        let help = "--presign: LFS file requests answered with a 302 to a presigned bucket URL, \
                    by status code (the bucket sends the bytes; none are counted as sent).";
        head(&mut out, name, "counter", help);
        for (code, n) in locked(&self.presigned).iter() {
            let _ = writeln!(out, "{name}{{source=\"{PRESIGNED}\",code=\"{code}\"}} {n}");
        }
        let name = "hfcs_serve_errors_total";
        let help = "Errors: bodies cut short (a corrupt object, a source failing mid-stream) and 5xx answers.";
        head(&mut out, name, "counter", help);
        let errors = locked(&self.errors);
        for kind in ["cut", "status_5xx"] {
            let n = errors.get(kind).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}{{kind=\"{kind}\"}} {n}");
        }
        let name = "hfcs_serve_in_flight_requests";
        head(&mut out, name, "gauge", "Requests being answered now.");
        let n = (self.in_flight.load(Ordering::Relaxed) - asking).max(0);
        let _ = writeln!(out, "{name} {n}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn access(method: &str, status: u16, bytes: u64, source: Option<&str>) -> Access {
        Access {
            peer: "127.0.0.1".into(),
            method: method.into(),
            path: "/".into(),
            status,
            bytes,
            duration: Duration::ZERO,
            source: source.map(str::to_string),
            cut: None,
        }
    }

    #[test]
    fn counters_render_in_the_text_format() {
        let m = Arc::new(Metrics::new("s3://b/p".into()));
        let held = m.started();
        m.record(&access("GET", 200, 100, Some("s3://b/p")), 1);
        m.record(&access("GET", 200, 50, Some("https://hub\"x")), 1);
        m.record(&access("BREW", 404, 7, None), 1);
        let mut cut = access("GET", 200, 3, Some("s3://b/p"));
        cut.cut = Some("content does not match".into());
        m.record(&cut, 1);
        let mut gone = access("GET", 200, 3, Some("s3://b/p"));
        gone.cut = Some(ENDED_FIRST.into());
        m.record(&gone, 1);
        m.record(&access("GET", 502, 9, None), 1);
        m.record(&access("HEAD", 302, 0, Some(PRESIGNED)), 1);
        m.record(&access("GET", 302, 0, Some(PRESIGNED)), 1);
        let text = m.render(0);
        for line in [
            "# TYPE hfcs_serve_requests_total counter",
            "hfcs_serve_requests_total{method=\"GET\",code=\"200\"} 4",
            "hfcs_serve_requests_total{method=\"other\",code=\"404\"} 1",
            "hfcs_serve_sent_bytes_total{source=\"s3://b/p\"} 106",
            "hfcs_serve_sent_bytes_total{source=\"https://hub\\\"x\"} 50",
            "hfcs_serve_sent_bytes_total{source=\"server\"} 16",
            "hfcs_serve_upstream_fetches_total{source=\"https://hub\\\"x\"} 1",
            "hfcs_serve_presigned_redirects_total{source=\"presign\",code=\"302\"} 2",
            "hfcs_serve_requests_total{method=\"HEAD\",code=\"302\"} 1",
            "hfcs_serve_errors_total{kind=\"cut\"} 1",
            "hfcs_serve_errors_total{kind=\"status_5xx\"} 1",
            "# TYPE hfcs_serve_in_flight_requests gauge",
            "hfcs_serve_in_flight_requests 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        assert!(!text.contains("upstream_fetches_total{source=\"s3://b/p\"}"));
        // A redirect sent no file bytes and fetched nothing upstream.
        assert!(
            !text.contains("sent_bytes_total{source=\"presign\"}"),
            "{text}"
        );
        assert!(
            !text.contains("upstream_fetches_total{source=\"presign\"}"),
            "{text}"
        );
        drop(held);
        assert!(m.render(0).contains("\nhfcs_serve_in_flight_requests 0\n"));
    }

    #[test]
    fn the_ring_keeps_the_last_hour() {
        let m = Metrics::new("r".into());
        m.record(&access("GET", 200, 10, Some("r")), 100);
        m.record(&access("GET", 200, 5, Some("h")), 130);
        m.record(&access("GET", 200, 1, None), 159);
        let want = |requests, bytes: &[(&str, u64)]| Recent {
            requests,
            bytes: bytes.iter().map(|(s, b)| (s.to_string(), *b)).collect(),
        };
        assert_eq!(
            m.recent_at(159),
            want(3, &[("h", 5), ("r", 10), ("server", 1)])
        );
        assert_eq!(m.recent_at(160), want(2, &[("h", 5), ("server", 1)]));
        // A request an hour later drops the old minutes from the ring.
        m.record(&access("GET", 200, 2, Some("r")), 230);
        assert_eq!(locked(&m.recent).len(), 1);
        assert_eq!(m.recent_at(230), want(1, &[("r", 2)]));
    }
}
