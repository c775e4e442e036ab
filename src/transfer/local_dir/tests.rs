use std::os::unix::fs::{symlink, MetadataExt};
use std::time::Duration;

use super::*;
use crate::cache::write::{copy_snapshot_file, link_snapshot_file, BlobWriter};
use crate::report::NoProgress;

const C1: &str = "1111111111111111111111111111111111111111";
const C2: &str = "2222222222222222222222222222222222222222";

/// A cache repo holding one revision of `files` (path, bytes; a `.bin` is an LFS file named by
/// its sha256, anything else by its git blob SHA-1), linked as huggingface_hub links it, or as
/// plain snapshot files with `copies`.
struct Cached {
    _root: tempfile::TempDir,
    repo_dir: PathBuf,
    files: Vec<ManifestFile>,
}

fn etag_of(path: &str, bytes: &[u8]) -> String {
    let name = if path.ends_with(".bin") {
        "0".repeat(64)
    } else {
        "0".repeat(40)
    };
    let mut h = BlobHasher::for_name(&name, bytes.len() as u64).unwrap();
    h.update(bytes);
    h.finish()
}

fn cached(commit: &str, files: &[(&str, &[u8])], copies: bool) -> Cached {
    let root = tempfile::tempdir().unwrap();
    let repo_dir = root.path().join("models--org--m");
    let mut out = Vec::new();
    for (path, bytes) in files {
        let etag = etag_of(path, bytes);
        let mut w = BlobWriter::create(&repo_dir, &etag, bytes.len() as u64).unwrap();
        w.write(bytes).unwrap();
        w.finish().unwrap();
        if copies {
            copy_snapshot_file(&repo_dir, commit, path, &etag, true).unwrap();
        } else {
            link_snapshot_file(&repo_dir, commit, path, &etag).unwrap();
        }
        out.push(ManifestFile {
            path: path.to_string(),
            blob: etag,
            size: bytes.len() as u64,
        });
    }
    Cached {
        _root: root,
        repo_dir,
        files: out,
    }
}

impl Cached {
    fn rev<'a>(&'a self, commit: &'a str) -> CachedRevision<'a> {
        CachedRevision {
            repo_dir: &self.repo_dir,
            commit,
            files: &self.files,
        }
    }
}

const FILES: &[(&str, &[u8])] = &[
    ("config.json", b"{\"hidden\": 64}\n"),
    ("weights/model.bin", b"weights weights weights"),
];

fn progress() -> Arc<dyn Progress> {
    Arc::new(NoProgress)
}

fn place_into(rev: &CachedRevision<'_>, dir: &Path) -> Report {
    let report = place(rev, dir, Duration::from_secs(5), &progress()).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    report
}

#[test]
fn files_land_as_separate_real_files_with_huggingface_hubs_metadata() {
    let cache = cached(C1, FILES, false);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("models/m");
    let report = place_into(&cache.rev(C1), &dir);
    assert_eq!((report.placed, report.already_current), (2, 0));
    assert_eq!(report.reflinked + report.copied, 2);
    assert_eq!(report.path, dir);
    for (f, (path, bytes)) in cache.files.iter().zip(FILES) {
        let placed = dir.join(path);
        let meta = fs::symlink_metadata(&placed).unwrap();
        assert!(meta.is_file(), "{path} is a real file");
        assert_eq!(meta.nlink(), 1, "{path} is not a hard link");
        let blob = fs::metadata(blob_path(&cache.repo_dir, &f.blob)).unwrap();
        assert_ne!(meta.ino(), blob.ino());
        assert_eq!(fs::read(&placed).unwrap(), *bytes);
        let text = fs::read_to_string(layout::metadata_path(&dir, path)).unwrap();
        let m = FileMetadata::parse(&text).unwrap();
        assert_eq!((m.commit.as_str(), m.etag.as_str()), (C1, f.blob.as_str()));
        assert!(m.is_fresh_for(meta.modified().unwrap()));
        assert_eq!(text.lines().count(), 3, "{text:?}");
    }
    let hf = dir.join(".cache/huggingface");
    assert_eq!(fs::read_to_string(hf.join(".gitignore")).unwrap(), "*");
    assert!(fs::read_to_string(hf.join("CACHEDIR.TAG"))
        .unwrap()
        .starts_with("Signature: 8a477f597d28d172789f06886806bc55\n"));
    // No temporary file is left, in DIR or beside the metadata.
    let names: Vec<String> = walk(&dir);
    assert!(names.iter().all(|n| !n.contains(TEMP_PREFIX)), "{names:?}");
    assert!(check(&dir, C1, &cache.files).is_empty());
    // An edit in the folder never reaches the cache.
    fs::write(dir.join("config.json"), b"edited").unwrap();
    let blob = blob_path(&cache.repo_dir, &cache.files[0].blob);
    assert_eq!(fs::read(blob).unwrap(), FILES[0].1);
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn current_files_are_left_alone_and_changed_ones_replaced() {
    let cache = cached(C1, FILES, false);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("m");
    place_into(&cache.rev(C1), &dir);
    let ino = |p: &str| fs::metadata(dir.join(p)).unwrap().ino();
    let before = (ino("config.json"), ino("weights/model.bin"));
    let again = place_into(&cache.rev(C1), &dir);
    assert_eq!((again.placed, again.already_current), (0, 2));
    assert_eq!((ino("config.json"), ino("weights/model.bin")), before);
    assert_eq!(preview(&cache.rev(C1), &dir).unwrap().already_current, 2);

    // Same size, other bytes, modified after the metadata was written: replaced, as
    // huggingface_hub would no longer trust the metadata.
    let edited = dir.join("weights/model.bin");
    fs::write(&edited, b"WEIGHTS weights weights").unwrap();
    let later = SystemTime::now() + Duration::from_secs(5);
    File::options()
        .write(true)
        .open(&edited)
        .unwrap()
        .set_modified(later)
        .unwrap();
    // Another size: replaced whatever the times say.
    fs::write(dir.join("config.json"), b"{}").unwrap();
    let dry = preview(&cache.rev(C1), &dir).unwrap();
    assert_eq!((dry.placed, dry.already_current), (2, 0));
    let problems = check(&dir, C1, &cache.files);
    let kinds: Vec<_> = problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [ProblemKind::Size, ProblemKind::Content],
        "{problems:?}"
    );
    let fixed = place_into(&cache.rev(C1), &dir);
    assert_eq!((fixed.placed, fixed.already_current), (2, 0));
    assert_eq!(fs::read(&edited).unwrap(), FILES[1].1);
    assert!(check(&dir, C1, &cache.files).is_empty());
}

