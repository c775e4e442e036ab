//! Locks kept as small objects in the bucket, `[prefix/]locks/<kind>-<id>.json`, so `gc` never
//! deletes a blob a push found there and is about to name (restic's model for prune and backup).
//! Not to be confused with huggingface_hub's `.locks` files ([`crate::cache::lock`]) nor with
//! lock files pinning revisions.
//!
//! Each run writes its lock before it looks at the bucket, then lists the others'. An exclusive
//! lock (gc) goes ahead only when no other fresh lock is there; a shared one (push,
//! write-through) only when no fresh exclusive one is. Of two runs that race, the LIST of the
//! later PUT sees the earlier lock (S3 LIST is strongly consistent after a PUT), so at least one
//! backs off; no conditional write is needed (Garage ignores `If-None-Match`). Holders refresh
//! their lock while they run; one not refreshed for [`STALE_AFTER`] is left from a killed run
//! and is ignored.

mod lease;
mod record;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::stream::{self, StreamExt};

pub use lease::{Lease, Taken};
pub use record::{judge, Holder, LockKind, SeenLock, Verdict, STALE_AFTER};

use super::{probe_token, Remote, RemoteError};
use crate::env::EnvVars;
use crate::manifest::Layout;
use crate::net::retry::RetryPolicy;

/// How often a holder rewrites its lock.
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);
/// A holder whose refreshes have failed this long stops before its step that needs the lock:
/// well before others may take the lock for stale.
const REFRESH_DEADLINE: Duration = Duration::from_secs(15 * 60);
/// Lock bodies are a few hundred bytes; larger ones are not read.
const MAX_LOCK_BYTES: usize = 64 * 1024;
/// Lock bodies read at once.
const READS: usize = 8;
/// The longest pause between two attempts of a waiting holder.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often a waiting holder says it is still waiting.
const STILL_WAITING_EVERY: Duration = Duration::from_secs(60);

/// Every lock under the layout's `locks/`, bodies read. A lock removed since the listing is
/// gone; a key of a kind this version does not know is left alone.
pub async fn list_locks(remote: &Remote, layout: &Layout) -> Result<Vec<SeenLock>, RemoteError> {
    let listed = remote.list(&layout.locks_prefix()).await?;
    let reads = listed.into_iter().filter_map(|o| {
        let (kind, _) = layout.parse_lock_key(&o.key)?;
        let kind = LockKind::parse(kind)?;
        Some(async move {
            let body = match remote.get(&o.key, MAX_LOCK_BYTES).await {
                Ok(None) => return Ok(None),
                Ok(Some(body)) => Some(body),
                // One too large to be a lock is still a lock, of unknown holder.
                Err(RemoteError::Other { .. }) => None,
                Err(e) => return Err(e),
            };
            Ok(Some(SeenLock {
                holder: body.and_then(|b| Holder::parse(&b).ok()),
                key: o.key,
                kind,
                written: o.last_modified,
            }))
        })
    });
    let read: Vec<Result<Option<SeenLock>, RemoteError>> =
        stream::iter(reads).buffer_unordered(READS).collect().await;
    let mut locks: Vec<SeenLock> = read
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    locks.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(locks)
}

/// Why a lock was not taken, or could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum BucketLockError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// Other runs hold locks this one cannot stand beside.
    #[error("{}", busy_message(*.kind, .remote, *.waited, .holders))]
    Busy {
        /// The kind this run asked for.
        kind: LockKind,
        remote: String,
        /// How long a shared holder waited before it gave up.
        waited: Duration,
        /// Each blocking lock, described.
        holders: Vec<String>,
    },
    #[error(
        "the lock {key} could not be refreshed for {}: {why}; stopped before going on without it",
        humantime::format_duration(Duration::from_secs(since.as_secs()))
    )]
    NotRefreshed {
        key: String,
        since: Duration,
        why: String,
    },
}

fn busy_message(kind: LockKind, remote: &str, waited: Duration, holders: &[String]) -> String {
    let list = holders.join("\n  ");
    match kind {
        LockKind::Exclusive => format!(
            "nothing deleted: {} to {remote}:\n  {list}",
            if holders.len() == 1 {
                "another run is writing"
            } else {
                "other runs are writing"
            }
        ),
        LockKind::Shared => format!(
            "gave up after {} waiting for a gc on {remote} to finish:\n  {list}",
            humantime::format_duration(Duration::from_secs(waited.as_secs()))
        ),
    }
}

