//! `pull --fallback hf-hub`: what the remote lacks comes from the Hub (a stand-in on loopback),
//! every byte verified, written as huggingface_hub writes it (blobs, relative links, the ref and
//! the commit's tree listing), and never when the remote is set up wrong or the run is a dry run.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::cache::pseudo_random;
use crate::common::hub::{HubFile, HubRepo, HubStandIn};
use crate::common::python::{hf_cache_verify, snapshot_download_offline};
use crate::common::{
    blob_key, check_cache, commit_hash, count, files_under, CacheView, Cli, Download, Key, Sandbox,
};

const TOKEN: &str = "hf_standin_token_0123456789";

/// `org/m` at `main`: a config, a nested tokenizer and LFS weights of `weights` bytes.
struct HubModel {
    repo_id: String,
    commit: String,
    files: Vec<HubFile>,
}

impl HubModel {
    fn new(repo_id: &str, weights: usize) -> HubModel {
        HubModel {
            repo_id: repo_id.into(),
            commit: commit_hash(&format!("{repo_id} on the hub")),
            files: vec![
                HubFile {
                    path: "config.json".into(),
                    bytes: format!("{{\"model\": \"{repo_id}\"}}\n").into_bytes(),
                    lfs: false,
                },
                HubFile {
                    path: "model.safetensors".into(),
                    bytes: pseudo_random(&format!("{repo_id} weights"), weights),
                    lfs: true,
                },
                HubFile {
                    path: "tokenizer/tokenizer.json".into(),
                    bytes: b"{\"tokenizer\": true}\n".to_vec(),
                    lfs: false,
                },
            ],
        }
    }

    fn repo(&self) -> HubRepo {
        HubRepo::model(&self.repo_id).commit(&self.commit, "main", self.files.clone())
    }

    fn file(&self, path: &str) -> &HubFile {
        self.files.iter().find(|f| f.path == path).unwrap()
    }

    fn downloads(&self, revision: &'static str) -> Vec<Download<'_>> {
        self.files
            .iter()
            .map(|f| Download::model(&self.repo_id, revision, &f.path, &f.bytes))
            .collect()
    }

    /// The snapshot holds every file, linked to its blob as huggingface_hub links it.
    #[track_caller]
    fn assert_pulled(&self, cache: &Path) {
        let view = CacheView::model(cache, &self.repo_id);
        assert_eq!(view.ref_("main").as_deref(), Some(self.commit.as_str()));
        for f in &self.files {
            view.assert_linked_file(&self.commit, &f.path, &f.etag(), &f.bytes);
        }
        let listing = view.dir.join("trees").join(format!("{}.json", self.commit));
        let listing: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&listing).expect("the tree listing")).unwrap();
        assert_eq!(listing["format_version"], 1);
        assert_eq!(
            listing["files"].as_object().unwrap().len(),
            self.files.len()
        );
        let w = &listing["files"]["model.safetensors"];
        assert_eq!(w["lfs_sha256"], self.file("model.safetensors").etag());
    }
}

/// The binary with `HF_ENDPOINT` at the stand-in.
fn via_hub(cli: Cli, hub: &HubStandIn) -> Cli {
    cli.env("HF_ENDPOINT", hub.url())
}

/// A sandbox with an empty cache `dst`, and the Hub stand-in serving model `repo_id` with
/// weights of `weights` bytes, its tree `page_size` entries a page.
fn setup(name: &str, repo_id: &str, weights: usize, page_size: usize) -> Setup {
    set_up(name, repo_id, weights, page_size, None)
}

/// [`setup`] with the repo gated: only [`TOKEN`] opens it.
fn setup_gated(name: &str, repo_id: &str, weights: usize, page_size: usize) -> Setup {
    set_up(name, repo_id, weights, page_size, Some(TOKEN))
}

type Setup = (Sandbox, HubModel, HubStandIn, std::path::PathBuf);

fn set_up(
    name: &str,
    repo_id: &str,
    weights: usize,
    page_size: usize,
    gated: Option<&str>,
) -> Setup {
    let t = Sandbox::new(name);
    let m = HubModel::new(repo_id, weights);
    let repo = match gated {
        Some(token) => m.repo().gated(token),
        None => m.repo(),
    };
    let hub = HubStandIn::start(vec![repo], page_size);
    let dst = t.cache("dst");
    (t, m, hub, dst)
}

