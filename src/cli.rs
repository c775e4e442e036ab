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

    /// Hub cache directory (default: cache.hf_cache_dir, $HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub);
    /// dedupe takes it several times
    #[arg(long, global = true, value_name = "PATH")]
    pub cache_dir: Vec<PathBuf>,

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
    /// Summarize the local cache (and, with --remote, the remote)
    Status(StatusArgs),
    /// List repos or revisions, locally or on the remote
    List(ListArgs),
    /// Compare local and remote revisions
    ///
    /// Each revision is in sync, local only, remote only, or incomplete: one side lacks files the
    /// other names, a file's content differs, or the bucket lacks a blob the manifest names. Files
    /// stored as copies (caches without symlinks) are compared by size; LFS/Xet pointer files that
    /// push leaves out are not counted as missing. Refs are compared too. Reads each manifest and
    /// ref of the compared repos (one GET each) after LISTing manifests, refs and blobs.
    Diff(DiffArgs),
    /// Free disk space: LRU eviction to a budget, detached revisions, orphans, stale partials
    /// (with --remote --detached: the remote's manifests no ref points at)
    Prune(PruneArgs),
    /// Delete repos or revisions, locally or from the remote
    Rm(RmArgs),
    /// Check every blob against its name, every link and ref (locally or on the remote)
    Verify(VerifyArgs),
    /// Check the configuration, credentials, bucket access and cache dir
    Doctor(DoctorArgs),
    /// Delete the remote's blobs no manifest names and its unfinished uploads
    ///
    /// Lists blobs/, manifests/ and unfinished multipart uploads once each, reads every manifest
    /// (one GET each) and deletes, with DeleteObjects (1,000 keys a request; one DELETE a key
    /// where the store refuses it), the blobs no manifest names and the uploads, once they are
    /// older than --grace. A push uploads blobs before their manifest, so blobs younger than the
    /// grace period are kept. If any manifest cannot be read or parsed, nothing is deleted.
    Gc(GcArgs),
    /// Write a commented .hf-cache-sync.yaml in the current directory
    Init(InitArgs),
    /// Push what huggingface_hub downloads, as it lands
    ///
    /// Starts with a push of whatever the remote lacks, then watches the cache: a finished blob
    /// (renamed into blobs/), a snapshot link or a ref marks its repo, and once the cache has been
    /// quiet for the debounce the marked repos are pushed. Partial downloads are never pushed,
    /// and a repo with a download in progress waits. A manual push waits for a push of the watch
    /// and the other way round. Ctrl-C or SIGTERM: a push in flight finishes, then exit 0; a
    /// second one abandons it (exit 130).
    Watch(WatchArgs),
    /// Store each blob once across repos and cache dirs (reflinks or hard links)
    ///
    /// Finds blobs with the same name in several repos, and in the cache dirs given with
    /// --cache-dir (repeat it), verifies the copy kept against its name, and replaces the other
    /// copies with reflinks where the file system supports them, hard links otherwise. Never
    /// links across file systems. Reports the bytes saved.
    Dedupe(DedupeArgs),
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Push once the cache has been quiet for this many seconds
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub debounce: std::time::Duration,

    /// Concurrent transfers (default: transfer.workers, or 64)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// Remote to use instead of the configured one: s3://bucket[/prefix] or a directory path
    #[arg(long, value_name = "URL")]
    pub remote: Option<std::ffi::OsString>,

    #[command(flatten)]
    pub filter: FilterArgs,
}

/// A number of seconds, 0 or more (`2`, `0.5`).
fn parse_seconds(text: &str) -> Result<std::time::Duration, String> {
    let secs: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds (e.g. 5 or 0.5)"))?;
    std::time::Duration::try_from_secs_f64(secs)
        .map_err(|_| format!("{text:?} is not a number of seconds from 0 up (e.g. 5 or 0.5)"))
}

