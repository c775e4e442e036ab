//! Configuration: the YAML file, the environment and `.env`, resolved into [`Settings`].
//!
//! Semantics follow hf-cache-sync 0.1 so existing config files and CI secrets keep working, with one
//! deliberate difference: unknown keys and wrong types are errors instead of being ignored.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::env::{self, EnvVars};

pub const CONFIG_FILE_NAME: &str = ".hf-cache-sync.yaml";
pub const DEFAULT_MULTIPART_THRESHOLD: u64 = 64 * 1024 * 1024;
pub const DEFAULT_WORKERS: usize = 64;
const DEFAULT_MAX_LOCAL_GB: f64 = 50.0;

/// A configuration problem the user must fix; always exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
    /// A command-line argument that names nothing usable, with what would work instead.
    #[error("{message}")]
    Usage { message: String, hint: String },
}

impl ConfigError {
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Parse { .. } => Some(
                "known keys are storage.{endpoint,bucket,region,access_key,secret_key}, \
                 cache.{max_local_gb,sync_xet,hf_cache_dir}, team.{prefix,allow_gated}, \
                 transfer.{workers,multipart_threshold,part_size}; see .hf-cache-sync.yaml.example"
                    .into(),
            ),
            ConfigError::Usage { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    storage: Option<FileStorage>,
    cache: Option<FileCache>,
    team: Option<FileTeam>,
    transfer: Option<FileTransfer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileStorage {
    endpoint: Option<String>,
    bucket: Option<String>,
    region: Option<String>,
    access_key: Option<String>,
    secret_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileCache {
    max_local_gb: Option<f64>,
    sync_xet: Option<bool>,
    hf_cache_dir: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileTeam {
    prefix: Option<String>,
    allow_gated: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct FileTransfer {
    workers: Option<usize>,
    multipart_threshold: Option<SizeValue>,
    part_size: Option<SizeValue>,
}

/// A byte size written either as a number of bytes or as text such as `64MiB`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum SizeValue {
    Bytes(u64),
    Text(String),
}

impl SizeValue {
    fn bytes(&self, what: &str) -> Result<u64, String> {
        match self {
            SizeValue::Bytes(n) => Ok(*n),
            SizeValue::Text(s) => parse_size(s).map_err(|e| format!("{what}: {e}")),
        }
    }
}

/// Parses `64MiB`, `5MB`, `1.5GiB` or a plain byte count.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| format!("invalid size {text:?} (expected e.g. 64MiB, 5MB or a byte count)"))
}

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
}

#[derive(Debug, Clone, Default)]
pub struct StorageSettings {
    pub endpoint: Option<String>,
    /// Where the endpoint came from when not from `B2_ENDPOINT` or the file (`AWS_ENDPOINT_URL_S3`).
    pub endpoint_from: Option<&'static str>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    /// Where the region came from when not from `B2_REGION` or the file (`AWS_REGION`, the profile).
    pub region_from: Option<String>,
    /// Extra CAs to trust for an HTTPS endpoint (`AWS_CA_BUNDLE` or `SSL_CERT_FILE`).
    pub ca_bundle: Option<crate::remote::aws::CaBundle>,
}

#[derive(Debug, Clone)]
pub struct TransferSettings {
    pub workers: usize,
    pub multipart_threshold: u64,
    /// Fixed part size; `None` picks one per object (see `remote::part_size_for`).
    pub part_size: Option<u64>,
    /// How long a request waits for the server and a download for data (`HF_CACHE_SYNC_TIMEOUT`);
    /// `None` keeps the remote's defaults.
    pub timeout: Option<std::time::Duration>,
    /// How long to wait for a lock another process holds (a blob huggingface_hub or another
    /// pull is writing, a repo prune is cleaning) before giving up on it.
    pub lock_timeout: std::time::Duration,
}

/// The default lock wait: the age at which prune considers a partial download abandoned.
pub const DEFAULT_LOCK_TIMEOUT: std::time::Duration = crate::cache::delete::PARTIAL_GRACE;

#[derive(Debug, Clone)]
pub struct Settings {
    /// The config file that was read, if any.
    pub config_path: Option<PathBuf>,
    pub cache_dir: PathBuf,
    pub storage: StorageSettings,
    pub credentials: Credentials,
    pub prefix: String,
    pub allow_gated: bool,
    pub sync_xet: bool,
    /// Local disk budget for `prune`, in GB of 2^30 bytes, as 0.1 counts.
    pub max_local_gb: f64,
    pub transfer: TransferSettings,
    /// Problems worth a warning that do not stop the run (a readable file holding a secret).
    pub warnings: Vec<String>,
}

/// What the command line contributes to the settings.
#[derive(Debug, Default)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads `.env`, finds and parses the config file, and overlays the environment.
    pub fn load(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let mut warnings = load_env_file();
        let config_path = find_config_file(overrides.config.as_deref())?;
        let file = match &config_path {
            Some(path) => parse_file(path)?,
            None => FileConfig::default(),
        };
        if let Some(path) = &config_path {
            let holds_secret = file
                .storage
                .as_ref()
                .and_then(|s| s.secret_key.as_deref())
                .is_some_and(|k| !k.trim().is_empty());
            if holds_secret {
                warnings.extend(exposed_secret_warning(path));
            }
        }
        let mut settings = Self::resolve(file, config_path, overrides)?;
        settings.warnings = warnings;
        Ok(settings)
    }

    /// Settings from the environment and defaults alone, for commands that must run when the
    /// config file is missing or broken (`doctor` reports it, `init --force` replaces it).
    pub fn load_without_file(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let warnings = load_env_file();
        let mut settings = Self::resolve(FileConfig::default(), None, overrides)?;
        settings.warnings = warnings;
        Ok(settings)
    }

    fn resolve(
        file: FileConfig,
        config_path: Option<PathBuf>,
        overrides: &Overrides,
    ) -> Result<Settings, ConfigError> {
        let storage_file = file.storage.unwrap_or_default();
        let cache_file = file.cache.unwrap_or_default();
        let team_file = file.team.unwrap_or_default();
        let transfer_file = file.transfer.unwrap_or_default();
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());

        let storage = crate::remote::aws::with_aws_fallbacks(
            env::var(EnvVars::B2_ENDPOINT).or(nonempty(storage_file.endpoint)),
            env::var(EnvVars::B2_BUCKET).or(nonempty(storage_file.bucket)),
            env::var(EnvVars::B2_REGION).or(nonempty(storage_file.region)),
        );
        let credentials = resolve_credentials(
            nonempty(storage_file.access_key),
            nonempty(storage_file.secret_key),
        );

        let cache_dir = overrides
            .cache_dir
            .clone()
            .or(nonempty(cache_file.hf_cache_dir).map(|d| expand_home(&d)))
            .unwrap_or_else(default_hub_cache);

        let invalid = |path: &Option<PathBuf>, message: String| match path {
            Some(path) => ConfigError::Parse {
                path: path.clone(),
                message,
            },
            None => ConfigError::Invalid(message),
        };

        let mut transfer = TransferSettings {
            workers: transfer_file.workers.unwrap_or(DEFAULT_WORKERS),
            multipart_threshold: match &transfer_file.multipart_threshold {
                Some(v) => v
                    .bytes("transfer.multipart_threshold")
                    .map_err(|m| invalid(&config_path, m))?,
                None => DEFAULT_MULTIPART_THRESHOLD,
            },
            part_size: match &transfer_file.part_size {
                Some(v) => Some(
                    v.bytes("transfer.part_size")
                        .map_err(|m| invalid(&config_path, m))?,
                ),
                None => None,
            },
            timeout: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        };
        validate_transfer(&transfer).map_err(|m| invalid(&config_path, m))?;
        // Values from the environment are checked under their own names: an error must point
        // at the variable, not at a config file that never set it.
        let from_env = |name: &str, e: String| ConfigError::Invalid(format!("{name}: {e}"));
        if let Some(v) = env::var(EnvVars::LOCK_TIMEOUT) {
            transfer.lock_timeout = humantime::parse_duration(v.trim())
                .map_err(|e| format!("invalid duration {v:?}: {e} (expected e.g. 30s, 10m, 2h)"))
                .map_err(|e| from_env(EnvVars::LOCK_TIMEOUT, e))?;
        }
        if let Some(v) = env::var(EnvVars::MULTIPART_THRESHOLD) {
            let n = parse_size(&v)
                .and_then(check_part_bound)
                .map_err(|e| from_env(EnvVars::MULTIPART_THRESHOLD, e))?;
            transfer.multipart_threshold = n;
        }
        if let Some(v) = env::var(EnvVars::PART_SIZE) {
            let n = parse_size(&v)
                .and_then(check_part_bound)
                .map_err(|e| from_env(EnvVars::PART_SIZE, e))?;
            transfer.part_size = Some(n);
        }
        if let Some(v) = env::var(EnvVars::WORKERS) {
            let n = v
                .trim()
                .parse::<usize>()
                .map_err(|_| format!("invalid worker count {v:?} (expected a positive integer)"))
                .and_then(check_workers)
                .map_err(|e| from_env(EnvVars::WORKERS, e))?;
            transfer.workers = n;
        }
        if let Some(v) = env::var(EnvVars::TIMEOUT) {
            transfer.timeout = Some(parse_seconds(&v).map_err(|e| from_env(EnvVars::TIMEOUT, e))?);
        }

        let max_local_gb = cache_file.max_local_gb.unwrap_or(DEFAULT_MAX_LOCAL_GB);
        if !(max_local_gb.is_finite() && max_local_gb >= 0.0) {
            return Err(invalid(
                &config_path,
                format!("cache.max_local_gb: must be a non-negative number, got {max_local_gb}"),
            ));
        }

        Ok(Settings {
            config_path,
            cache_dir,
            storage,
            credentials,
            prefix: normalize_prefix(team_file.prefix.as_deref().unwrap_or("")),
            allow_gated: team_file.allow_gated.unwrap_or(false),
            sync_xet: cache_file.sync_xet.unwrap_or(false),
            max_local_gb,
            transfer,
            warnings: Vec::new(),
        })
    }
}

