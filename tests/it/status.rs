//! `status`: what the cache holds and costs on disk, counted as huggingface_hub counts it, what
//! could be reclaimed, and where the remote is (never a secret).

use std::fs;

use serde_json::json;

use crate::common::cache::pseudo_random;
use crate::common::mixed::{self, days_ago, set_times};
use crate::common::spec::RepoSpec;
use crate::common::{check_cache, count, sha256_hex, Sandbox};

#[test]
fn counts_the_cache_as_scan_cache_dir_does() {
    let t = Sandbox::local("status_counts");
    let cache = t.cache("hub");
    let repos = mixed::write(&cache);
    let hf = check_cache(&cache, &[]);

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("status")
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["command"], "status", "{out}");
    assert_eq!(s["exists"], true, "{out}");
    let hf_repos = hf["repos"].as_array().unwrap();
    assert_eq!(count(&s, "repos"), hf_repos.len() as u64, "{out}");
    assert_eq!(
        s["repos_by_type"],
        json!({"model": 2, "dataset": 1}),
        "{out}"
    );
    let hf_revisions: usize = hf_repos
        .iter()
        .map(|r| r["revisions"].as_array().unwrap().len())
        .sum();
    assert_eq!(count(&s, "revisions"), hf_revisions as u64, "{out}");
    assert_eq!(count(&s, "detached_revisions"), 1, "revision d\n{out}");
    // org/m: three configs, weights, tokenizer and the orphan; org/d: data, readme, extra.
    assert_eq!(count(&s, "blobs"), 9, "{out}");
    assert_eq!(count(&s, "shared_blobs"), 1, "{out}");
    assert_eq!(count(&s, "copied_files"), 2, "{out}");

    // huggingface_hub's physical size leaves out blobs no revision uses; ours counts them.
    let orphan = mixed::ORPHAN.len() as u64;
    assert_eq!(
        s["bytes_on_disk"].as_u64(),
        Some(hf["size_on_disk"].as_u64().unwrap() + orphan),
        "{out}\n{hf}"
    );
    assert_eq!(
        s["bytes_on_disk"].as_u64(),
        Some(repos.iter().map(RepoSpec::total_bytes).sum::<u64>() + orphan),
        "{out}"
    );
    assert_eq!(s["orphans"], json!({"blobs": 1, "bytes": orphan}), "{out}");
    assert_eq!(
        s["shared_store_unreferenced"],
        json!({"blobs": 0, "bytes": 0}),
        "{out}"
    );

    let p = &s["partials"];
    assert_eq!(p["count"], hf["incomplete"]["count"], "{out}\n{hf}");
    assert_eq!(p["bytes"], hf["incomplete"]["size_on_disk"], "{out}\n{hf}");
    assert_eq!(p["stale"], 1, "the two-day-old partial\n{out}");
    assert_eq!(p["stale_bytes"], mixed::STALE_PARTIAL.len() as u64, "{out}");
    assert_eq!(p["stale_after_seconds"], 86400, "{out}");

    assert_eq!(
        s["budget"]["max_local_gb"], 50.0,
        "the default budget\n{out}"
    );
    assert_eq!(s["budget"]["bytes"], 50u64 << 30, "{out}");
    assert_eq!(s["budget"]["over_budget"], false, "{out}");
    assert_eq!(s["warnings"], json!([]), "{out}");
    assert_eq!(s["remote"], json!(null), "no remote configured\n{out}");
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn shared_store_payloads_no_repo_links_still_count_on_disk() {
    let t = Sandbox::local("status_store");
    let cache = t.cache("hub");
    mixed::write(&cache);
    let leftover = pseudo_random("left in the store", 4096);
    let hash = sha256_hex(&leftover);
    let dir = cache.join("blobs").join(&hash[..2]);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(&hash), &leftover).unwrap();
    let hf = check_cache(&cache, &[]);

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("status")
        .run()
        .success();
    let s = out.json();
    assert_eq!(
        s["shared_store_unreferenced"],
        json!({"blobs": 1, "bytes": leftover.len()}),
        "{out}"
    );
    assert_eq!(
        s["bytes_on_disk"].as_u64(),
        Some(hf["size_on_disk"].as_u64().unwrap() + mixed::ORPHAN.len() as u64),
        "{out}\n{hf}"
    );

    // A marker that is not huggingface_hub's: prune leaves that store alone, and status does
    // not count it as reclaimable.
    fs::write(cache.join("blobs/.huggingface-shared-blobs"), "2\n").unwrap();
    let s = t.bare().json().cache_dir(&cache).arg("status").run();
    let unreferenced = &s.json()["shared_store_unreferenced"];
    assert_eq!(unreferenced, &json!({"blobs": 0, "bytes": 0}), "{s}");
}

#[test]
fn human_summary_names_every_figure() {
    let t = Sandbox::local("status_human");
    let cache = t.cache("hub");
    mixed::write(&cache);

    let out = t.bare().cache_dir(&cache).arg("status").run().success();
    for needle in [
        "3 (2 models, 1 dataset)",
        "6 (1 detached)",
        "9 (1 in the shared store), plus 2 files stored as snapshot copies",
        "of a 50.0 GiB budget",
        "1 blob, 41 B",
        "2 partial downloads",
        "(1 stale",
        "not configured",
    ] {
        assert!(out.stdout.contains(needle), "missing {needle:?}\n{out}");
    }
    assert!(
        out.stdout.lines().all(|l| l.len() > 13),
        "every line has a label and a value\n{out}"
    );
    assert_eq!(out.stderr, "", "{out}");
}

