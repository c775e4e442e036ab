//! The bounded pool every transfer runs in: at most `workers` items at once, each item's result
//! kept, and no new item started after a fatal error (rejected credentials, a missing bucket, a
//! key that may not write), since every later item would fail the same way.

use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, StreamExt};

use crate::remote::RemoteError;
use crate::transfer::TransferError;

/// An error that fails every other item of the run the same way.
pub trait Fatal {
    fn is_fatal(&self) -> bool;
}

impl Fatal for RemoteError {
    fn is_fatal(&self) -> bool {
        RemoteError::is_fatal(self)
    }
}

impl Fatal for TransferError {
    fn is_fatal(&self) -> bool {
        match self {
            TransferError::Remote(e) => e.is_fatal(),
            TransferError::Hub(e) => e.is_fatal(),
            TransferError::Local(_) => false,
        }
    }
}

/// What a pool run did: the items that ran with their results, and those never started because
/// an earlier item failed fatally.
pub struct Ran<I, T, E> {
    pub done: Vec<(I, Result<T, E>)>,
    pub not_started: Vec<I>,
}

impl<I, T, E: Fatal> Ran<I, T, E> {
    /// Removes and returns the first fatal error, keeping the other results.
    pub fn take_fatal(&mut self) -> Option<E> {
        let at = self
            .done
            .iter()
            .position(|(_, r)| r.as_ref().is_err_and(|e| e.is_fatal()))?;
        let (_, result) = self.done.remove(at);
        result.err()
    }
}

/// Runs `work` on every item, at most `workers` at a time, in the order given (put the items
/// that set the run's length first). Items still waiting when one fails fatally are not started.
pub async fn run<I, T, E, F>(
    items: impl IntoIterator<Item = I>,
    workers: usize,
    work: F,
) -> Ran<I, T, E>
where
    F: AsyncFn(&I) -> Result<T, E>,
    E: Fatal,
{
    let stop = AtomicBool::new(false);
    let (stop, work) = (&stop, &work);
    let results: Vec<(I, Option<Result<T, E>>)> = stream::iter(items)
        .map(|item| async move {
            if stop.load(Ordering::Relaxed) {
                return (item, None);
            }
            let result = work(&item).await;
            if result.as_ref().is_err_and(Fatal::is_fatal) {
                stop.store(true, Ordering::Relaxed);
            }
            (item, Some(result))
        })
        .buffer_unordered(workers.max(1))
        .collect()
        .await;
    let mut ran = Ran {
        done: Vec::with_capacity(results.len()),
        not_started: Vec::new(),
    };
    for (item, result) in results {
        match result {
            Some(r) => ran.done.push((item, r)),
            None => ran.not_started.push(item),
        }
    }
    ran
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn denied() -> RemoteError {
        RemoteError::Credentials {
            endpoint: "e".into(),
            code: "InvalidAccessKeyId".into(),
            origin: String::new(),
            fix: String::new(),
        }
    }

    fn flaky() -> RemoteError {
        RemoteError::Other {
            detail: "one item".into(),
            code: String::new(),
        }
    }

    #[tokio::test]
    async fn runs_at_most_workers_at_once_and_keeps_every_result() {
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let mut ran = run(0..20u32, 4, async |&i| {
            let (running, peak) = (&running, &peak);
            {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                if i == 7 {
                    Err(flaky())
                } else {
                    Ok(i * 2)
                }
            }
        })
        .await;
        assert_eq!(peak.load(Ordering::SeqCst), 4);
        assert_eq!(ran.done.len(), 20);
        assert!(ran.not_started.is_empty());
        assert!(
            ran.take_fatal().is_none(),
            "one item's failure is not fatal"
        );
        let failed: Vec<u32> = ran
            .done
            .iter()
            .filter(|(_, r)| r.is_err())
            .map(|(i, _)| *i)
            .collect();
        assert_eq!(failed, vec![7]);
    }

    #[tokio::test]
    async fn a_fatal_error_stops_items_not_yet_started() {
        let started = AtomicUsize::new(0);
        let mut ran = run(0..50u32, 2, async |&i| {
            let started = &started;
            {
                started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
                if i == 3 {
                    Err(denied())
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert!(started.load(Ordering::SeqCst) <= 6, "kept starting items");
        assert!(ran.not_started.len() >= 44);
        assert!(matches!(
            ran.take_fatal(),
            Some(RemoteError::Credentials { .. })
        ));
        assert!(ran.take_fatal().is_none(), "one fatal error is taken once");
    }
}
