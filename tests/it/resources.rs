//! Running short of resources: a disk that fills up during a pull (a small tmpfs, mounted when
//! the tests run as root), and the memory a pull or push of a 1 GiB and a 4 GiB blob takes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::cache::{pseudo_random, write_big_blob, CacheView};
use crate::common::cli::Usage;
use crate::common::spec::RepoSpec;
use crate::common::tmpfs::Tmpfs;
use crate::common::{
    assert_cache_tidy, blob_key, check_cache, commit_hash, count, files_under, Sandbox,
};

const MIB: usize = 1024 * 1024;

/// `org/fit`: v1.0 holds a config and two 2 MiB shards; main adds a 16 MiB shard, more than an
/// 8 MiB disk holds.
fn repo_too_big_for_8_mib(repo_id: &str) -> (RepoSpec, String, String) {
    let [v1, main] = ["v1", "main"].map(|s| commit_hash(&format!("{repo_id} {s}")));
    let s1 = pseudo_random(&format!("{repo_id} shard 1"), 2 * MIB);
    let s2 = pseudo_random(&format!("{repo_id} shard 2"), 2 * MIB + 1);
    let big = pseudo_random(&format!("{repo_id} big"), 16 * MIB);
    let spec = RepoSpec::new(repo_id)
        .rev(&v1, &["v1.0"])
        .file("config.json", b"{\"rev\": 1}\n")
        .lfs("a.safetensors", &s1)
        .lfs("b.safetensors", &s2)
        .rev(&main, &["main"])
        .file("config.json", b"{\"rev\": 2}\n")
        .lfs("a.safetensors", &s1)
        .lfs("b.safetensors", &s2)
        .lfs("big.safetensors", &big);
    (spec, v1, main)
}

/// [`repo_too_big_for_8_mib`] pushed, and an empty cache dir on an 8 MiB tmpfs to pull it into.
struct SmallDisk {
    spec: RepoSpec,
    v1: String,
    main: String,
    cache: PathBuf,
    _disk: Tmpfs,
}

impl SmallDisk {
    /// `None` (having said why) where no tmpfs can be mounted.
    fn pushed(t: &Sandbox) -> Option<SmallDisk> {
        let (spec, v1, main) = repo_too_big_for_8_mib("org/fit");
        let src = t.cache("src");
        spec.write(&src);
        t.hfcs().cache_dir(&src).arg("push").run().success();
        let disk = Tmpfs::mount(&t.path("small-disk"), "8m")?;
        Some(SmallDisk {
            spec,
            v1,
            main,
            cache: t.path("small-disk/hub"),
            _disk: disk,
        })
    }
}

#[test]
fn a_full_disk_fails_the_pull_clearly_and_leaves_nothing_half_written() {
    let t = Sandbox::new("res_disk_full");
    // `_disk` is bound, not left to `..`: the tmpfs stays mounted until the test ends.
    let Some(SmallDisk {
        spec,
        main,
        cache,
        _disk,
        ..
    }) = SmallDisk::pushed(&t)
    else {
        return;
    };

    let out = t
        .hfcs()
        .cache_dir(&cache)
        .args(["pull", "org/fit"])
        .run()
        .code(1)
        .stderr_has_any(&["no space left on device"]);
    let view = CacheView::model(&cache, "org/fit");
    let blobs_dir = view.dir.join("blobs");
    assert!(
        out.stderr.contains(&blobs_dir.display().to_string()),
        "the error names where it could not write ({})\n{out}",
        blobs_dir.display()
    );
    let big = spec.revision(&main).files[3].etag();
    assert!(!view.has_blob(big), "{out}");
    // No temporary file left, and everything under a blob name matches it.
    assert_cache_tidy(&cache);
    assert!(!view.snapshot(&main, "").exists(), "{out}");
    assert_eq!(view.ref_("main"), None, "{out}");
    t.hfcs().cache_dir(&cache).arg("verify").run().success();
    check_cache(&cache, &[]);
}

