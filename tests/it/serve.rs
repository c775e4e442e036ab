//! `serve`: huggingface_hub itself, pointed at the server with `HF_ENDPOINT`, downloads what a
//! push put in the bucket, into a cache identical to what `pull` writes; misses raise its own
//! exceptions; ranges, corrupt objects, many clients, stopping and tokens.

use std::path::Path;
use std::time::Duration;

use crate::common::cache::pseudo_random;
use crate::common::fixtures::{CONFIG, TOKENIZER, WEIGHTS};
use crate::common::hub::HubStandIn;
use crate::common::pushed;
use crate::common::python::{hf_cache_verify, hf_download_local_dir};
use crate::common::serve::{
    corrupt_in_the_bucket_right_in_a_share, hf_client, one_lfs_file_pushed, raw, Server, DOWNLOAD,
    SNAPSHOT,
};
use crate::common::spec::RepoSpec;
use crate::common::{blob_key, check_cache, files_under, Sandbox};

/// The blobs (name → bytes), snapshot entries (path → link target or bytes) and refs of a
/// repo folder: what two caches must agree on.
fn repo_contents(repo_dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["blobs", "snapshots", "refs"] {
        for rel in files_under(&repo_dir.join(sub)) {
            let path = repo_dir.join(sub).join(&rel);
            let content = match std::fs::read_link(&path) {
                Ok(target) => target.to_string_lossy().into_owned().into_bytes(),
                Err(_) => std::fs::read(&path).unwrap(),
            };
            out.push((format!("{sub}/{rel}"), content));
        }
    }
    out
}

#[test]
fn snapshot_download_through_serve_writes_the_cache_pull_writes() {
    let (t, m) = pushed("serve_snapshot");
    let server = Server::start(&t, &[]);
    let served = t.cache("served");
    let out = hf_client(
        &server.url,
        &served,
        (None, false),
        SNAPSHOT,
        &["org/m", "model", ""],
    );
    let main = m.commit("main");
    assert!(out.ok().ends_with(main), "{out:?}");
    let pulled = t.cache("pulled");
    t.hfcs()
        .cache_dir(&pulled)
        .args(["pull", "org/m"])
        .run()
        .success();
    let repo = "models--org--m";
    assert_eq!(
        repo_contents(&served.join(repo)),
        repo_contents(&pulled.join(repo)),
        "snapshot_download through serve and pull wrote different caches"
    );
    check_cache(&served, &m.downloads(main));
    // huggingface_hub's own checksum check, against the server's tree listing.
    let (code, text) = hf_cache_verify(&served, "model", "org/m", main, &server.url, None);
    assert_eq!(code, Some(0), "hf cache verify against serve:\n{text}");
    let out = server.stop().success();
    assert!(
        out.stderr
            .contains("GET /api/models/org/m/revision/main 200"),
        "{out}"
    );
    let weights = format!("GET /org/m/resolve/{main}/{WEIGHTS} 200 {} ", 200 * 1024);
    let line = out.stderr.lines().find(|l| l.contains(&weights));
    let source = format!("s3://{}/{}", t.garage().bucket, t.prefix);
    assert!(line.is_some_and(|l| l.ends_with(&source)), "{out}");
    assert!(!out.stderr.contains("cut:"), "{out}");
}

#[test]
fn hf_hub_download_takes_a_commit_and_a_branch() {
    let (t, m) = pushed("serve_hf_hub_download");
    let server = Server::start(&t, &[]);
    let cache = t.cache("client");
    let v1 = m.commit("v1.0");
    // Xet left on: the server never names a Xet hash, so the bytes come over HTTP from it.
    let path = hf_client(
        &server.url,
        &cache,
        (None, true),
        DOWNLOAD,
        &["org/m", "model", v1, CONFIG],
    );
    let config_a = &m.revision("v1.0").file(CONFIG).bytes;
    assert_eq!(std::fs::read(path.ok()).unwrap(), *config_a);
    let path = hf_client(
        &server.url,
        &cache,
        (None, true),
        DOWNLOAD,
        &["org/m", "model", "main", WEIGHTS],
    );
    let weights = &m.revision("main").file(WEIGHTS).bytes;
    assert_eq!(std::fs::read(path.ok()).unwrap(), *weights);
    let refs = cache.join("models--org--m/refs/main");
    assert_eq!(std::fs::read_to_string(refs).unwrap(), m.commit("main"));
    server.stop().success();
}

