//! hf-cache-sync: parse the command line, resolve settings, run one command, map the result to
//! an exit code (0 success, 1 runtime failure, 2 usage or configuration error).

mod cache;
mod cancel;
mod cli;
mod commands;
mod config;
mod env;
mod failure;
#[cfg(test)]
mod fuzzing;
mod hub;
mod manifest;
mod remote;
mod report;
mod text;
mod transfer;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, FallbackArgs, RepoTypeArg, TransferArgs};
use commands::{App, FallbackOptions, Outcome, TransferOptions};
use config::{ConfigError, Overrides, Settings};
use hub::HubError;
use remote::RemoteError;
use report::Printer;

const EXIT_FAILURE: u8 = 1;
const EXIT_USAGE: u8 = 2;
/// 128 + SIGINT, as shells report a command stopped by Ctrl-C.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    limit_allocator_retention();
    raise_open_file_limit();
    let cli = Cli::parse();
    let printer = Printer::new(cli.json, cli.verbose);
    if cli.cache_dir.len() > 1 && !matches!(cli.command, Command::Dedupe(_)) {
        let err = ConfigError::Usage {
            message: format!(
                "--cache-dir is given {} times; only dedupe works on several caches",
                cli.cache_dir.len()
            ),
            hint: "give --cache-dir once (or run the command once per cache)".into(),
        };
        return report_error(&anyhow::Error::new(err), cli.verbose);
    }
    let overrides = Overrides {
        config: cli.config.clone(),
        cache_dir: cli.cache_dir.first().cloned(),
    };
    let (settings, config_error) = match Settings::load(&overrides) {
        Ok(s) => (s, None),
        // doctor reports a broken config file among its checks; init --force replaces it.
        Err(e) if matches!(cli.command, Command::Doctor(_) | Command::Init(_)) => {
            match Settings::load_without_file(&overrides) {
                Ok(s) => (s, Some(e)),
                Err(_) => return report_error(&anyhow::Error::new(e), cli.verbose),
            }
        }
        Err(e) => return report_error(&anyhow::Error::new(e), cli.verbose),
    };
    for w in &settings.warnings {
        eprintln!("warning: {w}");
    }
    let app = App {
        settings,
        printer,
        cancel: cancel::Cancel::default(),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    // A deletion or a dedupe stops between two items and reports what it did, rather than
    // being dropped half-way through a revision; a watch lets the push in flight finish and
    // ends as it should (exit 0).
    let stops_on_request = match &cli.command {
        Command::Prune(args) => !args.remote,
        Command::Dedupe(_) | Command::Watch(_) => true,
        Command::Rm(args) => !args.remote,
        _ => false,
    };
    let stopping_is_success = matches!(cli.command, Command::Watch(_));
    let cache_dirs = cli.cache_dir.clone();
    let result = runtime.block_on(async {
        let work = dispatch(&app, cli.command, config_error, cache_dirs);
        tokio::pin!(work);
        let mut stop = StopSignals::new();
        tokio::select! {
            result = &mut work => return Some(result),
            _ = stop.next() => {}
        }
        app.cancel.request();
        if stops_on_request {
            // A second signal does not wait for it.
            tokio::select! {
                result = &mut work => if stopping_is_success {
                    return Some(result);
                },
                _ = stop.next() => {}
            }
        }
        None
    });
    match result {
        Some(Ok(Outcome::Success)) => ExitCode::SUCCESS,
        Some(Ok(Outcome::Failed)) => ExitCode::from(EXIT_FAILURE),
        Some(Err(e)) => report_error(&e, cli.verbose),
        None => {
            // The command's future is gone. Multipart uploads need a request each to go away;
            // temporary files still being written by a busy thread are removed from the record.
            // A deletion said what it did.
            if !stops_on_request || stopping_is_success {
                eprintln!("interrupted: cleaning up");
            }
            runtime.block_on(async {
                let _ = tokio::time::timeout(
                    std::time::Duration::from_secs(10),
                    remote::s3::abort_open_uploads(),
                )
                .await;
            });
            cache::temp::remove_all();
            // Threads still waiting on another process's lock must not hold the exit.
            runtime.shutdown_background();
            ExitCode::from(EXIT_INTERRUPTED)
        }
    }
}

