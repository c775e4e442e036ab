//! Remote failures as kinds a person can act on, and which of them are retried (through the
//! shared [`RetryPolicy`](crate::net::retry::RetryPolicy)).

use std::path::{Path, PathBuf};

use crate::cache::write::WriteError;
use crate::net::retry::{RetryClass, Retryable};

/// A failed remote operation. `code` keeps the server's error code for `-v`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    #[error("not found: {key}")]
    NotFound { key: String },
    /// `origin` says which keys and where they came from; `fix` what to check.
    #[error("credentials rejected by {endpoint}: {origin}")]
    Credentials {
        endpoint: String,
        code: String,
        origin: String,
        fix: String,
    },
    /// `key` is the object (or prefix) the request was for; empty for the bucket itself.
    #[error(
        "access denied: this key cannot {action} bucket {bucket}{}",
        object(key)
    )]
    AccessDenied {
        bucket: String,
        action: Access,
        code: String,
        key: String,
    },
    /// A directory remote's file system refused a request: `path` is the file or folder,
    /// `kind` why (permission denied, a read-only file system), `root` the remote's folder.
    #[error(
        "cannot {} {}: {}",
        dir_verb(*.action, *.creating_dir),
        .path.display(),
        refusal(*.kind)
    )]
    DirDenied {
        root: PathBuf,
        path: PathBuf,
        action: Access,
        /// The refused write was the creation of the folder `path`.
        creating_dir: bool,
        kind: std::io::ErrorKind,
    },
    #[error("bucket {bucket} does not exist at {endpoint}")]
    NoSuchBucket { bucket: String, endpoint: String },
    #[error("remote directory {path} does not exist")]
    NoSuchDir { path: String },
    #[error("bucket {bucket} is not in region {region}")]
    WrongRegion {
        bucket: String,
        region: String,
        code: String,
    },
    /// No key was given and the AWS credential chain found none (or a source of it failed).
    #[error("no credentials for {endpoint}: {detail}")]
    NoCredentials { endpoint: String, detail: String },
    /// The server's TLS certificate is not signed by a trusted CA (or does not match its name).
    #[error("{endpoint}: TLS certificate not trusted ({detail}); trusted: {}", trusted(.bundle))]
    Certificate {
        endpoint: String,
        detail: String,
        /// The extra bundle that was tried, and the variable that named it.
        bundle: Option<(&'static str, std::path::PathBuf)>,
    },
    #[error("cannot reach {endpoint}: {detail}")]
    Unreachable { endpoint: String, detail: String },
    /// Throttling, 5xx, timeouts, resets: worth another try.
    #[error("{detail}")]
    Transient { detail: String, code: String },
    #[error("{detail}")]
    Other { detail: String, code: String },
}

/// A failed blob transfer to or from the remote: the remote's side, or the local one (including
/// content that does not match its name).
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Local(#[from] WriteError),
}

/// What a request tried to do with a bucket (or a remote directory): a denied write means a
/// read-only key, which stops a push at once; a denied delete names the missing permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    List,
    Read,
    Write,
    Delete,
}

impl std::fmt::Display for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Access::List => "list",
            Access::Read => "read from",
            Access::Write => "write to",
            Access::Delete => "delete from",
        })
    }
}

