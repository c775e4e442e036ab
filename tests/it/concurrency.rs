//! Commands running side by side on one cache or one bucket: two pulls of one repo, a pull
//! meeting huggingface_hub's lock, two pushes of overlapping caches, prune while a pull writes.
//! Each ends with a cache huggingface_hub accepts and a bucket whose manifests hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::cache::{pseudo_random, set_modified_ago, set_revision_accessed_ago, CacheView};
use crate::common::cli::Running;
use crate::common::fixtures::WEIGHTS;
use crate::common::spec::RepoSpec;
use crate::common::{
    assert_cache_tidy, blob_key, check_cache, commit_hash, count, git_sha1_hex, hold_lock,
    manifest_key, sha256_hex, Bucket, Cli, Download, Sandbox,
};

const MIB: usize = 1024 * 1024;
const HOUR: Duration = Duration::from_secs(3600);

/// Objects above 5 MiB move in 5 MiB parts, so a 12 MiB blob takes three parallel requests.
fn small_parts(cli: Cli) -> Cli {
    cli.env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "5MiB")
        .env("HF_CACHE_SYNC_PART_SIZE", "5MiB")
        .timeout(Duration::from_secs(300))
}

/// `org/c`: v1.0 and main share a 12 MiB shard (above the multipart threshold) and a tokenizer;
/// main adds a 6 MiB shard and has its own config.
fn two_revisions_with_shards(repo_id: &str) -> (RepoSpec, String, String) {
    let (a, b) = (
        commit_hash(&format!("{repo_id} a")),
        commit_hash(&format!("{repo_id} b")),
    );
    let weights = pseudo_random(&format!("{repo_id} weights"), 12 * MIB + 4321);
    let extra = pseudo_random(&format!("{repo_id} extra"), 6 * MIB + 17);
    let tokenizer = format!("{{\"tokenizer\": \"{repo_id}\"}}\n");
    let spec = RepoSpec::new(repo_id)
        .rev(&a, &["v1.0"])
        .file("config.json", b"{\"hidden_size\": 64}\n")
        .lfs("model-00001-of-00002.safetensors", &weights)
        .file("tokenizer/tokenizer.json", tokenizer.as_bytes())
        .rev(&b, &["main"])
        .file("config.json", b"{\"hidden_size\": 128}\n")
        .lfs("model-00001-of-00002.safetensors", &weights)
        .lfs("model-00002-of-00002.safetensors", &extra)
        .file("tokenizer/tokenizer.json", tokenizer.as_bytes());
    (spec, a, b)
}

/// `hf-cache-sync verify` of `cache` passes.
#[track_caller]
fn verify(t: &Sandbox, cache: &Path) {
    t.hfcs().cache_dir(cache).arg("verify").run().success();
}

#[test]
fn two_pulls_of_one_repo_at_once_download_each_blob_once() {
    let t = Sandbox::new("conc_two_pulls");
    let (spec, a, b) = two_revisions_with_shards("org/c");
    let src = t.cache("src");
    spec.write(&src);
    small_parts(t.hfcs().cache_dir(&src).arg("push"))
        .run()
        .success();
    let commit_of = |r: &str| if r == "v1.0" { a.clone() } else { b.clone() };

    // Twice the same revision (same blobs, same snapshot links, same ref), then two revisions
    // sharing blobs.
    let rounds = [("main", "main"), ("main", "main"), ("main", "v1.0")];
    for (round, (r1, r2)) in rounds.into_iter().enumerate() {
        let dst = t.cache(&format!("dst{round}"));
        let start = |r: &str| {
            small_parts(
                t.hfcs()
                    .json()
                    .cache_dir(&dst)
                    .args(["pull", "org/c", "-r", r]),
            )
            .start()
        };
        let (p1, p2) = (start(r1), start(r2));
        let (o1, o2) = (p1.wait().success(), p2.wait().success());
        let (c1, c2) = (commit_of(r1), commit_of(r2));
        let needed = spec.etags_of(&[&c1, &c2]);
        let (d1, d2) = (
            count(&o1.json(), "downloaded"),
            count(&o2.json(), "downloaded"),
        );
        eprintln!(
            "round {round}: pull -r {r1} downloaded {d1}, pull -r {r2} downloaded {d2} of {} blobs",
            needed.len()
        );
        assert_eq!(
            (d1 + d2) as usize,
            needed.len(),
            "each blob is downloaded by exactly one of the two pulls\n{o1}\n{o2}"
        );

        spec.assert_pulled(&dst, &c1);
        spec.assert_pulled(&dst, &c2);
        assert_cache_tidy(&dst);
        let view = CacheView::model(&dst, "org/c");
        assert_eq!(view.ref_("main").as_deref(), Some(b.as_str()));
        if r2 == "v1.0" {
            assert_eq!(view.ref_("v1.0").as_deref(), Some(a.as_str()));
        }
        verify(&t, &dst);
        let mut downloads = spec.downloads(r1);
        downloads.extend(spec.downloads(r2));
        check_cache(&dst, &downloads);
    }
}

