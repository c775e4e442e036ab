//! Leases: one holder per key, for work every node would otherwise repeat. A write-through pull
//! that needs a revision the bucket lacks takes `[prefix/]leases/<repo folder>@<commit>.json`
//! before it goes to the Hub; the nodes that find another run's fresh lease take the blobs from
//! the bucket as that run writes them through. A lease is a lock object like the bucket locks
//! ([`Holder`], refreshed while held, removed at the end or at Ctrl-C), only with one holder and
//! a shorter life: one not refreshed for [`LEASE_STALE_AFTER`] is taken over.
//!
//! Taking one: read it; when none is there or it is stale, write ours (`If-None-Match: *` when
//! none was there, which settles a race on stores that honour it), wait [`SETTLE`], and read it
//! back: whoever's lease is there then holds it, and the others follow. Garage ignores the
//! condition; there the last writer wins. Correctness never depends on a lease: a node that
//! wrongly thinks it holds one fetches from the Hub, as it would without leases.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::{refresh, Held, Holder};
use crate::remote::{Remote, RemoteError};

/// A lease whose holder has not refreshed it for this long is taken over.
pub const LEASE_STALE_AFTER: Duration = Duration::from_secs(60);
/// How often a holder rewrites its lease: several times within [`LEASE_STALE_AFTER`], so one
/// slow write does not let it go stale.
const REFRESH_EVERY: Duration = Duration::from_secs(15);
/// How long a writer waits before reading its lease back: a racing writer that read no lease
/// just before ours landed has written its own by then.
const SETTLE: Duration = Duration::from_secs(2);
/// Lease bodies are a few hundred bytes.
const MAX_LEASE_BYTES: usize = 64 * 1024;

/// Who holds a lease after an attempt to take it.
pub enum Taken {
    /// This run: it does the work for everyone.
    Mine(Lease),
    /// Another run, fresh: follow it.
    Theirs(Holder),
}

/// A lease this run holds: refreshed in the background until released.
pub struct Lease {
    held: Arc<Held>,
    id: String,
}

impl Lease {
    /// Takes the lease at `key` unless another run holds it fresh.
    pub async fn take(remote: &Remote, key: &str) -> Result<Taken, RemoteError> {
        // A lease removed between our write and our read (its holder finished) is tried again.
        for _ in 0..3 {
            let now = SystemTime::now();
            let there = Lease::read(remote, key).await?;
            if let Some(h) = there.as_ref().filter(|h| is_fresh(h, now)) {
                return Ok(Taken::Theirs(h.clone()));
            }
            let me = Holder::this_process(now);
            let held = Held::register(remote, key.to_string(), me.clone(), REFRESH_EVERY);
            let body = Bytes::from(me.to_json());
            let written = match there {
                None => remote.put_new(key, body).await,
                // A stale one is replaced: no condition can tell ours from its holder's.
                Some(_) => remote.put(key, body).await.map(|()| true),
            };
            match written {
                Ok(true) => {}
                Ok(false) => {
                    held.forget();
                    continue;
                }
                Err(e) => {
                    held.forget();
                    return Err(e);
                }
            }
            tokio::time::sleep(SETTLE).await;
            match Lease::read(remote, key).await {
                Ok(Some(h)) if h.id == me.id => {
                    tokio::spawn(refresh(held.clone()));
                    return Ok(Taken::Mine(Lease { held, id: me.id }));
                }
                Ok(Some(h)) => {
                    held.forget();
                    return Ok(Taken::Theirs(h));
                }
                Ok(None) => held.forget(),
                Err(e) => {
                    held.forget();
                    return Err(e);
                }
            }
        }
        // Others keep taking and releasing it: follow whoever is there.
        let there = Lease::read(remote, key).await?;
        Ok(Taken::Theirs(there.unwrap_or_else(unknown_holder)))
    }

