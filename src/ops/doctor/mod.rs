//! `doctor`'s checks of the configuration, credentials, remote and cache dir, as a report. Every
//! check runs even when an earlier one fails, as the full picture is what debugging a setup needs;
//! one that depends on a failed one is reported as skipped. Secrets are only ever shown masked.

mod cache;
mod config;
mod remote;

use std::ffi::OsStr;

use serde::Serialize;

use crate::config::{ConfigError, CredentialSource, Settings};
use crate::manifest::Layout;
use crate::remote::{standalone_chain, Remote, RemoteSpec};
use cache::{cache_dir_check, cache_modes_check, symlink_check};
use config::{config_check, credentials_check, s3_settings_checks};
use remote::remote_checks;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Worth knowing but not a failure: a read-only key, which is all pulling needs.
    Warning,
    Failed,
    /// Could not run because a check it depends on failed.
    Skipped,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub hint: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    pub fn failed(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Failed,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn warning(
        name: &'static str,
        detail: impl Into<String>,
        hint: impl Into<String>,
    ) -> Check {
        Check {
            name,
            status: Status::Warning,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    pub fn skipped(name: &'static str, why: &str) -> Check {
        Check {
            name,
            status: Status::Skipped,
            detail: format!("skipped: {why}"),
            hint: None,
        }
    }
}

/// Every check, in the order they are shown.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub command: &'static str,
    pub ok: bool,
    pub failed: usize,
    pub checks: Vec<Check>,
}

pub struct DoctorOptions<'a> {
    /// Why the config file could not be read, reported as the first check.
    pub config_error: Option<&'a ConfigError>,
    /// A key (or folder) that may not write is a failure, not a note.
    pub require_write: bool,
    /// `--remote`: the remote to check instead of the configured one.
    pub remote: Option<&'a OsStr>,
    /// Remote failures carry the server's error code.
    pub verbose: bool,
}

pub async fn run(settings: &Settings, opts: DoctorOptions<'_>) -> DoctorReport {
    let mut checks = vec![config_check(settings, opts.config_error)];

    let spec = RemoteSpec::resolve(settings, opts.remote);
    let dir_root = spec.as_ref().ok().and_then(RemoteSpec::root);
    let is_dir = dir_root.is_some();
    match dir_root {
        Some(root) => checks.push(Check::ok(
            "Endpoint",
            format!("directory remote at {}", root.display()),
        )),
        None => checks.extend(s3_settings_checks(
            settings,
            spec.as_ref().ok().and_then(RemoteSpec::bucket),
        )),
    }
    let cache = cache_dir_check(&settings.cache_dir);
    let cache_ok = cache.status == Status::Ok;
    let cache_missing = cache.status == Status::Warning;

    // A remote we cannot even open (no bucket, an unreadable CA bundle) skips the network
    // checks; the reason is already a failed row above.
    // Offline (HF_HUB_OFFLINE), a bucket is not contacted: its checks are skipped, saying why.
    let opened = match &spec {
        Ok(spec) => super::refuse_offline(spec)
            .and_then(|()| Remote::open(spec, settings))
            .map(|r| (r, Layout::new(spec.prefix())))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let offline = !is_dir && crate::env::offline().is_some();
    if offline {
        checks.push(Check::warning(
            "Offline",
            format!(
                "{} is set: the bucket is not contacted",
                crate::env::offline().unwrap_or_default()
            ),
            "unset it (or set it to 0) to check the bucket",
        ));
    }
    // Keys from the AWS chain are only known once the chain has run.
    let mut have_credentials = true;
    if !is_dir {
        let chain = match &opened {
            Ok((remote, _)) => remote.credential_chain().await,
            // No remote to ask through (no bucket yet): the chain still says what it finds.
            _ if settings.credentials.source == CredentialSource::AwsChain && !offline => {
                Some(standalone_chain(settings).await)
            }
            _ => None,
        };
        let check = credentials_check(settings, chain);
        have_credentials = check.status == Status::Ok;
        checks.push(check);
    }
    checks.push(cache);
    match opened {
        Ok((remote, layout)) if have_credentials => {
            checks.extend(remote_checks(&remote, &layout, opts.verbose, opts.require_write).await)
        }
        other => {
            let why = match other {
                _ if spec.is_err() => "no bucket configured".to_string(),
                Ok(_) => "no credentials".to_string(),
                Err(why) => why,
            };
            for name in [
                "Bucket reachable",
                "Read permission",
                "Write permission",
                "Clock",
            ] {
                checks.push(Check::skipped(name, &why));
            }
        }
    }

    if cache_ok {
        checks.push(symlink_check(&settings.cache_dir));
        checks.push(cache_modes_check(&settings.cache_dir));
    } else {
        let why = if cache_missing {
            "the cache dir does not exist yet"
        } else {
            "the cache dir is not usable"
        };
        checks.push(Check::skipped("Symlinks", why));
    }

    let failed = checks.iter().filter(|c| c.status == Status::Failed).count();
    DoctorReport {
        command: "doctor",
        ok: failed == 0,
        failed,
        checks,
    }
}
