//! `doctor`: independent checks of the configuration, credentials, remote access and cache dir.
//!
//! Every check runs and is reported even when an earlier one fails, because the full picture is
//! what someone debugging a setup needs. A check that cannot run without an earlier one (no
//! bucket configured, say) is shown as skipped. Secrets are only ever shown masked.

use crate::remote::Access;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use aws_sdk_s3::primitives::{DateTime, DateTimeFormat};
use serde::Serialize;

use super::{App, Outcome, RemoteChoice};
use crate::cache::modes::OwnerOnly;
use crate::config::{
    ConfigError, CredentialSource, Secret, Settings, CONFIG_FILE_NAME, TEMPLATE_BUCKET,
};
use crate::env::EnvVars;
use crate::manifest::{Layout, MAX_REF_BYTES};
use crate::remote::aws::CredentialChain;
use crate::remote::dir::DirRemote;
use crate::remote::error::shell_word;
use crate::remote::s3::default_region;
use crate::remote::{probe_token, Remote, RemoteError, RemoteSpec, WriteProbe};

/// More than this between our clock and the server's is reported; S3 refuses requests signed
/// 15 minutes off.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

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
    fn ok(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    fn failed(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Failed,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    fn warning(name: &'static str, detail: impl Into<String>, hint: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warning,
            detail: detail.into(),
            hint: Some(hint.into()),
        }
    }

    fn skipped(name: &'static str, why: &str) -> Check {
        Check {
            name,
            status: Status::Skipped,
            detail: format!("skipped: {why}"),
            hint: None,
        }
    }
}

#[derive(Debug, Serialize)]
struct DoctorReport {
    command: &'static str,
    ok: bool,
    failed: usize,
    checks: Vec<Check>,
}

