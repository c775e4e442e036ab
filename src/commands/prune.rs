//! `prune`.

use anyhow::Result;

use super::{App, Outcome};

#[derive(Debug)]
pub struct PruneOptions {
    pub max_gb: Option<f64>,
    pub detached: bool,
    pub older_than: Option<String>,
    pub dry_run: bool,
    pub yes: bool,
}

pub async fn run(_app: &App, _opts: PruneOptions) -> Result<Outcome> {
    todo!("prune")
}
