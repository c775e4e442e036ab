//! `serve --write-through`: what the bucket lacks comes from the Hub once, however many
//! huggingface_hub clients ask at once, and lands in the bucket as `pull --write-through`
//! (so `push`) writes it; the next client is served from the bucket.

use crate::common::cache::{commit_hash, sha256_hex};
use crate::common::fixtures::{CONFIG, WEIGHTS};
use crate::common::hub::HubStandIn;
use crate::common::python::Download;
use crate::common::serve::{hf_client, raw, Server, DOWNLOAD, SNAPSHOT};
use crate::common::{check_cache, Bucket, Sandbox};

const SHARD: usize = 6 * 1024 * 1024;

/// The bucket's objects under `prefix`: key, size, S3 ETag.
fn objects(t: &Sandbox, prefix: &str) -> Vec<(String, u64, String)> {
    Bucket::new(t.garage(), prefix)
        .objects()
        .into_iter()
        .map(|o| (o.key, o.size, o.etag))
        .collect()
}

/// `snapshot_download` of `org/through` at main by `n` clients at once, each its own cache.
fn clients_at_once(t: &Sandbox, url: &str, names: &[&str]) -> Vec<std::path::PathBuf> {
    std::thread::scope(|s| {
        let handles: Vec<_> = names
            .iter()
            .map(|name| {
                let cache = t.cache(name);
                s.spawn(move || {
                    let args = ["org/through", "model", ""];
                    hf_client(url, &cache, (None, false), SNAPSHOT, &args)
                        .ok()
                        .to_string();
                    cache
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn six_clients_at_once_cost_the_hub_one_copy_and_the_revision_lands_as_push_writes_it() {
    let t = Sandbox::new("serve_through");
    let (hub, big) = HubStandIn::one_shard("org/through", "serve through", SHARD);
    let commit = commit_hash("serve through on the hub");
    let config = b"{\"model\": \"org/through\"}\n".to_vec();
    let downloads = [
        Download {
            repo_type: "model",
            repo_id: "org/through",
            revision: "main",
            filename: CONFIG,
            bytes: &config,
        },
        Download {
            repo_type: "model",
            repo_id: "org/through",
            revision: "main",
            filename: WEIGHTS,
            bytes: &big,
        },
    ];
    let cli = t
        .hfcs()
        .cache_dir(&t.cache("server"))
        .env("HF_ENDPOINT", hub.url());
    let server = Server::start_with(cli, &["--fallback", "hf-hub", "--write-through"]);
    let names = ["c1", "c2", "c3", "c4", "c5", "c6"];
    for cache in clients_at_once(&t, &server.url, &names) {
        check_cache(&cache, &downloads);
    }
    let etag = sha256_hex(&big);
    let sent = hub.bytes_of(&etag);
    eprintln!("the Hub sent {sent} bytes of the {SHARD}-byte shard to six clients");
    assert!(
        sent as f64 <= 1.2 * SHARD as f64,
        "the Hub sent {sent} bytes of a {SHARD}-byte shard"
    );
    // The bucket holds what `pull --write-through` writes for the same repo, object for object.
    let through = objects(&t, &t.prefix);
    let pulled = format!("{}-pull", t.prefix);
    t.hfcs()
        .cache_dir(&t.cache("puller"))
        .env("HF_ENDPOINT", hub.url())
        .args([
            "pull",
            "org/through",
            "--fallback",
            "hf-hub",
            "--write-through",
        ])
        .args(["--remote", &format!("s3://{}/{pulled}", t.garage().bucket)])
        .run()
        .success();
    assert_eq!(through, objects(&t, &pulled));
    let keys: Vec<&str> = through.iter().map(|(k, _, _)| k.as_str()).collect();
    for key in [
        format!("blobs/{etag}"),
        format!("manifests/org__through@{commit}.json"),
        format!("trees/org__through@{commit}.json"),
        "refs/org__through/main".to_string(),
    ] {
        assert!(keys.contains(&key.as_str()), "{key} missing: {keys:?}");
    }
    // A seventh client is served from the bucket: the Hub sends nothing more.
    let (before, bytes) = (hub.downloads(), hub.bytes_of(&etag));
    let seventh = clients_at_once(&t, &server.url, &["c7"]);
    check_cache(&seventh[0], &downloads);
    assert_eq!((hub.downloads(), hub.bytes_of(&etag)), (before, bytes));
    server.stop().success();
}

#[test]
fn clients_asking_while_a_slow_fetch_is_under_way_follow_it_and_cost_the_hub_nothing_more() {
    // A shard that takes the Hub 16 s to send: far longer than a request waits for a revision
    // to land, so each client streams the shard as the one fetch writes it.
    const SLOW: usize = 16 * 1024 * 1024;
    let t = Sandbox::new("serve_through_slow");
    let (hub, big) = HubStandIn::one_shard("org/through", "serve through slowly", SLOW);
    hub.pace(1024 * 1024);
    let cli = t
        .hfcs()
        .cache_dir(&t.cache("server"))
        .env("HF_ENDPOINT", hub.url());
    let server = Server::start_with(cli, &["--fallback", "hf-hub", "--write-through"]);
    let started = std::time::Instant::now();
    let caches = clients_at_once(&t, &server.url, &["c1", "c2", "c3", "c4"]);
    eprintln!("four clients done in {:?}", started.elapsed());
    let etag = sha256_hex(&big);
    for cache in &caches {
        let blob = cache.join("models--org--through").join("blobs").join(&etag);
        assert_eq!(std::fs::read(&blob).unwrap(), big, "{}", blob.display());
    }
    let sent = hub.bytes_of(&etag);
    assert!(
        sent as f64 <= 1.2 * SLOW as f64,
        "the Hub sent {sent} bytes of a {SLOW}-byte shard to four clients"
    );
    let out = server.stop().success();
    // The access log names where each response's bytes came from.
    let followed = out.stderr.lines().filter(|l| l.ends_with(" read-through"));
    assert!(
        followed.count() >= 1,
        "no response followed the fetch: {out}"
    );
}

#[test]
fn the_read_through_fetch_keeps_to_serves_limit_rate() {
    // 20 MiB at 4 MiB/s: the fetch a HEAD starts lands the shard in the bucket after 5 s at the
    // earliest, although the Hub stand-in sends it at once (uncapped, it lands within the 2 s
    // the fleet's lease takes to settle, and a little more).
    const CAPPED: usize = 20 * 1024 * 1024;
    let t = Sandbox::new("serve_through_rate");
    let (hub, big) = HubStandIn::one_shard("org/through", "serve through capped", CAPPED);
    let cli = t
        .hfcs()
        .cache_dir(&t.cache("server"))
        .env("HF_ENDPOINT", hub.url());
    let args = [
        "--fallback",
        "hf-hub",
        "--write-through",
        "--limit-rate",
        "4M",
    ];
    let server = Server::start_with(cli, &args);
    let key = format!("blobs/{}", sha256_hex(&big));
    let started = std::time::Instant::now();
    let head = raw(
        server.addr(),
        "HEAD",
        &format!("/org/through/resolve/main/{WEIGHTS}"),
        &[],
    );
    assert_eq!(head.status, 200, "{head:?}");
    let deadline = started + std::time::Duration::from_secs(60);
    while !t.bucket().keys().contains(&key) {
        assert!(std::time::Instant::now() < deadline, "{key} never landed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let took = started.elapsed().as_secs_f64();
    assert!(
        took >= 4.2,
        "the shard landed after {took:.2} s: faster than 4 MiB/s"
    );
    server.stop().success();
}

#[test]
fn a_gated_repo_is_not_written_through_unless_the_team_allows_it() {
    let t = Sandbox::new("serve_through_gated");
    let hub = HubStandIn::gated_config("gated through", "hf_server_token");
    let start = |t: &Sandbox| {
        let cli = t
            .hfcs()
            .cache_dir(&t.cache("server"))
            .env("HF_ENDPOINT", hub.url())
            .env("HF_TOKEN", "hf_server_token");
        Server::start_with(cli, &["--fallback", "hf-hub", "--write-through"])
    };
    let args = ["org/gated", "model", "main", CONFIG];
    let server = start(&t);
    let out = hf_client(&server.url, &t.cache("a"), (None, false), DOWNLOAD, &args);
    assert!(out.stdout.contains("GatedRepoError"), "{out:?}");
    server.stop().success();
    assert!(t.bucket().keys().is_empty(), "{:?}", t.bucket().keys());
    let yaml = format!(
        "{}  allow_gated: true\n",
        t.garage_yaml(crate::common::Key::ReadWrite)
    );
    t.write_config(&yaml);
    let server = start(&t);
    let out = hf_client(&server.url, &t.cache("b"), (None, false), DOWNLOAD, &args);
    assert_eq!(std::fs::read(out.ok()).unwrap(), b"{}\n");
    server.stop().success();
    let keys = t.bucket().keys();
    assert!(
        keys.iter().any(|k| k == "refs/org__gated/main"),
        "with team.allow_gated the gated repo is written through: {keys:?}"
    );
}
