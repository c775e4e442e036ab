//! `list`.

use anyhow::Result;

use super::{App, Outcome};

#[derive(Debug)]
pub struct ListOptions {
    pub remote: bool,
    pub revisions: bool,
    pub filter: Vec<String>,
    pub sort: Option<String>,
    pub format: Option<crate::report::ListFormat>,
    pub quiet: bool,
}

pub async fn run(_app: &App, _opts: ListOptions) -> Result<Outcome> {
    todo!("list")
}