#[test]
fn a_missing_cache_dir_is_reported_as_empty_not_an_error() {
    let t = Sandbox::local("status_missing");
    let nowhere = t.path("never-created");

    let out = t.bare().cache_dir(&nowhere).arg("status").run().success();
    assert!(out.stdout.contains("does not exist"), "{out}");

    let out = t
        .bare()
        .json()
        .cache_dir(&nowhere)
        .arg("status")
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["exists"], false, "{out}");
    assert_eq!(count(&s, "repos"), 0, "{out}");
    assert_eq!(count(&s, "bytes_on_disk"), 0, "{out}");
    assert!(!nowhere.exists(), "status must not create the cache dir");
}

#[test]
fn over_budget_says_by_how_much() {
    let t = Sandbox::local("status_budget");
    let cache = t.cache("hub");
    mixed::write(&cache);
    // About 100 KiB: less than the fixture holds.
    t.write_config("cache:\n  max_local_gb: 0.0001\n");

    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("status")
        .run()
        .success();
    let b = &out.json()["budget"];
    assert_eq!(b["over_budget"], true, "{out}");
    assert!(b["used_percent"].as_f64().unwrap() > 100.0, "{out}");

    let out = t.hfcs().cache_dir(&cache).arg("status").run().success();
    assert!(out.stdout.contains("over by"), "{out}");
    assert!(out.stdout.contains("run prune"), "{out}");
}

#[test]
fn broken_links_and_odd_entries_become_warnings() {
    let t = Sandbox::local("status_broken");
    let cache = t.cache("hub");
    mixed::write(&cache);
    mixed::add_broken_link(&cache);

    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("status")
        .run()
        .success();
    let s = out.json();
    assert_eq!(count(&s, "repos"), 4, "{out}");
    let warnings = s["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(
        warnings[0].as_str().unwrap().contains("gone.bin"),
        "the warning names the broken link\n{out}"
    );
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains("gone.bin"),
        "{out}"
    );
}

#[test]
fn partials_become_stale_after_a_day_untouched() {
    let t = Sandbox::local("status_partials");
    let cache = t.cache("hub");
    let [org_m, ..] = mixed::write(&cache);
    let fresh = org_m
        .view(&cache)
        .blob(&format!("{}.incomplete", sha256_hex(b"fresh")));
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("status")
        .run()
        .success();
    assert_eq!(out.json()["partials"]["stale"], 1, "{out}");

    let a_day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(25 * 3600);
    set_times(&fresh, days_ago(0), a_day_ago);
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("status")
        .run()
        .success();
    assert_eq!(out.json()["partials"]["stale"], 2, "{out}");
}

#[test]
fn the_remote_is_located_without_credentials_ever_showing() {
    let t = Sandbox::new("status_remote_where");
    let cache = t.cache("hub");
    mixed::write(&cache);
    let g = t.garage();

    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("status")
        .run()
        .success()
        .never_prints(&g.secret_key)
        .never_prints(&g.access_key);
    let r = &out.json()["remote"];
    assert_eq!(r["kind"], "s3", "{out}");
    assert_eq!(r["endpoint"], g.endpoint.as_str(), "{out}");
    assert_eq!(r["bucket"], g.bucket.as_str(), "{out}");
    assert_eq!(r["region"], g.region.as_str(), "{out}");
    assert_eq!(r["prefix"], t.prefix.as_str(), "{out}");
    assert_eq!(
        r["contents"],
        json!(null),
        "not contacted without --remote\n{out}"
    );

    let out = t
        .hfcs()
        .global("-v")
        .cache_dir(&cache)
        .args(["status", "--remote"])
        .run()
        .success()
        .never_prints(&g.secret_key)
        .never_prints(&g.access_key);
    assert!(out.stdout.contains(&g.endpoint), "{out}");
    assert!(out.stdout.contains(&t.prefix), "{out}");
}

#[test]
fn with_remote_it_counts_what_the_bucket_holds() {
    let t = Sandbox::new("status_remote_counts");
    let cache = t.cache("hub");
    let repos = mixed::write(&cache);
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    assert_eq!(count(&out.json(), "failed"), 0, "{out}");

    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["status", "--remote"])
        .run()
        .success();
    let contents = &out.json()["remote"]["contents"];
    let bucket = t.bucket();
    assert_eq!(contents["repos"], 3, "{out}");
    assert_eq!(
        contents["revisions"],
        bucket.keys_under("manifests").len(),
        "{out}"
    );
    assert_eq!(contents["revisions"], 6, "{out}");
    assert_eq!(contents["refs"], bucket.keys_under("refs").len(), "{out}");
    assert_eq!(contents["refs"], 5, "{out}");
    assert_eq!(contents["blobs"], bucket.keys_under("blobs").len(), "{out}");
    // Everything but the orphan, which no manifest names.
    assert_eq!(
        contents["bytes"],
        repos.iter().map(RepoSpec::total_bytes).sum::<u64>(),
        "{out}"
    );

    let out = t
        .hfcs()
        .cache_dir(&cache)
        .args(["status", "--remote"])
        .run()
        .success();
    assert!(
        out.stdout
            .contains("holds 3 repos, 6 revisions, 5 refs, 10 blobs"),
        "{out}"
    );
}

#[test]
fn asking_for_the_remote_without_one_configured_is_a_usage_error() {
    let t = Sandbox::local("status_no_remote");
    let cache = t.cache("hub");
    t.bare()
        .cache_dir(&cache)
        .args(["status", "--remote"])
        .run()
        .code(2)
        .stderr_has("no remote configured");
}
