//! Lock files: `lock` pins what the cache (or the remote) holds; `pull --lock` rebuilds an
//! identical, verified cache from them, needs no remote when the cache is already complete,
//! and refuses a file with a bad line before pulling anything; `verify --lock` finds what is
//! missing or corrupt.

use std::path::{Path, PathBuf};

use crate::common::spec::RepoSpec;
use crate::common::{check_cache, count, files_under, CacheView, Sandbox};

const GGUF_COMMIT: &str = "6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a6a";

/// `org/m` (two revisions) and a dataset, pushed from a source cache that is returned.
fn pushed(name: &str) -> (Sandbox, Vec<RepoSpec>, PathBuf) {
    let t = Sandbox::new(name);
    let repos = vec![
        RepoSpec::two_revisions("org/m"),
        RepoSpec::dataset("org/data")
            .rev("d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0", &["main"])
            .file("train.csv", b"a,b\n1,2\n"),
    ];
    let src = t.cache("src");
    for r in &repos {
        r.write(&src);
    }
    t.hfcs().cache_dir(&src).arg("push").run().success();
    (t, repos, src)
}

/// [`pushed`], its main revisions locked (`hf-cache-sync.lock` in the work folder) and pulled
/// by that lock file into a fresh cache, which is returned with the lock file.
fn locked_and_pulled(name: &str) -> (Sandbox, Vec<RepoSpec>, PathBuf, PathBuf) {
    let (t, repos, src) = pushed(name);
    let lock = t.work().join("hf-cache-sync.lock");
    t.hfcs().cache_dir(&src).arg("lock").run().success();
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    (t, repos, lock, dst)
}

fn lock_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// Every file under the cache's repo folders, with the bytes of each, for comparing caches.
fn contents(cache: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(cache)
        .into_iter()
        .filter(|p| p.contains("--") && !p.starts_with(".locks"))
        .map(|p| {
            let bytes = std::fs::read(cache.join(&p)).unwrap_or_default();
            (p, bytes)
        })
        .collect()
}

#[test]
fn lock_rm_and_pull_lock_give_back_an_identical_verified_cache() {
    let (t, repos, src) = pushed("lock_round_trip");
    let lock = t.work().join("hf-cache-sync.lock");
    t.hfcs().cache_dir(&src).arg("lock").run().success();
    let m = &repos[0];
    assert_eq!(
        lock_lines(&lock),
        [
            "dataset/org/data@d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0  # main".to_string(),
            format!("org/m@{}  # main", m.commit("main")),
        ]
    );

    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["pulled"], 2, "{out}");
    assert_eq!(s["failed"], 0, "{out}");
    m.assert_pulled(&dst, "main");
    check_cache(&dst, &m.downloads("main"));
    t.hfcs()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .success();
    let first = contents(&dst);

    // rm locally, then pull --lock again: the same cache, byte for byte.
    t.hfcs()
        .cache_dir(&dst)
        .args(["rm", "org/m", "--yes"])
        .run()
        .success();
    assert!(!CacheView::model(&dst, "org/m").exists());
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    let s = out.json();
    assert_eq!(
        (s["pulled"].clone(), s["present"].clone()),
        (1.into(), 1.into()),
        "{out}"
    );
    assert_eq!(contents(&dst), first);
}

#[test]
fn a_complete_cache_pulls_nothing_and_needs_no_remote() {
    let (t, _repos, src) = pushed("lock_offline");
    let lock = t.work().join("models.lock");
    t.hfcs()
        .cache_dir(&src)
        .args(["lock", "-o"])
        .arg(&lock)
        .run()
        .success();
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    // The bucket goes away (a node rebooted without credentials): nothing to fetch, no call.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    t.write_config(&format!(
        "storage:\n  endpoint: http://127.0.0.1:{port}\n  bucket: gone\n"
    ));
    for extra in [&[][..], &["--offline"][..]] {
        let out = t
            .hfcs()
            .json()
            .cache_dir(&dst)
            .args(["pull", "--lock"])
            .arg(&lock)
            .args(extra)
            .run()
            .success();
        let s = out.json();
        assert_eq!(s["present"], 2, "{out}");
        assert_eq!(count(&s, "downloaded"), 0, "{out}");
        assert!(s["remote"].is_null(), "no remote was asked\n{out}");
    }
    // A pin the cache lacks fails under --offline, named by its line, without a remote call.
    std::fs::remove_dir_all(dst.join("datasets--org--data")).unwrap();
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .arg("--offline")
        .run()
        .code(1)
        .stderr_has("models.lock:")
        .stderr_has("dataset/org/data@d0d0d0d0d0d0")
        .stderr_has("--offline forbids fetching it");
}

