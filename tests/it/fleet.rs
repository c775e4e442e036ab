//! One Hub fetch per fleet: nodes that pull the same revision with `--write-through` from a
//! bucket that lacks it take a lease in the bucket; one fetches from the Hub and writes each
//! blob through, the others take the blobs from the bucket. A lease whose holder stopped is
//! taken over.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::cache::{commit_hash, sha256_hex};
use crate::common::hub::HubStandIn;
use crate::common::{check_cache, count, Cli, Sandbox};

const SHARD: usize = 48 * 1024 * 1024;

fn write_through_pull(t: &Sandbox, hub: &HubStandIn, dst: &Path) -> Cli {
    t.hfcs()
        .json()
        .cache_dir(dst)
        .env("HF_ENDPOINT", hub.url())
        .args([
            "pull",
            "org/fleet",
            "--fallback",
            "hf-hub",
            "--write-through",
        ])
}

#[track_caller]
fn assert_pulled(cache: &Path, big: &[u8]) {
    let blob = cache.join("models--org--fleet/blobs").join(sha256_hex(big));
    assert_eq!(std::fs::read(blob).expect("the shard"), big);
    check_cache(cache, &[]);
}

#[test]
fn four_nodes_pulling_together_fetch_the_shard_from_the_hub_at_most_twice() {
    let t = Sandbox::new("fleet_four");
    let (hub, big) = HubStandIn::one_shard("org/fleet", "fleet four", SHARD);
    let etag = sha256_hex(&big);
    let caches: Vec<_> = (0..4).map(|i| t.cache(&format!("node{i}"))).collect();
    let runs: Vec<_> = caches
        .iter()
        .map(|dst| write_through_pull(&t, &hub, dst).start())
        .collect();
    let outs: Vec<_> = runs.into_iter().map(|r| r.wait().success()).collect();
    let served = hub.bytes_of(&etag);
    eprintln!("the Hub sent {served} bytes of the {SHARD}-byte shard to four nodes");
    assert!(
        served <= 2 * SHARD as u64,
        "the Hub sent {served} bytes of the {SHARD}-byte shard to four nodes\n{}",
        outs.iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let from_hub: u64 = outs.iter().map(|o| count(&o.json(), "from_hub")).sum();
    assert!(from_hub < 8, "{from_hub} blobs came from the Hub in all");
    assert!(
        outs.iter().any(|o| o
            .stderr
            .contains("another node is fetching it from the Hub")),
        "some node followed another"
    );
    for dst in &caches {
        assert_pulled(dst, &big);
    }
    // The revision is in the bucket, and no lease is left behind.
    let keys = t.bucket().keys();
    assert!(keys.contains(&format!("blobs/{etag}")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.starts_with("leases/")), "{keys:?}");
    // A fifth node finds it all in the bucket.
    let late = t.cache("late");
    let out = write_through_pull(&t, &hub, &late).run().success();
    assert_eq!(count(&out.json(), "from_hub"), 0, "{out}");
    assert_pulled(&late, &big);
}

#[test]
fn a_lease_its_holder_stopped_refreshing_is_taken_over() {
    let t = Sandbox::new("fleet_stale");
    let (hub, big) = HubStandIn::one_shard("org/fleet", "fleet stale", SHARD);
    let etag = sha256_hex(&big);
    // A node took the lease 50 s ago and was killed: fresh for ten seconds more.
    let commit = commit_hash("fleet stale on the hub");
    let now = SystemTime::now();
    let refreshed = humantime::format_rfc3339_seconds(now - Duration::from_secs(50));
    let key = format!("leases/models--org--fleet@{commit}.json");
    let body = format!(
        "{{\"host\": \"node-killed\", \"pid\": 4242, \"command\": \"hf-cache-sync pull\", \
         \"created\": \"{refreshed}\", \"refreshed\": \"{refreshed}\", \"id\": \"dead\"}}\n"
    );
    t.bucket().put(&key, body.as_bytes());

    let dst = t.cache("dst");
    let started = std::time::Instant::now();
    let out = write_through_pull(&t, &hub, &dst)
        .run()
        .success()
        .stderr_has("node-killed")
        .stderr_has("stopped; fetching the rest here");
    assert!(
        started.elapsed() >= Duration::from_secs(8),
        "the lease was fresh for ten more seconds: {:?}",
        started.elapsed()
    );
    assert_eq!(hub.bytes_of(&etag), SHARD as u64, "{out}");
    assert_pulled(&dst, &big);
    assert!(!t.bucket().keys().iter().any(|k| k.starts_with("leases/")));
}