/// A positive number of seconds (`30`, `2.5`).
pub fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let wrong = || format!("invalid timeout {text:?} (expected a positive number of seconds)");
    let secs: f64 = text.trim().parse().map_err(|_| wrong())?;
    if !(secs.is_finite() && secs > 0.0) {
        return Err(wrong());
    }
    std::time::Duration::try_from_secs_f64(secs).map_err(|_| wrong())
}

/// S3 refuses parts under 5 MiB (except the last), and more than 10,000 of them.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

fn validate_transfer(t: &TransferSettings) -> Result<(), String> {
    check_workers(t.workers).map_err(|e| format!("transfer.workers: {e}"))?;
    check_part_bound(t.multipart_threshold)
        .map_err(|e| format!("transfer.multipart_threshold: {e}"))?;
    if let Some(p) = t.part_size {
        check_part_bound(p).map_err(|e| format!("transfer.part_size: {e}"))?;
    }
    Ok(())
}

fn check_workers(n: usize) -> Result<usize, String> {
    if (1..=256).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between 1 and 256, got {n}"))
    }
}

fn check_part_bound(n: u64) -> Result<u64, String> {
    if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&n) {
        Ok(n)
    } else {
        Err(format!("must be between 5MiB and 5GiB, got {n}"))
    }
}

