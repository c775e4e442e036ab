//! `serve`'s flags.

use clap::Args;

use super::RemoteArg;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to answer on; an address other machines can reach needs --auth
    #[arg(long, value_name = "ADDR:PORT", default_value = crate::ops::serve::DEFAULT_LISTEN)]
    pub listen: String,

    #[command(flatten)]
    pub remote: RemoteArg,

    /// Where to get what the remote lacks or serves corrupt: `hf-hub` (the Hub at this
    /// process's HF_ENDPOINT), s3://bucket[/prefix] or a directory; repeatable, tried in order,
    /// the Hub last (default: pull.fallback)
    ///
    /// What a fallback serves streams through to the client, verified, and is written nowhere.
    #[arg(long, value_name = "SOURCE")]
    pub fallback: Vec<std::ffi::OsString>,

    /// Who may read: `tokens=FILE`, the team's own bearer tokens, one a line (`#` comments);
    /// a client sends one as HF_TOKEN. Required to listen on an address other than loopback
    #[arg(long, value_name = "tokens=FILE")]
    pub auth: Option<String>,

    #[command(flatten)]
    pub limit_rate: super::LimitRateArg,
}
