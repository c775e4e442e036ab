//! `serve --presign`: an LFS file the bucket holds is answered with a 302 to a presigned URL of
//! its blob (GET and HEAD, as the Hub sends clients to its CDN), small files still stream from
//! serve, huggingface_hub downloads through it without sending its token to the bucket, and a
//! directory remote is refused.

use crate::common::fault_proxy::FaultProxy;
use crate::common::fixtures::{CONFIG, WEIGHTS};
use crate::common::hub::HubStandIn;
use crate::common::pushed;
use crate::common::python::hf_cache_verify;
use crate::common::resilience::config_via;
use crate::common::serve::{hf_client, raw, snapshot_org_m, Raw, Server, DOWNLOAD};
use crate::common::Sandbox;

/// `method` of a presigned `url` (`http://host:port/path?query`), with `headers`.
fn fetch(url: &str, method: &str, headers: &[(&str, &str)]) -> Raw {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (addr, path) = rest.split_at(rest.find('/').expect("a path"));
    raw(addr, method, path, headers)
}

/// The `Location` of a 302 to the test bucket, checked to be a signed URL valid `expires` s.
#[track_caller]
fn presigned(t: &Sandbox, answer: &Raw, expires: &str) -> String {
    assert_eq!(answer.status, 302, "{answer:?}");
    let location = answer.header("location").expect("a Location").to_string();
    let bucket = format!(
        "{}/{}/",
        t.garage().endpoint.trim_end_matches('/'),
        t.garage().bucket
    );
    assert!(
        location.starts_with(&bucket),
        "{location} is not in {bucket}"
    );
    let query = location.split_once('?').map_or("", |(_, q)| q);
    let params: Vec<(&str, &str)> = query.split('&').filter_map(|p| p.split_once('=')).collect();
    assert!(
        params.contains(&("X-Amz-Expires", expires)),
        "{location} does not expire in {expires} s"
    );
    assert!(
        params
            .iter()
            .any(|(k, v)| *k == "X-Amz-Signature" && v.len() == 64),
        "{location} is not signed"
    );
    location
}

#[test]
fn lfs_files_redirect_to_the_bucket_and_clients_get_every_file_right() {
    let (t, m) = pushed("serve_presign");
    let server = Server::start(&t, &["--presign=10m"]);
    let addr = server.addr().to_string();
    let main = m.commit("main");
    let weights = &m.revision("main").file(WEIGHTS).bytes;
    let sha = crate::common::sha256_hex(weights);
    let path = format!("/org/m/resolve/main/{WEIGHTS}");

    // The 302 carries the Hub's headers; the length is the empty body's, the file's size is in
    // X-Linked-Size, as the Hub's own 302.
    for method in ["HEAD", "GET"] {
        let answer = raw(&addr, method, &path, &[]);
        presigned(&t, &answer, "600");
        assert_eq!(answer.header("x-repo-commit"), Some(main), "{method}");
        assert_eq!(
            answer.header("x-linked-etag"),
            Some(format!("\"{sha}\"").as_str())
        );
        let size = weights.len().to_string();
        assert_eq!(answer.header("x-linked-size"), Some(size.as_str()));
        assert_eq!(answer.header("content-length"), Some("0"), "{method}");
        assert!(answer.body.is_empty(), "{method}");
    }
    // The bucket answers the URL, a range too.
    let location = presigned(&t, &raw(&addr, "GET", &path, &[]), "600");
    let whole = fetch(&location, "GET", &[]);
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    assert_eq!(whole.body, *weights);
    let ranged = raw(&addr, "GET", &path, &[("Range", "bytes=1000-1999")]);
    let part = fetch(
        &presigned(&t, &ranged, "600"),
        "GET",
        &[("Range", "bytes=1000-1999")],
    );
    assert_eq!(part.status, 206);
    assert_eq!(part.body, weights[1000..2000]);
    // A small (git) file streams from serve.
    let config = raw(
        &addr,
        "GET",
        &format!("/org/m/resolve/{main}/{CONFIG}"),
        &[],
    );
    assert_eq!(config.status, 200);
    assert_eq!(config.header("location"), None);
    assert_eq!(config.body, m.revision("main").file(CONFIG).bytes);

    let cache = t.cache("client");
    snapshot_org_m(&server.url, &cache, None, &m);
    let (code, text) = hf_cache_verify(&cache, "model", "org/m", main, &server.url, None);
    assert_eq!(
        code,
        Some(0),
        "hf cache verify after serve --presign:\n{text}"
    );
    let v1 = m.commit("v1.0");
    let args = ["org/m", "model", v1, WEIGHTS];
    let got = hf_client(&server.url, &t.cache("one"), (None, true), DOWNLOAD, &args);
    assert_eq!(
        std::fs::read(got.ok()).unwrap(),
        m.revision("v1.0").file(WEIGHTS).bytes
    );

    // Redirects are counted, their bytes are not: the bucket sent them.
    let metrics = String::from_utf8(raw(&addr, "GET", "/metrics", &[]).body).unwrap();
    let redirects = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("hfcs_serve_presigned_redirects_total{source=\"presign\",code=\"302\"} ")
        })
        .and_then(|n| n.parse::<u64>().ok());
    // 2 + 1 + 1 by hand, a HEAD for snapshot_download's LFS file, a HEAD for hf_hub_download's.
    assert!(redirects.is_some_and(|n| n >= 6), "{metrics}");
    assert!(
        !metrics.contains("sent_bytes_total{source=\"presign\"}"),
        "{metrics}"
    );
    let out = server.stop().success();
    let logged = format!("GET {path} 302 0 ");
    let line = out.stderr.lines().find(|l| l.contains(&logged));
    assert!(line.is_some_and(|l| l.ends_with(" presign")), "{out}");
    // huggingface_hub took the LFS bytes from the bucket: no LFS GET reached serve with a 200.
    let streamed = format!("/resolve/{main}/{WEIGHTS} 200");
    assert!(!out.stderr.contains(&streamed), "{out}");
}

