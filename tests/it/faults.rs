//! Push and pull through a proxy that injects faults between the binary and Garage. Transient
//! faults (throttling, 500s, resets, stalls, cut bodies) are retried to a correct result;
//! persistent ones fail with a clear message and exit 1, leaving no wrong blob under a blob name,
//! no manifest or ref whose blobs are missing and no multipart upload open.

use std::path::{Path, PathBuf};

use crate::common::cli::Output;
use crate::common::fault_proxy::{Fault, FaultProxy, Rule, Schedule, Target};
use crate::common::resilience::{
    assert_bucket_consistent, assert_no_wrong_blob, config_via, sharded, small_parts,
    take_kept_partials,
};
use crate::common::spec::{self, RepoSpec};
use crate::common::{assert_cache_tidy, check_cache, count, manifest_key, Cli, Sandbox};

/// The binary against `proxy`, on this sandbox's prefix, moving the big blob in parts.
fn via(t: &Sandbox, proxy: &FaultProxy, cache: &Path) -> Cli {
    let config = config_via(t, "proxied.yaml", proxy.url(), &t.prefix);
    small_parts(t.bare().config(&config)).cache_dir(cache)
}

/// A sandbox whose cache `src` holds the fixture.
fn fixture(name: &str) -> (Sandbox, [RepoSpec; 2], PathBuf) {
    let t = Sandbox::new(name);
    let fx = sharded();
    let src = t.cache("src");
    spec::write_all(&fx, &src);
    (t, fx, src)
}

/// A sandbox with the fixture pushed straight to Garage.
fn pushed(name: &str) -> (Sandbox, [RepoSpec; 2]) {
    let (t, fx, src) = fixture(name);
    small_parts(t.hfcs().cache_dir(&src))
        .arg("push")
        .run()
        .success();
    (t, fx)
}

/// The proxy really did inject each of `kinds`: a test that injected nothing proves nothing.
#[track_caller]
fn assert_injected(proxy: &FaultProxy, kinds: &[Fault]) {
    for kind in kinds {
        assert!(
            proxy.injected(*kind) > 0,
            "no {kind:?} fault was injected: {}\n{:#?}",
            proxy.summary(),
            proxy.log()
        );
    }
}

/// A clear message: no Rust debug output, no panic.
#[track_caller]
fn assert_plain_message(out: &Output) {
    for dump in [
        "panicked",
        "SdkError",
        "ServiceError",
        "DispatchFailure",
        "Error {",
        "Some(",
        "source:",
        "backtrace",
    ] {
        assert!(
            !out.stderr.contains(dump) && !out.stdout.contains(dump),
            "output contains a debug dump ({dump:?})\n{out}"
        );
    }
}

/// A complete, correct push: every key, every blob matching its name.
#[track_caller]
fn assert_fully_pushed(t: &Sandbox, fx: &[RepoSpec]) {
    let bucket = t.bucket();
    let state = assert_bucket_consistent(&bucket);
    let keys: std::collections::BTreeSet<String> = bucket.keys().into_iter().collect();
    assert_eq!(
        keys,
        spec::remote_keys(fx),
        "the bucket differs from a complete push"
    );
    assert_eq!(state.blobs, spec::etags(fx));
    assert_eq!(
        bucket.open_uploads(),
        Vec::<String>::new(),
        "a multipart upload was left open"
    );
}

/// Runs every pull of the fixture through `proxy` into `dst`, each one succeeding.
fn pull_all_revisions(t: &Sandbox, fx: &[RepoSpec], proxy: &FaultProxy, dst: &Path) -> u64 {
    let mut downloaded = 0;
    for args in spec::pulls(fx) {
        let out = via(t, proxy, dst).json().args(&args).run().success();
        downloaded += count(&out.json(), "downloaded");
    }
    downloaded
}

