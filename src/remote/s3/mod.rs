//! The S3-compatible remote (AWS S3, Backblaze B2, Cloudflare R2, MinIO, Garage) on aws-sdk-s3:
//! the client and the small requests (LIST, GET and PUT of manifests and refs, DELETE).
//!
//! Retries are ours (see `net::retry::RetryPolicy`), not the SDK's, so body-stream failures and
//! request failures follow the same rule. Blob transfers live in [`transfer`], the translation
//! of the SDK's errors in [`errors`], what every request carries in [`interceptors`].

mod delete;
mod errors;
mod interceptors;
mod payload;
#[cfg(test)]
mod tests;
mod transfer;

use crate::remote::Access;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Region, RequestChecksumCalculation, ResponseChecksumValidation,
    StalledStreamProtectionConfig,
};
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::Client;
use bytes::Bytes;

use super::aws::{CredentialChain, HttpsClient};
use super::{ObjectInfo, RemoteError};
use crate::config::aws::CaBundle;
use crate::config::{ConfigError, CredentialSource, Credentials};
use payload::{PayloadHash, Upload};

pub use interceptors::{default_region, http_date_secs, user_agent};
use interceptors::{is_aws, ServerDate, UserAgent};
pub use transfer::abort_open_uploads;

/// How long a request may wait for the server's answer (`HF_CACHE_SYNC_TIMEOUT` sets both).
const READ_TIMEOUT: Duration = Duration::from_secs(120);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A body that delivers nothing for this long is treated as a dropped connection.
const IDLE_BODY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct S3Remote {
    client: Client,
    bucket: String,
    endpoint: String,
    region: String,
    /// A download body silent for this long is a dropped connection.
    idle_timeout: Duration,
    /// How long a request may wait for the server's answer, counted from its start.
    read_timeout: Duration,
    /// The `Date` header of the latest response, for `doctor`'s clock check.
    server_date: Arc<Mutex<Option<String>>>,
    write_gate: Arc<WriteGate>,
    /// The AWS default chain, when no keys were given directly.
    chain: Option<CredentialChain>,
    /// The extra CAs trusted for this endpoint, named in certificate errors.
    ca_bundle: Option<CaBundle>,
    /// The team prefix keys go under, for [`S3Remote::describe`] only.
    prefix: String,
    /// Which keys are in use and where they come from, and what to check when they are
    /// rejected: named in the error.
    credential_origin: String,
    credential_fix: String,
}

/// Until one write has gone through, writes are sent one at a time: a key that cannot write
/// (a read-only team key) is found out by a single refused request, and no other write is sent.
#[derive(Debug, Default)]
struct WriteGate {
    proven: AtomicBool,
    /// Held while the first write is in flight; the refusal that closed the gate, if one did.
    refused: tokio::sync::Mutex<Option<RemoteError>>,
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
                return Err(ConfigError::Usage {
                    message: format!("storage.endpoint {ep:?} is not a URL"),
                    hint: "set storage.endpoint (or B2_ENDPOINT) to https://… (or http://…, or \
                           file:///path for a directory remote)"
                        .into(),
                });
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
                    .connect_timeout(CONNECT_TIMEOUT)
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
            read_timeout: timeout.unwrap_or(READ_TIMEOUT),
            server_date,
            write_gate: Arc::default(),
            chain,
            ca_bundle: ca_bundle.cloned(),
            prefix: String::new(),
            credential_origin: credentials.origin(),
            credential_fix: credentials.fix(),
        })
    }

    /// Names `prefix` (the team prefix keys go under) when the remote is described.
    pub fn with_prefix(mut self, prefix: &str) -> S3Remote {
        self.prefix = prefix.trim_matches('/').to_string();
        self
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
            Access::List,
            &self.bucket,
        )
        .await
        .map(|_| ())
    }

    /// Runs an SDK call under the retry policy, translating its errors.
    async fn call<T, E, F, Fut>(
        &self,
        mut op: F,
        action: Access,
        key: &str,
    ) -> Result<T, RemoteError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<
            Output = Result<T, SdkError<E, aws_sdk_s3::config::http::HttpResponse>>,
        >,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        crate::net::retry::RetryPolicy::default()
            .run(|| {
                let fut = op();
                async move { fut.await.map_err(|e| self.error(e, action, key)) }
            })
            .await
    }

    /// `s3://bucket/prefix at https://endpoint`: the URL `--remote` takes, and where it is.
    /// `s3://bucket[/prefix]`: what JSON documents name the remote by.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix.trim_end_matches('/'))
        }
    }

    pub fn describe(&self) -> String {
        let prefix = if self.prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", self.prefix)
        };
        format!("s3://{}{prefix} at {}", self.bucket, self.endpoint)
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
                    Access::List,
                    prefix,
                )
                .await?;
            for obj in page.contents() {
                if let Some(key) = obj.key() {
                    out.push(ObjectInfo {
                        key: key.to_string(),
                        size: obj.size().unwrap_or(0).max(0) as u64,
                        etag: obj.e_tag().map(|e| e.trim_matches('"').to_string()),
                        last_modified: obj
                            .last_modified()
                            .and_then(|t| std::time::SystemTime::try_from(*t).ok()),
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
        let policy = crate::net::retry::RetryPolicy::default();
        let result = policy
            .run(|| async {
                let out = self
                    .client
                    .get_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| self.error(e, Access::Read, key))?;
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
        self.put_signed(key, &Upload::whole(body, PayloadHash::Computed), false)
            .await
    }

    /// Writes `key` unless it exists (`If-None-Match: *`): `Ok(false)` when the store says it
    /// does. Stores that ignore the header (Garage) write it regardless.
    pub async fn put_new(&self, key: &str, body: Bytes) -> Result<bool, RemoteError> {
        let upload = Upload::whole(body, PayloadHash::Computed);
        match self.put_signed(key, &upload, true).await {
            Ok(()) => Ok(true),
            Err(e)
                if e.code()
                    .is_some_and(|c| c.starts_with("PreconditionFailed")) =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn put_signed(
        &self,
        key: &str,
        upload: &Upload,
        only_new: bool,
    ) -> Result<(), RemoteError> {
        self.gated(|| {
            self.call(
                || {
                    let req = self
                        .client
                        .put_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .set_if_none_match(only_new.then(|| "*".to_string()))
                        .content_length(upload.len() as i64)
                        .body(upload.stream());
                    upload
                        .customize(req.customize(), CONNECT_TIMEOUT, self.read_timeout)
                        .send()
                },
                Access::Write,
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
                Access::Read,
                key,
            )
            .await;
        match head {
            Ok(h) => Ok(Some(h.content_length().unwrap_or(0).max(0) as u64)),
            Err(RemoteError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A URL that lets whoever holds it GET `key` without credentials until `ttl` has passed:
    /// signed (query-string SigV4) with this remote's keys, region, endpoint and addressing
    /// style. Signing sends nothing; the AWS chain may be asked for keys first.
    pub async fn presign_get(&self, key: &str, ttl: Duration) -> Result<String, RemoteError> {
        let config = PresigningConfig::expires_in(ttl).map_err(|e| RemoteError::Other {
            detail: format!("cannot sign a URL for {key} valid {ttl:?}: {e}"),
            code: String::new(),
        })?;
        let signed = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| self.error(e, Access::Read, key))?;
        Ok(signed.uri().to_string())
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
            Access::Delete,
            key,
        )
        .await
        .map(|_| ())
    }
}
