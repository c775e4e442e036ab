//! File locks on the hub cache, in one place: huggingface_hub's blob lock
//! (`.locks/<repo folder>/<etag>.lock`), the shared-store payload locks, and this tool's repo
//! lock (`.locks/<repo folder>.hf-cache-sync.lock`), which a pull holds shared ([`RepoLease`])
//! and prune and rm take exclusively ([`RepoLock`], [`RepoLockSet`]); the cache-root locks a push
//! holds while it runs ([`PushLock`]) and a `watch` for as long as it watches ([`WatchLock`]).
//!
//! Three ways to take a lock: [`wait`] (bounded, for writers), [`try_lock`] (never waits, and
//! leaves no new file behind, for deleters) and [`probe`] (looks without creating anything, for
//! planning). All are advisory `flock`s: on filesystems where flock is a no-op, safety comes
//! from temporary files and atomic renames, never from the lock alone.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::file_id;
use super::{parse_repo_folder, push_lock_path, repo_lock_path, watch_lock_path};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "gave up after {} waiting for the lock {}: another process (an hf_hub_download, a pull, \
         a prune) still holds it; set {} to wait longer",
        humantime::format_duration(*waited),
        path.display(),
        crate::env::EnvVars::LOCK_TIMEOUT
    )]
    Timeout { path: PathBuf, waited: Duration },
}

/// Who may hold a lock alongside us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Any number of shared holders, no exclusive one.
    Shared,
    Exclusive,
}

/// A lock taken by [`wait`]; released on drop. The lock file stays: huggingface_hub leaves its
/// lock files in place too, and removing one another process waits on would let two holders in.
pub struct FileLock {
    _file: File,
}

/// How often a wait for a lock says it is still waiting.
const STILL_WAITING_EVERY: Duration = Duration::from_secs(60);

/// Opens (creating it) the lock file at `path` for locking.
fn open_lock_file(path: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
    {
        Ok(f) => Ok(f),
        // Another user's lock file: a read-only descriptor locks just as well.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => File::open(path),
        Err(e) => Err(e),
    }
}

fn try_mode(file: &File, mode: Mode) -> Result<(), fs::TryLockError> {
    match mode {
        Mode::Shared => file.try_lock_shared(),
        Mode::Exclusive => file.try_lock(),
    }
}

/// Takes the lock at `path` in `mode`, waiting while another process holds it, at most
/// `timeout`. `on_wait` is called with the time waited so far when the wait starts, then every
/// minute. Blocking: call from a blocking context.
pub fn wait(
    path: &Path,
    mode: Mode,
    timeout: Duration,
    mut on_wait: impl FnMut(Duration),
) -> Result<FileLock, LockError> {
    let io_err = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    let started = Instant::now();
    let mut next_report = Duration::ZERO;
    let mut made_parent = false;
    loop {
        let file = match open_lock_file(path) {
            Ok(f) => f,
            // The folder is made only when missing (a pull of thousands of blobs would pay a
            // failed mkdir for each), and again when a prune that removed the last repo's lock
            // folder took `.locks` with it between our mkdir and the open.
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && (!std::mem::replace(&mut made_parent, true)
                        || started.elapsed() < timeout) =>
            {
                let parent = path.parent().unwrap_or(Path::new("."));
                fs::create_dir_all(parent).map_err(|source| LockError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
                continue;
            }
            Err(e) => return Err(io_err(e)),
        };
        loop {
            match try_mode(&file, mode) {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock) => {
                    let waited = started.elapsed();
                    if waited >= timeout {
                        return Err(LockError::Timeout {
                            path: path.to_path_buf(),
                            waited,
                        });
                    }
                    if waited >= next_report {
                        on_wait(waited);
                        next_report = waited + STILL_WAITING_EVERY;
                    }
                    // Poll rather than block, so the wait can end at the timeout.
                    let pause = if waited < Duration::from_secs(2) {
                        Duration::from_millis(20)
                    } else {
                        Duration::from_millis(200)
                    };
                    std::thread::sleep(pause.min(timeout - waited));
                }
                Err(fs::TryLockError::Error(e)) => return Err(io_err(e)),
            }
        }
        // A lock file deleted while we waited (prune removing a whole repo deletes its locks
        // while holding them) no longer excludes anyone: lock the file now at that path.
        if same_file(&file, path) {
            return Ok(FileLock { _file: file });
        }
    }
}

/// Takes the exclusive lock huggingface_hub takes while it writes a blob, waiting while another
/// process (an `hf_hub_download`, another pull) holds it, at most `timeout`. Blocking.
pub fn lock_blob(
    lock_path: &Path,
    timeout: Duration,
    on_wait: impl FnMut(Duration),
) -> Result<FileLock, LockError> {
    wait(lock_path, Mode::Exclusive, timeout, on_wait)
}

