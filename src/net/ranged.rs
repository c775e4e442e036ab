//! Downloads into a verifying [`BlobSink`] (a blob of the cache, a response), whatever the
//! server: a body streamed in batches, or parallel ranged parts consumed in order so the hash
//! sees every byte once, in sequence. The bucket and the Hub both download through these.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};

use super::retry::Retryable;
use super::TransferCtx;
use crate::cache::write::{BlobSink, WriteError};
use crate::task::{blocking, AbortOnDrop};

/// Bytes gathered from the network before one write + hash.
const WRITE_BATCH: usize = 1024 * 1024;

/// Why a body stopped short: the source (worth asking again from where it stopped) or the
/// local side (the bytes do not match their name, the disk is full).
enum Stop<E> {
    Source(E),
    Local(WriteError),
}

/// One GET streamed into the writer: `open(offset)` asks for the body from `offset` on, and
/// after a dropped connection or a stalled body it is asked again from where the writer
/// stopped, as the context's retry policy allows. `Failed` is the caller's error, holding either
/// the source's error `E` or the local [`WriteError`].
pub async fn stream_resuming<Failed, W, E, S, F, Fut>(
    writer: &mut Option<W>,
    ctx: &TransferCtx,
    open: F,
) -> Result<(), Failed>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<S, E>>,
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Retryable + Into<Failed>,
    Failed: From<WriteError>,
    W: BlobSink,
{
    let mut attempt = 0;
    loop {
        let offset = writer.as_ref().map_or(0, W::written);
        let failed = match open(offset).await {
            Err(e) => e,
            Ok(body) => match write_body(writer, ctx, body).await {
                Ok(()) => return Ok(()),
                Err(Stop::Local(e)) => return Err(e.into()),
                Err(Stop::Source(e)) => e,
            },
        };
        let pause = ctx.policy.next_try(attempt, failed).map_err(Into::into)?;
        tokio::time::sleep(pause).await;
        attempt += 1;
    }
}

/// Writes a response body through the writer, a batch at a time, counting progress; each chunk
/// waits for the run's bandwidth cap as it arrives. Ends at the body's end or its first error.
async fn write_body<W: BlobSink, S, E>(
    writer: &mut Option<W>,
    ctx: &TransferCtx,
    mut body: S,
) -> Result<(), Stop<E>>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    let mut batch = BytesMut::new();
    loop {
        let chunk = body.next().await;
        let end = !matches!(chunk, Some(Ok(_)));
        let had = batch.len();
        if let Some(Ok(c)) = &chunk {
            batch.extend_from_slice(c);
        }
        ctx.rate.pace((batch.len() - had) as u64).await;
        if (end || batch.len() >= WRITE_BATCH) && !batch.is_empty() {
            let n = batch.len() as u64;
            write_off_thread(writer, batch.split().freeze())
                .await
                .map_err(Stop::Local)?;
            ctx.progress.add_bytes(n);
        }
        match chunk {
            Some(Ok(_)) => {}
            None => return Ok(()),
            Some(Err(e)) => return Err(Stop::Source(e)),
        }
    }
}

