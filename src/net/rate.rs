//! The run's bandwidth cap (`--limit-rate`, `transfer.limit_rate`): one limiter every transfer
//! of a run draws on, downloads and uploads, bucket, directory remote and Hub alike, so the cap
//! holds for the run as a whole whatever the number of workers.
//!
//! A token bucket refilled continuously at the cap, holding at most [`BURST`] of it, that may
//! go into debt: a chunk takes its bytes at once and then waits until the debt it leaves is paid
//! off. So chunks are spaced out as they move (an 8 MiB part goes chunk by chunk, never in one
//! burst), waiters are served in the order they came, and a sleep that overshoots (timers fire
//! on millisecond ticks) leaves its surplus in the bucket for the next chunk rather than losing
//! it: over a run, the rate is the cap. The crates at hand pace otherwise: `governor` counts
//! whole cells with a per-cell interval in whole nanoseconds (a byte at 100 MiB/s is 9.5 ns, so
//! 5 % off), and `async-speed-limit` has each waiter sleep until its bucket is full again, which
//! sends the whole bucket in bursts.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{Instant, Sleep};

use crate::config::Rate;

/// How much of the cap may move at once after a pause (50 ms of it: 5 MiB at 100 MiB/s), and
/// so how long every transfer of a run may be held up elsewhere without the run losing time: a
/// late wake-up on a busy machine, or parallel parts that all wait for the one writer that
/// consumes them in order (a pull's 40 MiB of parts in flight finish together under a fair cap).
/// Measured on 2 busy cores, a 20 ms bucket cost a 1.5 GiB pull at 50 MiB/s 6 % of its rate.
const BURST: Duration = Duration::from_millis(50);
/// The frames a paced upload body is sent in: 64 KiB is 0.6 ms at 100 MiB/s.
const BODY_FRAME: usize = 64 * 1024;

/// The cap a run's transfers share; clones share it. Without a cap, every call returns at once.
#[derive(Clone, Default)]
pub struct RateLimiter {
    bucket: Option<Arc<Bucket>>,
}

struct Bucket {
    /// Bytes per second.
    rate: f64,
    /// The most the bucket holds, in bytes.
    burst: f64,
    state: Mutex<State>,
}

struct State {
    /// Bytes that may move now; below zero, the debt the latest taker waits out.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Instant,
}

impl RateLimiter {
    pub fn new(rate: Option<Rate>) -> RateLimiter {
        RateLimiter {
            bucket: rate.map(|r| {
                let rate = r.bytes_per_second() as f64;
                let burst = rate * BURST.as_secs_f64();
                Arc::new(Bucket {
                    rate,
                    burst,
                    state: Mutex::new(State {
                        tokens: burst,
                        at: Instant::now(),
                    }),
                })
            }),
        }
    }

    pub fn is_limited(&self) -> bool {
        self.bucket.is_some()
    }

    /// How long `bytes` take at the cap; `None` without one.
    pub fn time_for(&self, bytes: u64) -> Option<Duration> {
        let bucket = self.bucket.as_ref()?;
        Some(Duration::try_from_secs_f64(bytes as f64 / bucket.rate).unwrap_or(Duration::MAX))
    }

    /// Takes `bytes` from the bucket, and says how long to wait before they may move: until
    /// the debt they leave is paid off. Nothing waits for nothing.
    fn take(&self, bytes: u64) -> Duration {
        let Some(bucket) = self.bucket.as_ref().filter(|_| bytes > 0) else {
            return Duration::ZERO;
        };
        let mut state = bucket.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let refill = now.saturating_duration_since(state.at).as_secs_f64() * bucket.rate;
        state.at = state.at.max(now);
        state.tokens = (state.tokens + refill).min(bucket.burst) - bytes as f64;
        if state.tokens >= 0.0 {
            return Duration::ZERO;
        }
        Duration::try_from_secs_f64(-state.tokens / bucket.rate).unwrap_or(Duration::MAX)
    }

