//! Configuration: the YAML file, the environment and `.env`, resolved into [`Settings`].
//!
//! Semantics follow hf-cache-sync 0.1 so existing config files and CI secrets keep working, with one
//! deliberate difference: unknown keys and wrong types are errors instead of being ignored.

use std::path::{Path, PathBuf};

use crate::env::{self, EnvVars};

pub const CONFIG_FILE_NAME: &str = ".hf-cache-sync.yaml";
/// The bucket name in the template `init` writes: a placeholder, never a real bucket.
pub const TEMPLATE_BUCKET: &str = "my-hf-cache";
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
                 transfer.{workers,multipart_threshold,part_size,limit_rate}, \
                 pull.{fallback,write_through}, serve.from_cache; \
                 `hf-cache-sync init` writes a commented template of them all"
                    .into(),
            ),
            ConfigError::Read { .. } => Some(
                "check the --config path (without --config, ./.hf-cache-sync.yaml and then \
                 ~/.hf-cache-sync.yaml are read); `hf-cache-sync init` writes a config file"
                    .into(),
            ),
            ConfigError::Usage { hint, .. } => Some(hint.clone()),
            _ => None,
        }
    }
}

pub mod aws;
mod credentials;
mod file;
mod rate;
#[cfg(test)]
mod tests;

use credentials::resolve_credentials;
pub use credentials::{CredentialSource, Credentials, Secret};
pub use file::parse_size;
use file::{find_config_file, parse_file, FileConfig};
pub use rate::{Rate, RATE_FORMS};

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
    pub ca_bundle: Option<aws::CaBundle>,
}

#[derive(Debug, Clone)]
pub struct TransferSettings {
    pub workers: usize,
    pub multipart_threshold: u64,
    /// Fixed part size; `None` picks one per object (see `net::ctx::part_size_for`).
    pub part_size: Option<u64>,
    /// How long a request waits for the server and a download for data (`HF_CACHE_SYNC_TIMEOUT`);
    /// `None` keeps the remote's defaults.
    pub timeout: Option<std::time::Duration>,
    /// How long to wait for a lock another process holds (a blob huggingface_hub or another
    /// pull is writing, a repo prune is cleaning) before giving up on it.
    pub lock_timeout: std::time::Duration,
    /// The cap on the bytes a run moves per second, all transfers together; `None`: no cap.
    pub limit_rate: Option<Rate>,
}

/// A source a pull falls back to when the remote lacks a revision or blob, or keeps failing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FallbackSpec {
    /// `hf-hub`: the Hugging Face Hub at `HF_ENDPOINT`.
    Hub,
    /// `s3://bucket[/prefix]` (the configured endpoint and keys) or a directory.
    Remote(std::ffi::OsString),
}

impl FallbackSpec {
    pub const HUB: &'static str = "hf-hub";

    pub fn parse(text: &std::ffi::OsStr) -> FallbackSpec {
        if text == Self::HUB {
            FallbackSpec::Hub
        } else {
            FallbackSpec::Remote(text.to_os_string())
        }
    }

    /// Checks a list of fallbacks: the Hub at most once, and last (it is the source of last
    /// resort, and write-through fills the remotes before it).
    pub fn check_list(list: &[FallbackSpec], what: &str) -> Result<(), String> {
        let hubs = list.iter().filter(|f| **f == FallbackSpec::Hub).count();
        if hubs > 1 || (hubs == 1 && list.last() != Some(&FallbackSpec::Hub)) {
            return Err(format!(
                "{what}: {} may come once, last (the remotes are tried in order before it)",
                Self::HUB
            ));
        }
        if list
            .iter()
            .any(|f| matches!(f, FallbackSpec::Remote(r) if r.is_empty()))
        {
            return Err(format!("{what}: an empty source"));
        }
        Ok(())
    }
}

/// What `pull` and `pull-all` fall back to, and whether they write through.
#[derive(Debug, Clone, Default)]
pub struct PullSettings {
    pub fallback: Vec<FallbackSpec>,
    pub write_through: bool,
}

impl PullSettings {
    fn from_file(file: file::FilePull) -> Result<PullSettings, String> {
        let pull = PullSettings {
            fallback: file
                .fallback
                .unwrap_or_default()
                .iter()
                .map(|f| FallbackSpec::parse(std::ffi::OsStr::new(f.trim())))
                .collect(),
            write_through: file.write_through.unwrap_or(false),
        };
        FallbackSpec::check_list(&pull.fallback, "pull.fallback")?;
        Ok(pull)
    }
}

