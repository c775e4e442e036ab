//! `serve`: the address and access checked (a non-loopback address needs `--auth`), the
//! pull's sources opened (after the server's own cache dir with `--from-cache`), then the
//! server ([`crate::serve`]) run until a stop request.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::{Env, FallbackOptions};
use super::{ListOptions, Side};
use crate::cancel::Cancel;
use crate::config::ConfigError;
use crate::net::TransferCtx;
use crate::report::NoProgress;
use crate::serve::through::FetchRevision;
use crate::serve::{AccessLog, HubGate, ListRepos, RepoRow, Shared, Tokens};
use crate::transfer::source::{Source, Sources};

use super::TransferOptions;

/// The address `serve` listens on unless told.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8090";
/// How long a presigned URL stays valid when `--presign` names no duration.
pub const DEFAULT_PRESIGN: &str = "15m";
/// The longest a SigV4 presigned URL may be valid.
const MAX_PRESIGN: Duration = Duration::from_secs(7 * 24 * 3600);

/// `--presign=DURATION`: how long each URL is valid, a second to a week.
pub fn presign_ttl(text: &str) -> Result<Duration, ConfigError> {
    let usage = |why: String| ConfigError::Usage {
        message: format!("--presign={text}: {why}"),
        hint: format!(
            "give how long each URL stays valid, from 1s to 7d, e.g. --presign=15m or \
             --presign=1h ({})",
            crate::config::DURATION_HINT
        ),
    };
    let ttl = crate::config::parse_duration(text).map_err(usage)?;
    if ttl < Duration::from_secs(1) || ttl > MAX_PRESIGN {
        return Err(usage(
            "out of range: S3 signs URLs valid from 1 second to 7 days".into(),
        ));
    }
    Ok(ttl)
}

/// `--presign` hands out URLs of the primary remote's objects: only an S3 bucket has them.
fn check_presign(primary: &Source, ttl: Option<Duration>) -> Result<(), ConfigError> {
    if ttl.is_none() {
        return Ok(());
    }
    if let Source::Remote { remote, .. } = primary {
        if remote.can_presign() {
            return Ok(());
        }
    }
    Err(ConfigError::Usage {
        message: format!(
            "--presign needs an S3 remote, and {} is not one: a directory has no URL a client \
             could be sent to",
            primary.describe()
        ),
        hint: "drop --presign (serve then streams every file itself), or serve from a bucket: \
               --remote=s3://bucket[/prefix]"
            .into(),
    })
}

/// How long responses in flight may go on after a stop request.
const GRACE: Duration = Duration::from_secs(5);

/// Who may read: the team's tokens, the upstream Hub's word, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSpec {
    /// `tokens=FILE`: bearer tokens, one a line in this file.
    pub tokens: Option<PathBuf>,
    /// `hub`: gated and private repos only for tokens the upstream Hub admits.
    pub hub: bool,
}

/// The forms `--auth` takes, for usage errors.
const AUTH_FORMS: &str = "--auth tokens=FILE (the team's bearer tokens, one a line; clients \
                          send one as HF_TOKEN), --auth hub (gated and private repos only for \
                          clients whose HF_TOKEN the upstream Hub admits), or both: --auth hub \
                          --auth tokens=FILE, or --auth hub,tokens=FILE";

impl AuthSpec {
    /// Every `--auth` given: `hub`, `tokens=FILE`, or both (repeated, or `hub,tokens=FILE`;
    /// what follows `tokens=` is the file's path, commas and all). None given is `None`.
    pub fn parse(values: &[String]) -> Result<Option<AuthSpec>, ConfigError> {
        if values.is_empty() {
            return Ok(None);
        }
        let mut spec = AuthSpec::default();
        for text in values {
            let usage = |why: &str| ConfigError::Usage {
                message: format!("--auth {text}: {why}"),
                hint: format!("pass {AUTH_FORMS}"),
            };
            let mut rest = text.as_str();
            loop {
                if let Some(file) = rest.strip_prefix("tokens=") {
                    if file.is_empty() {
                        return Err(usage("tokens= names no file"));
                    }
                    if spec.tokens.replace(file.into()).is_some() {
                        return Err(usage("a second tokens file; give one"));
                    }
                    break;
                }
                let (word, after) = match rest.split_once(',') {
                    Some((w, a)) => (w, Some(a)),
                    None => (rest, None),
                };
                if word != "hub" {
                    return Err(usage(&format!(
                        "{word:?} is not a way of checking clients serve knows"
                    )));
                }
                spec.hub = true;
                match after {
                    Some(a) => rest = a,
                    None => break,
                }
            }
        }
        Ok(Some(spec))
    }
}

