//! Blobs verified before they get their name, links and refs as huggingface_hub writes them, and
//! what happens when many processes write the same blob at once.

use super::*;

const HELLO_SHA1: &str = "ce013625030ba8dba906f756967f9e9ca394464a";

#[test]
fn a_copy_in_the_kernel_verifies_what_landed() {
    let dir = tempfile::tempdir().unwrap();
    let src_path = dir.path().join("src");
    // Several chunks, so the copy loops and reads back at growing offsets.
    let body: Vec<u8> = (0..(3 * super::super::hash::READ_CHUNK + 17))
        .map(|i| (i % 251) as u8)
        .collect();
    fs::write(&src_path, &body).unwrap();
    let etag = crate::cache::hash::sha256_hex(&body);
    let mut w = BlobWriter::create(dir.path(), &etag, body.len() as u64).unwrap();
    let mut seen = 0;
    let src = File::open(&src_path).unwrap();
    assert!(w.copy_from(&src, |n| seen += n).unwrap());
    assert_eq!(seen, body.len() as u64);
    let path = w.finish().unwrap();
    assert_eq!(fs::read(path).unwrap(), body);

    // Bytes that are not the blob's are found as they are with a plain write.
    let src = File::open(&src_path).unwrap();
    let wrong = "0".repeat(64);
    let mut w = BlobWriter::create(dir.path(), &wrong, body.len() as u64).unwrap();
    assert!(w.copy_from(&src, |_| {}).unwrap());
    assert!(matches!(w.finish(), Err(WriteError::Mismatch { .. })));
    assert!(!dir.path().join("blobs").join(&wrong).exists());
}

#[test]
fn what_the_kernel_cannot_copy_is_left_to_plain_writes() {
    use std::os::fd::FromRawFd;
    let dir = tempfile::tempdir().unwrap();
    let mut fds = [0; 2];
    // SAFETY: a fresh pipe; each end is owned by one File below.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (reader, mut writer) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    writer.write_all(b"hello\n").unwrap();
    drop(writer);
    let mut w = BlobWriter::create(dir.path(), HELLO_SHA1, 6).unwrap();
    assert!(!w.copy_from(&reader, |_| {}).unwrap());
    assert_eq!(w.written(), 0);
    w.write(b"hello\n").unwrap();
    assert_eq!(fs::read(w.finish().unwrap()).unwrap(), b"hello\n");
}

fn leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

#[test]
fn verified_blob_is_renamed_into_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlobWriter::create(dir.path(), HELLO_SHA1, 6).unwrap();
    w.write(b"hel").unwrap();
    w.write(b"lo\n").unwrap();
    let path = w.finish().unwrap();
    assert_eq!(fs::read(path).unwrap(), b"hello\n");
    assert_eq!(leftovers(&dir.path().join("blobs")), vec![HELLO_SHA1]);
}

#[test]
fn wrong_content_never_gets_the_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlobWriter::create(dir.path(), HELLO_SHA1, 6).unwrap();
    w.write(b"HELLO\n").unwrap();
    assert!(matches!(w.finish(), Err(WriteError::Mismatch { .. })));
    assert!(leftovers(&dir.path().join("blobs")).is_empty());
}

#[test]
fn oversize_and_short_writes_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlobWriter::create(dir.path(), HELLO_SHA1, 6).unwrap();
    assert!(w.write(b"hello\n!").is_err());
    drop(w);
    let mut w = BlobWriter::create(dir.path(), HELLO_SHA1, 6).unwrap();
    w.write(b"hel").unwrap();
    assert!(matches!(w.finish(), Err(WriteError::Size { .. })));
    assert!(leftovers(&dir.path().join("blobs")).is_empty());
}

/// A writer cut off after `bytes`: its partial stays, as a failed or interrupted run leaves it.
fn cut_off(dir: &Path, etag: &str, bytes: &[u8]) -> PathBuf {
    let mut w = BlobWriter::create(dir, etag, 6).unwrap();
    w.write(bytes).unwrap();
    let path = w.tmp.path().to_path_buf();
    drop(w);
    assert!(path.exists());
    path
}

fn partials_of(dir: &Path, etag: &str) -> Vec<PathBuf> {
    crate::cache::partial::leftovers_by_blob(dir)
        .remove(etag)
        .unwrap_or_default()
        .partials
}

#[test]
fn a_partial_is_resumed_where_it_stopped_and_verified_whole() {
    let dir = tempfile::tempdir().unwrap();
    cut_off(dir.path(), HELLO_SHA1, b"hel");
    let mut w = BlobWriter::open(
        dir.path(),
        HELLO_SHA1,
        6,
        &partials_of(dir.path(), HELLO_SHA1),
    )
    .unwrap();
    assert_eq!((w.resumed(), w.written()), (3, 3));
    w.write(b"lo\n").unwrap();
    assert_eq!(fs::read(w.finish().unwrap()).unwrap(), b"hello\n");
    assert_eq!(leftovers(&dir.path().join("blobs")), vec![HELLO_SHA1]);
}