impl BucketLockError {
    pub fn hint(&self) -> Option<String> {
        let stale = humantime::format_duration(STALE_AFTER);
        match self {
            BucketLockError::Remote(e) => e.hint(),
            BucketLockError::Busy {
                kind: LockKind::Exclusive,
                ..
            } => Some(format!(
                "run gc again once they have finished; a lock not refreshed for {stale} is \
                 ignored, and one whose process is gone may be deleted by hand"
            )),
            BucketLockError::Busy {
                kind: LockKind::Shared,
                ..
            } => Some(format!(
                "run again once the gc has finished, or set {} to wait longer; if no gc runs \
                 there any more, its lock is left from a killed run: delete that object, or it \
                 is ignored once not refreshed for {stale}",
                EnvVars::LOCK_TIMEOUT
            )),
            BucketLockError::NotRefreshed { .. } => {
                Some("check the connection to the remote, then run again".into())
            }
        }
    }

    /// As an error for the command edge: a remote error stays itself, so what callers look
    /// for in the chain (a read-only key) is found.
    pub fn into_anyhow(self) -> anyhow::Error {
        match self {
            BucketLockError::Remote(e) => e.into(),
            other => other.into(),
        }
    }
}

/// A lock this process holds: refreshed in the background until released.
pub struct BucketLock {
    held: Arc<Held>,
    /// Locks of killed runs seen when it was taken.
    stale: Vec<SeenLock>,
}

struct Held {
    remote: Remote,
    key: String,
    /// How often the holder rewrites it.
    refresh_every: Duration,
    /// Refreshes and the release take turns, so no refresh lands after the release.
    state: tokio::sync::Mutex<HeldState>,
}

struct HeldState {
    holder: Holder,
    released: bool,
    last_refresh: Instant,
    refresh_error: Option<String>,
}

/// Locks held by this process, so an interrupted run can remove them before it exits.
static HELD: Mutex<Vec<Arc<Held>>> = Mutex::new(Vec::new());

fn held_locks() -> std::sync::MutexGuard<'static, Vec<Arc<Held>>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

impl BucketLock {
    /// Writes a `kind` lock, then lists the others'. When they block it, removes it again: an
    /// exclusive lock gives up at once; a shared one tries again after a jittered pause until
    /// `wait` has passed, saying so through `note`.
    pub async fn acquire(
        remote: &Remote,
        layout: &Layout,
        kind: LockKind,
        wait: Duration,
        note: &dyn Fn(&str),
    ) -> Result<BucketLock, BucketLockError> {
        let started = Instant::now();
        let mut last_note: Option<Instant> = None;
        let mut attempt = 0u32;
        loop {
            // Registered before it is written, so an interrupted run removes it too.
            let held = Held::register(
                remote,
                layout.lock_key(kind.as_str(), &probe_token()),
                Holder::this_process(SystemTime::now()),
                REFRESH_EVERY,
            );
            if let Err(e) = held.write().await {
                held.forget();
                return Err(e.into());
            }
            let verdict = match list_locks(remote, layout).await {
                Ok(seen) => judge(kind, &held.key, seen, SystemTime::now()),
                Err(e) => {
                    let _ = held.release().await;
                    return Err(e.into());
                }
            };
            if verdict.blocking.is_empty() {
                tokio::spawn(refresh(held.clone()));
                return Ok(BucketLock {
                    held,
                    stale: verdict.stale,
                });
            }
            held.release().await?;
            let waited = started.elapsed();
            let now = SystemTime::now();
            let holders: Vec<String> = verdict.blocking.iter().map(|l| l.describe(now)).collect();
            if kind == LockKind::Exclusive || waited >= wait {
                return Err(BucketLockError::Busy {
                    kind,
                    remote: remote.describe(),
                    waited,
                    holders,
                });
            }
            if last_note.is_none_or(|t| t.elapsed() >= STILL_WAITING_EVERY) {
                last_note = Some(Instant::now());
                note(&format!(
                    "waiting for a gc on {} to finish (giving up after {}):\n  {}",
                    remote.describe(),
                    humantime::format_duration(wait),
                    holders.join("\n  ")
                ));
            }
            tokio::time::sleep(backoff(attempt).min(wait - waited)).await;
            attempt += 1;
        }
    }

    pub fn key(&self) -> &str {
        &self.held.key
    }

