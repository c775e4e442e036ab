//! `list`: the repos (or revisions) of the local cache or of the remote, as an aligned table, one
//! JSON document or CSV, filtered the way `hf cache ls` filters (`size>1GB`, `accessed>30d`,
//! `modified<7d`, `type=dataset`, `refs=main`) and sorted. `-q` prints the identifiers `rm` takes.
//!
//! The remote is listed from key names alone unless exact ids, types or sizes are needed: those
//! are only in manifest bodies (see [`crate::remote::catalog`]).
//!
//! Here: the options, the rows and the flow; `filter` parses and applies `--filter`/`--sort`,
//! `local` and `remote` build the rows of each side, `render` prints them.

mod filter;
mod local;
mod remote;
mod render;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Result;

use super::{App, Outcome, RemoteChoice};
use crate::cache::RepoType;
use crate::config::ConfigError;
use crate::report::{print_data, ListFormat};
use filter::{parse_filter, parse_sort, sort_entries, Filter, Sort, SortKey, SORT_HINT};

#[derive(Debug)]
pub struct ListOptions {
    pub remote: RemoteChoice,
    /// With `remote`: read manifest and ref bodies.
    pub manifests: bool,
    pub revisions: bool,
    pub filter: Vec<String>,
    pub sort: Option<String>,
    /// At most this many rows, after filtering and sorting.
    pub limit: Option<usize>,
    /// Cut table cells to fit the terminal.
    pub truncate: bool,
    pub format: Option<ListFormat>,
    pub quiet: bool,
}

/// What a row's bytes are, so a total counts each file or blob once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Content {
    File(PathBuf),
    Blob(String),
}

/// One row: a repo or a revision, local or remote. `None` means unknown.
#[derive(Debug, Default)]
struct Entry {
    /// What `rm` takes: `model/org/name` for repos, the commit for revisions.
    id: String,
    repo_type: Option<RepoType>,
    repo_id: String,
    /// `model/org/name` (or `org/name` when the type is unknown).
    repo: String,
    revision: Option<String>,
    size: Option<u64>,
    revisions: usize,
    files: Option<usize>,
    accessed_at: Option<SystemTime>,
    modified_at: Option<SystemTime>,
    refs: Option<Vec<String>>,
    path: Option<PathBuf>,
    content: Vec<(Content, u64)>,
}

impl Entry {
    fn sort_name(&self) -> (&str, &str) {
        (&self.repo, self.revision.as_deref().unwrap_or(""))
    }

    fn detached(&self) -> Option<bool> {
        self.refs.as_ref().map(Vec::is_empty)
    }
}

/// Where the rows came from.
enum Source {
    Local {
        cache_dir: PathBuf,
    },
    Remote {
        describe: String,
        manifests_read: bool,
    },
}

/// Every row of one side, before filters, and what is known about them.
struct Listing {
    source: Source,
    entries: Vec<Entry>,
    warnings: Vec<String>,
    /// Rows one per revision instead of per repo.
    revisions: bool,
    /// Sizes and file counts are known.
    sized: bool,
    /// Access and modification times are known.
    timed: bool,
}

pub async fn run(app: &App, opts: ListOptions) -> Result<Outcome> {
    let filters = opts
        .filter
        .iter()
        .map(|f| parse_filter(f))
        .collect::<Result<Vec<_>, _>>()?;
    let sort = opts.sort.as_deref().map(parse_sort).transpose()?;
    if opts.revisions && sort.is_some_and(|s| s.key == SortKey::Revisions) {
        return Err(ConfigError::Usage {
            message: "--sort revisions orders repos; it means nothing with --revisions".into(),
            hint: SORT_HINT.into(),
        }
        .into());
    }
    let format = if app.printer.json {
        ListFormat::Json
    } else {
        opts.format.unwrap_or(ListFormat::Table)
    };

    let mut listing = if opts.remote.asked() {
        // The remote keeps no times: refuse rather than match nothing.
        if let Some((text, _)) = opts
            .filter
            .iter()
            .zip(&filters)
            .find(|(_, f)| matches!(f, Filter::Accessed(..) | Filter::Modified(..)))
        {
            return Err(remote_has_no_times(&format!("--filter {text:?}")).into());
        }
        if sort.is_some_and(|s| matches!(s.key, SortKey::Accessed | SortKey::Modified)) {
            return Err(remote_has_no_times("--sort accessed/modified").into());
        }
        let read = opts.manifests
            || filters.iter().any(|f| f.needs_manifests(opts.revisions))
            || sort.is_some_and(|s| s.key == SortKey::Size);
        remote::listing(app, opts.remote.url(), opts.revisions, read).await?
    } else {
        local::listing(app, opts.revisions).await?
    };
    for w in &listing.warnings {
        app.printer.warn(w);
    }

    let now = SystemTime::now();
    listing
        .entries
        .retain(|e| filters.iter().all(|f| f.matches(e, now)));
    sort_entries(
        &mut listing.entries,
        sort.unwrap_or(Sort {
            key: SortKey::Name,
            descending: false,
        }),
    );
    // `--limit 0` empties a listing that had rows: nothing to say about it.
    let matched = !listing.entries.is_empty();
    if let Some(limit) = opts.limit {
        listing.entries.truncate(limit);
    }

    match format {
        // `--format json` asks for JSON whether or not `--json` was given.
        ListFormat::Json => print_data(&render::json(&listing)?),
        _ if listing.entries.is_empty() => {
            if !matched {
                render::say_empty(&app.printer, &listing, !filters.is_empty());
            }
            if format == ListFormat::Csv && !opts.quiet {
                print_data(&render::csv(&listing));
            }
        }
        _ if opts.quiet => {
            let ids: Vec<&str> = listing.entries.iter().map(|e| e.id.as_str()).collect();
            print_data(&ids.join("\n"));
        }
        ListFormat::Csv => print_data(&render::csv(&listing)),
        ListFormat::Table => {
            let width = opts.truncate.then(crate::report::output_width).flatten();
            render::print_table(&app.printer, &listing, now, width)
        }
    }
    Ok(Outcome::Success)
}

fn remote_has_no_times(what: &str) -> ConfigError {
    ConfigError::Usage {
        message: format!(
            "{what} does not apply to --remote: the remote keeps no access or modification times"
        ),
        hint: "filter the remote by size, type or refs".into(),
    }
}

fn total_size(entries: &[Entry]) -> u64 {
    let mut seen = HashSet::new();
    entries
        .iter()
        .flat_map(|e| &e.content)
        .filter(|(c, _)| seen.insert(c))
        .map(|(_, size)| size)
        .sum()
}
