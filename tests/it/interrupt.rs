//! SIGKILL at many points of a push and of a pull of a multi-revision fixture with a
//! multipart-sized blob. The points come from a seeded generator (`HFCS_TEST_KILL_SEED`
//! overrides the seed) spread over the requests of an uninterrupted run; the proxy holds the
//! chosen request and the test kills the binary there. After every kill the cache and the bucket
//! must be sound, and a re-run must finish the job moving only what was missing.
//!
//! Then Ctrl-C (SIGINT) during `rm` and `prune`, at the y/N prompt (on a pseudo-terminal) and in
//! the middle of a deletion of many revisions: the run must end within a second, say what it
//! removed, leave no revision half-deleted, and a re-run must finish the job.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::cli::{Output, Running};
use crate::common::fault_proxy::{FaultProxy, HoldAt, Target};
use crate::common::resilience::{
    assert_bucket_consistent_with, assert_no_wrong_blob, config_via, run_until_held, sharded,
    small_parts, Ended, Hashed,
};
use crate::common::seeded::SplitMix64;
use crate::common::spec;
use crate::common::{assert_cache_tidy, check_cache, count, files_under, Bucket, Sandbox};

/// Kills per series (push, pull), each at a seeded point.
const KILLS: u64 = 12;
const DEFAULT_SEED: u64 = 0x5eed_4b11_2024_0001;

/// The seed: `HFCS_TEST_KILL_SEED` (decimal or `0x` hex) or the fixed default.
fn seed() -> u64 {
    match std::env::var("HFCS_TEST_KILL_SEED") {
        Ok(v) if !v.trim().is_empty() => {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("HFCS_TEST_KILL_SEED={v} is not a number"))
        }
        _ => DEFAULT_SEED,
    }
}

/// `kills` request numbers in `1..=total`, one in each of `kills` equal stretches of the run, so
/// they cover its beginning, middle and end.
fn kill_points(rng: &mut SplitMix64, total: u64, kills: u64) -> Vec<u64> {
    assert!(
        total >= kills,
        "an uninterrupted run makes only {total} requests, fewer than {kills} kill points"
    );
    (0..kills)
        .map(|i| {
            let start = i * total / kills;
            let end = (i + 1) * total / kills;
            1 + start + rng.below(end - start)
        })
        .collect()
}

/// The local cache is sound: `verify` passes and huggingface_hub scans it without a warning.
#[track_caller]
fn assert_cache_sound(t: &Sandbox, cache: &Path) {
    assert_no_wrong_blob(cache);
    t.hfcs().cache_dir(cache).arg("verify").run().success();
    check_cache(cache, &[]);
}

