//! A stand-in for the Hugging Face Hub on loopback, answering what a download needs with the
//! Hub's own headers: `/api/{type}s/{id}/revision/{rev}` (the commit, `gated`), `/api/{type}s/{id}`
//! (`gated`, `private`, to anyone), `/api/{type}s/{id}/auth-check` (200 for a token that may
//! read the repo), the recursive
//! tree paginated with `Link: <…>; rel="next"`, and `/{prefix}{id}/resolve/{rev}/{path}` with
//! `X-Repo-Commit`, `ETag`, and for LFS files `X-Linked-Etag`, `X-Linked-Size` and a 302 to a
//! "CDN": a second listener on another host (127.0.0.2), which serves ranges. Gated repos answer
//! 401 without the right token, unknown ones 401/404 with `X-Error-Code`, and a test can make
//! it answer 429. Every request is recorded with the `Authorization` it carried.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::cache::{git_sha1_hex, sha256_hex};

mod access;

/// One file of a commit.
#[derive(Debug, Clone)]
pub struct HubFile {
    pub path: String,
    pub bytes: Vec<u8>,
    pub lfs: bool,
}

impl HubFile {
    /// The name huggingface_hub gives its blob: the sha256 for LFS, the git SHA-1 otherwise.
    pub fn etag(&self) -> String {
        if self.lfs {
            sha256_hex(&self.bytes)
        } else {
            git_sha1_hex(&self.bytes)
        }
    }
}

/// A repo on the stand-in.
#[derive(Debug, Clone)]
pub struct HubRepo {
    /// `model`, `dataset`, `space`, `kernel`.
    pub repo_type: String,
    pub id: String,
    /// commit → files.
    pub commits: BTreeMap<String, Vec<HubFile>>,
    /// branch or tag → commit.
    pub refs: BTreeMap<String, String>,
    /// A gated repo answers 401 (403 with another token) unless this token is sent.
    pub gated_token: Option<String>,
    /// Private: unless `gated_token` is sent, the repo is not found.
    pub private: bool,
}

impl HubRepo {
    pub fn model(id: &str) -> HubRepo {
        HubRepo {
            repo_type: "model".into(),
            id: id.into(),
            commits: BTreeMap::new(),
            refs: BTreeMap::new(),
            gated_token: None,
            private: false,
        }
    }

    /// Adds a commit with `files`, named by `ref_`.
    pub fn commit(mut self, commit: &str, ref_: &str, files: Vec<HubFile>) -> HubRepo {
        self.commits.insert(commit.into(), files);
        self.refs.insert(ref_.into(), commit.into());
        self
    }

    /// The repo a spec describes, each revision a commit named by itself and by its refs.
    pub fn from_spec(spec: &super::spec::RepoSpec) -> HubRepo {
        let mut h = HubRepo::model(&spec.repo_id);
        h.repo_type = spec.repo_type.to_string();
        for rev in &spec.revisions {
            let files = rev
                .files
                .iter()
                .map(|f| HubFile {
                    path: f.path.clone(),
                    bytes: f.bytes.clone(),
                    lfs: f.lfs,
                })
                .collect();
            h = h.commit(&rev.commit, &rev.commit, files);
            for r in &rev.refs {
                h.refs.insert(r.clone(), rev.commit.clone());
            }
        }
        h
    }

    pub fn gated(mut self, token: &str) -> HubRepo {
        self.gated_token = Some(token.into());
        self
    }

    /// Seen only by its owner's `token`.
    pub fn private(self, token: &str) -> HubRepo {
        HubRepo {
            private: true,
            ..self.gated(token)
        }
    }
}

/// A request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `hub` or `cdn`.
    pub host: &'static str,
    pub method: String,
    pub target: String,
    pub authorization: Option<String>,
    pub status: u16,
    /// Body bytes sent.
    pub body_bytes: u64,
}

#[derive(Default)]
struct State {
    repos: Vec<HubRepo>,
    seen: Vec<Seen>,
    /// API requests still to answer 429, and the `Retry-After` they give (seconds).
    rate_limit: u64,
    retry_after: u64,
    /// Bytes served for these etags are corrupted (one byte flipped).
    corrupt: Vec<String>,
    /// Bodies of this blob stop after this many bytes and the connection goes silent, as a
    /// dead link does.
    stall: Option<(String, usize)>,
    /// Bodies are sent at this many bytes a second, as over a slow link.
    pace: Option<u64>,
    /// LFS files answer with the Hub's Xet headers, as Xet-stored files do.
    xet: bool,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    hub_url: String,
    cdn_url: String,
    page_size: usize,
}

