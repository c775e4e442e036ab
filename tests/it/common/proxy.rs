//! A pass-through TCP proxy in front of the test server that records the request line of every
//! HTTP request it forwards, so a test can count what the binary actually sent (the server still
//! answers every request itself).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

pub struct RecordingProxy {
    /// `http://127.0.0.1:<port>`: use as the endpoint instead of the server's.
    pub endpoint: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RecordingProxy {
    /// Starts forwarding to `upstream` (`http://host:port`). Runs until the test process ends.
    pub fn start(upstream: &str) -> RecordingProxy {
        let addr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&addr) else {
                    continue;
                };
                let seen = seen.clone();
                thread::spawn(move || relay(client, server, seen));
            }
        });
        RecordingProxy { endpoint, requests }
    }

    /// `METHOD /path?query` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests that create or change objects (PUT, POST).
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.starts_with("PUT ") || r.starts_with("POST "))
            .collect()
    }
}

/// Copies responses back as they come, and requests forward one by one, recording each request
/// line. Bodies are skipped by their Content-Length (the SDK sends no chunked request bodies);
/// anything else ends the parsing and is forwarded raw, recorded as `UNPARSED`.
fn relay(client: TcpStream, server: TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let (Ok(mut client_w), Ok(mut server_r)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let back = thread::spawn(move || {
        let _ = std::io::copy(&mut server_r, &mut client_w);
        let _ = client_w.shutdown(Shutdown::Both);
    });
    let mut reader = BufReader::new(client);
    let mut server_w = server;
    loop {
        let mut head = Vec::new();
        let mut line = String::new();
        let mut content_length = 0u64;
        let mut chunked = false;
        let mut first = None;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = server_w.shutdown(Shutdown::Write);
                    let _ = back.join();
                    return;
                }
                Ok(_) => {}
            }
            head.extend_from_slice(line.as_bytes());
            let trimmed = line.trim_end();
            if first.is_none() {
                first = Some(
                    trimmed
                        .rsplit_once(' ')
                        .map_or(trimmed, |(r, _)| r)
                        .to_string(),
                );
                continue;
            }
            if trimmed.is_empty() {
                break;
            }
            let lower = trimmed.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        let request = first.unwrap_or_default();
        seen.lock().unwrap().push(if chunked {
            format!("UNPARSED {request}")
        } else {
            request
        });
        if server_w.write_all(&head).is_err() {
            break;
        }
        if chunked {
            let _ = std::io::copy(&mut reader, &mut server_w);
            break;
        }
        let mut body = (&mut reader).take(content_length);
        if std::io::copy(&mut body, &mut server_w).is_err() {
            break;
        }
    }
    let _ = server_w.shutdown(Shutdown::Write);
    let _ = back.join();
}
