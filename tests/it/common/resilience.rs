//! Shared by the fault and interruption tests: a multi-revision fixture with a blob big enough
//! for a multipart upload, the binary pointed at a proxy, and the checks a failed or killed run
//! must pass (a consistent bucket, a valid local cache).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::cache::{commit_hash, git_sha1_hex, sha256_hex, CacheBuilder, CacheView};
use super::python::{check_cache, Download};
use super::{Bucket, Cli, Key, Sandbox};

/// Multipart threshold and part size the fixture's big blob is moved with: S3's minimum part.
pub const PART: &str = "5MiB";
/// The big blob: three parts of [`PART`] (the last one short).
pub const BIG_SIZE: usize = 11 * 1024 * 1024 + 4321;

pub use super::seeded::noise;

/// One file of a revision.
#[derive(Clone)]
pub struct File {
    pub path: &'static str,
    pub bytes: Vec<u8>,
    pub lfs: bool,
    etag: String,
}

impl File {
    /// A regular (git) file, or an LFS file when `lfs`.
    pub fn new(path: &'static str, bytes: Vec<u8>, lfs: bool) -> File {
        let etag = if lfs {
            sha256_hex(&bytes)
        } else {
            git_sha1_hex(&bytes)
        };
        File {
            path,
            bytes,
            lfs,
            etag,
        }
    }

    pub fn etag(&self) -> String {
        self.etag.clone()
    }
}

/// One revision and the refs pointing at it.
pub struct Rev {
    pub repo_type: &'static str,
    pub repo_id: &'static str,
    pub commit: String,
    pub refs: Vec<&'static str>,
    pub files: Vec<File>,
}

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
pub struct Sharded {
    pub revs: Vec<Rev>,
}

impl Default for Sharded {
    fn default() -> Self {
        Sharded::new()
    }
}

impl Sharded {
    pub fn new() -> Sharded {
        let big = File::new("model.safetensors", noise(1, BIG_SIZE), true);
        let config = |v: &str| {
            let text = format!("{{\"model\": \"org/sharded\", \"version\": \"{v}\"}}\n");
            File::new("config.json", text.into_bytes(), false)
        };
        let tokenizer = File::new(
            "tokenizer.json",
            b"{\"tokenizer\": \"org/sharded\"}\n".to_vec(),
            false,
        );
        let extra = File::new("extra.bin", noise(2, 300 * 1024), true);
        let model = |seed: &str, refs: Vec<&'static str>, files: Vec<File>| Rev {
            repo_type: "model",
            repo_id: "org/sharded",
            commit: commit_hash(&format!("org/sharded {seed}")),
            refs,
            files,
        };
        Sharded {
            revs: vec![
                model(
                    "a",
                    vec!["v1.0"],
                    vec![config("a"), big.clone(), tokenizer.clone()],
                ),
                model(
                    "b",
                    vec!["main"],
                    vec![config("b"), big.clone(), tokenizer, extra.clone()],
                ),
                model("c", vec!["pr/1"], vec![config("c"), big, extra]),
                Rev {
                    repo_type: "dataset",
                    repo_id: "org/data",
                    commit: commit_hash("org/data d"),
                    refs: vec!["main"],
                    files: vec![
                        File::new("README.md", b"# org/data\n".to_vec(), false),
                        File::new("data/train.parquet", noise(3, 200 * 1024), true),
                    ],
                },
            ],
        }
    }

    /// Writes the repos into `cache` as huggingface_hub lays them out.
    pub fn write(&self, cache: &Path) {
        for rev in &self.revs {
            let mut b = CacheBuilder::new(cache)
                .repo_of_type(rev.repo_type, rev.repo_id)
                .rev(&rev.commit);
            for f in &rev.files {
                b = if f.lfs {
                    b.lfs_file(f.path, &f.bytes)
                } else {
                    b.file(f.path, &f.bytes)
                };
            }
            for r in &rev.refs {
                b = b.ref_(r, &rev.commit);
            }
        }
    }

    /// Every distinct blob name.
    pub fn etags(&self) -> BTreeSet<String> {
        self.revs
            .iter()
            .flat_map(|r| r.files.iter().map(File::etag))
            .collect()
    }

    /// Bytes of all distinct blobs.
    pub fn total_bytes(&self) -> u64 {
        let mut seen = BTreeMap::new();
        for f in self.revs.iter().flat_map(|r| &r.files) {
            seen.insert(f.etag(), f.bytes.len() as u64);
        }
        seen.values().sum()
    }

    /// Every remote key a complete push writes, relative to the prefix.
    pub fn keys(&self) -> BTreeSet<String> {
        let mut keys: BTreeSet<String> = self.etags().iter().map(|e| super::blob_key(e)).collect();
        for rev in &self.revs {
            keys.insert(super::manifest_key(rev.repo_id, &rev.commit));
            for r in &rev.refs {
                keys.insert(super::ref_key(rev.repo_id, r));
            }
        }
        keys
    }

    /// The arguments of the pulls that bring every revision over, one command each.
    pub fn pulls(&self) -> Vec<Vec<String>> {
        self.revs
            .iter()
            .map(|rev| {
                let mut args = vec!["pull".to_string(), rev.repo_id.to_string()];
                args.extend(["-r".to_string(), rev.refs[0].to_string()]);
                if rev.repo_type != "model" {
                    args.extend(["--repo-type".to_string(), rev.repo_type.to_string()]);
                }
                args
            })
            .collect()
    }

    /// Checks `cache` holds every revision, linked as huggingface_hub links them, with its refs,
    /// and that huggingface_hub loads each file offline through its ref.
    #[track_caller]
    pub fn assert_pulled(&self, cache: &Path) {
        let mut downloads = Vec::new();
        for rev in &self.revs {
            let view = CacheView::new(cache, rev.repo_type, rev.repo_id);
            for f in &rev.files {
                view.assert_linked_file(&rev.commit, f.path, &f.etag(), &f.bytes);
                downloads.push(Download {
                    repo_type: rev.repo_type,
                    repo_id: rev.repo_id,
                    revision: rev.refs[0],
                    filename: f.path,
                    bytes: &f.bytes,
                });
            }
            for r in &rev.refs {
                assert_eq!(
                    view.ref_(r).as_deref(),
                    Some(rev.commit.as_str()),
                    "refs/{r} of {}",
                    rev.repo_id
                );
            }
        }
        check_cache(cache, &downloads);
    }
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