#[test]
fn hf_download_lays_a_repo_out_in_a_folder() {
    let (t, m) = pushed("serve_local_dir");
    let server = Server::start(&t, &[]);
    let (cache, dir) = (t.cache("client"), t.path("project/m"));
    let (code, _, stderr) = hf_download_local_dir(&cache, &dir, &["org/m"], Some(&server.url));
    assert_eq!(code, Some(0), "hf download --local-dir:\n{stderr}");
    for f in &m.revision("main").files {
        assert_eq!(
            std::fs::read(dir.join(&f.path)).unwrap(),
            f.bytes,
            "{}",
            f.path
        );
    }
    server.stop().success();
}

#[test]
fn a_dataset_is_served_under_its_prefix() {
    let t = Sandbox::new("serve_dataset");
    let d = RepoSpec::dataset("org/d")
        .rev(&crate::common::commit_hash("org/d a"), &["main"])
        .file("README.md", b"# a dataset\n")
        .lfs(
            "data/train-00000.parquet",
            &pseudo_random("org/d train", 70_000),
        );
    let src = t.cache("src");
    d.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let server = Server::start(&t, &[]);
    let cache = t.cache("client");
    let out = hf_client(
        &server.url,
        &cache,
        (None, false),
        SNAPSHOT,
        &["org/d", "dataset", ""],
    );
    out.ok();
    check_cache(&cache, &d.downloads(d.commit("main")));
    // A model of that name is not there.
    let out = hf_client(
        &server.url,
        &cache,
        (None, false),
        SNAPSHOT,
        &["org/d", "model", ""],
    );
    assert!(out.stdout.contains("RepositoryNotFoundError"), "{out:?}");
    server.stop().success();
}

#[test]
fn what_is_missing_raises_huggingface_hubs_own_errors() {
    let (t, _m) = pushed("serve_not_found");
    let server = Server::start(&t, &[]);
    let cache = t.cache("client");
    let ask = |args: &[&str]| {
        let out = hf_client(&server.url, &cache, (None, false), DOWNLOAD, args);
        assert_eq!(out.code, Some(3), "{out:?}");
        out.stdout
    };
    let repo = ask(&["org/nothing", "model", "main", CONFIG]);
    assert!(repo.contains("RepositoryNotFoundError"), "{repo}");
    let rev = ask(&["org/m", "model", "no-such-branch", CONFIG]);
    assert!(rev.contains("RevisionNotFoundError"), "{rev}");
    let commit = ask(&["org/m", "model", &"0".repeat(40), CONFIG]);
    assert!(commit.contains("RevisionNotFoundError"), "{commit}");
    let entry = ask(&["org/m", "model", "main", "no/such/file.bin"]);
    assert!(entry.contains("EntryNotFoundError"), "{entry}");
    let snapshot = hf_client(
        &server.url,
        &cache,
        (None, false),
        SNAPSHOT,
        &["org/m", "model", "nope"],
    );
    assert!(
        snapshot.stdout.contains("RevisionNotFoundError"),
        "{snapshot:?}"
    );
    server.stop().success();
}