#[test]
fn a_new_commit_with_the_same_blobs_only_rewrites_the_metadata() {
    let cache = cached(C1, FILES, false);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("m");
    place_into(&cache.rev(C1), &dir);
    // C2 holds the same files: its snapshot links to the same blobs.
    for f in &cache.files {
        link_snapshot_file(&cache.repo_dir, C2, &f.path, &f.blob).unwrap();
    }
    let problems = check(&dir, C2, &cache.files);
    assert!(problems.iter().all(|p| p.kind == ProblemKind::Metadata));
    assert_eq!(problems.len(), 2);
    let ino = fs::metadata(dir.join("config.json")).unwrap().ino();
    let report = place_into(&cache.rev(C2), &dir);
    assert_eq!((report.placed, report.already_current), (0, 2));
    assert_eq!(fs::metadata(dir.join("config.json")).unwrap().ino(), ino);
    let text = fs::read_to_string(layout::metadata_path(&dir, "config.json")).unwrap();
    assert!(text.starts_with(&format!("{C2}\n")), "{text}");
    assert!(check(&dir, C2, &cache.files).is_empty());
}

#[test]
fn a_snapshot_of_plain_files_is_read_without_its_blobs() {
    // With symlinks off, huggingface_hub moves a blob into its snapshot file.
    let cache = cached(C1, FILES, true);
    assert!(!blob_path(&cache.repo_dir, &cache.files[0].blob).exists());
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("m");
    place_into(&cache.rev(C1), &dir);
    assert!(check(&dir, C1, &cache.files).is_empty());
}

