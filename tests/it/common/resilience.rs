//! Shared by the fault and interruption tests: multi-revision repos with a blob big enough for a
//! multipart upload, the binary pointed at a proxy, and the checks a failed or killed run
//! must pass (a consistent bucket, a valid local cache).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cache::{commit_hash, git_sha1_hex, sha256_hex};
use super::fault_proxy::{FaultProxy, HoldAt};
use super::spec::RepoSpec;
use super::{Bucket, Cli, Key, Sandbox};

/// Multipart threshold and part size the fixture's big blob is moved with: S3's minimum part.
pub const PART: &str = "5MiB";
/// The big blob: three parts of [`PART`] (the last one short).
pub const BIG_SIZE: usize = 11 * 1024 * 1024 + 4321;

pub use super::seeded::noise;

/// A model with three revisions sharing an 11 MiB shard (moved in three parts) and a dataset:
///
/// ```text
/// model org/sharded  rev a (v1.0): config.json (a), model.safetensors (big), tokenizer.json
///                    rev b (main): config.json (b), model.safetensors (big), tokenizer.json, extra.bin
///                    rev c (pr/1): config.json (c), model.safetensors (big), extra.bin
/// dataset org/data   rev d (main): README.md, data/train.parquet
/// ```
///
/// Eight distinct blobs, four manifests, four refs.
pub fn sharded() -> [RepoSpec; 2] {
    let big = noise(1, BIG_SIZE);
    let config = |v: &str| format!("{{\"model\": \"org/sharded\", \"version\": \"{v}\"}}\n");
    let tokenizer = b"{\"tokenizer\": \"org/sharded\"}\n";
    let extra = noise(2, 300 * 1024);
    let commit = |seed: &str| commit_hash(&format!("org/sharded {seed}"));
    let model = RepoSpec::new("org/sharded")
        .rev(&commit("a"), &["v1.0"])
        .file("config.json", config("a").as_bytes())
        .lfs("model.safetensors", &big)
        .file("tokenizer.json", tokenizer)
        .rev(&commit("b"), &["main"])
        .file("config.json", config("b").as_bytes())
        .lfs("model.safetensors", &big)
        .file("tokenizer.json", tokenizer)
        .lfs("extra.bin", &extra)
        .rev(&commit("c"), &["pr/1"])
        .file("config.json", config("c").as_bytes())
        .lfs("model.safetensors", &big)
        .lfs("extra.bin", &extra);
    let dataset = RepoSpec::dataset("org/data")
        .rev(&commit_hash("org/data d"), &["main"])
        .file("README.md", b"# org/data\n")
        .lfs("data/train.parquet", &noise(3, 200 * 1024));
    [model, dataset]
}

/// Transfer settings that send the fixture's big blob in parts, and a short timeout so a stall
/// costs a second, not minutes.
pub fn small_parts(cli: Cli) -> Cli {
    cli.env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", PART)
        .env("HF_CACHE_SYNC_PART_SIZE", PART)
        .env("HF_CACHE_SYNC_TIMEOUT", "1")
}

/// A config file like the sandbox's, but with `endpoint` (the proxy's URL) as storage.endpoint
/// and `prefix` as team.prefix. Returns its path.
pub fn config_via(t: &Sandbox, name: &str, endpoint: &str, prefix: &str) -> PathBuf {
    let g = t.garage();
    let yaml = t
        .garage_yaml(Key::ReadWrite)
        .replace(
            &format!("endpoint: {}", g.endpoint),
            &format!("endpoint: {endpoint}"),
        )
        .replace(
            &format!("prefix: {}", t.prefix),
            &format!("prefix: {prefix}"),
        );
    assert!(yaml.contains(endpoint) && yaml.contains(prefix), "{yaml}");
    let path = t.path(name);
    std::fs::write(&path, yaml).expect("write proxied config");
    path
}

/// What a walk of the bucket found.
#[derive(Debug, Default)]
pub struct BucketState {
    /// Blob names present (each verified against its content).
    pub blobs: BTreeSet<String>,
    pub manifests: usize,
    pub refs: usize,
    /// Bucket locks: a run killed outright leaves its own behind.
    pub locks: usize,
}

/// Blobs whose bytes a walk has hashed, by name, S3 ETag and size: an object listed with the
/// same MD5-based ETag holds the same bytes, so later walks need not read it again.
#[derive(Debug, Default)]
pub struct Hashed(BTreeSet<(String, String, u64)>);

/// Walks every key under the bucket's prefix and fails unless what a reader relies on holds:
/// every blob's bytes match its name, every manifest's blobs are there with the stated sizes,
/// every ref names a commit whose manifest is there.
#[track_caller]
pub fn assert_bucket_consistent(bucket: &Bucket) -> BucketState {
    assert_bucket_consistent_with(bucket, &mut Hashed::default())
}