/// The stand-in: the Hub at `url()`, its CDN at another host. Stops when dropped.
pub struct HubStandIn {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

fn listen(host: &str) -> TcpListener {
    let l = TcpListener::bind(format!("{host}:0"))
        .unwrap_or_else(|e| panic!("bind the Hub stand-in on {host}: {e}"));
    l.set_nonblocking(true).expect("non-blocking listener");
    l
}

impl HubStandIn {
    /// Serves `repos`; tree listings come `page_size` entries a page.
    pub fn start(repos: Vec<HubRepo>, page_size: usize) -> HubStandIn {
        let hub = listen("127.0.0.1");
        let cdn = listen("127.0.0.2");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                repos,
                ..State::default()
            }),
            stop: AtomicBool::new(false),
            hub_url: format!("http://{}", hub.local_addr().unwrap()),
            cdn_url: format!("http://{}", cdn.local_addr().unwrap()),
            page_size: page_size.max(1),
        });
        let threads = [(hub, "hub"), (cdn, "cdn")]
            .into_iter()
            .map(|(listener, host)| {
                let shared = shared.clone();
                std::thread::spawn(move || accept(listener, host, shared))
            })
            .collect();
        HubStandIn { shared, threads }
    }

    /// Serves model `repo_id` at `main`: a config and `size` bytes of LFS weights drawn from
    /// `seed`. Returns the stand-in and the weights.
    pub fn one_shard(repo_id: &str, seed: &str, size: usize) -> (HubStandIn, Vec<u8>) {
        let big = super::cache::pseudo_random(&format!("{seed} hub weights"), size);
        let files = vec![
            HubFile {
                path: "config.json".into(),
                bytes: format!("{{\"model\": \"{repo_id}\"}}\n").into_bytes(),
                lfs: false,
            },
            HubFile {
                path: "model.safetensors".into(),
                bytes: big.clone(),
                lfs: true,
            },
        ];
        let commit = super::cache::commit_hash(&format!("{seed} on the hub"));
        let repo = HubRepo::model(repo_id).commit(&commit, "main", files);
        (HubStandIn::start(vec![repo], 100), big)
    }

    /// Serves `org/gated` at `main`, a gated model whose one file is `config.json` (`{}` and a
    /// newline) and which admits `token`; its commit drawn from `seed`.
    pub fn gated_config(seed: &str, token: &str) -> HubStandIn {
        let files = vec![HubFile {
            path: "config.json".into(),
            bytes: b"{}\n".to_vec(),
            lfs: false,
        }];
        let repo = HubRepo::model("org/gated")
            .commit(&super::cache::commit_hash(seed), "main", files)
            .gated(token);
        HubStandIn::start(vec![repo], 100)
    }

    /// The value for `HF_ENDPOINT`.
    pub fn url(&self) -> String {
        self.shared.hub_url.clone()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.state.lock().unwrap().seen.clone()
    }

    /// The next `n` API requests are answered 429, asking to wait a second.
    pub fn rate_limit(&self, n: u64) {
        self.rate_limit_asking(n, 1);
    }

    /// The next `n` API requests are answered 429 with `Retry-After: <seconds>`.
    pub fn rate_limit_asking(&self, n: u64, seconds: u64) {
        let mut state = self.shared.state.lock().unwrap();
        state.rate_limit = n;
        state.retry_after = seconds;
    }

    /// The bytes served for blob `etag` are wrong from now on.
    pub fn corrupt(&self, etag: &str) {
        self.shared.state.lock().unwrap().corrupt.push(etag.into());
    }

    /// From now on, a body of blob `etag` stops after `after` bytes and the connection stays
    /// open and silent (until the client goes or the stand-in stops).
    pub fn stall(&self, etag: &str, after: usize) {
        self.shared.state.lock().unwrap().stall = Some((etag.into(), after));
    }

    /// From now on, bodies are sent at `bytes_per_second`, as over a slow link.
    pub fn pace(&self, bytes_per_second: u64) {
        self.shared.state.lock().unwrap().pace = Some(bytes_per_second);
    }

    /// From now on, LFS files' resolve answers carry the Xet headers the Hub sends for
    /// Xet-stored files (`X-Xet-Hash`, `Link` with `rel="xet-auth"`): a client with hf_xet then
    /// asks `…/xet-read-token/…`, which the stand-in does not serve.
    pub fn xet(&self) {
        self.shared.state.lock().unwrap().xet = true;
    }

    /// Bodies are served whole again.
    pub fn unstall(&self) {
        self.shared.state.lock().unwrap().stall = None;
    }

    /// Body bytes of blob `etag` served so far, by either host.
    pub fn bytes_of(&self, etag: &str) -> u64 {
        self.seen()
            .iter()
            .filter(|s| s.method == "GET" && s.target.contains(etag))
            .map(|s| s.body_bytes)
            .sum()
    }

    /// File downloads served (GETs answered with bytes, by either host).
    pub fn downloads(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == "GET" && (s.status == 200 || s.status == 206))
            .filter(|s| s.host == "cdn" || s.target.contains("/resolve/"))
            .count()
    }
}

