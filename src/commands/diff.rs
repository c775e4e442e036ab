//! `diff`.

use anyhow::Result;

use super::{App, Outcome};

#[derive(Debug)]
pub struct DiffOptions {
    pub repos: Vec<String>,
    pub exit_code: bool,
}

pub async fn run(_app: &App, _opts: DiffOptions) -> Result<Outcome> {
    todo!("diff")
}