    /// Others' locks ignored for stale when this one was taken.
    pub fn stale(&self) -> &[SeenLock] {
        &self.stale
    }

    /// Fails when the lock could not be refreshed for long: before a step that relies on it
    /// (publishing a manifest, deleting), as the others may soon take it for stale.
    pub async fn check(&self) -> Result<(), BucketLockError> {
        let state = self.held.state.lock().await;
        let since = state.last_refresh.elapsed();
        if since < REFRESH_DEADLINE {
            return Ok(());
        }
        Err(BucketLockError::NotRefreshed {
            key: self.held.key.clone(),
            since,
            why: state
                .refresh_error
                .clone()
                .unwrap_or_else(|| "no refresh went through".into()),
        })
    }

    /// Removes the lock. A lock that cannot be removed is ignored by others once stale.
    pub async fn release(self) -> Result<(), RemoteError> {
        self.held.release().await
    }
}

impl Held {
    fn register(
        remote: &Remote,
        key: String,
        holder: Holder,
        refresh_every: Duration,
    ) -> Arc<Held> {
        let held = Arc::new(Held {
            remote: remote.clone(),
            key,
            refresh_every,
            state: tokio::sync::Mutex::new(HeldState {
                holder,
                released: false,
                last_refresh: Instant::now(),
                refresh_error: None,
            }),
        });
        held_locks().push(held.clone());
        held
    }

    /// Writes the lock object as first taken.
    async fn write(&self) -> Result<(), RemoteError> {
        let body = Bytes::from(self.state.lock().await.holder.to_json());
        self.remote.put(&self.key, body).await
    }

    /// Drops a lock whose write failed: nothing to remove (a read-only key sends no delete).
    fn forget(self: &Arc<Self>) {
        held_locks().retain(|h| !Arc::ptr_eq(h, self));
    }

    async fn release(self: &Arc<Self>) -> Result<(), RemoteError> {
        let mut state = self.state.lock().await;
        if std::mem::replace(&mut state.released, true) {
            return Ok(());
        }
        held_locks().retain(|h| !Arc::ptr_eq(h, self));
        self.remote.delete(&self.key).await
    }
}

/// Rewrites the lock every `refresh_every` until it is released.
async fn refresh(held: Arc<Held>) {
    loop {
        tokio::time::sleep(held.refresh_every).await;
        let mut state = held.state.lock().await;
        if state.released {
            return;
        }
        state.holder.refreshed = SystemTime::now();
        let body = Bytes::from(state.holder.to_json());
        match held.remote.put(&held.key, body).await {
            Ok(()) => {
                state.last_refresh = Instant::now();
                state.refresh_error = None;
            }
            Err(e) => state.refresh_error = Some(e.to_string()),
        }
    }
}

/// Removes every lock this process still holds (after Ctrl-C, or a run that ended without
/// releasing one).
pub async fn release_all() {
    let held: Vec<Arc<Held>> = held_locks().clone();
    for h in held {
        let _ = h.release().await;
    }
}

