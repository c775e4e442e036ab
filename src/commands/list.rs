//! `list`: the repos (or revisions) of the local cache or of the remote, as an aligned table, one
//! JSON document or CSV, filtered the way `hf cache ls` filters (`size>1GB`, `accessed>30d`,
//! `modified<7d`, `type=dataset`, `refs=main`) and sorted. `-q` prints the identifiers `rm` takes.
//!
//! The remote is listed from key names alone unless exact ids, types or sizes are needed: those
//! are only in manifest bodies (see [`super::inventory`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Result;
use serde::Serialize;

use super::inventory::{self, repo_id_from_key, Inventory, RemoteRevision};
use super::{parse_age, App, Outcome};
use crate::cache::scan::{self, CacheScan, FileSource, Repo, Revision};
use crate::cache::RepoType;
use crate::config::{parse_size, ConfigError};
use crate::report::{
    ago, csv_record, human_bytes, print_data, table, timestamp, ListFormat, NoProgress,
};

#[derive(Debug)]
pub struct ListOptions {
    pub remote: bool,
    /// With `remote`: read manifest and ref bodies.
    pub manifests: bool,
    pub revisions: bool,
    pub filter: Vec<String>,
    pub sort: Option<String>,
    pub format: Option<ListFormat>,
    pub quiet: bool,
}

const FILTER_HINT: &str = "filters look like size>1GB, accessed>30d, modified<7d, type=dataset, \
                           refs=main; operators: = != > >= < <=";
const SORT_HINT: &str = "sort keys: name, size, accessed, modified, revisions; prefix with - \
                         (or add :desc) for descending, e.g. --sort=-size";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    /// Longest first, so `>=` is not read as `>` followed by `=…`.
    const SPELLINGS: [(&'static str, Op); 7] = [
        ("==", Op::Eq),
        ("!=", Op::Ne),
        (">=", Op::Ge),
        ("<=", Op::Le),
        ("=", Op::Eq),
        (">", Op::Gt),
        ("<", Op::Lt),
    ];

    fn holds<T: PartialOrd>(self, left: T, right: T) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Le => left <= right,
        }
    }
}

/// One `--filter` expression. Times compare ages: `accessed>30d` is "last accessed more than 30
/// days ago".
#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Size(Op, u64),
    Accessed(Op, Duration),
    Modified(Op, Duration),
    Type(Op, RepoType),
    Refs(Op, String),
}

fn parse_filter(expr: &str) -> Result<Filter, ConfigError> {
    let bad = |why: String| ConfigError::Usage {
        message: format!("invalid --filter {expr:?}: {why}"),
        hint: FILTER_HINT.into(),
    };
    let text = expr.trim();
    let key_end = text
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(text.len());
    let key = text[..key_end].to_ascii_lowercase();
    let rest = text[key_end..].trim_start();
    let (op, value) = Op::SPELLINGS
        .iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|v| (*op, v.trim())))
        .ok_or_else(|| bad("expected KEY OPERATOR VALUE".into()))?;
    if key.is_empty() {
        return Err(bad("no key before the operator".into()));
    }
    if value.is_empty() {
        return Err(bad("no value after the operator".into()));
    }
    let equality_only = |what: &str| {
        if matches!(op, Op::Eq | Op::Ne) {
            Ok(())
        } else {
            Err(bad(format!("{what} filters take = or != only")))
        }
    };
    match key.as_str() {
        "size" => Ok(Filter::Size(op, parse_size(value).map_err(bad)?)),
        "accessed" => Ok(Filter::Accessed(
            op,
            parse_age(value).map_err(|e| bad(e.to_string()))?,
        )),
        "modified" => Ok(Filter::Modified(
            op,
            parse_age(value).map_err(|e| bad(e.to_string()))?,
        )),
        "type" => {
            equality_only("type")?;
            let t = RepoType::parse(&value.to_ascii_lowercase()).ok_or_else(|| {
                bad(format!(
                    "unknown repo type {value:?} (expected model, dataset or space)"
                ))
            })?;
            Ok(Filter::Type(op, t))
        }
        "refs" | "ref" => {
            equality_only("refs")?;
            Ok(Filter::Refs(op, value.to_string()))
        }
        other => Err(bad(format!(
            "unknown key {other:?} (expected size, accessed, modified, type or refs)"
        ))),
    }
}