/// `pull REPO --fallback hf-hub` and `extra`, with `HF_ENDPOINT` at the stand-in.
fn pull_via(cli: Cli, hub: &HubStandIn, repo: &str, extra: &[&str]) -> Cli {
    via_hub(cli, hub)
        .args(["pull", repo, "--fallback", "hf-hub"])
        .args(extra)
}

#[test]
fn what_the_bucket_lacks_comes_from_the_hub_as_huggingface_hub_writes_it() {
    let (t, m, hub, dst) = setup("hub_fallback_basic", "org/m", 300 * 1024, 2);
    let out = pull_via(t.hfcs().json().cache_dir(&dst), &hub, "org/m", &[])
        .run()
        .success()
        .stderr_has_any(&["not on the remote", "no ref main"]);
    let s = out.json();
    assert_eq!(s["revision"], m.commit.as_str(), "{out}");
    assert_eq!(s["ref"], "main", "{out}");
    assert_eq!(count(&s, "from_hub"), 3, "{out}");
    assert_eq!(count(&s, "from_remote"), 0, "{out}");
    assert!(s["source"].as_str().unwrap().contains(&hub.url()), "{out}");
    m.assert_pulled(&dst);
    // The tree listing came from 2-entry pages: every page was followed.
    let pages = hub
        .seen()
        .iter()
        .filter(|s| s.target.contains("/tree/"))
        .count();
    assert!(pages >= 2, "{:#?}", hub.seen());
    // huggingface_hub's own checks: a clean scan, offline loads, the whole snapshot offline,
    // and `hf cache verify` against the same Hub.
    check_cache(&dst, &m.downloads("main"));
    let snapshot = snapshot_download_offline(&dst, "model", "org/m", "main").unwrap();
    assert!(snapshot.ends_with(&m.commit), "{snapshot}");
    let (code, text) = hf_cache_verify(&dst, "model", "org/m", "main", &hub.url(), None);
    assert_eq!(code, Some(0), "{text}");
    // Nothing was written to the bucket without --write-through.
    assert!(t.bucket().keys().is_empty());
}

#[test]
fn a_second_pull_finds_everything_in_the_cache() {
    let (t, m, hub, dst) = setup("hub_fallback_rerun", "org/m", 1024, 100);
    for _ in 0..2 {
        pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &[])
            .run()
            .success();
    }
    assert_eq!(hub.downloads(), 3, "{:#?}", hub.seen());
    m.assert_pulled(&dst);
}

#[test]
fn an_unreachable_bucket_falls_back_to_the_hub() {
    let t = Sandbox::new("hub_fallback_unreachable");
    let m = HubModel::new("org/m", 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let yaml = t
        .garage_yaml(Key::ReadWrite)
        .replace(&t.garage().endpoint, &format!("http://127.0.0.1:{port}"));
    t.write_config(&yaml);
    let dst = t.cache("dst");
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &[])
        .run()
        .success()
        .stderr_has("cannot reach");
    m.assert_pulled(&dst);
}

