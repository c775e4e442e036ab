//! `rm`: deletes repos or revisions from the local cache (snapshots, refs and the blobs only
//! they used, through [`crate::cache::delete`]), or with `--remote` their manifests and refs from
//! the bucket. Targets are resolved in full before anything is deleted ([`crate::ops::rm`]): an
//! unknown or ambiguous one is a usage error.

mod local;
mod remote;

use anyhow::Result;

use super::deletion::refuse_without_consent;
use super::{App, Outcome, RemoteChoice};
use crate::config::ConfigError;

#[derive(Debug)]
pub struct RmOptions {
    pub targets: Vec<String>,
    pub dry_run: bool,
    pub yes: bool,
    pub remote: RemoteChoice,
}

pub async fn run(app: &App, opts: RmOptions) -> Result<Outcome> {
    // Checked here rather than by clap: `rm --remote org/m` gives clap `org/m` as the remote.
    if opts.targets.is_empty() {
        return Err(ConfigError::Usage {
            message: "rm needs at least one TARGET".into(),
            hint: "targets are repo ids (org/name, dataset/org/name), revision hashes or \
                   REPO@REVISION; `hf-cache-sync list -q` prints them"
                .into(),
        }
        .into());
    }
    refuse_without_consent(opts.yes, opts.dry_run)?;
    if opts.remote.asked() {
        return remote::run(app, &opts).await;
    }
    local::run(app, &opts).await
}