/// Writes `file` out and drops bytes `from..to` of it from the page cache, as a machine that
/// restarted or ran out of memory has.
pub(super) fn evict(file: &fs::File, (from, to): (usize, usize)) {
    use std::os::fd::AsRawFd;
    file.sync_all().unwrap();
    // SAFETY: plain advice on a descriptor we own, for a range of it.
    let got = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            from as libc::off_t,
            (to - from) as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    assert_eq!(got, 0);
}

/// The kept bytes of [`resume_slowly`] that are no longer in the page cache: those from 4 to
/// 8 MiB, read from the disk, between the first 4 MiB and the last few KiB, read from the cache.
const EVICTED: (usize, usize) = (4 * 1024 * 1024, 8 * 1024 * 1024);

/// A partial of `body` cut off after `kept` bytes (`damage` flipped at that offset first, when
/// given) and partly dropped from the page cache ([`EVICTED`]), resumed, and the rest written
/// in pieces slowly enough for the read-back hasher to catch up and hand the hash back.
fn resume_slowly(body: &[u8], kept: usize, damage: Option<usize>) -> Result<PathBuf, WriteError> {
    let dir = tempfile::tempdir().unwrap().keep();
    let etag = crate::cache::hash::sha256_hex(body);
    let mut w = BlobWriter::create(&dir, &etag, body.len() as u64).unwrap();
    let mut prefix = body[..kept].to_vec();
    if let Some(at) = damage {
        prefix[at] ^= 1;
    }
    w.write(&prefix).unwrap();
    drop(w);
    let partials = partials_of(&dir, &etag);
    evict(&fs::File::open(&partials[0]).unwrap(), EVICTED);
    let mut w = BlobWriter::open(&dir, &etag, body.len() as u64, &partials).unwrap();
    assert_eq!(w.resumed(), kept as u64);
    for piece in body[kept..].chunks(64 * 1024) {
        w.write(piece).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !w.hashes_inline() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        w.write(&[]).unwrap();
    }
    assert!(
        w.hashes_inline(),
        "the read-back hasher caught up and handed back"
    );
    w.finish()
}

#[test]
fn a_resumed_partial_hashed_back_then_inline_verifies_whole() {
    // Kept bytes over several reads, from the page cache and past it, ending off their
    // alignment.
    let body: Vec<u8> = (0..(9 * 1024 * 1024 + 333))
        .map(|i| (i % 253) as u8)
        .collect();
    let path = resume_slowly(&body, 8 * 1024 * 1024 + 4097, None).unwrap();
    assert_eq!(fs::read(path).unwrap(), body);
}

#[test]
fn a_partial_damaged_deep_inside_fails_after_the_hash_was_handed_back() {
    let body: Vec<u8> = (0..(9 * 1024 * 1024 + 333))
        .map(|i| (i % 253) as u8)
        .collect();
    let e = resume_slowly(&body, 8 * 1024 * 1024 + 4097, Some(5 * 1024 * 1024 + 7));
    assert!(matches!(e, Err(WriteError::Mismatch { .. })), "{e:?}");
}

#[test]
fn a_damaged_partial_never_gets_the_name_and_goes() {
    let dir = tempfile::tempdir().unwrap();
    cut_off(dir.path(), HELLO_SHA1, b"HEL");
    let mut w = BlobWriter::open(
        dir.path(),
        HELLO_SHA1,
        6,
        &partials_of(dir.path(), HELLO_SHA1),
    )
    .unwrap();
    assert_eq!(w.resumed(), 3);
    w.write(b"lo\n").unwrap();
    assert!(matches!(w.finish(), Err(WriteError::Mismatch { .. })));
    assert!(leftovers(&dir.path().join("blobs")).is_empty());
}

#[test]
fn the_longest_partial_is_resumed_and_the_others_go() {
    let dir = tempfile::tempdir().unwrap();
    cut_off(dir.path(), HELLO_SHA1, b"h");
    cut_off(dir.path(), HELLO_SHA1, b"hell");
    // Longer than the blob: not a prefix of it.
    let blobs = dir.path().join("blobs");
    fs::write(blobs.join(format!("{HELLO_SHA1}.incomplete")), b"hello\n!!").unwrap();
    let found = partials_of(dir.path(), HELLO_SHA1);
    assert_eq!(found.len(), 3);
    let w = BlobWriter::open(dir.path(), HELLO_SHA1, 6, &found).unwrap();
    assert_eq!(w.resumed(), 4);
    assert_eq!(
        partials_of(dir.path(), HELLO_SHA1),
        vec![w.tmp.path().to_path_buf()]
    );
    // A whole blob left just before its rename is checked and named.
    drop(w);
    let mut w = BlobWriter::open(
        dir.path(),
        HELLO_SHA1,
        6,
        &partials_of(dir.path(), HELLO_SHA1),
    )
    .unwrap();
    w.write(b"o\n").unwrap();
    drop(w);
    let w = BlobWriter::open(
        dir.path(),
        HELLO_SHA1,
        6,
        &partials_of(dir.path(), HELLO_SHA1),
    )
    .unwrap();
    assert!(w.is_complete());
    w.finish().unwrap();
    assert_eq!(leftovers(&blobs), vec![HELLO_SHA1]);
}