#[test]
fn a_corrupt_bucket_blob_comes_from_the_hub_and_is_named_by_key() {
    let t = Sandbox::new("hub_fallback_corrupt");
    let m = HubModel::new("org/m", 64 * 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    // The bucket has the revision (pulled once from the Hub, then pushed), with one bad blob.
    let src = t.cache("src");
    pull_via(t.hfcs().cache_dir(&src), &hub, "org/m", &[])
        .run()
        .success();
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let weights = m.file("model.safetensors").etag();
    let mut bad = m.file("model.safetensors").bytes.clone();
    bad[10] ^= 1;
    t.bucket().put(&blob_key(&weights), bad);
    let before = hub.downloads();

    let dst = t.cache("dst");
    let out = pull_via(t.hfcs().json().cache_dir(&dst), &hub, "org/m", &[])
        .run()
        .success()
        .stderr_has(&blob_key(&weights));
    let s = out.json();
    assert_eq!(count(&s, "from_remote"), 2, "{out}");
    assert_eq!(count(&s, "from_hub"), 1, "{out}");
    assert!(
        s["warnings"][0]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{out}"
    );
    assert_eq!(
        hub.downloads() - before,
        1,
        "only the bad blob came from the Hub"
    );
    m.assert_pulled(&dst);
    check_cache(&dst, &m.downloads("main"));
}

#[test]
fn a_rejected_key_or_a_missing_bucket_never_falls_back() {
    let (t, _m, hub, dst) = setup("hub_fallback_config_errors", "org/m", 1024, 100);
    let g = t.garage();
    let wrong_key = t
        .garage_yaml(Key::ReadWrite)
        .replace(&g.secret_key, &"0".repeat(g.secret_key.len()));
    let missing_bucket = t.garage_yaml(Key::ReadWrite).replace(
        &format!("bucket: {}", g.bucket),
        "bucket: no-such-bucket-hfcs",
    );
    for yaml in [wrong_key, missing_bucket] {
        t.write_config(&yaml);
        pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &[])
            .run()
            .code(2);
    }
    assert!(
        hub.seen().is_empty(),
        "the Hub was asked: {:#?}",
        hub.seen()
    );
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn a_dry_run_says_what_it_would_fetch_and_asks_nothing_of_the_hub() {
    let (t, _m, hub, dst) = setup("hub_fallback_dry_run", "org/m", 1024, 100);
    let out = pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &["--dry-run"])
        .run()
        .success();
    assert!(
        out.stdout
            .contains("Would fetch org/m@main from the Hub at"),
        "{out}"
    );
    assert!(hub.seen().is_empty(), "{:#?}", hub.seen());
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn hf_hub_offline_is_a_clear_error_naming_the_variable() {
    let (t, _m, hub, dst) = setup("hub_fallback_offline", "org/m", 1024, 100);
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &[])
        .env("HF_HUB_OFFLINE", "1")
        .run()
        .code(2)
        .stderr_has("HF_HUB_OFFLINE");
    assert!(hub.seen().is_empty());
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn a_gated_repo_needs_a_token_which_never_crosses_the_redirect() {
    let (t, m, hub, dst) = setup_gated("hub_fallback_gated", "org/gated", 6 * 1024 * 1024, 100);
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/gated", &[])
        .run()
        .code(2)
        .stderr_has("set HF_TOKEN with access to org/gated; accept the terms on its page");
    assert_eq!(files_under(&dst), Vec::<String>::new());

    // The token from the file huggingface_hub keeps it in, never printed; the weights in
    // ranged parts from the CDN host, without it.
    let token_file = t.home().join(".cache/huggingface/token");
    std::fs::create_dir_all(token_file.parent().unwrap()).unwrap();
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    via_hub(t.hfcs().cache_dir(&dst), &hub)
        .env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "5MiB")
        .env("HF_CACHE_SYNC_PART_SIZE", "5MiB")
        .args(["-v", "pull", "org/gated", "--fallback", "hf-hub"])
        .run()
        .success()
        .never_prints(TOKEN);
    m.assert_pulled(&dst);
    let seen = hub.seen();
    let cdn: Vec<_> = seen.iter().filter(|s| s.host == "cdn").collect();
    assert!(cdn.len() >= 2, "the weights came in parts: {seen:#?}");
    assert!(
        cdn.iter().all(|s| s.authorization.is_none()),
        "the token went to the CDN: {seen:#?}"
    );
    let bearer = format!("Bearer {TOKEN}");
    assert!(seen
        .iter()
        .filter(|s| s.host == "hub" && s.status != 401)
        .all(|s| s.authorization.as_deref() == Some(bearer.as_str())));
    check_cache(&dst, &m.downloads("main"));
}

#[test]
fn a_wrong_token_names_the_repo_and_what_to_do() {
    let (t, _m, hub, dst) = setup_gated("hub_fallback_wrong_token", "org/gated", 1024, 100);
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/gated", &[])
        .env("HF_TOKEN", "hf_someone_else")
        .run()
        .code(2)
        .stderr_has("HTTP 403")
        .stderr_has("accept the terms on its page")
        .never_prints("hf_someone_else");
}

