//! Printing a listing: one JSON document, CSV with a header, or an aligned table with a count
//! and total (notes on stderr). Columns are shared by the table and the CSV.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::cache::RepoType;
use crate::ops::list::{total_size, Entry, Listing, Source};
use crate::report::Printer;
use crate::report::{ago, csv_record, fit_columns, hf_size, print_data, table, timestamp};
use crate::text::plural;

#[derive(Serialize)]
struct RepoJson<'a> {
    id: &'a str,
    repo: &'a str,
    repo_type: Option<RepoType>,
    repo_id: &'a str,
    size: Option<u64>,
    revisions: usize,
    last_accessed: Option<String>,
    last_modified: Option<String>,
    refs: &'a Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: &'a Option<PathBuf>,
}

#[derive(Serialize)]
struct RevisionJson<'a> {
    id: &'a str,
    repo: &'a str,
    repo_type: Option<RepoType>,
    repo_id: &'a str,
    revision: &'a str,
    size: Option<u64>,
    files: Option<usize>,
    last_accessed: Option<String>,
    last_modified: Option<String>,
    refs: &'a Option<Vec<String>>,
    detached: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: &'a Option<PathBuf>,
}

/// An entry as JSON, fields in a fixed order.
#[derive(Serialize)]
#[serde(untagged)]
enum EntryJson<'a> {
    Repo(RepoJson<'a>),
    Revision(RevisionJson<'a>),
}

#[derive(Serialize)]
pub(super) struct ListDocument<'a> {
    command: &'static str,
    /// `local` or `remote`.
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_dir: Option<&'a Path>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<&'a str>,
    /// Remote only: whether ids, types and sizes come from manifest bodies (else from key names).
    #[serde(skip_serializing_if = "Option::is_none")]
    manifests_read: Option<bool>,
    /// `repos` or `revisions`.
    kind: &'static str,
    count: usize,
    /// Bytes of all listed entries, each file or blob counted once; `null` when unknown.
    total_size: Option<u64>,
    entries: Vec<EntryJson<'a>>,
    warnings: &'a [String],
}

fn kind(listing: &Listing) -> &'static str {
    if listing.revisions {
        "revisions"
    } else {
        "repos"
    }
}

/// The listing as one JSON document.
pub(super) fn json_document(listing: &Listing) -> ListDocument<'_> {
    let (source, cache_dir, remote, manifests_read) = match &listing.source {
        Source::Local { cache_dir } => ("local", Some(cache_dir.as_path()), None, None),
        Source::Remote {
            describe,
            manifests_read,
        } => (
            "remote",
            None,
            Some(describe.as_str()),
            Some(*manifests_read),
        ),
    };
    ListDocument {
        command: "list",
        source,
        cache_dir,
        remote,
        manifests_read,
        kind: kind(listing),
        count: listing.entries.len(),
        total_size: listing.sized.then(|| total_size(&listing.entries)),
        entries: listing
            .entries
            .iter()
            .map(|e| entry_json(e, listing.revisions))
            .collect(),
        warnings: &listing.warnings,
    }
}

pub(super) fn csv(listing: &Listing) -> String {
    let columns = columns(listing);
    let header: Vec<String> = columns.iter().map(|c| c.csv.to_string()).collect();
    let mut lines = vec![csv_record(&header)];
    for e in &listing.entries {
        let cells: Vec<String> = columns.iter().map(|c| (c.csv_cell)(e)).collect();
        lines.push(csv_record(&cells));
    }
    lines.join("\n")
}

/// The table on stdout, then a count and total; notes on stderr. Never empty: see
/// [`say_empty`].
pub(super) fn print_table(
    printer: &Printer,
    listing: &Listing,
    now: SystemTime,
    width: Option<usize>,
) {
    if matches!(
        listing.source,
        Source::Remote {
            manifests_read: false,
            ..
        }
    ) {
        printer.note(
            "note: repo ids are decoded from key names and may be ambiguous; --manifests reads \
             each manifest for exact ids, types and sizes",
        );
    }
    let entries = &listing.entries;
    let columns: Vec<Column> = columns(listing)
        .into_iter()
        .filter(|c| c.in_table)
        .collect();
    let header: Vec<&str> = columns.iter().map(|c| c.header).collect();
    let right: Vec<usize> = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.right)
        .map(|(i, _)| i)
        .collect();
    let mut rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| columns.iter().map(|c| (c.cell)(e, now)).collect())
        .collect();
    if width.is_some_and(|w| fit_columns(&header, &mut rows, w, 2)) {
        printer.hint(
            "values were cut to fit the terminal: --no-truncate or --format json shows them whole",
        );
    }
    let mut footer = if listing.revisions {
        let repos: HashSet<&str> = entries.iter().map(|e| e.repo.as_str()).collect();
        format!(
            "{} of {}",
            plural(entries.len(), "revision", "revisions"),
            plural(repos.len(), "repo", "repos")
        )
    } else {
        plural(entries.len(), "repo", "repos")
    };
    if listing.sized {
        footer.push_str(&format!(", {}", hf_size(total_size(entries))));
    }
    print_data(&format!("{}\n\n{footer}", table(&header, &rows, &right)));
}

/// On stderr: nothing to list, and whether the filters are why.
pub(super) fn say_empty(printer: &Printer, listing: &Listing, filtered: bool) {
    let place = match &listing.source {
        Source::Local { cache_dir } => format!("the cache at {}", cache_dir.display()),
        Source::Remote { describe, .. } => describe.clone(),
    };
    let why = if filtered {
        format!(" in {place} match the filters")
    } else {
        format!(" in {place}")
    };
    printer.note(&format!("no {}{why}", kind(listing)));
}

