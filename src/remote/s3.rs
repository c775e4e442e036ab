//! The S3-compatible remote (AWS S3, Backblaze B2, Cloudflare R2, MinIO, Garage) on aws-sdk-s3.
//!
//! Retries are ours (see `error::RetryPolicy`), not the SDK's, so body-stream failures and
//! request failures follow the same rule. Large objects move as parallel parts with memory
//! bounded by the transfer context, hashed in order as they stream.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextMut,
};
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, ConfigBag, Intercept, Region, RequestChecksumCalculation,
    ResponseChecksumValidation, RuntimeComponents, StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{BoxError, DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use aws_sdk_s3::Client;
use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesOrdered, FuturesUnordered};
use futures::StreamExt;

use super::aws::{CaBundle, CredentialChain, HttpsClient};
use super::payload::PayloadHash;
use super::{
    blocking, read_part, AbortOnDrop, BlobSource, ObjectInfo, RemoteError, TransferCtx,
    TransferError,
};
use crate::cache::write::{io_err, BlobWriter, Verifier, WriteError};
use crate::config::{ConfigError, CredentialSource, Credentials};
use crate::text::error_chain;

/// How long a request may wait for the server's answer (`HF_CACHE_SYNC_TIMEOUT` sets both).
const READ_TIMEOUT: Duration = Duration::from_secs(120);
/// A body that delivers nothing for this long is treated as a dropped connection.
const IDLE_BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes gathered from the network before one write + hash.
const WRITE_BATCH: usize = 1024 * 1024;

#[derive(Clone)]
pub struct S3Remote {
    client: Client,
    bucket: String,
    endpoint: String,
    region: String,
    /// A download body silent for this long is a dropped connection.
    idle_timeout: Duration,
    /// The `Date` header of the latest response, for `doctor`'s clock check.
    server_date: Arc<Mutex<Option<String>>>,
    write_gate: Arc<WriteGate>,
    /// The AWS default chain, when no keys were given directly.
    chain: Option<CredentialChain>,
    /// The extra CAs trusted for this endpoint, named in certificate errors.
    ca_bundle: Option<CaBundle>,
}

/// Until one write has gone through, writes are sent one at a time: a key that cannot write
/// (a read-only team key) is found out by a single refused request, and no other write is sent.
#[derive(Debug, Default)]
struct WriteGate {
    proven: AtomicBool,
    /// Held while the first write is in flight; the refusal that closed the gate, if one did.
    refused: tokio::sync::Mutex<Option<RemoteError>>,
}

/// Identifies requests as this tool (`b2ai-hfcache/<version>` on Backblaze, as 0.1 does).
#[derive(Debug)]
struct UserAgent(String);

impl Intercept for UserAgent {
    fn name(&self) -> &'static str {
        "UserAgent"
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let headers = context.request_mut().headers_mut();
        let value = match headers.get("user-agent") {
            Some(sdk) => format!("{} {sdk}", self.0),
            None => self.0.clone(),
        };
        headers.insert("user-agent", value);
        Ok(())
    }
}

/// Keeps the `Date` header of every response (errors included), so the clock can be compared
/// with the server's.
#[derive(Debug)]
struct ServerDate(Arc<Mutex<Option<String>>>);

impl Intercept for ServerDate {
    fn name(&self) -> &'static str {
        "ServerDate"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(date) = context.response().headers().get("date") {
            *self.0.lock().expect("not poisoned") = Some(date.to_string());
        }
        Ok(())
    }
}

pub fn user_agent(endpoint: Option<&str>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    if endpoint.is_some_and(is_backblaze) {
        format!("b2ai-hfcache/{version}")
    } else {
        format!("hf-cache-sync/{version}")
    }
}

