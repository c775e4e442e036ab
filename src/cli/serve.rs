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
    /// What a fallback serves streams through to the client, verified, and is written nowhere
    /// unless --write-through.
    #[arg(long, value_name = "SOURCE")]
    pub fallback: Vec<std::ffi::OsString>,

    /// What a fallback serves lands in the remote as `push` writes it (blobs, then the tree
    /// listing and manifest, then the ref), so the next request is served from the remote: one
    /// fetch a revision, into the cache dir, as `pull --write-through` does it, however many
    /// clients ask at once; a gated repo only with team.allow_gated (default:
    /// pull.write_through)
    #[arg(long)]
    pub write_through: bool,

    /// Serve complete revisions from this process's own cache dir (HF_HUB_CACHE or
    /// --cache-dir) before asking the remote: one node's cache serves its rack (default:
    /// serve.from_cache)
    ///
    /// A revision is complete when the cache holds its tree listing (trees/<commit>.json,
    /// written by huggingface_hub 2.x and by pull); one without (a partial download) is asked
    /// of the remote and the fallbacks as without this flag. Blobs are verified as they are
    /// read: a corrupt or missing one is served from the next source. A remote is still
    /// required (--remote or the configured one), though it may lack the repos the cache
    /// serves. With --write-through, what a fallback serves lands in the cache dir (and the
    /// remote) and is then served from the cache dir.
    #[arg(long)]
    pub from_cache: bool,

    /// Who may read: `tokens=FILE`, the team's own bearer tokens, one a line (`#` comments),
    /// a client sending one as HF_TOKEN; or `hub`, gated and private repos only for a client
    /// whose HF_TOKEN the upstream Hub (this process's HF_ENDPOINT) admits, public ones for
    /// anyone; repeatable (`--auth hub --auth tokens=FILE`, or `hub,tokens=FILE`: the file's
    /// tokens then read the repos the Hub does not know). Required to listen on an address
    /// other than loopback
    #[arg(long, value_name = "hub|tokens=FILE")]
    pub auth: Vec<String>,

    /// Answer each LFS file the bucket holds with a 302 to a presigned GET URL of its blob,
    /// valid this long (`90s`, `15m`, `1h`; bare --presign: 15m), as the Hub sends clients to its
    /// CDN: the bucket then serves the bytes and serve only answers metadata, so many replicas
    /// and big shards cost serve next to nothing. S3 remotes only
    ///
    /// What it gives up: the bytes no longer pass through serve, so serve cannot hash them on the
    /// way and withhold a corrupt object from the client. Clients still check: huggingface_hub
    /// checks each file's size, and `hf cache verify` (or `hf-cache-sync verify`) its hash. Small
    /// (non-LFS) files, and blobs the bucket lacks, still stream from serve, verified. Anyone
    /// holding a URL may fetch that blob until it expires; --auth is checked before any is signed.
    #[arg(
        long,
        value_name = "DURATION",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = crate::ops::serve::DEFAULT_PRESIGN
    )]
    pub presign: Option<String>,

    #[command(flatten)]
    pub limit_rate: super::LimitRateArg,
}
