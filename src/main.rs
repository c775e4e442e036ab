//! hf-cache-sync: parse the command line, resolve settings, run one command, map the result to
//! an exit code (0 success, 1 runtime failure, 2 usage or configuration error).

mod cache;
mod cancel;
mod cli;
mod commands;
mod config;
mod env;
mod examples;
mod failure;
#[cfg(test)]
mod fuzzing;
mod hub;
mod manifest;
mod patterns;
mod remote;
mod report;
mod text;
mod transfer;

use std::process::ExitCode;

use cli::{Cli, Command, FallbackArgs, RepoTypeArg, TransferArgs};
use commands::NotFound;
use commands::{App, FallbackOptions, Outcome, RemoteChoice, TransferOptions};
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
    let cli = match parse_command_line() {
        Ok(cli) => cli,
        Err(e) => refuse_command_line(e),
    };
    let printer = Printer::new(report::Style {
        json: cli.json,
        verbose: cli.verbose,
        quiet: cli.quiet,
        color: report::Style::color_wanted(cli.color.forced()),
    });
    let name = cli.command.name();
    if let Some(code) = answer_without_settings(&cli.command, &printer) {
        return code;
    }
    if cli.cache_dir.len() > 1 && !matches!(cli.command, Command::Dedupe(_)) {
        let err = ConfigError::Usage {
            message: format!(
                "--cache-dir is given {} times; only dedupe works on several caches",
                cli.cache_dir.len()
            ),
            hint: "give --cache-dir once (or run the command once per cache)".into(),
        };
        return report_error(&anyhow::Error::new(err), &printer, name);
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
                Err(_) => return report_error(&anyhow::Error::new(e), &printer, name),
            }
        }
        Err(e) => return report_error(&anyhow::Error::new(e), &printer, name),
    };
    for w in &settings.warnings {
        printer.warn(w);
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
        Command::Prune(args) => args.remote.is_none(),
        Command::Dedupe(_) | Command::Watch(_) => true,
        Command::Rm(args) => args.remote.is_none(),
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
    // A bucket lock still held (a run that ended without releasing one) would hold off every
    // gc until it turns stale. An interrupted run's go with the cleanup below.
    if result.is_some() {
        runtime.block_on(async {
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                remote::bucket_lock::release_all(),
            )
            .await;
        });
    }
    match result {
        Some(Ok(Outcome::Success)) => ExitCode::SUCCESS,
        Some(Ok(Outcome::Failed)) => ExitCode::from(EXIT_FAILURE),
        Some(Err(e)) => report_error(&e, &app.printer, name),
        None => {
            // The command's future is gone. Multipart uploads need a request each to go away;
            // temporary files still being written by a busy thread are removed from the record.
            // A deletion said what it did.
            if !stops_on_request || stopping_is_success {
                eprintln!("interrupted: cleaning up");
            }
            runtime.block_on(async {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(10), async {
                    tokio::join!(
                        remote::s3::abort_open_uploads(),
                        remote::bucket_lock::release_all()
                    )
                })
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
        // Bare, it is the configured remote, as no flag is.
        remote: args.remote.remote.flatten(),
    }
}

/// Commands about the command line itself (completions, the man page): no settings needed, so
/// a broken config file never stands in their way.
fn answer_without_settings(command: &Command, printer: &Printer) -> Option<ExitCode> {
    match command {
        // Written whole into memory first: a closed pipe (`| head`) is not an error.
        Command::Completions(args) => {
            let mut script = Vec::new();
            cli::write_completions(args.shell, &mut script);
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &script);
            Some(ExitCode::SUCCESS)
        }
        Command::Man(args) => Some({
            let mut page = Vec::new();
            match cli::write_man(args.out.as_deref(), &mut page) {
                Ok(()) => {
                    let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), &page);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let place = args
                        .out
                        .as_deref()
                        .map_or("stdout".into(), |d| d.display().to_string());
                    let err = ConfigError::Usage {
                        message: format!("cannot write the man page to {place}: {e}"),
                        hint: "--out takes an existing folder you may write to".into(),
                    };
                    report_error(&anyhow::Error::new(err), printer, command.name())
                }
            }
        }),
        _ => None,
    }
}