/// [`assert_bucket_consistent`], reading only blobs `hashed` has not seen yet.
#[track_caller]
pub fn assert_bucket_consistent_with(bucket: &Bucket, hashed: &mut Hashed) -> BucketState {
    let objects = bucket.objects();
    let keys: BTreeSet<String> = objects.iter().map(|o| o.key.clone()).collect();
    let mut state = BucketState::default();
    let mut sizes = BTreeMap::new();
    for o in &objects {
        let Some(etag) = o.key.strip_prefix("blobs/") else {
            continue;
        };
        let id = (etag.to_string(), o.etag.clone(), o.size);
        if o.etag.is_empty() || !hashed.0.contains(&id) {
            let body = bucket
                .get(&o.key)
                .unwrap_or_else(|| panic!("{} was listed but cannot be read", o.key));
            let actual = match etag.len() {
                64 => sha256_hex(&body),
                40 => git_sha1_hex(&body),
                _ => panic!("{} is not a blob name", o.key),
            };
            assert_eq!(
                actual, etag,
                "{} holds bytes that do not match its name",
                o.key
            );
            assert_eq!(
                body.len() as u64,
                o.size,
                "{} is not the size listed",
                o.key
            );
            hashed.0.insert(id);
        }
        sizes.insert(etag.to_string(), o.size);
        state.blobs.insert(etag.to_string());
    }
    for key in &keys {
        if let Some(rest) = key.strip_prefix("manifests/") {
            let text = bucket.get_text(key);
            let m: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{key} is not JSON: {e}\n{text}"));
            for f in m["files"].as_array().expect("manifest files") {
                let blob = f["blob"].as_str().expect("blob name");
                let size = f["size"].as_u64().expect("size");
                assert_eq!(
                    sizes.get(blob),
                    Some(&size),
                    "manifest {key} names blob {blob} ({size} bytes), which the bucket lacks \
                     (keys: {keys:?})"
                );
            }
            assert!(rest.ends_with(".json"), "manifest key {key}");
            state.manifests += 1;
        } else if let Some(rest) = key.strip_prefix("refs/") {
            let (repo, _ref_name) = rest.split_once('/').expect("refs/<repo>/<ref>");
            let commit = bucket.get_text(key);
            assert!(
                keys.contains(&format!("manifests/{repo}@{commit}.json")),
                "ref {key} names {commit}, which has no manifest (keys: {keys:?})"
            );
            state.refs += 1;
        } else if key.starts_with("locks/") {
            state.locks += 1;
        } else {
            assert!(key.starts_with("blobs/"), "unexpected key {key}");
        }
    }
    state
}

/// Every file in `cache` named like a blob (40 or 64 hex) holds bytes matching that name.
/// Temporary files a killed run left beside them are allowed: they never carry a blob name.
#[track_caller]
pub fn assert_no_wrong_blob(cache: &Path) {
    for rel in super::files_under(cache) {
        let name = rel.rsplit('/').next().unwrap_or_default();
        // A partial download a failed run kept for the next one: never taken for a blob.
        if name.ends_with(".incomplete") {
            continue;
        }
        let is_blob_name = (name.len() == 40 || name.len() == 64)
            && name
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !is_blob_name || !rel.contains("/blobs/") {
            continue;
        }
        let path = cache.join(&rel);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let actual = if name.len() == 64 {
            sha256_hex(&bytes)
        } else {
            git_sha1_hex(&bytes)
        };
        assert_eq!(
            actual,
            name,
            "{} holds bytes that do not match its name",
            path.display()
        );
    }
}

/// Removes the partial downloads a failed or interrupted run kept in `cache`, after checking
/// each is the start of the blob its name gives (one of `blobs`). Returns how many there were.
#[track_caller]
pub fn take_kept_partials(cache: &Path, blobs: &BTreeMap<&str, &[u8]>) -> usize {
    let mut taken = 0;
    for rel in super::files_under(cache) {
        let name = rel.rsplit('/').next().unwrap_or_default();
        let Some(stem) = name.strip_suffix(".incomplete") else {
            continue;
        };
        let etag = stem.split('.').next().unwrap_or_default();
        let path = cache.join(&rel);
        let bytes = std::fs::read(&path).expect("read the partial");
        let blob = blobs
            .get(etag)
            .unwrap_or_else(|| panic!("{rel}: a partial of no blob of the fixture"));
        assert!(
            blob.starts_with(&bytes),
            "{rel} is not the start of its blob"
        );
        std::fs::remove_file(&path).expect("remove the partial");
        taken += 1;
    }
    taken
}

/// How a run under a hold ended.
pub enum Ended {
    /// Killed while the proxy held request `n`.
    Killed(u64),
    /// Finished on its own before the hold began.
    Finished,
}

/// Runs `cli` until the proxy holds the request `at` picks, then SIGKILLs it there.
pub fn run_until_held(cli: Cli, proxy: &FaultProxy, at: HoldAt) -> Ended {
    let held = proxy.hold(at);
    let mut child = cli.spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    let ended = loop {
        match held.recv_timeout(Duration::from_millis(5)) {
            Ok(n) => {
                child.kill().expect("SIGKILL the binary");
                break Ended::Killed(n);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => unreachable!("the proxy keeps the sender"),
        }
        if child.try_wait().expect("poll the binary").is_some() {
            break Ended::Finished;
        }
        assert!(
            Instant::now() < deadline,
            "the run neither finished nor reached {at:?}"
        );
    };
    let out = child.wait_with_output().expect("reap the binary");
    proxy.release();
    proxy.wait_idle();
    if let Ended::Finished = ended {
        assert!(
            out.status.success(),
            "the run failed before the kill point:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    ended
}
