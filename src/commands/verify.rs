//! `verify`.

use anyhow::Result;

use super::{App, Outcome};

#[derive(Debug)]
pub struct VerifyOptions {
    pub repos: Vec<String>,
    pub remote: bool,
    pub repair: bool,
    pub workers: Option<usize>,
}

pub async fn run(_app: &App, _opts: VerifyOptions) -> Result<Outcome> {
    todo!("verify")
}
