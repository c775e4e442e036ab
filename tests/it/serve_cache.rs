//! `serve --from-cache`: one node's cache, filled by `pull` (so with tree listings), serves
//! huggingface_hub clients before the bucket is asked; a revision without its listing (a
//! partial snapshot) is left to the next source, and a corrupt cached blob is cut off and
//! served from the bucket.

use std::path::PathBuf;

use crate::common::cache::{commit_hash, pseudo_random, sha256_hex};
use crate::common::fixtures::{CONFIG, TOKENIZER, WEIGHTS};
use crate::common::hub::{HubRepo, HubStandIn};
use crate::common::python::hf_cache_verify;
use crate::common::serve::{hf_client, raw, snapshot_org_m, Server, DOWNLOAD};
use crate::common::spec::RepoSpec;
use crate::common::Sandbox;

const REPO: &str = "models--org--m";

/// The Hub stand-in serving `m`.
fn hub_of(m: &RepoSpec) -> HubStandIn {
    HubStandIn::start(vec![HubRepo::from_spec(m)], 100)
}

/// A node's cache filled by `pull` from the Hub at each revision of `pulls`; the bucket
/// receives a revision too when its flag (`--write-through`) is set.
fn node_cache(t: &Sandbox, hub: &HubStandIn, pulls: &[(&str, bool)]) -> PathBuf {
    let node = t.cache("node");
    for &(rev, write_through) in pulls {
        let mut pull = t
            .hfcs()
            .cache_dir(&node)
            .env("HF_ENDPOINT", hub.url())
            .args(["pull", "org/m", "-r", rev, "--fallback", "hf-hub"]);
        if write_through {
            pull = pull.arg("--write-through");
        }
        pull.run().success();
    }
    node
}

/// `serve --from-cache ARGS…` with `node` as its cache dir.
fn serve_from(t: &Sandbox, node: &std::path::Path, args: &[&str]) -> Server {
    let mut all = vec!["--from-cache"];
    all.extend_from_slice(args);
    Server::start_with(t.hfcs().cache_dir(node), &all)
}

/// The access-log line of `GET path` with status `status`.
fn log_line<'a>(stderr: &'a str, path: &str, status: u16) -> Option<&'a str> {
    log_lines(stderr, path, status).into_iter().next()
}

/// Every access-log line of a GET of `path` answered `status`, in order.
fn log_lines<'a>(stderr: &'a str, path: &str, status: u16) -> Vec<&'a str> {
    let wanted = format!("GET {path} {status} ");
    stderr.lines().filter(|l| l.contains(&wanted)).collect()
}

