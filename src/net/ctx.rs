//! The limits every transfer of a run shares, whatever its source: concurrent requests, bytes
//! buffered in memory, part sizes, the bandwidth cap, the retry policy, and where progress is
//! reported.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::buffers::PartBuffers;
use super::rate::RateLimiter;
use super::retry::RetryPolicy;
use crate::config::{Rate, Settings, MAX_PART_SIZE};
use crate::report::Progress;

const MIB: u64 = 1024 * 1024;
/// S3 allows at most this many parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
const DEFAULT_PART_SIZE: u64 = 8 * MIB;
/// Bytes in flight across all transfers of a run, whatever the number of workers: a few parts
/// in flight already fill a fast link, and GPU nodes pulling 30 GB shards have no memory to spare.
const MEMORY_BUDGET: u64 = 40 * MIB;

/// Limits shared by every transfer of a run, so concurrency and memory stay bounded whatever
/// the number and size of blobs.
#[derive(Clone)]
pub struct TransferCtx {
    /// Concurrent requests.
    pub slots: Arc<Semaphore>,
    /// Buffered bytes, in MiB units.
    memory: Arc<Semaphore>,
    memory_units: u32,
    pub workers: usize,
    pub policy: RetryPolicy,
    pub multipart_threshold: u64,
    pub part_size: Option<u64>,
    pub buffers: Arc<PartBuffers>,
    /// How long to wait for a lock another process holds.
    pub lock_timeout: std::time::Duration,
    pub progress: Arc<dyn Progress>,
    /// The run's bandwidth cap, which every transfer's bytes wait for where they move.
    pub rate: RateLimiter,
}

impl TransferCtx {
    pub fn new(
        settings: &Settings,
        workers: usize,
        limit: Option<Rate>,
        progress: Arc<dyn Progress>,
    ) -> TransferCtx {
        let part = settings.transfer.part_size.unwrap_or(DEFAULT_PART_SIZE);
        // Room for a part per worker within the budget, and always for at least one whole part.
        let units = (workers as u64 * part)
            .min(MEMORY_BUDGET)
            .max(part)
            .div_ceil(MIB) as u32;
        TransferCtx {
            slots: Arc::new(Semaphore::new(workers)),
            memory: Arc::new(Semaphore::new(units as usize)),
            memory_units: units,
            workers,
            policy: RetryPolicy::default(),
            multipart_threshold: settings.transfer.multipart_threshold,
            part_size: settings.transfer.part_size,
            buffers: Arc::new(PartBuffers::new((units as u64 * MIB / part).max(1) as usize)),
            lock_timeout: settings.transfer.lock_timeout,
            progress,
            rate: RateLimiter::new(limit),
        }
    }

    /// Reserves buffer space for `bytes` (at most the whole budget, so a large buffer cannot wait
    /// forever).
    pub async fn reserve(&self, bytes: u64) -> OwnedSemaphorePermit {
        let units = (bytes.div_ceil(MIB).max(1) as u32).min(self.memory_units);
        self.memory
            .clone()
            .acquire_many_owned(units)
            .await
            .expect("semaphore never closed")
    }

    pub async fn slot(&self) -> OwnedSemaphorePermit {
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed")
    }

    pub fn part_size_for(&self, size: u64) -> u64 {
        part_size_for(size, self.part_size)
    }

    /// This context, drawing on `other`'s bandwidth cap: one run, one cap.
    pub fn sharing_rate(mut self, other: &TransferCtx) -> TransferCtx {
        self.rate = other.rate.clone();
        self
    }

    /// The longest an upload body of `bytes` may take at the cap, queued behind every other
    /// body the memory budget lets be in flight; `None` without a cap.
    pub fn paced_body_time(&self, bytes: u64) -> Option<std::time::Duration> {
        self.rate.time_for(self.memory_units as u64 * MIB + bytes)
    }
}

/// A part size that keeps `size` within 10,000 parts, rounded up to whole MiB.
pub fn part_size_for(size: u64, configured: Option<u64>) -> u64 {
    let wanted = configured.unwrap_or(DEFAULT_PART_SIZE);
    let minimum = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    wanted.max(minimum).min(MAX_PART_SIZE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_respect_the_part_limit() {
        assert_eq!(part_size_for(100 * MIB, None), DEFAULT_PART_SIZE);
        assert_eq!(part_size_for(100 * MIB, Some(5 * MIB)), 5 * MIB);
        let huge = 1024 * 1024 * MIB; // 1 TiB
        let p = part_size_for(huge, None);
        assert!(huge.div_ceil(p) <= MAX_PARTS);
        assert_eq!(p % MIB, 0);
    }
}
