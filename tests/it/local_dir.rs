//! `pull REPO --local-dir DIR`: the revision laid out as real files in a project folder with the
//! metadata huggingface_hub keeps there, so `hf download --local-dir` finds every file current
//! (offline too) and downloads nothing; an edit in the folder never reaches the cache; nothing
//! is written outside the folder, nor twice.

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::fixtures::{CONFIG, TOKENIZER, WEIGHTS};
use crate::common::hub::{HubRepo, HubStandIn};
use crate::common::pushed;
use crate::common::python::{hf_download_local_dir, local_dir_offline};
use crate::common::tmpfs::Tmpfs;
use crate::common::{
    blob_key, commit_hash, count, files_under, manifest_key, ref_key, sha256_hex, CacheView,
    Sandbox,
};

/// `pull org/m --local-dir DIR [extra...]` into `cache`, with `--json`; its summary.
#[track_caller]
fn pull_into(t: &Sandbox, cache: &Path, dir: &Path, extra: &[&str]) -> Value {
    let out = t
        .hfcs()
        .json()
        .cache_dir(cache)
        .args(["pull", "org/m", "--local-dir"])
        .arg(dir)
        .args(extra)
        .run()
        .success();
    out.json()
}

/// The files of DIR, huggingface_hub's bookkeeping left out.
fn project_files(dir: &Path) -> Vec<String> {
    files_under(dir)
        .into_iter()
        .filter(|p| !p.starts_with(".cache/"))
        .collect()
}

/// (inode, modification time) of each of `paths` in DIR: unchanged when nothing rewrote them.
fn identities(dir: &Path, paths: &[&str]) -> Vec<(u64, i64, i64)> {
    paths
        .iter()
        .map(|p| {
            let m = fs::metadata(dir.join(p)).unwrap();
            (m.ino(), m.mtime(), m.mtime_nsec())
        })
        .collect()
}

const PATHS: [&str; 3] = [CONFIG, WEIGHTS, TOKENIZER];

#[test]
fn hf_download_finds_every_pulled_file_current_and_downloads_nothing() {
    let (t, m) = pushed("local_dir_hf");
    let rev = m.revision("main");
    let dst = t.cache("dst");
    let dir = t.path("project/models/m");
    let s = pull_into(&t, &dst, &dir, &[]);
    let d = &s["local_dir"];
    assert_eq!(d["path"], json!(dir), "{s}");
    assert_eq!((count(d, "placed"), count(d, "already_current")), (3, 0));
    assert_eq!(count(d, "reflinked") + count(d, "copied"), 3, "{s}");
    m.assert_pulled(&dst, "main");
    assert_eq!(project_files(&dir), [CONFIG, WEIGHTS, TOKENIZER]);
    let view = CacheView::model(&dst, "org/m");
    for f in &rev.files {
        let placed = fs::symlink_metadata(dir.join(&f.path)).unwrap();
        assert!(placed.is_file(), "{} is a real file", f.path);
        assert_eq!(placed.nlink(), 1, "{} is not a hard link", f.path);
        assert_ne!(
            placed.ino(),
            fs::metadata(view.blob(f.etag())).unwrap().ino()
        );
        assert_eq!(fs::read(dir.join(&f.path)).unwrap(), f.bytes);
    }
    let bookkeeping = files_under(&dir.join(".cache/huggingface"));
    for wanted in [
        ".gitignore",
        "CACHEDIR.TAG",
        "download/config.json.metadata",
    ] {
        assert!(bookkeeping.iter().any(|p| p == wanted), "{bookkeeping:?}");
    }
    assert!(
        bookkeeping.iter().all(|p| !p.contains(".hfcs-")),
        "{bookkeeping:?}"
    );
    let before = identities(&dir, &PATHS);

    // hf_hub_download(revision=<commit>, local_dir=DIR) offline: trusts each file's metadata
    // and returns it as it is, without falling back to "the Hub cannot be reached".
    let seen = local_dir_offline("model", "org/m", &rev.commit, &dir, &PATHS);
    for f in &rev.files {
        let got = &seen["files"][&f.path];
        assert_eq!(got["path"], json!(dir.join(&f.path)), "{seen}");
        assert_eq!(
            got["metadata"],
            json!({"commit": rev.commit, "etag": f.etag()}),
            "{seen}"
        );
    }
    assert_eq!(
        seen["log"], "",
        "huggingface_hub had something to say: {seen}"
    );

    // `hf download` offline: the whole repo, and one file at the commit.
    let (code, stdout, stderr) = hf_download_local_dir(&dst, &dir, &["org/m"], None);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let resolved = fs::canonicalize(&dir).unwrap();
    assert_eq!(stdout.trim(), resolved.display().to_string(), "{stderr}");
    let one = ["org/m", WEIGHTS, "--revision", &rev.commit];
    let (code, stdout, stderr) = hf_download_local_dir(&dst, &dir, &one, None);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), dir.join(WEIGHTS).display().to_string());
    assert!(!stderr.contains("Couldn't access the Hub"), "{stderr}");

    // Online, against a Hub that has the repo: nothing is downloaded again.
    let hub = HubStandIn::start(vec![HubRepo::from_spec(&m)], 100);
    let (code, stdout, stderr) = hf_download_local_dir(&dst, &dir, &["org/m"], Some(&hub.url()));
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(hub.downloads(), 0, "{:?}", hub.seen());
    assert_eq!(identities(&dir, &PATHS), before, "no file was rewritten");
}

