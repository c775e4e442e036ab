//! `doctor`: independent checks of configuration, credentials, bucket access and cache dir.

use anyhow::Result;

use super::{App, Outcome};

pub async fn run(_app: &App) -> Result<Outcome> {
    todo!("doctor")
}