impl Drop for HubStandIn {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept(listener: TcpListener, host: &'static str, shared: Arc<Shared>) {
    while !shared.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, host, &shared));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// An answer: status, headers, body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Reply {
        self.body = body.into();
        self
    }

    fn json(self, v: serde_json::Value) -> Reply {
        self.header("content-type", "application/json")
            .body(v.to_string())
    }

    fn error(status: u16, code: &str, message: &str) -> Reply {
        Reply::new(status)
            .header("x-error-code", code)
            .header("x-error-message", message)
            .json(serde_json::json!({ "error": message }))
    }
}

fn serve(stream: TcpStream, host: &'static str, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let reply = match host {
        "hub" => hub_answer(shared, &method, &target, &headers),
        _ => cdn_answer(shared, &target, &headers),
    };
    let stall = match &shared.state.lock().unwrap().stall {
        Some((etag, after)) if target.contains(etag.as_str()) => Some(*after),
        _ => None,
    };
    let sent = match (method.as_str(), stall) {
        ("HEAD", _) => 0,
        (_, Some(after)) => reply.body.len().min(after),
        _ => reply.body.len(),
    };
    shared.state.lock().unwrap().seen.push(Seen {
        host,
        method: method.clone(),
        target: target.clone(),
        authorization: headers.get("authorization").cloned(),
        status: reply.status,
        body_bytes: sent as u64,
    });
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    for (k, v) in &reply.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        reply.body.len()
    ));
    let mut out = &stream;
    let _ = out.write_all(head.as_bytes());
    let pace = shared.state.lock().unwrap().pace;
    match pace {
        Some(rate) => {
            // Tenths of a second's worth at a time.
            let chunk = (rate as usize / 10).max(1);
            for piece in reply.body[..sent].chunks(chunk) {
                if out.write_all(piece).is_err() || shared.stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        None => {
            let _ = out.write_all(&reply.body[..sent]);
        }
    }
    let _ = out.flush();
    if stall.is_some() && sent < reply.body.len() {
        // Silent, not closed: the client sees a stalled body, not a short one.
        let until = std::time::Instant::now() + Duration::from_secs(60);
        while !shared.stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `%2F` and friends decoded.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or(""), 16)
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn type_of_plural(p: &str) -> Option<&'static str> {
    match p {
        "models" => Some("model"),
        "datasets" => Some("dataset"),
        "spaces" => Some("space"),
        "kernels" => Some("kernel"),
        _ => None,
    }
}

/// The repo `type`/`id`, or the error the Hub gives, checking its token.
fn find_repo<'a>(
    state: &'a State,
    repo_type: &str,
    id: &str,
    headers: &BTreeMap<String, String>,
) -> Result<&'a HubRepo, Reply> {
    let Some(repo) = state
        .repos
        .iter()
        .find(|r| r.repo_type == repo_type && r.id == id)
    else {
        return Err(Reply::error(401, "RepoNotFound", "Repository not found"));
    };
    if let Some(token) = &repo.gated_token {
        match headers.get("authorization") {
            Some(a) if *a == format!("Bearer {token}") => {}
            _ if repo.private => {
                return Err(Reply::error(401, "RepoNotFound", "Repository not found"))
            }
            Some(_) => {
                return Err(Reply::error(
                    403,
                    "GatedRepo",
                    "Access to this repo is restricted: your token has no access to it",
                ))
            }
            None => {
                return Err(Reply::error(
                    401,
                    "GatedRepo",
                    "Access to this repo is restricted: you must be authenticated",
                ))
            }
        }
    }
    Ok(repo)
}