/// Is the open `file` still the file at `path`?
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => file_id(&a) == file_id(&b),
        _ => false,
    }
}

/// What [`probe`] found.
#[derive(Debug)]
pub enum Probe {
    /// Nobody holds it (or there is no lock file).
    Free,
    /// Someone else holds it.
    Held,
    /// It could not be checked.
    Unknown(io::Error),
}

/// Whether someone holds the lock at `path`, checked without creating anything.
pub fn probe(path: &Path) -> Probe {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Probe::Free,
        Err(e) => return Probe::Unknown(e),
    };
    match file.try_lock() {
        Ok(()) => Probe::Free,
        Err(fs::TryLockError::WouldBlock) => Probe::Held,
        Err(fs::TryLockError::Error(e)) => Probe::Unknown(e),
    }
}

/// An exclusive lock taken by [`try_lock`]. A lock file, or `.locks/` folders, that taking it
/// created are removed again on release (the file while still held), so a deletion leaves no
/// new files.
pub struct TransientLock {
    file: File,
    path: PathBuf,
    created_file: bool,
    /// Folders created for the lock file, innermost first.
    created_dirs: Vec<PathBuf>,
}

impl Drop for TransientLock {
    fn drop(&mut self) {
        // Only our own file: once it was deleted (a repo removed whole takes its lock files
        // along), the path may name a new file another process has locked since.
        if self.created_file && same_file(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
        for dir in &self.created_dirs {
            if fs::remove_dir(dir).is_err() {
                break;
            }
        }
    }
}

/// Takes the lock at `path` exclusively without waiting, creating the lock file as
/// huggingface_hub does. `Ok(None)` when someone else holds it.
pub fn try_lock(path: &Path) -> io::Result<Option<TransientLock>> {
    let mut created_dirs = Vec::new();
    let mut dir = path.parent();
    while let Some(d) = dir {
        if d.as_os_str().is_empty() || fs::symlink_metadata(d).is_ok() {
            break;
        }
        created_dirs.push(d.to_path_buf());
        dir = d.parent();
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    let created_file = fs::symlink_metadata(path).is_err();
    let file = open_lock_file(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(TransientLock {
            file,
            path: path.to_path_buf(),
            created_file,
            created_dirs,
        })),
        Err(fs::TryLockError::WouldBlock) => Ok(None),
        Err(fs::TryLockError::Error(e)) => Err(e),
    }
}

/// A repo's lock ([`repo_lock_path`]) held shared by a pull while it writes into the repo, so
/// prune and rm leave the repo alone: nothing they delete can be a blob the pull has just
/// written but not yet linked, or a revision it is still building.
pub struct RepoLease {
    _lock: FileLock,
}

impl RepoLease {
    /// Takes the repo lock at `path` shared, waiting at most `timeout` while a prune or rm holds
    /// it. Blocking.
    pub fn wait(
        path: &Path,
        timeout: Duration,
        on_wait: impl FnMut(Duration),
    ) -> Result<RepoLease, LockError> {
        wait(path, Mode::Shared, timeout, on_wait).map(|lock| RepoLease { _lock: lock })
    }
}

/// A repo's lock held exclusively by prune or rm: no pull writes into the repo meanwhile.
pub struct RepoLock {
    _lock: TransientLock,
}

impl RepoLock {
    /// Locks the repo `folder` of `cache_dir` without waiting; `Ok(None)` when a pull holds it.
    pub fn try_take(cache_dir: &Path, folder: &str) -> io::Result<Option<RepoLock>> {
        Ok(try_lock(&repo_lock_path(cache_dir, folder))?.map(|lock| RepoLock { _lock: lock }))
    }
}

/// The cache-root lock ([`push_lock_path`]) a push holds from before its scan until its last
/// ref is written, whether a person ran it or `watch` did: the two wait for each other instead
/// of planning from the same scan and uploading the same blobs twice.
pub struct PushLock {
    _lock: Option<FileLock>,
}

impl PushLock {
    /// Takes the push lock of `cache_dir`, waiting at most `timeout` while another push holds
    /// it. A cache this user may not write to (a read-only or another user's cache) has no lock
    /// to take: the push goes ahead without one. Neither has a cache dir that does not exist,
    /// which taking the lock must not create (the scan refuses it, naming it). Blocking.
    pub fn wait(
        cache_dir: &Path,
        timeout: Duration,
        on_wait: impl FnMut(Duration),
    ) -> Result<PushLock, LockError> {
        if !cache_dir.is_dir() {
            return Ok(PushLock { _lock: None });
        }
        match wait(
            &push_lock_path(cache_dir),
            Mode::Exclusive,
            timeout,
            on_wait,
        ) {
            Ok(lock) => Ok(PushLock { _lock: Some(lock) }),
            Err(LockError::Io { source, .. }) if cannot_write(&source) => {
                Ok(PushLock { _lock: None })
            }
            Err(e) => Err(e),
        }
    }