pub struct ServeOptions {
    /// `ADDR:PORT` as given.
    pub listen: String,
    pub remote: Option<std::ffi::OsString>,
    pub fallback: FallbackOptions,
    pub auth: Option<AuthSpec>,
    /// `--limit-rate`: the cap on the bytes every response together reads from the sources.
    pub limit_rate: Option<crate::config::Rate>,
    /// `--from-cache`: complete revisions of the server's cache dir are served from it before
    /// the remote is asked.
    pub from_cache: bool,
    /// `--presign`: LFS files the bucket holds are answered with a 302 to a URL valid this long.
    pub presign: Option<Duration>,
}

/// Where the server answers, for the line that says it is ready.
pub struct Ready {
    pub addr: SocketAddr,
    pub sources: Vec<String>,
    /// Who may read, said in words (`None`: anyone who reaches it).
    pub auth: Option<String>,
}

/// Who may read, for the line that says the server is ready.
fn auth_note(auth: &AuthSpec, hub: Option<String>) -> Option<String> {
    let tokens = auth.tokens.as_ref().map(|_| "the team's bearer tokens");
    match (hub, tokens) {
        (Some(h), Some(t)) => Some(format!(
            "gated and private repos for tokens {h} admits, repos it does not know for {t}"
        )),
        (Some(h), None) => Some(format!("gated and private repos for tokens {h} admits")),
        (None, Some(t)) => Some(t.to_string()),
        (None, None) => None,
    }
}

/// What the server did, said when it stops.
#[derive(Debug, Serialize)]
pub struct ServeReport {
    pub command: &'static str,
    pub listen: String,
    pub requests: u64,
    /// Responses still going when the grace period after the stop request ran out.
    pub cut_at_stop: bool,
}

/// Resolves `ADDR:PORT` (`localhost:8090` too) to the address to bind.
fn listen_addr(text: &str) -> Result<SocketAddr, ConfigError> {
    let usage = |why: String| ConfigError::Usage {
        message: format!("--listen {text}: {why}"),
        hint: format!("give an address and port, e.g. --listen {DEFAULT_LISTEN} or 0.0.0.0:8090"),
    };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let mut found = text.to_socket_addrs().map_err(|e| usage(e.to_string()))?;
    found.next().ok_or_else(|| usage("names no address".into()))
}

/// A non-loopback address is refused without `--auth`: anyone who reaches it would read the
/// team's cache.
pub fn check_access(addr: &SocketAddr, auth: Option<&AuthSpec>) -> Result<(), ConfigError> {
    if auth.is_some() || crate::serve::is_loopback(addr) {
        return Ok(());
    }
    Err(ConfigError::Usage {
        message: format!(
            "refusing to listen on {addr} without --auth: anyone who can reach it could read \
             the team's cache"
        ),
        hint: format!("pass {AUTH_FORMS}; or listen on 127.0.0.1"),
    })
}

