//! The command line as the commands take it: each command's clap arguments turned into its
//! options, so no command reaches back into clap types and `main` dispatches in one match.

use std::path::PathBuf;

use crate::cache::RepoType;
use crate::cli::{self, FallbackArgs, RepoTypeArg, TransferArgs};
use crate::commands::{
    dedupe, diff, gc, list, lock, prune, pull, pull_all, pull_lock, push, rm, serve, verify, watch,
    App, FallbackOptions, RemoteChoice, TransferOptions,
};
use crate::config::{self, ConfigError};
use crate::transfer::pull::Target;

fn transfer(args: TransferArgs) -> TransferOptions {
    TransferOptions {
        dry_run: args.dry_run,
        workers: args.workers.map(usize::from),
        limit_rate: args.limit_rate.rate,
        // Bare, it is the configured remote, as no flag is.
        remote: args.remote.remote.flatten(),
    }
}

fn fallback(args: FallbackArgs) -> FallbackOptions {
    fallback_options(&args.fallback, args.write_through)
}

/// `--fallback SOURCE...` and `--write-through`, as pull and serve take them.
fn fallback_options(fallback: &[std::ffi::OsString], write_through: bool) -> FallbackOptions {
    FallbackOptions {
        fallback: fallback
            .iter()
            .map(|f| config::FallbackSpec::parse(f))
            .collect(),
        write_through,
    }
}

pub fn repo_type(arg: RepoTypeArg) -> RepoType {
    match arg {
        RepoTypeArg::Model => RepoType::Model,
        RepoTypeArg::Dataset => RepoType::Dataset,
        RepoTypeArg::Space => RepoType::Space,
        RepoTypeArg::Kernel => RepoType::Kernel,
    }
}

pub fn push(args: cli::PushArgs) -> push::PushOptions {
    push::PushOptions {
        repos: args.repos,
        include: args.filter.include,
        exclude: args.filter.exclude,
        transfer: transfer(args.transfer),
    }
}

/// `pull`: one repo, or with `--lock` every pin of a lock file.
pub enum Pull {
    Repo(Box<pull::PullOptions>),
    Lock(pull_lock::PullLockOptions),
}

pub fn pull(args: cli::PullArgs) -> Result<Pull, ConfigError> {
    if let Some(lock) = args.lock {
        return Ok(Pull::Lock(pull_lock::PullLockOptions {
            lock,
            offline: args.offline,
            transfer: transfer(args.transfer),
            fallback: fallback(args.fallback),
        }));
    }
    if args.offline {
        return Err(ConfigError::Usage {
            message: "--offline goes with --lock FILE: a pull of one repo asks the remote".into(),
            hint: "pin the repo in a lock file (hf-cache-sync lock), then pull --lock \
                   FILE --offline"
                .into(),
        });
    }
    Ok(Pull::Repo(Box::new(pull::PullOptions {
        target: Target {
            repo_id: args.repo.expect("clap requires a repo without --lock"),
            repo_type: args.repo_type.map(repo_type),
            revision: args.revision,
            files: Default::default(),
        },
        include_files: args.include_files,
        exclude_files: args.exclude_files,
        local_dir: args.local_dir,
        transfer: transfer(args.transfer),
        fallback: fallback(args.fallback),
    })))
}

pub fn pull_all(args: cli::PullAllArgs) -> pull_all::PullAllOptions {
    pull_all::PullAllOptions {
        include: args.filter.include,
        exclude: args.filter.exclude,
        limit: args.limit,
        transfer: transfer(args.transfer),
        fallback: fallback(args.fallback),
    }
}

pub fn lock(mut args: cli::LockArgs) -> lock::LockOptions {
    let remote = RemoteChoice::from_flag(args.remote, Some(&mut args.repos));
    lock::LockOptions {
        repos: args.repos,
        output: args.output,
        remote,
        include_files: args.include_files,
        exclude_files: args.exclude_files,
        local_dir: args.local_dir,
    }
}

pub fn gc(args: cli::GcArgs) -> gc::GcOptions {
    gc::GcOptions {
        remote: RemoteChoice::from_flag(args.remote, None),
        grace: Some(args.grace),
        dry_run: args.dry_run,
        yes: args.yes,
    }
}

pub fn watch(args: cli::WatchArgs) -> watch::WatchOptions {
    watch::WatchOptions {
        debounce: args.debounce,
        include: args.filter.include,
        exclude: args.filter.exclude,
        transfer: TransferOptions {
            dry_run: false,
            workers: args.workers.map(usize::from),
            limit_rate: args.limit_rate.rate,
            remote: args.remote,
        },
    }
}

pub fn serve(args: cli::ServeArgs) -> Result<serve::ServeOptions, ConfigError> {
    Ok(serve::ServeOptions {
        listen: args.listen,
        // Bare, it is the configured remote, as no flag is.
        remote: args.remote.remote.flatten(),
        fallback: fallback_options(&args.fallback, args.write_through),
        auth: serve::AuthSpec::parse(&args.auth)?,
        from_cache: args.from_cache,
        limit_rate: args.limit_rate.rate,
        presign: args
            .presign
            .as_deref()
            .map(serve::presign_ttl)
            .transpose()?,
    })
}

/// `--cache-dir` may be given several times to dedupe across caches; none is the configured one.
pub fn dedupe(args: cli::DedupeArgs, cache_dirs: Vec<PathBuf>, app: &App) -> dedupe::DedupeOptions {
    let cache_dirs = if cache_dirs.is_empty() {
        vec![app.settings.cache_dir.clone()]
    } else {
        cache_dirs
    };
    dedupe::DedupeOptions {
        cache_dirs,
        dry_run: args.dry_run,
    }
}

pub fn list(args: cli::ListArgs, quiet: bool) -> list::ListOptions {
    list::ListOptions {
        remote: RemoteChoice::from_flag(args.remote, None),
        manifests: args.manifests,
        revisions: args.revisions,
        filter: args.filter,
        sort: args.sort,
        limit: args.limit,
        truncate: !args.no_truncate,
        format: args.format.map(|f| match f {
            cli::ListFormat::Table => crate::report::ListFormat::Table,
            cli::ListFormat::Json => crate::report::ListFormat::Json,
            cli::ListFormat::Csv => crate::report::ListFormat::Csv,
        }),
        quiet,
    }
}

pub fn diff(mut args: cli::DiffArgs) -> diff::DiffOptions {
    diff::DiffOptions {
        remote: RemoteChoice::from_flag(args.remote.remote, Some(&mut args.repos)),
        repos: args.repos,
        exit_code: args.exit_code,
    }
}

pub fn prune(args: cli::PruneArgs) -> prune::PruneOptions {
    prune::PruneOptions {
        max_gb: args.max_gb,
        detached: args.detached,
        older_than: args.older_than,
        dry_run: args.dry_run,
        yes: args.yes,
        remote: RemoteChoice::from_flag(args.remote, None),
    }
}

pub fn rm(mut args: cli::RmArgs) -> rm::RmOptions {
    rm::RmOptions {
        remote: RemoteChoice::from_flag(args.remote, Some(&mut args.targets)),
        targets: args.targets,
        dry_run: args.dry_run,
        yes: args.yes,
    }
}

pub fn verify(mut args: cli::VerifyArgs) -> verify::VerifyOptions {
    verify::VerifyOptions {
        remote: RemoteChoice::from_flag(args.remote, Some(&mut args.repos)),
        repos: args.repos,
        repair: args.repair,
        lock: args.lock,
        workers: args.workers.map(usize::from),
    }
}
