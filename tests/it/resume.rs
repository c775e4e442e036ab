//! Resuming partial downloads: a pull killed half-way through a shard, from the bucket and from
//! the Hub, is finished by the next pull moving little more than the rest; a partial a killed
//! `hf_hub_download` left is resumed; a damaged one ends up as a correct blob; two pulls racing
//! for one partial both end well; status, prune and rm see partials for what they are.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::cache::{commit_hash, pseudo_random, sha256_hex, CacheBuilder};
use crate::common::fault_proxy::{Fault, FaultProxy, HoldAt, Rule, Schedule, Target};
use crate::common::hub::HubStandIn;
use crate::common::python::python;
use crate::common::resilience::{config_via, run_until_held, small_parts, Ended};
use crate::common::{check_cache, count, Cli, Key, Sandbox};

const MIB: usize = 1024 * 1024;
/// The shard: eight parts of 5 MiB.
const SHARD: usize = 40 * MIB;

/// A sandbox whose bucket holds `org/big` (a config and [`SHARD`] bytes of weights), and the
/// weights.
fn pushed(name: &str) -> (Sandbox, Vec<u8>) {
    let t = Sandbox::new(name);
    let src = t.cache("src");
    let commit = commit_hash(&format!("{name} big"));
    let big = pseudo_random(&format!("{name} weights"), SHARD);
    CacheBuilder::new(&src)
        .repo("org/big")
        .rev(&commit)
        .file("config.json", b"{\"model\": \"org/big\"}\n")
        .lfs_file("model.safetensors", &big)
        .ref_("main", &commit);
    small_parts(t.hfcs().cache_dir(&src))
        .arg("push")
        .run()
        .success();
    (t, big)
}

fn blobs_dir(cache: &Path, repo_id: &str) -> PathBuf {
    cache
        .join(format!("models--{}", repo_id.replace('/', "--")))
        .join("blobs")
}

/// The partial downloads in a `blobs/` folder, with their sizes.
fn partials(blobs: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(blobs) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, u64)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".incomplete"))
        .map(|e| (e.path(), e.metadata().map_or(0, |m| m.len())))
        .collect();
    found.sort();
    found
}

/// Body bytes of blob `etag` the proxy passed to the client.
fn blob_bytes(proxy: &FaultProxy, etag: &str) -> u64 {
    proxy
        .log()
        .iter()
        .filter(|s| s.is_blob_get() && s.target.contains(etag))
        .map(|s| s.body_bytes)
        .sum()
}

#[track_caller]
fn assert_blob(cache: &Path, repo_id: &str, bytes: &[u8]) {
    let blobs = blobs_dir(cache, repo_id);
    assert_eq!(
        std::fs::read(blobs.join(sha256_hex(bytes))).expect("the blob"),
        bytes,
        "the blob's bytes"
    );
    assert_eq!(partials(&blobs), vec![], "no partial download is left");
}

#[test]
fn a_pull_killed_half_way_through_a_shard_resumes_it_from_the_bucket() {
    let (t, big) = pushed("resume_bucket");
    let etag = sha256_hex(&big);
    let proxy = FaultProxy::new(&[]);
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let dst = t.cache("dst");
    // One part at a time: when the fifth of the eight parts is asked for, four are written.
    let pull = || {
        small_parts(t.bare().config(&config)).cache_dir(&dst).args([
            "pull",
            "org/big",
            "--workers",
            "1",
        ])
    };
    let Ended::Killed(_) = run_until_held(pull(), &proxy, HoldAt::Nth(Target::BlobGet, 5)) else {
        panic!("the pull finished before the fifth part");
    };
    let kept = partials(&blobs_dir(&dst, "org/big"));
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        kept[0].1,
        (SHARD / 2) as u64,
        "four parts of 5 MiB were written"
    );
    assert!(big.starts_with(&std::fs::read(&kept[0].0).unwrap()));

    proxy.reset(&[]);
    let out = pull().json().run().success();
    let s = out.json();
    let again = blob_bytes(&proxy, &etag);
    assert!(
        again <= SHARD as u64 * 6 / 10,
        "{again} bytes of the {SHARD}-byte shard crossed the wire again\n{out}"
    );
    assert_eq!(count(&s, "bytes_resumed"), (SHARD / 2) as u64, "{out}");
    assert_eq!(count(&s, "downloaded"), 2, "{out}");
    assert_blob(&dst, "org/big", &big);
    t.hfcs().cache_dir(&dst).arg("verify").run().success();
    check_cache(&dst, &[]);
}