/// `org/m` with two revisions, pushed from the cache `src`.
fn pushed_two_revisions(t: &Sandbox) -> RepoSpec {
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    m
}

/// Starts `pull org/m` into `dst` and returns it once it says it waits for a lock, with that line.
fn pull_until_it_waits(t: &Sandbox, dst: &Path) -> (Running, String) {
    let mut pull = t
        .hfcs()
        .json()
        .cache_dir(dst)
        .args(["pull", "org/m"])
        .start();
    let Some(line) = pull.wait_for_stderr("waiting", Duration::from_secs(60)) else {
        panic!("the pull never said it waits\n{}", pull.wait());
    };
    (pull, line)
}

/// huggingface_hub's lock for the weights blob of `m` in `cache`.
fn weights_lock(cache: &Path, m: &RepoSpec) -> std::path::PathBuf {
    cache
        .join(".locks")
        .join("models--org--m")
        .join(format!("{}.lock", m.revision("main").file(WEIGHTS).etag()))
}

#[test]
fn pull_waits_for_a_blob_lock_held_by_huggingface_hub_then_completes() {
    let t = Sandbox::new("conc_lock_wait");
    let m = pushed_two_revisions(&t);

    let dst = t.cache("dst");
    let lock = weights_lock(&dst, &m);
    // hf_hub_download writing the weights in another process.
    let holder = hold_lock(&lock);
    let (mut pull, line) = pull_until_it_waits(&t, &dst);
    assert!(
        line.contains(&lock.display().to_string()),
        "the message names the lock file: {line}"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        pull.is_running(),
        "the pull must wait while the lock is held"
    );
    let view = CacheView::model(&dst, "org/m");
    assert!(
        !view.has_blob(m.revision("main").file(WEIGHTS).etag()),
        "nothing is written under a lock another process holds"
    );
    assert!(
        !view.snapshot(m.commit("main"), "").exists(),
        "no snapshot before every blob is in place"
    );

    drop(holder);
    let out = pull.wait().success();
    let s = out.json();
    assert_eq!(count(&s, "downloaded"), 3, "{out}");
    m.assert_pulled(&dst, "main");
    assert_cache_tidy(&dst);
    verify(&t, &dst);
    check_cache(&dst, &m.downloads("main"));
}

#[test]
fn pull_gives_up_on_a_lock_held_past_the_timeout_and_names_it() {
    let t = Sandbox::new("conc_lock_timeout");
    let m = pushed_two_revisions(&t);

    let dst = t.cache("dst");
    let lock = weights_lock(&dst, &m);
    let holder = hold_lock(&lock);
    let started = Instant::now();
    let out = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .env("HF_CACHE_SYNC_LOCK_TIMEOUT", "1s")
        .run()
        .code(1)
        .stderr_has(&lock.display().to_string())
        .stderr_has("HF_CACHE_SYNC_LOCK_TIMEOUT");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "gave up late: {:?}\n{out}",
        started.elapsed()
    );
    let view = CacheView::model(&dst, "org/m");
    let main = m.revision("main");
    let weights = main.file(WEIGHTS).etag();
    assert!(!view.has_blob(weights), "{out}");
    for f in &main.files {
        if f.etag() != weights {
            assert!(
                view.has_blob(f.etag()),
                "the other blobs are still fetched\n{out}"
            );
        }
    }
    assert!(!view.snapshot(m.commit("main"), "").exists(), "{out}");
    assert_cache_tidy(&dst);
    check_cache(&dst, &[]);

    // Once the holder is gone, a re-run fetches just that blob.
    drop(holder);
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success();
    assert_eq!(count(&out.json(), "downloaded"), 1, "{out}");
    m.assert_pulled(&dst, "main");
    check_cache(&dst, &m.downloads("main"));
}