#[test]
fn a_nodes_cache_serves_the_rack_while_the_bucket_lacks_the_repo() {
    let t = Sandbox::new("serve_cache");
    let m = RepoSpec::two_revisions("org/m");
    let hub = hub_of(&m);
    let node = node_cache(&t, &hub, &[("main", false)]);
    let main = m.commit("main");
    assert!(node.join(REPO).join(format!("trees/{main}.json")).is_file());
    assert!(t.bucket().keys().is_empty(), "{:?}", t.bucket().keys());
    let hub_downloads = hub.downloads();
    let server = serve_from(&t, &node, &[]);
    let client = t.cache("client");
    snapshot_org_m(&server.url, &client, None, &m);
    let (code, text) = hf_cache_verify(&client, "model", "org/m", main, &server.url, None);
    assert_eq!(code, Some(0), "hf cache verify against serve:\n{text}");
    let page = raw(server.addr(), "GET", "/", &[]);
    let page = String::from_utf8_lossy(&page.body).into_owned();
    assert!(page.contains("the cache dir"), "{page}");
    let metrics = raw(server.addr(), "GET", "/metrics", &[]);
    let metrics = String::from_utf8_lossy(&metrics.body).into_owned();
    assert!(
        metrics.contains("hfcs_serve_sent_bytes_total{source=\"cache\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("upstream_fetches_total{source=\"cache\"}"));
    let out = server.stop().success();
    for f in [CONFIG, WEIGHTS, TOKENIZER] {
        let line = log_line(&out.stderr, &format!("/org/m/resolve/{main}/{f}"), 200);
        assert!(line.is_some_and(|l| l.ends_with(" cache")), "{f}: {out}");
    }
    assert!(!out.stderr.contains("cut:"), "{out}");
    assert!(t.bucket().keys().is_empty(), "{:?}", t.bucket().keys());
    assert_eq!(hub.downloads(), hub_downloads, "the Hub was asked");
}

#[test]
fn a_branch_in_the_cache_resolves_to_its_commit() {
    let t = Sandbox::new("serve_cache_ref");
    let m = RepoSpec::two_revisions("org/m");
    let hub = hub_of(&m);
    let node = node_cache(&t, &hub, &[("v1.0", false), ("main", false)]);
    let v1 = m.commit("v1.0");
    let server = serve_from(&t, &node, &[]);
    let info = raw(server.addr(), "GET", "/api/models/org/m/revision/v1.0", &[]);
    assert_eq!(info.status, 200, "{}", String::from_utf8_lossy(&info.body));
    let json: serde_json::Value = serde_json::from_slice(&info.body).unwrap();
    assert_eq!(json["sha"], v1, "{json}");
    let client = t.cache("client");
    let path = hf_client(
        &server.url,
        &client,
        (None, false),
        DOWNLOAD,
        &["org/m", "model", "v1.0", CONFIG],
    );
    let config_a = &m.revision("v1.0").file(CONFIG).bytes;
    assert_eq!(std::fs::read(path.ok()).unwrap(), *config_a);
    let refs = client.join(REPO).join("refs/v1.0");
    assert_eq!(std::fs::read_to_string(refs).unwrap(), v1);
    let out = server.stop().success();
    let line = log_line(&out.stderr, &format!("/org/m/resolve/v1.0/{CONFIG}"), 200);
    assert!(line.is_some_and(|l| l.ends_with(" cache")), "{out}");
}

#[test]
fn a_snapshot_without_its_listing_is_left_to_the_next_source() {
    let t = Sandbox::new("serve_cache_partial");
    let m = RepoSpec::two_revisions("org/m");
    let hub = hub_of(&m);
    // main lands in the bucket as well; v1.0 only in the node's cache.
    let node = node_cache(&t, &hub, &[("main", true), ("v1.0", false)]);
    let (main, v1) = (m.commit("main"), m.commit("v1.0"));
    // A partial download: files missing, and no listing (huggingface_hub writes none then).
    std::fs::remove_dir_all(node.join(REPO).join("trees")).unwrap();
    std::fs::remove_file(
        node.join(REPO)
            .join(format!("snapshots/{main}/{TOKENIZER}")),
    )
    .unwrap();
    let server = serve_from(&t, &node, &[]);
    let client = t.cache("client");
    snapshot_org_m(&server.url, &client, None, &m);
    // v1.0 is in the cache without its listing and not in the bucket: no source has it whole.
    let out = hf_client(
        &server.url,
        &t.cache("client-v1"),
        (None, false),
        DOWNLOAD,
        &["org/m", "model", v1, CONFIG],
    );
    assert!(out.stdout.contains("RevisionNotFoundError"), "{out:?}");
    let out = server.stop().success();
    let source = format!("s3://{}/{}", t.garage().bucket, t.prefix);
    for f in [CONFIG, WEIGHTS, TOKENIZER] {
        let line = log_line(&out.stderr, &format!("/org/m/resolve/{main}/{f}"), 200);
        assert!(line.is_some_and(|l| l.ends_with(&source)), "{f}: {out}");
    }
    assert!(!out.stderr.lines().any(|l| l.ends_with(" cache")), "{out}");
}

#[test]
fn a_corrupt_cached_blob_is_cut_off_and_the_next_request_comes_from_the_bucket() {
    let t = Sandbox::new("serve_cache_corrupt");
    let big = pseudo_random("serve_cache_corrupt", 1024 * 1024);
    let m = RepoSpec::new("org/m")
        .rev(&commit_hash("serve_cache_corrupt"), &["main"])
        .lfs(WEIGHTS, &big);
    let hub = hub_of(&m);
    let node = node_cache(&t, &hub, &[("main", true)]);
    let etag = sha256_hex(&big);
    let blob = node.join(REPO).join("blobs").join(&etag);
    let mut bad = big.clone();
    *bad.last_mut().unwrap() ^= 1;
    let mut perms = std::fs::metadata(&blob).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&blob, perms).unwrap();
    std::fs::write(&blob, &bad).unwrap();
    let server = serve_from(&t, &node, &[]);
    let path = format!("/org/m/resolve/main/{WEIGHTS}");
    let first = raw(server.addr(), "GET", &path, &[]);
    assert_eq!(first.status, 200);
    assert!(
        first.body.len() < big.len(),
        "the corrupt blob went out whole"
    );
    assert_eq!(first.body, big[..first.body.len()]);
    let second = raw(server.addr(), "GET", &path, &[]);
    assert_eq!(second.status, 200);
    assert!(second.body == big, "the second answer is not the blob");
    let out = server.stop().success();
    assert!(
        out.stderr
            .contains(&format!("warning: blob {etag} from the cache dir")),
        "{out}"
    );
    let lines = log_lines(&out.stderr, &path, 200);
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].contains(" cache cut: "), "{out}");
    let source = format!("s3://{}/{}", t.garage().bucket, t.prefix);
    assert!(lines[1].ends_with(&source), "{out}");
}

#[test]
fn with_write_through_what_the_hub_served_is_then_served_from_the_cache() {
    let t = Sandbox::new("serve_cache_through");
    let m = RepoSpec::two_revisions("org/m");
    let hub = hub_of(&m);
    let node = t.cache("node");
    let cli = t.hfcs().cache_dir(&node).env("HF_ENDPOINT", hub.url());
    let args = ["--from-cache", "--fallback", "hf-hub", "--write-through"];
    let server = Server::start_with(cli, &args);
    let main = m.commit("main");
    let snapshot = |name: &str| {
        snapshot_org_m(&server.url, &t.cache(name), None, &m);
    };
    snapshot("first");
    // The revision landed in the node's cache, listing and all, and in the bucket.
    if !node.join(REPO).join(format!("trees/{main}.json")).is_file() {
        panic!("no listing in the node's cache:\n{}", server.stop());
    }
    assert!(
        t.bucket().exists("refs/org__m/main"),
        "{:?}",
        t.bucket().keys()
    );
    let hub_downloads = hub.downloads();
    snapshot("second");
    assert_eq!(hub.downloads(), hub_downloads, "the Hub was asked again");
    let out = server.stop().success();
    let weights = format!("/org/m/resolve/{main}/{WEIGHTS}");
    let lines = log_lines(&out.stderr, &weights, 200);
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].ends_with(" cache"), "{out}");
}
