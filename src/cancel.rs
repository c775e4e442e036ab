//! Ctrl-C as a request to stop. `main` sets it when the signal arrives; work that must not be
//! cut off at an arbitrary point (a deletion half-way through its plan) or that waits on
//! something that cannot be abandoned (a y/N prompt reading the terminal) watches it and stops
//! at the next safe point instead of being dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

/// A shared stop request: cheap to clone, set once, never cleared.
#[derive(Clone, Default)]
pub struct Cancel(Arc<Inner>);

#[derive(Default)]
struct Inner {
    requested: AtomicBool,
    notify: Notify,
}

impl Cancel {
    /// Asks everything watching to stop.
    pub fn request(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Has a stop been asked for? For blocking code, between two items of work.
    pub fn requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Resolves once a stop is asked for; for async code to select against.
    pub async fn requested_async(&self) {
        loop {
            let notified = self.0.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a request between the two is not missed.
            notified.as_mut().enable();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_request_reaches_blocking_and_async_watchers() {
        let cancel = Cancel::default();
        assert!(!cancel.requested());
        let waiter = tokio::spawn({
            let cancel = cancel.clone();
            async move { cancel.requested_async().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        cancel.clone().request();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter wakes")
            .unwrap();
        assert!(cancel.requested());
        // Asked after the fact, it is already done.
        cancel.requested_async().await;
    }
}