/// Checks every manifest in `bucket`: each blob it names is there, with the stated size and
/// content matching its name; each ref names a manifest of its repo that exists. Returns
/// `repo → ref → commit`.
#[track_caller]
fn assert_bucket_consistent(bucket: &Bucket) -> BTreeMap<String, BTreeMap<String, String>> {
    let keys = bucket.keys();
    let key_set: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    let mut checked: BTreeMap<String, u64> = BTreeMap::new();
    let mut manifests = 0;
    for key in keys.iter().filter(|k| k.starts_with("manifests/")) {
        manifests += 1;
        let text = bucket.get_text(key);
        let m: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{key} is not JSON: {e}\n{text}"));
        for f in m["files"].as_array().expect("files") {
            let etag = f["blob"].as_str().unwrap().to_string();
            let size = f["size"].as_u64().unwrap();
            if let Some(seen) = checked.get(&etag) {
                assert_eq!(*seen, size, "{key}: size of {etag}");
                continue;
            }
            let body = bucket
                .get(&blob_key(&etag))
                .unwrap_or_else(|| panic!("{key} names blob {etag}, which is not in the bucket"));
            assert_eq!(body.len() as u64, size, "{key}: size of blob {etag}");
            let actual = if etag.len() == 64 {
                sha256_hex(&body)
            } else {
                git_sha1_hex(&body)
            };
            assert_eq!(actual, etag, "remote blob {etag} does not match its name");
            checked.insert(etag, size);
        }
    }
    assert!(manifests > 0, "no manifest in the bucket: {keys:?}");
    let mut refs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for key in keys.iter().filter(|k| k.starts_with("refs/")) {
        let rest = &key["refs/".len()..];
        let (safe, name) = rest.split_once('/').expect("refs/<repo>/<name>");
        let commit = bucket.get_text(key);
        let mkey = format!("manifests/{safe}@{commit}.json");
        assert!(
            key_set.contains(mkey.as_str()),
            "{key} points at {commit}, whose manifest {mkey} is missing"
        );
        refs.entry(safe.to_string())
            .or_default()
            .insert(name.to_string(), commit);
    }
    refs
}

