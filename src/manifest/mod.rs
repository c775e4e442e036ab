//! The manifest format shared with hf-cache-sync 0.1: which blob each file of one revision of one
//! repo holds. A manifest read from the remote is untrusted input and is validated before
//! anything is written. The keys manifests, blobs, refs and trees live under are in [`layout`].

pub mod layout;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use layout::{safe_repo_key, Layout};

use crate::cache::{is_blob_name, is_safe_ref_name, is_safe_relative_path, RepoType};

/// Larger manifests are refused: tens of thousands of files fit in a few MB.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024 * 1024;
/// No single file of a model repo is near this; larger sizes in a manifest are hostile.
pub const MAX_FILE_SIZE: u64 = 1 << 50;
/// Ref bodies are a commit hash; anything much larger is not a ref.
pub const MAX_REF_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub blob: String,
    pub size: u64,
}

/// One revision of one repo: which blob each file path holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub repo: String,
    pub revision: String,
    #[serde(default = "default_repo_type")]
    pub repo_type: String,
    pub files: Vec<ManifestFile>,
}

fn default_repo_type() -> String {
    "model".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("manifest refused: {0}")]
    Hostile(String),
}

impl Manifest {
    /// Bytes exactly as hf-cache-sync 0.1 writes them (Python `json.dumps(indent=2)`, which
    /// escapes every non-ASCII character).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        crate::text::python_json(self, b"  ")
    }

    /// Parses and validates an untrusted manifest.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Same repo, revision, type and files, whatever order the files are listed in: 0.1 writes
    /// them in directory-walk order, this tool sorts them, and neither must rewrite the other's.
    pub fn same_content(&self, other: &Manifest) -> bool {
        fn sorted(m: &Manifest) -> Vec<&ManifestFile> {
            let mut files: Vec<&ManifestFile> = m.files.iter().collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            files
        }
        self.repo == other.repo
            && self.revision == other.revision
            && self.repo_type == other.repo_type
            && sorted(self) == sorted(other)
    }

    /// Both manifests' files together, when they describe the same revision and agree on every
    /// path they share: a commit's files never change, so a cache holding part of a revision
    /// (pulled with file patterns) adds to what the remote knows of it instead of shrinking it.
    /// `None` when they disagree.
    pub fn union(&self, other: &Manifest) -> Option<Manifest> {
        if self.repo != other.repo
            || self.revision != other.revision
            || self.repo_type != other.repo_type
        {
            return None;
        }
        let mut files: std::collections::BTreeMap<&str, &ManifestFile> =
            self.files.iter().map(|f| (f.path.as_str(), f)).collect();
        for f in &other.files {
            match files.get(f.path.as_str()) {
                Some(mine) if *mine != f => return None,
                Some(_) => {}
                None => {
                    files.insert(&f.path, f);
                }
            }
        }
        Some(Manifest {
            files: files.into_values().cloned().collect(),
            ..self.clone()
        })
    }

    pub fn repo_type(&self) -> Option<RepoType> {
        RepoType::ALL
            .into_iter()
            .find(|t| t.as_str() == self.repo_type)
    }

    /// Refuses anything that could write outside the snapshot or under a wrong name.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let hostile = |m: String| Err(ManifestError::Hostile(m));
        if !is_valid_repo_id(&self.repo) {
            return hostile(format!("invalid repo id {:?}", self.repo));
        }
        if self.repo_type().is_none() {
            return hostile(format!("unknown repo_type {:?}", self.repo_type));
        }
        if !is_safe_ref_name(&self.revision) || self.revision.contains('/') {
            return hostile(format!("invalid revision {:?}", self.revision));
        }
        let mut seen = BTreeSet::new();
        for f in &self.files {
            if !is_safe_relative_path(&f.path) || f.path.contains('\\') {
                return hostile(format!("unsafe file path {:?}", f.path));
            }
            if !is_blob_name(&f.blob) {
                return hostile(format!(
                    "blob name {:?} for {:?} is not 40 or 64 lowercase hex",
                    f.blob, f.path
                ));
            }
            if f.size > MAX_FILE_SIZE {
                return hostile(format!("absurd size {} for {:?}", f.size, f.path));
            }
            if !seen.insert(f.path.as_str()) {
                return hostile(format!("duplicate path {:?}", f.path));
            }
        }
        // A path that is also a folder of another path ("a" and "a/b") cannot both be written.
        for f in &self.files {
            let mut prefix = f.path.as_str();
            while let Some((parent, _)) = prefix.rsplit_once('/') {
                if seen.contains(parent) {
                    return hostile(format!("{:?} is both a file and a folder", parent));
                }
                prefix = parent;
            }
        }
        Ok(())
    }
}

/// `org/name` or `name`: no empty parts, no `..`, no characters that cannot be in a folder name.
pub fn is_valid_repo_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    !id.is_empty()
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

/// A ref body is a commit hash, possibly with whitespace around it.
pub fn parse_ref_body(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    (!text.is_empty() && is_safe_ref_name(text) && !text.contains('/')).then(|| text.to_string())
}

#[cfg(test)]
mod tests;
