//! Command-line definitions. Nothing beyond `main` sees these types: commands take resolved
//! options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{Rate, RATE_FORMS};
use crate::examples;

mod serve;
mod transfer;
pub use serve::ServeArgs;
pub use transfer::{
    FallbackArgs, FilterArgs, LockArgs, PullAllArgs, PullArgs, PushArgs, RepoTypeArg, TransferArgs,
};

#[derive(Debug, Parser)]
#[command(
    name = "hf-cache-sync",
    version,
    about = "Share and manage the Hugging Face hub cache through an S3-compatible bucket or a shared directory",
    long_about = None,
    after_help = examples::TOP
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

    /// Print nothing but errors (and their hints); `list -q` prints only identifiers, one a
    /// line, for piping into pull or rm (`--json` still prints its document)
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Colour on stderr: auto (when stderr is a terminal and NO_COLOR is not set), always or never
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = ColorArg::Auto)]
    pub color: ColorArg,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload the local cache (blobs, then manifests, then refs) to the remote
    #[command(after_help = examples::PUSH)]
    Push(PushArgs),
    /// Download one repo revision from the remote into the local cache
    #[command(after_help = examples::PULL)]
    Pull(PullArgs),
    /// Download every repo that has a `main` ref on the remote
    #[command(after_help = examples::PULL_ALL)]
    PullAll(PullAllArgs),
    /// Pin revisions in a lock file (one line a repo), for `pull --lock` and `verify --lock`
    ///
    /// Each line is `[type/]org/name@<40-hex commit>`, optional file patterns (`!PATTERN`
    /// leaves files out), optional `local-dir=DIR`, and the ref it was locked from as a comment.
    /// From the local cache, or with --remote from the remote's refs. Naming repos updates
    /// their lines in an existing file and keeps the others; naming none pins every `main`.
    #[command(after_help = examples::LOCK)]
    Lock(LockArgs),
    /// Summarize the local cache (and, with --remote, the remote)
    #[command(after_help = examples::STATUS)]
    Status(StatusArgs),
    /// List repos or revisions, locally or on the remote
    #[command(after_help = examples::LIST)]
    List(ListArgs),
    /// Compare local and remote revisions
    ///
    /// Each revision is in sync, partial, local only, remote only, or incomplete. Partial: the
    /// snapshot holds some of the revision's files (a pull of some files), each as the manifest
    /// names it, and the bucket has every blob the manifest names. Incomplete: the remote lacks
    /// files the snapshot has, a file's content differs, a snapshot link is broken, or the bucket
    /// lacks a blob the manifest names. The commit's tree listing (trees/<commit>.json), when the
    /// cache has one, names the files a snapshot lacks too. Files stored as copies (caches without
    /// symlinks) are compared by size; LFS/Xet pointer files that push leaves out are not counted
    /// as missing. Refs are compared too. Reads each manifest and ref of the compared repos (one
    /// GET each) after LISTing manifests, refs and blobs.
    #[command(after_help = examples::DIFF)]
    Diff(DiffArgs),
    /// Free disk space: LRU eviction to a budget, detached revisions, orphans, stale partials
    /// (with --remote --detached: the remote's manifests no ref points at)
    #[command(after_help = examples::PRUNE)]
    Prune(PruneArgs),
    /// Delete repos or revisions, locally or from the remote
    #[command(after_help = examples::RM)]
    Rm(RmArgs),
    /// Check every blob against its name, every link and ref (locally or on the remote)
    #[command(after_help = examples::VERIFY)]
    Verify(VerifyArgs),
    /// Check the configuration, credentials, bucket access and cache dir
    #[command(after_help = examples::DOCTOR)]
    Doctor(DoctorArgs),
    /// Delete the remote's blobs no manifest names and its unfinished uploads
    ///
    /// Lists blobs/, manifests/ and unfinished multipart uploads once each, reads every manifest
    /// (one GET each) and deletes, with DeleteObjects (1,000 keys a request; one DELETE a key
    /// where the store refuses it), the blobs no manifest names and the uploads, once they are
    /// older than --grace. A push uploads blobs before their manifest, so blobs younger than the
    /// grace period are kept. If any manifest cannot be read or parsed, nothing is deleted.
    #[command(after_help = examples::GC)]
    Gc(GcArgs),
    /// Write a commented .hf-cache-sync.yaml in the current directory
    #[command(after_help = examples::INIT)]
    Init(InitArgs),
    /// Push what huggingface_hub downloads, as it lands
    ///
    /// Starts with a push of whatever the remote lacks, then watches the cache: a finished blob
    /// (renamed into blobs/), a snapshot link or a ref marks its repo, and once the cache has been
    /// quiet for the debounce the marked repos are pushed. Partial downloads are never pushed,
    /// and a repo with a download in progress waits. A manual push waits for a push of the watch
    /// and the other way round. Ctrl-C or SIGTERM: a push in flight finishes, then exit 0; a
    /// second one abandons it (exit 130).
    #[command(after_help = examples::WATCH)]
    Watch(WatchArgs),
    /// Store each blob once across repos and cache dirs (reflinks or hard links)
    ///
    /// Finds blobs with the same name in several repos, and in the cache dirs given with
    /// --cache-dir (repeat it), verifies the copy kept against its name, and replaces the other
    /// copies with reflinks where the file system supports them, hard links otherwise. Never
    /// links across file systems. Reports the bytes saved.
    #[command(after_help = examples::DEDUPE)]
    Dedupe(DedupeArgs),
    /// Answer huggingface_hub clients from the remote, as a Hub endpoint (HF_ENDPOINT)
    ///
    /// Repo and revision info, tree listings, paths-info and file downloads, with the Hub's
    /// headers and errors, for revisions the remote has a ref or a manifest for (then the
    /// fallbacks'). Every byte is hashed as it streams; the last piece of a file goes out only
    /// once the whole matched its name, and a corrupt object cuts the connection instead. A
    /// line a request on stderr; `/metrics` for Prometheus, a page at `/` for people,
    /// `/healthz`. Ctrl-C or SIGTERM: stop accepting, let the responses in flight finish for
    /// up to 5 seconds, exit 0. Clients: `HF_ENDPOINT=http://127.0.0.1:8090
    /// hf download org/model`, and likewise for transformers and vLLM.
    #[command(after_help = examples::SERVE)]
    Serve(ServeArgs),
    /// Print the shell completion script for SHELL on stdout
    #[command(after_help = examples::COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print the man page (roff) on stdout, or write a page per command into --out DIR
    #[command(after_help = examples::MAN)]
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Push once the cache has been quiet for this many seconds
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_seconds)]
    pub debounce: std::time::Duration,

    /// Concurrent transfers (default: transfer.workers, or 64)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    #[command(flatten)]
    pub limit_rate: LimitRateArg,

    /// Remote to use instead of the configured one: s3://bucket[/prefix] or a directory path
    #[arg(long, value_name = "URL")]
    pub remote: Option<std::ffi::OsString>,

    #[command(flatten)]
    pub filter: FilterArgs,
}