#[derive(Debug, Args)]
pub struct DedupeArgs {
    /// Show what would be linked and saved without changing anything
    #[arg(long)]
    pub dry_run: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debounce_takes_seconds() {
        assert_eq!(parse_seconds("2").unwrap().as_millis(), 2000);
        assert_eq!(parse_seconds("0.5").unwrap().as_millis(), 500);
        assert_eq!(parse_seconds("0").unwrap(), std::time::Duration::ZERO);
        for bad in ["-1", "soon", "", "inf", "NaN"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also count what the remote holds (LIST requests only; repos counted by key name)
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List what the remote holds instead of the local cache
    ///
    /// The remote is listed with LIST requests only, no object is read: repo ids are decoded from
    /// key names (`org__name` becomes `org/name`, the first `__` taken as the `/`), and types,
    /// sizes and which revision a ref names are unknown. --manifests reads every manifest and ref
    /// (one GET each) for exact ids, types, sizes and ref targets; a filter or sort on size or
    /// type, or a refs filter with --revisions, reads them too. The remote keeps no access or
    /// modification times.
    #[arg(long)]
    pub remote: bool,

    /// With --remote: read every manifest and ref for exact repo ids, types, sizes and ref targets
    #[arg(long, requires = "remote")]
    pub manifests: bool,

    /// One row per revision instead of per repo
    #[arg(long)]
    pub revisions: bool,

    /// Keep rows matching EXPR (repeatable, all must match): size>1GB, accessed>30d,
    /// modified<7d, type=dataset, refs=main
    ///
    /// Keys: size (1GB, 500MiB, bytes), accessed and modified (an age: `accessed>30d` means last
    /// accessed more than 30 days ago), type (model, dataset, space), refs (a ref name). Operators:
    /// = != > >= < <= (type and refs take = and != only).
    #[arg(long, value_name = "EXPR")]
    pub filter: Vec<String>,

    /// Sort by: name, size, accessed, modified, revisions (prefix with - for descending)
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub sort: Option<String>,

    /// Output format (default: table; --json implies json)
    #[arg(long, value_enum)]
    pub format: Option<ListFormat>,

    /// Print only identifiers, one a line, for piping into `rm`: `model/org/name` for repos,
    /// commit hashes with --revisions (JSON output is unchanged)
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Repos to compare (default: all, local and remote)
    #[arg(value_name = "REPO_ID")]
    pub repos: Vec<String>,

    /// Exit 1 when anything differs: a revision not in sync or a ref that differs (for CI gates)
    #[arg(long)]
    pub exit_code: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Disk budget in GB (default: cache.max_local_gb)
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub max_gb: Option<f64>,

    /// Remove every revision no ref points at
    #[arg(long)]
    pub detached: bool,

    /// Only evict revisions not accessed for this long (e.g. 30d, 12h)
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,

    /// Show what would be removed without removing it
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,

    /// With --detached: delete the remote's manifests no remote ref points at, written more
    /// than --older-than ago (default 24h: a push writes a manifest before its refs)
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Collect garbage on the remote (the only place gc works)
    #[arg(long)]
    pub remote: bool,

    /// Keep anything younger than this, by its LastModified (e.g. 24h, 7d, 0s)
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub grace: String,

    /// List exactly what a real run deletes, deleting nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Repo ids (`org/name`, `model/org/name`, `dataset/org/name`) or revision hashes (a unique
    /// prefix is enough)
    #[arg(value_name = "TARGET", required = true)]
    pub targets: Vec<String>,

    /// Show what would be removed without removing it
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,

    /// Delete manifests and refs from the remote instead of the local cache
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Repos to verify (default: all)
    #[arg(value_name = "REPO_ID")]
    pub repos: Vec<String>,

    /// Verify the remote: every manifest's blobs exist with the stated sizes
    #[arg(long)]
    pub remote: bool,

    /// Re-fetch corrupt or missing local blobs from the remote
    #[arg(long)]
    pub repair: bool,

    /// Concurrent hashing / transfer workers
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Fail when the key may not write (by default a read-only key is reported, not failed:
    /// pulling needs no more)
    #[arg(long)]
    pub require_write: bool,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing .hf-cache-sync.yaml
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct TransferArgs {
    /// Show what would be transferred without transferring
    #[arg(long)]
    pub dry_run: bool,

    /// Concurrent transfers (default: transfer.workers, or 64)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// Remote to use instead of the configured one: s3://bucket[/prefix] or a directory path
    #[arg(long, value_name = "URL")]
    pub remote: Option<std::ffi::OsString>,
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
    Kernel,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// Repo id, e.g. `org/name`
    #[arg(value_name = "REPO_ID")]
    pub repo: String,

    /// A ref (`main`, `pr/1`, a tag) or a commit hash (default: main)
    #[arg(short, long, value_name = "REVISION")]
    pub revision: Option<String>,

    /// Repo type (default: whatever the remote manifest says; a model on the Hub)
    #[arg(long, value_enum, value_name = "TYPE")]
    pub repo_type: Option<RepoTypeArg>,

    #[command(flatten)]
    pub transfer: TransferArgs,

    #[command(flatten)]
    pub fallback: FallbackArgs,
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
