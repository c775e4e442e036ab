//! `status`: a summary of the local cache and, with `--remote`, of the remote.

use anyhow::Result;

use super::{App, Outcome};

pub async fn run(_app: &App, _remote: bool) -> Result<Outcome> {
    todo!("status")
}