    /// The holder of a fresh lease at `key`; `None` when there is none or it is stale (the next
    /// run may take it).
    pub async fn holder(remote: &Remote, key: &str) -> Result<Option<Holder>, RemoteError> {
        let now = SystemTime::now();
        Ok(Lease::read(remote, key).await?.filter(|h| is_fresh(h, now)))
    }

    /// The lease at `key`, fresh or stale. An unreadable body counts as a lease of unknown
    /// holder refreshed now: it is not taken over before it goes stale by its own refreshes.
    async fn read(remote: &Remote, key: &str) -> Result<Option<Holder>, RemoteError> {
        match remote.get(key, MAX_LEASE_BYTES).await {
            Ok(None) => Ok(None),
            Ok(Some(body)) => Ok(Some(
                Holder::parse(&body).unwrap_or_else(|_| unknown_holder()),
            )),
            Err(RemoteError::Other { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn key(&self) -> &str {
        &self.held.key
    }

    /// Stops refreshing the lease and removes it, unless another run has taken it over
    /// meanwhile (ours went stale): its lease is left alone.
    pub async fn release(self) -> Result<(), RemoteError> {
        let mut state = self.held.state.lock().await;
        if std::mem::replace(&mut state.released, true) {
            return Ok(());
        }
        self.held.forget();
        let ours = Lease::read(&self.held.remote, &self.held.key)
            .await?
            .is_some_and(|h| h.id == self.id);
        if ours {
            self.held.remote.delete(&self.held.key).await?;
        }
        Ok(())
    }
}

/// A holder this run cannot name (an unreadable lease, one that keeps changing hands), as of now.
fn unknown_holder() -> Holder {
    let mut unknown = Holder::this_process(SystemTime::now());
    unknown.id = "unknown".into();
    unknown.host = "an unknown host".into();
    unknown.pid = 0;
    unknown.command = "an unknown command".into();
    unknown
}

fn is_fresh(holder: &Holder, now: SystemTime) -> bool {
    !holder.is_older_than(LEASE_STALE_AFTER, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Layout;

    fn dir_remote() -> (tempfile::TempDir, Remote, String) {
        let dir = tempfile::tempdir().unwrap();
        let remote = Remote::Dir(crate::remote::dir::DirRemote::new(dir.path().into()));
        let key = Layout::new("team").lease_key("models--org--m", &"c".repeat(40));
        (dir, remote, key)
    }

    #[tokio::test]
    async fn one_run_holds_a_lease_the_next_follows_and_a_stale_one_is_taken_over() {
        let _turn = super::super::tests::SERIAL.lock().await;
        let (dir, remote, key) = dir_remote();
        assert!(key.starts_with("team/leases/models--org--m@"), "{key}");
        let Taken::Mine(lease) = Lease::take(&remote, &key).await.unwrap() else {
            panic!("nobody held it");
        };
        let Taken::Theirs(holder) = Lease::take(&remote, &key).await.unwrap() else {
            panic!("a fresh lease is followed");
        };
        assert_eq!(holder.pid, std::process::id());
        assert!(Lease::holder(&remote, &key).await.unwrap().is_some());
        lease.release().await.unwrap();
        assert!(Lease::holder(&remote, &key).await.unwrap().is_none());

        // A lease its holder stopped refreshing a while ago is taken over, and the old holder's
        // release leaves the new one alone.
        let mut old = Holder::this_process(SystemTime::now() - Duration::from_secs(300));
        old.refreshed = SystemTime::now() - LEASE_STALE_AFTER - Duration::from_secs(1);
        let path = dir.path().join(&key);
        std::fs::write(&path, old.to_json()).unwrap();
        assert!(Lease::holder(&remote, &key).await.unwrap().is_none());
        let Taken::Mine(lease) = Lease::take(&remote, &key).await.unwrap() else {
            panic!("a stale lease is taken over");
        };
        let mine = Holder::parse(&std::fs::read(&path).unwrap()).unwrap();
        assert_ne!(mine.id, old.id);
        std::fs::write(&path, old.to_json()).unwrap();
        lease.release().await.unwrap();
        assert!(path.exists(), "another run's lease is not removed");
    }
}
