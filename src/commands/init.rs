//! `init`: writes a commented `.hf-cache-sync.yaml`.

use anyhow::Result;

use super::{App, Outcome};

pub async fn run(_app: &App, _force: bool) -> Result<Outcome> {
    todo!("init")
}