/// Transfer buffers are megabytes each and freed on other threads; glibc would keep them in
/// per-thread arenas and let the footprint grow past the transfer budget. Serving large blocks
/// straight from the kernel returns them on free.
fn limit_allocator_retention() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// A pull-all holds a lock per repo for its whole run and prune one per repo of the cache, on
/// top of blob locks and connections: 1024 descriptors (a common soft limit) is not enough for a
/// large cache. Raise the soft limit toward the hard one, as Go programs do on start.
fn raise_open_file_limit() {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit only read and write the rlimit struct passed in.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        // macOS refuses more than OPEN_MAX (10240) even with an unlimited hard limit.
        let wanted = lim.rlim_max.min(if cfg!(target_os = "macos") {
            10240
        } else {
            1 << 16
        });
        if lim.rlim_cur < wanted {
            lim.rlim_cur = wanted;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn fallback_options(args: FallbackArgs) -> FallbackOptions {
    FallbackOptions {
        fallback: args
            .fallback
            .iter()
            .map(|f| config::FallbackSpec::parse(f))
            .collect(),
        write_through: args.write_through,
    }
}

/// Ctrl-C (SIGINT) and SIGTERM (a service manager, `timeout`, a CI runner cancelling a job): a
/// request to stop, handled alike.
struct StopSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
}

impl StopSignals {
    fn new() -> StopSignals {
        StopSignals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(term) = self.term.as_mut() {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn transfer_options(args: TransferArgs) -> TransferOptions {
    TransferOptions {
        dry_run: args.dry_run,
        workers: args.workers.map(usize::from),
        remote: args.remote,
    }
}

async fn dispatch(
    app: &App,
    command: Command,
    config_error: Option<ConfigError>,
    cache_dirs: Vec<std::path::PathBuf>,
) -> anyhow::Result<Outcome> {
    match command {
        Command::Push(args) => {
            commands::push::run(
                app,
                commands::push::PushOptions {
                    repos: args.repos,
                    include: args.filter.include,
                    exclude: args.filter.exclude,
                    transfer: transfer_options(args.transfer),
                },
            )
            .await
        }
        Command::Pull(args) => {
            commands::pull::run(
                app,
                commands::pull::PullOptions {
                    target: transfer::pull::Target {
                        repo_id: args.repo,
                        repo_type: args.repo_type.map(|t| match t {
                            RepoTypeArg::Model => cache::RepoType::Model,
                            RepoTypeArg::Dataset => cache::RepoType::Dataset,
                            RepoTypeArg::Space => cache::RepoType::Space,
                            RepoTypeArg::Kernel => cache::RepoType::Kernel,
                        }),
                        revision: args.revision,
                    },
                    transfer: transfer_options(args.transfer),
                    fallback: fallback_options(args.fallback),
                },
            )
            .await
        }
        Command::Status(args) => commands::status::run(app, args.remote).await,
        Command::List(args) => {
            let opts = commands::list::ListOptions {
                remote: args.remote,
                manifests: args.manifests,
                revisions: args.revisions,
                filter: args.filter,
                sort: args.sort,
                format: args.format.map(|f| match f {
                    cli::ListFormat::Table => report::ListFormat::Table,
                    cli::ListFormat::Json => report::ListFormat::Json,
                    cli::ListFormat::Csv => report::ListFormat::Csv,
                }),
                quiet: args.quiet,
            };
            commands::list::run(app, opts).await
        }
        Command::Diff(args) => {
            let opts = commands::diff::DiffOptions {
                repos: args.repos,
                exit_code: args.exit_code,
            };
            commands::diff::run(app, opts).await
        }
        Command::Prune(args) => {
            let opts = commands::prune::PruneOptions {
                max_gb: args.max_gb,
                detached: args.detached,
                older_than: args.older_than,
                dry_run: args.dry_run,
                yes: args.yes,
                remote: args.remote,
            };
            commands::prune::run(app, opts).await
        }
        Command::Rm(args) => {
            let opts = commands::rm::RmOptions {
                targets: args.targets,
                dry_run: args.dry_run,
                yes: args.yes,
                remote: args.remote,
            };
            commands::rm::run(app, opts).await
        }
        Command::Verify(args) => {
            let opts = commands::verify::VerifyOptions {
                repos: args.repos,
                remote: args.remote,
                repair: args.repair,
                workers: args.workers.map(usize::from),
            };
            commands::verify::run(app, opts).await
        }
        Command::Doctor(args) => commands::doctor::run(app, config_error, args.require_write).await,
        Command::Init(args) => commands::init::run(app, args.force).await,
        Command::Gc(args) => {
            let opts = commands::gc::GcOptions {
                remote: args.remote,
                grace: Some(args.grace),
                dry_run: args.dry_run,
                yes: args.yes,
            };
            commands::gc::run(app, opts).await
        }
        Command::Watch(args) => {
            let opts = commands::watch::WatchOptions {
                debounce: args.debounce,
                include: args.filter.include,
                exclude: args.filter.exclude,
                transfer: TransferOptions {
                    dry_run: false,
                    workers: args.workers.map(usize::from),
                    remote: args.remote,
                },
            };
            commands::watch::run(app, opts).await
        }
        Command::Dedupe(args) => {
            let cache_dirs = if cache_dirs.is_empty() {
                vec![app.settings.cache_dir.clone()]
            } else {
                cache_dirs
            };
            let opts = commands::dedupe::DedupeOptions {
                cache_dirs,
                dry_run: args.dry_run,
            };
            commands::dedupe::run(app, opts).await
        }
        Command::PullAll(args) => {
            commands::pull_all::run(
                app,
                commands::pull_all::PullAllOptions {
                    include: args.filter.include,
                    exclude: args.filter.exclude,
                    limit: args.limit,
                    transfer: transfer_options(args.transfer),
                    fallback: fallback_options(args.fallback),
                },
            )
            .await
        }
    }
}

/// `E` in one link of an error chain, also when it is carried by a transfer error or a pull's.
fn find<'a, E: std::error::Error + 'static>(
    c: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    use remote::TransferError;
    use transfer::pull::PullError;
    let inner: &'a (dyn std::error::Error + 'static) = match c.downcast_ref::<TransferError>() {
        Some(TransferError::Remote(e)) => e,
        Some(TransferError::Hub(e)) => e,
        _ => match c.downcast_ref::<PullError>() {
            Some(PullError::Remote(e)) => e,
            Some(PullError::Hub(e)) => e,
            _ => c,
        },
    };
    inner.downcast_ref::<E>()
}

/// `error: …` and, where we know what to do about it, `hint: …`. Configuration problems exit 2.
fn report_error(err: &anyhow::Error, verbose: bool) -> ExitCode {
    eprintln!("error: {err:#}");
    let mut code = EXIT_FAILURE;
    if let Some(e) = err.downcast_ref::<ConfigError>() {
        code = EXIT_USAGE;
        if let Some(h) = e.hint() {
            eprintln!("hint: {h}");
        }
    }
    if let Some(e) = err.chain().find_map(find::<HubError>) {
        if e.is_configuration() {
            code = EXIT_USAGE;
        }
        if let Some(h) = e.hint() {
            eprintln!("hint: {h}");
        }
    }
    if let Some(e) = err.chain().find_map(find::<RemoteError>) {
        if e.is_configuration() {
            code = EXIT_USAGE;
        }
        if let Some(h) = e.hint() {
            eprintln!("hint: {h}");
        }
        if verbose {
            if let Some(c) = e.code() {
                eprintln!("server error code: {c}");
            }
        }
    }
    ExitCode::from(code)
}