/// The default lock wait: an hour.
pub const DEFAULT_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60 * 60);

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
    /// How long a partial download must be untouched before `prune` removes it
    /// (`cache.partial_max_age`, a day unless set): until then a pull resumes it.
    pub partial_max_age: std::time::Duration,
    /// `HF_HUB_DISABLE_SYMLINKS`: pulls write snapshot files as plain files, as huggingface_hub
    /// then does.
    pub disable_symlinks: bool,
    pub transfer: TransferSettings,
    pub pull: PullSettings,
    /// `serve.from_cache`: `serve` answers complete revisions from its own cache dir first.
    pub serve_from_cache: bool,
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
        settings.warnings.extend(warnings);
        Ok(settings)
    }

    /// Settings from the environment and defaults alone, for commands that must run when the
    /// config file is missing or broken (`doctor` reports it, `init --force` replaces it).
    pub fn load_without_file(overrides: &Overrides) -> Result<Settings, ConfigError> {
        let warnings = load_env_file();
        let mut settings = Self::resolve(FileConfig::default(), None, overrides)?;
        settings.warnings.extend(warnings);
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
        let pull_file = file.pull.unwrap_or_default();
        let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());

        let storage = aws::with_aws_fallbacks(
            env::var(EnvVars::B2_ENDPOINT).or(nonempty(storage_file.endpoint)),
            env::var(EnvVars::B2_BUCKET).or(nonempty(storage_file.bucket)),
            env::var(EnvVars::B2_REGION).or(nonempty(storage_file.region)),
        );
        let credentials = resolve_credentials(
            nonempty(storage_file.access_key),
            nonempty(storage_file.secret_key),
        );

        let (cache_dir, warnings) = hub_cache_dir(
            overrides
                .cache_dir
                .clone()
                .or(nonempty(cache_file.hf_cache_dir).map(|d| expand_home(&d)))
                .unwrap_or_else(default_hub_cache),
        );

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
            limit_rate: match &transfer_file.limit_rate {
                Some(v) => Some(v.rate().map_err(|e| {
                    invalid(
                        &config_path,
                        format!("transfer.limit_rate: {e}; {RATE_FORMS}, e.g. limit_rate: 50M"),
                    )
                })?),
                None => None,
            },
        };
        validate_transfer(&transfer).map_err(|m| invalid(&config_path, m))?;
        // Values from the environment are checked under their own names: an error must point
        // at the variable, not at a config file that never set it.
        let from_env = |name: &str, e: String| ConfigError::Usage {
            message: format!("{name}: {e}"),
            hint: format!("fix or unset {name}"),
        };
        if let Some(v) = env::var(EnvVars::LOCK_TIMEOUT) {
            transfer.lock_timeout = parse_duration(&v).map_err(|e| ConfigError::Usage {
                message: format!("{}: {e}", EnvVars::LOCK_TIMEOUT),
                hint: DURATION_HINT.into(),
            })?;
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
        if let Some(v) = env::var(EnvVars::LIMIT_RATE) {
            let rate = Rate::parse(&v).map_err(|e| {
                let name = EnvVars::LIMIT_RATE;
                from_env(name, format!("{e}; {RATE_FORMS}, e.g. {name}=50M"))
            })?;
            transfer.limit_rate = Some(rate);
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

        let partial_max_age = match cache_file.partial_max_age.as_deref() {
            None => crate::cache::delete::PARTIAL_AGE,
            Some(text) => parse_duration(text).map_err(|e| {
                invalid(
                    &config_path,
                    format!("cache.partial_max_age: {e}; {DURATION_HINT}"),
                )
            })?,
        };

        let pull = PullSettings::from_file(pull_file).map_err(|m| invalid(&config_path, m))?;

        Ok(Settings {
            config_path,
            cache_dir,
            storage,
            credentials,
            prefix: normalize_prefix(team_file.prefix.as_deref().unwrap_or("")),
            allow_gated: team_file.allow_gated.unwrap_or(false),
            sync_xet: cache_file.sync_xet.unwrap_or(false),
            max_local_gb,
            partial_max_age,
            disable_symlinks: env::is_true(EnvVars::HF_HUB_DISABLE_SYMLINKS),
            transfer,
            pull,
            serve_from_cache: file.serve.and_then(|s| s.from_cache).unwrap_or(false),
            warnings,
        })
    }
}

/// How durations are written, for errors about one.
pub const DURATION_HINT: &str =
    "a duration is a number and a unit, e.g. 30d, 12h, 90m or 45s (`1w 2d` adds up)";

/// `30d`, `12h`, `1w 2d`. The error names the text only: the parser's own message lists
/// spellings (`30sec`) beside the ones people use, as if they were one syntax.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| format!("invalid duration {text:?}"))
}

/// The hub cache `dir` names: itself, or the `hub/` inside when `dir` is a Hugging Face home
/// given where a hub cache was meant, with a warning saying so.
fn hub_cache_dir(dir: PathBuf) -> (PathBuf, Vec<String>) {
    match crate::cache::hub_inside_home(&dir) {
        Some(hub) => {
            let warning = format!(
                "{} is a Hugging Face home folder (HF_HOME), not a hub cache: its repos are in \
                 {}; using that (set the cache dir to it to silence this warning)",
                dir.display(),
                hub.display()
            );
            (hub, vec![warning])
        }
        None => (dir, Vec::new()),
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

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn expand_home(path: &str) -> PathBuf {
    expand_home_in(path, home_dir().as_deref())
}

/// `path` with a leading `~` read as `home`.
pub fn expand_home_in(path: &str, home: Option<&Path>) -> PathBuf {
    match (path.strip_prefix("~/"), home) {
        (Some(rest), Some(home)) => home.join(rest),
        (None, Some(home)) if path == "~" => home.to_path_buf(),
        _ => PathBuf::from(path),
    }
}

/// huggingface_hub's `HF_HOME`: the variable, else `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface`. `var` reads the environment; `home` is the user's home folder.
pub fn hf_home(var: &dyn Fn(&str) -> Option<String>, home: Option<&Path>) -> Option<PathBuf> {
    if let Some(h) = var(EnvVars::HF_HOME) {
        return Some(expand_home_in(&h, home));
    }
    if let Some(x) = var(EnvVars::XDG_CACHE_HOME) {
        return Some(expand_home_in(&x, home).join("huggingface"));
    }
    Some(home?.join(".cache").join("huggingface"))
}

/// huggingface_hub's resolution: `HF_HUB_CACHE`, else `HF_HOME/hub` (see [`hf_home`]).
pub fn default_hub_cache() -> PathBuf {
    if let Some(dir) = env::var(EnvVars::HF_HUB_CACHE) {
        return expand_home(&dir);
    }
    hf_home(&env::var, home_dir().as_deref())
        .unwrap_or_else(|| PathBuf::from(".").join(".cache").join("huggingface"))
        .join("hub")
}
