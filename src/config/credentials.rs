//! Credentials: which pair of keys wins (hf-cache-sync 0.1's order: the B2 pair, the AWS pair,
//! the config file), secrets that never print, and the AWS default chain when none is set.

use std::fmt;

use crate::env::{self, EnvVars};

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Secret(value)
    }
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A hint of which secret is in use: its first characters (4 at most, fewer for short
    /// secrets, none for very short ones), then `****`.
    pub fn masked(&self) -> String {
        if self.0.is_empty() {
            return "(empty)".into();
        }
        let len = self.0.chars().count();
        let shown = (len / 4).min(4);
        let head: String = self.0.chars().take(shown).collect();
        format!("{head}****")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

/// Where the credentials in use came from; `doctor` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialSource {
    B2Env,
    AwsEnv,
    Config,
    /// No keys were set: the AWS SDK's default chain (profile, SSO, web identity, container,
    /// instance metadata) finds them when the remote is first used.
    AwsChain,
}

impl CredentialSource {
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialSource::B2Env => "b2_env",
            CredentialSource::AwsEnv => "aws_env",
            CredentialSource::Config => "config",
            CredentialSource::AwsChain => "aws_chain",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: Secret,
    /// `AWS_SESSION_TOKEN` beside the AWS key pair (temporary credentials).
    pub session_token: Option<Secret>,
    pub source: CredentialSource,
    /// Other sources that were set too but lost to `source` (0.1's order).
    pub overridden: Vec<CredentialSource>,
}

impl CredentialSource {
    /// The variables or config keys a source reads, as people set them.
    pub fn names(self, with_token: bool) -> String {
        match self {
            CredentialSource::B2Env => format!("{} / {}", EnvVars::B2_KEY_ID, EnvVars::B2_KEY),
            CredentialSource::AwsEnv if with_token => format!(
                "{} / {} / {}",
                EnvVars::AWS_ACCESS_KEY_ID,
                EnvVars::AWS_SECRET_ACCESS_KEY,
                EnvVars::AWS_SESSION_TOKEN
            ),
            CredentialSource::AwsEnv => format!(
                "{} / {}",
                EnvVars::AWS_ACCESS_KEY_ID,
                EnvVars::AWS_SECRET_ACCESS_KEY
            ),
            CredentialSource::Config => "storage.access_key / storage.secret_key".into(),
            CredentialSource::AwsChain => {
                "the AWS credential chain (AWS_PROFILE and ~/.aws, SSO, web identity, container \
                 and instance roles)"
                    .into()
            }
        }
    }
}

impl Credentials {
    /// The variables or config keys the keys in use come from.
    pub fn names(&self) -> String {
        self.source.names(self.session_token.is_some())
    }

    /// Which keys are in use, for an error about them: the masked key id, where it comes from
    /// and the sources set too that it won over. Never a secret.
    pub fn origin(&self) -> String {
        if self.source == CredentialSource::AwsChain {
            return format!("keys from {} ({})", self.names(), self.source.as_str());
        }
        let mut text = format!(
            "key id {} from {} ({})",
            Secret::new(self.access_key.clone()).masked(),
            self.names(),
            self.source.as_str()
        );
        if !self.overridden.is_empty() {
            let others: Vec<String> = self
                .overridden
                .iter()
                .map(|s| format!("{} ({})", s.names(false), s.as_str()))
                .collect();
            text.push_str(&format!(
                ", which wins over {}, set too",
                others.join(" and ")
            ));
        }
        text
    }

    /// What to check when the server rejects these keys.
    pub fn fix(&self) -> String {
        match self.source {
            CredentialSource::AwsChain => "check the AWS profile or role in use (AWS_PROFILE, \
                ~/.aws/credentials; `aws sts get-caller-identity` shows who it signs in as), or \
                set B2_APPLICATION_KEY_ID / B2_APPLICATION_KEY or storage.access_key / \
                storage.secret_key"
                .into(),
            _ if !self.overridden.is_empty() => format!(
                "check {}; while they are set, {} {} not used (`hf-cache-sync doctor` shows \
                 which source is)",
                self.names(),
                self.overridden
                    .iter()
                    .map(|s| s.names(false))
                    .collect::<Vec<_>>()
                    .join(" and "),
                if self.overridden.len() == 1 {
                    "is"
                } else {
                    "are"
                }
            ),
            _ => format!(
                "check {} (`hf-cache-sync doctor` checks them)",
                self.names()
            ),
        }
    }
}

pub(super) fn resolve_credentials(
    access_key: Option<String>,
    secret_key: Option<String>,
) -> Credentials {
    // Each pair counts only when whole: a B2 id never pairs with an AWS secret.
    let pairs = [
        (EnvVars::B2_KEY_ID, EnvVars::B2_KEY, CredentialSource::B2Env),
        (
            EnvVars::AWS_ACCESS_KEY_ID,
            EnvVars::AWS_SECRET_ACCESS_KEY,
            CredentialSource::AwsEnv,
        ),
    ];
    let mut found: Vec<Credentials> = Vec::new();
    for (id_var, key_var, source) in pairs {
        if let (Some(id), Some(key)) = (env::var(id_var), env::var(key_var)) {
            // A session token belongs to the AWS pair it was issued with, never to a B2 key.
            let session_token = (source == CredentialSource::AwsEnv)
                .then(|| env::var(EnvVars::AWS_SESSION_TOKEN).map(Secret::new))
                .flatten();
            found.push(Credentials {
                access_key: id,
                secret_key: Secret::new(key),
                session_token,
                source,
                overridden: Vec::new(),
            });
        }
    }
    if let (Some(id), Some(key)) = (access_key, secret_key) {
        found.push(Credentials {
            access_key: id,
            secret_key: Secret::new(key),
            session_token: None,
            source: CredentialSource::Config,
            overridden: Vec::new(),
        });
    }
    let mut found = found.into_iter();
    match found.next() {
        Some(mut winner) => {
            winner.overridden = found.map(|c| c.source).collect();
            winner
        }
        None => Credentials {
            access_key: String::new(),
            secret_key: Secret::default(),
            session_token: None,
            source: CredentialSource::AwsChain,
            overridden: Vec::new(),
        },
    }
}