fn host_of(endpoint: &str) -> &str {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host_port = rest.split('/').next().unwrap_or(rest);
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

fn is_backblaze(endpoint: &str) -> bool {
    host_of(endpoint).ends_with("backblazeb2.com")
}

fn is_aws(endpoint: &str) -> bool {
    host_of(endpoint).ends_with("amazonaws.com")
}

/// The region to sign with: configured, else B2's from its endpoint (`s3.us-west-000.…`), else
/// `us-east-1`, which most S3-compatible servers accept.
pub fn default_region(endpoint: Option<&str>) -> String {
    if let Some(ep) = endpoint {
        let host = host_of(ep);
        if is_backblaze(ep) {
            if let Some(region) = host.strip_prefix("s3.").and_then(|h| h.split('.').next()) {
                return region.to_string();
            }
        }
        if is_aws(ep) {
            let parts: Vec<&str> = host.split('.').collect();
            if let Some(i) = parts.iter().position(|p| *p == "amazonaws") {
                if i >= 1 && parts[i - 1] != "s3" {
                    return parts[i - 1].to_string();
                }
            }
        }
    }
    "us-east-1".to_string()
}

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
    pub fn new(
        endpoint: Option<&str>,
        bucket: &str,
        region: Option<&str>,
        credentials: &Credentials,
        ca_bundle: Option<&CaBundle>,
        timeout: Option<Duration>,
    ) -> Result<S3Remote, ConfigError> {
        if let Some(ep) = endpoint {
            if !(ep.starts_with("http://") || ep.starts_with("https://")) {
                return Err(ConfigError::Invalid(format!(
                    "storage.endpoint {ep:?} must start with https:// (or http://, or file:// \
                     for a directory remote)"
                )));
            }
        }
        // A plain-HTTP endpoint has no certificate to check: a bundle set for other tools
        // (SSL_CERT_FILE) must not stop it.
        let ca_bundle = ca_bundle.filter(|_| !endpoint.is_some_and(|e| e.starts_with("http://")));
        let https = ca_bundle.map(HttpsClient::new).transpose()?;
        let region = region
            .map(str::to_string)
            .unwrap_or_else(|| default_region(endpoint));
        let signing_region = region.clone();
        let server_date = Arc::new(Mutex::new(None));
        let chain = (credentials.source == CredentialSource::AwsChain)
            .then(|| CredentialChain::new(&region, https.as_ref()));
        let mut builder = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region));
        builder = match &chain {
            Some(chain) => builder.credentials_provider(chain.clone()),
            None => builder.credentials_provider(aws_sdk_s3::config::Credentials::new(
                credentials.access_key.clone(),
                credentials.secret_key.expose().to_string(),
                credentials
                    .session_token
                    .as_ref()
                    .map(|t| t.expose().to_string()),
                None,
                "hf-cache-sync",
            )),
        };
        if let Some(https) = &https {
            builder = builder.http_client(https.shared());
        } else if endpoint.is_some_and(|e| e.starts_with("http://")) {
            // Plain HTTP needs no TLS client: no system certificate store to load, and none
            // of SSL_CERT_FILE's business.
            builder = builder.http_client(aws_smithy_http_client::Builder::new().build_http());
        }
        builder = builder
            // B2 and R2 reject the CRC headers newer SDKs send by default.
            .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .read_timeout(timeout.unwrap_or(READ_TIMEOUT))
                    .build(),
            )
            .interceptor(UserAgent(user_agent(endpoint)))
            .interceptor(ServerDate(server_date.clone()));
        if let Some(t) = timeout {
            // The SDK's own watch on bodies that stop moving (5 s by default) covers the bodies
            // it reads itself (listings, error answers): the setting applies to those too.
            builder = builder.stalled_stream_protection(
                StalledStreamProtectionConfig::enabled()
                    .grace_period(t)
                    .build(),
            );
        }
        if let Some(ep) = endpoint {
            builder = builder
                .endpoint_url(ep.trim_end_matches('/'))
                .force_path_style(!is_aws(ep));
        }
        Ok(S3Remote {
            client: Client::from_conf(builder.build()),
            bucket: bucket.to_string(),
            endpoint: endpoint.unwrap_or("AWS S3").to_string(),
            region: signing_region,
            idle_timeout: timeout.unwrap_or(IDLE_BODY_TIMEOUT),
            server_date,
            write_gate: Arc::default(),
            chain,
            ca_bundle: ca_bundle.cloned(),
        })
    }

    /// Runs the AWS credential chain now (`None` for keys given directly), for `doctor` to
    /// report the source before any request: the source's name and the access key id.
    pub async fn resolve_chain(&self) -> Option<Result<(String, String), RemoteError>> {
        let chain = self.chain.as_ref()?;
        Some(
            chain
                .probe()
                .await
                .map_err(|detail| RemoteError::NoCredentials {
                    endpoint: self.endpoint.clone(),
                    detail,
                }),
        )
    }

    /// The chain's failure as an error a person can act on, when the chain is what failed.
    fn no_credentials(&self) -> Option<RemoteError> {
        let detail = self.chain.as_ref()?.failure()?;
        Some(RemoteError::NoCredentials {
            endpoint: self.endpoint.clone(),
            detail,
        })
    }

    /// The `Date` header of the latest response from the server, if any arrived.
    pub fn last_server_date(&self) -> Option<String> {
        self.server_date.lock().expect("not poisoned").clone()
    }

    /// Checks the bucket exists and the credentials may list it, with a LIST of at most one key:
    /// it needs the same permission as a HEAD of the bucket, but its error responses have a body
    /// that says what is wrong (a HEAD's 403 could be a bad key or a missing permission).
    pub async fn probe_bucket(&self) -> Result<(), RemoteError> {
        self.call(
            || {
                self.client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .max_keys(1)
                    .send()
            },
            "list",
            &self.bucket,
        )
        .await
        .map(|_| ())
    }

    /// Runs an SDK call under the retry policy, translating its errors.
    async fn call<T, E, F, Fut>(
        &self,
        mut op: F,
        action: &'static str,
        key: &str,
    ) -> Result<T, RemoteError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<
            Output = Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
        >,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        super::RetryPolicy::default()
            .run(|| {
                let fut = op();
                async move { fut.await.map_err(|e| self.error(e, action, key)) }
            })
            .await
    }

    pub fn describe(&self) -> String {
        format!("s3://{} at {}", self.bucket, self.endpoint)
    }

    /// Runs a request that creates an object through the [`WriteGate`]. Once a write was
    /// refused for good (denied, bad credentials, no bucket), every later one fails the same way
    /// without being sent.
    async fn gated<T, F, Fut>(&self, op: F) -> Result<T, RemoteError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<T, RemoteError>>,
    {
        let gate = &self.write_gate;
        if gate.proven.load(Ordering::Acquire) {
            return op().await;
        }
        let mut refused = gate.refused.lock().await;
        if let Some(e) = refused.as_ref() {
            return Err(e.clone());
        }
        if gate.proven.load(Ordering::Acquire) {
            drop(refused);
            return op().await;
        }
        let result = op().await;
        match &result {
            Ok(_) => gate.proven.store(true, Ordering::Release),
            Err(e) if e.is_fatal() => *refused = Some(e.clone()),
            // A transient failure proves nothing: the next writer probes again.
            Err(_) => {}
        }
        result
    }

    /// Turns an SDK error into something a person can act on.
    fn error<E>(
        &self,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        action: &'static str,
        key: &str,
    ) -> RemoteError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if let Some(e) = self.no_credentials() {
            return e;
        }
        match &err {
            SdkError::ServiceError(service) => {
                let status = service.raw().status().as_u16();
                let code = service.err().code().unwrap_or("").to_string();
                let message = service.err().message().unwrap_or("").to_string();
                self.classify(status, code, message, action, key)
            }
            SdkError::TimeoutError(_) => RemoteError::Transient {
                detail: format!("request for {key} timed out"),
                code: "Timeout".into(),
            },
            SdkError::DispatchFailure(failure) => {
                let full = DisplayErrorContext(&err).to_string();
                if super::aws::is_certificate_error(&full) {
                    return RemoteError::Certificate {
                        endpoint: self.endpoint.clone(),
                        detail: root_cause(&err),
                        bundle: self.ca_bundle.as_ref().map(|b| (b.var, b.path.clone())),
                    };
                }
                let detail = root_cause(&err);
                let refused = [
                    "Connection refused",
                    "dns error",
                    "failed to lookup",
                    "No route to host",
                ]
                .iter()
                .any(|m| full.contains(m));
                // A connection the server closed before its answer was complete ("other",
                // which the SDK marks transient) is a dropped connection like a reset, not an
                // endpoint that cannot be reached: retry it and keep the run going.
                let dropped = failure.is_timeout() || failure.is_io() || failure.is_other();
                if dropped && !refused {
                    RemoteError::Transient {
                        detail: format!("{key}: connection failed: {detail}"),
                        code: "Dispatch".into(),
                    }
                } else {
                    RemoteError::Unreachable {
                        endpoint: self.endpoint.clone(),
                        detail,
                    }
                }
            }
            SdkError::ResponseError(_) => RemoteError::Transient {
                detail: format!(
                    "{key}: malformed or cut-off response: {}",
                    error_chain(&err)
                ),
                code: "ResponseError".into(),
            },
            _ => RemoteError::Other {
                detail: format!("{key}: {}", error_chain(&err)),
                code: String::new(),
            },
        }
    }

    fn classify(
        &self,
        status: u16,
        code: String,
        message: String,
        action: &'static str,
        key: &str,
    ) -> RemoteError {
        // Some servers (Garage) answer a bad key or signature with a plain AccessDenied.
        let lower = message.to_lowercase();
        let bad_key = [
            "no such key",
            "signature",
            "invalid key",
            "access key",
            "unknown key",
        ]
        .iter()
        .any(|m| lower.contains(m));
        let code_for_user = if message.is_empty() {
            code.clone()
        } else {
            format!("{code} ({message})")
        };
        if (code == "AccessDenied" || status == 403) && bad_key {
            return RemoteError::Credentials {
                endpoint: self.endpoint.clone(),
                code: code_for_user,
            };
        }
        let code = code_for_user;
        let code_name = code.split(' ').next().unwrap_or("").to_string();
        match code_name.as_str() {
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "InvalidSignature"
            | "Unauthorized" => RemoteError::Credentials {
                endpoint: self.endpoint.clone(),
                code,
            },
            "AccessDenied" | "AllAccessDisabled" | "Forbidden" => RemoteError::AccessDenied {
                bucket: self.bucket.clone(),
                action,
                code,
            },
            "NoSuchBucket" => RemoteError::NoSuchBucket {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
            },
            "NoSuchKey" | "NotFound" | "NoSuchUpload" => RemoteError::NotFound {
                key: key.to_string(),
            },
            "PermanentRedirect"
            | "AuthorizationHeaderMalformed"
            | "IllegalLocationConstraintException" => RemoteError::WrongRegion {
                bucket: self.bucket.clone(),
                region: self.region.clone(),
                code,
            },
            "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => {
                RemoteError::Transient {
                    detail: format!("{key}: server answered {status} {code}"),
                    code,
                }
            }
            _ => match status {
                401 => RemoteError::Credentials {
                    endpoint: self.endpoint.clone(),
                    code,
                },
                403 => RemoteError::AccessDenied {
                    bucket: self.bucket.clone(),
                    action,
                    code,
                },
                404 => RemoteError::NotFound {
                    key: key.to_string(),
                },
                301 => RemoteError::WrongRegion {
                    bucket: self.bucket.clone(),
                    region: self.region.clone(),
                    code,
                },
                408 | 429 | 500..=599 => RemoteError::Transient {
                    detail: format!("{key}: server answered {status} {code}"),
                    code,
                },
                _ => RemoteError::Other {
                    detail: format!("{key}: server answered {status} {code} {message}")
                        .trim_end()
                        .to_string(),
                    code,
                },
            },
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, RemoteError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .call(
                    || {
                        self.client
                            .list_objects_v2()
                            .bucket(&self.bucket)
                            .prefix(prefix)
                            .set_continuation_token(token.clone())
                            .send()
                    },
                    "list",
                    prefix,
                )
                .await?;
            for obj in page.contents() {
                if let Some(key) = obj.key() {
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        size: obj.size().unwrap_or(0).max(0) as u64,
                        etag: obj.e_tag().map(|e| e.trim_matches('"').to_string()),
                    });
                }
            }
            match page.next_continuation_token() {
                Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(out)
    }

    pub async fn get(&self, key: &str, max: usize) -> Result<Option<Vec<u8>>, RemoteError> {
        let policy = super::RetryPolicy::default();
        let result = policy
            .run(|| async {
                let out = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| self.error(e, "read from", key))?;
                if out.content_length().unwrap_or(0) as u64 > max as u64 {
                    return Err(RemoteError::Other {
                        detail: super::too_large(key, max),
                        code: String::new(),
                    });
                }
                let mut body = out.body;
                let mut data = Vec::new();
                while let Some(chunk) = self.next_chunk(&mut body, key).await? {
                    data.extend_from_slice(&chunk);
                    if data.len() > max {
                        return Err(RemoteError::Other {
                            detail: super::too_large(key, max),
                            code: String::new(),
                        });
                    }
                }
                Ok(data)
            })
            .await;
        match result {
            Ok(d) => Ok(Some(d)),
            Err(RemoteError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), RemoteError> {
        self.put_signed(key, body, PayloadHash::Computed).await
    }

    async fn put_signed(
        &self,
        key: &str,
        body: Bytes,
        payload: PayloadHash,
    ) -> Result<(), RemoteError> {
        self.gated(|| {
            self.call(
                || {
                    let req = self
                        .client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .content_length(body.len() as i64)
                        .body(ByteStream::from(body.clone()));
                    let signing = payload.interceptor();
                    async move {
                        match signing {
                            Some(i) => req.customize().interceptor(i).send().await,
                            None => req.send().await,
                        }
                    }
                },
                "write to",
                key,
            )
        })
        .await
        .map(|_| ())
    }

    /// Over HTTPS the body needs no signed hash of its own.
    fn https(&self) -> bool {
        !self.endpoint.starts_with("http://")
    }

    /// The size of the object at `key`, or `None` when there is none.
    pub async fn object_size(&self, key: &str) -> Result<Option<u64>, RemoteError> {
        let head = self
            .call(
                || {
                    self.client
                        .head_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .send()
                },
                "read from",
                key,
            )
            .await;
        match head {
            Ok(h) => Ok(Some(h.content_length().unwrap_or(0).max(0) as u64)),
            Err(RemoteError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), RemoteError> {
        self.call(
            || {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
            },
            "delete from",
            key,
        )
        .await
        .map(|_| ())
    }

    pub async fn upload_blob(
        &self,
        src: &BlobSource,
        key: &str,
        ctx: &TransferCtx,
    ) -> Result<(), TransferError> {
        if src.size > ctx.multipart_threshold {
            return self.upload_multipart(src, key, ctx).await;
        }
        let _memory = ctx.reserve(src.size).await;
        let _slot = ctx.slot().await;
        let owned = src.clone();
        let data = blocking(move || read_verified(&owned)).await?;
        let body = Bytes::from(data);
        let payload = PayloadHash::for_blob(&src.etag, true, self.https());
        self.put_signed(key, body, payload).await?;
        ctx.progress.add_bytes(src.size);
        Ok(())
    }

    async fn upload_multipart(
        &self,
        src: &BlobSource,
        key: &str,
        ctx: &TransferCtx,
    ) -> Result<(), TransferError> {
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
                    "write to",
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
            Err(TransferError::Remote(RemoteError::NotFound { .. }))
                if self.object_size(key).await? == Some(src.size) =>
            {
                Ok(())
            }
            other => other,
        }
    }

    /// Uploads the parts and completes the upload, or aborts it on any failure.
    async fn finish_multipart(
        &self,
        src: &BlobSource,
        key: &str,
        upload_id: &str,
        ctx: &TransferCtx,
    ) -> Result<(), TransferError> {
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
                        "write to",
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
        let mut aborted = 0;
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
                    "list",
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
                    if started <= cutoff {
                        self.abort_upload(key, id).await;
                        aborted += 1;
                    }
                }
            }
            key_marker = page.next_key_marker().map(str::to_string);
            id_marker = page.next_upload_id_marker().map(str::to_string);
            if page.is_truncated() != Some(true) || key_marker.is_none() {
                break;
            }
        }
        Ok(aborted)
    }

    /// Best effort: a multipart upload is never left open on purpose.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) {
        let _ = self
            .call(
                || {
                    self.client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(upload_id)
                        .send()
                },
                "write to",
                key,
            )
            .await;
    }

    /// Reads parts in order (hashing each), uploads them in parallel, and checks the hash before
    /// returning: the caller completes the upload only for content that matches its name.
    async fn upload_parts(
        &self,
        src: &BlobSource,
        key: &str,
        upload_id: &str,
        ctx: &TransferCtx,
    ) -> Result<Vec<CompletedPart>, TransferError> {
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
                    let (r, data) = blocking(move || {
                        let data = r.next_part(len);
                        (r, data)
                    })
                    .await;
                    reader = Some(r);
                    let data = data?;
                    let number = (next + 1) as i32;
                    next += 1;
                    let remote = self.clone();
                    let key = key.to_string();
                    let upload_id = upload_id.to_string();
                    let ctx2 = ctx.clone();
                    let body = Bytes::from(data);
                    let payload = PayloadHash::for_blob(&src.etag, false, self.https());
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
                                .content_length(body.len() as i64)
                                .body(ByteStream::from(body.clone()));
                            let signing = payload.interceptor();
                            async move {
                                match signing {
                                    Some(i) => req.customize().interceptor(i).send().await,
                                    None => req.send().await,
                                }
                            }
                        }, "write to", &key)
                        .await?;
                        ctx2.progress.add_bytes(body.len() as u64);
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

    pub async fn download_blob(
        &self,
        key: &str,
        writer: BlobWriter,
        size: u64,
        ctx: &TransferCtx,
    ) -> Result<PathBuf, TransferError> {
        let mut writer = Some(writer);
        if size > ctx.multipart_threshold {
            self.download_ranged(key, &mut writer, size, ctx).await?;
        } else {
            let _slot = ctx.slot().await;
            self.download_stream(key, &mut writer, ctx).await?;
        }
        let writer = writer.expect("writer is put back after each write");
        Ok(blocking(move || writer.finish()).await?)
    }

    /// One GET streamed into the writer; after a dropped connection it resumes where it stopped.
    async fn download_stream(
        &self,
        key: &str,
        writer: &mut Option<BlobWriter>,
        ctx: &TransferCtx,
    ) -> Result<(), TransferError> {
        let mut attempt = 0;
        loop {
            let offset = writer.as_ref().map_or(0, BlobWriter::written);
            let result = async {
                let mut req = self.client.get_object().bucket(&self.bucket).key(key);
                if offset > 0 {
                    req = req.range(format!("bytes={offset}-"));
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| self.error(e, "read from", key))?;
                let mut body = out.body;
                let mut batch = BytesMut::new();
                loop {
                    let chunk = self.next_chunk(&mut body, key).await;
                    let end = !matches!(chunk, Ok(Some(_)));
                    if let Ok(Some(c)) = &chunk {
                        batch.extend_from_slice(c);
                    }
                    if (end || batch.len() >= WRITE_BATCH) && !batch.is_empty() {
                        let n = batch.len() as u64;
                        write_off_thread(writer, vec![batch.split().freeze()]).await?;
                        ctx.progress.add_bytes(n);
                    }
                    match chunk {
                        Ok(Some(_)) => {}
                        Ok(None) => return Ok::<(), TransferError>(()),
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            .await;
            match result {
                Err(TransferError::Remote(e)) => {
                    tokio::time::sleep(ctx.policy.next_try(attempt, e)?).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Parallel ranged GETs, consumed in order so the hash sees the bytes once, in sequence.
    async fn download_ranged(
        &self,
        key: &str,
        writer: &mut Option<BlobWriter>,
        size: u64,
        ctx: &TransferCtx,
    ) -> Result<(), TransferError> {
        let part_size = ctx.part_size_for(size);
        let count = size.div_ceil(part_size);
        let mut inflight = FuturesOrdered::new();
        let mut next = 0u64;
        loop {
            tokio::select! {
                biased;
                Some(done) = inflight.next(), if !inflight.is_empty() => {
                    let (chunks, _permit): (Vec<Bytes>, _) = done?;
                    write_off_thread(writer, chunks).await?;
                }
                permit = ctx.reserve(part_size), if next < count && inflight.len() < ctx.workers => {
                    let start = next * part_size;
                    let end = (start + part_size).min(size) - 1;
                    next += 1;
                    let remote = self.clone();
                    let key = key.to_string();
                    let ctx2 = ctx.clone();
                    inflight.push_back(AbortOnDrop(tokio::spawn(async move {
                        let _slot = ctx2.slot().await;
                        let chunks = ctx2.policy.run(|| remote.get_range(&key, start, end)).await?;
                        ctx2.progress.add_bytes(end - start + 1);
                        Ok::<_, RemoteError>((chunks, permit))
                    })));
                }
                else => break,
            }
        }
        Ok(())
    }

    /// The bytes `start..=end` of `key`, as the chunks they arrived in: joining them into one
    /// buffer would cost a copy and a fresh part-sized allocation per part.
    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<Vec<Bytes>, RemoteError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(format!("bytes={start}-{end}"))
            .send()
            .await
            .map_err(|e| self.error(e, "read from", key))?;
        let expected = (end - start + 1) as usize;
        let mut body = out.body;
        let mut chunks = Vec::new();
        let mut received = 0;
        while let Some(chunk) = self.next_chunk(&mut body, key).await? {
            received += chunk.len();
            chunks.push(chunk);
            if received > expected {
                break;
            }
        }
        if received != expected {
            // A short body is a cut connection; a long one means the object is not what the
            // manifest says. Either way this range is unusable.
            return Err(RemoteError::Transient {
                detail: format!(
                    "{key}: expected {expected} bytes in range {start}-{end}, got {received}"
                ),
                code: "ShortRead".into(),
            });
        }
        Ok(chunks)
    }

    async fn next_chunk(
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

/// The innermost cause ("Connection refused (os error 111)") rather than the whole chain.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// Writes `chunks` through the writer on a blocking thread; the writer travels there and back.
async fn write_off_thread(
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

/// The file a multipart upload reads, part after part, hashing each byte once.
struct PartReader {
    file: std::fs::File,
    path: PathBuf,
    verifier: Verifier,
}

impl PartReader {
    fn next_part(&mut self, len: u64) -> Result<Vec<u8>, WriteError> {
        let data = read_part(&mut self.file, &self.path, len)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn offline_remote() -> S3Remote {
        let creds = Credentials {
            access_key: "GK0".into(),
            secret_key: crate::config::Secret::new("s".into()),
            session_token: None,
            source: CredentialSource::Config,
        };
        S3Remote::new(Some("http://127.0.0.1:9"), "b", None, &creds, None, None).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_refused_first_write_is_the_only_one_sent() {
        let remote = offline_remote();
        let sent = std::sync::atomic::AtomicUsize::new(0);
        let writes = (0..16).map(|_| {
            remote.gated(|| async {
                sent.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                Err::<(), _>(RemoteError::AccessDenied {
                    bucket: "b".into(),
                    action: "write to",
                    code: "AccessDenied".into(),
                })
            })
        });
        let results = futures::future::join_all(writes).await;
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        assert!(results
            .iter()
            .all(|r| matches!(r, Err(RemoteError::AccessDenied { .. }))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writes_run_concurrently_once_one_went_through() {
        let remote = offline_remote();
        let transient = remote
            .gated(|| async {
                Err::<(), _>(RemoteError::Transient {
                    detail: "503".into(),
                    code: "SlowDown".into(),
                })
            })
            .await;
        assert!(transient.is_err());
        remote.gated(|| async { Ok(()) }).await.unwrap();
        let inflight = std::sync::atomic::AtomicUsize::new(0);
        let peak = std::sync::atomic::AtomicUsize::new(0);
        let writes = (0..8).map(|_| {
            remote.gated(|| async {
                let now = inflight.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                inflight.fetch_sub(1, Ordering::SeqCst);
                Ok::<(), RemoteError>(())
            })
        });
        futures::future::join_all(writes).await;
        assert!(peak.load(Ordering::SeqCst) > 1, "writes were serialized");
    }

    #[test]
    fn regions_from_endpoints() {
        assert_eq!(
            default_region(Some("https://s3.us-west-000.backblazeb2.com")),
            "us-west-000"
        );
        assert_eq!(
            default_region(Some("https://s3.eu-west-1.amazonaws.com")),
            "eu-west-1"
        );
        assert_eq!(default_region(Some("http://127.0.0.1:3900")), "us-east-1");
        assert_eq!(default_region(None), "us-east-1");
    }

    #[test]
    fn user_agents() {
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(
            user_agent(Some("https://s3.us-west-000.backblazeb2.com")),
            format!("b2ai-hfcache/{v}")
        );
        assert_eq!(
            user_agent(Some("http://localhost:3900")),
            format!("hf-cache-sync/{v}")
        );
        assert_eq!(user_agent(None), format!("hf-cache-sync/{v}"));
    }

    fn dispatch_failure(
        e: aws_sdk_s3::error::ConnectorError,
    ) -> SdkError<
        aws_sdk_s3::operation::get_object::GetObjectError,
        aws_sdk_s3::config::http::HttpResponse,
    > {
        SdkError::dispatch_failure(e)
    }

    #[test]
    fn a_connection_closed_mid_answer_is_retried_without_stopping_the_run() {
        use aws_sdk_s3::error::ConnectorError;
        let r = offline_remote();
        let closed =
            ConnectorError::other("connection closed before message completed".into(), None);
        let e = r.error(dispatch_failure(closed), "read from", "blobs/x");
        assert!(matches!(e, RemoteError::Transient { .. }), "{e:?}");
        assert!(e.is_retryable() && !e.is_fatal());
        let reset = ConnectorError::io("Connection reset by peer (os error 104)".into());
        let e = r.error(dispatch_failure(reset), "read from", "blobs/x");
        assert!(matches!(e, RemoteError::Transient { .. }), "{e:?}");
        // Nobody listening is a wrong endpoint, not a blip.
        let refused = ConnectorError::io("Connection refused (os error 111)".into());
        let e = r.error(dispatch_failure(refused), "read from", "blobs/x");
        assert!(matches!(e, RemoteError::Unreachable { .. }), "{e:?}");
        assert!(e.is_fatal());
    }

    #[test]
    fn error_chains_read_as_text_without_debug_dumps() {
        let inner = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "end of file");
        let outer = aws_sdk_s3::primitives::ByteStreamError::from(inner);
        let text = error_chain(&outer);
        assert!(text.contains("end of file"), "{text}");
        assert!(
            !text.contains("Error {") && !text.contains("kind:"),
            "{text}"
        );
    }

    #[test]
    fn hosts() {
        assert_eq!(
            host_of("https://s3.x.backblazeb2.com:443/path"),
            "s3.x.backblazeb2.com"
        );
        assert!(is_aws("https://s3.amazonaws.com"));
        assert!(!is_aws("http://127.0.0.1:3900"));
    }
}
