//! How an upload's body is signed and sent. SigV4 signs a hash of the body by default, a second
//! SHA-256 pass over every byte we already hash to verify it. Over HTTPS, TLS protects the body,
//! so parts go as `UNSIGNED-PAYLOAD` (as the AWS SDKs and rclone send them); a blob named by its
//! sha256 already has its payload hash, which the server then checks for free. Under a bandwidth
//! cap a blob's body goes as a stream, frame by frame as the run's limiter lets it.

use std::time::Duration;

use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::client::customize::CustomizableOperation;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;
use aws_sdk_s3::primitives::{ByteStream, SdkBody};
use bytes::Bytes;
use sha2::Digest;

use crate::net::rate::RateLimiter;
use crate::net::TransferCtx;

/// The body hash a request is signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadHash {
    /// The SDK hashes the body (plain HTTP without a known hash).
    Computed,
    /// `UNSIGNED-PAYLOAD`: only over HTTPS.
    Unsigned,
    /// The body's sha256, known in advance (64 lowercase hex).
    Known(String),
}

impl PayloadHash {
    /// For a blob upload: its name when that is a sha256 and the body is the whole blob, else
    /// unsigned over HTTPS, else computed.
    pub fn for_blob(etag: &str, whole_blob: bool, https: bool) -> PayloadHash {
        if whole_blob && etag.len() == 64 {
            PayloadHash::Known(etag.to_string())
        } else if https {
            PayloadHash::Unsigned
        } else {
            PayloadHash::Computed
        }
    }

    /// The hash `body` is signed with when it is `streamed` (paced by a bandwidth cap). The SDK
    /// hashes only a body it holds whole and signs a stream `UNSIGNED-PAYLOAD`, which a body
    /// over plain HTTP must not go as: its sha256 is computed here instead, the pass the SDK
    /// would have made. Blocking: call it where the body is read.
    pub fn for_body(self, streamed: bool, body: &[u8]) -> PayloadHash {
        match self {
            PayloadHash::Computed if streamed => {
                PayloadHash::Known(format!("{:x}", sha2::Sha256::digest(body)))
            }
            other => other,
        }
    }

    /// The interceptor that applies it to one request, or `None` for the SDK's default.
    pub fn interceptor(&self) -> Option<SignPayload> {
        match self {
            PayloadHash::Computed => None,
            PayloadHash::Unsigned => Some(SignPayload(PayloadSigningOverride::UnsignedPayload)),
            PayloadHash::Known(sha) => Some(SignPayload(PayloadSigningOverride::Precomputed(
                sha.clone(),
            ))),
        }
    }
}

/// An upload's body, the hash it is signed with, and the bandwidth cap that paces it, if any.
pub struct Upload {
    body: Bytes,
    hash: PayloadHash,
    /// The run's cap, and the longest the body may take at it.
    paced: Option<(RateLimiter, Duration)>,
}

impl Upload {
    /// A body sent whole, at once: a manifest, a ref (small, and no blob bytes).
    pub fn whole(body: Bytes, hash: PayloadHash) -> Upload {
        Upload {
            body,
            hash,
            paced: None,
        }
    }

    /// A blob's bytes, paced by `ctx`'s bandwidth cap when it has one; the hash is then one
    /// made [`PayloadHash::for_body`] a streamed body.
    pub fn blob(body: Bytes, hash: PayloadHash, ctx: &TransferCtx) -> Upload {
        let paced = ctx
            .paced_body_time(body.len() as u64)
            .map(|longest| (ctx.rate.clone(), longest));
        debug_assert!(paced.is_none() || hash != PayloadHash::Computed);
        Upload { body, hash, paced }
    }

    pub fn len(&self) -> u64 {
        self.body.len() as u64
    }

    pub fn into_bytes(self) -> Bytes {
        self.body
    }