    /// False when the cache could not be locked because this user may not write to it.
    #[cfg(test)]
    pub fn is_held(&self) -> bool {
        self._lock.is_some()
    }
}

/// Permission denied or a read-only filesystem: nothing this user does can write there.
fn cannot_write(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied || e.raw_os_error() == Some(libc::EROFS)
}

/// Held by `watch` for as long as it runs ([`watch_lock_path`]): a second watch of the same
/// cache would only push everything twice.
pub struct WatchLock {
    _lock: TransientLock,
}

impl WatchLock {
    /// Takes the watch lock of `cache_dir` without waiting; `Ok(None)` when another watch holds it.
    pub fn try_take(cache_dir: &Path) -> io::Result<Option<WatchLock>> {
        Ok(try_lock(&watch_lock_path(cache_dir))?.map(|lock| WatchLock { _lock: lock }))
    }
}

/// Exclusive locks on every repo of a cache, taken before the scan that plans a deletion and
/// held until it is carried out. A repo locked here is one no pull changes meanwhile, so the
/// plan stays true; repos a pull holds are [`RepoLockSet::busy`] and must be left alone.
///
/// Lock files (and `.locks/`) that taking the locks created are removed again on release.
pub struct RepoLockSet {
    held: Vec<RepoLock>,
    busy: HashSet<String>,
}

impl RepoLockSet {
    /// Locks each repo folder in `cache_dir` without waiting. Blocking.
    pub fn take(cache_dir: &Path) -> RepoLockSet {
        let mut locks = RepoLockSet {
            held: Vec::new(),
            busy: HashSet::new(),
        };
        let Ok(entries) = fs::read_dir(cache_dir) else {
            return locks;
        };
        let mut folders: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|name| parse_repo_folder(name).is_some())
            .collect();
        folders.sort();
        for folder in folders {
            match RepoLock::try_take(cache_dir, &folder) {
                Ok(Some(lock)) => locks.held.push(lock),
                Ok(None) => {
                    locks.busy.insert(folder);
                }
                // No lock file and no right to create one (a read-only cache): no pull can be
                // writing there either.
                Err(_) => {}
            }
        }
        locks
    }

    /// Folders of the repos a pull is writing into.
    pub fn busy(&self) -> &HashSet<String> {
        &self.busy
    }
}

impl Drop for RepoLockSet {
    fn drop(&mut self) {
        // Newest first: the first lock may have created `.locks/`, which can go only once the
        // others' files are gone.
        while let Some(lock) = self.held.pop() {
            drop(lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_elsewhere(path: &Path, mode: Mode) -> File {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        let f = File::create(path).unwrap();
        match mode {
            Mode::Shared => f.lock_shared().unwrap(),
            Mode::Exclusive => f.lock().unwrap(),
        }
        f
    }

    #[test]
    fn a_lock_held_too_long_is_given_up_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".locks/models--a--b/x.lock");
        let _holder = held_elsewhere(&path, Mode::Exclusive);
        let mut waits = 0;
        let started = Instant::now();
        let err = lock_blob(&path, Duration::from_millis(300), |_| waits += 1)
            .err()
            .expect("times out");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(waits, 1, "says once that it waits");
        assert!(matches!(err, LockError::Timeout { .. }));
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        assert!(text.contains("HF_CACHE_SYNC_LOCK_TIMEOUT"), "{text}");
    }

    #[test]
    fn leases_share_a_repo_and_keep_its_lock_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = repo_lock_path(dir.path(), "models--a--b");
        let a = RepoLease::wait(&path, Duration::ZERO, |_| {}).unwrap();
        let b = RepoLease::wait(&path, Duration::ZERO, |_| {}).unwrap();
        assert!(RepoLock::try_take(dir.path(), "models--a--b")
            .unwrap()
            .is_none());
        drop((a, b));
        let lock = RepoLock::try_take(dir.path(), "models--a--b").unwrap();
        assert!(lock.is_some());
        let err = RepoLease::wait(&path, Duration::from_millis(50), |_| {})
            .err()
            .expect("a lease waits for the lock, then gives up");
        assert!(matches!(err, LockError::Timeout { .. }));
    }