#[test]
fn heads_ranges_and_health_answer_as_the_hub_does() {
    let (t, m) = pushed("serve_ranges");
    let server = Server::start(&t, &[]);
    let addr = server.addr().to_string();
    let main = m.commit("main");
    let weights = &m.revision("main").file(WEIGHTS).bytes;
    let sha = crate::common::sha256_hex(weights);
    let path = format!("/org/m/resolve/main/{WEIGHTS}");
    let head = raw(&addr, "HEAD", &path, &[]);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("x-repo-commit"), Some(main));
    assert_eq!(
        head.header("x-linked-etag"),
        Some(format!("\"{sha}\"").as_str())
    );
    assert_eq!(
        head.header("x-linked-size"),
        Some(weights.len().to_string().as_str())
    );
    assert_eq!(
        head.header("content-length"),
        Some(weights.len().to_string().as_str())
    );
    let config = &m.revision("main").file(CONFIG).bytes;
    let head = raw(
        &addr,
        "HEAD",
        &format!("/org/m/resolve/{main}/{CONFIG}"),
        &[],
    );
    let git = crate::common::git_sha1_hex(config);
    assert_eq!(head.header("etag"), Some(format!("\"{git}\"").as_str()));
    assert_eq!(head.header("x-linked-etag"), None);
    for (range, from, to) in [
        ("bytes=10-99", 10, 100),
        ("bytes=1000-", 1000, weights.len()),
        ("bytes=-7", weights.len() - 7, weights.len()),
    ] {
        let got = raw(&addr, "GET", &path, &[("Range", range)]);
        assert_eq!(got.status, 206, "{range}");
        assert_eq!(
            got.header("content-range"),
            Some(format!("bytes {from}-{}/{}", to - 1, weights.len()).as_str()),
            "{range}"
        );
        assert_eq!(got.body, weights[from..to], "{range}");
    }
    let past = raw(&addr, "GET", &path, &[("Range", "bytes=999999999-")]);
    assert_eq!(past.status, 416);
    assert_eq!(raw(&addr, "GET", "/healthz", &[]).status, 200);
    let unknown = raw(&addr, "GET", "/api/agent-harnesses", &[]);
    assert_eq!(unknown.status, 404);
    // Paths-info as huggingface_hub posts it.
    let code = "import sys, json\nfrom huggingface_hub import HfApi\n\
                print(json.dumps([getattr(p, 'blob_id', None) for p in HfApi().get_paths_info(\
                'org/m', ['config.json', 'tokenizer', 'nope'], revision='main')]))";
    let out = hf_client(&server.url, &t.cache("c"), (None, false), code, &[]);
    let ids: Vec<Option<String>> = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(ids, vec![Some(git), None], "{out:?}");
    let _ = TOKENIZER;
    server.stop().success();
}

#[test]
fn a_corrupt_object_in_the_bucket_never_reaches_a_client_whole() {
    let t = Sandbox::new("serve_corrupt");
    let big = pseudo_random("serve corrupt weights", 3 * 1024 * 1024 + 17);
    let m = RepoSpec::new("org/m")
        .rev(&crate::common::commit_hash("serve corrupt"), &["main"])
        .file(CONFIG, b"{}\n")
        .lfs(WEIGHTS, &big);
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let sha = crate::common::sha256_hex(&big);
    let mut wrong = big.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 0x55;
    t.bucket().put(&blob_key(&sha), wrong);
    let server = Server::start(&t, &[]);
    let path = format!("/org/m/resolve/main/{WEIGHTS}");
    let got = raw(server.addr(), "GET", &path, &[]);
    assert_eq!(got.status, 200);
    assert!(got.body.len() < big.len(), "the whole blob went out");
    assert_eq!(
        got.body,
        big[..got.body.len()],
        "the bytes before the last piece"
    );
    let cache = t.cache("client");
    let out = hf_client(
        &server.url,
        &cache,
        (None, false),
        DOWNLOAD,
        &["org/m", "model", "main", WEIGHTS],
    );
    assert_eq!(out.code, Some(3), "the client must fail: {out:?}");
    let blob = cache.join("models--org--m/blobs").join(&sha);
    assert!(
        !blob.exists(),
        "a corrupt blob landed in the client's cache"
    );
    let snapshot = cache
        .join("models--org--m/snapshots")
        .join(m.commit("main"))
        .join(WEIGHTS);
    assert!(!snapshot.exists());
    let out = server.stop().success();
    assert!(
        out.stderr.contains(&blob_key(&sha)),
        "the bad key is logged:\n{out}"
    );
    assert!(out.stderr.contains("cut: content does not match"), "{out}");
}

#[test]
fn after_a_corrupt_object_the_next_request_goes_to_the_next_source() {
    let (t, big, fallback) = corrupt_in_the_bucket_right_in_a_share("serve_corrupt_fallback");
    let server = Server::start(&t, &["--fallback", &fallback]);
    let path = format!("/org/m/resolve/main/{WEIGHTS}");
    let first = raw(server.addr(), "GET", &path, &[]);
    assert!(first.body.len() < big.len());
    let second = raw(server.addr(), "GET", &path, &[("Range", "bytes=1000-")]);
    assert_eq!(second.status, 200, "a blob seen corrupt is answered whole");
    assert_eq!(second.body, big);
    let out = server.stop().success();
    assert!(out.stderr.contains(&fallback), "{out}");
}

