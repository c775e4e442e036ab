//! `list`'s operation: the rows of the local cache or of the remote (repos or revisions), then
//! filtered, sorted and cut to a limit. The remote is listed from key names alone unless exact
//! ids, types or sizes are needed: those are only in manifest bodies.

pub mod filter;
mod local;
mod remote;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Result;

use crate::cache::RepoType;
use crate::manifest::Layout;
use crate::remote::Remote;
use filter::{sort_entries, Filter, Sort, SortKey};

/// Which side is listed.
pub enum Side<'a> {
    Local {
        cache_dir: &'a Path,
    },
    Remote {
        remote: &'a Remote,
        layout: &'a Layout,
        /// Manifest and ref bodies read at once.
        workers: usize,
        /// Read manifest and ref bodies, for exact ids, types and sizes.
        read: bool,
    },
}

/// What `list` shows of a side.
pub struct ListOptions {
    /// Rows one per revision instead of per repo.
    pub revisions: bool,
    pub filters: Vec<Filter>,
    pub sort: Option<Sort>,
    /// At most this many rows, after filtering and sorting.
    pub limit: Option<usize>,
}

/// Lists `side`, keeping the rows every filter passes, sorted (by name unless asked), at most
/// `limit` of them. Warnings are in the listing.
pub async fn list(side: Side<'_>, opts: &ListOptions) -> Result<Listing> {
    let mut listing = match side {
        Side::Local { cache_dir } => local::listing(cache_dir, opts.revisions).await?,
        Side::Remote {
            remote,
            layout,
            workers,
            read,
        } => remote::listing(remote, layout, workers, opts.revisions, read).await?,
    };
    let now = SystemTime::now();
    listing
        .entries
        .retain(|e| opts.filters.iter().all(|f| f.matches(e, now)));
    sort_entries(
        &mut listing.entries,
        opts.sort.unwrap_or(Sort {
            key: SortKey::Name,
            descending: false,
        }),
    );
    // `--limit 0` empties a listing that had rows: nothing to say about it.
    listing.matched = !listing.entries.is_empty();
    if let Some(limit) = opts.limit {
        listing.entries.truncate(limit);
    }
    Ok(listing)
}

/// What a row's bytes are, so a total counts each file or blob once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Content {
    File(PathBuf),
    Blob(String),
}

/// One row: a repo or a revision, local or remote. `None` means unknown.
#[derive(Debug, Default)]
pub struct Entry {
    /// What `rm` takes: `model/org/name` for repos, the commit for revisions.
    pub id: String,
    pub repo_type: Option<RepoType>,
    pub repo_id: String,
    /// `model/org/name` (or `org/name` when the type is unknown).
    pub repo: String,
    pub revision: Option<String>,
    pub size: Option<u64>,
    pub revisions: usize,
    pub files: Option<usize>,
    pub accessed_at: Option<SystemTime>,
    pub modified_at: Option<SystemTime>,
    pub refs: Option<Vec<String>>,
    pub path: Option<PathBuf>,
    pub content: Vec<(Content, u64)>,
}

impl Entry {
    pub fn sort_name(&self) -> (&str, &str) {
        (&self.repo, self.revision.as_deref().unwrap_or(""))
    }

    pub fn detached(&self) -> Option<bool> {
        self.refs.as_ref().map(Vec::is_empty)
    }
}

/// Where the rows came from.
pub enum Source {
    Local {
        cache_dir: PathBuf,
    },
    Remote {
        describe: String,
        manifests_read: bool,
    },
}

/// Every row of one side, before filters, and what is known about them.
pub struct Listing {
    pub source: Source,
    pub entries: Vec<Entry>,
    pub warnings: Vec<String>,
    /// Rows one per revision instead of per repo.
    pub revisions: bool,
    /// Sizes and file counts are known.
    pub sized: bool,
    /// Access and modification times are known.
    pub timed: bool,
    /// Some row passed the filters (a `--limit` may still have left none).
    pub matched: bool,
}

/// The bytes of the rows, each file or blob counted once.
pub fn total_size(entries: &[Entry]) -> u64 {
    let mut seen = HashSet::new();
    entries
        .iter()
        .flat_map(|e| &e.content)
        .filter(|(c, _)| seen.insert(c))
        .map(|(_, size)| size)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{commit, Cache};
    use filter::{parse_filter, parse_sort};

    /// The ids `list` shows of the cache with these filters, sort and limit.
    async fn ids(
        cache: &Cache,
        filters: &[&str],
        sort: Option<&str>,
        limit: Option<usize>,
    ) -> Vec<String> {
        let opts = ListOptions {
            revisions: false,
            filters: filters.iter().map(|f| parse_filter(f).unwrap()).collect(),
            sort: sort.map(|s| parse_sort(s).unwrap()),
            limit,
        };
        let side = Side::Local {
            cache_dir: cache.root(),
        };
        let listing = list(side, &opts).await.unwrap();
        listing.entries.into_iter().map(|e| e.id).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rows_are_filtered_sorted_and_cut_to_the_limit() {
        let cache = Cache::new();
        cache.file("org/big", &commit('a'), "w.bin", &[1; 2000]);
        cache.file("org/small", &commit('b'), "w.bin", &[2; 10]);
        cache.reference("org/small", "main", &commit('b'));
        let (big, small) = ("model/org/big", "model/org/small");
        assert_eq!(ids(&cache, &[], None, None).await, [big, small]);
        assert_eq!(ids(&cache, &["size>1KB"], None, None).await, [big]);
        assert_eq!(ids(&cache, &["refs=main"], None, None).await, [small]);
        // Sizes sort largest first unless asked otherwise, as `hf cache ls` sorts them.
        assert_eq!(ids(&cache, &[], Some("size"), Some(1)).await, [big]);
        assert_eq!(ids(&cache, &[], Some("size:asc"), Some(1)).await, [small]);
    }
}