#[test]
fn what_fits_on_a_small_disk_is_complete_and_valid() {
    let t = Sandbox::new("res_disk_partial");
    let Some(SmallDisk {
        spec,
        v1,
        main,
        cache,
        _disk,
    }) = SmallDisk::pushed(&t)
    else {
        return;
    };

    // One worker: the 16 MiB shard goes first (largest first), fails, and its temporary file
    // is removed before the 2 MiB shards, which then fit.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["pull", "org/fit", "--workers", "1"])
        .run()
        .code(1);
    let s = out.json();
    assert_eq!(count(&s, "failed"), 1, "{out}");
    assert_eq!(count(&s, "downloaded"), 3, "{out}");
    assert!(
        s["failures"]
            .to_string()
            .to_lowercase()
            .contains("no space left on device"),
        "{out}"
    );
    let view = CacheView::model(&cache, "org/fit");
    for f in &spec.revision(&main).files[1..3] {
        assert!(view.has_blob(f.etag()), "{} fits\n{out}", f.path);
    }
    assert_cache_tidy(&cache);
    check_cache(&cache, &[]);

    // The revision that fits is pulled from what is already there.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .args(["pull", "org/fit", "-r", "v1.0"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(count(&s, "downloaded"), 1, "only its config\n{out}");
    assert_eq!(count(&s, "skipped_existing"), 2, "{out}");
    spec.assert_pulled(&cache, &v1);
    assert_cache_tidy(&cache);
    t.hfcs().cache_dir(&cache).arg("verify").run().success();
    check_cache(&cache, &spec.downloads("v1.0"));
}

/// Pushes, then pulls a `size`-byte blob with the default transfer settings; returns what
/// each peaked at and the CPU it took.
fn move_big_blob(size: usize) -> (Usage, Usage) {
    let t = Sandbox::new(&format!("res_memory_{}m", size / MIB));
    let repo_id = "org/huge";
    let src = t.cache(&format!("src-{}", size / MIB));
    let commit = commit_hash(repo_id);
    let started = Instant::now();
    let etag = write_big_blob(&src, repo_id, &commit, size);
    let generated = started.elapsed();

    // Only the timeout is longer than usual.
    let long = Duration::from_secs(1200);
    let (out, push) = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .arg("push")
        .timeout(long)
        .start()
        .wait_with_usage();
    let out = out.success();
    assert_eq!(count(&out.json(), "uploaded"), 2, "{out}");
    std::fs::remove_dir_all(&src).expect("remove the source cache");

    let dst = t.cache(&format!("dst-{}", size / MIB));
    let (out, pull) = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", repo_id])
        .timeout(long)
        .start()
        .wait_with_usage();
    let out = out.success();
    assert_eq!(count(&out.json(), "downloaded"), 2, "{out}");
    let view = CacheView::model(&dst, repo_id);
    assert_eq!(
        std::fs::metadata(view.blob(&etag)).map(|m| m.len()).ok(),
        Some(size as u64),
        "{out}"
    );
    assert_eq!(
        files_under(&view.dir.join("blobs")).len(),
        2,
        "no temporary file left\n{out}"
    );
    std::fs::remove_dir_all(&dst).expect("remove the pulled cache");
    t.bucket().delete(&blob_key(&etag));

    eprintln!(
        "{} MiB blob (generated in {generated:.1?}): push peak RSS {:.1} MiB (cpu {:.1?} user, \
         {:.1?} sys); pull peak RSS {:.1} MiB (cpu {:.1?} user, {:.1?} sys)",
        size / MIB,
        mib(push.max_rss),
        push.user,
        push.system,
        mib(pull.max_rss),
        pull.user,
        pull.system
    );
    (push, pull)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

#[test]
fn memory_stays_bounded_and_independent_of_blob_size_1_and_4_gib() {
    // A debug build, so above the release build's 64 MiB; what matters is that it is bounded
    // and does not grow with the blob.
    const LIMIT: u64 = 100 * MIB as u64;
    const GROWTH: u64 = 16 * MIB as u64;
    let (push_1g, pull_1g) = move_big_blob(1024 * MIB);
    let (push_4g, pull_4g) = move_big_blob(4096 * MIB);
    for (what, small, big) in [("push", push_1g, push_4g), ("pull", pull_1g, pull_4g)] {
        for (size, u) in [("1 GiB", small), ("4 GiB", big)] {
            assert!(
                u.max_rss < LIMIT,
                "{what} of a {size} blob peaked at {:.1} MiB",
                mib(u.max_rss)
            );
        }
        assert!(
            big.max_rss < small.max_rss + GROWTH,
            "{what} took {:.1} MiB for 1 GiB but {:.1} MiB for 4 GiB",
            mib(small.max_rss),
            mib(big.max_rss)
        );
    }
}