    /// Waits until `bytes` may move: before sending them, or after receiving them (the next
    /// read then waits, and the sender with it).
    pub async fn pace(&self, bytes: u64) {
        let wait = self.take(bytes);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// [`RateLimiter::pace`] for a blocking thread (the directory remote's copies).
    pub fn pace_blocking(&self, bytes: u64) {
        let wait = self.take(bytes);
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// `bytes` as an HTTP request body sent [`BODY_FRAME`] at a time, each frame when the
    /// limiter lets it go.
    pub fn body(&self, bytes: Bytes) -> PacedBody {
        PacedBody {
            rest: bytes,
            limiter: self.clone(),
            wait: None,
        }
    }
}

/// An upload body paced by the run's limiter (see [`RateLimiter::body`]).
pub struct PacedBody {
    /// What is still to be sent; the next frame is its start.
    rest: Bytes,
    limiter: RateLimiter,
    /// The wait of the next frame, whose bytes are already taken from the bucket.
    wait: Option<Pin<Box<Sleep>>>,
}

impl PacedBody {
    fn next_frame(&mut self) -> http_body::Frame<Bytes> {
        let len = self.rest.len().min(BODY_FRAME);
        http_body::Frame::data(self.rest.split_to(len))
    }
}

impl http_body::Body for PacedBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(wait) = &mut this.wait {
            std::task::ready!(wait.as_mut().poll(cx));
            this.wait = None;
            return Poll::Ready(Some(Ok(this.next_frame())));
        }
        if this.rest.is_empty() {
            return Poll::Ready(None);
        }
        let len = this.rest.len().min(BODY_FRAME) as u64;
        let wait = this.limiter.take(len);
        if wait.is_zero() {
            return Poll::Ready(Some(Ok(this.next_frame())));
        }
        let mut sleep = Box::pin(tokio::time::sleep(wait));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Ok(this.next_frame()))),
            Poll::Pending => {
                this.wait = Some(sleep);
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.rest.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    fn limiter(rate: &str) -> RateLimiter {
        RateLimiter::new(Some(Rate::parse(rate).unwrap()))
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_cap_nothing_waits() {
        let none = RateLimiter::default();
        let started = Instant::now();
        for _ in 0..1000 {
            none.pace(64 * MIB).await;
        }
        none.pace_blocking(u64::MAX);
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(!none.is_limited() && none.time_for(1).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn chunks_are_paced_to_the_cap_after_one_small_burst() {
        // 10 MiB at 1 MiB/s in 64 KiB chunks: 10 s less the 50 ms burst the bucket starts with.
        let rate = limiter("1M");
        let started = Instant::now();
        let mut times = Vec::new();
        for _ in 0..160 {
            rate.pace(64 * 1024).await;
            times.push(started.elapsed());
        }
        let took = started.elapsed().as_secs_f64();
        assert!((9.94..=9.97).contains(&took), "took {took}s");
        // Evenly: every chunk waits its own 62.5 ms, none goes in a burst with the next.
        for pair in times.windows(2).skip(1) {
            let gap = (pair[1] - pair[0]).as_secs_f64();
            assert!((0.061..=0.064).contains(&gap), "gap {gap}s");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_transfers_share_one_cap() {
        // 8 transfers of 4 MiB each at 16 MiB/s together: 2 s for the lot, and each one moving
        // all along (served in turn), not one after the other.
        let rate = limiter("16M");
        let started = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let rate = rate.clone();
                tokio::spawn(async move {
                    let mut first = None;
                    for _ in 0..64 {
                        rate.pace(64 * 1024).await;
                        first.get_or_insert(started.elapsed());
                    }
                    (first.unwrap(), started.elapsed())
                })
            })
            .collect();
        let mut ends = Vec::new();
        for t in tasks {
            let (first, end) = t.await.unwrap();
            assert!(
                first < Duration::from_millis(100),
                "first chunk at {first:?}"
            );
            ends.push(end.as_secs_f64());
        }
        let last = ends.iter().cloned().fold(0.0, f64::max);
        let first_done = ends.iter().cloned().fold(f64::MAX, f64::min);
        assert!((1.94..=1.97).contains(&last), "all done at {last}s");
        // One after the other, the first would be done at 0.25 s; the burst the bucket starts
        // with puts the first task that many chunks ahead, and no more.
        assert!(first_done > 1.5, "one finished early, at {first_done}s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_wake_up_costs_no_rate() {
        // Time a transfer spends after its wait (it woke late on a busy machine, the disk was
        // slow) is in the bucket for its next chunk: 5 ms of it after each 10 KiB chunk add
        // nothing to the time the chunks take at the cap.
        let rate = limiter("1M");
        let started = Instant::now();
        for _ in 0..100 {
            rate.pace(10 * 1024).await;
            tokio::time::advance(Duration::from_millis(5)).await;
        }
        // 1000 KiB at 1 MiB/s: 0.977 s less the 50 ms burst, whatever the late wake-ups (and
        // the 5 ms after the last chunk).
        let took = started.elapsed().as_secs_f64();
        assert!((0.92..=0.94).contains(&took), "took {took}s");
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_earns_one_burst_only() {
        let rate = limiter("1M");
        rate.pace(MIB).await;
        tokio::time::advance(Duration::from_secs(60)).await;
        // After a minute idle, 50 ms worth goes at once, and the rest at the cap.
        let started = Instant::now();
        rate.pace(MIB / 20).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
        rate.pace(MIB).await;
        let took = started.elapsed().as_secs_f64();
        assert!((0.99..=1.01).contains(&took), "took {took}s");
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_waits_for_nothing() {
        let rate = limiter("1M");
        let _ = rate.take(MIB);
        let started = Instant::now();
        rate.pace(0).await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[test]
    fn blocking_pacing_sleeps_the_thread() {
        // Real time: 256 KiB at 1 MiB/s, less the 50 ms burst.
        let rate = limiter("1M");
        let started = std::time::Instant::now();
        for _ in 0..4 {
            rate.pace_blocking(64 * 1024);
        }
        let took = started.elapsed().as_secs_f64();
        assert!((0.19..0.5).contains(&took), "took {took}s");
    }

    #[tokio::test(start_paused = true)]
    async fn an_upload_body_is_sent_frame_by_frame_at_the_cap() {
        use http_body::Body;
        let rate = limiter("1M");
        let data = Bytes::from(vec![7u8; 2 * MIB as usize + 5]);
        let mut body = rate.body(data.clone());
        assert_eq!(body.size_hint().exact(), Some(data.len() as u64));
        let started = Instant::now();
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(chunk.len() <= BODY_FRAME);
            got.extend_from_slice(&chunk);
            frames += 1;
        }
        assert_eq!(got, data);
        assert_eq!(frames, 33);
        assert!(body.is_end_stream());
        let took = started.elapsed().as_secs_f64();
        assert!((1.94..=1.97).contains(&took), "took {took}s");
        assert_eq!(rate.time_for(2 * MIB), Some(Duration::from_secs(2)));
    }
}