#[test]
fn a_client_whose_download_was_cut_for_corruption_resumes_into_the_right_file() {
    let (t, big, fallback) = corrupt_in_the_bucket_right_in_a_share("serve_corrupt_resume");
    let server = Server::start(&t, &["--fallback", &fallback]);
    let cache = t.cache("client");
    // The first GET is cut after the bucket's wrong bytes; huggingface_hub resumes with a
    // Range, gets the whole blob from the share instead, and starts its file over.
    let args = ["org/m", "model", "main", WEIGHTS];
    let out = hf_client(&server.url, &cache, (None, false), DOWNLOAD, &args);
    assert_eq!(std::fs::read(out.ok()).unwrap(), big);
    let out = server.stop().success();
    let gets: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains(&format!("GET /org/m/resolve/main/{WEIGHTS}")))
        .collect();
    assert_eq!(gets.len(), 2, "{out}");
    assert!(gets[0].contains("cut: content does not match"), "{out}");
    assert!(
        gets[1].contains(" 200 2097152 ") && gets[1].contains(&fallback),
        "{out}"
    );
}

#[test]
fn sixteen_clients_at_once_all_get_the_repo() {
    let (t, m) = pushed("serve_sixteen");
    let server = Server::start(&t, &[]);
    let main = m.commit("main").to_string();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let cache = t.cache(&format!("client-{i}"));
                let url = server.url.clone();
                s.spawn(move || {
                    let out = hf_client(
                        &url,
                        &cache,
                        (None, false),
                        SNAPSHOT,
                        &["org/m", "model", ""],
                    );
                    out.ok().to_string();
                    cache
                })
            })
            .collect();
        for h in handles {
            let cache = h.join().unwrap();
            check_cache(&cache, &m.downloads(&main));
        }
    });
    server.stop().success();
}

#[test]
fn sigterm_lets_the_response_in_flight_finish_and_exits_0() {
    let (t, big) = one_lfs_file_pushed("serve_sigterm", 24 * 1024 * 1024);
    let server = Server::start(&t, &[]);
    let addr = server.addr().to_string();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    let req = format!(
        "GET /org/m/resolve/main/{WEIGHTS} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    std::io::Write::write_all(&mut s, req.as_bytes()).unwrap();
    let mut first = [0u8; 4096];
    let n = std::io::Read::read(&mut s, &mut first).unwrap();
    assert!(n > 0);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(server.run.pid() as libc::pid_t, libc::SIGTERM) };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "a stopping server takes no new connection"
    );
    let mut rest = first[..n].to_vec();
    std::io::Read::read_to_end(&mut s, &mut rest).unwrap();
    let got = crate::common::serve::parse(&rest);
    assert_eq!(got.body.len(), big.len(), "the response in flight finished");
    assert!(got.body == big);
    let out = server.run.wait();
    assert_eq!(out.code, Some(0), "{out}");
}

#[test]
fn a_non_loopback_address_needs_auth() {
    let t = Sandbox::local("serve_non_loopback");
    let out = t
        .bare()
        .args(["serve", "--listen", "0.0.0.0:0", "--remote", "/nonexistent"])
        .run()
        .code(2);
    assert!(out.stderr.contains("--auth tokens=FILE"), "{out}");
    let out = t.bare().args(["serve", "--auth", "hubb"]).run().code(2);
    assert!(out.stderr.contains("tokens=FILE"), "{out}");
}

#[test]
fn tokens_let_the_team_in_and_no_one_else() {
    let (t, m) = pushed("serve_tokens");
    let tokens = t.path("tokens");
    std::fs::write(
        &tokens,
        "# the team\nhf_team_secret_one\nhf_team_secret_two\n",
    )
    .unwrap();
    let auth = format!("tokens={}", tokens.display());
    let server = Server::start(&t, &["--auth", &auth]);
    let addr = server.addr().to_string();
    let path = format!("/org/m/resolve/main/{CONFIG}");
    assert_eq!(raw(&addr, "GET", &path, &[]).status, 401);
    let wrong = raw(&addr, "GET", &path, &[("Authorization", "Bearer hf_other")]);
    assert_eq!(wrong.status, 401);
    let right = raw(
        &addr,
        "GET",
        &path,
        &[("Authorization", "Bearer hf_team_secret_two")],
    );
    assert_eq!(right.status, 200);
    assert_eq!(raw(&addr, "GET", "/healthz", &[]).status, 200);
    let cache = t.cache("client");
    let args = ["org/m", "model", "main", CONFIG];
    let out = hf_client(&server.url, &cache, (None, false), DOWNLOAD, &args);
    assert!(
        out.stdout.contains("HfHubHTTPError") && out.stdout.contains("401"),
        "{out:?}"
    );
    let out = hf_client(
        &server.url,
        &cache,
        (Some("hf_team_secret_one"), false),
        DOWNLOAD,
        &args,
    );
    assert_eq!(
        std::fs::read(out.ok()).unwrap(),
        m.revision("main").file(CONFIG).bytes
    );
    let out = server.stop().success();
    for secret in ["hf_team_secret_one", "hf_team_secret_two", "hf_other"] {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{out}"
        );
    }
    assert!(out.stderr.contains(&format!("GET {path} 401")), "{out}");
}

