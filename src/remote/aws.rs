//! The AWS conventions S3 users already rely on: the SDK's default credential chain (profiles,
//! SSO, web identity, container and instance credentials), the profile's region, and a company
//! CA bundle (`AWS_CA_BUNDLE`, `SSL_CERT_FILE`) added to the trusted roots.
//!
//! hf-cache-sync 0.1 got all of this from boto3; here each piece comes from aws-config, wrapped
//! only to record which source answered, so `doctor` can say so without printing a secret.

use std::sync::{Arc, Mutex};

use aws_config::provider_config::ProviderConfig;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{self, future, ProvideCredentials, SharedCredentialsProvider};
use aws_sdk_s3::config::Region;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};

use crate::config::aws::{profile_source, CaBundle};
use crate::config::ConfigError;
use crate::text::error_chain;

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
                        detail: error_chain(&e),
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

/// The SDK's HTTPS client with the bundle's certificates added to the system roots.
#[derive(Debug, Clone)]
pub struct HttpsClient {
    client: aws_sdk_s3::config::SharedHttpClient,
}

impl HttpsClient {
    pub fn new(bundle: &CaBundle) -> Result<HttpsClient, ConfigError> {
        let pem = crate::net::tls::read_bundle(&bundle.path).map_err(|why| ConfigError::Usage {
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
            .map_err(|e| ConfigError::Usage {
                message: format!("{}: {e}", bundle.describe()),
                hint: "point AWS_CA_BUNDLE (or SSL_CERT_FILE) at a PEM file of CA certificates"
                    .into(),
            })?;
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

#[cfg(test)]
mod tests {

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
        assert_eq!(crate::text::error_chain(&err), "loading: no cached token");
    }
}