#[test]
fn hostile_paths_refuse_the_revision_before_anything_is_written() {
    let cache = cached(C1, FILES, false);
    for bad in [
        "../escape.txt",
        "/etc/passwd-copy",
        "a/../../escape",
        "a\\..\\escape",
        ".cache/huggingface/download/config.json.metadata",
    ] {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("m");
        let mut files = cache.files.clone();
        files[1].path = bad.to_string();
        let rev = CachedRevision {
            files: &files,
            ..cache.rev(C1)
        };
        let err = place(&rev, &dir, Duration::from_secs(5), &progress()).unwrap_err();
        assert!(matches!(err, LocalDirError::Refused { .. }), "{bad}: {err}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        assert!(preview(&rev, &dir).is_err(), "{bad}");
        assert!(
            !dir.join("config.json").exists(),
            "{bad}: nothing is written"
        );
        assert_eq!(check(&dir, C1, &files)[1].kind, ProblemKind::Refused);
        assert!(!work.path().join("escape.txt").exists());
    }
}

#[test]
fn links_planted_in_the_folder_are_never_written_through() {
    let cache = cached(C1, FILES, false);
    let outside = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("m");
    let decoy = outside.path().join("config.json");
    fs::write(&decoy, b"not yours").unwrap();
    let plants: [(&str, &Path); 4] = [
        ("weights", outside.path()),
        ("config.json", &decoy),
        (".cache", outside.path()),
        (".cache/huggingface/download/config.json.lock", &decoy),
    ];
    for (at, target) in plants {
        let _ = fs::remove_dir_all(&dir);
        let place_at = dir.join(at);
        fs::create_dir_all(place_at.parent().unwrap()).unwrap();
        symlink(target, &place_at).unwrap();
        let err = place(&cache.rev(C1), &dir, Duration::from_secs(5), &progress()).unwrap_err();
        assert!(matches!(err, LocalDirError::Refused { .. }), "{at}: {err}");
        assert!(err.to_string().contains("outside the local dir"), "{err}");
        assert!(err.hint().is_some());
        let mut left = walk(outside.path());
        left.sort();
        assert_eq!(left, [decoy.display().to_string()], "{at}");
        assert_eq!(fs::read(&decoy).unwrap(), b"not yours");
    }
    // A link that stays inside the folder is fine.
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("real")).unwrap();
    symlink(dir.join("real"), dir.join("weights")).unwrap();
    place_into(&cache.rev(C1), &dir);
    assert!(dir.join("real/model.bin").is_file());
}

#[test]
fn a_file_in_the_way_of_the_folder_is_named() {
    let cache = cached(C1, FILES, false);
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("models");
    fs::write(&file, b"").unwrap();
    for dir in [file.clone(), file.join("m")] {
        for err in [
            prepare(&dir, true).unwrap_err(),
            place(&cache.rev(C1), &dir, Duration::from_secs(5), &progress()).unwrap_err(),
        ] {
            assert!(
                matches!(&err, LocalDirError::NotAFolder { path } if *path == file),
                "{err}"
            );
            assert!(err.is_about_the_folder());
            assert!(err.hint().unwrap().contains("--local-dir"));
        }
    }
    // A folder where a file of the revision goes fails that file alone.
    let dir = work.path().join("m");
    fs::create_dir_all(dir.join("config.json")).unwrap();
    let report = place(&cache.rev(C1), &dir, Duration::from_secs(5), &progress()).unwrap();
    assert_eq!(report.placed, 1);
    assert_eq!(report.failures.len(), 1);
    assert!(report.failures[0].text().contains("a folder is in the way"));
    assert_eq!(check(&dir, C1, &cache.files)[0].kind, ProblemKind::NotAFile);
}

#[test]
fn check_names_missing_files_and_missing_metadata() {
    let cache = cached(C1, FILES, false);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("m");
    place_into(&cache.rev(C1), &dir);
    fs::remove_file(dir.join("config.json")).unwrap();
    fs::remove_file(layout::metadata_path(&dir, "weights/model.bin")).unwrap();
    let problems = check(&dir, C1, &cache.files);
    let kinds: Vec<_> = problems.iter().map(|p| (p.path.as_str(), p.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("config.json", ProblemKind::Missing),
            ("weights/model.bin", ProblemKind::Metadata)
        ]
    );
}

#[test]
fn the_caches_tree_listing_goes_along() {
    let cache = cached(C1, FILES, false);
    let listing = b"{\"format_version\": 1, \"files\": {}}".to_vec();
    crate::cache::trees::write_listing(&cache.repo_dir, C1, &listing).unwrap();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("m");
    place_into(&cache.rev(C1), &dir);
    assert_eq!(fs::read(layout::listing_path(&dir, C1)).unwrap(), listing);
}

#[test]
fn what_a_killed_run_left_is_removed_by_the_next() {
    let cache = cached(C1, FILES, false);
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("m");
    fs::create_dir_all(dir.join("weights")).unwrap();
    // A copy cut short by a SIGKILL (no cleanup ran), beside a file of the user's.
    let partial = dir.join("weights/.hfcs-model.bin.Ab12Cd.tmp");
    fs::write(&partial, b"weights wei").unwrap();
    let users = dir.join("weights/.hfcs-notes.txt.Zz99Yy.tmp");
    fs::write(&users, b"not ours to judge").unwrap();
    place_into(&cache.rev(C1), &dir);
    assert!(!partial.exists());
    assert!(
        users.exists(),
        "only temporaries of the revision's files are removed"
    );
    // The temporary name says which file it was for, even for a name at the length limit.
    let long = dir.join("x".repeat(255));
    let prefix = temp_prefix(&long);
    assert!(
        prefix.len() + 6 + TEMP_SUFFIX.len() <= 255,
        "{}",
        prefix.len()
    );
    assert_eq!(temp_key(&long), dir.join("x".repeat(NAME_IN_TEMP)));
}
