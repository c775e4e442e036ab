//! The checks made before any request: the config file, and the endpoint, bucket, region and
//! credentials as configured. Keys are named by where they came from, never shown whole.

use super::Check;
use crate::config::{
    ConfigError, CredentialSource, Secret, Settings, CONFIG_FILE_NAME, TEMPLATE_BUCKET,
};
use crate::env::EnvVars;
use crate::remote::{default_region, RemoteError};

pub(super) fn config_check(settings: &Settings, error: Option<&ConfigError>) -> Check {
    const NAME: &str = "Config file";
    if let Some(e) = error {
        let hint = match e {
            ConfigError::Read { .. } => {
                "check the --config path, or run `hf-cache-sync init` to write a config file".into()
            }
            _ => e.hint().unwrap_or_else(|| {
                "fix or remove the file (`hf-cache-sync init --force` writes a fresh template)"
                    .into()
            }),
        };
        return Check::failed(NAME, e.to_string(), hint);
    }
    match &settings.config_path {
        Some(path) => Check::ok(NAME, format!("{} (parsed)", path.display())),
        None => Check::ok(
            NAME,
            format!(
                "none (looked for ./{CONFIG_FILE_NAME} and ~/{CONFIG_FILE_NAME}); using the \
                 environment"
            ),
        ),
    }
}

/// Endpoint, bucket, region and credentials as configured, before any request.
pub(super) fn s3_settings_checks(settings: &Settings, bucket: Option<&str>) -> Vec<Check> {
    let storage = &settings.storage;
    let tls = match (&storage.ca_bundle, storage.endpoint.as_deref()) {
        (_, Some(ep)) if ep.starts_with("http://") => String::new(),
        (Some(bundle), _) => format!("; trusting system roots + {}", bundle.describe()),
        (None, _) => String::new(),
    };
    let from = storage
        .endpoint_from
        .map(|name| format!(" (from {name})"))
        .unwrap_or_default();
    let endpoint = match storage.endpoint.as_deref() {
        None => Check::ok("Endpoint", format!("(not set: AWS S3){tls}")),
        Some(ep) if ep.starts_with("https://") || ep.starts_with("http://") => {
            Check::ok("Endpoint", format!("{ep}{from}{tls}"))
        }
        Some(ep) => Check::failed(
            "Endpoint",
            format!("{ep:?} is not a URL"),
            format!(
                "set storage.endpoint (or {}) to https://…, or file:///path for a directory remote",
                EnvVars::B2_ENDPOINT
            ),
        ),
    };
    let bucket = match bucket {
        Some(TEMPLATE_BUCKET) => Check::failed(
            "Bucket",
            format!("{TEMPLATE_BUCKET} is the placeholder `hf-cache-sync init` writes"),
            format!(
                "set storage.bucket in the config file (or {}) to your bucket's name",
                EnvVars::B2_BUCKET
            ),
        ),
        Some(b) => Check::ok("Bucket", b),
        None => Check::failed(
            "Bucket",
            "not set",
            format!(
                "set storage.bucket in the config file or {} (`hf-cache-sync init` writes a \
                 template)",
                EnvVars::B2_BUCKET
            ),
        ),
    };
    let region = match (&storage.region, &storage.region_from) {
        (Some(r), Some(from)) => Check::ok("Region", format!("{r} (from {from})")),
        (Some(r), None) => Check::ok("Region", r.clone()),
        (None, _) => Check::ok(
            "Region",
            format!(
                "{} (default; set storage.region or {} to change it)",
                default_region(storage.endpoint.as_deref()),
                EnvVars::B2_REGION
            ),
        ),
    };
    vec![endpoint, bucket, region]
}

/// Where the keys come from, never what they are: the key id masked, the secret and any
/// session token never shown. `chain` is the AWS chain's answer when no key was set directly.
pub(super) fn credentials_check(
    settings: &Settings,
    chain: Option<Result<(String, String), RemoteError>>,
) -> Check {
    const NAME: &str = "Credentials";
    let creds = &settings.credentials;
    if creds.source == CredentialSource::AwsChain {
        return match chain {
            Some(Ok((source, key_id))) => Check::ok(
                NAME,
                format!(
                    "source {source} (AWS credential chain): key id {}",
                    Secret::new(key_id).masked()
                ),
            ),
            Some(Err(e)) => Check::failed(NAME, e.to_string(), e.hint().unwrap_or_default()),
            None => Check::skipped(NAME, "the remote could not be opened"),
        };
    }
    let from = creds.names();
    let token = if creds.session_token.is_some() {
        ", session token set"
    } else {
        ""
    };
    Check::ok(
        NAME,
        format!(
            "source {} ({from}): key id {}, secret {}{token}",
            creds.source.as_str(),
            Secret::new(creds.access_key.clone()).masked(),
            creds.secret_key.masked()
        ),
    )
}