#[test]
fn a_second_pull_into_the_folder_moves_nothing() {
    let (t, _m) = pushed("local_dir_rerun");
    let dst = t.cache("dst");
    let dir = t.path("models/m");
    pull_into(&t, &dst, &dir, &[]);
    let before = identities(&dir, &PATHS);
    let meta = fs::read(dir.join(".cache/huggingface/download/config.json.metadata")).unwrap();
    let s = pull_into(&t, &dst, &dir, &[]);
    assert_eq!(count(&s, "downloaded"), 0, "{s}");
    let d = &s["local_dir"];
    assert_eq!(
        (count(d, "placed"), count(d, "already_current")),
        (0, 3),
        "{s}"
    );
    assert_eq!(identities(&dir, &PATHS), before);
    assert_eq!(
        fs::read(dir.join(".cache/huggingface/download/config.json.metadata")).unwrap(),
        meta,
        "the metadata of a current file is left as it is"
    );
    // The summary says it in one line.
    let out = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--local-dir"])
        .arg(&dir)
        .run()
        .success();
    let line = format!(
        "Placed 0 files in {} (0 reflinked, 0 copied), 3 already current",
        dir.display()
    );
    assert!(out.stdout.contains(&line), "{out}");
}

#[test]
fn a_dry_run_says_what_it_would_place_and_writes_nothing() {
    let (t, m) = pushed("local_dir_dry_run");
    let dst = t.cache("dst");
    let dir = t.path("models/m");
    let s = pull_into(&t, &dst, &dir, &["--dry-run"]);
    let d = &s["local_dir"];
    assert_eq!(
        (count(d, "placed"), count(d, "already_current")),
        (3, 0),
        "{s}"
    );
    let bytes: usize = m.revision("main").files.iter().map(|f| f.bytes.len()).sum();
    assert_eq!(d["bytes_placed"], bytes, "{s}");
    assert!(!dir.exists(), "a dry run makes no folder");
    assert_eq!(files_under(&dst), Vec::<String>::new());
    let out = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--dry-run", "--local-dir"])
        .arg(&dir)
        .run()
        .success();
    let line = format!("Would place 3 files in {} (", dir.display());
    assert!(out.stdout.contains(&line), "{out}");
}

#[test]
fn an_edit_in_the_folder_never_reaches_the_cache_and_is_undone_by_the_next_pull() {
    let (t, m) = pushed("local_dir_edit");
    let dst = t.cache("dst");
    let dir = t.path("models/m");
    pull_into(&t, &dst, &dir, &[]);
    let view = CacheView::model(&dst, "org/m");
    let rev = m.revision("main");
    for f in &rev.files {
        let mut edited = fs::read(dir.join(&f.path)).unwrap();
        edited.extend_from_slice(b"\nedited in the project\n");
        fs::write(dir.join(&f.path), &edited).unwrap();
    }
    for f in &rev.files {
        assert_eq!(
            fs::read(view.blob(f.etag())).unwrap(),
            f.bytes,
            "{}",
            f.path
        );
    }
    m.assert_pulled(&dst, "main");
    let s = pull_into(&t, &dst, &dir, &[]);
    assert_eq!(count(&s, "downloaded"), 0, "{s}");
    let d = &s["local_dir"];
    assert_eq!(
        (count(d, "placed"), count(d, "already_current")),
        (3, 0),
        "{s}"
    );
    for f in &rev.files {
        assert_eq!(fs::read(dir.join(&f.path)).unwrap(), f.bytes, "{}", f.path);
    }
}

