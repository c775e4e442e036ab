//! `serve --write-through`: a revision the bucket lacks, resolved from a later source (the
//! Hub), is fetched once into the server's cache dir by the pull's own pipeline
//! (`ops::pull::fetch_and_land` with write-through, which takes the fleet lease, so several
//! replicas fetch it once) and lands in the bucket as `push` writes it: blobs, then the tree
//! listing and manifest, then the ref. One flight a commit: every request for a file of the
//! revision waits on the same flight, then streams the file from the bucket, verified as any.
//!
//! A request for a file of a revision in flight does not wait for the whole revision: as soon
//! as the fetch has started on the file's blob, the request streams it as it lands in the cache
//! dir (`cache::landing`), verified as any. A client reads with a timeout (huggingface_hub's is
//! 10 s), so a request waits for that at most [`WAIT`]; a blob the fetch has not started on by
//! then is streamed from the Hub as without write-through (a second copy from the Hub, but
//! never a silent stall).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};

use crate::cache::RepoType;
use crate::transfer::plan::Plan;

/// How long a request waits for its revision's flight to land it, or to start on its blob,
/// before it streams from the Hub.
pub const WAIT: Duration = Duration::from_secs(6);

/// Fetches a revision into the cache and writes it through to the bucket: `Ok` with a line
/// for the log once the bucket holds it whole, `Err` with why not. Blocking: it is called on
/// a blocking thread.
pub type FetchRevision = Arc<dyn Fn(Plan) -> Result<String, String> + Send + Sync>;

type Key = (RepoType, String, String);
type Flight = Shared<BoxFuture<'static, bool>>;

/// The flights, by commit: one in the air, or landed (kept, so later requests go straight to
/// the bucket); a failed one is forgotten, so a later request tries again.
pub struct ReadThrough {
    fetch: FetchRevision,
    flights: Arc<Mutex<HashMap<Key, Flight>>>,
}

impl ReadThrough {
    pub fn new(fetch: FetchRevision) -> ReadThrough {
        ReadThrough {
            fetch,
            flights: Arc::default(),
        }
    }

    /// The flight of `plan`'s commit, started on a task of its own (a client that goes away
    /// does not cut it) unless one is in the air or landed.
    pub fn start(&self, plan: &Plan, log: impl Fn(&str) + Send + 'static) -> Flight {
        let key = (plan.repo_type, plan.repo_id.clone(), plan.commit.clone());
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = flights.get(&key) {
            return f.clone();
        }
        let (fetch, plan) = (self.fetch.clone(), plan.clone());
        let flights_ref = self.flights.clone();
        let k = key.clone();
        let task = tokio::spawn(async move {
            let fetched = tokio::task::spawn_blocking(move || fetch(plan)).await;
            let fetched = fetched.unwrap_or_else(|e| Err(format!("the fetch stopped: {e}")));
            let landed = match fetched {
                Ok(line) => {
                    log(&line);
                    true
                }
                Err(why) => {
                    log(&format!("warning: read-through of {}@{}: {why}", k.1, k.2));
                    false
                }
            };
            if !landed {
                flights_ref
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&k);
            }
            landed
        });
        let flight = task.map(|r| r.unwrap_or(false)).boxed().shared();
        flights.insert(key, flight.clone());
        flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn plan() -> Plan {
        Plan {
            repo_id: "org/m".into(),
            repo_type: RepoType::Model,
            commit: "c".repeat(40),
            ref_name: None,
            manifest: crate::manifest::Manifest {
                repo: "org/m".into(),
                revision: "c".repeat(40),
                repo_type: "model".into(),
                files: Vec::new(),
            },
            files_in_revision: 0,
            repo_dir: "x".into(),
            folder: "models--org--m".into(),
            tier: 1,
            listing: None,
            gated: None,
            copies: false,
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_one_flight() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let fetch: FetchRevision = Arc::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            Ok("landed".to_string())
        });
        let through = ReadThrough::new(fetch);
        let p = plan();
        let waits = (0..6).map(|_| through.start(&p, |_| {}));
        let got = futures::future::join_all(waits).await;
        assert!(got.iter().all(|landed| *landed));
        assert!(through.start(&p, |_| {}).now_or_never().unwrap());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_flight_is_tried_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let fetch: FetchRevision = Arc::new(move |_| {
            c.fetch_add(1, Ordering::SeqCst);
            Err("denied".to_string())
        });
        let through = ReadThrough::new(fetch);
        let p = plan();
        assert!(!through.start(&p, |_| {}).await);
        tokio::task::yield_now().await;
        assert!(!through.start(&p, |_| {}).await);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }
}