#[test]
fn push_retries_throttling_and_server_errors() {
    let (t, fx, src) = fixture("faults_push_5xx");
    let proxy = FaultProxy::new(&[
        // The first requests of the run, whatever they are.
        Rule::new(Fault::SlowDown, Target::Any, Schedule::First(3)),
        // Completing the multipart upload, twice.
        Rule::new(
            Fault::InternalError,
            Target::Path("POST", "uploadId="),
            Schedule::First(2),
        ),
        // One blob upload or part in three.
        Rule::new(Fault::InternalError, Target::BlobPut, Schedule::Every(3)),
        Rule::new(Fault::SlowDown, Target::Method("PUT"), Schedule::Every(5)),
    ]);
    let out = via(&t, &proxy, &src).json().arg("push").run().success();
    let s = out.json();
    assert_eq!(
        count(&s, "uploaded"),
        spec::etags(&fx).len() as u64,
        "{out}"
    );
    assert_eq!(count(&s, "failed"), 0, "{out}");
    assert_eq!(count(&s, "manifests"), 4, "{out}");
    assert_eq!(count(&s, "refs"), 4, "{out}");
    assert_eq!(
        s["bytes_uploaded"].as_u64(),
        Some(spec::total_bytes(&fx)),
        "{out}"
    );
    assert_injected(&proxy, &[Fault::SlowDown, Fault::InternalError]);
    assert!(proxy.injected(Fault::SlowDown) >= 4, "{}", proxy.summary());
    assert_fully_pushed(&t, &fx);
    eprintln!("push through 503/500: {}", proxy.summary());
}

#[test]
fn push_survives_resets_stalls_and_cut_responses() {
    let (t, fx, src) = fixture("faults_push_net");
    let proxy = FaultProxy::new(&[
        // The listing of unfinished uploads stops half-way through its XML.
        Rule::new(Fault::Stall, Target::Method("GET"), Schedule::First(1)),
        // The first part's answer never comes.
        Rule::new(
            Fault::Stall,
            Target::Path("PUT", "partNumber="),
            Schedule::First(1),
        ),
        // Every third blob upload or part: the connection is reset in the answer's head.
        Rule::new(Fault::Reset, Target::BlobPut, Schedule::Every(3)),
        // The answer to completing the upload is cut short.
        Rule::new(
            Fault::Truncate,
            Target::Path("POST", "uploadId="),
            Schedule::First(1),
        ),
        // A manifest's answer is reset.
        Rule::new(
            Fault::Reset,
            Target::Path("PUT", "/manifests/"),
            Schedule::First(1),
        ),
    ]);
    let out = via(&t, &proxy, &src).json().arg("push").run().success();
    let s = out.json();
    assert_eq!(count(&s, "failed"), 0, "{out}");
    assert_eq!(
        count(&s, "uploaded") + count(&s, "skipped_existing"),
        spec::etags(&fx).len() as u64,
        "{out}"
    );
    assert_injected(&proxy, &[Fault::Stall, Fault::Reset, Fault::Truncate]);
    assert_fully_pushed(&t, &fx);
    eprintln!("push through resets/stalls/cuts: {}", proxy.summary());
}

#[test]
fn upload_whose_start_was_never_answered_is_aborted_by_the_next_push() {
    // The server starts an upload but its answer is lost; the retry's upload then fails for
    // good and is aborted. The first upload's id was never seen: only a later listing finds it.
    let (t, fx, src) = fixture("faults_push_orphan");
    let proxy = FaultProxy::new(&[
        Rule::new(
            Fault::Reset,
            Target::Path("POST", "uploads"),
            Schedule::First(1),
        ),
        Rule::new(
            Fault::InternalError,
            Target::Path("PUT", "partNumber="),
            Schedule::Always,
        ),
    ]);
    let out = via(&t, &proxy, &src).json().arg("push").run().code(1);
    assert_eq!(count(&out.json(), "failed"), 1, "{out}");
    assert_injected(&proxy, &[Fault::Reset, Fault::InternalError]);
    let bucket = t.bucket();
    assert_bucket_consistent(&bucket);
    assert_eq!(
        bucket.open_uploads().len(),
        1,
        "only the upload whose id was lost stays open\n{out}"
    );

    proxy.reset(&[]);
    via(&t, &proxy, &src)
        .arg("push")
        .env("HF_CACHE_SYNC_STALE_UPLOAD_AGE", "0s")
        .run()
        .success()
        .stderr_has("aborted 1 multipart upload");
    assert_fully_pushed(&t, &fx);
}