#[test]
fn two_pushes_of_overlapping_caches_at_once_leave_a_consistent_bucket() {
    let t = Sandbox::new("conc_two_pushes");
    let [s1, s2, s3, a1, b1] = ["s1", "s2", "s3", "a1", "b1"].map(commit_hash);
    let weights = pseudo_random("shared weights", 8 * MIB + 1);
    let big = pseudo_random("big shard in two repos", 12 * MIB + 3);
    let adapter = pseudo_random("adapter", 6 * MIB + 5);
    let only_b = pseudo_random("only in b", 7 * MIB + 7);
    let tok = b"{\"tokenizer\": \"shared\"}\n".to_vec();
    // Cache A: org/shared v1.0 and main, plus org/a.
    let shared_a = RepoSpec::new("org/shared")
        .rev(&s1, &["v1.0"])
        .file("config.json", b"{\"rev\": 1}\n")
        .lfs("model.safetensors", &weights)
        .file("tokenizer.json", &tok)
        .rev(&s2, &["main"])
        .file("config.json", b"{\"rev\": 2}\n")
        .lfs("model.safetensors", &weights)
        .file("tokenizer.json", &tok);
    let repo_a = RepoSpec::new("org/a")
        .rev(&a1, &["main"])
        .file("README.md", b"# a\n")
        .lfs("model.safetensors", &big);
    // Cache B: the same main of org/shared plus a dev revision, and org/b sharing a shard with
    // org/a.
    let shared_b = RepoSpec::new("org/shared")
        .rev(&s2, &["main"])
        .file("config.json", b"{\"rev\": 2}\n")
        .lfs("model.safetensors", &weights)
        .file("tokenizer.json", &tok)
        .rev(&s3, &["dev"])
        .file("config.json", b"{\"rev\": 3}\n")
        .lfs("model.safetensors", &weights)
        .lfs("adapter.safetensors", &adapter)
        .file("tokenizer.json", &tok);
    let repo_b = RepoSpec::new("org/b")
        .rev(&b1, &["main"])
        .file("README.md", b"# b\n")
        .lfs("model.safetensors", &big)
        .lfs("extra.safetensors", &only_b);
    let (cache_a, cache_b) = (t.cache("a"), t.cache("b"));
    shared_a.write(&cache_a);
    repo_a.write(&cache_a);
    shared_b.write(&cache_b);
    repo_b.write(&cache_b);
    let all_blobs: BTreeSet<String> = [&shared_a, &repo_a, &shared_b, &repo_b]
        .iter()
        .flat_map(|s| s.etags())
        .collect();

    for round in 0..2 {
        let prefix = format!("{}/r{round}", t.prefix);
        let remote = format!("s3://{}/{prefix}", t.garage().bucket);
        let push = |cache: &Path| {
            small_parts(
                t.hfcs()
                    .json()
                    .cache_dir(cache)
                    .args(["push", "--remote", &remote]),
            )
            .start()
        };
        let (pa, pb) = (push(&cache_a), push(&cache_b));
        let (oa, ob) = (pa.wait().success(), pb.wait().success());
        let (sa, sb) = (oa.json(), ob.json());
        eprintln!(
            "round {round}: push A uploaded {} (skipped {}), push B uploaded {} (skipped {}) of {} blobs",
            count(&sa, "uploaded"),
            count(&sa, "skipped_existing"),
            count(&sb, "uploaded"),
            count(&sb, "skipped_existing"),
            all_blobs.len()
        );

        let bucket = Bucket::new(t.garage(), &prefix);
        let refs = assert_bucket_consistent(&bucket);
        let blobs: BTreeSet<String> = bucket
            .keys_under("blobs")
            .iter()
            .map(|k| k["blobs/".len()..].to_string())
            .collect();
        assert_eq!(blobs, all_blobs, "exactly the blobs of both caches");
        let mut manifests = bucket.keys_under("manifests");
        manifests.sort();
        let mut expected = vec![
            manifest_key("org/shared", &s1),
            manifest_key("org/shared", &s2),
            manifest_key("org/shared", &s3),
            manifest_key("org/a", &a1),
            manifest_key("org/b", &b1),
        ];
        expected.sort();
        assert_eq!(manifests, expected);
        let shared_refs = &refs["org__shared"];
        assert_eq!(shared_refs["main"], s2);
        assert_eq!(shared_refs["v1.0"], s1);
        assert_eq!(shared_refs["dev"], s3);
        assert_eq!(refs["org__a"]["main"], a1);
        assert_eq!(refs["org__b"]["main"], b1);
        assert_eq!(
            bucket.open_uploads(),
            Vec::<String>::new(),
            "no multipart upload left open"
        );

        // A fresh cache gets back every revision of both caches.
        let dst = t.cache(&format!("dst{round}"));
        let pull = |args: &[&str]| {
            t.hfcs()
                .cache_dir(&dst)
                .args(args)
                .args(["--remote", &remote])
                .run()
                .success()
        };
        pull(&["pull-all"]);
        pull(&["pull", "org/shared", "-r", "v1.0"]);
        pull(&["pull", "org/shared", "-r", "dev"]);
        shared_a.assert_pulled(&dst, &s1);
        shared_a.assert_pulled(&dst, &s2);
        shared_b.assert_pulled(&dst, &s3);
        repo_a.assert_pulled(&dst, &a1);
        repo_b.assert_pulled(&dst, &b1);
        assert_cache_tidy(&dst);
        verify(&t, &dst);
        let mut downloads: Vec<Download> = shared_a.downloads("v1.0");
        downloads.extend(shared_a.downloads("main"));
        downloads.extend(shared_b.downloads("dev"));
        downloads.extend(repo_a.downloads("main"));
        downloads.extend(repo_b.downloads("main"));
        check_cache(&dst, &downloads);
    }
}