fn resolve_rev<'a>(repo: &'a HubRepo, rev: &'a str) -> Option<&'a str> {
    if repo.commits.contains_key(rev) {
        return Some(rev);
    }
    repo.refs.get(rev).map(String::as_str)
}

fn hub_answer(
    shared: &Shared,
    method: &str,
    target: &str,
    headers: &BTreeMap<String, String>,
) -> Reply {
    let mut state = shared.state.lock().unwrap();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if let Some(rest) = path.strip_prefix("/api/") {
        if state.rate_limit > 0 {
            state.rate_limit -= 1;
            let wait = state.retry_after.to_string();
            return Reply::error(429, "", "Too many requests").header("retry-after", &wait);
        }
        return api_answer(shared, &state, rest, query, headers);
    }
    let _ = method;
    resolve_answer(shared, &state, path, headers)
}

fn api_answer(
    shared: &Shared,
    state: &State,
    rest: &str,
    query: &str,
    headers: &BTreeMap<String, String>,
) -> Reply {
    // {types}/{org}/{name}/(revision|tree)/{rev}, {types}/{org}/{name}[/auth-check]
    let parts: Vec<&str> = rest.splitn(5, '/').collect();
    let (Some(t), true) = (
        parts.first().and_then(|p| type_of_plural(p)),
        (3..=5).contains(&parts.len()),
    ) else {
        return Reply::error(404, "", "no such endpoint");
    };
    let id = format!("{}/{}", parts[1], parts[2]);
    if parts.len() < 5 {
        return access::repo_answer(state, t, &id, parts.get(3).copied(), headers);
    }
    let repo = match find_repo(state, t, &id, headers) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let rev = decode(parts[4]);
    let Some(commit) = resolve_rev(repo, &rev) else {
        return Reply::error(404, "RevisionNotFound", &format!("Invalid rev id: {rev}"));
    };
    let files = &repo.commits[commit];
    match parts[3] {
        "revision" => Reply::new(200).json(serde_json::json!({
            "id": id,
            "sha": commit,
            "private": false,
            "gated": if repo.gated_token.is_some() { serde_json::json!("manual") } else { serde_json::json!(false) },
            "siblings": files.iter().map(|f| serde_json::json!({"rfilename": f.path})).collect::<Vec<_>>(),
        })),
        "tree" => tree_page(shared, files, parts, query),
        _ => Reply::error(404, "", "no such endpoint"),
    }
}

/// One page of the recursive tree (folders included, as the Hub lists them), `cursor` entries in.
fn tree_page(shared: &Shared, files: &[HubFile], parts: Vec<&str>, query: &str) -> Reply {
    let mut entries: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for f in files {
        let mut dir = f.path.as_str();
        while let Some((parent, _)) = dir.rsplit_once('/') {
            entries.insert(
                parent.to_string(),
                serde_json::json!({"type": "directory", "oid": git_sha1_hex(parent.as_bytes()), "size": 0, "path": parent}),
            );
            dir = parent;
        }
        let mut e = serde_json::json!({
            "type": "file",
            "oid": git_sha1_hex(if f.lfs { b"pointer" } else { &f.bytes }),
            "size": f.bytes.len(),
            "path": f.path,
        });
        if f.lfs {
            e["oid"] = serde_json::json!(git_sha1_hex(
                format!(
                    "version https://git-lfs.github.com/spec/v1\noid sha256:{}\nsize {}\n",
                    f.etag(),
                    f.bytes.len()
                )
                .as_bytes()
            ));
            e["lfs"] =
                serde_json::json!({"oid": f.etag(), "size": f.bytes.len(), "pointerSize": 134});
        }
        entries.insert(f.path.clone(), e);
    }
    let cursor: usize = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("cursor="))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let all: Vec<serde_json::Value> = entries.into_values().collect();
    let end = (cursor + shared.page_size).min(all.len());
    let page = serde_json::Value::Array(all[cursor.min(end)..end].to_vec());
    let mut reply = Reply::new(200).json(page);
    if end < all.len() {
        let next = format!(
            "{}/api/{}?recursive=true&expand=false&cursor={end}",
            shared.hub_url,
            parts.join("/")
        );
        reply = reply.header("link", format!("<{next}>; rel=\"next\""));
    }
    reply
}