    #[test]
    fn a_lock_file_deleted_while_waiting_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let path = repo_lock_path(dir.path(), "models--a--b");
        let prune = held_elsewhere(&path, Mode::Exclusive);
        let waiter = std::thread::spawn({
            let path = path.clone();
            move || RepoLease::wait(&path, Duration::from_secs(30), |_| {}).unwrap()
        });
        std::thread::sleep(Duration::from_millis(100));
        // What prune does when it removes the repo: delete the lock file, then release it.
        fs::remove_file(&path).unwrap();
        drop(prune);
        let held = waiter.join().unwrap();
        // The waiter holds the file now at the path, so a new prune is kept out.
        let again = File::open(&path).expect("a new lock file");
        assert!(again.try_lock().is_err());
        drop(held);
        assert!(again.try_lock().is_ok());
    }

    #[test]
    fn lock_excludes_a_second_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".locks/models--a--b/x.lock");
        let held = lock_blob(&path, Duration::from_secs(1), |_| {}).unwrap();
        let other = File::open(&path).unwrap();
        assert!(other.try_lock().is_err());
        drop(held);
        assert!(other.try_lock().is_ok());
    }

    #[test]
    fn probing_creates_nothing_and_tells_held_from_free() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".locks/models--a--b/x.lock");
        assert!(matches!(probe(&path), Probe::Free));
        assert!(!dir.path().join(".locks").exists());
        let holder = held_elsewhere(&path, Mode::Shared);
        assert!(matches!(probe(&path), Probe::Held));
        drop(holder);
        assert!(matches!(probe(&path), Probe::Free));
    }

    #[test]
    fn a_tried_lock_leaves_no_new_files_and_yields_to_a_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".locks/models--a--b/x.lock");
        let lock = try_lock(&path).unwrap().expect("free");
        assert!(try_lock(&path).unwrap().is_none(), "held by the first");
        drop(lock);
        assert!(!dir.path().join(".locks").exists());
        // A lock file someone else made (and released) stays.
        drop(held_elsewhere(&path, Mode::Exclusive));
        drop(
            try_lock(&path)
                .unwrap()
                .expect("free once its holder is gone"),
        );
        assert!(path.exists());
    }

    #[test]
    fn a_tried_lock_never_removes_a_file_that_replaced_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".locks/x.lock");
        let lock = try_lock(&path).unwrap().expect("free");
        // Deleted while held (as a whole-repo removal does), then made anew by a pull.
        fs::remove_file(&path).unwrap();
        let _pull = held_elsewhere(&path, Mode::Shared);
        drop(lock);
        assert!(path.exists(), "the pull's lock file stays");
    }

    #[test]
    fn pushes_of_one_cache_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let first = PushLock::wait(dir.path(), Duration::ZERO, |_| {}).unwrap();
        assert!(first.is_held());
        let mut waits = 0;
        let err = PushLock::wait(dir.path(), Duration::from_millis(100), |_| waits += 1)
            .err()
            .expect("the second push waits, then gives up");
        assert!(matches!(err, LockError::Timeout { .. }));
        assert_eq!(waits, 1);
        drop(first);
        assert!(PushLock::wait(dir.path(), Duration::ZERO, |_| {})
            .unwrap()
            .is_held());
    }

    #[test]
    fn taking_the_push_lock_never_creates_the_cache_dir() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("typo");
        let lock = PushLock::wait(&missing, Duration::ZERO, |_| {}).unwrap();
        assert!(!lock.is_held());
        assert!(!missing.exists());
    }

    #[test]
    fn a_cache_nobody_may_write_is_pushed_without_its_lock() {
        assert!(cannot_write(&io::Error::from_raw_os_error(libc::EROFS)));
        assert!(cannot_write(&io::Error::from(
            io::ErrorKind::PermissionDenied
        )));
        assert!(!cannot_write(&io::Error::from(io::ErrorKind::NotFound)));
    }

    #[test]
    fn one_watch_a_cache() {
        let dir = tempfile::tempdir().unwrap();
        let first = WatchLock::try_take(dir.path()).unwrap().expect("free");
        assert!(WatchLock::try_take(dir.path()).unwrap().is_none());
        drop(first);
        assert!(!dir.path().join(".locks").exists(), "leaves nothing behind");
        assert!(WatchLock::try_take(dir.path()).unwrap().is_some());
    }

    #[test]
    fn repo_lock_sets_leave_no_files_behind() {
        let dir = tempfile::tempdir().unwrap();
        for folder in ["models--org--m", "datasets--org--d", "not-a-repo"] {
            fs::create_dir_all(dir.path().join(folder)).unwrap();
        }
        let locks = RepoLockSet::take(dir.path());
        assert!(repo_lock_path(dir.path(), "models--org--m").exists());
        assert!(repo_lock_path(dir.path(), "datasets--org--d").exists());
        assert!(!repo_lock_path(dir.path(), "not-a-repo").exists());
        // A second taker sees every repo busy.
        assert_eq!(RepoLockSet::take(dir.path()).busy().len(), 2);
        drop(locks);
        assert!(!dir.path().join(".locks").exists());
    }
}
