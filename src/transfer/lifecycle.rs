//! The bucket's lifecycle: which blobs no manifest names (`gc --remote`) and which manifests no
//! ref points at (`prune --remote --detached`). Both decide on complete knowledge only: one
//! manifest or ref that cannot be read, and nothing is planned for deletion.
//!
//! Safe against a concurrent push, which uploads blobs before their manifest and writes a
//! manifest before its refs: an object younger than the grace period (by its LastModified) is
//! never picked.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::manifest::Layout;
use crate::remote::catalog::{Body, Catalog, ReadFailure, ReadMode};
use crate::remote::{ObjectInfo, OpenUploadInfo, Remote};
use crate::text::plural;

/// The default age below which nothing is deleted: a push uploads its blobs before its
/// manifest and writes its manifest before its refs, so a younger object may be about to be
/// named.
pub const DEFAULT_GRACE: &str = "24h";

/// Manifests and refs read at once.
const READS: usize = 16;

/// Some manifests or refs could not be read or parsed: deleting on what is known could delete
/// what they name.
#[derive(Debug, thiserror::Error)]
#[error(
    "nothing deleted: {} cannot be read, and what it names could be deleted by mistake:\n  {}\n\
     fix or remove it (`hf-cache-sync rm --remote REPO@REVISION`), then run again",
    plural(.0.len(), "object", "objects"),
    .0.join("\n  ")
)]
pub struct Unreadable(pub Vec<String>);

/// What `gc --remote` deletes.
#[derive(Debug)]
pub struct GcPlan {
    /// Blobs no manifest names, older than the grace period, in key order.
    pub blobs: Vec<ObjectInfo>,
    /// Multipart uploads started before the grace period.
    pub uploads: Vec<OpenUploadInfo>,
    /// Manifests read.
    pub manifests: usize,
    /// Listed blobs some manifest names.
    pub referenced: usize,
    /// Blobs no manifest names yet, kept because they are younger than the grace period.
    pub recent: usize,
}

/// Lists blobs, manifests and unfinished uploads (one LIST pass each), reads every manifest
/// and picks the blobs none names that are older than `grace`.
pub async fn plan_gc(remote: &Remote, layout: &Layout, grace: Duration) -> anyhow::Result<GcPlan> {
    let now = SystemTime::now();
    let blobs_prefix = layout.blobs_prefix();
    let (catalog, uploads) = tokio::join!(
        Catalog::list(remote, layout, true),
        remote.stale_uploads(&blobs_prefix, grace)
    );
    let mut catalog = catalog?.reading(READS, ReadMode::Warn);
    catalog.read_manifests(|_, _| true).await?;
    let referenced = named_blobs(&catalog)?;
    let (blobs, kept): (Vec<&ObjectInfo>, Vec<&ObjectInfo>) = catalog
        .blob_objects()
        .iter()
        .filter(|o| {
            layout
                .parse_blob_key(&o.key)
                .is_some_and(|etag| !referenced.contains(etag))
        })
        .partition(|o| older_than(o, grace, now));
    Ok(GcPlan {
        blobs: blobs.into_iter().cloned().collect(),
        uploads: uploads?,
        manifests: catalog.revision_count(),
        referenced: catalog
            .blobs()
            .keys()
            .filter(|e| referenced.contains(e.as_str()))
            .count(),
        recent: kept.len(),
    })
}

/// Every blob a manifest names; an error naming each manifest that could not be read or parsed.
/// A manifest stored under another repo's key still names its blobs.
fn named_blobs(catalog: &Catalog) -> Result<BTreeSet<String>, Unreadable> {
    let mut named = BTreeSet::new();
    let mut unreadable = Vec::new();
    for entry in catalog.manifests() {
        match &entry.body {
            Body::Valid(m) | Body::Failed(ReadFailure::Misplaced(m)) => {
                named.extend(m.files.iter().map(|f| f.blob.clone()));
            }
            // Deleted since the listing: it names nothing any more.
            Body::Gone => {}
            Body::Failed(why) => unreadable.push(format!("{}: {why}", entry.key)),
            Body::Unread => unreadable.push(format!("{}: not read", entry.key)),
        }
    }
    if unreadable.is_empty() {
        Ok(named)
    } else {
        Err(Unreadable(unreadable))
    }
}

/// What `prune --remote --detached` deletes.
#[derive(Debug)]
pub struct DetachedPlan {
    /// Manifests no ref points at, written before the age limit, in key order, each followed by
    /// its revision's tree listing when the remote has one.
    pub manifests: Vec<ObjectInfo>,
    /// How many of `manifests` are tree listings.
    pub listings: usize,
    /// Manifests a ref points at.
    pub attached: usize,
    /// Manifests no ref points at, kept because they were written within the age limit.
    pub recent: usize,
}

/// Lists manifests and refs, reads every ref, and picks the manifests no ref points at that
/// were written more than `age` ago.
pub async fn plan_detached(
    remote: &Remote,
    layout: &Layout,
    age: Duration,
) -> anyhow::Result<DetachedPlan> {
    let now = SystemTime::now();
    let mut catalog = Catalog::list(remote, layout, false)
        .await?
        .reading(READS, ReadMode::Warn);
    catalog.read_refs(|_, _| true).await?;
    let mut pointed = BTreeSet::new();
    let mut unreadable = Vec::new();
    for r in catalog.refs() {
        match &r.body {
            Body::Valid(commit) => {
                pointed.insert((r.safe.as_str(), commit.as_str()));
            }
            Body::Gone => {}
            Body::Failed(why) => unreadable.push(format!("{}: {why}", r.key)),
            Body::Unread => unreadable.push(format!("{}: not read", r.key)),
        }
    }
    if !unreadable.is_empty() {
        return Err(Unreadable(unreadable).into());
    }
    // A revision's tree listing goes with its manifest (one more LIST, for the listings there are).
    let mut listings: BTreeMap<String, ObjectInfo> = remote
        .list(&layout.trees_prefix())
        .await?
        .into_iter()
        .map(|o| (o.key.clone(), o))
        .collect();
    let mut plan = DetachedPlan {
        manifests: Vec::new(),
        listings: 0,
        attached: 0,
        recent: 0,
    };
    for m in catalog.manifests() {
        if pointed.contains(&(m.safe.as_str(), m.commit.as_str())) {
            plan.attached += 1;
        } else if older_than(&m.object, age, now) {
            plan.manifests.push(m.object.clone());
            // `safe` holds no `/`: it encodes to itself.
            if let Some(listing) = listings.remove(&layout.tree_key(&m.safe, &m.commit)) {
                plan.manifests.push(listing);
                plan.listings += 1;
            }
        } else {
            plan.recent += 1;
        }
    }
    Ok(plan)
}

/// Written more than `age` before `now`. An object of unknown age is young.
fn older_than(o: &ObjectInfo, age: Duration, now: SystemTime) -> bool {
    o.last_modified
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|d| d >= age)
}