/// Parallel ranged GETs of the `size` bytes past what the writer holds (a resumed partial),
/// retried as the context's policy says and consumed in order; memory stays within the
/// context's budget. `get_range(start, end, part)` gathers the
/// bytes `start..=end` (inclusive) into `part`, a buffer of the context's pool: copying each
/// chunk as it arrives frees the HTTP client's read buffer at once, where keeping the chunks would
/// keep every read buffer they were cut from (measured: 76 MB of them at the peak of a pull
/// within a 40 MiB budget), each a fresh mapping. `Failed` is as for [`stream_resuming`].
pub async fn download_ranged<Failed, W, F, Fut, E>(
    writer: &mut Option<W>,
    size: u64,
    ctx: &TransferCtx,
    get_range: F,
) -> Result<(), Failed>
where
    F: Fn(u64, u64, Vec<u8>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<u8>, E>> + Send + 'static,
    E: Retryable + Into<Failed> + Send + 'static,
    Failed: From<WriteError>,
    W: BlobSink,
{
    let part_size = ctx.part_size_for(size);
    let from = writer.as_ref().map_or(0, W::written);
    let count = (size - from).div_ceil(part_size);
    let mut inflight = FuturesOrdered::new();
    let mut next = 0u64;
    loop {
        tokio::select! {
            biased;
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let done: Result<(Vec<u8>, _), E> = done;
                let (part, _permit) = done.map_err(Into::into)?;
                let part = write_off_thread(writer, part).await?;
                ctx.buffers.give_back(part);
            }
            permit = ctx.reserve(part_size), if next < count && inflight.len() < ctx.workers => {
                let start = from + next * part_size;
                let end = (start + part_size).min(size) - 1;
                next += 1;
                let ctx2 = ctx.clone();
                let get_range = get_range.clone();
                inflight.push_back(AbortOnDrop(tokio::spawn(async move {
                    let _slot = ctx2.slot().await;
                    let part = ctx2
                        .policy
                        .run(|| get_range(start, end, ctx2.buffers.take()))
                        .await?;
                    ctx2.progress.add_bytes(end - start + 1);
                    Ok::<_, E>((part, permit))
                })));
            }
            else => break,
        }
    }
    Ok(())
}

/// Writes `buf` through the writer on a blocking thread; the writer and the buffer travel there
/// and back.
pub async fn write_off_thread<W: BlobSink, B: AsRef<[u8]> + Send + 'static>(
    writer: &mut Option<W>,
    buf: B,
) -> Result<B, WriteError> {
    let mut w = writer.take().expect("writer is put back after each write");
    let (w, result) = blocking(move || {
        let result = w.write(buf.as_ref());
        (w, result.map(|()| buf))
    })
    .await;
    *writer = Some(w);
    result
}

/// One ranged part arriving into a buffer of the pool (see [`download_ranged`]).
pub struct RangeBody {
    part: Vec<u8>,
    start: u64,
    end: u64,
    received: usize,
}

impl RangeBody {
    /// The bytes `start..=end` (inclusive), to be gathered into `part`.
    pub fn new(mut part: Vec<u8>, start: u64, end: u64) -> RangeBody {
        part.clear();
        RangeBody {
            part,
            start,
            end,
            received: 0,
        }
    }

    fn expected(&self) -> usize {
        (self.end - self.start + 1) as usize
    }

    /// Takes the next chunk of the body; false once the body runs past the range (stop reading).
    pub fn take(&mut self, chunk: &[u8]) -> bool {
        self.received += chunk.len();
        if self.received > self.expected() {
            return false;
        }
        if self.part.is_empty() {
            self.part.reserve_exact(self.expected());
        }
        self.part.extend_from_slice(chunk);
        true
    }

    /// The whole part, or why it is unusable (named by `what`): a short body is a cut
    /// connection; a long one means the object is not what its listing or manifest says.
    pub fn finish(self, what: &str) -> Result<Vec<u8>, String> {
        let expected = self.expected();
        if self.received != expected {
            return Err(format!(
                "{what}: expected {expected} bytes in range {}-{}, got {}",
                self.start, self.end, self.received
            ));
        }
        Ok(self.part)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_whole_only_with_exactly_its_bytes() {
        let mut whole = RangeBody::new(vec![9; 3], 10, 14);
        assert!(whole.take(b"ab") && whole.take(b"cde"));
        assert_eq!(whole.finish("k").unwrap(), b"abcde");

        let mut short = RangeBody::new(Vec::new(), 0, 4);
        assert!(short.take(b"abc"));
        let err = short.finish("k").unwrap_err();
        assert_eq!(err, "k: expected 5 bytes in range 0-4, got 3");

        let mut long = RangeBody::new(Vec::new(), 0, 1);
        assert!(!long.take(b"abc"), "the body ran past the range");
        assert!(long.finish("k").is_err());
    }
}
