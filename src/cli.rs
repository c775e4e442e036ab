//! Command-line definitions. Nothing beyond `main` sees these types: commands take resolved
//! options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "hf-cache-sync",
    version,
    about = "Share and manage the Hugging Face hub cache through an S3-compatible bucket or a shared directory",
    long_about = None,
    after_help = "Exit codes: 0 success, 1 a runtime failure (some item failed), 2 a usage or configuration error."
)]
pub struct Cli {
    /// Config file (default: ./.hf-cache-sync.yaml, then ~/.hf-cache-sync.yaml)
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Hub cache directory (default: cache.hf_cache_dir, $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)
    #[arg(long, global = true, value_name = "PATH")]
    pub cache_dir: Option<PathBuf>,

    /// More detail on stderr, including the server's error codes
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Print one JSON document on stdout instead of text
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload the local cache (blobs, then manifests, then refs) to the remote
    Push(PushArgs),
    /// Download one repo revision from the remote into the local cache
    Pull(PullArgs),
    /// Download every repo that has a `main` ref on the remote
    PullAll(PullAllArgs),
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Show what would be transferred without transferring
    #[arg(long)]
    pub dry_run: bool,

    /// Concurrent transfers (default: transfer.workers, or 16)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// Remote to use instead of the configured one: s3://bucket[/prefix] or a directory path
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Only repos whose id matches this glob (repeatable), e.g. 'org/*'
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,

    /// Skip repos whose id matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Repos to push (default: every repo in the cache); `org/name` or `dataset/org/name`
    #[arg(value_name = "REPO_ID")]
    pub repos: Vec<String>,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RepoTypeArg {
    Model,
    Dataset,
    Space,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Repo id, e.g. `org/name`
    #[arg(value_name = "REPO_ID")]
    pub repo: String,

    /// A ref (`main`, `pr/1`, a tag) or a commit hash (default: main)
    #[arg(short, long, value_name = "REVISION")]
    pub revision: Option<String>,

    /// Repo type (default: whatever the remote manifest says)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub repo_type: Option<RepoTypeArg>,

    #[command(flatten)]
    pub transfer: TransferArgs,
}

#[derive(Debug, Args)]
pub struct PullAllArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Pull at most this many repos
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    #[command(flatten)]
    pub transfer: TransferArgs,
}