/// `--limit-rate`, on every command that moves blobs.
#[derive(Debug, Args)]
pub struct LimitRateArg {
    /// Cap the bytes the whole run moves per second, uploads and downloads, all workers
    /// together: e.g. 50M, 500K, 1.5G (K, M, G: powers of 1024, as curl reads them) or a number
    /// of bytes (default: HF_CACHE_SYNC_LIMIT_RATE, else transfer.limit_rate, else no cap)
    #[arg(long = "limit-rate", value_name = "RATE", value_parser = parse_limit_rate)]
    pub rate: Option<Rate>,
}

/// A rate for `--limit-rate`; the error shows how one is written.
fn parse_limit_rate(text: &str) -> Result<Rate, String> {
    Rate::parse(text).map_err(|e| format!("{e}; {RATE_FORMS}, e.g. --limit-rate 50M"))
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

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write hf-cache-sync.1 and a page per command (hf-cache-sync-push.1, …) into DIR
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// `--remote`, the same on every command that talks to a remote.
#[derive(Debug, Args)]
pub struct RemoteArg {
    /// The remote: the configured one, or the one given as --remote=s3://bucket[/prefix] or
    /// --remote=DIR (endpoint and credentials from the configuration)
    ///
    /// Bare, it names the configured remote. A value may also follow after a space
    /// (`--remote /mnt/share`); on commands that take repo ids, a value that reads as a repo id
    /// and is not an existing directory is taken as a repo id instead.
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    pub remote: Option<Option<std::ffi::OsString>>,
}

impl Command {
    /// The subcommand as typed, for the JSON document of a failed run.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Push(_) => "push",
            Command::Pull(_) => "pull",
            Command::PullAll(_) => "pull-all",
            Command::Lock(_) => "lock",
            Command::Status(_) => "status",
            Command::List(_) => "list",
            Command::Diff(_) => "diff",
            Command::Prune(_) => "prune",
            Command::Rm(_) => "rm",
            Command::Verify(_) => "verify",
            Command::Doctor(_) => "doctor",
            Command::Init(_) => "init",
            Command::Completions(_) => "completions",
            Command::Man(_) => "man",
            Command::Gc(_) => "gc",
            Command::Watch(_) => "watch",
            Command::Dedupe(_) => "dedupe",
            Command::Serve(_) => "serve",
        }
    }
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Also count what the remote holds (LIST requests only; repos counted by key name): the
    /// configured remote, or the one given as --remote=URL
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    pub remote: Option<Option<std::ffi::OsString>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl ColorArg {
    /// `Some` when the choice is made, `None` for auto.
    pub fn forced(self) -> Option<bool> {
        match self {
            ColorArg::Auto => None,
            ColorArg::Always => Some(true),
            ColorArg::Never => Some(false),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// List what the remote holds instead of the local cache: the configured remote, or the
    /// one given as --remote=URL (s3://bucket[/prefix] or a directory)
    ///
    /// The remote is listed with LIST requests only, no object is read: repo ids are decoded from
    /// key names (`org__name` becomes `org/name`, the first `__` taken as the `/`), and types,
    /// sizes and which revision a ref names are unknown. --manifests reads every manifest and ref
    /// (one GET each) for exact ids, types, sizes and ref targets; a filter or sort on size or
    /// type, or a refs filter with --revisions, reads them too. The remote keeps no access or
    /// modification times.
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    pub remote: Option<Option<std::ffi::OsString>>,

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
    #[arg(short = 'f', long, value_name = "EXPR")]
    pub filter: Vec<String>,

    /// Sort by: name, size, accessed, modified, revisions; `KEY:asc` or `KEY:desc` sets the
    /// order (as `hf cache ls`: size, accessed, modified and revisions descend unless told,
    /// name ascends; a leading - descends)
    #[arg(long, value_name = "KEY", allow_hyphen_values = true)]
    pub sort: Option<String>,

    /// Print at most N rows, after filtering and sorting
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Do not cut table cells to fit the terminal (as `hf cache ls --no-truncate`)
    #[arg(long)]
    pub no_truncate: bool,

    /// Output format (default: table; --json implies json)
    #[arg(long, value_enum)]
    pub format: Option<ListFormat>,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// Repos to compare (default: all, local and remote)
    #[arg(value_name = "REPO_ID")]
    pub repos: Vec<String>,

    /// Exit 1 when anything differs: a revision not in sync (a partial one too) or a ref that
    /// differs (for CI gates)
    #[arg(long)]
    pub exit_code: bool,

    #[command(flatten)]
    pub remote: RemoteArg,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Disk budget in GiB of 2^30 bytes, as cache.max_local_gb and hf-cache-sync 0.1 count
    /// (default: cache.max_local_gb)
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
    /// than --older-than ago (default 24h: a push writes a manifest before its refs). Bare, the
    /// configured remote; --remote=s3://bucket[/prefix] or --remote=DIR names another
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    pub remote: Option<Option<std::ffi::OsString>>,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Collect garbage on the remote (the only place gc works): bare, the configured remote;
    /// --remote=s3://bucket[/prefix] or --remote=DIR names another
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    pub remote: Option<Option<std::ffi::OsString>>,

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
    /// Repo ids (`org/name`, `model/org/name`, `dataset/org/name`, `hf://datasets/org/name`),
    /// revision hashes (a unique prefix is enough) or REPO@REVISION
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Show what would be removed without removing it
    #[arg(long)]
    pub dry_run: bool,

    /// Do not ask for confirmation
    #[arg(short, long)]
    pub yes: bool,

    /// Delete manifests and refs from the remote instead of the local cache: the configured
    /// remote, or the one given as --remote=URL
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    pub remote: Option<Option<std::ffi::OsString>>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Repos to verify (default: all)
    #[arg(value_name = "REPO_ID")]
    pub repos: Vec<String>,

    /// Verify the remote (the configured one, or the one given as --remote=URL): every
    /// manifest's blobs exist with the stated sizes; with --repair, the remote to repair from
    #[arg(long, value_name = "URL", num_args = 0..=1)]
    pub remote: Option<Option<std::ffi::OsString>>,

    /// Re-fetch corrupt or missing local blobs from the remote (the configured one, or
    /// --remote=URL) and verify the local cache
    #[arg(long)]
    pub repair: bool,

    /// Check that the cache holds every revision and file pinned in this lock file (and each
    /// pin's local-dir), every byte hashed; exit 1 listing what is missing or wrong
    #[arg(long, value_name = "FILE", conflicts_with_all = ["repos", "remote", "repair"])]
    pub lock: Option<PathBuf>,

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

    #[command(flatten)]
    pub remote: RemoteArg,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Overwrite an existing .hf-cache-sync.yaml
    #[arg(long)]
    pub force: bool,
}

/// The completion script for `shell` on `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    use clap::CommandFactory;
    const BIN: &str = "hf-cache-sync";
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
    let mut script = String::from_utf8_lossy(&script).into_owned();
    if shell == clap_complete::Shell::Bash {
        // clap_complete names the bash cases of a subcommand's options after the binary with
        // every `-` made `__subcmd__`, but dispatches to them with every `-` made `__`: with a
        // hyphen in the binary's name no subcommand's flags would complete.
        script = script.replace(&BIN.replace('-', "__subcmd__"), &BIN.replace('-', "__"));
    }
    let _ = out.write_all(script.as_bytes());
}

/// The man page on `out`, or with `dir` a page per command written there.
pub fn write_man(
    dir: Option<&std::path::Path>,
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    use clap::CommandFactory;
    match dir {
        Some(dir) => clap_mangen::generate_to(Cli::command(), dir),
        None => clap_mangen::Man::new(Cli::command()).render(out),
    }
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

    #[test]
    fn definitions_are_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_names_itself_as_typed() {
        use clap::CommandFactory;
        for sub in Cli::command().get_subcommands() {
            let name = sub.get_name();
            let args: Vec<&str> = match name {
                "pull" => vec!["hf-cache-sync", name, "org/m"],
                "completions" => vec!["hf-cache-sync", name, "bash"],
                _ => vec!["hf-cache-sync", name],
            };
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.command.name(), name);
        }
    }

    #[test]
    fn every_help_ends_with_examples() {
        use clap::CommandFactory;
        let mut cli = Cli::command();
        for sub in cli.get_subcommands_mut() {
            let help = sub.render_help().to_string();
            let tail = help.trim_end().rsplit("Examples:").next().unwrap();
            assert!(help.contains("Examples:"), "{}", sub.get_name());
            for line in tail.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    line.starts_with("  hf-cache-sync "),
                    "{}: {line}",
                    sub.get_name()
                );
            }
        }
    }
}
