//! `dedupe`: one blob held by three repos in two cache dirs becomes one file; huggingface_hub
//! still accepts both caches; status counts it once; rm and prune count its bytes freed only when
//! its last link goes; copies on another file system, or that do not match their name, are left
//! as they are.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::cache::pseudo_random;
use crate::common::spec::{self, RepoSpec};
use crate::common::{check_cache, commit_hash, count, hf_cache_verify_specs, Sandbox};

const WEIGHTS: &str = "model.safetensors";

/// `org/a` and `org/b` for the primary cache, `org/c` (whose detached revision holds the same
/// weights and an extra file) for the secondary one.
fn fixture() -> ([RepoSpec; 2], RepoSpec) {
    let weights = pseudo_random("dedupe weights", 300 * 1024);
    let a = RepoSpec::new("org/a")
        .rev(&commit_hash("org/a main"), &["main"])
        .file("config.json", b"{\"model\": \"a\"}\n")
        .lfs(WEIGHTS, &weights);
    let b = RepoSpec::new("org/b")
        .rev(&commit_hash("org/b main"), &["main"])
        .file("config.json", b"{\"model\": \"b\"}\n")
        .lfs(WEIGHTS, &weights);
    let c = RepoSpec::new("org/c")
        .rev(&commit_hash("org/c main"), &["main"])
        .file("config.json", b"{\"model\": \"c\"}\n")
        .rev(&commit_hash("org/c old"), &[])
        .lfs(WEIGHTS, &weights)
        .lfs("extra.bin", &pseudo_random("dedupe extra", 40 * 1024));
    ([a, b], c)
}

fn weights_of(repo: &RepoSpec) -> &[u8] {
    &repo.revisions.last().unwrap().file(WEIGHTS).bytes
}