#[test]
fn pull_retries_throttling_and_server_errors() {
    let (t, fx) = pushed("faults_pull_5xx");
    let proxy = FaultProxy::new(&[
        Rule::new(Fault::SlowDown, Target::Any, Schedule::First(3)),
        Rule::new(Fault::InternalError, Target::BlobGet, Schedule::Every(2)),
        Rule::new(
            Fault::SlowDown,
            Target::Path("GET", "/manifests/"),
            Schedule::Every(2),
        ),
    ]);
    let dst = t.cache("dst");
    let downloaded = pull_all_revisions(&t, &fx, &proxy, &dst);
    assert_eq!(
        downloaded,
        spec::etags(&fx).len() as u64,
        "each blob downloaded once"
    );
    assert_injected(&proxy, &[Fault::SlowDown, Fault::InternalError]);
    spec::assert_all_pulled(&fx, &dst);
    assert_cache_tidy(&dst);
    t.hfcs().cache_dir(&dst).arg("verify").run().success();
    eprintln!("pull through 503/500: {}", proxy.summary());
}

#[test]
fn pull_survives_resets_stalls_and_truncated_bodies() {
    let (t, fx) = pushed("faults_pull_net");
    let proxy = FaultProxy::new(&[
        // A ref's body never finishes.
        Rule::new(
            Fault::Stall,
            Target::Path("GET", "/refs/"),
            Schedule::First(1),
        ),
        // A manifest's body is cut short.
        Rule::new(
            Fault::Truncate,
            Target::Path("GET", "/manifests/"),
            Schedule::First(1),
        ),
        // The first blob download stalls half-way.
        Rule::new(Fault::Stall, Target::BlobGet, Schedule::First(1)),
        Rule::new(Fault::Reset, Target::BlobGet, Schedule::Every(3)),
        Rule::new(Fault::Truncate, Target::BlobGet, Schedule::Every(4)),
    ]);
    let dst = t.cache("dst");
    let downloaded = pull_all_revisions(&t, &fx, &proxy, &dst);
    assert_eq!(
        downloaded,
        spec::etags(&fx).len() as u64,
        "each blob downloaded once"
    );
    assert_injected(&proxy, &[Fault::Stall, Fault::Reset, Fault::Truncate]);
    spec::assert_all_pulled(&fx, &dst);
    assert_cache_tidy(&dst);
    t.hfcs().cache_dir(&dst).arg("verify").run().success();
    eprintln!("pull through resets/stalls/cuts: {}", proxy.summary());
}

#[test]
fn push_fails_cleanly_when_blob_uploads_keep_failing() {
    let (t, _fx, src) = fixture("faults_push_persist");
    let proxy = FaultProxy::new(&[Rule::new(
        Fault::InternalError,
        Target::BlobPut,
        Schedule::Always,
    )]);
    let out = via(&t, &proxy, &src).arg("push").run().code(1);
    assert_plain_message(&out);
    assert!(
        out.stdout.contains("failed") && out.stdout.contains("InternalError"),
        "the summary should name the failures and the server's answer\n{out}"
    );
    assert_injected(&proxy, &[Fault::InternalError]);
    let bucket = t.bucket();
    let state = assert_bucket_consistent(&bucket);
    assert_eq!(state.manifests + state.refs, 0, "{:?}", bucket.keys());
    assert!(state.blobs.is_empty(), "{:?}", bucket.keys());
    assert_eq!(
        bucket.open_uploads(),
        Vec::<String>::new(),
        "a failed multipart upload was left open\n{out}"
    );
    eprintln!("push, blob uploads always failing: {}", proxy.summary());
}