/// Loads `.env` (from the working directory or a parent), never overriding variables that are
/// already set. Returns a warning when that file holds a secret others may read.
fn load_env_file() -> Vec<String> {
    let Ok(path) = dotenvy::dotenv() else {
        return Vec::new();
    };
    let holds_secret = dotenvy::from_path_iter(&path).is_ok_and(|items| {
        items.filter_map(Result::ok).any(|(k, v)| {
            (k == EnvVars::B2_KEY || k == EnvVars::AWS_SECRET_ACCESS_KEY) && !v.trim().is_empty()
        })
    });
    if holds_secret {
        exposed_secret_warning(&path).into_iter().collect()
    } else {
        Vec::new()
    }
}

/// A file holding a secret key should be readable by its owner alone, as `init` writes it.
#[cfg(unix)]
fn exposed_secret_warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o044 != 0).then(|| {
        format!(
            "{} holds a secret key and is readable by group/others; run: chmod 600 {}",
            path.display(),
            path.display()
        )
    })
}

#[cfg(not(unix))]
fn exposed_secret_warning(_path: &Path) -> Option<String> {
    None
}

/// `team.prefix` without surrounding slashes, as 0.1 builds keys.
pub fn normalize_prefix(prefix: &str) -> String {
    prefix.trim().trim_matches('/').to_string()
}

fn resolve_credentials(access_key: Option<String>, secret_key: Option<String>) -> Credentials {
    // Each pair counts only when whole: a B2 id never pairs with an AWS secret.
    let pairs = [
        (EnvVars::B2_KEY_ID, EnvVars::B2_KEY, CredentialSource::B2Env),
        (
            EnvVars::AWS_ACCESS_KEY_ID,
            EnvVars::AWS_SECRET_ACCESS_KEY,
            CredentialSource::AwsEnv,
        ),
    ];
    for (id_var, key_var, source) in pairs {
        if let (Some(id), Some(key)) = (env::var(id_var), env::var(key_var)) {
            // A session token belongs to the AWS pair it was issued with, never to a B2 key.
            let session_token = (source == CredentialSource::AwsEnv)
                .then(|| env::var(EnvVars::AWS_SESSION_TOKEN).map(Secret::new))
                .flatten();
            return Credentials {
                access_key: id,
                secret_key: Secret::new(key),
                session_token,
                source,
            };
        }
    }
    match (access_key, secret_key) {
        (Some(id), Some(key)) => Credentials {
            access_key: id,
            secret_key: Secret::new(key),
            session_token: None,
            source: CredentialSource::Config,
        },
        _ => Credentials {
            access_key: String::new(),
            secret_key: Secret::default(),
            session_token: None,
            source: CredentialSource::AwsChain,
        },
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ if path == "~" => home_dir().unwrap_or_else(|| PathBuf::from(path)),
        _ => PathBuf::from(path),
    }
}