#[test]
fn auth_comes_before_any_url_and_the_token_stays_off_the_bucket() {
    let (t, m) = pushed("serve_presign_auth");
    // The bucket behind a proxy that notes each request's Authorization header: the URLs serve
    // signs then name the proxy, so the client's requests to the bucket pass through it.
    let proxy = FaultProxy::new(&[]);
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let tokens = t.path("tokens");
    std::fs::write(&tokens, "hf_team_secret\n").unwrap();
    let auth = format!("tokens={}", tokens.display());
    let server = Server::start_with(t.bare().config(&config), &["--presign", "--auth", &auth]);
    let addr = server.addr().to_string();
    let path = format!("/org/m/resolve/main/{WEIGHTS}");
    for method in ["HEAD", "GET"] {
        let refused = raw(&addr, method, &path, &[]);
        assert_eq!(refused.status, 401, "{method}");
        assert_eq!(refused.header("location"), None, "{method}");
    }
    let bearer = [("Authorization", "Bearer hf_team_secret")];
    // Bare --presign: 15 minutes.
    let answer = raw(&addr, "GET", &path, &bearer);
    assert_eq!(answer.status, 302, "{answer:?}");
    let location = answer.header("location").unwrap();
    assert!(location.starts_with(proxy.url()), "{location}");
    assert!(location.contains("X-Amz-Expires=900&"), "{location}");
    let args = ["org/m", "model", "main", WEIGHTS];
    let cache = t.cache("client");
    let token = (Some("hf_team_secret"), false);
    let got = hf_client(&server.url, &cache, token, DOWNLOAD, &args);
    assert_eq!(
        std::fs::read(got.ok()).unwrap(),
        m.revision("main").file(WEIGHTS).bytes
    );
    let signed: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|s| s.is_blob_get() && s.target.contains("X-Amz-Signature="))
        .collect();
    assert_eq!(
        signed.len(),
        1,
        "the client fetched the blob once: {signed:?}"
    );
    assert_eq!(signed[0].status, 200, "{signed:?}");
    assert_eq!(
        signed[0].authorization, None,
        "the client sent an Authorization header to the bucket"
    );
    let out = server.stop().success();
    assert!(!out.stderr.contains("hf_team_secret"), "{out}");
}

#[test]
fn a_blob_the_bucket_lacks_streams_from_the_fallback() {
    let t = Sandbox::new("serve_presign_fallback");
    let (hub, big) = HubStandIn::one_shard("org/hub-only", "serve presign hub", 300_000);
    let cli = t.hfcs().env("HF_ENDPOINT", hub.url());
    let server = Server::start_with(cli, &["--presign", "--fallback", "hf-hub"]);
    let path = format!("/org/hub-only/resolve/main/{WEIGHTS}");
    let got = raw(server.addr(), "GET", &path, &[]);
    assert_eq!(got.status, 200, "{:?}", got.headers);
    assert_eq!(got.header("location"), None);
    assert_eq!(got.body, big);
    let out = server.stop().success();
    let logged = format!("GET {path} 200 300000 ");
    let line = out.stderr.lines().find(|l| l.contains(&logged));
    assert!(line.is_some_and(|l| l.ends_with(&hub.url())), "{out}");
}

#[test]
fn presign_with_a_directory_remote_or_a_bad_duration_is_a_usage_error() {
    let (t, remote) = Sandbox::with_dir_remote("serve_presign_dir");
    let out = t.hfcs().args(["serve", "--presign"]).run().code(2);
    assert!(
        out.stderr.contains("--presign needs an S3 remote")
            && out.stderr.contains(&remote.display().to_string())
            && out.stderr.contains("drop --presign"),
        "{out}"
    );
    for bad in ["--presign=soon", "--presign=0s", "--presign=30d"] {
        let out = t.hfcs().args(["serve", bad]).run().code(2);
        assert!(
            out.stderr.contains(bad) && out.stderr.contains("--presign=15m"),
            "{out}"
        );
    }
}
