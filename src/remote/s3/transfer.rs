//! Blob transfers: verified single and multipart uploads (parts in parallel, aborted on failure
//! or Ctrl-C) and streamed or ranged parallel downloads, with memory bounded by the transfer
//! context and every byte hashed once, in order.

use crate::remote::Access;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::stream::FuturesUnordered;
use futures::StreamExt;

use super::payload::{PayloadHash, Upload};
use super::{S3Remote, CONNECT_TIMEOUT};
use crate::cache::write::{io_err, BlobSink, Verifier, WriteError};
use crate::net::buffers::read_part;
use crate::net::ranged::{download_ranged, stream_resuming, RangeBody};
use crate::net::rate::RateLimiter;
use crate::net::TransferCtx;
use crate::remote::{BlobError, BlobSource, OpenUploadInfo, RemoteError};
use crate::task::{blocking, AbortOnDrop};
use crate::text::error_chain;

/// Multipart uploads in flight, so an interrupted run can abort them before it exits.
static OPEN_UPLOADS: Mutex<Vec<(S3Remote, String, String)>> = Mutex::new(Vec::new());

/// Registered while a multipart upload is open. Only completion or abort closes it: when the
/// upload's future is dropped (Ctrl-C) the record stays for [`abort_open_uploads`].
struct OpenUpload {
    upload_id: String,
}

impl OpenUpload {
    fn register(remote: &S3Remote, key: &str, upload_id: &str) -> OpenUpload {
        lock_uploads().push((remote.clone(), key.to_string(), upload_id.to_string()));
        OpenUpload {
            upload_id: upload_id.to_string(),
        }
    }

    fn close(self) {
        lock_uploads().retain(|(_, _, id)| id != &self.upload_id);
    }
}

fn lock_uploads() -> std::sync::MutexGuard<'static, Vec<(S3Remote, String, String)>> {
    OPEN_UPLOADS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Aborts every multipart upload this process still has open (after Ctrl-C).
pub async fn abort_open_uploads() {
    let open: Vec<_> = lock_uploads().drain(..).collect();
    for (remote, key, upload_id) in open {
        remote.abort_upload(&key, &upload_id).await;
    }
}

impl S3Remote {
    pub async fn upload_blob(
        &self,
        src: &BlobSource,
        key: &str,
        ctx: &TransferCtx,
    ) -> Result<(), BlobError> {
        if src.size > ctx.multipart_threshold {
            return self.upload_multipart(src, key, ctx).await;
        }
        let _memory = ctx.reserve(src.size).await;
        let _slot = ctx.slot().await;
        let owned = src.clone();
        let payload = PayloadHash::for_blob(&src.etag, true, self.https());
        let streamed = ctx.rate.is_limited();
        let (data, payload) = blocking(move || {
            let data = read_verified(&owned)?;
            let payload = payload.for_body(streamed, &data);
            Ok::<_, WriteError>((data, payload))
        })
        .await?;
        let upload = Upload::blob(Bytes::from(data), payload, ctx);
        self.put_signed(key, &upload, false).await?;
        ctx.progress.add_bytes(src.size);
        Ok(())
    }