/// huggingface_hub's resolution: `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn default_hub_cache() -> PathBuf {
    if let Some(dir) = env::var(EnvVars::HF_HUB_CACHE) {
        return expand_home(&dir);
    }
    if let Some(home) = env::var(EnvVars::HF_HOME) {
        return expand_home(&home).join("hub");
    }
    home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".cache")
        .join("huggingface")
        .join("hub")
}

fn find_config_file(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(path) = explicit {
        if !path.is_file() {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        return Ok(Some(path.to_path_buf()));
    }
    let cwd_file = PathBuf::from(CONFIG_FILE_NAME);
    let mut candidates = vec![std::path::absolute(&cwd_file).unwrap_or(cwd_file)];
    if let Some(home) = home_dir() {
        candidates.push(home.join(CONFIG_FILE_NAME));
    }
    Ok(candidates.into_iter().find(|p| p.is_file()))
}

fn parse_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_text(&text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

fn parse_text(text: &str) -> Result<FileConfig, String> {
    // An empty file or a file of comments is an empty configuration, as in 0.1.
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    if value.is_null() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_full_file() {
        let cfg = parse_text(
            "storage:\n  endpoint: http://x\n  bucket: b\ncache:\n  max_local_gb: 10\n  sync_xet: true\nteam:\n  prefix: /t/\n  allow_gated: true\ntransfer:\n  multipart_threshold: 8MiB\n",
        )
        .unwrap();
        assert_eq!(cfg.storage.unwrap().bucket.as_deref(), Some("b"));
        assert_eq!(cfg.cache.unwrap().max_local_gb, Some(10.0));
        assert!(matches!(
            cfg.transfer.unwrap().multipart_threshold,
            Some(SizeValue::Text(_))
        ));
    }

    #[test]
    fn empty_and_comment_only_files_are_empty_configs() {
        assert!(parse_text("").unwrap().storage.is_none());
        assert!(parse_text("# nothing\n").unwrap().storage.is_none());
        assert!(parse_text("storage:\n").unwrap().storage.is_none());
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let err = parse_text("storage:\n  bucket: b\n  buckte: c\n").unwrap_err();
        assert!(err.contains("buckte"), "{err}");
        assert!(err.contains("line 3"), "{err}");
    }

    #[test]
    fn wrong_type_is_an_error() {
        let err = parse_text("cache:\n  sync_xet: maybe\n").unwrap_err();
        assert!(err.contains("sync_xet") || err.contains("line 2"), "{err}");
    }

    #[test]
    fn timeouts_are_positive_seconds() {
        use std::time::Duration;
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds(" 2.5 "), Ok(Duration::from_millis(2500)));
        for bad in ["0", "-1", "abc", "", "inf", "NaN", "1e400", "10s"] {
            let err = parse_seconds(bad).unwrap_err();
            assert!(err.contains("positive number of seconds"), "{bad}: {err}");
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 * 1024 * 1024);
        assert_eq!(parse_size("5MB").unwrap(), 5_000_000);
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn prefix_is_trimmed() {
        assert_eq!(normalize_prefix("/team-a/"), "team-a");
        assert_eq!(normalize_prefix(""), "");
    }

    #[test]
    fn secret_is_masked() {
        let s = Secret::new("abcdefghij".into());
        assert_eq!(format!("{s:?}"), "Secret(****)");
        assert_eq!(s.masked(), "ab****");
        let long = Secret::new("K005abcdefghijklmnopqrstuvwxyz".into());
        assert_eq!(long.masked(), "K005****");
        assert_eq!(Secret::new("abc".into()).masked(), "****");
        assert_eq!(Secret::default().masked(), "(empty)");
    }

    #[test]
    fn transfer_errors_name_where_the_value_came_from() {
        let t = TransferSettings {
            workers: 0,
            multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
            part_size: None,
            timeout: None,
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
        };
        let err = validate_transfer(&t).unwrap_err();
        assert!(err.starts_with("transfer.workers: "), "{err}");
        assert!(check_workers(257).is_err());
        assert_eq!(check_workers(16), Ok(16));
        assert!(check_part_bound(1024).is_err());
        assert!(check_part_bound(MAX_PART_SIZE + 1).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_secret_readable_by_others_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE_NAME);
        std::fs::write(&path, "storage:\n  secret_key: s\n").unwrap();
        for (mode, warned) in [(0o644, true), (0o640, true), (0o604, true), (0o600, false)] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let w = exposed_secret_warning(&path);
            assert_eq!(w.is_some(), warned, "mode {mode:o}: {w:?}");
            if let Some(w) = w {
                assert!(w.contains("chmod 600"), "{w}");
                assert!(!w.contains(": s\n"), "{w}");
            }
        }
    }

    /// Fuzzing the config parser: arbitrary text and YAML built from random keys and values never
    /// panic, and valid files round-trip. `PROPTEST_CASES=100000 cargo test --bin hf-cache-sync
    /// config::tests::fuzz` runs longer.
    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;

        use crate::fuzzing::config;

        const SECTIONS: [&str; 5] = ["storage", "cache", "team", "transfer", "retries"];
        const KEYS: [&str; 16] = [
            "endpoint",
            "bucket",
            "region",
            "access_key",
            "secret_key",
            "max_local_gb",
            "sync_xet",
            "hf_cache_dir",
            "prefix",
            "allow_gated",
            "workers",
            "multipart_threshold",
            "part_size",
            "buckte",
            "",
            "<<",
        ];

        /// YAML scalars and shapes of every kind, including hostile ones.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                any::<f64>().prop_map(|n| format!("{n}")),
                Just("true".to_string()),
                Just("~".to_string()),
                Just("[a, b".to_string()),
                Just("{x: 1}".to_string()),
                Just("\"unclosed".to_string()),
                Just("*alias".to_string()),
                Just("&anchor 5".to_string()),
                Just("!!binary aGk=".to_string()),
                Just("64MiB".to_string()),
                Just("-1".to_string()),
                Just("12QB".to_string()),
                "[ -~]{0,20}",
                any::<String>(),
            ]
        }

        fn yaml_doc() -> impl Strategy<Value = String> {
            let entry = (0..SECTIONS.len(), 0..KEYS.len(), value(), "[ \t]{0,3}");
            proptest::collection::vec(entry, 0..8).prop_map(|entries| {
                let mut text = String::new();
                for (s, k, v, indent) in entries {
                    text.push_str(&format!("{}:\n{indent}  {}: {v}\n", SECTIONS[s], KEYS[k]));
                }
                text
            })
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn arbitrary_text_never_panics(text in any::<String>()) {
                let _ = parse_text(&text);
            }

            #[test]
            fn random_keys_and_values_never_panic(text in yaml_doc()) {
                if let Ok(file) = parse_text(&text) {
                    let _ = Settings::resolve(file, None, &Overrides::default());
                }
            }

            #[test]
            fn sizes_never_panic_and_byte_counts_round_trip(text in any::<String>(), n in any::<u64>()) {
                let _ = parse_size(&text);
                prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
            }

            #[test]
            fn valid_files_round_trip(
                bucket in "[a-z0-9][a-z0-9.-]{2,20}",
                prefix in "[a-zA-Z0-9_/-]{0,20}",
                gb in 0u32..100_000,
                sync in any::<bool>(),
                workers in 1usize..=256,
                part_mib in 5u64..=5120,
            ) {
                let text = format!(
                    "storage:\n  bucket: \"{bucket}\"\ncache:\n  max_local_gb: {gb}\n  sync_xet: {sync}\n\
                     team:\n  prefix: \"{prefix}\"\ntransfer:\n  workers: {workers}\n  part_size: {part_mib}MiB\n"
                );
                let file = parse_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                let settings = Settings::resolve(file, None, &Overrides::default())
                    .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
                prop_assert_eq!(settings.storage.bucket.as_deref(), Some(bucket.as_str()));
                prop_assert_eq!(settings.prefix, normalize_prefix(&prefix));
                prop_assert_eq!(settings.max_local_gb, f64::from(gb));
                prop_assert_eq!(settings.sync_xet, sync);
                prop_assert_eq!(settings.transfer.workers, workers);
                prop_assert_eq!(settings.transfer.part_size, Some(part_mib << 20));
            }

            #[test]
            fn masking_shows_at_most_four_characters(secret in any::<String>()) {
                let masked = Secret::new(secret.clone()).masked();
                let shown = masked.trim_end_matches('*');
                prop_assert!(shown.chars().count() <= 4 || masked == "(empty)");
                if secret.chars().count() >= 8 {
                    prop_assert!(!masked.contains(secret.as_str()));
                }
            }
        }
    }
}