impl RemoteError {
    /// Errors of the set-up, not of the run: the credentials, the CA, the bucket, the directory
    /// or the region is wrong. They exit 2 and name what to fix.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            RemoteError::Credentials { .. }
                | RemoteError::NoCredentials { .. }
                | RemoteError::Certificate { .. }
                | RemoteError::NoSuchBucket { .. }
                | RemoteError::NoSuchDir { .. }
                | RemoteError::WrongRegion { .. }
        )
    }

    /// Errors that will fail every other request the same way: stop the run early.
    pub fn is_fatal(&self) -> bool {
        self.is_configuration()
            || matches!(self, RemoteError::Unreachable { .. })
            || self.denied() == Some(Access::Write)
    }

    /// What the remote refused to let this run do, by a bucket's key or a directory's file
    /// system alike: a write refused means nothing can be pushed.
    pub fn denied(&self) -> Option<Access> {
        match self {
            RemoteError::AccessDenied { action, .. } | RemoteError::DirDenied { action, .. } => {
                Some(*action)
            }
            _ => None,
        }
    }

    /// The same failure, saying it persisted through `tries` attempts.
    fn note_attempts(self, tries: u32) -> RemoteError {
        let note = |detail: String| format!("{detail} (gave up after {tries} attempts)");
        match self {
            RemoteError::Transient { detail, code } => RemoteError::Transient {
                detail: note(detail),
                code,
            },
            RemoteError::Unreachable { endpoint, detail } => RemoteError::Unreachable {
                endpoint,
                detail: note(detail),
            },
            other => other,
        }
    }

    pub fn code(&self) -> Option<&str> {
        match self {
            RemoteError::Credentials { code, .. }
            | RemoteError::AccessDenied { code, .. }
            | RemoteError::WrongRegion { code, .. }
            | RemoteError::Transient { code, .. }
            | RemoteError::Other { code, .. } => Some(code.as_str()).filter(|c| !c.is_empty()),
            RemoteError::NoSuchBucket { .. } => Some("NoSuchBucket"),
            _ => None,
        }
    }

    pub fn hint(&self) -> Option<String> {
        Some(match self {
            RemoteError::Credentials { fix, .. } => fix.clone(),
            RemoteError::NoCredentials { detail, .. } if detail.starts_with("sso:") => {
                "the SSO session has not been started or has expired: run `aws sso login` for \
                 the profile in AWS_PROFILE, then try again"
                    .into()
            }
            RemoteError::NoCredentials { .. } => {
                "export B2_APPLICATION_KEY_ID and B2_APPLICATION_KEY (or AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY), set storage.access_key and storage.secret_key in the \
                 config file, or use an AWS profile (AWS_PROFILE, `aws configure`, \
                 `aws sso login`) or an instance, task or pod role"
                    .into()
            }
            RemoteError::Certificate {
                bundle: None,
                endpoint,
                ..
            } => format!(
                "if {endpoint} uses a company or self-signed CA, point AWS_CA_BUNDLE at a PEM \
                 file holding it: export AWS_CA_BUNDLE=/path/to/company-ca.pem"
            ),
            RemoteError::Certificate {
                bundle: Some((var, path)),
                endpoint,
                ..
            } => format!(
                "{var}={} does not hold the CA that signed {endpoint}'s certificate: add that \
                 CA (PEM) to the file; `openssl s_client -connect HOST:PORT -showcerts` shows \
                 the chain the server sends",
                path.display()
            ),
            RemoteError::AccessDenied {
                action: Access::Write,
                ..
            } => "this key looks read-only: pushing needs a key with write access; \
                 pulling works with a read-only key"
                .into(),
            RemoteError::AccessDenied {
                action: Access::Delete,
                ..
            } => "this key may not delete: removing from the remote needs a key with delete \
                 permission (on B2 the deleteFiles capability); listing and pulling work with a \
                 read-only key"
                .into(),
            RemoteError::AccessDenied { .. } => {
                "check the key's bucket scope and capabilities (listFiles, readFiles, writeFiles)"
                    .into()
            }
            RemoteError::DirDenied {
                kind: std::io::ErrorKind::ReadOnlyFilesystem,
                ..
            } => "the remote folder is on a read-only mount: pulling works; pushing and \
                  removing need it mounted read-write"
                .into(),
            RemoteError::DirDenied {
                action: Access::Write | Access::Delete,
                path,
                ..
            } => format!(
                "this user may not change files there: pushing and removing need write access \
                 to the remote folder (`ls -ld {}` shows its owner and mode); pulling only reads",
                shell_word(&folder_of(path).display().to_string())
            ),
            RemoteError::DirDenied { root, .. } => format!(
                "this user may not read the remote folder: its owner can open it to everyone \
                 with `chmod -R a+rX {}` (or to a shared group with g+rX)",
                shell_word(&root.display().to_string())
            ),
            RemoteError::NoSuchBucket { .. } => {
                "check storage.bucket (or B2_BUCKET) and that storage.endpoint points at the \
                 account and region holding it"
                    .into()
            }
            // Not created on the fly: a shared mount that is not mounted would quietly fill
            // the local disk under its mount point instead.
            RemoteError::NoSuchDir { path } => format!(
                "check the --remote path; if it is right, create it first: mkdir -p {}",
                shell_word(path)
            ),
            RemoteError::WrongRegion { .. } => {
                "set storage.region (or B2_REGION) and storage.endpoint to the bucket's region"
                    .into()
            }
            RemoteError::Unreachable { .. } => {
                "check storage.endpoint (or B2_ENDPOINT), the network, and any proxy or VPN".into()
            }
            _ => return None,
        })
    }
}

/// ` (key blobs/ab…)` naming the object a request was for; nothing for the bucket itself.
fn object(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!(" (key {key})")
    }
}

/// What a directory remote's file system was asked to do, in words about paths.
fn dir_verb(action: Access, creating_dir: bool) -> &'static str {
    match action {
        Access::Write if creating_dir => "create directory",
        Access::Write => "write",
        Access::List => "list",
        Access::Read => "read",
        Access::Delete => "delete",
    }
}

/// Why a file system refused, as `ls` and `cp` say it.
fn refusal(kind: std::io::ErrorKind) -> String {
    match kind {
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::ReadOnlyFilesystem => "read-only file system".into(),
        other => other.to_string(),
    }
}

/// The folder a refused path is in (the path itself when it is one).
fn folder_of(path: &Path) -> &Path {
    if path.is_dir() {
        path
    } else {
        path.parent().unwrap_or(path)
    }
}

