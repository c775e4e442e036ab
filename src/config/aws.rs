//! The AWS conventions the configuration follows where hf-cache-sync 0.1's own settings are
//! silent: the selected profile and its region, `AWS_ENDPOINT_URL(_S3)`, `AWS_REGION`, and a
//! company CA bundle (`AWS_CA_BUNDLE`, else `SSL_CERT_FILE`).

use std::path::PathBuf;

use aws_types::os_shim_internal::{Env, Fs};

use crate::env::{self, EnvVars};

/// The profile the SDK reads: `AWS_PROFILE`, else `default`.
pub fn profile_name() -> String {
    env::var(EnvVars::AWS_PROFILE).unwrap_or_else(|| "default".into())
}

/// The shared config and credentials files (`~/.aws/config`, `~/.aws/credentials`, or
/// `AWS_CONFIG_FILE` / `AWS_SHARED_CREDENTIALS_FILE`), parsed by the SDK's own parser. `None`
/// when there are none or they do not parse: the credential chain reports that itself.
fn load_profiles() -> Option<aws_config::profile::ProfileSet> {
    // The SDK's loader is async in name only: it reads with std::fs and never awaits I/O.
    futures::executor::block_on(aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &Default::default(),
        None,
    ))
    .ok()
}

/// A value of the selected profile (`region`, `sso_session`, …).
fn profile_value(key: &str) -> Option<String> {
    let profiles = load_profiles()?;
    let value = profiles.get_profile(&profile_name())?.get(key)?.trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// Endpoint and region as hf-cache-sync 0.1 resolves them (`B2_*`, then the file), then, for
/// what neither sets, the AWS SDK conventions: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`;
/// `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's region.
pub fn with_aws_fallbacks(
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
) -> super::StorageSettings {
    let from_env = |names: &[&'static str]| {
        names
            .iter()
            .find_map(|n| env::var(n).map(|v| (v.trim().to_string(), *n)))
    };
    let (endpoint, endpoint_from) = match endpoint {
        Some(e) => (Some(e), None),
        None => match from_env(&[EnvVars::AWS_ENDPOINT_URL_S3, EnvVars::AWS_ENDPOINT_URL]) {
            Some((e, name)) => (Some(e), Some(name)),
            None => (None, None),
        },
    };
    let (region, region_from) = match region {
        Some(r) => (Some(r), None),
        None => match from_env(&[EnvVars::AWS_REGION, EnvVars::AWS_DEFAULT_REGION]) {
            Some((r, name)) => (Some(r), Some(name.to_string())),
            None => match profile_region() {
                Some(r) => (Some(r), Some(format!("the AWS profile {}", profile_name()))),
                None => (None, None),
            },
        },
    };
    super::StorageSettings {
        endpoint,
        endpoint_from,
        bucket,
        region,
        region_from,
        ca_bundle: CaBundle::from_env(),
    }
}

/// The selected profile's `region`, as the SDKs use it when nothing else names one.
pub fn profile_region() -> Option<String> {
    profile_value("region")
}

/// How the profile's credentials are obtained, as `doctor` names it: `sso` for an SSO profile,
/// else `profile:<name>` (static keys, assumed roles, `credential_process`).
pub fn profile_source() -> String {
    if profile_value("sso_session").is_some() || profile_value("sso_start_url").is_some() {
        "sso".into()
    } else {
        format!("profile:{}", profile_name())
    }
}

/// An extra CA bundle to trust beside the system roots, and the variable that named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaBundle {
    pub var: &'static str,
    pub path: PathBuf,
}

impl CaBundle {
    /// `AWS_CA_BUNDLE`, else `SSL_CERT_FILE`, when set.
    pub fn from_env() -> Option<CaBundle> {
        [EnvVars::AWS_CA_BUNDLE, EnvVars::SSL_CERT_FILE]
            .into_iter()
            .find_map(|var| {
                env::var(var).map(|path| CaBundle {
                    var,
                    path: PathBuf::from(path),
                })
            })
    }

    /// `AWS_CA_BUNDLE=/etc/company-ca.pem`, for messages.
    pub fn describe(&self) -> String {
        format!("{}={}", self.var, self.path.display())
    }
}
