//! A fault-injecting HTTP/1.1 proxy between the binary and the Garage test server.
//!
//! It reads each request and each response whole (Content-Length or chunked bodies, keep-alive
//! connections), so it can count them and, as a scenario's rules say, answer 503 SlowDown or 500
//! without forwarding, reset or stall a connection part-way through a response, or cut a body
//! short. It can also hold the run at its N-th request so a test can SIGKILL the binary there.
//! `HFCS_PROXY_LOG=1` prints every request and response head on stderr.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Garage;

/// What the proxy does to a request a rule picks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// `503 SlowDown` with an S3 XML error body; the request never reaches the server.
    SlowDown,
    /// `500 InternalError` with an S3 XML error body; the request never reaches the server.
    InternalError,
    /// `501 NotImplemented` with an S3 XML error body: a store that does not offer the request
    /// (DeleteObjects on some S3-compatible servers); it never reaches the server.
    NotImplemented,
    /// Forwards, then sends the response head and half the body and resets the connection.
    Reset,
    /// Forwards, then sends the response head and half the body and goes silent, keeping the
    /// connection open until the client gives up.
    Stall,
    /// Forwards, then sends the response head and half the body and closes the connection
    /// cleanly: fewer bytes than the head announced.
    Truncate,
}

/// Which requests a rule applies to.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Any,
    /// `GET …/blobs/<etag>` (whole or ranged).
    BlobGet,
    /// `PUT …/blobs/<etag>`: a single upload or one part of a multipart upload.
    BlobPut,
    /// Requests with this method.
    Method(&'static str),
    /// Requests with this method whose path and query contain this text (`uploadId=`).
    Path(&'static str, &'static str),
}

/// Which of the requests a rule's target matches get the fault.
#[derive(Debug, Clone, Copy)]
pub enum Schedule {
    /// The first `n` matching requests.
    First(u64),
    /// Every `k`-th matching request (the k-th, 2k-th, …).
    Every(u64),
    /// All of them: a fault that persists.
    Always,
}

/// One fault, the requests it targets and when.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub fault: Fault,
    pub target: Target,
    pub schedule: Schedule,
}

impl Rule {
    pub fn new(fault: Fault, target: Target, schedule: Schedule) -> Rule {
        Rule {
            fault,
            target,
            schedule,
        }
    }
}

/// A request the proxy saw, and what became of it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// 1-based, in order of arrival.
    pub number: u64,
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// The status the client was sent (or the server's, for a fault after forwarding); 0 when
    /// the request was held for a kill and never answered.
    pub status: u16,
    pub fault: Option<Fault>,
    /// Response body bytes the client received.
    pub body_bytes: u64,
    /// The request's `Authorization` header, when it had one.
    pub authorization: Option<String>,
}

impl Seen {
    pub fn is_blob_get(&self) -> bool {
        self.method == "GET" && self.target.contains("/blobs/")
    }
}

/// Which request starts a hold.
#[derive(Debug, Clone, Copy)]
pub enum HoldAt {
    /// The request with this number (1-based).
    Number(u64),
    /// The first request `Target` matches.
    First(Target),
    /// The `n`-th request (1-based) `Target` matches.
    Nth(Target, u64),
}

/// Where a run is held for a kill.
#[derive(Default)]
struct Hold {
    /// Hold this request and every one after it.
    at: Option<HoldAt>,
    /// Set once the hold has begun.
    since: Option<u64>,
    /// Requests the hold's target matched so far.
    matched: u64,
    /// Told once when the first request is held.
    notify: Option<Sender<u64>>,
}

#[derive(Default)]
struct State {
    rules: Vec<(Rule, u64)>,
    next_number: u64,
    log: Vec<Seen>,
    injected: BTreeMap<Fault, u64>,
    hold: Hold,
    /// Requests forwarded whose answer has not come back from the server yet.
    forwarding: u64,
}