/// The roots a TLS connection trusted, for a certificate error.
fn trusted(bundle: &Option<(&'static str, std::path::PathBuf)>) -> String {
    match bundle {
        Some((var, path)) => format!("system roots + {var}={}", path.display()),
        None => "system roots only (AWS_CA_BUNDLE and SSL_CERT_FILE are not set)".into(),
    }
}

/// `text` as one word for a POSIX shell, for commands a hint tells people to run.
pub fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The single retry decision for the remote: throttling, server errors, timeouts and dropped
/// connections are retried; auth errors, a missing bucket or object, and anything else are not.
impl Retryable for RemoteError {
    fn retry_class(&self) -> RetryClass {
        match self {
            RemoteError::Unreachable { .. } => RetryClass::Unreachable,
            RemoteError::Transient { .. } => RetryClass::Busy,
            _ => RetryClass::Never,
        }
    }

    fn after_attempts(self, tries: u32) -> Self {
        self.note_attempts(tries)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::net::retry::RetryPolicy;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/mnt/hf-cache"), "/mnt/hf-cache");
        assert_eq!(shell_word("/mnt/my cache"), "'/mnt/my cache'");
        assert_eq!(shell_word("/mnt/it's"), r"'/mnt/it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn auth_errors_are_never_retried() {
        let creds = RemoteError::Credentials {
            endpoint: "e".into(),
            code: "InvalidAccessKeyId".into(),
            origin: "key id GK0**** from storage.access_key / storage.secret_key (config)".into(),
            fix: "check storage.access_key / storage.secret_key".into(),
        };
        assert_eq!(creds.retry_class(), RetryClass::Never);
        assert!(creds.is_fatal());
        let t = RemoteError::Transient {
            detail: "503".into(),
            code: "SlowDown".into(),
        };
        assert_eq!(t.retry_class(), RetryClass::Busy);
        assert!(!t.is_fatal());
    }

    #[test]
    fn a_denied_delete_says_the_key_may_not_delete() {
        let e = RemoteError::AccessDenied {
            bucket: "b".into(),
            action: Access::Delete,
            code: "AccessDenied".into(),
            key: "team/refs/org__m/main".into(),
        };
        assert_eq!(
            e.to_string(),
            "access denied: this key cannot delete from bucket b (key team/refs/org__m/main)"
        );
        assert!(e.hint().unwrap().contains("delete permission"));
    }

    #[test]
    fn a_directory_remote_speaks_of_paths_not_keys() {
        let denied = |action, creating_dir, kind| RemoteError::DirDenied {
            root: "/mnt/team".into(),
            path: "/mnt/team/blobs".into(),
            action,
            creating_dir,
            kind,
        };
        let e = denied(Access::Write, false, std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "cannot write /mnt/team/blobs: permission denied"
        );
        assert!(e.is_fatal());
        assert!(!e.hint().unwrap().contains("key"), "{:?}", e.hint());
        let e = denied(Access::Write, true, std::io::ErrorKind::ReadOnlyFilesystem);
        assert_eq!(
            e.to_string(),
            "cannot create directory /mnt/team/blobs: read-only file system"
        );
        assert!(e.hint().unwrap().contains("read-only mount"));
        let e = denied(Access::Read, false, std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "cannot read /mnt/team/blobs: permission denied"
        );
        assert!(!e.is_fatal());
        assert!(e.hint().unwrap().contains("chmod -R a+rX /mnt/team"));
        for e in [
            e,
            denied(Access::List, false, std::io::ErrorKind::PermissionDenied),
        ] {
            let text = format!("{e} {}", e.hint().unwrap());
            for s3_word in ["bucket", "key", "capabilit"] {
                assert!(!text.contains(s3_word), "{text}");
            }
        }
    }

    #[test]
    fn throttling_gets_ten_retries_and_the_error_says_so() {
        let p = RetryPolicy::default();
        let slow = || RemoteError::Transient {
            detail: "503 SlowDown".into(),
            code: "SlowDown".into(),
        };
        for attempt in 0..10 {
            assert!(p.next_try(attempt, slow()).is_ok(), "attempt {attempt}");
        }
        let last = p.next_try(10, slow()).unwrap_err();
        assert_eq!(last.to_string(), "503 SlowDown (gave up after 11 attempts)");
        let worst: Duration = (0..10).map(|a| p.backoff(a).max(p.backoff(a))).sum();
        assert!(worst <= Duration::from_secs(60), "{worst:?}");
        let denied = RemoteError::AccessDenied {
            bucket: "b".into(),
            action: Access::Read,
            code: "AccessDenied".into(),
            key: String::new(),
        };
        assert_eq!(
            p.next_try(0, denied).unwrap_err().to_string(),
            "access denied: this key cannot read from bucket b"
        );
    }

    #[tokio::test]
    async fn run_retries_transient_then_succeeds() {
        let p = RetryPolicy {
            unreachable_attempts: 3,
            attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<u32, _> = p
            .run(|| {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(RemoteError::Transient {
                            detail: "x".into(),
                            code: String::new(),
                        })
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<u32, _> = p
            .run(|| {
                calls += 1;
                async {
                    Err(RemoteError::NoSuchBucket {
                        bucket: "b".into(),
                        endpoint: "e".into(),
                    })
                }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }
}
