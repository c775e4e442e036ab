//! File modes: what a pull writes (blobs, refs, snapshot folders, tree listings, a local dir's
//! files) has the modes huggingface_hub gives the same repo, under umask 022 and 002 and in a
//! setgid team folder, from a directory remote and from the Hub alike; a push to a directory
//! remote follows the umask; `doctor` notes what only its owner may read.
//!
//! The tests run as root in CI, where every access check passes: they compare mode bits and
//! groups, never whether another user could open a file.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::cache::repo_folder;
use crate::common::hub::{HubRepo, HubStandIn};
use crate::common::python::python;
use crate::common::spec::RepoSpec;
use crate::common::{blob_key, manifest_key, Sandbox};

/// How a cache is set up: the umask of the processes writing it, and whether its folder is a
/// setgid team folder (group-owned by [`TEAM_GID`], `g+s`).
#[derive(Debug, Clone, Copy)]
struct Setup {
    umask: u32,
    setgid: bool,
}

const SETUPS: [Setup; 3] = [
    Setup {
        umask: 0o022,
        setgid: false,
    },
    Setup {
        umask: 0o002,
        setgid: false,
    },
    Setup {
        umask: 0o002,
        setgid: true,
    },
];

/// The group of the team folder: `users` (100) as root, which may give a folder any group;
/// otherwise the process's own group, which then only shows that the setgid bit is inherited.
fn team_gid() -> u32 {
    // SAFETY: neither call has preconditions.
    if unsafe { libc::geteuid() } == 0 {
        100
    } else {
        unsafe { libc::getegid() }
    }
}

impl Setup {
    fn name(&self) -> String {
        format!(
            "umask {:03o}{}",
            self.umask,
            if self.setgid { ", setgid folder" } else { "" }
        )
    }

    /// A fresh cache dir `name` in `t`, set up this way.
    fn cache(&self, t: &Sandbox, name: &str) -> PathBuf {
        let dir = t.cache(name);
        if self.setgid {
            let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid path; -1 leaves the owner as it is.
            let rc = unsafe { libc::chown(c.as_ptr(), u32::MAX, team_gid()) };
            assert_eq!(rc, 0, "chgrp {}", dir.display());
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o2775)).unwrap();
        }
        dir
    }
}

/// Mode bits (setgid included) and group of every entry under `dir` but symlinks (a snapshot
/// link has no mode of its own), by path relative to `dir`.
fn modes(dir: &Path) -> BTreeMap<String, (String, u32)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                continue;
            }
            let rel = path.strip_prefix(dir).unwrap().display().to_string();
            out.insert(rel, (format!("{:04o}", meta.mode() & 0o7777), meta.gid()));
            if meta.is_dir() {
                pending.push(path);
            }
        }
    }
    out
}