fn blob_path(cache: &Path, repo: &RepoSpec) -> PathBuf {
    let etag = repo
        .revisions
        .last()
        .unwrap()
        .file(WEIGHTS)
        .etag()
        .to_string();
    repo.view(cache).blob(&etag)
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

/// The two caches, written.
fn caches(t: &Sandbox) -> (PathBuf, PathBuf, [RepoSpec; 2], RepoSpec) {
    let (ab, c) = fixture();
    let primary = t.cache("primary");
    let secondary = t.cache("secondary");
    spec::write_all(&ab, &primary);
    c.write(&secondary);
    (primary, secondary, ab, c)
}

fn dedupe(t: &Sandbox, dirs: &[&Path]) -> crate::common::cli::Output {
    let mut cli = t.bare().json();
    for d in dirs {
        cli = cli.cache_dir(d);
    }
    cli.arg("dedupe").run()
}

#[test]
fn a_blob_in_three_repos_and_two_caches_is_stored_once() {
    let t = Sandbox::local("dedupe_once");
    let (primary, secondary, ab, c) = caches(&t);
    let [a, b] = &ab;
    let size = weights_of(a).len() as u64;
    let paths = [
        blob_path(&primary, a),
        blob_path(&primary, b),
        blob_path(&secondary, &c),
    ];

    let mut cli = t.bare().json().cache_dir(&primary).cache_dir(&secondary);
    cli = cli.args(["dedupe", "--dry-run"]);
    let out = cli.run().success();
    let preview = out.json();
    assert_eq!(preview["bytes_saved"], 2 * size, "{out}");
    assert_eq!(count(&preview, "linked"), 2, "{out}");
    assert_eq!(
        preview["linked"][0]["method"],
        serde_json::Value::Null,
        "{out}"
    );
    let inodes: Vec<u64> = paths.iter().map(|p| inode(p)).collect();
    assert!(
        inodes[0] != inodes[1] && inodes[1] != inodes[2],
        "a dry run changes nothing"
    );

    let out = dedupe(&t, &[&primary, &secondary]).success();
    let done = out.json();
    assert_eq!(done["bytes_saved"], 2 * size, "{out}");
    assert_eq!(count(&done, "linked"), 2, "{out}");
    assert_eq!(count(&done, "failures"), 0, "{out}");
    // ext4 and tmpfs share no extents: hard links, one file with three names.
    assert_eq!(done["linked"][0]["method"], "hardlink", "{out}");
    let inodes: Vec<u64> = paths.iter().map(|p| inode(p)).collect();
    assert!(inodes.iter().all(|i| *i == inodes[0]), "{inodes:?}");
    assert_eq!(std::fs::metadata(&paths[0]).unwrap().nlink(), 3);

    // huggingface_hub sees both caches as before, and its own checksums agree.
    spec::assert_all_pulled(&ab, &primary);
    spec::assert_all_pulled(std::slice::from_ref(&c), &secondary);
    hf_cache_verify_specs(&primary, &[a, b]);
    hf_cache_verify_specs(&secondary, &[&c]);
    for cache in [&primary, &secondary] {
        t.bare().cache_dir(cache).arg("verify").run().success();
    }

    // The linked bytes count once.
    let out = t
        .bare()
        .json()
        .cache_dir(&primary)
        .arg("status")
        .run()
        .success();
    let status = out.json();
    assert_eq!(
        status["bytes_on_disk"].as_u64(),
        Some(a.total_bytes() + b.total_bytes() - size),
        "{out}"
    );
    assert_eq!(
        count(&status, "blobs"),
        3,
        "two configs and the weights\n{out}"
    );

    // Nothing left to do.
    let out = dedupe(&t, &[&primary, &secondary]).success();
    assert_eq!(out.json()["bytes_saved"], 0, "{out}");
    assert_eq!(count(&out.json(), "linked"), 0, "{out}");
    let text = t
        .bare()
        .cache_dir(&primary)
        .cache_dir(&secondary)
        .arg("dedupe")
        .run()
        .success();
    assert!(text.stdout.contains("Nothing to dedupe"), "{text}");
}

#[test]
fn bytes_freed_count_a_linked_blob_only_when_its_last_link_goes() {
    let t = Sandbox::local("dedupe_freed");
    let (primary, secondary, [a, b], c) = caches(&t);
    let size = weights_of(&a).len() as u64;
    dedupe(&t, &[&primary, &secondary]).success();
    let config = |r: &RepoSpec| r.revisions[0].file("config.json").bytes.len() as u64;

    // org/b and the secondary cache still link the weights: only the config goes.
    let out = t
        .bare()
        .json()
        .cache_dir(&primary)
        .args(["rm", "org/a", "--yes"])
        .run()
        .success();
    assert_eq!(out.json()["bytes_freed"], config(&a), "{out}");

    // The detached revision of org/c: its extra file goes; the weights leave the secondary
    // cache but stay on disk, linked from the primary one.
    let extra = c.revisions[1].file("extra.bin").bytes.len() as u64;
    let out = t
        .bare()
        .json()
        .cache_dir(&secondary)
        .args(["prune", "--detached", "--yes"])
        .run()
        .success();
    let pruned = out.json();
    assert_eq!(pruned["bytes_freed"], extra, "{out}");
    assert!(!blob_path(&secondary, &c).exists(), "{out}");
    assert!(
        pruned["size_after"].as_u64().unwrap() < pruned["size_before"].as_u64().unwrap(),
        "the secondary cache holds less\n{out}"
    );

    // Now org/b holds the last link: removing it frees the weights too.
    let out = t
        .bare()
        .json()
        .cache_dir(&primary)
        .args(["rm", "org/b", "--yes"])
        .run()
        .success();
    assert_eq!(out.json()["bytes_freed"], config(&b) + size, "{out}");
    check_cache(&primary, &[]);
    check_cache(&secondary, &c.downloads("main"));
}

#[test]
fn copies_on_another_file_system_are_left_alone() {
    let t = Sandbox::local("dedupe_cross_fs");
    let (ab, _) = fixture();
    let [a, b] = ab;
    let home = t.cache("home-disk");
    a.write(&home);
    let other = tempfile::tempdir_in("/dev/shm").expect("a cache dir on tmpfs (/dev/shm)");
    let dev = |p: &Path| std::fs::metadata(p).unwrap().dev();
    assert_ne!(
        dev(&home),
        dev(other.path()),
        "the test needs /dev/shm on another file system than {}",
        home.display()
    );
    b.write(other.path());
    let before = (
        inode(&blob_path(&home, &a)),
        inode(&blob_path(other.path(), &b)),
    );

    let out = dedupe(&t, &[&home, other.path()]).success();
    let r = out.json();
    assert_eq!(r["bytes_saved"], 0, "{out}");
    assert_eq!(count(&r, "linked"), 0, "{out}");
    let kept = r["kept"].as_array().unwrap();
    assert!(
        kept.iter().any(|k| k["reason"]
            .as_str()
            .unwrap()
            .contains("another file system")),
        "{out}"
    );
    assert_eq!(
        before,
        (
            inode(&blob_path(&home, &a)),
            inode(&blob_path(other.path(), &b))
        )
    );
    spec::assert_all_pulled(std::slice::from_ref(&a), &home);
    spec::assert_all_pulled(std::slice::from_ref(&b), other.path());
}

#[test]
fn bad_input_is_refused_before_anything_changes() {
    let t = Sandbox::local("dedupe_bad");
    let (primary, secondary, [a, b], c) = caches(&t);
    let inodes = || {
        [
            inode(&blob_path(&primary, &a)),
            inode(&blob_path(&primary, &b)),
            inode(&blob_path(&secondary, &c)),
        ]
    };
    let before = inodes();

    // A cache dir that is not there: nothing is linked, even between the others.
    let missing = t.path("no-such-cache");
    let out = dedupe(&t, &[&primary, &missing, &secondary])
        .code(2)
        .stderr_has(&missing.display().to_string())
        .stderr_has("does not exist");
    // With --json, the failed run's one document says so.
    assert_eq!(out.json()["ok"], false, "{out}");
    assert_eq!(out.json()["exit_code"], 2, "{out}");
    assert_eq!(inodes(), before);

    // Several caches mean something only to dedupe.
    t.bare()
        .cache_dir(&primary)
        .cache_dir(&secondary)
        .arg("status")
        .run()
        .code(2)
        .stderr_has("only dedupe");

    // A copy that does not match its name is never linked, nor kept as the one to link to.
    let corrupt = blob_path(&primary, &a);
    let mut bytes = std::fs::read(&corrupt).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&corrupt, &bytes).unwrap();
    let out = dedupe(&t, &[&primary, &secondary]).success();
    let r = out.json();
    assert_eq!(count(&r, "linked"), 1, "{out}");
    assert!(
        r["kept"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["path"] == corrupt.display().to_string()
                && k["reason"]
                    .as_str()
                    .unwrap()
                    .contains("does not match its name")),
        "{out}"
    );
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        bytes,
        "left for verify --repair"
    );
    assert_ne!(inode(&corrupt), inode(&blob_path(&primary, &b)));
    assert_eq!(
        inode(&blob_path(&primary, &b)),
        inode(&blob_path(&secondary, &c))
    );
}
