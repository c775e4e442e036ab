//! Stand-ins on loopback for the AWS credential endpoints of EC2 (the instance metadata service,
//! IMDSv2) and ECS (container credentials), serving the Garage test keys as a role's temporary
//! credentials, so the SDK's own providers can be tested without AWS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// The role the instance metadata stand-in says the instance has.
pub const ROLE: &str = "hfcs-test-role";
/// The token a container must present when `AWS_CONTAINER_AUTHORIZATION_TOKEN` is set.
pub const CONTAINER_AUTH: &str = "container-auth-7f3a";
/// The session token sent with the role credentials; it must never show up in any output.
pub const SESSION_TOKEN: &str = "SESSIONTOKENfromthestandin0123456789abcdef";
const IMDS_TOKEN: &str = "imds-session-token-9b1c";

/// One request as the stand-in saw it: `PUT /latest/api/token`.
pub type Seen = Arc<Mutex<Vec<String>>>;

type Handler = dyn Fn(&str, &str, &[(String, String)]) -> (u16, String) + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 answering each request on its own connection.
pub struct CredentialServer {
    port: u16,
    seen: Seen,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CredentialServer {
    fn start(handler: Box<Handler>) -> CredentialServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the stand-in");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, handler.as_ref(), &seen),
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            })
        };
        CredentialServer {
            port,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// EC2's instance metadata service (IMDSv2: a session token first, then the role's
    /// credentials), serving `access`/`secret` as the role's keys.
    pub fn instance_metadata(access: &str, secret: &str) -> CredentialServer {
        let body = role_credentials(access, secret);
        CredentialServer::start(Box::new(move |method, path, headers| {
            let has = |name: &str, value: &str| {
                headers
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case(name) && v == value)
            };
            let creds = "/latest/meta-data/iam/security-credentials/";
            match (method, path) {
                ("PUT", "/latest/api/token") => (200, IMDS_TOKEN.to_string()),
                // IMDSv2: every read carries the session token.
                _ if !has("x-aws-ec2-metadata-token", IMDS_TOKEN) => (401, String::new()),
                ("GET", p) if p == creds => (200, ROLE.to_string()),
                ("GET", p) if p == format!("{creds}{ROLE}") => (200, body.clone()),
                _ => (404, String::new()),
            }
        }))
    }

    /// ECS's container credentials endpoint at `/creds`, demanding [`CONTAINER_AUTH`].
    pub fn container(access: &str, secret: &str) -> CredentialServer {
        let body = role_credentials(access, secret);
        CredentialServer::start(Box::new(move |method, path, headers| {
            let authorized = headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("authorization") && v == CONTAINER_AUTH);
            match (method, path) {
                ("GET", "/creds") if authorized => (200, body.clone()),
                ("GET", "/creds") => (401, String::new()),
                _ => (404, String::new()),
            }
        }))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far, as `METHOD /path`.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for CredentialServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A role's temporary credentials as both services answer them, valid for years.
fn role_credentials(access: &str, secret: &str) -> String {
    serde_json::json!({
        "Code": "Success",
        "LastUpdated": "2026-01-01T00:00:00Z",
        "Type": "AWS-HMAC",
        "AccessKeyId": access,
        "SecretAccessKey": secret,
        "Token": SESSION_TOKEN,
        "Expiration": "2099-01-01T00:00:00Z",
    })
    .to_string()
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Seen) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    );
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    let _ = reader.read_exact(&mut body);
    seen.lock().unwrap().push(format!("{method} {path}"));
    let (status, body) = handler(&method, &path, &headers);
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\
         x-aws-ec2-metadata-token-ttl-seconds: 21600\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = (&stream).write_all(response.as_bytes());
}