#[test]
fn push_killed_anywhere_is_finished_by_the_next_push() {
    let t = Sandbox::new("kill_push");
    let fx = sharded();
    let src = t.cache("src");
    spec::write_all(&fx, &src);
    let seed = seed();
    let mut rng = SplitMix64(seed);
    let proxy = FaultProxy::new(&[]);
    let push = |prefix: &str| {
        let config = config_via(&t, &format!("{prefix}.yaml"), proxy.url(), prefix);
        small_parts(t.bare().config(&config))
            .cache_dir(&src)
            .args(["push", "--workers", "4"])
    };

    // An uninterrupted run sets the range the kill points are spread over.
    let baseline = format!("{}-baseline", t.prefix);
    push(&baseline).run().success();
    let total = proxy.requests();
    let mut points: Vec<HoldAt> = kill_points(&mut rng, total, KILLS)
        .into_iter()
        .map(HoldAt::Number)
        .collect();
    // And once while the big blob's parts are going up, so a multipart upload is surely open.
    points.push(HoldAt::First(Target::Path("PUT", "partNumber=")));

    let all_blobs = spec::etags(&fx).len() as u64;
    let mut hashed = Hashed::default();
    let (mut killed, mut survived, mut left_open, mut published_at_kill) = (0, 0, 0, 0);
    for (i, at) in points.iter().enumerate() {
        let prefix = format!("{}-k{i}", t.prefix);
        let bucket = Bucket::new(t.garage(), &prefix);
        proxy.reset(&[]);
        let ended = run_until_held(push(&prefix), &proxy, *at);
        let Ended::Killed(n) = ended else {
            panic!("kill {i} at {at:?}: the push finished first (seed {seed:#x})");
        };
        killed += 1;
        let context = format!("kill {i} at request {n} ({at:?}, seed {seed:#x})");

        // What a reader relies on holds at every point; the source cache is untouched.
        let state = assert_bucket_consistent_with(&bucket, &mut hashed);
        assert!(state.locks <= 1, "{context}: {} locks", state.locks);
        published_at_kill += state.manifests;
        let open = bucket.open_uploads();
        if !open.is_empty() {
            left_open += 1;
        }
        assert_cache_sound(&t, &src);

        // The next push finishes the job, uploads only what the bucket lacks and aborts the
        // upload the killed run left open.
        proxy.reset(&[]);
        let out = push(&prefix)
            .json()
            .env("HF_CACHE_SYNC_STALE_UPLOAD_AGE", "0s")
            .run()
            .success();
        let s = out.json();
        let lacked = all_blobs - state.blobs.len() as u64;
        assert_eq!(count(&s, "uploaded"), lacked, "{context}\n{out}");
        assert_eq!(
            count(&s, "skipped_existing"),
            state.blobs.len() as u64,
            "{context}\n{out}"
        );
        if !open.is_empty() {
            assert!(
                out.stderr
                    .contains(&format!("aborted {} multipart upload", open.len())),
                "{context}: the stale upload was not aborted\n{out}"
            );
        }
        assert_eq!(
            bucket.open_uploads(),
            Vec::<String>::new(),
            "{context}: an upload is still open"
        );
        let after = assert_bucket_consistent_with(&bucket, &mut hashed);
        // The killed run's lock stays until it is stale (a push stands beside it); the re-run
        // removed its own.
        assert_eq!(after.locks, state.locks, "{context}");
        let keys: BTreeSet<String> = bucket
            .keys()
            .into_iter()
            .filter(|k| !k.starts_with("locks/"))
            .collect();
        assert_eq!(
            keys,
            spec::remote_keys(&fx),
            "{context}: the re-run left the bucket incomplete"
        );
        assert_eq!(after.blobs, spec::etags(&fx), "{context}");
        survived += 1;
    }
    assert!(
        left_open >= 1,
        "no kill left a multipart upload open: the stale-upload check proved nothing"
    );
    eprintln!(
        "push kills: {} tried, {killed} killed, {survived} survived, {left_open} left a multipart \
         upload open, {published_at_kill} manifests already published at the kills; {total} \
         requests uninterrupted (seed {seed:#x})",
        points.len()
    );
}