fn entry_json(e: &Entry, revisions: bool) -> EntryJson<'_> {
    let accessed = e.accessed_at.map(timestamp);
    let modified = e.modified_at.map(timestamp);
    if revisions {
        EntryJson::Revision(RevisionJson {
            id: &e.id,
            repo: &e.repo,
            repo_type: e.repo_type,
            repo_id: &e.repo_id,
            revision: e.revision.as_deref().unwrap_or_default(),
            size: e.size,
            files: e.files,
            last_accessed: accessed,
            last_modified: modified,
            refs: &e.refs,
            detached: e.detached(),
            path: &e.path,
        })
    } else {
        EntryJson::Repo(RepoJson {
            id: &e.id,
            repo: &e.repo,
            repo_type: e.repo_type,
            repo_id: &e.repo_id,
            size: e.size,
            revisions: e.revisions,
            last_accessed: accessed,
            last_modified: modified,
            refs: &e.refs,
            path: &e.path,
        })
    }
}

/// A column of the table and of the CSV.
struct Column {
    header: &'static str,
    csv: &'static str,
    /// False for columns only CSV carries.
    in_table: bool,
    right: bool,
    cell: fn(&Entry, SystemTime) -> String,
    csv_cell: fn(&Entry) -> String,
}

fn opt_to_string<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn columns(listing: &Listing) -> Vec<Column> {
    let mut cols = identity_columns(listing.revisions);
    cols.extend(detail_columns(listing));
    cols
}

/// What names a row (repo and revision, or the repo's id), then its type and id apart.
fn identity_columns(revisions: bool) -> Vec<Column> {
    let mut cols = Vec::new();
    if revisions {
        cols.push(Column {
            header: "REPO",
            csv: "repo",
            in_table: true,
            right: false,
            cell: |e, _| e.repo.clone(),
            csv_cell: |e| e.repo.clone(),
        });
        cols.push(Column {
            header: "REVISION",
            csv: "revision",
            in_table: true,
            right: false,
            cell: |e, _| e.id.clone(),
            csv_cell: |e| e.id.clone(),
        });
    } else {
        cols.push(Column {
            header: "ID",
            csv: "id",
            in_table: true,
            right: false,
            cell: |e, _| e.id.clone(),
            csv_cell: |e| e.id.clone(),
        });
    }
    // The table shows them inside the id; CSV readers get them apart.
    cols.push(Column {
        header: "",
        csv: "repo_type",
        in_table: false,
        right: false,
        cell: |_, _| String::new(),
        csv_cell: |e| opt_to_string(e.repo_type),
    });
    cols.push(Column {
        header: "",
        csv: "repo_id",
        in_table: false,
        right: false,
        cell: |_, _| String::new(),
        csv_cell: |e| e.repo_id.clone(),
    });
    cols
}

/// Sizes, counts, times, refs and the path, as far as the listing knows them.
fn detail_columns(listing: &Listing) -> Vec<Column> {
    let Listing {
        revisions,
        sized,
        timed,
        ..
    } = *listing;
    let remote = matches!(listing.source, Source::Remote { .. });
    let mut cols = Vec::new();
    if sized {
        cols.push(Column {
            header: "SIZE",
            csv: "size",
            in_table: true,
            right: true,
            cell: |e, _| e.size.map(hf_size).unwrap_or_else(|| "-".into()),
            csv_cell: |e| opt_to_string(e.size),
        });
    }
    if revisions {
        if sized {
            cols.push(Column {
                header: "FILES",
                csv: "files",
                in_table: true,
                right: true,
                cell: |e, _| opt_to_string(e.files),
                csv_cell: |e| opt_to_string(e.files),
            });
        }
    } else {
        cols.push(Column {
            header: "REVISIONS",
            csv: "revisions",
            in_table: true,
            right: true,
            cell: |e, _| e.revisions.to_string(),
            csv_cell: |e| e.revisions.to_string(),
        });
    }
    if timed {
        cols.push(Column {
            header: "LAST ACCESSED",
            csv: "last_accessed",
            in_table: true,
            right: false,
            cell: |e, now| ago(e.accessed_at, now),
            csv_cell: |e| opt_to_string(e.accessed_at.map(timestamp)),
        });
        cols.push(Column {
            header: "LAST MODIFIED",
            csv: "last_modified",
            in_table: true,
            right: false,
            cell: |e, now| ago(e.modified_at, now),
            csv_cell: |e| opt_to_string(e.modified_at.map(timestamp)),
        });
    }
    if !revisions || sized {
        cols.push(Column {
            header: "REFS",
            csv: "refs",
            in_table: true,
            right: false,
            cell: |e, _| match &e.refs {
                None => "?".into(),
                Some(r) if r.is_empty() && e.revision.is_some() => "(detached)".into(),
                Some(r) if r.is_empty() => "-".into(),
                Some(r) => r.join(", "),
            },
            csv_cell: |e| e.refs.as_ref().map(|r| r.join(" ")).unwrap_or_default(),
        });
    }
    if !remote {
        cols.push(Column {
            header: "PATH",
            csv: "path",
            in_table: false,
            right: false,
            cell: |e, _| opt_to_string(e.path.as_ref().map(|p| p.display())),
            csv_cell: |e| opt_to_string(e.path.as_ref().map(|p| p.display())),
        });
    }
    cols
}