#[test]
fn a_lock_file_with_a_bad_line_pulls_nothing_and_names_every_bad_line() {
    let (t, repos, _src) = pushed("lock_bad_lines");
    let good = format!("org/m@{}  # main", repos[0].commit("main"));
    let lock = t.write_work_file(
        "hf-cache-sync.lock",
        &format!(
            "# pins\n{good}\norg/m@main\nweird/org/x@{c}\norg/data@{c} model-[Q4\n",
            c = "d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0"
        ),
    );
    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .code(2)
        .stderr_has("has 3 bad lines; nothing was done")
        .stderr_has("hf-cache-sync.lock:3: \"main\" is not a 40-hex commit hash")
        .stderr_has("hf-cache-sync.lock:4: unknown repo type \"weird\"")
        .stderr_has("hf-cache-sync.lock:5: \"model-[Q4\" is not a valid file pattern");
    assert!(files_under(&dst).is_empty(), "{out}");
    t.hfcs()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .code(2)
        .stderr_has("hf-cache-sync.lock:3:");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "--lock", "missing.lock"])
        .run()
        .code(2)
        .stderr_has("cannot read lock file missing.lock")
        .stderr_has("hf-cache-sync lock -o missing.lock");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--offline"])
        .run()
        .code(2)
        .stderr_has("--offline goes with --lock FILE");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--lock"])
        .arg(&lock)
        .run()
        .code(2)
        .stderr_has("cannot be used with");
}

#[test]
fn verify_lock_finds_what_is_missing_or_corrupt() {
    let (t, repos, lock, dst) = locked_and_pulled("lock_verify");
    let m = &repos[0];
    let weights = m.revision("main").file(crate::common::fixtures::WEIGHTS);
    let view = CacheView::model(&dst, "org/m");
    std::fs::write(view.blob(weights.etag()), b"not the weights").unwrap();
    std::fs::remove_dir_all(dst.join("datasets--org--data")).unwrap();
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .code(1);
    let s = out.json();
    let problems = s["problems"].as_array().unwrap();
    let kinds: Vec<&str> = problems
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["missing_pin", "corrupt_blob"], "{out}");
    assert_eq!(problems[0]["repo"], "dataset/org/data", "{out}");
    assert_eq!(problems[1]["etag"], weights.etag(), "{out}");
    assert!(
        problems[0]["detail"]
            .as_str()
            .unwrap()
            .contains("hf-cache-sync.lock:3"),
        "{out}"
    );

    // pull --lock repairs neither silently: the corrupt blob is found by verify, the missing
    // pin is pulled again.
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    assert!(dst.join("datasets--org--data").exists());
}

#[test]
fn pins_with_file_patterns_pull_only_those_files() {
    let t = Sandbox::new("lock_patterns");
    let gguf = RepoSpec::quantized("org/model-GGUF", GGUF_COMMIT);
    let src = t.cache("src");
    gguf.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let lock = t.work().join("hf-cache-sync.lock");
    t.hfcs()
        .cache_dir(&src)
        .args(["lock", "org/model-GGUF", "--include-files", "*Q4_K_M*"])
        .run()
        .success();
    assert_eq!(
        lock_lines(&lock),
        [format!("org/model-GGUF@{GGUF_COMMIT} *Q4_K_M*  # main")]
    );
    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    assert_eq!(count(&out.json(), "downloaded"), 1, "{out}");
    let snapshot = dst
        .join("models--org--model-GGUF/snapshots")
        .join(GGUF_COMMIT);
    assert_eq!(files_under(&snapshot), ["model-Q4_K_M.gguf"]);
    assert_eq!(
        CacheView::model(&dst, "org/model-GGUF")
            .ref_("main")
            .as_deref(),
        Some(GGUF_COMMIT)
    );
    // Complete as pinned: a second run asks nothing, and verify --lock passes.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    assert_eq!(out.json()["present"], 1, "{out}");
    t.hfcs()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .success();
}

#[test]
fn lock_from_the_remote_and_updating_one_pin_keeps_the_others() {
    let (t, repos, src) = pushed("lock_remote");
    let lock = t.work().join("hf-cache-sync.lock");
    t.hfcs().args(["lock", "--remote"]).run().success();
    let m = &repos[0];
    assert_eq!(lock_lines(&lock).len(), 2, "{:?}", lock_lines(&lock));
    // Pin org/m at v1.0 from the cache: its line changes, the dataset's stays.
    t.hfcs()
        .cache_dir(&src)
        .args(["lock", "org/m@v1.0"])
        .run()
        .success();
    assert_eq!(
        lock_lines(&lock),
        [
            "dataset/org/data@d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0d0  # main".to_string(),
            format!("org/m@{}  # v1.0", m.commit("v1.0")),
        ]
    );
    t.hfcs()
        .cache_dir(&src)
        .args(["lock", "org/m@v9"])
        .run()
        .code(2)
        .stderr_has("org/m has no revision v9 in the cache (refs: main, v1.0)");
    t.hfcs()
        .cache_dir(&src)
        .args(["lock", "org/nope"])
        .run()
        .code(1)
        .stderr_has("org/nope");
}