#[test]
fn unknown_repos_and_revisions_are_clear_errors() {
    let (t, _m, hub, dst) = setup("hub_fallback_not_found", "org/m", 1024, 100);
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/nope", &[])
        .run()
        .code(1)
        .stderr_has("repo org/nope not found on")
        .stderr_has("hint: check the repo id");
    via_hub(t.hfcs().cache_dir(&dst), &hub)
        .args(["pull", "org/m", "-r", "v9", "--fallback", "hf-hub"])
        .run()
        .code(1)
        .stderr_has("revision v9 of org/m not found");
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn rate_limiting_is_retried_with_backoff() {
    let t = Sandbox::new("hub_fallback_429");
    let m = HubModel::new("org/m", 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    hub.rate_limit(3);
    let dst = t.cache("dst");
    let started = std::time::Instant::now();
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &[])
        .run()
        .success();
    m.assert_pulled(&dst);
    assert_eq!(hub.seen().iter().filter(|s| s.status == 429).count(), 3);
    // Each 429 asked for a second's wait, and got it.
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
}

#[test]
fn a_hub_asking_for_a_long_wait_is_given_up_on_at_once_saying_how_long() {
    let t = Sandbox::new("hub_fallback_429_long");
    let m = HubModel::new("org/m", 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    hub.rate_limit_asking(u64::MAX, 3600);
    let dst = t.cache("dst");
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &[])
        .run()
        .failure()
        .stderr_has("asked to wait 1h")
        .stderr_has("hint: the Hub asks to wait 1h before the next request");
    assert_eq!(hub.seen().iter().filter(|s| s.status == 429).count(), 1);
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn persistent_rate_limiting_ends_in_a_clear_error() {
    let t = Sandbox::new("hub_fallback_429_forever");
    let m = HubModel::new("org/m", 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    hub.rate_limit(u64::MAX);
    let dst = t.cache("dst");
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &[])
        .run()
        .failure()
        .stderr_has("rate limited by")
        .stderr_has("hint: the Hub kept answering 429");
    assert_eq!(files_under(&dst), Vec::<String>::new());
}

#[test]
fn bytes_from_the_hub_that_do_not_match_their_name_are_never_stored() {
    let t = Sandbox::new("hub_fallback_bad_bytes");
    let m = HubModel::new("org/m", 64 * 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    let weights = m.file("model.safetensors").etag();
    hub.corrupt(&weights);
    let dst = t.cache("dst");
    pull_via(t.hfcs().cache_dir(&dst), &hub, "org/m", &[])
        .run()
        .code(1)
        .stderr_has(&format!("content does not match blob name {weights}"));
    let view = CacheView::model(&dst, "org/m");
    assert!(!view.dir.join("blobs").join(&weights).exists());
    assert!(
        !view.dir.join("snapshots").join(&m.commit).exists(),
        "no snapshot of a revision missing a blob"
    );
    check_cache(&dst, &[]);
}

#[test]
fn the_hub_must_be_the_last_fallback() {
    let t = Sandbox::new("hub_fallback_order");
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args([
            "pull",
            "org/m",
            "--fallback",
            "hf-hub",
            "--fallback",
            "/tmp",
        ])
        .run()
        .code(2)
        .stderr_has("hf-hub may come once, last");
}

/// Keys and contents (by MD5 etag) under a prefix of the test bucket.
fn objects(t: &Sandbox, prefix: &str) -> Vec<(String, u64, String)> {
    crate::common::Bucket::new(t.garage(), prefix)
        .objects()
        .into_iter()
        .map(|o| (o.key, o.size, o.etag))
        .collect()
}

#[test]
fn write_through_lands_in_the_bucket_exactly_as_push_writes_it() {
    let (t, m, hub, dst) = setup("hub_write_through", "org/m", 100 * 1024, 100);
    let out = pull_via(
        t.hfcs().json().cache_dir(&dst),
        &hub,
        "org/m",
        &["--write-through"],
    )
    .run()
    .success();
    let s = out.json();
    assert_eq!(s["write_through"][0]["status"], "written", "{out}");
    assert_eq!(s["write_through"][0]["uploaded"], 3, "{out}");
    // The same cache pushed under another prefix: the same objects, byte for byte.
    let pushed = format!("{}-push", t.prefix);
    t.hfcs()
        .cache_dir(&dst)
        .args([
            "push",
            "--remote",
            &format!("s3://{}/{pushed}", t.garage().bucket),
        ])
        .run()
        .success();
    let through = objects(&t, &t.prefix);
    assert_eq!(through, objects(&t, &pushed));
    let keys: Vec<&str> = through.iter().map(|(k, _, _)| k.as_str()).collect();
    assert!(
        keys.contains(&format!("trees/org__m@{}.json", m.commit).as_str()),
        "{keys:?}"
    );
    assert!(keys.contains(&"refs/org__m/main"), "{keys:?}");
    // The next machine gets it from the bucket, not the Hub.
    let before = hub.seen().len();
    let next = t.cache("next");
    let out = pull_via(t.hfcs().json().cache_dir(&next), &hub, "org/m", &[])
        .run()
        .success();
    assert_eq!(count(&out.json(), "from_remote"), 3, "{out}");
    assert_eq!(hub.seen().len(), before, "the Hub was asked again");
    m.assert_pulled(&next);
    check_cache(&next, &m.downloads("main"));
}

/// `--limit-rate` holds for the Hub's ranged downloads and for the write-through after them: 16
/// MiB down in two 8 MiB parts, then up in two, at 8 MiB/s take 4 s.
#[test]
fn a_capped_pull_from_the_hub_and_its_write_through_keep_to_the_cap() {
    let (t, m, hub, dst) = setup("hub_limit_rate", "org/m", 16 * 1024 * 1024, 100);
    let started = Instant::now();
    let out = pull_via(
        t.hfcs()
            .json()
            .cache_dir(&dst)
            .env("HF_CACHE_SYNC_MULTIPART_THRESHOLD", "8MiB")
            .timeout(Duration::from_secs(60)),
        &hub,
        "org/m",
        &["--write-through", "--limit-rate", "8M"],
    )
    .run()
    .success();
    let took = started.elapsed().as_secs_f64();
    let s = out.json();
    assert_eq!(count(&s, "from_hub"), 3, "{out}");
    assert_eq!(s["write_through"][0]["status"], "written", "{out}");
    m.assert_pulled(&dst);
    assert!((3.8..=9.0).contains(&took), "took {took:.2} s\n{out}");
}

#[test]
fn a_gated_repo_is_written_through_only_when_the_team_allows_it() {
    let (t, m, hub, dst) = setup_gated("hub_write_through_gated", "org/gated", 1024, 100);
    pull_via(
        t.hfcs().cache_dir(&dst),
        &hub,
        "org/gated",
        &["--write-through"],
    )
    .env("HF_TOKEN", TOKEN)
    .run()
    .success()
    .stderr_has("is gated on the Hub")
    .stderr_has("team.allow_gated");
    assert!(t.bucket().keys().is_empty(), "{:?}", t.bucket().keys());
    m.assert_pulled(&dst);

    let yaml = t
        .garage_yaml(Key::ReadWrite)
        .replace("team:\n", "team:\n  allow_gated: true\n");
    t.write_config(&yaml);
    let again = t.cache("again");
    pull_via(
        t.hfcs().cache_dir(&again),
        &hub,
        "org/gated",
        &["--write-through"],
    )
    .env("HF_TOKEN", TOKEN)
    .run()
    .success();
    assert!(
        t.bucket().exists("refs/org__gated/main"),
        "{:?}",
        t.bucket().keys()
    );
}

#[test]
fn a_read_only_key_makes_write_through_a_warning() {
    let t = Sandbox::new("hub_write_through_ro");
    let m = HubModel::new("org/m", 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    t.write_config(&t.garage_yaml(Key::ReadOnly));
    let dst = t.cache("dst");
    let out = pull_via(
        t.hfcs().json().cache_dir(&dst),
        &hub,
        "org/m",
        &["--write-through"],
    )
    .run()
    .success()
    .stderr_has("warning: write-through to")
    .stderr_has("read-only key");
    assert_eq!(out.json()["write_through"][0]["status"], "failed", "{out}");
    m.assert_pulled(&dst);
    assert!(t.bucket().keys().is_empty(), "{:?}", t.bucket().keys());
}

#[test]
fn fallback_and_write_through_come_from_the_config_file() {
    let t = Sandbox::new("hub_fallback_config");
    let m = HubModel::new("org/m", 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    let yaml = format!(
        "{}pull:\n  fallback: [hf-hub]\n  write_through: true\n",
        t.garage_yaml(Key::ReadWrite)
    );
    t.write_config(&yaml);
    let dst = t.cache("dst");
    via_hub(t.hfcs().cache_dir(&dst), &hub)
        .args(["pull", "org/m"])
        .run()
        .success();
    m.assert_pulled(&dst);
    assert!(t.bucket().exists("refs/org__m/main"));
}

#[test]
fn a_nearer_share_then_the_bucket_then_the_hub_is_configuration() {
    let t = Sandbox::new("hub_fallback_tiers");
    let m = HubModel::new("org/m", 1024);
    let hub = HubStandIn::start(vec![m.repo()], 100);
    let share = t.path("share");
    std::fs::create_dir_all(&share).unwrap();
    // The node-local share first, then the bucket, then the Hub; write-through fills both.
    // (Directory remotes keep keys under the team prefix too.)
    let dst = t.cache("dst");
    let bucket = format!("s3://{}/{}", t.garage().bucket, t.prefix);
    // `pull org/m --remote SHARE --fallback BUCKET --fallback hf-hub --write-through`.
    let tiered = |cli: Cli, share: &Path| {
        via_hub(cli, &hub)
            .args(["pull", "org/m", "--remote"])
            .arg(share)
            .args([
                "--fallback",
                &bucket,
                "--fallback",
                "hf-hub",
                "--write-through",
            ])
    };
    tiered(t.hfcs().cache_dir(&dst), &share).run().success();
    assert!(t.bucket().exists("refs/org__m/main"));
    assert!(share.join(&t.prefix).join("refs/org__m/main").exists());
    // Another node with an empty share of its own: the bucket serves, and fills its share.
    let share2 = t.path("share2");
    std::fs::create_dir_all(&share2).unwrap();
    let before = hub.seen().len();
    let other = t.cache("other");
    let out = tiered(t.hfcs().json().cache_dir(&other), &share2)
        .run()
        .success();
    assert_eq!(count(&out.json(), "from_remote"), 3, "{out}");
    assert_eq!(hub.seen().len(), before);
    assert!(share2.join(&t.prefix).join("refs/org__m/main").exists());
    m.assert_pulled(&other);
}

#[test]
fn pull_all_fetches_from_the_hub_what_the_bucket_names_but_lacks() {
    let t = Sandbox::new("hub_fallback_pull_all");
    let m = HubModel::new("org/m", 1024);
    let other = HubModel::new("org/other", 2048);
    let hub = HubStandIn::start(vec![m.repo(), other.repo()], 100);
    // org/m is in the bucket; org/other only has its ref there (a manifest lost or never written).
    let src = t.cache("src");
    pull_via(t.hfcs().cache_dir(&src), &hub, "org/m", &[])
        .run()
        .success();
    t.hfcs().cache_dir(&src).arg("push").run().success();
    t.bucket().put("refs/org__other/main", other.commit.clone());
    let before = hub.downloads();

    let dst = t.cache("dst");
    let out = via_hub(t.hfcs().json().cache_dir(&dst), &hub)
        .args(["pull-all", "--fallback", "hf-hub"])
        .run()
        .success();
    let s = out.json();
    let repos = s["repos"].as_array().unwrap();
    assert_eq!(repos.len(), 2, "{out}");
    assert_eq!(count(&repos[0], "from_remote"), 3, "{out}");
    assert_eq!(count(&repos[1], "from_hub"), 3, "{out}");
    assert_eq!(hub.downloads() - before, 3);
    m.assert_pulled(&dst);
    other.assert_pulled(&dst);
    check_cache(&dst, &[]);
}
