//! The YAML config file: where it is found, its keys (unknown keys and wrong types are errors
//! naming the file, key and line) and its size values.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{home_dir, ConfigError, Rate, CONFIG_FILE_NAME};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub(super) storage: Option<FileStorage>,
    pub(super) cache: Option<FileCache>,
    pub(super) team: Option<FileTeam>,
    pub(super) transfer: Option<FileTransfer>,
    pub(super) pull: Option<FilePull>,
    pub(super) serve: Option<FileServe>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileStorage {
    pub(super) endpoint: Option<String>,
    pub(super) bucket: Option<String>,
    pub(super) region: Option<String>,
    pub(super) access_key: Option<String>,
    pub(super) secret_key: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileCache {
    pub(super) max_local_gb: Option<f64>,
    pub(super) sync_xet: Option<bool>,
    pub(super) hf_cache_dir: Option<String>,
    pub(super) partial_max_age: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileTeam {
    pub(super) prefix: Option<String>,
    pub(super) allow_gated: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileTransfer {
    pub(super) workers: Option<usize>,
    pub(super) multipart_threshold: Option<SizeValue>,
    pub(super) part_size: Option<SizeValue>,
    pub(super) limit_rate: Option<RateValue>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FilePull {
    pub(super) fallback: Option<Vec<String>>,
    pub(super) write_through: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct FileServe {
    pub(super) from_cache: Option<bool>,
}

/// A byte size written either as a number of bytes or as text such as `64MiB`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum SizeValue {
    Bytes(u64),
    Text(String),
}

impl SizeValue {
    pub(super) fn bytes(&self, what: &str) -> Result<u64, String> {
        match self {
            SizeValue::Bytes(n) => Ok(*n),
            SizeValue::Text(s) => parse_size(s).map_err(|e| format!("{what}: {e}")),
        }
    }
}

/// A rate written either as a number of bytes per second or as text such as `50M`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RateValue {
    Bytes(u64),
    Text(String),
}

impl RateValue {
    pub(super) fn rate(&self) -> Result<Rate, String> {
        match self {
            RateValue::Bytes(n) => Rate::parse(&n.to_string()),
            RateValue::Text(s) => Rate::parse(s),
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

pub(super) fn find_config_file(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
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

pub(super) fn parse_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_text(&text).map_err(|message| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    })
}

pub(super) fn parse_text(text: &str) -> Result<FileConfig, String> {
    // An empty file or a file of comments is an empty configuration, as in 0.1.
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    if value.is_null() {
        return Ok(FileConfig::default());
    }
    serde_yaml::from_str(text).map_err(|e| in_plain_words(e.to_string()))
}

/// serde's names for types (`expected f64`, `untagged enum SizeValue`) in the words of someone
/// editing the file.
fn in_plain_words(message: String) -> String {
    [
        ("expected f64", "expected a number"),
        ("expected usize", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected a boolean", "expected true or false"),
        (
            "data did not match any variant of untagged enum SizeValue",
            "expected a size such as 64MiB or a byte count",
        ),
        (
            "data did not match any variant of untagged enum RateValue",
            "expected a rate such as 50M or a number of bytes per second",
        ),
    ]
    .iter()
    .fold(message, |m, (rust, plain)| m.replace(rust, plain))
}