#[test]
fn a_link_planted_in_the_folder_is_never_written_through() {
    let (t, _m) = pushed("local_dir_planted");
    let outside = t.cache("outside");
    for planted in ["tokenizer", ".cache"] {
        let dst = t.cache(&format!("dst-{planted}"));
        let dir = t.path(&format!("project-{planted}"));
        fs::create_dir_all(&dir).unwrap();
        symlink(&outside, dir.join(planted)).unwrap();
        let out = t
            .hfcs()
            .json()
            .cache_dir(&dst)
            .args(["pull", "org/m", "--local-dir"])
            .arg(&dir)
            .run()
            .code(1)
            .stderr_has("outside the local dir")
            .stderr_has("hint:");
        assert_eq!(files_under(&outside), Vec::<String>::new(), "{out}");
        assert_eq!(project_files(&dir), [planted.to_string()], "{out}");
    }
}

#[test]
fn a_hostile_path_never_lands_outside_the_folder() {
    let t = Sandbox::new("local_dir_hostile");
    let bucket = t.bucket();
    let bytes = b"bytes a hostile manifest wants written somewhere\n".to_vec();
    let etag = sha256_hex(&bytes);
    bucket.put(&blob_key(&etag), bytes.clone());
    let n = bytes.len();
    let cases = [
        ("evil/climb", "../escape.json", "unsafe file path"),
        (
            "evil/bookkeeping",
            ".cache/huggingface/download/config.json.metadata",
            "where huggingface_hub keeps its metadata",
        ),
    ];
    for (repo_id, path, says) in cases {
        let commit = commit_hash(repo_id);
        let manifest = json!({"repo": repo_id, "revision": commit, "repo_type": "model",
            "files": [{"path": "config.json", "blob": etag, "size": n},
                      {"path": path, "blob": etag, "size": n}]});
        bucket.put(&manifest_key(repo_id, &commit), manifest.to_string());
        bucket.put(&ref_key(repo_id, "main"), commit.clone());
        let dst = t.cache(&format!("dst-{}", repo_id.replace('/', "-")));
        let dir = t.path(&format!("project-{}/m", repo_id.replace('/', "-")));
        let out = t
            .hfcs()
            .cache_dir(&dst)
            .args(["pull", repo_id, "--local-dir"])
            .arg(&dir)
            .run()
            .code(1)
            .stderr_has_any(&[says]);
        assert_eq!(project_files(&dir), Vec::<String>::new(), "{out}");
        let escaped = dir.parent().unwrap().join("escape.json");
        assert!(!escaped.exists(), "{out}");
        let metadata = dir.join(".cache/huggingface/download/config.json.metadata");
        assert!(!metadata.exists(), "{out}");
    }
}

#[test]
fn a_folder_that_cannot_take_files_is_refused_before_anything_is_fetched() {
    let (t, _m) = pushed("local_dir_unusable");
    let file = t.path("models");
    fs::write(&file, b"a file where a folder should be").unwrap();
    for dir in [file.clone(), file.join("m")] {
        let dst = t.cache("dst-file");
        let out = t
            .hfcs()
            .cache_dir(&dst)
            .args(["pull", "org/m", "--local-dir"])
            .arg(&dir)
            .run()
            .code(2)
            .stderr_has(&format!("{}: a file, not a folder", file.display()))
            .stderr_has("hint: pass a folder to --local-dir");
        assert_eq!(
            files_under(&dst),
            Vec::<String>::new(),
            "nothing fetched\n{out}"
        );
    }
    assert_eq!(fs::read(&file).unwrap(), b"a file where a folder should be");

    let read_only: PathBuf = t.path("read-only");
    let Some(_mount) = Tmpfs::read_only(&read_only) else {
        return;
    };
    let dst = t.cache("dst-read-only");
    let out = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--local-dir"])
        .arg(read_only.join("m"))
        .run()
        .code(2)
        .stderr_has(&read_only.display().to_string())
        .stderr_has_any(&["read-only file system"])
        .stderr_has("hint: pass a folder you may write to");
    assert_eq!(
        files_under(&dst),
        Vec::<String>::new(),
        "nothing fetched\n{out}"
    );
}