#[test]
fn stale_temps_of_one_blob_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs");
    fs::create_dir(&blobs).unwrap();
    let other = "d".repeat(40);
    // What killed runs of older versions left: temporary files for this blob and another.
    for etag in [HELLO_SHA1, &other] {
        fs::write(
            blobs.join(format!("{TEMP_PREFIX}{etag}-a1b2c3{TEMP_SUFFIX}")),
            b"he",
        )
        .unwrap();
    }
    fs::write(blobs.join(HELLO_SHA1), b"hello\n").unwrap();
    let found = crate::cache::partial::leftovers_by_blob(dir.path());
    assert_eq!(found.len(), 2, "{found:?}");
    remove_stale_temps(&found[HELLO_SHA1].temps);
    let mut left = leftovers(&blobs);
    left.sort();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(
        left[0].starts_with(&format!("{TEMP_PREFIX}{other}-")),
        "{left:?}"
    );
    assert_eq!(left[1], HELLO_SHA1);
}

#[test]
fn snapshot_links_are_relative_and_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlobWriter::create(dir.path(), HELLO_SHA1, 6).unwrap();
    w.write(b"hello\n").unwrap();
    w.finish().unwrap();
    let c = "c".repeat(40);
    for _ in 0..2 {
        let kind = link_snapshot_file(dir.path(), &c, "a/b.txt", HELLO_SHA1).unwrap();
        assert_eq!(kind, LinkKind::Symlink);
    }
    let link = dir.path().join("snapshots").join(&c).join("a/b.txt");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        PathBuf::from(format!("../../../blobs/{HELLO_SHA1}"))
    );
    assert_eq!(fs::read(&link).unwrap(), b"hello\n");
}

#[test]
fn links_leaving_the_cache_are_never_written_through() {
    let cache = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = cache.path();
    let repo = root.join("models--a--b");
    fs::create_dir_all(repo.join("snapshots")).unwrap();
    std::os::unix::fs::symlink(outside.path(), repo.join("snapshots/c1")).unwrap();
    std::os::unix::fs::symlink(repo.join("snapshots"), repo.join("inside")).unwrap();
    let err = check_inside(root, &repo.join("snapshots/c1/sub")).unwrap_err();
    assert!(err.to_string().contains("outside the cache dir"), "{err}");
    check_inside(root, &repo.join("inside/c2")).unwrap();
    check_inside(root, &repo.join("blobs")).unwrap();
    check_inside(root, &root.join("models--new--repo/blobs")).unwrap();
    assert!(check_inside(root, outside.path()).is_err());
}

#[test]
fn refs_have_no_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    write_ref(dir.path(), "pr/1", "abc").unwrap();
    assert_eq!(fs::read(dir.path().join("refs/pr/1")).unwrap(), b"abc");
    assert_eq!(leftovers(&dir.path().join("refs/pr")), vec!["1"]);
    assert!(leftovers(&dir.path().join("blobs")).is_empty());
    // Written again with the same commit: the file is not touched; with another, replaced.
    use std::os::unix::fs::MetadataExt;
    let inode = || fs::metadata(dir.path().join("refs/pr/1")).unwrap().ino();
    let before = inode();
    write_ref(dir.path(), "pr/1", "abc").unwrap();
    assert_eq!(inode(), before);
    write_ref(dir.path(), "pr/1", "abd").unwrap();
    assert_eq!(fs::read(dir.path().join("refs/pr/1")).unwrap(), b"abd");
}

#[test]
fn linking_the_same_file_from_many_processes_at_once_never_writes_into_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = BlobWriter::create(dir.path(), HELLO_SHA1, 6).unwrap();
    w.write(b"hello\n").unwrap();
    w.finish().unwrap();
    let threads = 4;
    let barrier = std::sync::Barrier::new(threads);
    let outcomes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for i in 0..1000 {
                    let commit = format!("{i:040}");
                    barrier.wait();
                    let r = link_snapshot_file(dir.path(), &commit, "a/b.txt", HELLO_SHA1);
                    outcomes.lock().unwrap().push(r.map_err(|e| e.to_string()));
                }
            });
        }
    });
    for r in outcomes.into_inner().unwrap() {
        assert_eq!(r, Ok(LinkKind::Symlink));
    }
    let blob = dir.path().join("blobs").join(HELLO_SHA1);
    assert_eq!(fs::read(&blob).unwrap(), b"hello\n");
    let snapshots = dir.path().join("snapshots");
    for entry in fs::read_dir(&snapshots).unwrap() {
        let snap = entry.unwrap().path();
        assert_eq!(leftovers(&snap), vec!["a"], "no temporary link left");
        assert_eq!(fs::read(snap.join("a/b.txt")).unwrap(), b"hello\n");
    }
}