#[test]
fn a_damaged_partial_is_discarded_and_the_blob_fetched_whole_once() {
    let (t, big) = pushed("resume_damaged");
    let etag = sha256_hex(&big);
    let dst = t.cache("dst");
    let blobs = blobs_dir(&dst, "org/big");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut damaged = big[..SHARD / 2].to_vec();
    damaged[1234] ^= 0xff;
    std::fs::write(blobs.join(format!("{etag}.0badf00d.incomplete")), &damaged).unwrap();

    let out = small_parts(t.hfcs().json().cache_dir(&dst))
        .args(["pull", "org/big"])
        .run()
        .success()
        .stderr_has("did not verify");
    let s = out.json();
    assert_eq!(count(&s, "bytes_resumed"), 0, "{out}");
    assert!(count(&s, "bytes_transferred") >= SHARD as u64, "{out}");
    assert_blob(&dst, "org/big", &big);
    check_cache(&dst, &[]);
}

#[test]
fn two_pulls_racing_for_one_partial_both_end_with_the_right_blob() {
    let (t, big) = pushed("resume_race");
    let etag = sha256_hex(&big);
    let dst = t.cache("dst");
    let blobs = blobs_dir(&dst, "org/big");
    std::fs::create_dir_all(&blobs).unwrap();
    // Two partials, as two killed runs leave them: the longer one is resumed.
    std::fs::write(blobs.join(format!("{etag}.incomplete")), &big[..SHARD / 4]).unwrap();
    std::fs::write(
        blobs.join(format!("{etag}.0a1b2c3d.incomplete")),
        &big[..SHARD / 2],
    )
    .unwrap();

    let pull = || {
        small_parts(t.hfcs().json().cache_dir(&dst))
            .args(["pull", "org/big"])
            .start()
    };
    let (a, b) = (pull(), pull());
    let (a, b) = (a.wait().success(), b.wait().success());
    let resumed = count(&a.json(), "bytes_resumed") + count(&b.json(), "bytes_resumed");
    assert_eq!(resumed, (SHARD / 2) as u64, "{a}\n{b}");
    let transferred = count(&a.json(), "bytes_transferred") + count(&b.json(), "bytes_transferred");
    assert!(
        transferred < SHARD as u64,
        "the shard was fetched more than once in all: {transferred}\n{a}\n{b}"
    );
    assert_blob(&dst, "org/big", &big);
    check_cache(&dst, &[]);
}

#[test]
fn status_lists_partials_prune_keeps_fresh_ones_and_rm_takes_a_repos() {
    let (t, big) = pushed("resume_manage");
    let etag = sha256_hex(&big);
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/big"])
        .run()
        .success();
    let blobs = blobs_dir(&dst, "org/big");
    let partial = blobs.join(format!("{}.12345678.incomplete", "e".repeat(64)));
    std::fs::write(&partial, b"the start of a blob").unwrap();

    let s = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .arg("status")
        .run()
        .success()
        .json();
    let files = s["partials"]["files"].as_array().unwrap().clone();
    assert_eq!(files.len(), 1, "{s}");
    assert_eq!(files[0]["repo"], "model/org/big", "{s}");
    assert_eq!(files[0]["bytes"], 19, "{s}");
    assert_eq!(files[0]["stale"], false, "{s}");
    assert!(files[0]["age_seconds"].as_u64().unwrap() < 60, "{s}");
    assert_eq!(s["partials"]["stale_after_seconds"], 86400, "{s}");
    let out = t.hfcs().cache_dir(&dst).arg("status").run().success();
    assert!(
        out.stdout.contains("1 partial download") && out.stdout.contains("model/org/big (19 B"),
        "{out}"
    );

    // A fresh partial is what a pull resumes: prune leaves it, unless configured otherwise.
    t.hfcs()
        .cache_dir(&dst)
        .args(["prune", "--yes"])
        .run()
        .success();
    assert!(partial.exists());
    let short = t.write_work_file(
        "short.yaml",
        &format!(
            "{}cache:\n  partial_max_age: 1s\n",
            t.garage_yaml(Key::ReadWrite)
        ),
    );
    std::thread::sleep(Duration::from_millis(1100));
    t.bare()
        .config(&short)
        .cache_dir(&dst)
        .args(["prune", "--yes"])
        .run()
        .success();
    assert!(
        !partial.exists(),
        "untouched for longer than partial_max_age"
    );
    assert!(blobs.join(&etag).exists());

    // rm of the repo takes its partials, whatever their age.
    std::fs::write(&partial, b"again").unwrap();
    t.hfcs()
        .cache_dir(&dst)
        .args(["rm", "org/big", "--yes"])
        .run()
        .success();
    assert!(!blobs.exists());

    let bad = t.write_work_file("bad.yaml", "cache:\n  partial_max_age: soon\n");
    t.bare()
        .config(&bad)
        .cache_dir(&dst)
        .arg("status")
        .run()
        .code(2)
        .stderr_has("cache.partial_max_age");
}

