//! `list`: the repos (or revisions) of the local cache or of the remote, as an aligned table, one
//! JSON document or CSV, filtered the way `hf cache ls` filters (`size>1GB`, `accessed>30d`,
//! `modified<7d`, `type=dataset`, `refs=main`) and sorted. `-q` prints the identifiers `rm` takes.
//!
//! Here: the options and the flow; [`crate::ops::list`] builds, filters and sorts the rows,
//! `render` prints them.

mod render;

use anyhow::Result;

use super::{App, Outcome, RemoteChoice};
use crate::config::ConfigError;
use crate::ops::list::filter::{parse_filter, parse_sort, Filter, SortKey, SORT_HINT};
use crate::ops::Side;
use crate::report::{print_data, ListFormat};

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

    let ops_opts = crate::ops::ListOptions {
        revisions: opts.revisions,
        filters,
        sort,
        limit: opts.limit,
    };
    let listing = if opts.remote.asked() {
        // The remote keeps no times: refuse rather than match nothing.
        if let Some((text, _)) = opts
            .filter
            .iter()
            .zip(&ops_opts.filters)
            .find(|(_, f)| matches!(f, Filter::Accessed(..) | Filter::Modified(..)))
        {
            return Err(remote_has_no_times(&format!("--filter {text:?}")).into());
        }
        if sort.is_some_and(|s| matches!(s.key, SortKey::Accessed | SortKey::Modified)) {
            return Err(remote_has_no_times("--sort accessed/modified").into());
        }
        let read = opts.manifests
            || ops_opts
                .filters
                .iter()
                .any(|f| f.needs_manifests(opts.revisions))
            || sort.is_some_and(|s| s.key == SortKey::Size);
        let (remote, layout) = app.env().open_remote(opts.remote.url())?;
        let side = Side::Remote {
            remote: &remote,
            layout: &layout,
            workers: app.settings.transfer.workers,
            read,
        };
        crate::ops::list(side, &ops_opts).await?
    } else {
        let side = Side::Local {
            cache_dir: &app.settings.cache_dir,
        };
        crate::ops::list(side, &ops_opts).await?
    };
    for w in &listing.warnings {
        app.printer.warn(w);
    }
    let now = std::time::SystemTime::now();

    match format {
        // `--format json` asks for JSON whether or not `--json` was given.
        ListFormat::Json => app.printer.document(&render::json_document(&listing)),
        _ if listing.entries.is_empty() => {
            if !listing.matched {
                render::say_empty(&app.printer, &listing, !ops_opts.filters.is_empty());
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