fn prefix_type(path: &str) -> (&'static str, &str) {
    for (p, t) in [
        ("/datasets/", "dataset"),
        ("/spaces/", "space"),
        ("/kernels/", "kernel"),
    ] {
        if let Some(rest) = path.strip_prefix(p) {
            return (t, rest);
        }
    }
    ("model", path.trim_start_matches('/'))
}

fn resolve_answer(
    shared: &Shared,
    state: &State,
    path: &str,
    headers: &BTreeMap<String, String>,
) -> Reply {
    let (t, rest) = prefix_type(path);
    // {org}/{name}/resolve/{rev}/{file path}
    let parts: Vec<&str> = rest.splitn(5, '/').collect();
    if parts.len() != 5 || parts[2] != "resolve" {
        return Reply::error(404, "", "no such endpoint");
    }
    let id = format!("{}/{}", parts[0], parts[1]);
    let repo = match find_repo(state, t, &id, headers) {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let rev = decode(parts[3]);
    let Some(commit) = resolve_rev(repo, &rev) else {
        return Reply::error(404, "RevisionNotFound", &format!("Invalid rev id: {rev}"));
    };
    let file_path = decode(parts[4]);
    let Some(f) = repo.commits[commit].iter().find(|f| f.path == file_path) else {
        return Reply::error(404, "EntryNotFound", &format!("{file_path} does not exist"));
    };
    let reply = Reply::new(200)
        .header("x-repo-commit", commit)
        .header("etag", format!("\"{}\"", git_sha1_hex(&f.bytes)))
        .header("accept-ranges", "bytes");
    if f.lfs {
        let reply = Reply {
            status: 302,
            ..reply
        }
        .header("x-linked-etag", format!("\"{}\"", f.etag()))
        .header("x-linked-size", f.bytes.len().to_string())
        .header(
            "location",
            format!("{}/cdn/{}?signature=abc", shared.cdn_url, f.etag()),
        );
        if !state.xet {
            return reply;
        }
        let token = format!("{}/api/{t}s/{id}/xet-read-token/{commit}", shared.hub_url);
        let cas = format!("{}/cas/reconstructions/{}", shared.cdn_url, f.etag());
        return reply
            .header("x-xet-hash", f.etag())
            .header(
                "x-xet-refresh-route",
                format!("/api/{t}s/{id}/xet-read-token/{commit}"),
            )
            .header(
                "link",
                format!("<{token}>; rel=\"xet-auth\", <{cas}>; rel=\"xet-reconstruction-info\""),
            );
    }
    ranged(reply, &served_bytes(state, f), headers)
}

/// The file's bytes as served: corrupted when the test asked for it.
fn served_bytes(state: &State, f: &HubFile) -> Vec<u8> {
    let mut bytes = f.bytes.clone();
    if state.corrupt.contains(&f.etag()) && !bytes.is_empty() {
        bytes[0] ^= 0xff;
    }
    bytes
}

/// The whole body, or the range the request asks for (206).
fn ranged(reply: Reply, bytes: &[u8], headers: &BTreeMap<String, String>) -> Reply {
    let range = headers
        .get("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split_once('-'));
    let Some((start, end)) = range else {
        return reply.body(bytes.to_vec());
    };
    let start: usize = start.parse().unwrap_or(0);
    let end: usize = end.parse().unwrap_or(bytes.len().saturating_sub(1));
    let end = end.min(bytes.len().saturating_sub(1));
    if start > end || start >= bytes.len() {
        return Reply::new(416);
    }
    Reply {
        status: 206,
        ..reply
    }
    .header(
        "content-range",
        format!("bytes {start}-{end}/{}", bytes.len()),
    )
    .body(bytes[start..=end].to_vec())
}

fn cdn_answer(shared: &Shared, target: &str, headers: &BTreeMap<String, String>) -> Reply {
    let state = shared.state.lock().unwrap();
    let path = target.split('?').next().unwrap_or("");
    let Some(etag) = path.strip_prefix("/cdn/") else {
        return Reply::new(404);
    };
    let file = state
        .repos
        .iter()
        .flat_map(|r| r.commits.values().flatten())
        .find(|f| f.lfs && f.etag() == etag);
    match file {
        Some(f) => ranged(
            Reply::new(200).header("accept-ranges", "bytes"),
            &served_bytes(&state, f),
            headers,
        ),
        None => Reply::new(404),
    }
}