#[test]
fn prune_while_a_pull_writes_leaves_the_pull_whole() {
    let t = Sandbox::new("conc_prune_pull");
    let [old, new] = ["p old", "p new"].map(commit_hash);
    let tokenizer = b"{\"tokenizer\": \"p\"}\n".to_vec();
    // What gets pulled: a shard big enough to take a moment, small files that land long before
    // it, and a tokenizer the destination already has, linked only by a detached revision.
    let pulled = RepoSpec::new("org/p")
        .rev(&new, &["main"])
        .file("config.json", b"{\"rev\": \"new\"}\n")
        .file("generation_config.json", b"{\"max_length\": 20}\n")
        .file("tokenizer.json", &tokenizer)
        .lfs(
            "model-00002-of-00002.safetensors",
            &pseudo_random("p small shard", 2 * MIB),
        )
        .lfs(
            "model-00001-of-00002.safetensors",
            &pseudo_random("p big shard", 40 * MIB),
        );
    let src = t.cache("src");
    pulled.write(&src);
    small_parts(t.hfcs().cache_dir(&src).arg("push"))
        .run()
        .success();

    let mut prunes = 0;
    let mut prunes_during_pull = 0;
    for round in 0..2 {
        let dst = t.cache(&format!("dst{round}"));
        // Already there: the detached old revision of org/p, and org/other with a detached
        // revision and an old orphan, which prune should clear while the pull runs.
        let old_rev = RepoSpec::new("org/p")
            .rev(&old, &[])
            .file("config.json", b"{\"rev\": \"old\"}\n")
            .file("tokenizer.json", &tokenizer);
        old_rev.write(&dst);
        let [o_main, o_detached] = ["other main", "other detached"].map(commit_hash);
        let other = RepoSpec::new("org/other")
            .rev(&o_main, &["main"])
            .file("config.json", b"{\"other\": 1}\n")
            .rev(&o_detached, &[])
            .lfs("w.bin", &pseudo_random("other detached", 64 * 1024));
        other.write(&dst);
        let p_view = CacheView::model(&dst, "org/p");
        let o_view = CacheView::model(&dst, "org/other");
        let orphan = b"left behind long ago\n".to_vec();
        std::fs::write(o_view.blob(&git_sha1_hex(&orphan)), &orphan).unwrap();
        for (view, etags) in [(&p_view, old_rev.etags()), (&o_view, other.etags())] {
            for etag in etags {
                set_modified_ago(&view.blob(&etag), 2 * HOUR);
            }
        }
        set_modified_ago(&o_view.blob(&git_sha1_hex(&orphan)), 2 * HOUR);
        set_revision_accessed_ago(&p_view.dir, &old, 30 * 24 * HOUR);

        let mut pull =
            small_parts(
                t.hfcs()
                    .json()
                    .cache_dir(&dst)
                    .args(["pull", "org/p", "--workers", "2"]),
            )
            .start();
        let flags: [&[&str]; 3] = [
            &["--detached", "--max-gb", "0"],
            &["--max-gb", "0"],
            &["--detached"],
        ];
        let mut i = 0;
        while pull.is_running() {
            let out = t
                .bare()
                .json()
                .cache_dir(&dst)
                .arg("prune")
                .args(flags[i % flags.len()])
                .arg("--yes")
                .run()
                .success();
            i += 1;
            if pull.is_running() {
                prunes_during_pull += 1;
            }
            let s = out.json();
            assert!(s["failures"].as_array().unwrap().is_empty(), "{out}");
        }
        prunes += i;
        let out = pull.wait().success();
        assert_eq!(
            count(&out.json(), "downloaded") + count(&out.json(), "skipped_existing"),
            5,
            "{out}"
        );

        // Once more with the pull done: the old revision of org/p goes now, main stays.
        t.bare()
            .json()
            .cache_dir(&dst)
            .args(["prune", "--detached", "--max-gb", "0", "--yes"])
            .run()
            .success();
        pulled.assert_pulled(&dst, &new);
        assert!(
            !p_view.snapshot(&old, "").exists(),
            "the detached revision went"
        );
        assert_eq!(p_view.ref_("main").as_deref(), Some(new.as_str()));
        assert!(!o_view.snapshot(&o_detached, "").exists());
        assert!(
            !o_view.has_blob(&git_sha1_hex(&orphan)),
            "the old orphan went"
        );
        assert_cache_tidy(&dst);
        verify(&t, &dst);
        let mut downloads = pulled.downloads("main");
        downloads.extend(other.downloads("main"));
        check_cache(&dst, &downloads);
    }
    eprintln!("{prunes} prunes ran, {prunes_during_pull} of them while a pull was writing");
    assert!(
        prunes_during_pull >= 2,
        "the pulls ended before prune could run against them ({prunes} prunes)"
    );
}