#[test]
fn a_pin_naming_a_folder_lays_its_files_out_there_and_verify_checks_them() {
    let (t, repos, src) = pushed("lock_local_dir");
    let m = &repos[0];
    let lock = t.work().join("hf-cache-sync.lock");
    t.hfcs()
        .cache_dir(&src)
        .args(["lock", "org/m", "--local-dir", "models/m"])
        .run()
        .success();
    assert_eq!(
        lock_lines(&lock),
        [format!(
            "org/m@{} local-dir=models/m  # main",
            m.commit("main")
        )]
    );
    t.hfcs()
        .cache_dir(&src)
        .args(["lock", "org/m", "org/data", "--local-dir", "models/m"])
        .run()
        .code(2)
        .stderr_has("--local-dir takes one repo");
    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["pins"][0]["local_dir"]["placed"], 3, "{out}");
    let folder = t.work().join("models/m");
    for f in &m.revision("main").files {
        let placed = folder.join(&f.path);
        assert!(
            std::fs::symlink_metadata(&placed).unwrap().is_file(),
            "{} is not a real file",
            f.path
        );
        assert_eq!(std::fs::read(&placed).unwrap(), f.bytes, "{}", f.path);
    }
    t.hfcs()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .success();

    // An edit in the folder: verify --lock names it, the cache is untouched, pull --lock puts
    // the pinned bytes back without asking the remote for anything.
    let config = folder.join(crate::common::fixtures::CONFIG);
    std::fs::write(&config, b"{\"edited\": true}\n").unwrap();
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .code(1);
    let problems = out.json()["problems"].as_array().unwrap().clone();
    assert_eq!(problems.len(), 1, "{out}");
    assert_eq!(problems[0]["kind"], "local_dir", "{out}");
    assert_eq!(
        problems[0]["paths"][0],
        crate::common::fixtures::CONFIG,
        "{out}"
    );
    m.assert_pulled(&dst, "main");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["pins"][0]["status"], "present", "{out}");
    assert_eq!(s["pins"][0]["local_dir"]["placed"], 1, "{out}");
    assert_eq!(
        s["pins"][0]["local_dir"]["replaced"],
        serde_json::json!([crate::common::fixtures::CONFIG]),
        "{out}"
    );
    assert!(
        out.stderr.contains(&format!(
            "warning: replaced 1 file in {} that held other content: {}",
            folder.display(),
            crate::common::fixtures::CONFIG
        )),
        "{out}"
    );
    t.hfcs()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .success();
}

#[test]
fn a_pin_whose_blob_is_gone_is_not_complete() {
    let (t, repos, lock, dst) = locked_and_pulled("lock_dangling");
    let m = &repos[0];
    let weights = m.revision("main").file(crate::common::fixtures::WEIGHTS);
    let view = CacheView::model(&dst, "org/m");
    // The snapshot's link is left dangling, as a blob deleted by hand or by a broken prune.
    std::fs::remove_file(view.blob(weights.etag())).unwrap();

    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .code(1);
    let s = out.json();
    let problems = s["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{out}");
    assert_eq!(problems[0]["kind"], "missing_pin", "{out}");
    assert_eq!(problems[0]["repo"], "model/org/m", "{out}");
    let detail = problems[0]["detail"].as_str().unwrap();
    assert!(detail.contains(crate::common::fixtures::WEIGHTS), "{out}");

    // Offline, the pin cannot be healed and says so; online it is fetched again.
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .arg("--offline")
        .run()
        .code(1)
        .stderr_has("--offline forbids fetching it");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .success();
    let s = out.json();
    assert_eq!(s["pulled"], 1, "{out}");
    assert_eq!(count(&s, "downloaded"), 1, "{out}");
    assert!(view.blob(weights.etag()).exists());
    t.hfcs()
        .cache_dir(&dst)
        .args(["verify", "--lock"])
        .arg(&lock)
        .run()
        .success();
}

#[test]
fn a_pin_naming_a_repo_the_remote_lacks_says_what_it_may_have_meant() {
    let (t, repos, _src) = pushed("lock_typo");
    let lock = t.write_work_file(
        "hf-cache-sync.lock",
        &format!("org/mm@{}  # main\n", repos[0].commit("main")),
    );
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "--lock"])
        .arg(&lock)
        .run()
        .code(1)
        .stderr_has("hf-cache-sync.lock:1: model/org/mm@")
        .stderr_has("did you mean org/m?");
}