/// Runs the server until `cancel` asks it to stop. `ready` is called once it listens; each
/// request's entry goes to `log`.
pub async fn serve(
    env: &Env<'_>,
    opts: ServeOptions,
    cancel: &Cancel,
    (ready, log): (impl FnOnce(&Ready), AccessLog),
) -> Result<ServeReport> {
    let addr = listen_addr(&opts.listen)?;
    check_access(&addr, opts.auth.as_ref())?;
    let auth = opts.auth.clone().unwrap_or_default();
    let tokens = match &auth.tokens {
        Some(file) => Some(Tokens::read(file).map_err(|e| {
            ConfigError::Usage {
                message: e.to_string(),
                hint: "--auth tokens=FILE takes a file of bearer tokens, one a line (`#` starts a \
                   comment)"
                    .into(),
            }
        })?),
        None => None,
    };
    // The upstream Hub (this process's HF_ENDPOINT and HF_TOKEN) decides who reads what.
    let gate = match auth.hub {
        true => Some(HubGate::new(crate::hub::Hub::open(env.settings)?)),
        false => None,
    };
    let mut sources = env.open_sources(opts.remote.as_deref(), &opts.fallback)?;
    if opts.from_cache || env.settings.serve_from_cache {
        sources = sources.led_by(Source::Cache {
            dir: env.settings.cache_dir.clone(),
        });
    }
    check_presign(sources.home_source(), opts.presign)?;
    let settings = env.settings;
    let limit = opts.limit_rate.or(settings.transfer.limit_rate);
    let mut ctx = TransferCtx::new(
        settings,
        settings.transfer.workers,
        limit,
        Arc::new(NoProgress),
    );
    let through = match env.write_through(&opts.fallback) {
        // Its sources are the server's after the cache dir, if that is asked first.
        true => Some(read_through(
            settings.clone(),
            (
                env.open_sources(opts.remote.as_deref(), &opts.fallback)?,
                sources.home(),
            ),
            ctx.rate.clone(),
        )),
        false => None,
    };
    // One GET a response, streamed: a client's memory is its queue, whatever the blob's size,
    // and a slow client holds no share of the others' transfer budget.
    ctx.multipart_threshold = u64::MAX;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ConfigError::Usage {
            message: format!("cannot listen on {addr}: {e}"),
            hint: "another process may answer there (another serve?): pick another \
                       --listen ADDR:PORT"
                .into(),
        })?;
    let bound = listener.local_addr().context("the listening address")?;
    for url in sources.hub_urls() {
        refuse_loop(&url, &bound)?;
    }
    if let Some(g) = &gate {
        refuse_loop(&g.endpoint_url(), &bound)?;
    }
    let gate_note = gate.as_ref().map(|g| g.describe());
    let described = sources.describe();
    let lister = repo_lister(sources.home_source(), settings.transfer.workers);
    let mut shared = Shared::new(
        sources,
        ctx,
        (tokens, gate),
        (settings.cache_dir.clone(), settings.allow_gated),
        log,
    );
    if let Some(lister) = lister {
        shared = shared.listing_with(lister);
    }
    if let Some(fetch) = through {
        shared = shared.writing_through(fetch);
    }
    if let Some(ttl) = opts.presign {
        shared = shared.presigning(ttl);
    }
    let shared = Arc::new(shared);
    ready(&Ready {
        addr: bound,
        sources: described,
        auth: auth_note(&auth, gate_note),
    });
    let stopped = crate::serve::run(listener, shared, cancel.requested_async(), GRACE).await;
    Ok(ServeReport {
        command: "serve",
        listen: bound.to_string(),
        requests: stopped.requests,
        cut_at_stop: stopped.cut_at_stop,
    })
}

/// `--write-through`: a revision is fetched as `pull --write-through` fetches it (the same
/// operation, into the server's cache dir, under the fleet's lease), on sources of its own:
/// the server's from its remote on, whose index in the server's list is `home`; within the
/// server's `--limit-rate` (`rate`, which its responses share).
fn read_through(
    settings: crate::config::Settings,
    (sources, home): (Sources, usize),
    rate: crate::net::rate::RateLimiter,
) -> FetchRevision {
    struct Quiet;
    impl crate::report::Reporter for Quiet {
        fn progress(&self, _: &str) -> Arc<dyn crate::report::Progress> {
            Arc::new(NoProgress)
        }
        fn detail(&self, _: &str) {}
    }
    let both = Arc::new((settings, sources));
    Arc::new(move |mut plan| {
        plan.tier -= home;
        let (settings, sources) = &*both;
        let rate = &rate;
        // The pull's future holds borrows the compiler cannot prove `Send`: it runs on a
        // blocking thread of its own, its transfers on the runtime's workers.
        tokio::runtime::Handle::current().block_on(async move {
            let env = Env {
                settings,
                reporter: &Quiet,
            };
            let name = format!("{}@{}", plan.repo_id, plan.commit);
            let transfer = TransferOptions::default();
            let mut ctx = env.transfer_ctx(&transfer, "read-through");
            ctx.rate = rate.clone();
            let landing = super::pull::Landing {
                plan,
                local_dir: None,
            };
            let (landed, _) =
                super::pull::fetch_and_land(&env, sources, vec![landing], &ctx, &transfer, true)
                    .await
                    .map_err(|e| crate::text::error_chain(e.as_ref()))?;
            let landed = landed.into_iter().next().ok_or("nothing fetched")?;
            if let Some(why) = landed.error_text() {
                return Err(why);
            }
            let lines: Vec<String> = landed.written.iter().map(|w| w.describe()).collect();
            match landed.written.iter().all(|w| w.is_written()) && !landed.written.is_empty() {
                true => Ok(format!("read-through of {name}: {}", lines.join("; "))),
                false => Err(lines.join("; ")),
            }
        })
    })
}

/// The page's listing of the remote: what `list --remote --manifests` lists (the same
/// operation), one row a repo.
fn repo_lister(home: &Source, workers: usize) -> Option<ListRepos> {
    let Source::Remote { remote, layout } = home else {
        return None;
    };
    let (remote, layout) = (remote.clone(), layout.clone());
    Some(Arc::new(move || {
        let (remote, layout) = (remote.clone(), layout.clone());
        Box::pin(async move {
            let side = Side::Remote {
                remote: &remote,
                layout: &layout,
                workers,
                read: true,
            };
            let opts = ListOptions {
                revisions: false,
                filters: Vec::new(),
                sort: None,
                limit: None,
            };
            let listing = super::list(side, &opts)
                .await
                .map_err(|e| format!("{e:#}"))?;
            Ok(listing
                .entries
                .into_iter()
                .map(|e| RepoRow {
                    repo_id: e.repo_id,
                    repo_type: e.repo_type,
                    revisions: e.revisions,
                    refs: e.refs.unwrap_or_default(),
                    size: e.size,
                })
                .collect())
        })
    }))
}