#[test]
fn a_tree_of_many_files_is_listed_in_pages() {
    let (t, remote) = Sandbox::with_dir_remote("serve_pages");
    let mut spec = RepoSpec::new("org/many").rev(&crate::common::commit_hash("many"), &["main"]);
    for i in 0..1205 {
        spec = spec.file(
            &format!("shard-{}/f{i}.txt", i % 3),
            format!("{i}\n").as_bytes(),
        );
    }
    let src = t.cache("src");
    spec.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    assert!(remote.join("manifests").exists());
    let server = Server::start(&t, &[]);
    let code = "from huggingface_hub import HfApi\n\
                items = list(HfApi().list_repo_tree('org/many', recursive=True))\n\
                print(len([i for i in items if hasattr(i, 'blob_id')]), len(items))";
    let out = hf_client(&server.url, &t.cache("c"), (None, false), code, &[]);
    assert_eq!(out.ok(), "1205 1208", "{out:?}");
    let out = server.stop().success();
    // Two pages: 1208 entries, 1000 a page.
    assert_eq!(
        out.stderr.matches("GET /api/models/org/many/tree/").count(),
        2,
        "{out}"
    );
}

#[test]
fn a_revision_the_bucket_lacks_streams_from_the_hub_fallback_and_lands_nowhere() {
    let t = Sandbox::new("serve_hub_fallback");
    let (hub, big) = HubStandIn::one_shard("org/hub-only", "serve hub", 300_000);
    let cli = t.hfcs().env("HF_ENDPOINT", hub.url());
    let server = Server::start_with(cli, &["--fallback", "hf-hub"]);
    let cache = t.cache("client");
    let out = hf_client(
        &server.url,
        &cache,
        (None, false),
        SNAPSHOT,
        &["org/hub-only", "model", ""],
    );
    let snapshot = std::path::PathBuf::from(out.ok());
    assert_eq!(std::fs::read(snapshot.join(WEIGHTS)).unwrap(), big);
    assert!(
        t.bucket().keys().is_empty(),
        "serve writes nothing to the bucket"
    );
    let out = server.stop().success();
    let line = "/org/hub-only/resolve/";
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains(line) && l.contains(" 200 300000 ") && l.ends_with(&hub.url())),
        "the access log names the Hub as the source:\n{out}"
    );
}

#[test]
fn the_hubs_xet_headers_stop_at_serve_so_a_client_with_hf_xet_gets_every_byte_from_it() {
    let t = Sandbox::new("serve_xet");
    let (hub, big) = HubStandIn::one_shard("org/xet", "serve xet", 300_000);
    hub.xet();
    let args = ["org/xet", "model", ""];
    // Straight from the Hub, a client with hf_xet follows the Xet headers (to a token route the
    // stand-in does not serve): the headers are live.
    let direct = hf_client(
        &hub.url(),
        &t.cache("direct"),
        (None, true),
        SNAPSHOT,
        &args,
    );
    let xet_asks = |from: usize| {
        hub.seen()[from..]
            .iter()
            .filter(|s| s.target.contains("xet-read-token"))
            .count()
    };
    assert!(
        xet_asks(0) > 0,
        "hf_xet did not follow the headers: {direct:?}"
    );
    let before = hub.seen().len();
    let cli = t.hfcs().env("HF_ENDPOINT", hub.url());
    let server = Server::start_with(cli, &["--fallback", "hf-hub"]);
    let out = hf_client(
        &server.url,
        &t.cache("client"),
        (None, true),
        SNAPSHOT,
        &args,
    );
    let snapshot = std::path::PathBuf::from(out.ok());
    assert_eq!(std::fs::read(snapshot.join(WEIGHTS)).unwrap(), big);
    assert_eq!(xet_asks(before), 0, "a client of serve went to Xet");
    let head = raw(
        server.addr(),
        "HEAD",
        &format!("/org/xet/resolve/main/{WEIGHTS}"),
        &[],
    );
    for h in ["x-xet-hash", "x-xet-refresh-route", "link"] {
        assert_eq!(head.header(h), None, "{h} passed on: {head:?}");
    }
    server.stop().success();
}