    pub(super) async fn upload_multipart(
        &self,
        src: &BlobSource,
        key: &str,
        ctx: &TransferCtx,
    ) -> Result<(), BlobError> {
        let created = self
            .gated(|| {
                self.call(
                    || {
                        self.client
                            .create_multipart_upload()
                            .bucket(&self.bucket)
                            .key(key)
                            .send()
                    },
                    Access::Write,
                    key,
                )
            })
            .await?;
        let upload_id = created.upload_id().unwrap_or_default().to_string();
        let open = OpenUpload::register(self, key, &upload_id);
        let result = self.finish_multipart(src, key, &upload_id, ctx).await;
        open.close();
        match result {
            // The upload is gone because the object is there: a retry whose first attempt
            // completed it but lost the answer, or another push of the same blob that finished
            // first (Garage discards unfinished uploads older than a completed one). Blob keys
            // are content-addressed and only verified content is ever completed, so the right
            // size settles it.
            Err(BlobError::Remote(RemoteError::NotFound { .. }))
                if self.object_size(key).await? == Some(src.size) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Uploads the parts and completes the upload, or aborts it on any failure.
    pub(super) async fn finish_multipart(
        &self,
        src: &BlobSource,
        key: &str,
        upload_id: &str,
        ctx: &TransferCtx,
    ) -> Result<(), BlobError> {
        let upload_id = upload_id.to_string();
        match self.upload_parts(src, key, &upload_id, ctx).await {
            Ok(mut parts) => {
                parts.sort_by_key(|p| p.part_number());
                let done = CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build();
                let completed = self
                    .call(
                        || {
                            self.client
                                .complete_multipart_upload()
                                .bucket(&self.bucket)
                                .key(key)
                                .upload_id(&upload_id)
                                .multipart_upload(done.clone())
                                .send()
                        },
                        Access::Write,
                        key,
                    )
                    .await;
                match completed {
                    Ok(_) => Ok(()),
                    Err(e) => {
                        self.abort_upload(key, &upload_id).await;
                        Err(e.into())
                    }
                }
            }
            Err(e) => {
                self.abort_upload(key, &upload_id).await;
                Err(e)
            }
        }
    }

    /// Aborts multipart uploads under `prefix` started more than `older_than` ago: what a killed
    /// run left behind. Returns how many were aborted.
    pub async fn abort_stale_uploads(
        &self,
        prefix: &str,
        older_than: Duration,
    ) -> Result<usize, RemoteError> {
        let cutoff = std::time::SystemTime::now() - older_than;
        let stale: Vec<OpenUploadInfo> = self
            .open_uploads(prefix)
            .await?
            .into_iter()
            .filter(|u| u.initiated <= cutoff)
            .collect();
        for upload in &stale {
            self.abort_upload(&upload.key, &upload.upload_id).await;
        }
        Ok(stale.len())
    }

    /// Every multipart upload under `prefix` that was started and neither completed nor
    /// aborted, with its start time (one the server gives none is left out: its age is unknown).
    pub async fn open_uploads(&self, prefix: &str) -> Result<Vec<OpenUploadInfo>, RemoteError> {
        let mut open = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut id_marker: Option<String> = None;
        loop {
            let page = self
                .call(
                    || {
                        self.client
                            .list_multipart_uploads()
                            .bucket(&self.bucket)
                            .prefix(prefix)
                            .set_key_marker(key_marker.clone())
                            .set_upload_id_marker(id_marker.clone())
                            .send()
                    },
                    Access::List,
                    prefix,
                )
                .await?;
            for upload in page.uploads() {
                let started = upload
                    .initiated()
                    .and_then(|t| std::time::SystemTime::try_from(*t).ok());
                if let (Some(key), Some(id), Some(started)) =
                    (upload.key(), upload.upload_id(), started)
                {
                    open.push(OpenUploadInfo {
                        key: key.to_string(),
                        upload_id: id.to_string(),
                        initiated: started,
                    });
                }
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if page.is_truncated() != Some(true) || key_marker.is_none() {
                break;
            }
        }
        Ok(open)
    }

    /// Aborts one multipart upload, saying whether the server did.
    pub async fn try_abort_upload(&self, key: &str, upload_id: &str) -> Result<(), RemoteError> {
        self.call(
            || {
                self.client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .send()
            },
            Access::Write,
            key,
        )
        .await
        .map(|_| ())
    }

    /// Best effort: a multipart upload is never left open on purpose.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) {
        let _ = self.try_abort_upload(key, upload_id).await;
    }

    /// Reads parts in order (hashing each), uploads them in parallel, and checks the hash before
    /// returning: the caller completes the upload only for content that matches its name.
    pub(super) async fn upload_parts(
        &self,
        src: &BlobSource,
        key: &str,
        upload_id: &str,
        ctx: &TransferCtx,
    ) -> Result<Vec<CompletedPart>, BlobError> {
        let part_size = ctx.part_size_for(src.size);
        let count = src.size.div_ceil(part_size);
        let file = std::fs::File::open(&src.path).map_err(io_err(&src.path))?;
        let mut reader = Some(PartReader {
            file,
            path: src.path.clone(),
            verifier: Verifier::new(&src.etag, src.size)?,
        });
        let mut inflight = FuturesUnordered::new();
        let mut parts = Vec::with_capacity(count as usize);
        let mut next = 0u64;
        loop {
            tokio::select! {
                Some(done) = inflight.next(), if !inflight.is_empty() => {
                    let done: Result<CompletedPart, RemoteError> = done;
                    parts.push(done?);
                }
                permit = ctx.reserve(part_size), if next < count => {
                    let len = part_size.min(src.size - next * part_size);
                    let mut r = reader.take().expect("reader is put back after each part");
                    let buf = ctx.buffers.take();
                    let payload = PayloadHash::for_blob(&src.etag, false, self.https());
                    let streamed = ctx.rate.is_limited();
                    let (r, data) = blocking(move || {
                        let data = r.next_part(len, buf).map(|data| {
                            let payload = payload.for_body(streamed, &data);
                            (data, payload)
                        });
                        (r, data)
                    })
                    .await;
                    reader = Some(r);
                    let (data, payload) = data?;
                    let number = (next + 1) as i32;
                    next += 1;
                    let remote = self.clone();
                    let key = key.to_string();
                    let upload_id = upload_id.to_string();
                    let ctx2 = ctx.clone();
                    let upload = Upload::blob(Bytes::from(data), payload, ctx);
                    inflight.push(AbortOnDrop(tokio::spawn(async move {
                        let _permit = permit;
                        let _slot = ctx2.slot().await;
                        let out = remote.call(|| {
                            let req = remote.client
                                .upload_part()
                                .bucket(&remote.bucket)
                                .key(&key)
                                .upload_id(&upload_id)
                                .part_number(number)
                                .content_length(upload.len() as i64)
                                .body(upload.stream());
                            upload
                                .customize(req.customize(), CONNECT_TIMEOUT, remote.read_timeout)
                                .send()
                        }, Access::Write, &key)
                        .await?;
                        ctx2.progress.add_bytes(upload.len());
                        ctx2.buffers.give_back_bytes(upload.into_bytes());
                        Ok(CompletedPart::builder()
                            .set_e_tag(out.e_tag().map(str::to_string))
                            .part_number(number)
                            .build())
                    })));
                }
                else => break,
            }
        }
        // Only content that matches its name gets its upload completed.
        reader
            .expect("reader is put back after each part")
            .verifier
            .check()?;
        Ok(parts)
    }

    pub async fn download_blob<W: BlobSink>(
        &self,
        key: &str,
        writer: W,
        size: u64,
        ctx: &TransferCtx,
    ) -> Result<W::Done, BlobError> {
        let rest = size - writer.written();
        let mut writer = Some(writer);
        if rest > ctx.multipart_threshold {
            self.download_ranged(key, &mut writer, size, ctx).await?;
        } else {
            let _slot = ctx.slot().await;
            self.download_stream(key, &mut writer, ctx).await?;
        }
        let writer = writer.expect("writer is put back after each write");
        Ok(blocking(move || writer.finish()).await?)
    }

    /// One GET streamed into the writer; after a dropped connection it resumes where it stopped.
    pub(super) async fn download_stream<W: BlobSink>(
        &self,
        key: &str,
        writer: &mut Option<W>,
        ctx: &TransferCtx,
    ) -> Result<(), BlobError> {
        stream_resuming(writer, ctx, |offset| async move {
            let mut req = self.client.get_object().bucket(&self.bucket).key(key);
            if offset > 0 {
                req = req.range(format!("bytes={offset}-"));
            }
            let out = req
                .send()
                .await
                .map_err(|e| self.error(e, Access::Read, key))?;
            Ok(Box::pin(futures::stream::unfold(
                out.body,
                move |mut body| async move {
                    match self.next_chunk(&mut body, key).await {
                        Ok(Some(chunk)) => Some((Ok(chunk), body)),
                        Ok(None) => None,
                        Err(e) => Some((Err(e), body)),
                    }
                },
            )))
        })
        .await
    }

    /// Parallel ranged GETs, consumed in order so the hash sees the bytes once, in sequence.
    pub(super) async fn download_ranged<W: BlobSink>(
        &self,
        key: &str,
        writer: &mut Option<W>,
        size: u64,
        ctx: &TransferCtx,
    ) -> Result<(), BlobError> {
        let remote = self.clone();
        let key = key.to_string();
        let rate = ctx.rate.clone();
        download_ranged(writer, size, ctx, move |start, end, part| {
            let (remote, key, rate) = (remote.clone(), key.clone(), rate.clone());
            async move { remote.get_range(&key, start, end, part, &rate).await }
        })
        .await
    }

    /// The bytes `start..=end` of `key`, gathered into `part` (see [`download_ranged`]), each
    /// chunk waiting for the run's bandwidth cap as it arrives.
    pub(super) async fn get_range(
        &self,
        key: &str,
        start: u64,
        end: u64,
        part: Vec<u8>,
        rate: &RateLimiter,
    ) -> Result<Vec<u8>, RemoteError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{end}"))
            .send()
            .await
            .map_err(|e| self.error(e, Access::Read, key))?;
        let mut body = out.body;
        let mut range = RangeBody::new(part, start, end);
        while let Some(chunk) = self.next_chunk(&mut body, key).await? {
            rate.pace(chunk.len() as u64).await;
            if !range.take(&chunk) {
                break;
            }
        }
        range.finish(key).map_err(|detail| RemoteError::Transient {
            detail,
            code: "ShortRead".into(),
        })
    }

    pub(super) async fn next_chunk(
        &self,
        body: &mut ByteStream,
        key: &str,
    ) -> Result<Option<Bytes>, RemoteError> {
        match tokio::time::timeout(self.idle_timeout, body.next()).await {
            Err(_) => Err(RemoteError::Transient {
                detail: format!(
                    "{key}: download stalled for {}s",
                    self.idle_timeout.as_secs_f64()
                ),
                code: "Stalled".into(),
            }),
            Ok(None) => Ok(None),
            Ok(Some(Ok(b))) => Ok(Some(b)),
            Ok(Some(Err(e))) => Err(RemoteError::Transient {
                detail: format!("{key}: connection dropped mid-body: {}", error_chain(&e)),
                code: "BodyError".into(),
            }),
        }
    }
}

/// The file a multipart upload reads, part after part, hashing each byte once.
struct PartReader {
    file: std::fs::File,
    path: PathBuf,
    verifier: Verifier,
}

impl PartReader {
    fn next_part(&mut self, len: u64, buf: Vec<u8>) -> Result<Vec<u8>, WriteError> {
        let data = read_part(&mut self.file, &self.path, len, buf)?;
        self.verifier.update(&data)?;
        Ok(data)
    }
}

/// Reads a whole (small) blob, checking it against its name.
pub fn read_verified(src: &BlobSource) -> Result<Vec<u8>, WriteError> {
    let mut verifier = Verifier::new(&src.etag, src.size)?;
    let data = std::fs::read(&src.path).map_err(io_err(&src.path))?;
    verifier.update(&data)?;
    verifier.check()?;
    Ok(data)
}