/// A fallback Hub at this server's own address (`HF_ENDPOINT` exported for clients, then the
/// server started in the same shell) would ask itself for what it lacks, without end.
fn refuse_loop(source_url: &str, bound: &SocketAddr) -> Result<(), ConfigError> {
    let Ok(url) = reqwest::Url::parse(source_url) else {
        return Ok(());
    };
    let Some(port) = url.port_or_known_default() else {
        return Ok(());
    };
    let host = url.host_str().unwrap_or("").trim_matches(['[', ']']);
    let here = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => ip == bound.ip() || ip.is_loopback(),
        Err(_) => host == "localhost",
    };
    if !(here && port == bound.port()) {
        return Ok(());
    }
    Err(ConfigError::Usage {
        message: format!(
            "the Hub fallback is at {source_url}, this server's own address: it would ask \
             itself for what the remote lacks"
        ),
        hint: "HF_ENDPOINT is the Hub for the server: start it with the real one (e.g. \
               HF_ENDPOINT=https://huggingface.co hf-cache-sync serve …), or without \
               --fallback hf-hub"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_at_the_servers_own_address_is_refused() {
        let bound: SocketAddr = "127.0.0.1:8090".parse().unwrap();
        assert!(refuse_loop("http://127.0.0.1:8090", &bound).is_err());
        assert!(refuse_loop("http://localhost:8090", &bound).is_err());
        assert!(refuse_loop("http://127.0.0.1:8091", &bound).is_ok());
        assert!(refuse_loop("https://huggingface.co", &bound).is_ok());
        // Another node's server, chained: not this one.
        let any: SocketAddr = "0.0.0.0:8090".parse().unwrap();
        assert!(refuse_loop("http://10.1.2.3:8090", &any).is_ok());
        assert!(refuse_loop("http://127.0.0.1:8090", &any).is_err());
    }

    #[test]
    fn only_loopback_goes_without_auth() {
        let local: SocketAddr = "127.0.0.1:8090".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:8090".parse().unwrap();
        assert!(check_access(&local, None).is_ok());
        let err = check_access(&any, None).unwrap_err();
        assert!(err.hint().unwrap().contains("--auth"), "{:?}", err.hint());
        let tokens = AuthSpec {
            tokens: Some("t".into()),
            hub: false,
        };
        assert!(check_access(&any, Some(&tokens)).is_ok());
        let hub = AuthSpec {
            tokens: None,
            hub: true,
        };
        assert!(check_access(&any, Some(&hub)).is_ok());
        assert_eq!(listen_addr("localhost:1").unwrap().port(), 1);
        assert!(listen_addr("8090").is_err());
    }

    #[test]
    fn presign_durations() {
        assert_eq!(presign_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(presign_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(
            presign_ttl(DEFAULT_PRESIGN).unwrap(),
            Duration::from_secs(900)
        );
        assert_eq!(presign_ttl("7d").unwrap(), MAX_PRESIGN);
        for bad in ["0s", "8d", "soon", "15", ""] {
            let err = presign_ttl(bad).unwrap_err();
            assert!(err.to_string().contains("--presign="), "{bad}: {err}");
            assert!(err.hint().unwrap().contains("--presign=15m"), "{bad}");
        }
    }

    #[test]
    fn auth_specs() {
        let parse =
            |v: &[&str]| AuthSpec::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let spec = |tokens: Option<&str>, hub| AuthSpec {
            tokens: tokens.map(PathBuf::from),
            hub,
        };
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(
            parse(&["tokens=/etc/t"]).unwrap(),
            Some(spec(Some("/etc/t"), false))
        );
        assert_eq!(parse(&["hub"]).unwrap(), Some(spec(None, true)));
        assert_eq!(
            parse(&["hub", "tokens=/etc/t"]).unwrap(),
            Some(spec(Some("/etc/t"), true))
        );
        assert_eq!(
            parse(&["hub,tokens=/etc/a,b"]).unwrap(),
            Some(spec(Some("/etc/a,b"), true))
        );
        for bad in [
            &["hubb"][..],
            &["tokens="],
            &["token=x"],
            &["hub,"],
            &["tokens=a", "tokens=b"],
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.hint().unwrap().contains("--auth hub"), "{bad:?}");
        }
    }
}