async fn dispatch(
    app: &App,
    command: Command,
    config_error: Option<ConfigError>,
    cache_dirs: Vec<std::path::PathBuf>,
) -> anyhow::Result<Outcome> {
    match command {
        // Answered before the settings were loaded.
        Command::Completions(_) | Command::Man(_) => Ok(Outcome::Success),
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
        Command::Pull(args) => pull(app, args).await,
        Command::Gc(args) => {
            let opts = commands::gc::GcOptions {
                remote: RemoteChoice::from_flag(args.remote, None),
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
        Command::Lock(mut args) => {
            let remote = RemoteChoice::from_flag(args.remote, Some(&mut args.repos));
            let opts = commands::lock::LockOptions {
                repos: args.repos,
                output: args.output,
                remote,
                include_files: args.include_files,
                exclude_files: args.exclude_files,
            };
            commands::lock::run(app, opts).await
        }
        other => inspect(app, other, config_error).await,
    }
}

/// `pull`: one repo, or with `--lock` every pin of a lock file.
async fn pull(app: &App, args: cli::PullArgs) -> anyhow::Result<Outcome> {
    if let Some(lock) = args.lock {
        let opts = commands::pull_lock::PullLockOptions {
            lock,
            offline: args.offline,
            transfer: transfer_options(args.transfer),
            fallback: fallback_options(args.fallback),
        };
        return commands::pull_lock::run(app, opts).await;
    }
    if args.offline {
        return Err(ConfigError::Usage {
            message: "--offline goes with --lock FILE: a pull of one repo asks the remote".into(),
            hint: "pin the repo in a lock file (hf-cache-sync lock), then pull --lock \
                   FILE --offline"
                .into(),
        }
        .into());
    }
    commands::pull::run(
        app,
        commands::pull::PullOptions {
            target: transfer::pull::Target {
                repo_id: args.repo.expect("clap requires a repo without --lock"),
                repo_type: args.repo_type.map(|t| match t {
                    RepoTypeArg::Model => cache::RepoType::Model,
                    RepoTypeArg::Dataset => cache::RepoType::Dataset,
                    RepoTypeArg::Space => cache::RepoType::Space,
                    RepoTypeArg::Kernel => cache::RepoType::Kernel,
                }),
                revision: args.revision,
                files: Default::default(),
            },
            include_files: args.include_files,
            exclude_files: args.exclude_files,
            local_dir: args.local_dir,
            transfer: transfer_options(args.transfer),
            fallback: fallback_options(args.fallback),
        },
    )
    .await
}

/// The commands that look at the cache or the remote's catalog, or change them in place.
async fn inspect(
    app: &App,
    command: Command,
    config_error: Option<ConfigError>,
) -> anyhow::Result<Outcome> {
    let quiet = app.printer.quiet;
    match command {
        Command::Status(args) => {
            commands::status::run(app, RemoteChoice::from_flag(args.remote, None)).await
        }
        Command::List(args) => {
            let opts = commands::list::ListOptions {
                remote: RemoteChoice::from_flag(args.remote, None),
                manifests: args.manifests,
                revisions: args.revisions,
                filter: args.filter,
                sort: args.sort,
                limit: args.limit,
                truncate: !args.no_truncate,
                format: args.format.map(|f| match f {
                    cli::ListFormat::Table => report::ListFormat::Table,
                    cli::ListFormat::Json => report::ListFormat::Json,
                    cli::ListFormat::Csv => report::ListFormat::Csv,
                }),
                quiet,
            };
            commands::list::run(app, opts).await
        }
        Command::Diff(mut args) => {
            let opts = commands::diff::DiffOptions {
                remote: RemoteChoice::from_flag(args.remote.remote, Some(&mut args.repos)),
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
                remote: RemoteChoice::from_flag(args.remote, None),
            };
            commands::prune::run(app, opts).await
        }
        Command::Rm(mut args) => {
            let opts = commands::rm::RmOptions {
                remote: RemoteChoice::from_flag(args.remote, Some(&mut args.targets)),
                targets: args.targets,
                dry_run: args.dry_run,
                yes: args.yes,
            };
            commands::rm::run(app, opts).await
        }
        Command::Verify(mut args) => {
            let opts = commands::verify::VerifyOptions {
                remote: RemoteChoice::from_flag(args.remote, Some(&mut args.repos)),
                repos: args.repos,
                repair: args.repair,
                lock: args.lock,
                workers: args.workers.map(usize::from),
            };
            commands::verify::run(app, opts).await
        }
        Command::Doctor(args) => {
            let remote = RemoteChoice::from_flag(args.remote.remote, None);
            commands::doctor::run(app, config_error, args.require_write, remote).await
        }
        Command::Init(args) => commands::init::run(app, args.force).await,
        _ => unreachable!("dispatch runs the other commands"),
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

/// How a run that failed outright ends: `error: …` and, where we know what to do about it,
/// `hint: …` on stderr, and with `--json` one JSON document on stdout saying so. Configuration
/// problems exit 2; a repo that is not there exits 1, as any other failure.
fn report_error(err: &anyhow::Error, printer: &Printer, command: &str) -> ExitCode {
    let mut code = EXIT_FAILURE;
    let mut hints = Vec::new();
    let mut server_code = None;
    if let Some(e) = err.chain().find_map(|c| c.downcast_ref::<ConfigError>()) {
        code = EXIT_USAGE;
        hints.extend(e.hint());
    }
    if let Some(e) = err.chain().find_map(|c| c.downcast_ref::<NotFound>()) {
        hints.push(e.hint());
    }
    if let Some(e) = err
        .chain()
        .find_map(|c| c.downcast_ref::<transfer::local_dir::LocalDirError>())
    {
        if e.is_about_the_folder() {
            code = EXIT_USAGE;
        }
        hints.extend(e.hint());
    }
    if let Some(e) = err.chain().find_map(find::<HubError>) {
        if e.is_configuration() {
            code = EXIT_USAGE;
        }
        hints.extend(e.hint());
    }
    if let Some(e) = err
        .chain()
        .find_map(|c| c.downcast_ref::<remote::bucket_lock::BucketLockError>())
    {
        hints.extend(e.hint());
    }
    if let Some(e) = err.chain().find_map(find::<RemoteError>) {
        if e.is_configuration() {
            code = EXIT_USAGE;
        }
        hints.extend(e.hint());
        server_code = e.code().map(String::from);
    }
    // Each cause once: a message that already quotes its cause does not repeat it.
    let message = text::error_chain(err.as_ref());
    printer.error(&message);
    if let Some(c) = server_code.filter(|_| printer.verbose) {
        printer.note(&format!("server error code: {c}"));
    }
    for h in &hints {
        printer.hint(h);
    }
    if printer.json {
        let doc = serde_json::json!({
            "command": command,
            "ok": false,
            "exit_code": code,
            "error": message,
            "hint": hints.first(),
        });
        report::print_data(&serde_json::to_string_pretty(&doc).expect("serializes"));
    }
    ExitCode::from(code)
}

/// The command line, with clap's own messages (help, usage errors) coloured as `--color` says
/// (clap honours `NO_COLOR` by itself).
fn parse_command_line() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let words: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    let choice = words
        .iter()
        .enumerate()
        .find_map(|(i, w)| match w.strip_prefix("--color") {
            Some(v) if v.starts_with('=') => Some(&v[1..]),
            Some("") => words.get(i + 1).copied(),
            _ => None,
        });
    let mut command = Cli::command();
    match choice {
        Some("always") => command = command.color(clap::ColorChoice::Always),
        Some("never") => command = command.color(clap::ColorChoice::Never),
        _ => {}
    }
    let matches = command.try_get_matches_from(args)?;
    Cli::from_arg_matches(&matches)
}

/// A command line clap refuses (or `--help`, `--version`): clap says why, then a `hint:` line
/// points at the command's help; with `--json` on it, a JSON document on stdout says so too.
fn refuse_command_line(e: clap::Error) -> ! {
    use clap::CommandFactory;
    if !e.use_stderr() {
        e.exit();
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = Cli::command();
    let command = args
        .iter()
        .skip(1)
        .filter_map(|a| a.to_str())
        .find(|a| cli.find_subcommand(a).is_some());
    let hint = format!(
        "`hf-cache-sync {}--help` shows the usage and examples",
        command.map(|c| format!("{c} ")).unwrap_or_default()
    );
    if args.iter().any(|a| a == "--json") {
        let text = e.to_string();
        let error = text
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        let doc = serde_json::json!({
            "command": command,
            "ok": false,
            "exit_code": e.exit_code(),
            "error": error,
            "hint": hint,
        });
        report::print_data(&serde_json::to_string_pretty(&doc).expect("serializes"));
    }
    let _ = e.print();
    eprintln!("hint: {hint}");
    std::process::exit(e.exit_code())
}
