//! The flags of the commands that move blobs: push, pull (`--lock` too), lock, pull-all.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{LimitRateArg, RemoteArg};

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Show what would be transferred without transferring
    #[arg(long)]
    pub dry_run: bool,

    /// Concurrent transfers (default: transfer.workers, or 64)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    #[command(flatten)]
    pub limit_rate: LimitRateArg,

    #[command(flatten)]
    pub remote: RemoteArg,
}

#[derive(Debug, Args)]
pub struct FallbackArgs {
    /// Where to get what the remote lacks or keeps failing to serve: `hf-hub` (the Hugging Face
    /// Hub at HF_ENDPOINT), s3://bucket[/prefix] or a directory; repeatable, tried in order, the
    /// Hub last (default: pull.fallback)
    ///
    /// Never used when the remote rejects the credentials, denies access or does not exist (fix
    /// those), nor under --dry-run (it says what it would fetch). Blobs from any source are
    /// verified against their names.
    #[arg(long, value_name = "SOURCE")]
    pub fallback: Vec<std::ffi::OsString>,

    /// After fetching from a fallback, push what was fetched to the sources before it (blobs,
    /// then manifest, then refs, as `push` writes them); a key that may not write is a warning
    /// (default: pull.write_through)
    #[arg(long)]
    pub write_through: bool,
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
    /// Repos to push (default: every repo in the cache): `org/name`, `dataset/org/name` or
    /// `hf://datasets/org/name`
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
    Kernel,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Repo id: `org/name`, `type/org/name` as `list` prints it, or `hf://datasets/org/name`
    #[arg(value_name = "REPO_ID", required_unless_present = "lock")]
    pub repo: Option<String>,

    /// Pull every revision pinned in this lock file (`hf-cache-sync lock` writes one) instead
    /// of one repo; pins already complete in the cache need no remote
    #[arg(long, value_name = "FILE", conflicts_with_all = ["repo", "revision", "repo_type", "include_files", "exclude_files"])]
    pub lock: Option<PathBuf>,

    /// With --lock: make no remote call at all; pins the cache lacks fail
    #[arg(long)]
    pub offline: bool,

    /// A ref (`main`, `pr/1`, a tag) or a commit hash (default: main)
    #[arg(short, long, value_name = "REVISION")]
    pub revision: Option<String>,

    /// Repo type (default: whatever the remote manifest says; a model on the Hub)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub repo_type: Option<RepoTypeArg>,

    /// Only the files whose path in the repo matches this glob (repeatable), as `hf download
    /// --include`: '*Q4_K_M.gguf', 'onnx/'. Files, not repos: push and pull-all's `--include`
    /// picks repos
    #[arg(long, value_name = "GLOB")]
    pub include_files: Vec<String>,

    /// Leave out the files whose path matches this glob (repeatable), as `hf download --exclude`
    #[arg(long, value_name = "GLOB")]
    pub exclude_files: Vec<String>,
    /// Also lay the revision's files out under DIR as real files, as `hf download --local-dir`
    /// does (DIR is made when missing)
    ///
    /// Each file is reflinked from the cache where the file system can and copied otherwise,
    /// never linked, so an edit in DIR never changes the cache. Files whose metadata in
    /// DIR/.cache/huggingface says they are current are left alone; huggingface_hub sees the
    /// others as up to date too.
    #[arg(long, value_name = "DIR")]
    pub local_dir: Option<std::path::PathBuf>,

    #[command(flatten)]
    pub transfer: TransferArgs,

    #[command(flatten)]
    pub fallback: FallbackArgs,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// Repos to pin, each optionally with `@REF` (default main) or `@<commit>`: `org/name`,
    /// `dataset/org/name@v1.0` (default: every repo's main)
    #[arg(value_name = "REPO_ID[@REF]")]
    pub repos: Vec<String>,

    /// The lock file to write (`-` for stdout)
    #[arg(short, long, value_name = "FILE", default_value = "hf-cache-sync.lock")]
    pub output: PathBuf,

    /// Pin what the remote's refs name instead of the local cache's: bare, the configured
    /// remote; --remote=s3://bucket[/prefix] or --remote=DIR names another
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    pub remote: Option<Option<std::ffi::OsString>>,

    /// Pin only the files whose path matches this glob (repeatable), as `pull --include-files`
    #[arg(long, value_name = "GLOB")]
    pub include_files: Vec<String>,

    /// Leave out the files whose path matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub exclude_files: Vec<String>,

    /// Also lay the repo named out as real files in DIR when `pull --lock` pulls it (written as
    /// `local-dir=DIR`, relative to the lock file's folder); takes one repo
    #[arg(long, value_name = "DIR")]
    pub local_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PullAllArgs {
    #[command(flatten)]
    pub filter: FilterArgs,

    /// Pull at most this many repos
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub limit: Option<usize>,

    #[command(flatten)]
    pub transfer: TransferArgs,

    #[command(flatten)]
    pub fallback: FallbackArgs,
}
