//! Every environment variable the tool reads, named in one place.
//!
//! The B2/AWS names match hf-cache-sync 0.1 so existing `.env` files and CI secrets keep working;
//! the `HF_*` names are huggingface_hub's own.

pub struct EnvVars;

impl EnvVars {
    pub const B2_KEY_ID: &'static str = "B2_APPLICATION_KEY_ID";
    pub const B2_KEY: &'static str = "B2_APPLICATION_KEY";
    pub const B2_ENDPOINT: &'static str = "B2_ENDPOINT";
    pub const B2_BUCKET: &'static str = "B2_BUCKET";
    pub const B2_REGION: &'static str = "B2_REGION";
    pub const AWS_ACCESS_KEY_ID: &'static str = "AWS_ACCESS_KEY_ID";
    pub const AWS_SECRET_ACCESS_KEY: &'static str = "AWS_SECRET_ACCESS_KEY";
    /// Temporary credentials (STS, SSO exports) come as a key pair plus this token.
    pub const AWS_SESSION_TOKEN: &'static str = "AWS_SESSION_TOKEN";
    pub const AWS_PROFILE: &'static str = "AWS_PROFILE";
    pub const AWS_REGION: &'static str = "AWS_REGION";
    pub const AWS_DEFAULT_REGION: &'static str = "AWS_DEFAULT_REGION";
    /// The S3 endpoint, then the endpoint of every AWS service (the SDKs' convention).
    pub const AWS_ENDPOINT_URL_S3: &'static str = "AWS_ENDPOINT_URL_S3";
    pub const AWS_ENDPOINT_URL: &'static str = "AWS_ENDPOINT_URL";
    /// A PEM bundle of extra trusted CAs: the AWS CLI's and SDKs' name, then OpenSSL's.
    pub const AWS_CA_BUNDLE: &'static str = "AWS_CA_BUNDLE";
    pub const SSL_CERT_FILE: &'static str = "SSL_CERT_FILE";
    pub const HF_HUB_CACHE: &'static str = "HF_HUB_CACHE";
    pub const HF_HOME: &'static str = "HF_HOME";
    /// Where huggingface_hub puts `HF_HOME` when it is unset: `$XDG_CACHE_HOME/huggingface`.
    pub const XDG_CACHE_HOME: &'static str = "XDG_CACHE_HOME";
    /// The Hub to fall back to (default the public Hub).
    pub const HF_ENDPOINT: &'static str = "HF_ENDPOINT";
    /// The Hub token, then the file holding it (default `$HF_HOME/token`).
    pub const HF_TOKEN: &'static str = "HF_TOKEN";
    pub const HF_TOKEN_PATH: &'static str = "HF_TOKEN_PATH";
    /// huggingface_hub's offline switches: no request leaves the machine.
    pub const HF_HUB_OFFLINE: &'static str = "HF_HUB_OFFLINE";
    pub const TRANSFORMERS_OFFLINE: &'static str = "TRANSFORMERS_OFFLINE";
    /// huggingface_hub writes snapshots as plain files, without symlinks to `blobs/`.
    pub const HF_HUB_DISABLE_SYMLINKS: &'static str = "HF_HUB_DISABLE_SYMLINKS";
    pub const MULTIPART_THRESHOLD: &'static str = "HF_CACHE_SYNC_MULTIPART_THRESHOLD";
    pub const PART_SIZE: &'static str = "HF_CACHE_SYNC_PART_SIZE";
    pub const WORKERS: &'static str = "HF_CACHE_SYNC_WORKERS";
    /// The cap on the bytes a run moves per second (`transfer.limit_rate`).
    pub const LIMIT_RATE: &'static str = "HF_CACHE_SYNC_LIMIT_RATE";
    /// Seconds a request may wait for the server's answer, and a download may go without data.
    pub const TIMEOUT: &'static str = "HF_CACHE_SYNC_TIMEOUT";
    /// Age after which another run's unfinished multipart upload counts as abandoned.
    pub const STALE_UPLOAD_AGE: &'static str = "HF_CACHE_SYNC_STALE_UPLOAD_AGE";
    /// How long to wait for a lock another process holds before giving up.
    pub const LOCK_TIMEOUT: &'static str = "HF_CACHE_SYNC_LOCK_TIMEOUT";
}

/// A set, non-empty environment variable (0.1 treats empty as unset, and so do we).
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A value huggingface_hub reads as a set switch: `1`, `ON`, `YES` or `TRUE`, in any case.
pub fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

/// A switch set the way huggingface_hub reads one.
pub fn is_true(name: &str) -> bool {
    var(name).is_some_and(|v| truthy(&v))
}

/// The name of the offline switch `var` has set: `HF_HUB_OFFLINE`, or `TRANSFORMERS_OFFLINE`
/// as huggingface_hub also honours it.
pub fn offline_in(var: &dyn Fn(&str) -> Option<String>) -> Option<&'static str> {
    [EnvVars::HF_HUB_OFFLINE, EnvVars::TRANSFORMERS_OFFLINE]
        .into_iter()
        .find(|name| var(name).is_some_and(|v| truthy(&v)))
}

/// The offline switch that is set in the environment, as `NAME=value`.
pub fn offline() -> Option<String> {
    offline_in(&var).map(|name| format!("{name}={}", var(name).unwrap_or_default()))
}
