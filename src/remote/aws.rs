//! The AWS conventions S3 users already rely on: the SDK's default credential chain (profiles,
//! SSO, web identity, container and instance credentials), the profile's region, and a company
//! CA bundle (`AWS_CA_BUNDLE`, `SSL_CERT_FILE`) added to the trusted roots.
//!
//! hf-cache-sync 0.1 got all of this from boto3; here each piece comes from aws-config, wrapped
//! only to record which source answered, so `doctor` can say so without printing a secret.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, future, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::Region;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_types::os_shim_internal::{Env, Fs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::config::ConfigError;
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
) -> crate::config::StorageSettings {
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
    crate::config::StorageSettings {
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
fn profile_source() -> String {
    if profile_value("sso_session").is_some() || profile_value("sso_start_url").is_some() {
        "sso".into()
    } else {
        format!("profile:{}", profile_name())
    }
}

/// What the chain did on its latest resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ChainOutcome {
    #[default]
    Untried,
    /// Credentials came from this source (`profile:team`, `sso`, `web_identity`, …).
    Found(String),
    /// No source had credentials; the sources tried, in order.
    NotFound(Vec<String>),
    /// A source that applies failed (an expired SSO session, a refused role).
    Failed { source: String, detail: String },
}

/// The SDK's default chain after the environment (already looked at by `config`): the shared
/// profile, web identity, container credentials, instance metadata; first one that has
/// credentials wins, as in every AWS SDK.
#[derive(Clone)]
pub struct CredentialChain {
    providers: Arc<Vec<(String, SharedCredentialsProvider)>>,
    outcome: Arc<Mutex<ChainOutcome>>,
}

impl std::fmt::Debug for CredentialChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.providers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("CredentialChain")
            .field("sources", &names)
            .finish()
    }
}

impl CredentialChain {
    pub fn new(region: &str, http: Option<&HttpsClient>) -> CredentialChain {
        let mut conf = ProviderConfig::default().with_region(Some(Region::new(region.to_string())));
        if let Some(http) = http {
            // STS and SSO are HTTPS too: behind a TLS-inspecting proxy they need the same CA.
            conf = conf.with_http_client(http.client.clone());
        }
        let providers = vec![
            (
                profile_source(),
                SharedCredentialsProvider::new(
                    aws_config::profile::ProfileFileCredentialsProvider::builder()
                        .configure(&conf)
                        .build(),
                ),
            ),
            (
                "web_identity".to_string(),
                SharedCredentialsProvider::new(
                    aws_config::web_identity_token::WebIdentityTokenCredentialsProvider::builder()
                        .configure(&conf)
                        .build(),
                ),
            ),
            (
                "container".to_string(),
                SharedCredentialsProvider::new(
                    aws_config::ecs::EcsCredentialsProvider::builder()
                        .configure(&conf)
                        .build(),
                ),
            ),
            (
                "instance_metadata".to_string(),
                SharedCredentialsProvider::new(
                    aws_config::imds::credentials::ImdsCredentialsProvider::builder()
                        .configure(&conf)
                        .build(),
                ),
            ),
        ];
        CredentialChain {
            providers: Arc::new(providers),
            outcome: Arc::default(),
        }
    }

    pub fn outcome(&self) -> ChainOutcome {
        self.outcome.lock().expect("not poisoned").clone()
    }

    fn record(&self, outcome: ChainOutcome) {
        *self.outcome.lock().expect("not poisoned") = outcome;
    }

    /// Runs the chain now, for `doctor`: the source that answered and the access key id, or
    /// what was tried and why nothing answered.
    pub async fn probe(&self) -> Result<(String, String), String> {
        match self.resolve().await {
            Ok(creds) => match self.outcome() {
                ChainOutcome::Found(source) => Ok((source, creds.access_key_id().to_string())),
                _ => Ok(("aws_chain".into(), creds.access_key_id().to_string())),
            },
            Err(_) => Err(self
                .failure()
                .unwrap_or_else(|| "the AWS credential chain found nothing".into())),
        }
    }

    /// Why the latest resolution failed, if it did.
    pub fn failure(&self) -> Option<String> {
        match self.outcome() {
            ChainOutcome::NotFound(tried) => Some(format!(
                "none set in the environment or the config file, and none from {}",
                tried.join(", ")
            )),
            ChainOutcome::Failed { source, detail } => Some(format!("{source}: {detail}")),
            ChainOutcome::Untried | ChainOutcome::Found(_) => None,
        }
    }

    async fn resolve(&self) -> provider::Result {
        let mut tried = Vec::new();
        for (name, provider) in self.providers.iter() {
            match provider.provide_credentials().await {
                Ok(creds) => {
                    self.record(ChainOutcome::Found(name.clone()));
                    return Ok(creds);
                }
                // "Not configured here": the next source may be.
                Err(CredentialsError::CredentialsNotLoaded(_)) => tried.push(name.clone()),
                Err(e) => {
                    self.record(ChainOutcome::Failed {
                        source: name.clone(),
                        detail: readable_chain(&e),
                    });
                    return Err(e);
                }
            }
        }
        self.record(ChainOutcome::NotFound(tried.clone()));
        Err(CredentialsError::not_loaded(format!(
            "no credentials from {}",
            tried.join(", ")
        )))
    }
}

