//! A distributed remote: a 3-node Garage cluster on loopback with replication factor 3, the way
//! teams run it in production, started by the test itself (`scripts/garage.sh cluster`). One node
//! dies in the middle of a push and another in the middle of a pull; both complete, and what they
//! leave behind (the bucket, the cache) is whole.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::cache::{pseudo_random, repo_folder};
use crate::common::cli::Running;
use crate::common::spec::{self, RepoSpec};
use crate::common::{
    assert_cache_tidy, blob_key, commit_hash, count, ref_key, Bucket, Cli, Garage, Sandbox,
};

/// Transfer settings that make every large blob a multipart transfer of several parts.
const TRANSFER_ENV: [(&str, &str); 3] = [
    ("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "8MiB"),
    ("HF_CACHE_SYNC_PART_SIZE", "8MiB"),
    ("HF_CACHE_SYNC_WORKERS", "4"),
];

/// The garage binary where `scripts/garage.sh` looks for it: on `PATH`, else in cargo's bin dir.
fn garage_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("garage"));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    on_path
        .chain(cargo_home.map(|c| c.join("bin/garage")))
        .find(|p| p.is_file())
}

/// A running 3-node cluster in a temp dir; every node is stopped when it is dropped.
struct Cluster {
    dir: tempfile::TempDir,
    env: HashMap<String, String>,
}