    /// The request's body: the bytes whole, or under a cap frame by frame as the limiter lets
    /// them go (a retry sends them again, paced again).
    pub fn stream(&self) -> ByteStream {
        match &self.paced {
            None => ByteStream::from(self.body.clone()),
            Some((rate, _)) => {
                let (body, rate) = (self.body.clone(), rate.clone());
                ByteStream::new(SdkBody::retryable(move || {
                    SdkBody::from_body_1_x(rate.body(body.clone()))
                }))
            }
        }
    }

    /// `op` signed with the body's hash, and for a paced body with a longer read timeout
    /// ([`paced_read_timeout`]); `connect` and `read` are the client's own timeouts.
    pub fn customize<T, E, B>(
        &self,
        op: CustomizableOperation<T, E, B>,
        connect: Duration,
        read: Duration,
    ) -> CustomizableOperation<T, E, B> {
        let op = match self.hash.interceptor() {
            Some(i) => op.interceptor(i),
            None => op,
        };
        let Some((_, longest)) = &self.paced else {
            return op;
        };
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(connect)
            .read_timeout(paced_read_timeout(read, *longest))
            .build();
        op.config_override(aws_sdk_s3::config::Builder::default().timeout_config(timeouts))
    }
}

/// The read timeout of a request whose body may take `longest` at the bandwidth cap. The
/// client's read timeout counts from the request's start, its body included, so the body's
/// time goes on top of `read`: in whole seconds rounded up to a power of two, as the client
/// keeps a connection pool per pair of timeouts.
fn paced_read_timeout(read: Duration, longest: Duration) -> Duration {
    let extra = (longest.as_secs_f64().ceil() as u64)
        .checked_next_power_of_two()
        .unwrap_or(u64::MAX);
    read.saturating_add(Duration::from_secs(extra))
}

/// Tells the signer which payload hash to sign for one request.
#[derive(Debug)]
pub struct SignPayload(PayloadSigningOverride);

impl Intercept for SignPayload {
    fn name(&self) -> &'static str {
        "SignPayload"
    }

    fn modify_before_signing(
        &self,
        _context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(self.0.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sha256_name_is_the_payload_hash_and_https_skips_the_rest() {
        let sha = "a".repeat(64);
        let git = "b".repeat(40);
        assert_eq!(
            PayloadHash::for_blob(&sha, true, false),
            PayloadHash::Known(sha.clone())
        );
        assert_eq!(
            PayloadHash::for_blob(&sha, false, true),
            PayloadHash::Unsigned
        );
        assert_eq!(
            PayloadHash::for_blob(&sha, false, false),
            PayloadHash::Computed
        );
        assert_eq!(
            PayloadHash::for_blob(&git, true, true),
            PayloadHash::Unsigned
        );
        assert_eq!(
            PayloadHash::for_blob(&git, true, false),
            PayloadHash::Computed
        );
        assert!(PayloadHash::Computed.interceptor().is_none());
    }

    #[test]
    fn a_paced_body_has_its_time_at_the_cap_on_top_of_the_read_timeout() {
        let read = Duration::from_secs(120);
        let at = |secs: f64| paced_read_timeout(read, Duration::from_secs_f64(secs)).as_secs();
        assert_eq!(at(0.0), 121);
        assert_eq!(at(0.48), 121);
        assert_eq!(at(1.0), 121);
        assert_eq!(at(1.2), 122);
        assert_eq!(at(491.0), 120 + 512);
        assert_eq!(
            paced_read_timeout(read, Duration::MAX),
            Duration::MAX,
            "saturates"
        );
    }

    #[test]
    fn a_streamed_body_is_hashed_here_unless_its_hash_is_known_or_not_needed() {
        let empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            PayloadHash::Computed.for_body(true, b""),
            PayloadHash::Known(empty_sha.into())
        );
        assert_eq!(
            PayloadHash::Computed.for_body(false, b"x"),
            PayloadHash::Computed
        );
        let sha = "a".repeat(64);
        assert_eq!(
            PayloadHash::Known(sha.clone()).for_body(true, b"x"),
            PayloadHash::Known(sha)
        );
        assert_eq!(
            PayloadHash::Unsigned.for_body(true, b"x"),
            PayloadHash::Unsigned
        );
    }
}