impl ProvideCredentials for CredentialChain {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.resolve())
    }
}

/// An error and its causes as one line of text: each distinct message once, no debug dump
/// (the SDK's providers wrap one cause in several layers that repeat it).
fn readable_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p == &text) {
            parts.push(text);
        }
        current = e.source();
    }
    parts.join(": ")
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

/// The SDK's HTTPS client with the bundle's certificates added to the system roots.
#[derive(Debug, Clone)]
pub struct HttpsClient {
    client: aws_sdk_s3::config::SharedHttpClient,
}

impl HttpsClient {
    pub fn new(bundle: &CaBundle) -> Result<HttpsClient, ConfigError> {
        let pem = read_bundle(&bundle.path).map_err(|why| ConfigError::Usage {
            message: format!("{}: {why}", bundle.describe()),
            hint: format!(
                "point {} at a PEM file holding your company's CA certificate(s), or unset it",
                bundle.var
            ),
        })?;
        let trust = TrustStore::default().with_pem_certificate(pem);
        let context = TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .map_err(|e| ConfigError::Invalid(format!("{}: {e}", bundle.describe())))?;
        let client = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .tls_context(context)
            .build_https();
        Ok(HttpsClient { client })
    }

    pub fn shared(&self) -> aws_sdk_s3::config::SharedHttpClient {
        self.client.clone()
    }
}

/// The bundle's certificates that the TLS library accepts, as PEM. The HTTPS client panics on a
/// certificate it cannot parse, so each one is checked here; a bundle without a single usable
/// certificate is an error (a wrong path or a DER file would otherwise trust nothing new).
fn read_bundle(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read the CA bundle: {e}"))?;
    let text = String::from_utf8_lossy(&text);
    const END: &str = "-----END CERTIFICATE-----";
    let mut kept = String::new();
    for block in text.split_inclusive(END) {
        let Some(start) = block.find("-----BEGIN CERTIFICATE-----") else {
            continue;
        };
        if !block.ends_with(END) {
            continue;
        }
        let pem = &block[start..];
        let usable = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .is_ok_and(|ders| {
                let mut roots = rustls::RootCertStore::empty();
                !ders.is_empty() && ders.into_iter().all(|d| roots.add(d).is_ok())
            });
        if usable {
            kept.push_str(pem);
            kept.push('\n');
        }
    }
    if kept.is_empty() {
        return Err("no PEM certificate in the CA bundle".into());
    }
    Ok(kept.into_bytes())
}

/// True when a connection failed because the server's certificate was not trusted (or did not
/// match its name): a setup problem, never worth a retry.
pub fn is_certificate_error(chain: &str) -> bool {
    let lower = chain.to_lowercase();
    [
        "invalid peer certificate",
        "certificate verify failed",
        "unknownissuer",
    ]
    .iter()
    .any(|m| lower.contains(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUGYMHu4E0Ye6gYj5x6YFfIcELyTkwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGdGVzdGNhMB4XDTI0MDEwMTAwMDAwMFoXDTM0MDEwMTAwMDAw
MFowETEPMA0GA1UEAwwGdGVzdGNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
-----END CERTIFICATE-----
";

    #[test]
    fn a_bundle_without_a_usable_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(read_bundle(&path)
            .unwrap_err()
            .contains("no PEM certificate"));
        // A truncated certificate is skipped rather than handed to the TLS client.
        std::fs::write(&path, CA).unwrap();
        assert!(read_bundle(&path).is_err());
        let err = read_bundle(&dir.path().join("missing.pem")).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn usable_certificates_are_kept_and_the_rest_dropped() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let good = params.self_signed(&key).unwrap().pem();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.pem");
        // A system-style bundle: comments, a broken entry, then a real CA.
        std::fs::write(&path, format!("# company roots\n{CA}\n{good}")).unwrap();
        let kept = String::from_utf8(read_bundle(&path).unwrap()).unwrap();
        assert_eq!(kept.trim(), good.trim());
    }

    #[test]
    fn error_chains_read_once_each() {
        #[derive(Debug)]
        struct Layer(&'static str, Option<Box<Layer>>);
        impl std::fmt::Display for Layer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for Layer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|l| l as _)
            }
        }
        let inner = Layer("no cached token", None);
        let err = Layer(
            "loading",
            Some(Box::new(Layer("loading", Some(Box::new(inner))))),
        );
        assert_eq!(readable_chain(&err), "loading: no cached token");
    }

    #[test]
    fn certificate_failures_are_recognised() {
        assert!(is_certificate_error(
            "io error: invalid peer certificate: UnknownIssuer"
        ));
        assert!(!is_certificate_error("Connection refused"));
    }
}