impl Cluster {
    #[track_caller]
    fn start() -> Cluster {
        if garage_binary().is_none() {
            panic!(
                "\n\n*** garage is not installed: run scripts/test.sh (it installs Garage 2.5.0) ***\n\
                 (the cluster test starts its own 3-node Garage cluster with scripts/garage.sh)\n\n"
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("hfcs-cluster-")
            .tempdir()
            .expect("create cluster dir");
        let mut cluster = Cluster {
            dir,
            env: HashMap::new(),
        };
        let out = cluster.script(&["cluster"]);
        assert!(
            out.status.success(),
            "scripts/garage.sh cluster failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env_sh = std::fs::read_to_string(cluster.dir.path().join("env.sh"))
            .expect("scripts/garage.sh cluster wrote no env.sh");
        cluster.env = env_sh
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        cluster
    }

    /// Runs `scripts/garage.sh <args> <dir> [extra]`.
    fn script(&self, args: &[&str]) -> std::process::Output {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut cmd = Command::new("bash");
        cmd.arg(root.join("scripts/garage.sh"))
            .arg(args[0])
            .arg(self.dir.path())
            .args(&args[1..])
            .current_dir(root)
            .stdin(std::process::Stdio::null());
        cmd.output().expect("run scripts/garage.sh")
    }

    #[track_caller]
    fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing from the cluster's env.sh"))
    }

    /// The cluster as the test harness describes a server: node 1's S3 endpoint and the test key.
    fn garage(&self) -> Garage {
        let key = self.var("HFCS_CLUSTER_ACCESS_KEY").to_string();
        let secret = self.var("HFCS_CLUSTER_SECRET_KEY").to_string();
        Garage {
            endpoint: self.var("HFCS_CLUSTER_ENDPOINT").to_string(),
            region: self.var("HFCS_CLUSTER_REGION").to_string(),
            bucket: self.var("HFCS_CLUSTER_BUCKET").to_string(),
            ro_access_key: key.clone(),
            ro_secret_key: secret.clone(),
            access_key: key,
            secret_key: secret,
        }
    }

    fn pidfile(&self, node: u32) -> PathBuf {
        PathBuf::from(self.var(&format!("HFCS_CLUSTER_NODE{node}_PIDFILE")))
    }

    #[track_caller]
    fn pid(&self, node: u32) -> u32 {
        let path = self.pidfile(node);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("node {node} has no pid file {}: {e}", path.display()))
            .trim()
            .parse()
            .expect("a pid")
    }

    /// SIGKILLs node `node`, as a crash or a pulled plug would stop it, and returns once the
    /// process is gone.
    #[track_caller]
    fn kill(&self, node: u32) {
        let pid = self.pid(node);
        assert!(alive(pid), "node {node} (pid {pid}) is not running");
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -KILL {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(pid) {
            assert!(
                Instant::now() < deadline,
                "node {node} (pid {pid}) survived SIGKILL"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // The pid may be reused by now: nothing must signal it again.
        std::fs::remove_file(self.pidfile(node)).expect("remove the dead node's pid file");
    }

    /// Starts node `node` again and waits until the whole cluster is healthy.
    #[track_caller]
    fn restart(&self, node: u32) {
        let out = self.script(&["start-node", &node.to_string()]);
        assert!(
            out.status.success(),
            "scripts/garage.sh start-node {node} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = self.script(&["stop"]);
        if !out.status.success() {
            eprintln!(
                "scripts/garage.sh stop failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// Whether process `pid` exists and is not a zombie waiting for a parent to reap it.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X')),
        Err(_) if Path::new("/proc/self/stat").exists() => false,
        Err(_) => Command::new("kill")
            .args(["-0", &pid.to_string()])
            .status()
            .is_ok_and(|s| s.success()),
    }
}

/// ```text
/// model   org/big     a (v1.0): config, 40 MiB + 24 MiB shards, tokenizer, 40 x 256 KiB pieces
///                     b (main): its own config and second shard, 20 pieces of its own; shares
///                               the first shard, the tokenizer and 20 pieces with a
/// dataset org/corpus  c (main): 60 x 128 KiB files
/// ```
/// About 110 MiB in 126 distinct blobs: three multipart uploads and many small ones.
fn fleet() -> [RepoSpec; 2] {
    let shard1 = pseudo_random("cluster shard 1", 40 << 20);
    let tokenizer = pseudo_random("cluster tokenizer", 64 << 10);
    let mut big = RepoSpec::new("org/big");
    for (rev, refs) in [("a", ["v1.0"]), ("b", ["main"])] {
        big = big
            .rev(&commit_hash(rev), &refs)
            .file(
                "config.json",
                format!("{{\"model\": \"org/big\", \"rev\": \"{rev}\"}}\n").as_bytes(),
            )
            .lfs("model-00001-of-00002.safetensors", &shard1)
            .lfs(
                "model-00002-of-00002.safetensors",
                &pseudo_random(&format!("cluster shard 2 {rev}"), 24 << 20),
            )
            .file("tokenizer.json", &tokenizer);
        for i in 0..40 {
            // Revision b changes the second half of the pieces.
            let seed = if i < 20 || rev == "a" { "a" } else { rev };
            big = big.lfs(
                &format!("pieces/piece-{i:03}.bin"),
                &pseudo_random(&format!("cluster piece {i} {seed}"), 256 << 10),
            );
        }
    }
    let mut corpus = RepoSpec::dataset("org/corpus").rev(&commit_hash("c"), &["main"]);
    for i in 0..60 {
        corpus = corpus.file(
            &format!("data/part-{i:03}.jsonl"),
            &pseudo_random(&format!("cluster corpus {i}"), 128 << 10),
        );
    }
    [big, corpus]
}

/// Blob names (40 or 64 hex) finished in a cache's `blobs/` folder of `repo_dir`.
fn finished_blobs(repo_dir: &Path) -> usize {
    std::fs::read_dir(repo_dir.join("blobs"))
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    matches!(name.len(), 40 | 64) && name.bytes().all(|c| c.is_ascii_hexdigit())
                })
                .count()
        })
        .unwrap_or(0)
}

/// `cli` with the transfer settings that keep a run going long enough to kill a node in it.
fn with_transfer_env(mut cli: Cli) -> Cli {
    for (k, v) in TRANSFER_ENV {
        cli = cli.env(k, v);
    }
    // A run waits out requests to the dead node; the default deadline is too short for that.
    cli.timeout(Duration::from_secs(600))
}

/// Waits until `done()` counts a first blob of `run` (out of `total`), kills `node`, checks that
/// `run` is still going with blobs left to move, and returns how many were done by then.
fn kill_node_midway(
    cluster: &Cluster,
    node: u32,
    run: &mut Running,
    what: &str,
    total: usize,
    done: impl Fn() -> usize,
) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    let at_kill = loop {
        let n = done();
        if n > 0 {
            break n;
        }
        assert!(run.is_running(), "{what} finished before any blob was seen");
        assert!(Instant::now() < deadline, "{what} moved nothing in 60s");
        std::thread::sleep(Duration::from_millis(10));
    };
    cluster.kill(node);
    assert!(
        run.is_running(),
        "{what} finished before node {node} was down: the test proves nothing"
    );
    assert!(
        at_kill < total,
        "every blob was moved before node {node} died"
    );
    at_kill
}

#[test]
fn a_node_dies_during_push_and_another_during_pull_and_both_complete() {
    let cluster = Cluster::start();
    let garage = cluster.garage();

    let t = Sandbox::local("cluster");
    t.write_config(&format!(
        "storage:\n  endpoint: {}\n  bucket: {}\n  region: {}\n  access_key: {}\n  secret_key: {}\n\
         team:\n  prefix: {}\n",
        garage.endpoint,
        garage.bucket,
        garage.region,
        garage.access_key,
        garage.secret_key,
        t.prefix
    ));
    let bucket = Bucket::new(&garage, &t.prefix);
    let src = t.cache("src");
    let fleet = fleet();
    spec::write_all(&fleet, &src);
    let blobs = spec::blobs(&fleet);
    let total_blobs = blobs.len();

    // Push; node 3 dies once the first blobs are in the bucket.
    let mut push = with_transfer_env(t.hfcs().json().cache_dir(&src).arg("push")).start();
    let at_kill = kill_node_midway(&cluster, 3, &mut push, "push", total_blobs, || {
        bucket.keys_under("blobs").len()
    });
    let out = push.wait().success();
    let s = out.json();
    assert_eq!(count(&s, "uploaded"), total_blobs as u64, "{s}");
    assert_eq!(count(&s, "failed"), 0, "{s}");
    assert_eq!(count(&s, "manifests"), 3, "{s}");
    assert_eq!(count(&s, "refs"), 3, "{s}");
    eprintln!(
        "push: node 3 killed with {at_kill} of {total_blobs} blobs in the bucket; \
         the rest went to a 2-node cluster"
    );

    // The bucket holds the whole v1 layout, every blob matching its name.
    assert_eq!(bucket.keys(), Vec::from_iter(spec::remote_keys(&fleet)),);
    assert_eq!(bucket.open_uploads(), Vec::<String>::new());
    let blobs: Vec<(&str, &[u8])> = blobs.into_iter().collect();
    std::thread::scope(|scope| {
        for share in blobs.chunks(blobs.len().div_ceil(4)) {
            let (garage, prefix) = (&garage, &t.prefix);
            scope.spawn(move || {
                let bucket = Bucket::new(garage, prefix);
                for (etag, bytes) in share {
                    let body = bucket.get(&blob_key(etag)).expect("blob listed");
                    assert!(
                        body == **bytes,
                        "remote blob {etag} has the wrong content ({} bytes)",
                        body.len()
                    );
                }
            });
        }
    });
    for (repo, r) in fleet
        .iter()
        .flat_map(|repo| repo.revisions.iter().map(move |r| (repo, r)))
    {
        let manifest = bucket.manifest(&repo.repo_id, &r.commit);
        assert_eq!(manifest["repo"], repo.repo_id.as_str());
        assert_eq!(manifest["repo_type"], repo.repo_type);
        assert_eq!(manifest["revision"], r.commit.as_str());
        let files: BTreeSet<(String, String)> = manifest["files"]
            .as_array()
            .expect("manifest files")
            .iter()
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_string(),
                    f["blob"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let expected = r
            .files
            .iter()
            .map(|f| (f.path.clone(), f.etag().to_string()));
        assert_eq!(files, expected.collect());
        for name in &r.refs {
            assert_eq!(bucket.get_text(&ref_key(&repo.repo_id, name)), r.commit);
        }
    }

    // Node 3 comes back having missed the end of the push; node 2 dies in the middle of a pull.
    cluster.restart(3);
    let dst = t.cache("dst");
    let main = fleet[0].revision("main");
    let big_dir = dst.join(repo_folder("model", "org/big"));
    let mut pull =
        with_transfer_env(t.hfcs().json().cache_dir(&dst).args(["pull", "org/big"])).start();
    let at_kill = kill_node_midway(&cluster, 2, &mut pull, "pull", main.files.len(), || {
        finished_blobs(&big_dir)
    });
    let out = pull.wait().success();
    let s = out.json();
    assert_eq!(s["revision"], main.commit.as_str(), "{s}");
    assert_eq!(count(&s, "downloaded"), main.files.len() as u64, "{s}");
    assert_eq!(count(&s, "failed"), 0, "{s}");
    eprintln!(
        "pull: node 2 killed with {at_kill} of {} blobs in the cache",
        main.files.len()
    );

    // Still on two nodes: the other revision and the dataset.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/big", "-r", "v1.0"])
        .run()
        .success();
    assert_eq!(count(&out.json(), "failed"), 0, "{out}");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .arg("pull-all")
        .run()
        .success();
    assert_eq!(count(&out.json(), "failed"), 0, "{out}");

    // The cache is complete, verified, and huggingface_hub loads every file through every ref.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .arg("verify")
        .run()
        .success();
    let v = out.json();
    assert_eq!(count(&v, "blobs"), total_blobs as u64, "{out}");
    assert_eq!(count(&v, "problems"), 0, "{out}");
    spec::assert_all_pulled(&fleet, &dst);
    assert_cache_tidy(&dst);
}