#[test]
fn push_publishes_only_revisions_whose_blobs_made_it() {
    // Completing the big blob's multipart upload always fails: the model's revisions need it,
    // the dataset does not.
    let (t, fx, src) = fixture("faults_push_complete");
    let proxy = FaultProxy::new(&[Rule::new(
        Fault::InternalError,
        Target::Path("POST", "uploadId="),
        Schedule::Always,
    )]);
    let out = via(&t, &proxy, &src).json().arg("push").run().code(1);
    assert_plain_message(&out);
    let s = out.json();
    assert_eq!(count(&s, "failed"), 1, "only the big blob\n{out}");
    assert_injected(&proxy, &[Fault::InternalError]);
    let bucket = t.bucket();
    let state = assert_bucket_consistent(&bucket);
    assert_eq!(
        state.blobs.len(),
        spec::etags(&fx).len() - 1,
        "{:?}",
        bucket.keys()
    );
    assert_eq!((state.manifests, state.refs), (1, 1), "{:?}", bucket.keys());
    let dataset = &fx[1];
    assert!(bucket.exists(&manifest_key(&dataset.repo_id, dataset.commit("main"))));
    assert_eq!(
        bucket.open_uploads(),
        Vec::<String>::new(),
        "the upload that could not be completed was left open\n{out}"
    );

    // Once the server behaves, a re-run sends only the big blob.
    proxy.reset(&[]);
    let out = via(&t, &proxy, &src).json().arg("push").run().success();
    let s = out.json();
    assert_eq!(count(&s, "uploaded"), 1, "{out}");
    assert_eq!(
        count(&s, "skipped_existing"),
        spec::etags(&fx).len() as u64 - 1,
        "{out}"
    );
    assert_fully_pushed(&t, &fx);
}

#[test]
fn every_request_refused_is_a_clear_error() {
    let (t, _fx, src) = fixture("faults_all_503");
    let proxy = FaultProxy::new(&[Rule::new(Fault::SlowDown, Target::Any, Schedule::Always)]);
    let out = via(&t, &proxy, &src).arg("push").run().code(1);
    assert_plain_message(&out);
    let out = out
        .stderr_has("error: ")
        .stderr_has_any(&["SlowDown", "503"])
        .stderr_has("gave up after 11 attempts");
    assert!(
        out.stderr.lines().count() <= 6,
        "a few lines, not a dump\n{out}"
    );
    let pushed_requests = proxy.requests();
    assert_eq!(t.bucket().keys(), Vec::<String>::new());

    let dst = t.cache("dst");
    let out = via(&t, &proxy, &dst)
        .args(["pull", "org/sharded"])
        .run()
        .code(1);
    assert_plain_message(&out);
    out.stderr_has("error: ")
        .stderr_has_any(&["SlowDown", "503"]);
    assert_eq!(crate::common::files_under(&dst), Vec::<String>::new());
    // Each request was tried a bounded number of times: the blob LIST and the listing of
    // unfinished uploads, 11 attempts each.
    assert!(
        (2..=22).contains(&pushed_requests),
        "{pushed_requests} requests for a push that cannot even list"
    );
    eprintln!("every request refused: {}", proxy.summary());
}

#[test]
fn pull_fails_cleanly_when_blob_downloads_keep_failing() {
    let (t, fx) = pushed("faults_pull_persist");
    let proxy = FaultProxy::new(&[
        Rule::new(Fault::Truncate, Target::BlobGet, Schedule::Every(2)),
        Rule::new(Fault::Reset, Target::BlobGet, Schedule::Always),
    ]);
    let dst = t.cache("dst");
    let out = via(&t, &proxy, &dst)
        .args(["pull", "org/sharded"])
        .run()
        .code(1);
    assert_plain_message(&out);
    assert!(
        out.stdout.contains("Failed to pull")
            && out.stderr.contains("hint: run the same command again"),
        "{out}"
    );
    assert_injected(&proxy, &[Fault::Truncate, Fault::Reset]);
    assert_no_wrong_blob(&dst);
    // What arrived stays for the next run, and says so; nothing else is left.
    if take_kept_partials(&dst, &spec::blobs(&fx)) > 0 {
        out.stderr_has("the next pull resumes from there");
    }
    assert_cache_tidy(&dst);
    let view = fx[0].view(&dst);
    assert_eq!(view.ref_("main"), None, "a ref to an incomplete revision");
    check_cache(&dst, &[]);
    t.hfcs().cache_dir(&dst).arg("verify").run().success();
    eprintln!("pull, blob downloads always failing: {}", proxy.summary());
}

#[test]
fn invalid_timeout_is_a_configuration_error() {
    let t = Sandbox::local("faults_bad_timeout");
    for bad in ["0", "-3", "soon", "10s"] {
        t.bare()
            .arg("status")
            .env("HF_CACHE_SYNC_TIMEOUT", bad)
            .run()
            .code(2)
            .stderr_has("HF_CACHE_SYNC_TIMEOUT")
            .stderr_has("positive number of seconds");
    }
}
