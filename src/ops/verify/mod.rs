//! `verify`'s operations and the problems they report: blobs hashed against their names on a
//! pool of threads ([`hash`]), what the cache scanner found ([`structure`]), and the remote's
//! manifests and refs checked through the catalog ([`remote`]).

pub mod hash;
pub mod local;
pub mod lock;
pub mod remote;
mod repair;
pub mod structure;

use serde::Serialize;

pub use remote::verify_remote;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A local blob whose content does not hash to its name.
    CorruptBlob,
    /// A local blob that could not be read.
    UnreadableBlob,
    /// A blob that snapshot links (locally) or a manifest (remotely) name, but that is absent.
    MissingBlob,
    /// Anything else the cache scanner found: broken or escaping links, refs without a
    /// snapshot, stray files in `snapshots/`.
    Cache,
    /// A remote blob whose size is not the one its manifest states.
    SizeMismatch,
    /// A remote manifest that cannot be read or is refused.
    BadManifest,
    /// A remote ref whose body is not a commit hash.
    BadRef,
    /// A remote ref naming a commit that has no manifest.
    DanglingRef,
    /// A revision or file a lock file pins that the cache lacks.
    MissingPin,
    /// A file of a pin's `local-dir=` folder that is missing, differs or is not current.
    LocalDir,
}

impl ProblemKind {
    /// The kind as people read it.
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::CorruptBlob => "corrupt blob",
            ProblemKind::UnreadableBlob => "unreadable blob",
            ProblemKind::MissingBlob => "missing blob",
            ProblemKind::Cache => "cache",
            ProblemKind::SizeMismatch => "size mismatch",
            ProblemKind::BadManifest => "bad manifest",
            ProblemKind::BadRef => "bad ref",
            ProblemKind::DanglingRef => "dangling ref",
            ProblemKind::MissingPin => "missing",
            ProblemKind::LocalDir => "local dir",
        }
    }

    /// Problems `--repair` can fix by fetching the blob again.
    pub fn repairable(self) -> bool {
        matches!(
            self,
            ProblemKind::CorruptBlob | ProblemKind::UnreadableBlob | ProblemKind::MissingBlob
        )
    }
}

/// One thing wrong, with whatever identifies it.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    /// `model/org/name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The remote object concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Files that use the blob: `<commit>/<path>` locally, `<path>` in a remote manifest.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    pub detail: String,
    /// Why `--repair` could not fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_error: Option<String>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: String) -> Problem {
        Problem {
            kind,
            repo: None,
            revision: None,
            etag: None,
            key: None,
            paths: Vec::new(),
            detail,
            repair_error: None,
        }
    }
}
