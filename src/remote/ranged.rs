//! Downloads into a verifying [`BlobWriter`], whatever the server: a body streamed in batches,
//! or parallel ranged parts consumed in order so the hash sees every byte once, in sequence.
//! The bucket and the Hub both download through these.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use futures::stream::FuturesOrdered;
use futures::{Stream, StreamExt};

use super::{blocking, AbortOnDrop, Retryable, TransferCtx, TransferError};
use crate::cache::write::{BlobWriter, WriteError};

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
/// stopped, as the context's retry policy allows.
pub async fn stream_resuming<E, S, F, Fut>(
    writer: &mut Option<BlobWriter>,
    ctx: &TransferCtx,
    open: F,
) -> Result<(), TransferError>
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<S, E>>,
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Retryable + Into<TransferError>,
{
    let mut attempt = 0;
    loop {
        let offset = writer.as_ref().map_or(0, BlobWriter::written);
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

/// Writes a response body through the writer, a batch at a time, counting progress. Ends at the
/// body's end or its first error.
async fn write_body<S, E>(
    writer: &mut Option<BlobWriter>,
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
        if let Some(Ok(c)) = &chunk {
            batch.extend_from_slice(c);
        }
        if (end || batch.len() >= WRITE_BATCH) && !batch.is_empty() {
            let n = batch.len() as u64;
            write_off_thread(writer, vec![batch.split().freeze()])
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

/// Parallel ranged GETs of `size` bytes, `get_range(start, end)` (inclusive) each, retried as
/// the context's policy says and consumed in order; memory stays within the context's budget.
pub async fn download_ranged<F, Fut, E>(
    writer: &mut Option<BlobWriter>,
    size: u64,
    ctx: &TransferCtx,
    get_range: F,
) -> Result<(), TransferError>
where
    F: Fn(u64, u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Vec<Bytes>, E>> + Send + 'static,
    E: Retryable + Into<TransferError> + Send + 'static,
{
    let part_size = ctx.part_size_for(size);
    let count = size.div_ceil(part_size);
    let mut inflight = FuturesOrdered::new();
    let mut next = 0u64;
    loop {
        tokio::select! {
            biased;
            Some(done) = inflight.next(), if !inflight.is_empty() => {
                let done: Result<(Vec<Bytes>, _), E> = done;
                let (chunks, _permit) = done.map_err(Into::into)?;
                write_off_thread(writer, chunks).await?;
            }
            permit = ctx.reserve(part_size), if next < count && inflight.len() < ctx.workers => {
                let start = next * part_size;
                let end = (start + part_size).min(size) - 1;
                next += 1;
                let ctx2 = ctx.clone();
                let get_range = get_range.clone();
                inflight.push_back(AbortOnDrop(tokio::spawn(async move {
                    let _slot = ctx2.slot().await;
                    let chunks = ctx2.policy.run(|| get_range(start, end)).await?;
                    ctx2.progress.add_bytes(end - start + 1);
                    Ok::<_, E>((chunks, permit))
                })));
            }
            else => break,
        }
    }
    Ok(())
}

/// Writes `chunks` through the writer on a blocking thread; the writer travels there and back.
pub async fn write_off_thread(
    writer: &mut Option<BlobWriter>,
    chunks: Vec<Bytes>,
) -> Result<(), WriteError> {
    let mut w = writer.take().expect("writer is put back after each write");
    let (w, result) = blocking(move || {
        let result = chunks.iter().try_for_each(|c| w.write(c));
        (w, result)
    })
    .await;
    *writer = Some(w);
    result
}
