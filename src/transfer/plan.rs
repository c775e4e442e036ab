//! What a pull asks for ([`Target`]) and what it resolved to ([`Plan`]): the revision, its
//! vetted manifest (less what file patterns leave out) and where it goes in the cache.

use std::path::PathBuf;

use crate::cache::RepoType;
use crate::manifest::Manifest;
use crate::patterns::FileFilter;

/// What to pull.
#[derive(Debug, Clone)]
pub struct Target {
    pub repo_id: String,
    pub repo_type: Option<RepoType>,
    /// A ref name or commit; `main` when absent.
    pub revision: Option<String>,
    /// Which of the revision's files to pull (every one by default).
    pub files: FileFilter,
}

/// A resolved, vetted revision and where it goes.
#[derive(Debug, Clone)]
pub struct Plan {
    pub repo_id: String,
    pub repo_type: RepoType,
    pub commit: String,
    pub ref_name: Option<String>,
    /// The files to pull: the revision's manifest, less what the target's file patterns leave
    /// out.
    pub manifest: Manifest,
    /// How many files the whole revision has (more than `manifest` holds when patterns chose).
    pub files_in_revision: usize,
    pub repo_dir: PathBuf,
    pub folder: String,
    /// The source (index in the source list) the revision was resolved from.
    pub tier: usize,
    /// The commit's whole tree listing (`trees/<commit>.json`), validated, when the source has
    /// one: the Hub always, a remote when it keeps one beside the manifest.
    pub listing: Option<Vec<u8>>,
    /// Whether the Hub says the repo is gated, when the revision came from the Hub.
    pub gated: Option<bool>,
    /// Snapshot files as plain files, as huggingface_hub writes them with symlinks off
    /// (`HF_HUB_DISABLE_SYMLINKS`): see `snapshot::place_copies`.
    pub copies: bool,
}
