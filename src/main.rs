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
mod lockfile;
mod manifest;
mod net;
mod ops;
mod options;
mod patterns;
mod remote;
mod report;
mod serve;
mod task;
mod text;
mod transfer;

use std::process::ExitCode;

use cli::{Cli, Command};
use commands::NotFound;
use commands::{App, Outcome};
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
    let (settings, config_error) = match load_settings(&cli) {
        Ok(loaded) => loaded,
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
        Command::Dedupe(_) | Command::Watch(_) | Command::Serve(_) => true,
        Command::Rm(args) => args.remote.is_none(),
        _ => false,
    };
    let stopping_is_success = matches!(cli.command, Command::Watch(_) | Command::Serve(_));
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
    if matches!(result, Some(Ok(Outcome::Failed) | Err(_))) {
        say_kept_partials(&app.printer);
    }
    match result {
        Some(Ok(outcome)) => {
            let code = match outcome {
                Outcome::Success => 0,
                Outcome::Failed => EXIT_FAILURE,
            };
            app.printer.finish(code);
            ExitCode::from(code)
        }
        Some(Err(e)) => {
            app.printer.discard();
            report_error(&e, &app.printer, name)
        }
        None => {
            app.printer.finish(EXIT_INTERRUPTED);
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
            say_kept_partials(&app.printer);
            // Threads still waiting on another process's lock must not hold the exit.
            runtime.shutdown_background();
            ExitCode::from(EXIT_INTERRUPTED)
        }
    }
}

/// Says what partial downloads a run that failed or was interrupted leaves for the next one.
fn say_kept_partials(printer: &Printer) {
    let kept = cache::temp::kept_partials();
    if kept.is_empty() {
        return;
    }
    let bytes = kept.iter().map(|(_, len)| len).sum();
    let what = if kept.len() == 1 {
        "1 partial download".to_string()
    } else {
        format!("{} partial downloads", kept.len())
    };
    printer.note(&format!(
        "kept {what} ({}) in the cache: the next pull resumes from there",
        report::human_bytes(bytes)
    ));
}

/// The settings the command runs with, and for `doctor` a config file that failed to load
/// (it reports that among its checks; `init --force` replaces the file).
fn load_settings(cli: &Cli) -> Result<(Settings, Option<ConfigError>), ConfigError> {
    if cli.cache_dir.len() > 1 && !matches!(cli.command, Command::Dedupe(_)) {
        return Err(ConfigError::Usage {
            message: format!(
                "--cache-dir is given {} times; only dedupe works on several caches",
                cli.cache_dir.len()
            ),
            hint: "give --cache-dir once (or run the command once per cache)".into(),
        });
    }
    let overrides = Overrides {
        config: cli.config.clone(),
        cache_dir: cli.cache_dir.first().cloned(),
    };
    match Settings::load(&overrides) {
        Ok(s) => Ok((s, None)),
        Err(e) if matches!(cli.command, Command::Doctor(_) | Command::Init(_)) => {
            match Settings::load_without_file(&overrides) {
                Ok(s) => Ok((s, Some(e))),
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
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

/// Runs the command: one arm a command, so a new command has no home until it has an arm here.
async fn dispatch(
    app: &App,
    command: Command,
    config_error: Option<ConfigError>,
    cache_dirs: Vec<std::path::PathBuf>,
) -> anyhow::Result<Outcome> {
    use commands::*;
    match command {
        // Answered before the settings were loaded.
        Command::Completions(_) | Command::Man(_) => Ok(Outcome::Success),
        Command::Push(args) => push::run(app, options::push(args)).await,
        Command::Pull(args) => match options::pull(args)? {
            options::Pull::Repo(opts) => pull::run(app, *opts).await,
            options::Pull::Lock(opts) => pull_lock::run(app, opts).await,
        },
        Command::PullAll(args) => pull_all::run(app, options::pull_all(args)).await,
        Command::Lock(args) => lock::run(app, options::lock(args)).await,
        Command::Gc(args) => gc::run(app, options::gc(args)).await,
        Command::Watch(args) => watch::run(app, options::watch(args)).await,
        Command::Serve(args) => commands::serve::run(app, options::serve(args)?).await,
        Command::Dedupe(args) => dedupe::run(app, options::dedupe(args, cache_dirs, app)).await,
        Command::Status(args) => status::run(app, RemoteChoice::from_flag(args.remote, None)).await,
        Command::List(args) => list::run(app, options::list(args, app.printer.quiet)).await,
        Command::Diff(args) => diff::run(app, options::diff(args)).await,
        Command::Prune(args) => prune::run(app, options::prune(args)).await,
        Command::Rm(args) => rm::run(app, options::rm(args)).await,
        Command::Verify(args) => verify::run(app, options::verify(args)).await,
        Command::Doctor(args) => {
            let remote = RemoteChoice::from_flag(args.remote.remote, None);
            doctor::run(app, config_error, args.require_write, remote).await
        }
        Command::Init(args) => init::run(app, args.force).await,
    }
}

/// `E` in one link of an error chain, also when it is carried by a transfer error or a pull's.
fn find<'a, E: std::error::Error + 'static>(
    c: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    use transfer::pull::PullError;
    use transfer::TransferError;
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
    if let Some(e) = err
        .chain()
        .find_map(|c| c.downcast_ref::<transfer::pull::PullError>())
    {
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
    // `pull org/a org/b`: a second repo id where pull takes one.
    let unexpected = match e.get(clap::error::ContextKind::InvalidArg) {
        Some(clap::error::ContextValue::String(arg)) => Some(arg.as_str()),
        _ => None,
    };
    let many_repos = command == Some("pull")
        && e.kind() == clap::error::ErrorKind::UnknownArgument
        && unexpected.is_some_and(|a| !a.starts_with('-'));
    let hint = if many_repos {
        "pull takes one repo: `hf-cache-sync pull-all --include 'org/*'` pulls many, and \
         `hf-cache-sync lock REPO...` then `hf-cache-sync pull --lock hf-cache-sync.lock` pulls \
         a pinned set"
            .to_string()
    } else {
        format!(
            "`hf-cache-sync {}--help` shows the usage and examples",
            command.map(|c| format!("{c} ")).unwrap_or_default()
        )
    };
    if args.iter().any(|a| a == "--json") {
        let text = e.to_string();
        let error = clap_message(&text);
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

/// clap's message without its usage and help lines, on one line: "the following required
/// arguments were not provided: <REPO_ID>", not just the words before the name.
fn clap_message(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.trim().is_empty() && !l.starts_with("Usage:"))
        .map(|l| l.trim().trim_start_matches("error: "))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_clap_message_is_whole_on_one_line() {
        let text = "error: the following required arguments were not provided:\n  <REPO_ID>\n\n\
                    Usage: hf-cache-sync pull <REPO_ID>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            super::clap_message(text),
            "the following required arguments were not provided: <REPO_ID>"
        );
        assert_eq!(
            super::clap_message("error: unexpected argument '--x' found\n\nUsage: a\n"),
            "unexpected argument '--x' found"
        );
    }
}