// ---------------------------------------------------------------------------------------------
// From the Hub.

const HUB_SHARD: usize = 24 * MIB;

/// The Hub stand-in serving `org/hub` (a config and [`HUB_SHARD`] bytes of LFS weights), the
/// weights, and a sandbox with an empty bucket prefix.
fn on_the_hub(name: &str) -> (Sandbox, HubStandIn, Vec<u8>) {
    let (hub, big) = HubStandIn::one_shard("org/hub", name, HUB_SHARD);
    (Sandbox::new(name), hub, big)
}

fn pull_from_hub(t: &Sandbox, hub: &HubStandIn, dst: &Path) -> Cli {
    t.hfcs().cache_dir(dst).env("HF_ENDPOINT", hub.url()).args([
        "pull",
        "org/hub",
        "--fallback",
        "hf-hub",
    ])
}

/// Waits until `blobs` holds one partial download, of at least `bytes`, while `running` says the
/// writer is still at it. Any other file of the repo must have landed first: on a loaded machine
/// a small file may still be on its way when the big one is half-way.
fn wait_for_partial(blobs: &Path, bytes: u64, mut running: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !matches!(partials(blobs).as_slice(), [(_, len)] if *len >= bytes) {
        assert!(
            running(),
            "the download ended before it wrote {bytes} bytes"
        );
        assert!(
            Instant::now() < deadline,
            "no partial of {bytes} bytes appeared"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_pull_killed_half_way_through_a_shard_resumes_it_from_the_hub() {
    let (t, hub, big) = on_the_hub("resume_hub");
    let etag = sha256_hex(&big);
    let dst = t.cache("dst");
    let blobs = blobs_dir(&dst, "org/hub");
    // One streamed GET; its body goes silent half-way, as a dead link does.
    hub.stall(&etag, HUB_SHARD / 2);
    let one_stream = |cli: Cli| cli.env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "1GiB");
    let mut child = one_stream(pull_from_hub(&t, &hub, &dst)).spawn();
    wait_for_partial(&blobs, (HUB_SHARD / 2 - MIB) as u64, || {
        child.try_wait().unwrap().is_none()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = partials(&blobs);
    assert_eq!(kept.len(), 1, "{kept:?}");

    hub.unstall();
    let before = hub.bytes_of(&etag);
    let out = one_stream(pull_from_hub(&t, &hub, &dst))
        .json()
        .run()
        .success();
    let again = hub.bytes_of(&etag) - before;
    assert!(
        again <= HUB_SHARD as u64 * 6 / 10,
        "{again} bytes of the {HUB_SHARD}-byte shard came from the Hub again\n{out}"
    );
    assert_eq!(count(&out.json(), "bytes_resumed"), kept[0].1, "{out}");
    assert!(
        hub.seen()
            .iter()
            .any(|s| s.status == 206 && s.target.contains(&etag)),
        "the rest was asked for with a Range: {:#?}",
        hub.seen()
    );
    assert_blob(&dst, "org/hub", &big);
    check_cache(&dst, &[]);
}

#[test]
fn a_partial_a_killed_hf_hub_download_left_is_resumed() {
    let (t, hub, big) = on_the_hub("resume_hf_hub_download");
    let etag = sha256_hex(&big);
    let dst = t.cache("dst");
    let blobs = blobs_dir(&dst, "org/hub");
    hub.stall(&etag, HUB_SHARD / 2);
    let script = "import sys\nfrom huggingface_hub import hf_hub_download\n\
                  hf_hub_download('org/hub', 'model.safetensors', cache_dir=sys.argv[1])\n";
    let mut child = Command::new(python())
        .args(["-c", script])
        .arg(&dst)
        .env("HF_ENDPOINT", hub.url())
        .env("HF_HUB_DISABLE_XET", "1")
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_ETAG_TIMEOUT", "30")
        .env("HF_HUB_DOWNLOAD_TIMEOUT", "60")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run python");
    wait_for_partial(&blobs, MIB as u64, || child.try_wait().unwrap().is_none());
    // What it has received so far reaches the file: wait for the size to settle.
    let mut last = 0;
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = partials(&blobs).first().map_or(0, |p| p.1);
        if now == last {
            break;
        }
        last = now;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = partials(&blobs);
    assert_eq!(kept.len(), 1, "{kept:?}");
    let name = kept[0]
        .0
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with(&format!("{etag}.")) && name.ends_with(".incomplete"),
        "huggingface_hub's partial: {name}"
    );
    assert!(big.starts_with(&std::fs::read(&kept[0].0).unwrap()));

    hub.unstall();
    let before = hub.bytes_of(&etag);
    let out = pull_from_hub(&t, &hub, &dst).json().run().success();
    assert_eq!(count(&out.json(), "bytes_resumed"), kept[0].1, "{out}");
    let again = hub.bytes_of(&etag) - before;
    assert_eq!(again, HUB_SHARD as u64 - kept[0].1, "only the rest: {out}");
    assert_blob(&dst, "org/hub", &big);
    check_cache(&dst, &[]);
}

#[test]
fn a_blob_the_bucket_keeps_failing_to_serve_is_resumed_from_the_hub() {
    let (t, hub, big) = on_the_hub("resume_across_sources");
    let etag = sha256_hex(&big);
    // The bucket gets the revision the Hub has.
    let seed = t.cache("seed");
    pull_from_hub(&t, &hub, &seed)
        .arg("--write-through")
        .run()
        .success();
    let hub_before = hub.bytes_of(&etag);
    // Every body of the shard from the bucket breaks off half-way: what came stays, and the
    // Hub is asked only for the rest.
    let proxy = FaultProxy::new(&[Rule::new(Fault::Reset, Target::BlobGet, Schedule::Always)]);
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let dst = t.cache("dst");
    let out = t
        .bare()
        .config(&config)
        .json()
        .cache_dir(&dst)
        .env("HF_ENDPOINT", hub.url())
        .env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "1GiB")
        .env("HF_CACHE_SYNC_TIMEOUT", "1")
        .args(["pull", "org/hub", "--fallback", "hf-hub"])
        .run()
        .success();
    let from_hub = hub.bytes_of(&etag) - hub_before;
    let from_bucket = blob_bytes(&proxy, &etag);
    assert!(
        from_bucket >= (HUB_SHARD / 2) as u64,
        "{from_bucket}\n{out}"
    );
    assert!(
        from_hub <= (HUB_SHARD / 2) as u64,
        "the Hub sent {from_hub} bytes though the bucket had sent {from_bucket}\n{out}"
    );
    // Both blobs ended up fetched from the Hub (every body from the bucket breaks off), the
    // shard after what the bucket had sent.
    assert_eq!(count(&out.json(), "from_hub"), 2, "{out}");
    assert!(
        count(&out.json(), "bytes_resumed") >= (HUB_SHARD / 2) as u64,
        "{out}"
    );
    out.stderr_has("fetching it from the Hub");
    assert_blob(&dst, "org/hub", &big);
    check_cache(&dst, &[]);
}
