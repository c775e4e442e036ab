//! How an upload's body is signed. SigV4 signs a hash of the body by default, a second SHA-256
//! pass over every byte we already hash to verify it. Over HTTPS, TLS protects the body, so
//! parts go as `UNSIGNED-PAYLOAD` (as the AWS SDKs and rclone send them); a blob named by its
//! sha256 already has its payload hash, which the server then checks for free.

use aws_runtime::auth::PayloadSigningOverride;
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextMut;
use aws_sdk_s3::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_s3::error::BoxError;

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
}