#[test]
fn pull_killed_anywhere_leaves_a_valid_cache_and_is_finished_by_the_next_pull() {
    let t = Sandbox::new("kill_pull");
    let fx = sharded();
    let src = t.cache("src");
    spec::write_all(&fx, &src);
    small_parts(t.hfcs().cache_dir(&src))
        .arg("push")
        .run()
        .success();
    let seed = seed();
    // A different stream from the push series' for the same seed.
    let mut rng = SplitMix64(seed ^ 0x7075_6c6c);
    let proxy = FaultProxy::new(&[]);
    let config = config_via(&t, "proxied.yaml", proxy.url(), &t.prefix);
    let pull = |dst: &Path, args: &[String]| {
        small_parts(t.bare().config(&config))
            .cache_dir(dst)
            .args(args)
            .args(["--workers", "4"])
    };

    let baseline = t.cache("baseline");
    for args in spec::pulls(&fx) {
        pull(&baseline, &args).run().success();
    }
    let total = proxy.requests();
    spec::assert_all_pulled(&fx, &baseline);
    let points = kill_points(&mut rng, total, KILLS);

    let all_blobs = spec::etags(&fx);
    let (mut killed, mut survived, mut temp_left, mut complete_revs) = (0, 0, 0, 0);
    for (i, &at) in points.iter().enumerate() {
        let dst = t.cache(&format!("dst{i}"));
        proxy.reset(&[]);
        // The pulls run one after another; the one that reaches the kill point dies there.
        let hold = proxy.hold(HoldAt::Number(at));
        let mut n = None;
        for args in spec::pulls(&fx) {
            let mut child = pull(&dst, &args).spawn();
            let done = loop {
                if let Ok(k) = hold.try_recv() {
                    child.kill().expect("SIGKILL the binary");
                    n = Some(k);
                    break None;
                }
                if let Some(status) = child.try_wait().expect("poll the binary") {
                    break Some(status);
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            let out = child.wait_with_output().expect("reap the binary");
            match done {
                None => break,
                Some(status) => assert!(
                    status.success(),
                    "pull {args:?} failed before the kill point\n{}",
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        }
        proxy.release();
        proxy.wait_idle();
        let Some(n) = n else {
            panic!("kill {i} at request {at}: the pulls finished first (seed {seed:#x})");
        };
        killed += 1;
        let context = format!("kill {i} at request {n} (seed {seed:#x})");

        // A valid cache: right bytes under every blob name, every revision present complete,
        // verify and huggingface_hub happy.
        assert_cache_sound(&t, &dst);
        for repo in &fx {
            let view = repo.view(&dst);
            for rev in &repo.revisions {
                let present = view.dir.join("snapshots").join(&rev.commit).exists();
                if present {
                    repo.assert_linked(&dst, &rev.commit);
                    complete_revs += 1;
                }
                for r in &rev.refs {
                    if let Some(commit) = view.ref_(r) {
                        assert_eq!(commit, rev.commit, "{context}: refs/{r}");
                        assert!(
                            present,
                            "{context}: refs/{r} names a revision not in the cache"
                        );
                    }
                }
            }
        }
        if files_under(&dst)
            .iter()
            .any(|f| f.contains("/blobs/.hfcs-"))
        {
            temp_left += 1;
        }
        let had: BTreeSet<String> = all_blobs
            .iter()
            .filter(|e| fx.iter().any(|r| r.view(&dst).blob(e).is_file()))
            .cloned()
            .collect();

        // Re-running finishes the job without fetching again what is already verified here.
        proxy.reset(&[]);
        let mut downloaded = 0;
        for args in spec::pulls(&fx) {
            let out = pull(&dst, &args).json().run().success();
            downloaded += count(&out.json(), "downloaded");
        }
        assert_eq!(
            downloaded,
            (all_blobs.len() - had.len()) as u64,
            "{context}: blobs already in the cache were downloaded again"
        );
        for seen in proxy.log().iter().filter(|s| s.is_blob_get()) {
            assert!(
                !had.iter().any(|e| seen.target.contains(e.as_str())),
                "{context}: {} fetched a blob the cache already had",
                seen.target
            );
        }
        spec::assert_all_pulled(&fx, &dst);
        assert_cache_tidy(&dst);
        survived += 1;
    }
    eprintln!(
        "pull kills: {} tried, {killed} killed, {survived} survived, {temp_left} left temporary \
         files, {complete_revs} revisions complete at the kills; {total} requests uninterrupted \
         (seed {seed:#x})",
        points.len()
    );
}

// ---------------------------------------------------------------------------------------------
// Ctrl-C during `rm` and `prune`: at the y/N prompt and in the middle of a deletion.

/// How long a Ctrl-C may take to end a deletion.
const CTRL_C_EXIT: Duration = Duration::from_secs(1);

/// A pseudo-terminal: a run given its slave end as stdin sees a terminal and asks before it
/// deletes. The master end must stay open while the run reads.
struct Pty {
    _master: std::fs::File,
    slave: std::os::fd::OwnedFd,
}

fn pty() -> Pty {
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::os::unix::fs::OpenOptionsExt;
    // SAFETY: posix_openpt returns a new descriptor or -1; it is owned below exactly once.
    let fd = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
    assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let master = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut name = [0 as libc::c_char; 128];
    // SAFETY: `fd` is a pty master; `name` is a live buffer of the length given.
    unsafe {
        assert_eq!(libc::grantpt(fd), 0, "grantpt");
        assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
        assert_eq!(
            libc::ptsname_r(fd, name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
    }
    // SAFETY: ptsname_r wrote a NUL-terminated path into `name`.
    let path = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }
        .to_str()
        .expect("a UTF-8 pty path")
        .to_string();
    let slave = std::fs::File::options()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {path}: {e}"));
    Pty {
        _master: master,
        slave: OwnedFd::from(slave),
    }
}

/// `org/big` with `revisions` revisions of `files` files each (in folders of 100), linking to
/// one blob all revisions share and one of their own. With `refs`, each revision has a ref
/// `r<i>`; without, only the last has one (`main`) and the others are detached. Returns the
/// commits, oldest first.
fn many_revisions(cache: &Path, revisions: usize, files: usize, refs: bool) -> Vec<String> {
    use crate::common::cache::snapshot_link_target;
    use std::os::unix::fs::symlink;
    let repo = cache.join("models--org--big");
    for sub in ["blobs", "refs", "snapshots"] {
        std::fs::create_dir_all(repo.join(sub)).unwrap();
    }
    let blob = |content: &str| {
        let etag = crate::common::sha256_hex(content.as_bytes());
        std::fs::write(repo.join("blobs").join(&etag), content).unwrap();
        etag
    };
    let shared = blob("shared by every revision");
    let mut commits = Vec::new();
    for i in 0..revisions {
        let commit = crate::common::commit_hash(&format!("big revision {i}"));
        let own = blob(&format!("only revision {i} uses this"));
        let snap = repo.join("snapshots").join(&commit);
        for j in 0..files {
            let path = format!("d{}/f{j}.txt", j / 100);
            let etag = if j == 0 { &own } else { &shared };
            let link = snap.join(&path);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(snapshot_link_target(&path, etag), &link).unwrap();
        }
        if refs {
            std::fs::write(repo.join("refs").join(format!("r{i}")), &commit).unwrap();
        }
        commits.push(commit);
    }
    if !refs {
        std::fs::write(repo.join("refs/main"), commits.last().unwrap()).unwrap();
    }
    commits
}

/// Snapshot folders left in `org/big`.
fn snapshots_left(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("models--org--big/snapshots")).map_or(0, |d| d.count())
}

/// Sends SIGINT to a run and waits for it to end, which must take at most [`CTRL_C_EXIT`].
#[track_caller]
fn ctrl_c(mut run: Running) -> Output {
    let pid = run.pid();
    let sent = Instant::now();
    // SAFETY: kill only sends a signal to our own child, still running.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) }, 0);
    while run.is_running() && sent.elapsed() < CTRL_C_EXIT {
        std::thread::sleep(Duration::from_millis(5));
    }
    let took = sent.elapsed();
    let still_running = run.is_running();
    if still_running {
        // SAFETY: as above; the run ignored SIGINT, so it is stopped for good.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let out = run.wait();
    assert!(
        !still_running && took <= CTRL_C_EXIT,
        "Ctrl-C did not end the run within {CTRL_C_EXIT:?} (it was killed then)\n{out}"
    );
    out.code(130)
}

/// Ctrl-C at the y/N prompt of `args` ends the run at once and deletes nothing.
fn ctrl_c_at_the_prompt(name: &str, args: &[&str]) {
    let t = Sandbox::local(name);
    let cache = t.cache("hub");
    let commits = many_revisions(&cache, 3, 3, false);
    let terminal = pty();
    let mut run = t
        .bare()
        .cache_dir(&cache)
        .args(args)
        .stdin(terminal.slave.try_clone().unwrap())
        .start();
    // What would go is listed before the question.
    assert!(
        run.wait_for_stderr("would remove", Duration::from_secs(60))
            .is_some(),
        "no preview before the prompt"
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(run.is_running(), "the run did not wait for an answer");
    let out = ctrl_c(run);
    assert!(out.stderr.contains("nothing was deleted"), "{out}");
    assert_eq!(snapshots_left(&cache), commits.len(), "{out}");
    check_cache(&cache, &[]);
}

#[test]
fn ctrl_c_at_the_rm_prompt_exits_at_once_deleting_nothing() {
    ctrl_c_at_the_prompt("rm_prompt_ctrl_c", &["rm", "org/big"]);
}

#[test]
fn ctrl_c_at_the_prune_prompt_exits_at_once_deleting_nothing() {
    ctrl_c_at_the_prompt("prune_prompt_ctrl_c", &["prune", "--detached"]);
}

/// Starts `args` on a cache of many large revisions, sends Ctrl-C once the first snapshot is
/// gone, and checks the run stopped between two revisions and said what it had removed.
/// Returns the commits and the revisions the summary says were removed.
fn ctrl_c_mid_deletion(t: &Sandbox, cache: &Path, args: &[&str], refs: bool) -> Vec<String> {
    const REVISIONS: usize = 20;
    let commits = many_revisions(cache, REVISIONS, 3000, refs);
    let mut run = t.bare().json().cache_dir(cache).args(args).start();
    let deadline = Instant::now() + Duration::from_secs(120);
    while snapshots_left(cache) == REVISIONS {
        assert!(run.is_running(), "the run ended before deleting anything");
        assert!(Instant::now() < deadline, "no revision was deleted");
        std::thread::sleep(Duration::from_millis(2));
    }
    let out = ctrl_c(run);
    let s = out.json();
    assert_eq!(s["interrupted"], true, "{out}");
    let removed: Vec<String> = s["revisions"]
        .as_array()
        .unwrap_or_else(|| panic!("no revisions in the summary\n{out}"))
        .iter()
        .map(|r| r["commit"].as_str().unwrap().to_string())
        .collect();
    let left = snapshots_left(cache);
    assert!(
        left > 0,
        "the deletion finished before Ctrl-C reached it: nothing was interrupted\n{out}"
    );
    assert_eq!(removed.len() + left, REVISIONS, "{out}");
    assert!(out.stderr.contains("removed so far"), "{out}");
    assert!(out.stderr.contains("run the same command again"), "{out}");
    // No revision half-deleted: each snapshot is there with its ref, or gone with it.
    let repo = cache.join("models--org--big");
    for (i, commit) in commits.iter().enumerate() {
        let snapshot = repo.join("snapshots").join(commit).exists();
        assert_eq!(snapshot, !removed.contains(commit), "{commit}\n{out}");
        if refs {
            let ref_left = repo.join("refs").join(format!("r{i}")).exists();
            assert_eq!(ref_left, snapshot, "ref r{i} of {commit}\n{out}");
        }
    }
    check_cache(cache, &[]);
    commits
}

#[test]
fn ctrl_c_during_rm_stops_between_revisions_and_a_rerun_finishes() {
    let t = Sandbox::local("rm_ctrl_c");
    let cache = t.cache("hub");
    ctrl_c_mid_deletion(&t, &cache, &["rm", "org/big", "--yes"], true);
    t.bare()
        .cache_dir(&cache)
        .args(["rm", "org/big", "--yes"])
        .run()
        .success();
    assert!(!cache.join("models--org--big").exists());
    check_cache(&cache, &[]);
}

#[test]
fn ctrl_c_during_prune_stops_between_revisions_and_a_rerun_finishes() {
    let t = Sandbox::local("prune_ctrl_c");
    let cache = t.cache("hub");
    let args = ["prune", "--detached", "--yes"];
    let commits = ctrl_c_mid_deletion(&t, &cache, &args, false);
    t.bare().cache_dir(&cache).args(args).run().success();
    assert_eq!(snapshots_left(&cache), 1, "only the revision main names");
    let main = commits.last().unwrap();
    let scan = check_cache(&cache, &[]);
    let repo = crate::common::scanned_repo(&scan, "model", "org/big");
    crate::common::scanned_revision(repo, main);
}