/// The pause before attempt `attempt + 1`: doubling from half a second up to [`MAX_BACKOFF`],
/// each drawn between half and all of it (the retry policy's jitter), so two runs that backed
/// off together do not meet again.
fn backoff(attempt: u32) -> Duration {
    RetryPolicy {
        base: Duration::from_millis(500),
        max: MAX_BACKOFF,
        ..RetryPolicy::default()
    }
    .backoff(attempt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs_ago: u64, now: SystemTime) -> SystemTime {
        now - Duration::from_secs(secs_ago)
    }

    /// A directory remote with `locks` planted as `(kind, refreshed seconds ago)`.
    fn remote_with(locks: &[(LockKind, u64)]) -> (tempfile::TempDir, Remote, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new("team");
        let now = SystemTime::now();
        for (i, (kind, ago)) in locks.iter().enumerate() {
            let mut holder = Holder::this_process(at(ago + 5, now));
            holder.refreshed = at(*ago, now);
            let path = dir
                .path()
                .join(layout.lock_key(kind.as_str(), &format!("planted{i}")));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, holder.to_json()).unwrap();
        }
        let remote = Remote::Dir(super::super::dir::DirRemote::new(dir.path().into()));
        (dir, remote, layout)
    }

    fn lock_files(dir: &tempfile::TempDir) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir.path().join("team/locks"))
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Tests that hold locks take turns: the registry of held locks is the process's.
    pub(super) static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    #[tokio::test]
    async fn a_lock_is_written_listed_and_removed_as_a_file_of_a_directory_remote() {
        let _turn = SERIAL.lock().await;
        let (dir, remote, layout) = remote_with(&[(LockKind::Shared, 10)]);
        let quiet = |_: &str| {};
        // A push stands beside another push; a gc does not, and leaves nothing behind.
        let push = BucketLock::acquire(&remote, &layout, LockKind::Shared, Duration::ZERO, &quiet)
            .await
            .unwrap();
        assert_eq!(lock_files(&dir).len(), 2);
        let seen = list_locks(&remote, &layout).await.unwrap();
        let mine = seen.iter().find(|l| l.key == push.key()).unwrap();
        assert_eq!(mine.holder.as_ref().unwrap().pid, std::process::id());
        let err = BucketLock::acquire(
            &remote,
            &layout,
            LockKind::Exclusive,
            Duration::ZERO,
            &quiet,
        )
        .await
        .err()
        .expect("a gc is refused while pushes write");
        assert!(matches!(&err, BucketLockError::Busy { holders, .. } if holders.len() == 2));
        assert_eq!(lock_files(&dir).len(), 2, "the refused gc removed its lock");
        push.check().await.unwrap();
        push.release().await.unwrap();
        assert_eq!(lock_files(&dir), ["shared-planted0.json"]);
        assert!(held_locks().is_empty());
    }

    #[tokio::test]
    async fn a_push_waits_for_a_gc_then_gives_up_and_stale_locks_are_passed_over() {
        let _turn = SERIAL.lock().await;
        let (dir, remote, layout) =
            remote_with(&[(LockKind::Exclusive, 10), (LockKind::Shared, 3600)]);
        let notes = Mutex::new(Vec::new());
        let note = |m: &str| notes.lock().unwrap().push(m.to_string());
        let started = Instant::now();
        let err = BucketLock::acquire(
            &remote,
            &layout,
            LockKind::Shared,
            Duration::from_millis(1200),
            &note,
        )
        .await
        .err()
        .expect("the gc holds the bucket");
        assert!(started.elapsed() >= Duration::from_millis(1200));
        assert!(err.to_string().contains("exclusive-planted0.json"), "{err}");
        assert_eq!(
            notes.lock().unwrap().len(),
            1,
            "{:?}",
            notes.lock().unwrap()
        );
        assert_eq!(lock_files(&dir).len(), 2, "the push removed its lock");

        // The gc's lock goes stale: a gc now proceeds, seeing both old locks as stale.
        std::fs::remove_file(dir.path().join("team/locks/exclusive-planted0.json")).unwrap();
        let gc = BucketLock::acquire(&remote, &layout, LockKind::Exclusive, Duration::ZERO, &note)
            .await
            .unwrap();
        assert_eq!(gc.stale().len(), 1);
        assert!(gc.key().starts_with("team/locks/exclusive-"));
        // Released with everything else this process holds, as after Ctrl-C.
        release_all().await;
        assert_eq!(lock_files(&dir), ["shared-planted1.json"]);
    }

    #[test]
    fn backoff_grows_with_jitter_and_stays_bounded() {
        for attempt in 0..40 {
            let d = backoff(attempt);
            assert!(d <= MAX_BACKOFF, "{attempt}: {d:?}");
            assert!(d >= Duration::from_millis(250), "{attempt}: {d:?}");
        }
        assert!(backoff(0) <= Duration::from_millis(500));
    }

    #[test]
    fn a_busy_error_says_who_holds_the_bucket_and_what_to_do() {
        let e = BucketLockError::Busy {
            kind: LockKind::Shared,
            remote: "s3://b/p".into(),
            waited: Duration::from_millis(3_400),
            holders: vec!["locks/exclusive-c.json (exclusive lock): gc".into()],
        };
        assert_eq!(
            e.to_string(),
            "gave up after 3s waiting for a gc on s3://b/p to finish:\n  \
             locks/exclusive-c.json (exclusive lock): gc"
        );
        assert!(e.hint().unwrap().contains(EnvVars::LOCK_TIMEOUT));
        let e = BucketLockError::Busy {
            kind: LockKind::Exclusive,
            remote: "s3://b/p".into(),
            waited: Duration::ZERO,
            holders: vec!["locks/shared-a.json (shared lock): push".into()],
        };
        assert!(e
            .to_string()
            .starts_with("nothing deleted: another run is writing"));
    }
}
