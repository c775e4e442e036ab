//! The one place that decides what is retried and how: each client (the remote's, the Hub's)
//! classifies its errors into a [`RetryClass`]; [`RetryPolicy`] alone decides how many tries each
//! class gets and how long to wait between them.

use std::time::Duration;

/// How a failure is retried: not at all, as a busy server, or as an endpoint that does not
/// answer. Every client (the remote's, the Hub's) classifies its errors; [`RetryPolicy`] alone
/// decides how many tries each class gets and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    Never,
    /// Throttling, server errors, timeouts, resets.
    Busy,
    /// Nothing answers at the address.
    Unreachable,
}

/// An error [`RetryPolicy`] can retry.
pub trait Retryable: Sized {
    fn retry_class(&self) -> RetryClass;
    /// The same failure, saying it persisted through `tries` attempts.
    fn after_attempts(self, tries: u32) -> Self;
    /// How long the server asked to wait before the next try (a 429's `Retry-After`).
    fn retry_after(&self) -> Option<Duration> {
        None
    }
}

/// The longest wait a server may ask for between tries; one asking for more is given up on at
/// once, its error saying how long it asked for.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// How many tries and how long between them.
///
/// Throttling and server errors get ten retries, as s5cmd and rclone give them: Backblaze B2
/// answers 503 under load as a matter of course. An endpoint that cannot be reached at all is
/// more likely a wrong address than a busy one, so it gets fewer and fails sooner. With jittered
/// backoff capped at 8 s, a persistent failure ends within about a minute.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries in all for a throttled or failing server (the first one included).
    pub attempts: u32,
    /// Tries in all for an endpoint that does not answer.
    pub unreachable_attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 11,
            unreachable_attempts: 6,
            base: Duration::from_millis(200),
            max: Duration::from_secs(8),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a random pause up to an exponentially growing cap.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self
            .base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max);
        cap.mul_f64(0.5 + fastrand::f64() * 0.5)
    }

    /// Tries allowed for a failure like `err` (1 when it is not worth another).
    pub fn attempts_for(&self, err: &impl Retryable) -> u32 {
        match err.retry_class() {
            RetryClass::Never => 1,
            RetryClass::Unreachable => self.unreachable_attempts,
            RetryClass::Busy => self.attempts,
        }
    }

    /// After a failed try number `attempt` (0-based): how long to wait before the next one (at
    /// least what the server asked for), or the error to give up with, saying how many tries
    /// were made.
    pub fn next_try<E: Retryable>(&self, attempt: u32, err: E) -> Result<Duration, E> {
        let allowed = self.attempts_for(&err);
        let asked = err.retry_after();
        if attempt + 1 < allowed && asked.is_none_or(|d| d <= MAX_RETRY_AFTER) {
            Ok(self.backoff(attempt).max(asked.unwrap_or_default()))
        } else if allowed > 1 {
            Err(err.after_attempts(attempt + 1))
        } else {
            Err(err)
        }
    }

    /// Runs `op` until it succeeds, fails with a non-retryable error, or runs out of attempts.
    pub async fn run<T, E, F, Fut>(&self, mut op: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, E>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) => tokio::time::sleep(self.next_try(attempt, e)?).await,
            }
            attempt += 1;
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    /// A failure that asks for a wait, as a 429 with `Retry-After` does.
    struct Throttled(Option<Duration>);

    impl Retryable for Throttled {
        fn retry_class(&self) -> RetryClass {
            RetryClass::Busy
        }
        fn after_attempts(self, _tries: u32) -> Self {
            self
        }
        fn retry_after(&self) -> Option<Duration> {
            self.0
        }
    }

    #[test]
    fn a_wait_the_server_asks_for_is_kept_and_a_long_one_gives_up() {
        let policy = RetryPolicy::default();
        let asked = Duration::from_secs(30);
        for attempt in 0..5 {
            let wait = policy
                .next_try(attempt, Throttled(Some(asked)))
                .ok()
                .unwrap();
            assert!(wait >= asked, "{wait:?}");
        }
        assert!(policy.next_try(0, Throttled(None)).ok().unwrap() <= policy.max);
        let too_long = Throttled(Some(MAX_RETRY_AFTER + Duration::from_secs(1)));
        assert!(policy.next_try(0, too_long).is_err());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert!(p.backoff(0) <= Duration::from_millis(200));
        assert!(p.backoff(30) <= Duration::from_secs(8));
        assert!(p.backoff(30) >= Duration::from_secs(4));
    }
}