struct Shared {
    upstream: String,
    state: Mutex<State>,
    released: Condvar,
    stop: AtomicBool,
    verbose: bool,
    started: Instant,
}

/// The proxy: listens on `127.0.0.1:<ephemeral port>`, forwards to the Garage test server, and
/// stops accepting when dropped (open connections end when their client closes them).
pub struct FaultProxy {
    url: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy in front of the Garage test server, injecting faults as `rules` say (first
    /// matching rule wins).
    pub fn new(rules: &[Rule]) -> FaultProxy {
        let endpoint = &Garage::get().endpoint;
        let upstream = endpoint
            .split_once("://")
            .map_or(endpoint.as_str(), |(_, rest)| rest)
            .trim_end_matches('/')
            .to_string();
        assert!(
            !upstream.contains('/'),
            "the test endpoint {endpoint} has a path; the proxy forwards to host:port only"
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State {
                rules: rules.iter().map(|r| (*r, 0)).collect(),
                ..State::default()
            }),
            released: Condvar::new(),
            stop: AtomicBool::new(false),
            verbose: std::env::var_os("HFCS_PROXY_LOG").is_some_and(|v| v == "1"),
            started: Instant::now(),
        });
        let accept = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, shared))
        };
        FaultProxy {
            url,
            shared,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:<port>`: the endpoint the binary is given.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `METHOD /path?query` of every request that writes or deletes (anything but GET/HEAD), in
    /// order: what a read-only key must not send more than once.
    pub fn writes(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|r| r.method != "GET" && r.method != "HEAD")
            .map(|r| format!("{} {}", r.method, r.target))
            .collect()
    }

    /// Requests seen so far.
    pub fn requests(&self) -> u64 {
        self.state().next_number
    }

    /// Faults of `kind` injected so far.
    pub fn injected(&self, kind: Fault) -> u64 {
        self.state().injected.get(&kind).copied().unwrap_or(0)
    }

    /// Every request seen so far, in order of arrival.
    pub fn log(&self) -> Vec<Seen> {
        let mut log = self.state().log.clone();
        log.sort_by_key(|s| s.number);
        log
    }

    /// Holds the request `at` picks and every later one without forwarding them; the returned
    /// channel gets the held request's number. [`FaultProxy::release`] lets the held connections
    /// go (they are closed, never forwarded).
    pub fn hold(&self, at: HoldAt) -> Receiver<u64> {
        let (tx, rx) = channel();
        let mut state = self.state();
        state.hold = Hold {
            at: Some(at),
            notify: Some(tx),
            ..Hold::default()
        };
        rx
    }

    /// Ends a hold: held connections are closed and new requests are forwarded again.
    pub fn release(&self) {
        let mut state = self.state();
        state.hold = Hold::default();
        drop(state);
        self.shared.released.notify_all();
    }

    /// Waits until no forwarded request is still with the server: after a kill, what the
    /// server will do is then done.
    pub fn wait_idle(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut state = self.state();
        while state.forwarding > 0 {
            assert!(
                Instant::now() < deadline,
                "{} requests still with the server after a minute",
                state.forwarding
            );
            state = self
                .shared
                .released
                .wait_timeout(state, Duration::from_millis(10))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Forgets the log, the counts and the hold, and starts counting again with `rules`.
    pub fn reset(&self, rules: &[Rule]) {
        self.release();
        let mut state = self.state();
        state.rules = rules.iter().map(|r| (*r, 0)).collect();
        state.next_number = 0;
        state.log.clear();
        state.injected.clear();
    }

    /// `SlowDown=3 Reset=1 …`: the faults injected so far, for a test's figures.
    pub fn summary(&self) -> String {
        let state = self.state();
        let faults: Vec<String> = state
            .injected
            .iter()
            .map(|(k, n)| format!("{k:?}={n}"))
            .collect();
        format!(
            "{} requests, faults: {}",
            state.next_number,
            if faults.is_empty() {
                "none".to_string()
            } else {
                faults.join(" ")
            }
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.released.notify_all();
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// An HTTP/1.1 message read whole: its head (start line and headers) and its body as framed on
/// the wire (chunked bodies keep their chunk framing).
struct Message {
    head: Vec<u8>,
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads a start line and headers (the body is left empty); `None` on a clean end of the
/// connection.
fn read_head(reader: &mut impl BufRead) -> io::Result<Option<Message>> {
    let mut head = Vec::new();
    let mut lines = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            if head.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "head cut off"));
        }
        head.extend_from_slice(&line);
        if head.len() > 256 * 1024 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too long"));
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if text.is_empty() {
            if lines.is_empty() {
                // Stray CRLF between messages.
                head.clear();
                continue;
            }
            break;
        }
        lines.push(text);
    }
    let start = lines.remove(0);
    let headers = lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Some(Message {
        head,
        start,
        headers,
        body: Vec::new(),
    }))
}

/// How a message's body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

fn framing(headers: &[(String, String)], is_response: bool) -> Framing {
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        return Framing::Chunked;
    }
    match get("content-length") {
        Some(n) => Framing::Length(n.parse().unwrap_or(0)),
        None if is_response => Framing::UntilClose,
        None => Framing::None,
    }
}

fn read_body(reader: &mut impl BufRead, framing: Framing) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    match framing {
        Framing::None => {}
        Framing::Length(n) => {
            body.resize(n as usize, 0);
            reader.read_exact(&mut body)?;
        }
        Framing::UntilClose => {
            reader.read_to_end(&mut body)?;
        }
        Framing::Chunked => loop {
            let mut size_line = Vec::new();
            if reader.read_until(b'\n', &mut size_line)? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "chunk cut off",
                ));
            }
            body.extend_from_slice(&size_line);
            let text = String::from_utf8_lossy(&size_line);
            let hex = text.trim().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(hex, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size"))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    let mut line = Vec::new();
                    if reader.read_until(b'\n', &mut line)? == 0 {
                        return Ok(body);
                    }
                    body.extend_from_slice(&line);
                    if line == b"\r\n" || line == b"\n" {
                        return Ok(body);
                    }
                }
            }
            let start = body.len();
            body.resize(start + size as usize + 2, 0);
            reader.read_exact(&mut body[start..])?;
        },
    }
    Ok(body)
}

fn read_request(reader: &mut impl BufRead) -> io::Result<Option<Message>> {
    let Some(mut req) = read_head(reader)? else {
        return Ok(None);
    };
    req.body = read_body(reader, framing(&req.headers, false))?;
    Ok(Some(req))
}

/// Reads the final response to a request with `method` (skipping `100 Continue`).
fn read_response(reader: &mut impl BufRead, method: &str) -> io::Result<Message> {
    loop {
        let Some(mut resp) = read_head(reader)? else {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        };
        let status = status_of(&resp.start);
        if (100..200).contains(&status) {
            continue;
        }
        if !(method == "HEAD" || status == 204 || status == 304) {
            resp.body = read_body(reader, framing(&resp.headers, true))?;
        }
        return Ok(resp);
    }
}

fn status_of(start: &str) -> u16 {
    start
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn matches(target: Target, method: &str, path: &str) -> bool {
    let blob = path.split('?').next().unwrap_or("").contains("/blobs/");
    match target {
        Target::Any => true,
        Target::BlobGet => method == "GET" && blob,
        Target::BlobPut => method == "PUT" && blob,
        Target::Method(m) => method == m,
        Target::Path(m, text) => method == m && path.contains(text),
    }
}

/// Counts the request against every rule it matches and returns the fault of the first rule
/// that fires.
fn pick_fault(state: &mut State, method: &str, path: &str) -> Option<Fault> {
    let mut chosen = None;
    for (rule, seen) in state.rules.iter_mut() {
        if !matches(rule.target, method, path) {
            continue;
        }
        *seen += 1;
        let fire = match rule.schedule {
            Schedule::First(n) => *seen <= n,
            Schedule::Every(k) => k > 0 && *seen % k == 0,
            Schedule::Always => true,
        };
        if fire && chosen.is_none() {
            chosen = Some(rule.fault);
        }
    }
    if let Some(f) = chosen {
        *state.injected.entry(f).or_insert(0) += 1;
    }
    chosen
}

/// An S3 error response the proxy makes up itself.
fn error_response(status: u16, code: &str, message: &str, path: &str, number: u64) -> Vec<u8> {
    let reason = match status {
        503 => "Service Unavailable",
        501 => "Not Implemented",
        _ => "Internal Server Error",
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message>\
         <Resource>{path}</Resource><RequestId>hfcs-proxy-{number}</RequestId></Error>"
    );
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/xml\r\ncontent-length: {}\r\n\
         x-amz-request-id: hfcs-proxy-{number}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

/// Half of what the response would have sent: the head and half the body, or half the head when
/// there is no body.
fn partial(resp: &Message) -> Vec<u8> {
    if resp.body.len() >= 2 {
        let mut out = resp.head.clone();
        out.extend_from_slice(&resp.body[..resp.body.len() / 2]);
        out
    } else {
        resp.head[..resp.head.len() / 2].to_vec()
    }
}

/// Closes with a TCP reset instead of a clean FIN.
fn reset(stream: TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized `linger` value.
    unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

/// Keeps a silent connection open until the client hangs up (or the proxy stops, or a minute
/// passes).
fn stall(stream: &TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
    let until = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 4096];
    let mut reader = stream;
    while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// Whether request `number` starts or falls in a hold (called under the state lock).
fn starts_or_in_hold(state: &mut State, number: u64, method: &str, path: &str) -> bool {
    if state.hold.since.is_some() {
        return true;
    }
    let begins = match state.hold.at {
        Some(HoldAt::Number(n)) => number >= n,
        Some(HoldAt::First(target)) => matches(target, method, path),
        Some(HoldAt::Nth(target, n)) if matches(target, method, path) => {
            state.hold.matched += 1;
            state.hold.matched >= n
        }
        Some(HoldAt::Nth(..)) | None => false,
    };
    if begins {
        state.hold.since = Some(number);
        if let Some(tx) = state.hold.notify.take() {
            let _ = tx.send(number);
        }
    }
    begins
}

/// Waits until the hold is released (the test has killed the client by then).
fn wait_for_release(shared: &Shared) {
    let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let deadline = Instant::now() + Duration::from_secs(120);
    while state.hold.since.is_some()
        && !shared.stop.load(Ordering::SeqCst)
        && Instant::now() < deadline
    {
        state = shared
            .released
            .wait_timeout(state, Duration::from_millis(100))
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

fn record(shared: &Shared, seen: Seen) {
    if shared.verbose {
        eprintln!(
            "proxy {:>6}ms #{} {} {} -> {} {:?} ({} body bytes)",
            shared.started.elapsed().as_millis(),
            seen.number,
            seen.method,
            seen.target,
            seen.status,
            seen.fault,
            seen.body_bytes
        );
    }
    shared
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .log
        .push(seen);
}

/// Forwards one request on the connection to the server, reconnecting once if a kept-alive
/// connection turns out to be closed.
fn forward(
    upstream: &mut Option<(TcpStream, BufReader<TcpStream>)>,
    addr: &str,
    req: &Message,
    method: &str,
) -> io::Result<Message> {
    for attempt in 0..2 {
        let reused = upstream.is_some();
        if upstream.is_none() {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            let reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
            *upstream = Some((stream, reader));
        }
        let (stream, reader) = upstream.as_mut().expect("connected");
        let sent = stream
            .write_all(&req.head)
            .and_then(|()| stream.write_all(&req.body));
        let result = sent.and_then(|()| read_response(reader, method));
        match result {
            Ok(resp) => {
                if resp.wants_close() {
                    *upstream = None;
                }
                return Ok(resp);
            }
            Err(e) => {
                *upstream = None;
                if !(reused && attempt == 0) {
                    return Err(e);
                }
            }
        }
    }
    unreachable!("the second attempt returns")
}

/// One client connection: requests in, responses (or faults) out, until either side closes.
fn serve(client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(256 * 1024, client.try_clone()?);
    let mut client = client;
    let mut upstream: Option<(TcpStream, BufReader<TcpStream>)> = None;
    loop {
        let Some(req) = read_request(&mut reader)? else {
            return Ok(());
        };
        let mut parts = req.start.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        if shared.verbose {
            eprintln!(
                "proxy {:>6}ms <- {}\n{}",
                shared.started.elapsed().as_millis(),
                req.start,
                req.headers
                    .iter()
                    .map(|(k, v)| format!("   {k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        let (number, held, fault) = {
            let mut state = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.next_number += 1;
            let number = state.next_number;
            let held = starts_or_in_hold(&mut state, number, &method, &path);
            let fault = if held {
                None
            } else {
                pick_fault(&mut state, &method, &path)
            };
            (number, held, fault)
        };
        let mut seen = Seen {
            number,
            method: method.clone(),
            target: path.clone(),
            status: 0,
            fault,
            body_bytes: 0,
            authorization: req.header("authorization").map(str::to_string),
        };
        if held {
            record(shared, seen);
            wait_for_release(shared);
            reset(client);
            return Ok(());
        }
        let made_up = match fault {
            Some(Fault::SlowDown) => Some((503, "SlowDown", "Please reduce your request rate.")),
            Some(Fault::InternalError) => Some((
                500,
                "InternalError",
                "We encountered an internal error. Please try again.",
            )),
            Some(Fault::NotImplemented) => Some((
                501,
                "NotImplemented",
                "A header you provided implies functionality that is not implemented.",
            )),
            _ => None,
        };
        if let Some((status, code, message)) = made_up {
            seen.status = status;
            record(shared, seen);
            client.write_all(&error_response(status, code, message, &path, number))?;
            continue;
        }
        shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forwarding += 1;
        let forwarded = forward(&mut upstream, &shared.upstream, &req, &method);
        shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forwarding -= 1;
        shared.released.notify_all();
        let resp = match forwarded {
            Ok(r) => r,
            Err(e) => {
                // The server is gone: say so the way a gateway would, and close.
                let body = format!("proxy: cannot reach {}: {e}", shared.upstream);
                let out = format!(
                    "HTTP/1.1 502 Bad Gateway\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                seen.status = 502;
                record(shared, seen);
                let _ = client.write_all(out.as_bytes());
                return Ok(());
            }
        };
        seen.status = status_of(&resp.start);
        if shared.verbose {
            eprintln!("proxy -> {} ({} body bytes)", resp.start, resp.body.len());
        }
        match fault {
            None => {
                seen.body_bytes = resp.body.len() as u64;
                record(shared, seen);
                client.write_all(&resp.head)?;
                client.write_all(&resp.body)?;
                if resp.wants_close() || req.wants_close() {
                    return Ok(());
                }
            }
            Some(kind) => {
                let part = partial(&resp);
                seen.body_bytes = part.len().saturating_sub(resp.head.len()) as u64;
                record(shared, seen);
                let _ = client.write_all(&part);
                let _ = client.flush();
                match kind {
                    Fault::Reset => {
                        // Let the partial bytes leave before the reset discards them.
                        std::thread::sleep(Duration::from_millis(20));
                        reset(client);
                    }
                    Fault::Stall => {
                        stall(&client, shared);
                    }
                    _ => {
                        let _ = client.shutdown(Shutdown::Write);
                        // Drain until the client closes so the FIN is not turned into a reset.
                        stall(&client, shared);
                    }
                }
                return Ok(());
            }
        }
    }
}