/// `snapshot_download(repo_id, revision="main")` by huggingface_hub from the Hub stand-in, with
/// `umask`: the reference cache (or, with `local_dir`, the reference local dir).
fn huggingface_hub_download(
    hub: &HubStandIn,
    cache: &Path,
    local_dir: Option<&Path>,
    repo_id: &str,
    umask: u32,
) {
    const SCRIPT: &str = r#"
import sys
from huggingface_hub import snapshot_download
local_dir = sys.argv[3] or None
snapshot_download(repo_id=sys.argv[2], revision="main", cache_dir=sys.argv[1], local_dir=local_dir)
"#;
    let home = tempfile::tempdir().expect("temp home");
    let mut cmd = Command::new(python());
    cmd.env_clear()
        .env("HOME", home.path())
        .env("HF_ENDPOINT", hub.url())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        .args(["-c", SCRIPT])
        .arg(cache)
        .arg(repo_id)
        .arg(local_dir.unwrap_or(Path::new("")));
    let mask = umask as libc::mode_t;
    // SAFETY: umask(2) is async-signal-safe and touches no memory.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        });
    }
    let out = cmd.output().expect("run python");
    assert!(
        out.status.success(),
        "snapshot_download failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A model with a nested file and an LFS file, on `main`.
fn model() -> RepoSpec {
    RepoSpec::new("org/m")
        .rev(&crate::common::commit_hash("modes main"), &["main"])
        .file("config.json", b"{\"model\": \"org/m\"}\n")
        .file("tokenizer/tokenizer.json", b"{\"tokenizer\": true}\n")
        .lfs("model.safetensors", &[7u8; 4096])
}

/// The repo folder `ours` holds has the modes huggingface_hub gave `reference`'s: each entry
/// the same mode and group, and nothing either lacks (a tree listing only where `trees` is set:
/// a pull from a remote may not write one).
#[track_caller]
fn assert_same_modes(setup: &Setup, ours: &Path, reference: &Path, trees: bool, source: &str) {
    let folder = repo_folder("model", "org/m");
    let mut want = modes(&reference.join(&folder));
    if !trees {
        want.retain(|k, _| !k.starts_with("trees"));
    }
    let mut got = modes(&ours.join(&folder));
    if !trees {
        got.retain(|k, _| !k.starts_with("trees"));
    }
    assert!(
        want.keys().any(|k| k.starts_with("blobs/")) && want.contains_key("refs/main"),
        "the reference cache lacks blobs or refs: {want:#?}"
    );
    assert_eq!(
        got,
        want,
        "{}, pulled from {source}: (mode, group) of each entry, ours on the left, \
         huggingface_hub's on the right",
        setup.name()
    );
}

#[test]
fn a_pull_from_a_directory_remote_or_the_hub_writes_the_modes_huggingface_hub_writes() {
    let (t, _remote) = Sandbox::with_dir_remote("modes_pull");
    let m = model();
    let hub = HubStandIn::start(vec![HubRepo::from_spec(&m)], 100);
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let empty = t.cache("empty-remote");

    for (i, setup) in SETUPS.iter().enumerate() {
        let reference = setup.cache(&t, &format!("reference-{i}"));
        huggingface_hub_download(&hub, &reference, None, "org/m", setup.umask);

        let from_dir = setup.cache(&t, &format!("from-dir-{i}"));
        t.hfcs()
            .umask(setup.umask)
            .cache_dir(&from_dir)
            .args(["pull", "org/m"])
            .run()
            .success();
        assert_same_modes(setup, &from_dir, &reference, false, "a directory remote");

        // Nothing on this remote: everything comes from the Hub, tree listing included.
        let from_hub = setup.cache(&t, &format!("from-hub-{i}"));
        t.bare()
            .umask(setup.umask)
            .env("HF_ENDPOINT", hub.url())
            .cache_dir(&from_hub)
            .args(["pull", "org/m", "--fallback", "hf-hub", "--remote"])
            .arg(&empty)
            .run()
            .success();
        assert_same_modes(setup, &from_hub, &reference, true, "the Hub");
    }

    // What the comparison stands for, spelled out for the common case.
    let folder = repo_folder("model", "org/m");
    let got = modes(&t.path("from-hub-0").join(&folder));
    let weights = m
        .revision("main")
        .file("model.safetensors")
        .etag()
        .to_string();
    assert_eq!(got[&format!("blobs/{weights}")].0, "0644", "{got:#?}");
    assert_eq!(got["refs/main"].0, "0644", "{got:#?}");
    assert_eq!(got["snapshots"].0, "0755", "{got:#?}");
    let team = modes(&t.path("from-dir-2").join(&folder));
    assert_eq!(
        team[&format!("blobs/{weights}")],
        ("0664".into(), team_gid())
    );
    assert_eq!(team["snapshots"], ("2775".into(), team_gid()));
}

#[test]
fn a_local_dir_gets_the_modes_huggingface_hub_gives_its_files() {
    let (t, _remote) = Sandbox::with_dir_remote("modes_local_dir");
    let m = model();
    let hub = HubStandIn::start(vec![HubRepo::from_spec(&m)], 100);
    let setup = SETUPS[1];
    let reference = setup.cache(&t, "reference-local");
    huggingface_hub_download(
        &hub,
        &t.cache("reference-cache"),
        Some(&reference),
        "org/m",
        0o002,
    );
    let ours = setup.cache(&t, "ours-local");
    t.hfcs()
        .umask(setup.umask)
        .env("HF_ENDPOINT", hub.url())
        .cache_dir(&t.cache("ours-cache"))
        .args(["pull", "org/m", "--fallback", "hf-hub", "--local-dir"])
        .arg(&ours)
        .run()
        .success();
    // The repo's files and folders; the bookkeeping under .cache/ is each tool's own.
    let files = |dir: &Path| {
        let mut all = modes(dir);
        all.retain(|k, _| !k.starts_with(".cache"));
        all
    };
    let want = files(&reference);
    assert!(want.contains_key("model.safetensors"), "{want:#?}");
    assert_eq!(want["model.safetensors"].0, "0664", "{want:#?}");
    assert_eq!(files(&ours), want, "(mode, group): ours on the left");
}

#[test]
fn a_push_to_a_directory_remote_follows_the_umask() {
    let (t, remote) = Sandbox::with_dir_remote("modes_push");
    let m = model();
    let src = t.cache("src");
    m.write(&src);
    t.hfcs()
        .umask(0o022)
        .cache_dir(&src)
        .arg("push")
        .run()
        .success();
    let got = modes(&remote);
    let weights = m
        .revision("main")
        .file("model.safetensors")
        .etag()
        .to_string();
    for key in [
        blob_key(&weights),
        manifest_key("org/m", m.commit("main")),
        crate::common::ref_key("org/m", "main"),
    ] {
        assert!(got.contains_key(&key), "{key} not pushed: {got:#?}");
    }
    for (path, (mode, _)) in &got {
        let is_dir = remote.join(path).is_dir();
        let want = if is_dir { "0755" } else { "0644" };
        assert_eq!(mode, want, "{path}: {got:#?}");
    }
}

#[test]
fn doctor_notes_a_blob_and_a_manifest_only_their_owner_may_read() {
    let (t, remote) = Sandbox::with_dir_remote("modes_doctor");
    let m = model();
    let cache = t.cache("cache");
    m.write(&cache);
    t.hfcs()
        .umask(0o022)
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    let pulled = t.cache("pulled");
    t.hfcs()
        .umask(0o022)
        .cache_dir(&pulled)
        .args(["pull", "org/m"])
        .run()
        .success();

    let status = |out: &crate::common::cli::Output, name: &str| -> (String, String, String) {
        let r = out.json();
        let c = r["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no check {name}: {out}"))
            .clone();
        let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
        (text("status"), text("detail"), text("hint"))
    };
    let doctor = || {
        t.hfcs()
            .json()
            .cache_dir(&pulled)
            .arg("doctor")
            .run()
            .success()
    };
    let out = doctor();
    assert_eq!(status(&out, "Cache file modes").0, "ok", "{out}");
    assert_eq!(status(&out, "Remote file modes").0, "ok", "{out}");

    let weights = m
        .revision("main")
        .file("model.safetensors")
        .etag()
        .to_string();
    let blob = pulled
        .join(repo_folder("model", "org/m"))
        .join("blobs")
        .join(&weights);
    let manifest = remote.join(manifest_key("org/m", m.commit("main")));
    for path in [&blob, &manifest] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let out = doctor();
    let (state, detail, hint) = status(&out, "Cache file modes");
    assert_eq!(state, "warning", "{out}");
    assert!(detail.contains(&blob.display().to_string()), "{out}");
    assert!(
        hint.contains(&format!("chmod -R a+rX {}", pulled.display())),
        "{out}"
    );
    let (state, detail, hint) = status(&out, "Remote file modes");
    assert_eq!(state, "warning", "{out}");
    assert!(detail.contains(&manifest.display().to_string()), "{out}");
    assert!(
        hint.contains(&format!("chmod -R a+rX {}", remote.display())),
        "{out}"
    );
    let human = t.hfcs().cache_dir(&pulled).arg("doctor").run().success();
    assert!(human.stdout.contains("! Cache file modes"), "{human}");
    assert!(human.stdout.contains("! Remote file modes"), "{human}");
}