pub async fn run(
    app: &App,
    config_error: Option<ConfigError>,
    require_write: bool,
    remote: RemoteChoice,
) -> Result<Outcome> {
    let settings = &app.settings;
    let verbose = app.printer.verbose;
    let mut checks = vec![config_check(settings, config_error.as_ref())];

    let spec = RemoteSpec::resolve(settings, remote.url());
    let is_dir = matches!(spec, Ok(RemoteSpec::Dir { .. }));
    if is_dir {
        let root = match &spec {
            Ok(RemoteSpec::Dir { root, .. }) => root.display().to_string(),
            _ => unreachable!("checked above"),
        };
        checks.push(Check::ok("Endpoint", format!("directory remote at {root}")));
    } else {
        let bucket = match &spec {
            Ok(RemoteSpec::S3 { bucket, .. }) => Some(bucket.as_str()),
            _ => None,
        };
        checks.extend(s3_settings_checks(settings, bucket));
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
            Ok((Remote::S3(s3), _)) => s3.resolve_chain().await,
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
            checks.extend(remote_checks(&remote, &layout, verbose, require_write).await)
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
    let report = DoctorReport {
        command: "doctor",
        ok: failed == 0,
        failed,
        checks,
    };
    app.printer.result(&report, || human(&report));
    Ok(Outcome::from_failures(failed))
}

fn human(report: &DoctorReport) -> String {
    let width = report
        .checks
        .iter()
        .map(|c| c.name.chars().count())
        .max()
        .unwrap_or(0);
    let mut lines = Vec::new();
    for c in &report.checks {
        let mark = match c.status {
            Status::Ok => "✓",
            Status::Warning => "!",
            Status::Failed => "✗",
            Status::Skipped => "-",
        };
        lines.push(format!("{mark} {:width$}  {}", c.name, c.detail));
        if let Some(hint) = &c.hint {
            lines.push(format!("  {:width$}  hint: {hint}", ""));
        }
    }
    lines.push(String::new());
    let warnings = report
        .checks
        .iter()
        .filter(|c| c.status == Status::Warning)
        .count();
    lines.push(match report.failed {
        0 if warnings > 0 => format!("All checks passed ({warnings} to note)."),
        0 => "All checks passed.".to_string(),
        1 => "1 check failed.".to_string(),
        n => format!("{n} checks failed."),
    });
    lines.join("\n")
}

fn config_check(settings: &Settings, error: Option<&ConfigError>) -> Check {
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
fn s3_settings_checks(settings: &Settings, bucket: Option<&str>) -> Vec<Check> {
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
fn credentials_check(
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

/// The AWS credential chain run on its own, for a setup whose remote cannot be opened.
async fn standalone_chain(settings: &Settings) -> Result<(String, String), RemoteError> {
    let storage = &settings.storage;
    let region = storage
        .region
        .clone()
        .unwrap_or_else(|| default_region(storage.endpoint.as_deref()));
    CredentialChain::new(&region, None)
        .probe()
        .await
        .map_err(|detail| RemoteError::NoCredentials {
            endpoint: storage.endpoint.clone().unwrap_or_else(|| "AWS S3".into()),
            detail,
        })
}

fn cache_dir_check(dir: &Path) -> Check {
    const NAME: &str = "Cache dir";
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Check::failed(
                NAME,
                format!("{} is not a folder", dir.display()),
                cache_dir_hint(),
            )
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return fresh_cache_dir(dir)
        }
        Err(e) => {
            return Check::failed(
                NAME,
                format!("cannot read {}: {e}", dir.display()),
                cache_dir_hint(),
            )
        }
    }
    match tempfile::Builder::new()
        .prefix(".hfcs-doctor-")
        .tempfile_in(dir)
    {
        Ok(_probe) if !crate::cache::holds_repo_folders(dir) => Check::ok(
            NAME,
            format!("{} (writable; no repos in it yet)", dir.display()),
        ),
        Ok(_probe) => Check::ok(NAME, format!("{} (writable)", dir.display())),
        Err(e) => Check::failed(
            NAME,
            format!("{} is not writable: {e}", dir.display()),
            "pull needs to write blobs there: fix the folder's owner or permissions",
        ),
    }
}

fn cache_dir_hint() -> String {
    format!(
        "point --cache-dir, cache.hf_cache_dir, {} or {} at a folder you may write to",
        EnvVars::HF_HUB_CACHE,
        EnvVars::HF_HOME
    )
}

/// A cache dir that does not exist yet, as on a machine that never downloaded a model: pull
/// creates it (folders above it included), so that is a note when the nearest folder that does
/// exist takes new entries, and a failure when it does not.
fn fresh_cache_dir(dir: &Path) -> Check {
    const NAME: &str = "Cache dir";
    let existing = dir
        .ancestors()
        .skip(1)
        .find(|a| std::fs::symlink_metadata(a).is_ok())
        .unwrap_or(Path::new("/"));
    let writable = match std::fs::metadata(existing) {
        Ok(meta) if meta.is_dir() => tempfile::Builder::new()
            .prefix(".hfcs-doctor-")
            .tempdir_in(existing)
            .map(drop)
            .map_err(|e| e.to_string()),
        Ok(_) => Err("not a folder".into()),
        Err(e) => Err(e.to_string()),
    };
    match writable {
        Ok(()) => Check::warning(
            NAME,
            format!(
                "{} does not exist yet; the first pull creates it (in {}, which is writable)",
                dir.display(),
                existing.display()
            ),
            "nothing to fix: `hf-cache-sync pull` (or a download with huggingface_hub) creates it",
        ),
        Err(why) => Check::failed(
            NAME,
            format!(
                "{} does not exist and cannot be created: {}: {why}",
                dir.display(),
                existing.display()
            ),
            cache_dir_hint(),
        ),
    }
}

/// How many entries the modes checks look at: enough for any real repo, and a bound on the time
/// `doctor` spends on a cache or a shared folder of many thousand blobs (on NFS, say).
const MODES_LIMIT: usize = 20_000;

/// Files in the cache (blobs, refs, snapshot folders) that only their owner may read: on a GPU
/// node bootstrapped as root and read by a container running as another user, or in a team
/// cache, nobody else can load those models. A note, not a failure: a cache of one's own may
/// well be private.
fn cache_modes_check(dir: &Path) -> Check {
    const NAME: &str = "Cache file modes";
    match crate::cache::modes::survey_cache(dir, MODES_LIMIT) {
        Ok(found) => modes_check(NAME, dir, &found, "other users"),
        Err(e) => Check::skipped(NAME, &format!("cannot read {}: {e}", dir.display())),
    }
}

/// Files in a directory remote that only their owner may read: other machines' users pull
/// nothing from them ("access denied" while `list` works).
async fn remote_modes_check(dir: &DirRemote) -> Check {
    const NAME: &str = "Remote file modes";
    let (remote, root) = (dir.clone(), dir.root().to_path_buf());
    match crate::task::blocking(move || remote.owner_only(MODES_LIMIT)).await {
        Ok(found) => modes_check(NAME, &root, &found, "users of other machines"),
        Err(e) => Check::skipped(NAME, &format!("cannot read {}: {e}", root.display())),
    }
}

/// The report of a modes check of `root`: a warning naming what only its owner may read.
fn modes_check(name: &'static str, root: &Path, found: &OwnerOnly, others: &str) -> Check {
    let checked = if found.truncated {
        format!("the first {} entries", found.checked)
    } else {
        format!("{} entries", found.checked)
    };
    if found.checked == 0 {
        return Check::ok(name, "nothing in it to check yet");
    }
    if found.count == 0 {
        return Check::ok(name, format!("readable by other users ({checked} checked)"));
    }
    let examples = found
        .examples
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Check::warning(
        name,
        format!(
            "{} of {checked} can be read by their owner only, e.g. {examples}",
            found.count
        ),
        format!(
            "{others} cannot read them: `chmod -R a+rX {}` (or g+rX for a shared group) \
             fixes them; files written from now on get the mode of any new file, so run with \
             umask 022 (or 002 for a shared group)",
            shell_word(&root.display().to_string())
        ),
    )
}

/// Relative symlinks are how huggingface_hub links snapshots to blobs; without them it copies
/// every file, doubling disk use.
fn symlink_check(dir: &Path) -> Check {
    const NAME: &str = "Symlinks";
    let result = (|| -> std::io::Result<bool> {
        let probe = tempfile::Builder::new()
            .prefix(".hfcs-doctor-")
            .tempdir_in(dir)?;
        std::fs::write(probe.path().join("target"), b"ok")?;
        crate::cache::write::make_symlink(Path::new("target"), &probe.path().join("link"))?;
        Ok(std::fs::read(probe.path().join("link"))? == b"ok")
    })();
    match result {
        Ok(true) => Check::ok(NAME, "relative symlinks work in the cache dir"),
        Ok(false) => Check::failed(
            NAME,
            "a symlink in the cache dir does not read back its target",
            "put the cache on a filesystem with symlink support",
        ),
        Err(e) => Check::failed(
            NAME,
            format!("cannot create a symlink in the cache dir: {e}"),
            "huggingface_hub and pull fall back to copies (more disk); on Windows enable \
             Developer Mode, elsewhere use a filesystem with symlink support",
        ),
    }
}

fn remote_failure(name: &'static str, e: &RemoteError, fallback: &str, verbose: bool) -> Check {
    let mut detail = e.to_string();
    if verbose {
        if let Some(code) = e.code() {
            detail.push_str(&format!(" [{code}]"));
        }
    }
    Check::failed(name, detail, e.hint().unwrap_or_else(|| fallback.into()))
}

/// Reachability, read and write permission, and the server's clock.
async fn remote_checks(
    remote: &Remote,
    layout: &Layout,
    verbose: bool,
    require_write: bool,
) -> Vec<Check> {
    let mut checks = Vec::new();
    let reachable = match remote {
        Remote::S3(s3) => s3.probe_bucket().await,
        Remote::Dir(dir) => dir.check_root(),
    };
    let name = match remote {
        Remote::S3(_) => "Bucket reachable",
        Remote::Dir(_) => "Remote directory",
    };
    // Denied HEAD alone (some scoped keys) still lets the read and write probes say more.
    let go_on = match &reachable {
        Ok(()) => {
            checks.push(Check::ok(name, remote.describe()));
            true
        }
        Err(e) => {
            let fallback = match remote {
                Remote::S3(_) => "check storage.endpoint, storage.bucket and the credentials",
                Remote::Dir(_) => "create the folder, or fix storage.endpoint (file:///path)",
            };
            checks.push(remote_failure(name, e, fallback, verbose));
            e.denied().is_some()
        }
    };
    if go_on {
        checks.push(read_check(remote, layout, verbose).await);
        checks.push(write_check(remote, layout, verbose, require_write).await);
        if let (Remote::Dir(dir), Ok(())) = (remote, &reachable) {
            checks.push(remote_modes_check(dir).await);
        }
    } else {
        let why = match remote {
            Remote::S3(_) => "the bucket is not reachable",
            Remote::Dir(_) => "the remote directory is not usable",
        };
        checks.push(Check::skipped("Read permission", why));
        checks.push(Check::skipped("Write permission", why));
    }
    if let Remote::S3(s3) = remote {
        // A server that never answered (a refused connection) sent no clock to compare with.
        let date = s3.last_server_date();
        checks.push(match (&date, &reachable) {
            (None, Err(_)) => Check::skipped("Clock", "the server did not answer"),
            _ => clock_check(date.as_deref()),
        });
    }
    checks
}

async fn read_check(remote: &Remote, layout: &Layout, verbose: bool) -> Check {
    const NAME: &str = "Read permission";
    const HINT: &str =
        "the key needs to list and read objects in this bucket (listFiles, readFiles)";
    if let Err(e) = remote.list(&layout.refs_prefix()).await {
        return remote_failure(NAME, &e, HINT, verbose);
    }
    // A key that does not exist answers "not found" only to a key allowed to read.
    let absent = layout.doctor_probe_key(&format!("absent-{}", probe_token()));
    match remote.get(&absent, MAX_REF_BYTES).await {
        Ok(_) => Check::ok(NAME, "list and get allowed"),
        Err(e) => remote_failure(NAME, &e, HINT, verbose),
    }
}

async fn write_check(
    remote: &Remote,
    layout: &Layout,
    verbose: bool,
    require_write: bool,
) -> Check {
    const NAME: &str = "Write permission";
    let key = layout.doctor_probe_key(&probe_token());
    match remote.probe_write(&key).await {
        WriteProbe::Deleted => Check::ok(NAME, format!("wrote and deleted {key}")),
        WriteProbe::WriteFailed(e) => {
            // Read-only keys for developers, write keys for CI is a normal team setup; the
            // same goes for a shared folder only its owner may write.
            if e.denied() == Some(Access::Write) && !require_write {
                let detail = match &e {
                    RemoteError::DirDenied { .. } => {
                        format!("{e} (pull works; push needs write access to the folder)")
                    }
                    _ => "read-only key: pull works; push needs a key with write access".into(),
                };
                return Check::warning(
                    NAME,
                    detail,
                    "nothing to fix for pulling; pass --require-write to make this a failure",
                );
            }
            remote_failure(
                NAME,
                &e,
                "the key needs write access to push (pull works with a read-only key)",
                verbose,
            )
        }
        WriteProbe::DeleteFailed(e) => Check::failed(
            NAME,
            format!("wrote {key} but could not delete it: {e}"),
            format!("push works, but `rm --remote` needs delete permission; remove {key} by hand"),
        ),
    }
}

fn clock_check(server_date: Option<&str>) -> Check {
    const NAME: &str = "Clock";
    let Some(date) = server_date else {
        return Check::skipped(NAME, "the server sent no Date header");
    };
    match clock_skew(date, SystemTime::now()) {
        None => Check::skipped(NAME, &format!("cannot read the server's Date {date:?}")),
        Some(skew) if skew.unsigned_abs() > MAX_CLOCK_SKEW.as_secs() => Check::failed(
            NAME,
            describe_skew(skew),
            "S3 refuses requests signed more than 15 minutes off: sync this machine's clock \
             (NTP, e.g. `timedatectl set-ntp true`)",
        ),
        Some(skew) => Check::ok(NAME, describe_skew(skew)),
    }
}

/// Seconds our clock is ahead of the server's `Date` header (negative: behind).
fn clock_skew(server_date: &str, now: SystemTime) -> Option<i64> {
    let server = DateTime::from_str(server_date.trim(), DateTimeFormat::HttpDate).ok()?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs() as i64;
    Some(now - server.secs())
}

fn describe_skew(skew: i64) -> String {
    match skew {
        // The Date header has one-second resolution and the request took some time.
        -2..=2 => "in step with the server's clock".into(),
        s if s > 0 => format!("this machine's clock is {s}s ahead of the server's"),
        s => format!("this machine's clock is {}s behind the server's", -s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skew_from_http_date() {
        let server = "Sun, 06 Nov 1994 08:49:37 GMT";
        let at = UNIX_EPOCH + Duration::from_secs(784111777);
        assert_eq!(clock_skew(server, at), Some(0));
        assert_eq!(clock_skew(server, at + Duration::from_secs(90)), Some(90));
        assert_eq!(clock_skew(server, at - Duration::from_secs(30)), Some(-30));
        assert_eq!(clock_skew("yesterday", at), None);
    }

    #[test]
    fn large_skew_fails() {
        let now = SystemTime::now();
        let past =
            DateTime::from_secs(now.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64 - 3600)
                .fmt(DateTimeFormat::HttpDate)
                .unwrap();
        let check = clock_check(Some(&past));
        assert_eq!(check.status, Status::Failed);
        assert!(check.detail.contains("ahead"), "{}", check.detail);
        assert_eq!(clock_check(None).status, Status::Skipped);
    }

    #[test]
    fn human_report_has_marks_and_hints() {
        let report = DoctorReport {
            command: "doctor",
            ok: false,
            failed: 1,
            checks: vec![
                Check::ok("Bucket", "b"),
                Check::failed("Write permission", "denied", "use a read-write key"),
                Check::skipped("Clock", "no date"),
            ],
        };
        let text = human(&report);
        assert!(text.contains("✓ Bucket"), "{text}");
        assert!(text.contains("✗ Write permission  denied"), "{text}");
        assert!(text.contains("hint: use a read-write key"), "{text}");
        assert!(text.ends_with("1 check failed."), "{text}");
    }
}