/// The lock a pull holds shared on a repo while it writes there, and prune or rm exclusively.
fn repo_lock(cache: &Path, repo_id: &str) -> std::path::PathBuf {
    cache.join(".locks").join(format!(
        "models--{}.hf-cache-sync.lock",
        repo_id.replace('/', "--")
    ))
}

#[test]
fn rm_and_prune_leave_a_repo_a_pull_is_writing_into_alone() {
    let t = Sandbox::local("conc_busy_repo");
    let cache = t.cache("hub");
    let m = RepoSpec::two_revisions("org/m");
    m.write(&cache);
    let detached = commit_hash("detached");
    RepoSpec::new("org/m")
        .rev(&detached, &[])
        .file("config.json", b"{\"detached\": true}\n")
        .write(&cache);
    let before = crate::common::files_under(&cache);
    // A pull writing into org/m.
    let lock = repo_lock(&cache, "org/m");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let pull = std::fs::File::create(&lock).unwrap();
    pull.lock_shared().unwrap();
    let before_with_lock = crate::common::files_under(&cache);

    t.bare()
        .cache_dir(&cache)
        .args(["rm", "org/m", "--yes"])
        .run()
        .code(1)
        .stderr_has(&lock.display().to_string())
        .stderr_has("nothing was deleted");
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["prune", "--detached", "--max-gb", "0", "--yes"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["revisions"], serde_json::json!([]), "{out}");
    assert!(
        s["kept"]
            .to_string()
            .contains("a pull is writing into this repo"),
        "{out}"
    );
    assert_eq!(
        crate::common::files_under(&cache),
        before_with_lock,
        "{out}"
    );

    // Once the pull is done, both go ahead.
    drop(pull);
    std::fs::remove_file(&lock).unwrap();
    std::fs::remove_dir(lock.parent().unwrap()).unwrap();
    assert_eq!(crate::common::files_under(&cache), before);
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .args(["prune", "--detached", "--yes"])
        .run()
        .success();
    let s = out.json();
    let removed: Vec<&str> = s["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["commit"].as_str().unwrap())
        .collect();
    assert_eq!(removed, vec![detached.as_str()], "{out}");
    assert!(
        !lock.exists() && !cache.join(".locks").exists(),
        "prune leaves no lock file of its own behind"
    );
    t.bare()
        .cache_dir(&cache)
        .args(["rm", "org/m", "--yes"])
        .run()
        .success();
    assert!(!CacheView::model(&cache, "org/m").exists());
    check_cache(&cache, &[]);
}

#[test]
fn pull_waits_while_a_prune_holds_the_repo() {
    let t = Sandbox::new("conc_pull_waits_prune");
    let m = pushed_two_revisions(&t);

    let dst = t.cache("dst");
    let lock = repo_lock(&dst, "org/m");
    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let prune = std::fs::File::create(&lock).unwrap();
    prune.lock().unwrap();
    let (mut pull, line) = pull_until_it_waits(&t, &dst);
    assert!(
        line.contains(&lock.display().to_string()) && line.contains("prune"),
        "{line}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(pull.is_running(), "the pull waits for the prune");
    assert!(!CacheView::model(&dst, "org/m").has_blob(m.revision("main").file(WEIGHTS).etag()));
    // What prune does when it removed the repo: delete the lock file, then let go of it.
    std::fs::remove_file(&lock).unwrap();
    drop(prune);
    let out = pull.wait().success();
    assert_eq!(count(&out.json(), "downloaded"), 3, "{out}");
    m.assert_pulled(&dst, "main");
    check_cache(&dst, &m.downloads("main"));
}
