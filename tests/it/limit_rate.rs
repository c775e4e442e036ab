//! `--limit-rate` and `transfer.limit_rate`: a push and a pull through the test bucket, and a
//! directory remote, each taking the time their bytes need at the cap; a bad rate refused before
//! anything moves. (Bad rates of the other commands, the config file and the environment are
//! among `config.rs`'s bad inputs.)

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::cache::write_big_blob;
use crate::common::{
    blob_key, commit_hash, count, files_under, CacheBuilder, CacheView, Cli, Sandbox,
};

const MIB: usize = 1024 * 1024;

/// Runs `cli` to success; how long it took, and what it printed.
#[track_caller]
fn timed(cli: Cli) -> (Duration, crate::common::cli::Output) {
    let started = Instant::now();
    let out = cli.timeout(Duration::from_secs(120)).run().success();
    (started.elapsed(), out)
}

/// `took` is the time `bytes` take at `rate` bytes/s, give or take: never less than that time
/// less the 50 ms the cap lets through at once and a 5-10 % margin, and under `most` however busy
/// the machine (the time, not the cap, is what a loaded CI box stretches).
#[track_caller]
fn assert_paced(what: &str, took: Duration, (least, most): (f64, f64)) {
    let s = took.as_secs_f64();
    assert!(
        (least..=most).contains(&s),
        "{what} took {s:.2} s, outside {least}-{most} s"
    );
}

/// The blob of `repo_id` in `cache`, whole.
#[track_caller]
fn assert_blob(cache: &Path, repo_id: &str, etag: &str, size: usize) {
    let blob = CacheView::model(cache, repo_id).blob(etag);
    assert_eq!(
        std::fs::metadata(&blob).map(|m| m.len()).ok(),
        Some(size as u64),
        "{}",
        blob.display()
    );
}

/// 600 MiB at 100M (100 MiB/s) take 6 s each way: multipart uploads paced frame by frame, ranged
/// parallel downloads paced chunk by chunk, one cap across the workers.
#[test]
fn a_push_and_a_pull_through_the_bucket_keep_to_the_cap() {
    let t = Sandbox::new("limit_rate_bucket");
    let repo_id = "org/capped";
    let src = t.cache("src");
    let commit = commit_hash(repo_id);
    let size = 600 * MIB;
    let etag = write_big_blob(&src, repo_id, &commit, size);

    let (push, out) = timed(
        t.hfcs()
            .json()
            .cache_dir(&src)
            .args(["push", "--limit-rate", "100M"]),
    );
    assert_eq!(count(&out.json(), "uploaded"), 2, "{out}");
    std::fs::remove_dir_all(&src).expect("remove the source cache");

    let dst = t.cache("dst");
    let (pull, out) =
        timed(
            t.hfcs()
                .json()
                .cache_dir(&dst)
                .args(["pull", repo_id, "--limit-rate", "100M"]),
        );
    assert_eq!(count(&out.json(), "downloaded"), 2, "{out}");
    assert_blob(&dst, repo_id, &etag, size);
    t.bucket().delete(&blob_key(&etag));
    eprintln!(
        "600 MiB at 100 MiB/s: push {:.2} s, pull {:.2} s",
        push.as_secs_f64(),
        pull.as_secs_f64()
    );
    assert_paced("the push", push, (5.7, 10.0));
    assert_paced("the pull", pull, (5.7, 10.0));
}

/// A directory remote copies in 1 MiB chunks, each waiting for the cap: 40 MiB at 20M take 2 s.
/// The flag beats the config file, the environment beats it too, and the config's cap holds
/// when nothing else is given.
#[test]
fn a_directory_remote_keeps_to_the_cap_of_the_flag_the_environment_or_the_config() {
    let (t, remote) = Sandbox::with_dir_remote("limit_rate_dir");
    let config = |rate: &str| {
        t.write_config(&format!(
            "storage:\n  endpoint: file://{}\ntransfer:\n  limit_rate: {rate}\n",
            remote.display()
        ))
    };
    let repo_id = "org/dir";
    let src = t.cache("src");
    let size = 40 * MIB;
    let etag = write_big_blob(&src, repo_id, &commit_hash(repo_id), size);

    // A config cap that would take hours: the flag's is the one that holds.
    config("1K");
    let (push, _) = timed(
        t.hfcs()
            .cache_dir(&src)
            .args(["push", "--limit-rate", "20M"]),
    );
    assert!(files_under(&remote).contains(&format!("blobs/{etag}")));

    config("20M");
    let dst = t.cache("dst");
    let (pull, _) = timed(t.hfcs().cache_dir(&dst).args(["pull", repo_id]));
    assert_blob(&dst, repo_id, &etag, size);

    config("1K");
    let env = t.cache("env");
    let (from_env, _) = timed(
        t.hfcs()
            .cache_dir(&env)
            .env("HF_CACHE_SYNC_LIMIT_RATE", "40M")
            .args(["pull", repo_id]),
    );
    assert_blob(&env, repo_id, &etag, size);
    eprintln!(
        "40 MiB: push at 20 MiB/s {:.2} s, pull at 20 MiB/s {:.2} s, pull at 40 MiB/s {:.2} s",
        push.as_secs_f64(),
        pull.as_secs_f64(),
        from_env.as_secs_f64()
    );
    assert_paced("the push (--limit-rate 20M)", push, (1.9, 5.0));
    assert_paced("the pull (limit_rate: 20M)", pull, (1.9, 5.0));
    assert_paced(
        "the pull (HF_CACHE_SYNC_LIMIT_RATE=40M)",
        from_env,
        (0.9, 4.0),
    );
}

/// `--limit-rate 0`, `fast`, `10X`: exit 2 before anything moves, saying what is wrong and how
/// a rate is written.
#[test]
fn a_bad_rate_is_a_usage_error_showing_a_good_one() {
    let (t, remote) = Sandbox::with_dir_remote("limit_rate_bad");
    let cache = t.cache("cache");
    let commit = commit_hash("org/m");
    CacheBuilder::new(&cache)
        .repo("org/m")
        .rev(&commit)
        .file("config.json", b"{}")
        .ref_("main", &commit);
    let before = files_under(&cache);
    let empty = t.cache("empty");
    for (rate, says) in [
        ("0", "at least 1 byte per second"),
        ("fast", "\"fast\" is not a rate"),
        ("10X", "unknown unit \"X\""),
        ("-5M", "cannot be negative"),
        ("50MB", "MB is ambiguous"),
        ("", "an empty rate"),
    ] {
        let flag = format!("--limit-rate={rate}");
        for (dir, args) in [
            (&cache, vec!["push", flag.as_str()]),
            (&empty, vec!["pull", "org/m", flag.as_str()]),
        ] {
            let out = t
                .hfcs()
                .cache_dir(dir)
                .args(&args)
                .run()
                .code(2)
                .failure()
                .stderr_has("--limit-rate")
                .stderr_has(says)
                .stderr_has("K, M or G")
                .stderr_has("e.g. --limit-rate 50M");
            assert_eq!(out.stdout, "", "{out}");
        }
    }
    assert!(files_under(&remote).is_empty(), "nothing was pushed");
    assert_eq!(files_under(&cache), before, "the cache is as it was");
    assert!(files_under(&empty).is_empty(), "nothing was pulled");
}
