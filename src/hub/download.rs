//! Downloading one file of a commit into a verifying [`BlobSink`]: large files in parallel
//! ranged parts from wherever the Hub redirects them (located once, the token left behind when
//! that is another host), small ones in one streamed GET that resumes after a dropped
//! connection. The writer checks every byte against the blob's name.

use reqwest::{Method, StatusCode, Url};

use super::error::Asked;
use super::{Answer, CommitFile, DownloadError, Follow, Hub, HubError, Range};
use crate::cache::write::BlobSink;
use crate::net::ranged::{download_ranged, stream_resuming, RangeBody};
use crate::net::rate::RateLimiter;
use crate::net::TransferCtx;
use crate::task::blocking;

impl Hub {
    /// Downloads `file` into `writer`, which verifies while it writes; returns what the writer
    /// makes of it (the blob's path in the cache).
    pub async fn download<W: BlobSink>(
        &self,
        file: &CommitFile,
        writer: W,
        size: u64,
        ctx: &TransferCtx,
    ) -> Result<W::Done, DownloadError> {
        let url = self.file_url(file)?;
        let rest = size - writer.written();
        let mut writer = Some(writer);
        if rest > ctx.multipart_threshold {
            let located = ctx.policy.run(|| self.locate(&url, file)).await?;
            let hub = self.clone();
            let file = file.clone();
            let rate = ctx.rate.clone();
            download_ranged::<DownloadError, _, _, _, _>(
                &mut writer,
                size,
                ctx,
                move |start, end, part| {
                    let (hub, url, file) = (hub.clone(), located.clone(), file.clone());
                    let rate = rate.clone();
                    async move { hub.get_range(&url, &file, start, end, part, &rate).await }
                },
            )
            .await?;
        } else {
            let _slot = ctx.slot().await;
            self.download_stream(&url, file, &mut writer, ctx).await?;
        }
        let writer = writer.expect("writer is put back after each write");
        Ok(blocking(move || writer.finish()).await?)
    }

    /// Where the file's bytes are served from: the endpoint's redirects followed, stopping at
    /// the first one to another host (the CDN), which is not asked anything yet.
    async fn locate(&self, url: &Url, file: &CommitFile) -> Result<Url, HubError> {
        match self
            .send(
                Method::HEAD,
                url,
                None,
                asked(file),
                (Follow::SameHost, self.inner.token.as_ref()),
            )
            .await?
        {
            Answer::ElsewhereAt(cdn) => Ok(cdn),
            Answer::Response(r) => Ok(r.url().clone()),
        }
    }

    /// The bytes `start..=end` of the file at `url`, gathered into `part` (see
    /// [`download_ranged`]), each chunk waiting for the run's bandwidth cap as it arrives.
    async fn get_range(
        &self,
        url: &Url,
        file: &CommitFile,
        start: u64,
        end: u64,
        part: Vec<u8>,
        rate: &RateLimiter,
    ) -> Result<Vec<u8>, HubError> {
        let mut resp = self
            .response(Method::GET, url, Some(Range::Part(start, end)), asked(file))
            .await?;
        if resp.status() != StatusCode::PARTIAL_CONTENT {
            return Err(no_ranges(file));
        }
        let mut range = RangeBody::new(part, start, end);
        while let Some(chunk) = self.next_chunk(&mut resp).await? {
            rate.pace(chunk.len() as u64).await;
            if !range.take(&chunk) {
                break;
            }
        }
        range
            .finish(&file.path)
            .map_err(|detail| HubError::Transient { detail })
    }

    /// One GET streamed into the writer; after a dropped connection it resumes where it stopped.
    async fn download_stream<W: BlobSink>(
        &self,
        url: &Url,
        file: &CommitFile,
        writer: &mut Option<W>,
        ctx: &TransferCtx,
    ) -> Result<(), DownloadError> {
        stream_resuming(writer, ctx, |offset| async move {
            let range = (offset > 0).then_some(Range::From(offset));
            let resp = self.response(Method::GET, url, range, asked(file)).await?;
            if offset > 0 && resp.status() != StatusCode::PARTIAL_CONTENT {
                return Err(no_ranges(file));
            }
            Ok(Box::pin(futures::stream::unfold(
                resp,
                move |mut resp| async move {
                    match self.next_chunk(&mut resp).await {
                        Ok(Some(chunk)) => Some((Ok(chunk), resp)),
                        Ok(None) => None,
                        Err(e) => Some((Err(e), resp)),
                    }
                },
            )))
        })
        .await
    }
}

fn asked(file: &CommitFile) -> Asked<'_> {
    Asked::File {
        repo: &file.repo_id,
        commit: &file.commit,
        path: &file.path,
    }
}

fn no_ranges(file: &CommitFile) -> HubError {
    HubError::Other {
        detail: format!(
            "{}: the server ignored the Range header; cannot download in parts or resume",
            file.path
        ),
    }
}
