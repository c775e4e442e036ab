//! The SDK's errors as [`RemoteError`] kinds a person can act on.

use crate::remote::Access;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use super::S3Remote;
use crate::remote::RemoteError;
use crate::text::error_chain;

impl S3Remote {
    /// Turns an SDK error into something a person can act on.
    pub(super) fn error<E>(
        &self,
        err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
        action: Access,
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
                if crate::net::tls::is_certificate_error(&full) {
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

    /// The object a request was for; empty for requests on the bucket itself (which pass the
    /// bucket's name as their key).
    fn object_key(&self, key: &str) -> String {
        if key == self.bucket {
            String::new()
        } else {
            key.to_string()
        }
    }

    /// The server refused the keys: which keys, from where, and what to check.
    fn rejected(&self, code: String) -> RemoteError {
        RemoteError::Credentials {
            endpoint: self.endpoint.clone(),
            code,
            origin: self.credential_origin.clone(),
            fix: self.credential_fix.clone(),
        }
    }

    pub(super) fn classify(
        &self,
        status: u16,
        code: String,
        message: String,
        action: Access,
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
            return self.rejected(code_for_user);
        }
        let code = code_for_user;
        let code_name = code.split(' ').next().unwrap_or("").to_string();
        match code_name.as_str() {
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "InvalidToken"
            | "ExpiredToken"
            | "InvalidSignature"
            | "Unauthorized" => self.rejected(code),
            "AccessDenied" | "AllAccessDisabled" | "Forbidden" => RemoteError::AccessDenied {
                bucket: self.bucket.clone(),
                action,
                code,
                key: self.object_key(key),
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
            // A request the store does not offer (DeleteObjects on some servers): asking again
            // will not help, the caller falls back to another way.
            "NotImplemented" => RemoteError::Other {
                detail: format!("{key}: server answered {status} {code}"),
                code,
            },
            "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout" => {
                RemoteError::Transient {
                    detail: format!("{key}: server answered {status} {code}"),
                    code,
                }
            }
            _ => match status {
                401 => self.rejected(code),
                403 => RemoteError::AccessDenied {
                    bucket: self.bucket.clone(),
                    action,
                    code,
                    key: self.object_key(key),
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
}

/// The innermost cause ("Connection refused (os error 111)") rather than the whole chain.
pub(super) fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