impl Filter {
    /// Unknown values (a remote repo's type before its manifest is read) never match.
    fn matches(&self, e: &Entry, now: SystemTime) -> bool {
        let age = |t: Option<SystemTime>| t.map(|t| now.duration_since(t).unwrap_or_default());
        match self {
            Filter::Size(op, n) => e.size.is_some_and(|s| op.holds(s, *n)),
            Filter::Accessed(op, d) => age(e.accessed_at).is_some_and(|a| op.holds(a, *d)),
            Filter::Modified(op, d) => age(e.modified_at).is_some_and(|a| op.holds(a, *d)),
            Filter::Type(op, t) => e.repo_type.is_some_and(|rt| op.holds(rt, *t)),
            Filter::Refs(op, name) => e.refs.as_ref().is_some_and(|refs| {
                let has = refs.iter().any(|r| r.eq_ignore_ascii_case(name));
                has == (*op == Op::Eq)
            }),
        }
    }

    /// Whether it needs what only remote manifest bodies say.
    fn needs_manifests(&self, revisions: bool) -> bool {
        match self {
            Filter::Size(..) | Filter::Type(..) => true,
            // Ref names are in the keys; which revision a ref names is in its body.
            Filter::Refs(..) => revisions,
            Filter::Accessed(..) | Filter::Modified(..) => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortKey {
    Name,
    Size,
    Accessed,
    Modified,
    Revisions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sort {
    key: SortKey,
    descending: bool,
}

fn parse_sort(text: &str) -> Result<Sort, ConfigError> {
    let bad = |why: &str| ConfigError::Usage {
        message: format!("invalid --sort {text:?}: {why}"),
        hint: SORT_HINT.into(),
    };
    let t = text.trim().to_ascii_lowercase();
    let (mut descending, rest) = match t.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, t.as_str()),
    };
    let key = match rest.split_once(':') {
        Some((k, "desc")) => {
            descending = !descending;
            k
        }
        Some((k, "asc")) => k,
        Some(_) => return Err(bad("the order after : is asc or desc")),
        None => rest,
    };
    let key = match key {
        "name" => SortKey::Name,
        "size" => SortKey::Size,
        "accessed" => SortKey::Accessed,
        "modified" => SortKey::Modified,
        "revisions" => SortKey::Revisions,
        _ => return Err(bad("unknown key")),
    };
    Ok(Sort { key, descending })
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

#[derive(Serialize)]
struct RepoJson<'a> {
    id: &'a str,
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
struct ListDocument<'a> {
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

    let mut listing = if opts.remote {
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
        remote_listing(app, opts.revisions, read).await?
    } else {
        local_listing(app, opts.revisions).await?
    };
    for w in &listing.warnings {
        app.printer.warn(&NoProgress, w);
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

    match format {
        // `--format json` asks for JSON whether or not `--json` was given.
        ListFormat::Json => print_data(&serde_json::to_string_pretty(&json_document(&listing))?),
        _ if opts.quiet => {
            if !listing.entries.is_empty() {
                let ids: Vec<&str> = listing.entries.iter().map(|e| e.id.as_str()).collect();
                print_data(&ids.join("\n"));
            }
        }
        ListFormat::Csv => print_data(&csv(&listing)),
        ListFormat::Table => print_table(&listing, !filters.is_empty(), now),
    }
    Ok(Outcome::Success)
}

async fn local_listing(app: &App, revisions: bool) -> Result<Listing> {
    let cache_dir = app.settings.cache_dir.clone();
    let scan = tokio::task::spawn_blocking(move || scan::scan(&cache_dir)).await?;
    let mut warnings = Vec::new();
    if !scan.exists {
        warnings.push(format!(
            "cache dir {} does not exist: nothing is cached yet",
            scan.root.display()
        ));
    }
    warnings.extend(scan.warnings.iter().map(ToString::to_string));
    Ok(Listing {
        entries: local_entries(&scan, revisions),
        source: Source::Local {
            cache_dir: scan.root,
        },
        warnings,
        revisions,
        sized: true,
        timed: true,
    })
}

fn kind(listing: &Listing) -> &'static str {
    if listing.revisions {
        "revisions"
    } else {
        "repos"
    }
}

fn json_document(listing: &Listing) -> ListDocument<'_> {
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

fn csv(listing: &Listing) -> String {
    let columns = columns(listing);
    let header: Vec<String> = columns.iter().map(|c| c.csv.to_string()).collect();
    let mut lines = vec![csv_record(&header)];
    for e in &listing.entries {
        let cells: Vec<String> = columns.iter().map(|c| (c.csv_cell)(e)).collect();
        lines.push(csv_record(&cells));
    }
    lines.join("\n")
}

/// The table on stdout, then a count and total; notes on stderr.
fn print_table(listing: &Listing, filtered: bool, now: SystemTime) {
    if matches!(
        listing.source,
        Source::Remote {
            manifests_read: false,
            ..
        }
    ) {
        eprintln!(
            "note: repo ids are decoded from key names and may be ambiguous; --manifests reads \
             each manifest for exact ids, types and sizes"
        );
    }
    let entries = &listing.entries;
    if entries.is_empty() {
        let why = if filtered { " match the filters" } else { "" };
        eprintln!("no {}{why}", kind(listing));
        return;
    }
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
    let rows: Vec<Vec<String>> = entries
        .iter()
        .map(|e| columns.iter().map(|c| (c.cell)(e, now)).collect())
        .collect();
    let mut footer = if listing.revisions {
        let repos: HashSet<&str> = entries.iter().map(|e| e.repo.as_str()).collect();
        format!(
            "{} of {}",
            count_of(entries.len(), "revision", "revisions"),
            count_of(repos.len(), "repo", "repos")
        )
    } else {
        count_of(entries.len(), "repo", "repos")
    };
    if listing.sized {
        footer.push_str(&format!(", {}", human_bytes(total_size(entries))));
    }
    print_data(&format!("{}\n\n{footer}", table(&header, &rows, &right)));
}

fn remote_has_no_times(what: &str) -> ConfigError {
    ConfigError::Usage {
        message: format!(
            "{what} does not apply to --remote: the remote keeps no access or modification times"
        ),
        hint: "filter the remote by size, type or refs".into(),
    }
}

fn count_of(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn sort_entries(entries: &mut [Entry], sort: Sort) {
    entries.sort_by(|a, b| {
        let by_key = match sort.key {
            SortKey::Name => a.sort_name().cmp(&b.sort_name()),
            SortKey::Size => a.size.cmp(&b.size),
            SortKey::Accessed => a.accessed_at.cmp(&b.accessed_at),
            SortKey::Modified => a.modified_at.cmp(&b.modified_at),
            SortKey::Revisions => a.revisions.cmp(&b.revisions),
        };
        let by_key = if sort.descending {
            by_key.reverse()
        } else {
            by_key
        };
        by_key.then_with(|| a.sort_name().cmp(&b.sort_name()))
    });
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
    let Listing {
        revisions,
        sized,
        timed,
        ..
    } = *listing;
    let remote = matches!(listing.source, Source::Remote { .. });
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
    if sized {
        cols.push(Column {
            header: "SIZE",
            csv: "size",
            in_table: true,
            right: true,
            cell: |e, _| e.size.map(human_bytes).unwrap_or_else(|| "-".into()),
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

/// Where a revision's bytes are, with each file's content identity.
fn content_of<'a>(
    repo: &Repo,
    revisions: impl IntoIterator<Item = &'a Revision>,
) -> Vec<(Content, u64)> {
    let mut out = Vec::new();
    for rev in revisions {
        for f in &rev.files {
            match &f.source {
                FileSource::Blob(etag) => {
                    if let Some(b) = repo.blobs.get(etag) {
                        out.push((Content::File(b.content_path.clone()), b.size));
                    }
                }
                FileSource::Copy(path) => out.push((Content::File(path.clone()), f.size)),
            }
        }
    }
    out
}

/// Access and modification times of snapshot files stored as copies, which have no blob.
fn copy_times<'a>(
    revisions: impl IntoIterator<Item = &'a Revision>,
) -> (Option<SystemTime>, Option<SystemTime>) {
    let mut accessed = None;
    let mut modified = None;
    for rev in revisions {
        for f in &rev.files {
            if let FileSource::Copy(path) = &f.source {
                if let Ok(meta) = std::fs::metadata(path) {
                    accessed = accessed.max(meta.accessed().ok());
                    modified = modified.max(meta.modified().ok());
                }
            }
        }
    }
    (accessed, modified)
}

fn local_entries(scan: &CacheScan, revisions: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    for repo in &scan.repos {
        let qualified = repo.qualified_id();
        if !revisions {
            // As huggingface_hub reports them: files the revisions use, orphans left out.
            let (copy_accessed, copy_modified) = copy_times(&repo.revisions);
            out.push(Entry {
                id: qualified.clone(),
                repo_type: Some(repo.repo_type),
                repo_id: repo.repo_id.clone(),
                repo: qualified,
                revision: None,
                size: Some(repo.size_on_disk()),
                revisions: repo.revisions.len(),
                files: None,
                accessed_at: repo.last_accessed().max(copy_accessed),
                modified_at: repo.last_modified().max(copy_modified),
                refs: Some(repo.refs.keys().cloned().collect()),
                path: Some(repo.dir.clone()),
                content: content_of(repo, &repo.revisions),
            });
            continue;
        }
        for rev in &repo.revisions {
            let (copy_accessed, _) = copy_times([rev]);
            out.push(Entry {
                id: rev.commit.clone(),
                repo_type: Some(repo.repo_type),
                repo_id: repo.repo_id.clone(),
                repo: qualified.clone(),
                revision: Some(rev.commit.clone()),
                size: Some(repo.size_of([rev])),
                revisions: 1,
                files: Some(rev.files.len()),
                accessed_at: rev.last_accessed(repo).max(copy_accessed),
                // As huggingface_hub reports it: when the snapshot folder last changed.
                modified_at: rev.modified,
                refs: Some(
                    repo.refs_to(&rev.commit)
                        .into_iter()
                        .map(String::from)
                        .collect(),
                ),
                path: Some(rev.dir.clone()),
                content: content_of(repo, [rev]),
            });
        }
    }
    out
}

/// A remote repo as its manifests (or, without them, its key name) describe it.
#[derive(Default)]
struct RemoteGroup<'a> {
    repo_type: Option<RepoType>,
    repo_id: String,
    revisions: Vec<&'a RemoteRevision>,
    /// Names of key-listed refs, or (with bodies) name → commit.
    refs: BTreeMap<String, Option<String>>,
    /// Revisions only known from keys.
    commits: BTreeSet<String>,
}

async fn remote_listing(app: &App, revisions: bool, read: bool) -> Result<Listing> {
    let (remote, layout) = app.open_remote(None)?;
    let inv = Inventory::list(&remote, &layout, false).await?;
    let mut warnings = Vec::new();
    let manifests;
    let mut groups: BTreeMap<(String, Option<RepoType>), RemoteGroup> = BTreeMap::new();
    if read {
        let workers = app.settings.transfer.workers;
        let (revs, w) =
            inventory::read_manifests(&remote, &layout, inv.manifest_keys(None), workers).await?;
        warnings.extend(w);
        let (refs, w) = inventory::read_refs(&remote, &layout, inv.ref_keys(None), workers).await?;
        warnings.extend(w);
        manifests = revs;
        for r in &manifests {
            let t = r.manifest.repo_type();
            let g = groups.entry((r.manifest.repo.clone(), t)).or_default();
            g.repo_type = t;
            g.repo_id = r.manifest.repo.clone();
            g.revisions.push(r);
        }
        for ((safe, name), commit) in refs {
            // The manifest of the commit says whose ref it is; the key alone cannot.
            let owner = manifests
                .iter()
                .find(|r| r.safe == safe && r.manifest.revision == commit)
                .map(|r| (r.manifest.repo.clone(), r.manifest.repo_type()));
            let owner = owner.unwrap_or_else(|| {
                let same_key: Vec<_> = groups
                    .keys()
                    .filter(|(id, _)| crate::manifest::safe_repo_key(id) == safe)
                    .cloned()
                    .collect();
                match same_key.as_slice() {
                    [only] => only.clone(),
                    _ => (repo_id_from_key(&safe), None),
                }
            });
            let g = groups.entry(owner.clone()).or_default();
            g.repo_id = owner.0;
            g.repo_type = owner.1;
            g.refs.insert(name, Some(commit));
        }
    } else {
        for (safe, commits) in &inv.manifests {
            let id = repo_id_from_key(safe);
            let g = groups.entry((id.clone(), None)).or_default();
            g.repo_id = id;
            g.commits.extend(commits.iter().cloned());
        }
        for (safe, names) in &inv.refs {
            let id = repo_id_from_key(safe);
            let g = groups.entry((id.clone(), None)).or_default();
            g.repo_id = id;
            g.refs.extend(names.iter().map(|n| (n.clone(), None)));
        }
    }

    let mut entries = Vec::new();
    for g in groups.values() {
        let repo = match g.repo_type {
            Some(t) => format!("{t}/{}", g.repo_id),
            None => g.repo_id.clone(),
        };
        if !revisions {
            let content: Vec<(Content, u64)> = g
                .revisions
                .iter()
                .flat_map(|r| blobs_of(r))
                .collect::<HashMap<_, _>>()
                .into_iter()
                .collect();
            entries.push(Entry {
                id: repo.clone(),
                repo_type: g.repo_type,
                repo_id: g.repo_id.clone(),
                repo,
                size: read.then(|| content.iter().map(|(_, s)| s).sum()),
                revisions: g.revisions.len() + g.commits.len(),
                refs: Some(g.refs.keys().cloned().collect()),
                content,
                ..Default::default()
            });
            continue;
        }
        for r in &g.revisions {
            let commit = &r.manifest.revision;
            let content: Vec<(Content, u64)> = blobs_of(r).into_iter().collect();
            entries.push(Entry {
                id: commit.clone(),
                repo_type: g.repo_type,
                repo_id: g.repo_id.clone(),
                repo: repo.clone(),
                revision: Some(commit.clone()),
                size: Some(content.iter().map(|(_, s)| s).sum()),
                revisions: 1,
                files: Some(r.manifest.files.len()),
                refs: Some(
                    g.refs
                        .iter()
                        .filter(|(_, c)| c.as_deref() == Some(commit.as_str()))
                        .map(|(n, _)| n.clone())
                        .collect(),
                ),
                content,
                ..Default::default()
            });
        }
        for commit in &g.commits {
            entries.push(Entry {
                id: commit.clone(),
                repo_type: None,
                repo_id: g.repo_id.clone(),
                repo: repo.clone(),
                revision: Some(commit.clone()),
                revisions: 1,
                ..Default::default()
            });
        }
    }
    Ok(Listing {
        source: Source::Remote {
            describe: remote.describe(),
            manifests_read: read,
        },
        entries,
        warnings,
        revisions,
        sized: read,
        timed: false,
    })
}

/// The distinct blobs a manifest names, with their sizes.
fn blobs_of(r: &RemoteRevision) -> HashMap<Content, u64> {
    r.manifest
        .files
        .iter()
        .map(|f| (Content::Blob(f.blob.clone()), f.size))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_like_hf_cache_ls() {
        assert_eq!(
            parse_filter("size>1GB").unwrap(),
            Filter::Size(Op::Gt, 1_000_000_000)
        );
        assert_eq!(
            parse_filter(" accessed >= 30d ").unwrap(),
            Filter::Accessed(Op::Ge, Duration::from_secs(30 * 86400))
        );
        assert_eq!(
            parse_filter("modified<7d").unwrap(),
            Filter::Modified(Op::Lt, Duration::from_secs(7 * 86400))
        );
        assert_eq!(
            parse_filter("type=dataset").unwrap(),
            Filter::Type(Op::Eq, RepoType::Dataset)
        );
        assert_eq!(
            parse_filter("TYPE!=models").unwrap(),
            Filter::Type(Op::Ne, RepoType::Model)
        );
        assert_eq!(
            parse_filter("refs==pr/1").unwrap(),
            Filter::Refs(Op::Eq, "pr/1".into())
        );
        for bad in [
            "size>lots",
            "size",
            "size>",
            ">1GB",
            "colour=red",
            "type>model",
            "type=widget",
            "refs<main",
            "accessed>soon",
        ] {
            let err = parse_filter(bad).unwrap_err();
            assert!(err.to_string().contains(bad), "{bad}: {err}");
            assert!(err.hint().is_some(), "{bad}");
        }
    }

    #[test]
    fn sort_keys_and_directions() {
        let s = |t| parse_sort(t).unwrap();
        assert_eq!(
            s("size"),
            Sort {
                key: SortKey::Size,
                descending: false
            }
        );
        assert_eq!(
            s("-accessed"),
            Sort {
                key: SortKey::Accessed,
                descending: true
            }
        );
        assert_eq!(
            s("modified:desc"),
            Sort {
                key: SortKey::Modified,
                descending: true
            }
        );
        assert_eq!(s("revisions:asc").key, SortKey::Revisions);
        assert!(parse_sort("weight").is_err());
        assert!(parse_sort("size:up").is_err());
    }

    #[test]
    fn filters_compare_ages_and_skip_unknowns() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(100 * 86400);
        let e = Entry {
            size: Some(2_000_000_000),
            accessed_at: Some(now - Duration::from_secs(40 * 86400)),
            repo_type: Some(RepoType::Model),
            refs: Some(vec!["main".into()]),
            ..Default::default()
        };
        let yes = |f: &str| parse_filter(f).unwrap().matches(&e, now);
        assert!(yes("size>1GB"));
        assert!(!yes("size<1GB"));
        assert!(yes("accessed>30d"));
        assert!(!yes("accessed<30d"));
        // Unknown modification time: neither older nor newer.
        assert!(!yes("modified>1d") && !yes("modified<1d"));
        assert!(yes("type=model") && !yes("type=dataset") && yes("type!=space"));
        assert!(yes("refs=MAIN") && !yes("refs=pr/1") && yes("refs!=pr/1"));
    }
}
