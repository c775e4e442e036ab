//! `rm`.

use anyhow::Result;

use super::{App, Outcome};

#[derive(Debug)]
pub struct RmOptions {
    pub targets: Vec<String>,
    pub dry_run: bool,
    pub yes: bool,
    pub remote: bool,
}

pub async fn run(_app: &App, _opts: RmOptions) -> Result<Outcome> {
    todo!("rm")
}