#[test]
fn pull_all_and_pull_lock_write_the_modes_a_pull_writes() {
    let (t, _remote) = Sandbox::with_dir_remote("modes_pull_all_lock");
    let m = model();
    let src = t.cache("src");
    m.write(&src);
    t.hfcs().cache_dir(&src).arg("push").run().success();
    t.hfcs().cache_dir(&src).arg("lock").run().success();
    let lock = t.work().join("hf-cache-sync.lock");
    let setup = SETUPS[2];

    let pulled = setup.cache(&t, "pull");
    let all = setup.cache(&t, "pull-all");
    let locked = setup.cache(&t, "pull-lock");
    let run = |cache: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut cli = t.hfcs().umask(setup.umask).cache_dir(cache);
        for a in args {
            cli = cli.arg(a);
        }
        cli.run().success();
    };
    run(&pulled, &[&"pull", &"org/m"]);
    run(&all, &[&"pull-all"]);
    run(&locked, &[&"pull", &"--lock", &lock]);

    let folder = repo_folder("model", "org/m");
    let want = modes(&pulled.join(&folder));
    let weights = m
        .revision("main")
        .file("model.safetensors")
        .etag()
        .to_string();
    assert_eq!(
        want[&format!("blobs/{weights}")],
        ("0664".into(), team_gid())
    );
    assert_eq!(want["refs/main"], ("0664".into(), team_gid()));
    assert_eq!(
        modes(&all.join(&folder)),
        want,
        "pull-all on the left, pull on the right"
    );
    // A lock file pins the commit: its snapshot, without the ref a pull of `main` writes.
    let mut want_locked = want.clone();
    let mut got_locked = modes(&locked.join(&folder));
    for map in [&mut want_locked, &mut got_locked] {
        map.retain(|k, _| !k.starts_with("refs/"));
    }
    assert_eq!(
        got_locked, want_locked,
        "pull --lock on the left, pull on the right"
    );
    // And the same bytes, links and refs: one landing serves all three.
    let want = contents(&pulled.join(&folder));
    assert!(want.contains_key("refs/main"), "{want:?}");
    assert_eq!(contents(&all.join(&folder)), want, "pull-all vs pull");
    assert_eq!(contents(&locked.join(&folder)), want, "pull --lock vs pull");
}

/// Every file under `dir`: a link's target, a file's bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    crate::common::files_under(dir)
        .into_iter()
        .map(|rel| {
            let path = dir.join(&rel);
            let body = match std::fs::read_link(&path) {
                Ok(target) => format!("-> {}", target.display()).into_bytes(),
                Err(_) => std::fs::read(&path).unwrap(),
            };
            (rel, body)
        })
        .collect()
}