#[test]
fn a_gated_repo_from_the_hub_is_passed_on_only_when_the_team_allows_it() {
    let t = Sandbox::new("serve_gated");
    let hub = HubStandIn::gated_config("gated", "hf_server_token");
    let start = |t: &Sandbox| {
        let cli = t
            .hfcs()
            .env("HF_ENDPOINT", hub.url())
            .env("HF_TOKEN", "hf_server_token");
        Server::start_with(cli, &["--fallback", "hf-hub"])
    };
    let server = start(&t);
    let args = ["org/gated", "model", "main", CONFIG];
    let out = hf_client(&server.url, &t.cache("a"), (None, false), DOWNLOAD, &args);
    assert!(out.stdout.contains("GatedRepoError"), "{out:?}");
    server.stop().success();
    let yaml = format!(
        "{}  allow_gated: true\n",
        t.garage_yaml(crate::common::Key::ReadWrite)
    );
    t.write_config(&yaml);
    let server = start(&t);
    let out = hf_client(&server.url, &t.cache("b"), (None, false), DOWNLOAD, &args);
    assert_eq!(std::fs::read(out.ok()).unwrap(), b"{}\n");
    server.stop().success();
}

#[test]
fn a_busy_port_or_a_hub_at_the_servers_own_address_is_refused() {
    let t = Sandbox::local("serve_refusals");
    let remote = format!("--remote={}", t.path("share").display());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let out = t
        .bare()
        .args(["serve", "--listen", &addr, &remote])
        .run()
        .code(2);
    assert!(out.stderr.contains("pick another"), "{out}");
    drop(busy);
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = free.local_addr().unwrap().to_string();
    drop(free);
    let out = t
        .bare()
        .env("HF_ENDPOINT", format!("http://{addr}"))
        .args(["serve", "--listen", &addr, &remote, "--fallback", "hf-hub"])
        .run()
        .code(2);
    assert!(out.stderr.contains("ask itself"), "{out}");
    assert!(
        out.stderr
            .contains("hint: HF_ENDPOINT is the Hub for the server"),
        "{out}"
    );
}

#[test]
fn spaces_and_kernels_are_served_under_their_prefixes() {
    let t = Sandbox::new("serve_spaces_kernels");
    let specs: Vec<RepoSpec> = [("space", "org/s"), ("kernel", "org/k")]
        .into_iter()
        .map(|(repo_type, id)| {
            RepoSpec::of_type(repo_type, id)
                .rev(&crate::common::commit_hash(id), &["main"])
                .file("app.py", format!("print('{id}')\n").as_bytes())
                .lfs("build/lib.so", &pseudo_random(id, 40_000))
        })
        .collect();
    let src = t.cache("src");
    for s in &specs {
        s.write(&src);
    }
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let server = Server::start(&t, &[]);
    let cache = t.cache("client");
    for s in &specs {
        let args = [s.repo_id.as_str(), s.repo_type, "main", "build/lib.so"];
        let out = hf_client(&server.url, &cache, (None, false), DOWNLOAD, &args);
        let want = &s.revision("main").file("build/lib.so").bytes;
        assert_eq!(std::fs::read(out.ok()).unwrap(), *want, "{}", s.repo_type);
    }
    let out = server.stop().success();
    assert!(out.stderr.contains("GET /spaces/org/s/resolve/"), "{out}");
    assert!(out.stderr.contains("GET /kernels/org/k/resolve/"), "{out}");
}

#[test]
fn limit_rate_caps_what_the_server_sends() {
    let (t, big) = one_lfs_file_pushed("serve_limit_rate", 24 * 1024 * 1024);
    // 24 MiB at 8 MiB/s: three seconds, give or take the burst the cap allows.
    let server = Server::start(&t, &["--limit-rate", "8M"]);
    let addr = server.addr().to_string();
    let started = std::time::Instant::now();
    let got = raw(&addr, "GET", &format!("/org/m/resolve/main/{WEIGHTS}"), &[]);
    let took = started.elapsed();
    assert_eq!(got.status, 200);
    assert!(got.body == big, "the whole blob");
    assert!(
        (2.7..6.0).contains(&took.as_secs_f64()),
        "24 MiB at 8 MiB/s took {took:?}"
    );
}
