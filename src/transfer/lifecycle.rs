//! The bucket's lifecycle: which blobs no manifest names (`gc --remote`) and which manifests no
//! ref points at (`prune --remote --detached`). Both decide on complete knowledge only: one
//! manifest or ref that cannot be read, and nothing is planned for deletion.
//!
//! Safe against a concurrent push, which uploads blobs before their manifest and writes a
//! manifest before its refs: an object younger than the grace period (by its LastModified) is
//! never picked. An older blob a push found on the remote, and so did not upload again, is kept
//! by the bucket locks: gc holds the exclusive one ([`lock_for_gc`]) and deletes nothing while a
//! push holds a shared one.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::manifest::Layout;
use crate::remote::bucket_lock::{self, BucketLock, BucketLockError, LockKind, Verdict};
use crate::remote::catalog::{Body, Catalog, ReadFailure, ReadMode};
use crate::remote::{Access, ObjectInfo, OpenUploadInfo, Remote, RemoteError};
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

/// Takes the bucket's exclusive lock for `gc --remote`, before anything is listed: a push that
/// starts later waits for it, and while a push is writing it is refused (nothing is deleted).
/// Locks left by killed runs are removed, each reported first. A key that may not write is
/// refused as one that may not delete, which is what gc needs.
pub async fn lock_for_gc(
    remote: &Remote,
    layout: &Layout,
    report: &dyn Fn(&str),
) -> anyhow::Result<BucketLock> {
    let lock = BucketLock::acquire(remote, layout, LockKind::Exclusive, Duration::ZERO, report)
        .await
        .map_err(|e| match e {
            BucketLockError::Remote(RemoteError::AccessDenied {
                bucket,
                action: Access::Write,
                code,
                key,
            }) => RemoteError::AccessDenied {
                bucket,
                action: Access::Delete,
                code,
                key,
            }
            .into(),
            other => other.into_anyhow(),
        })?;
    let now = SystemTime::now();
    for stale in lock.stale() {
        match remote.delete(&stale.key).await {
            Ok(()) => report(&format!(
                "removed a stale lock (not refreshed for {}): {}",
                humantime::format_duration(bucket_lock::STALE_AFTER),
                stale.describe(now)
            )),
            Err(e) => report(&format!(
                "ignoring a stale lock, which cannot be removed ({e}): {}",
                stale.describe(now)
            )),
        }
    }
    Ok(lock)
}

/// For a dry run, which takes no lock: the fresh locks a real run would now be refused by.
pub async fn gc_blockers(remote: &Remote, layout: &Layout) -> Result<Verdict, RemoteError> {
    let seen = bucket_lock::list_locks(remote, layout).await?;
    Ok(bucket_lock::judge(
        LockKind::Exclusive,
        "",
        seen,
        SystemTime::now(),
    ))
}

/// Lists blobs, manifests and unfinished uploads (one LIST pass each), reads every manifest
/// and picks the blobs none names that are older than `grace`.
pub async fn plan_gc(remote: &Remote, layout: &Layout, grace: Duration) -> anyhow::Result<GcPlan> {
    let now = SystemTime::now();
    let blobs_prefix = layout.blobs_prefix();
    let (catalog, uploads) = tokio::join!(
        Catalog::list(remote, layout, true),
        remote.open_uploads(&blobs_prefix)
    );
    let mut catalog = catalog?.reading(READS, ReadMode::Warn);
    catalog.read_manifests(|_, _| true).await?;
    Ok(pick_garbage(&catalog, layout, uploads?, grace, now)?)
}

/// What goes, from a catalog whose manifests were read: blobs no manifest names and uploads,
/// each older than `grace` at `now`. Nothing at all when a manifest could not be read.
fn pick_garbage(
    catalog: &Catalog,
    layout: &Layout,
    uploads: Vec<OpenUploadInfo>,
    grace: Duration,
    now: SystemTime,
) -> Result<GcPlan, Unreadable> {
    let referenced = named_blobs(catalog)?;
    let (blobs, kept): (Vec<&ObjectInfo>, Vec<&ObjectInfo>) = catalog
        .blob_objects()
        .iter()
        .filter(|o| {
            layout
                .parse_blob_key(&o.key)
                .is_some_and(|etag| !referenced.contains(etag))
        })
        .partition(|o| older_than(o.last_modified, grace, now));
    Ok(GcPlan {
        blobs: blobs.into_iter().cloned().collect(),
        uploads: uploads
            .into_iter()
            .filter(|u| older_than(Some(u.initiated), grace, now))
            .collect(),
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
        } else if older_than(m.object.last_modified, age, now) {
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

/// Written (or started) at least `age` before `now`. Something of unknown age, or dated after
/// `now` (a server clock ahead of ours), is young.
fn older_than(written: Option<SystemTime>, age: Duration, now: SystemTime) -> bool {
    written
        .and_then(|t| now.duration_since(t).ok())
        .is_some_and(|d| d >= age)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::manifest::{Manifest, ManifestFile};
    use crate::remote::dir::DirRemote;

    const HOUR: Duration = Duration::from_secs(3600);

    fn etag(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn commit(c: char) -> String {
        c.to_string().repeat(40)
    }

    /// Writes `key` under `root`, last modified `age` ago.
    fn put(root: &Path, key: &str, body: &[u8], age: Duration) {
        let path = root.join(key);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, body).unwrap();
        let when = SystemTime::now() - age;
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_times(fs::FileTimes::new().set_modified(when))
            .unwrap();
    }

    fn manifest(repo: &str, rev: char, blobs: &[char]) -> Vec<u8> {
        Manifest {
            repo: repo.into(),
            revision: commit(rev),
            repo_type: "model".into(),
            files: blobs
                .iter()
                .map(|&b| ManifestFile {
                    path: format!("{b}.bin"),
                    blob: etag(b),
                    size: 1,
                })
                .collect(),
        }
        .to_json_bytes()
    }

    /// Blobs a..e, all old but `e`, under the prefix `team`; org/m@1 names a and b, and a
    /// manifest stored under org/x's key, though it says it is org/m@2's, names c.
    fn bucket(root: &Path, layout: &Layout) -> Remote {
        for (b, age) in [('a', 2), ('b', 2), ('c', 2), ('d', 2), ('e', 0)] {
            put(root, &layout.blob_key(&etag(b)), b"x", HOUR * age);
        }
        let m1 = manifest("org/m", '1', &['a', 'b']);
        put(
            root,
            &layout.manifest_key("org/m", &commit('1')),
            &m1,
            HOUR * 3,
        );
        let misplaced = manifest("org/m", '2', &['c']);
        put(
            root,
            &layout.manifest_key("org/x", &commit('2')),
            &misplaced,
            HOUR * 3,
        );
        // Not a blob name: never listed as one, never deleted.
        put(root, "team/blobs/notes.txt", b"x", HOUR * 2);
        Remote::Dir(DirRemote::new(root.to_path_buf()))
    }

    fn keys(objects: &[ObjectInfo]) -> Vec<&str> {
        objects.iter().map(|o| o.key.as_str()).collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_unnamed_blobs_older_than_the_grace_go() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new("team");
        let remote = bucket(dir.path(), &layout);

        let plan = plan_gc(&remote, &layout, HOUR).await.unwrap();
        assert_eq!(keys(&plan.blobs), [layout.blob_key(&etag('d'))]);
        assert_eq!(plan.blobs[0].size, 1);
        // e is named by nothing yet, but a push may be about to name it.
        assert_eq!(plan.recent, 1);
        assert_eq!((plan.manifests, plan.referenced), (2, 3));
        assert!(plan.uploads.is_empty());

        // A longer grace keeps d too; none at all lets e go as well.
        let plan = plan_gc(&remote, &layout, HOUR * 3).await.unwrap();
        assert!(plan.blobs.is_empty());
        assert_eq!(plan.recent, 2);
        let plan = plan_gc(&remote, &layout, Duration::ZERO).await.unwrap();
        assert_eq!(
            keys(&plan.blobs),
            [layout.blob_key(&etag('d')), layout.blob_key(&etag('e'))]
        );
        assert_eq!(plan.recent, 0);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn one_manifest_that_cannot_be_read_stops_every_deletion() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new("team");
        let remote = bucket(dir.path(), &layout);
        let junk = layout.manifest_key("org/junk", &commit('3'));
        put(dir.path(), &junk, b"{ not json", HOUR * 3);

        let err = plan_gc(&remote, &layout, HOUR).await.unwrap_err();
        let unreadable = err.downcast_ref::<Unreadable>().expect("Unreadable");
        assert_eq!(unreadable.0.len(), 1, "{err}");
        assert!(unreadable.0[0].starts_with(&format!("{junk}: ")), "{err}");
        assert!(err
            .to_string()
            .starts_with("nothing deleted: 1 object cannot be read"));

        // Once it is gone, the rest is collected again.
        fs::remove_file(dir.path().join(&junk)).unwrap();
        let plan = plan_gc(&remote, &layout, HOUR).await.unwrap();
        assert_eq!(keys(&plan.blobs), [layout.blob_key(&etag('d'))]);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn unfinished_uploads_older_than_the_grace_go() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new("team");
        let remote = bucket(dir.path(), &layout);
        let mut catalog = Catalog::list(&remote, &layout, true)
            .await
            .unwrap()
            .reading(READS, ReadMode::Warn);
        catalog.read_manifests(|_, _| true).await.unwrap();
        let now = SystemTime::now();
        let upload = |name: &str, age: Duration| OpenUploadInfo {
            key: layout.blob_key(&etag('f')),
            upload_id: name.into(),
            initiated: now - age,
        };
        let uploads = vec![
            upload("old", HOUR * 2),
            upload("exactly", HOUR),
            upload("young", HOUR - Duration::from_secs(1)),
            // Started after `now` by the server's clock.
            OpenUploadInfo {
                initiated: now + HOUR,
                ..upload("ahead", Duration::ZERO)
            },
        ];
        let plan = pick_garbage(&catalog, &layout, uploads, HOUR, now).unwrap();
        let ids: Vec<&str> = plan.uploads.iter().map(|u| u.upload_id.as_str()).collect();
        assert_eq!(ids, ["old", "exactly"]);
    }

    #[test]
    fn age_is_told_by_the_time_written() {
        let now = SystemTime::now();
        assert!(older_than(Some(now - HOUR), HOUR, now));
        assert!(!older_than(
            Some(now - HOUR + Duration::from_secs(1)),
            HOUR,
            now
        ));
        assert!(older_than(Some(now), Duration::ZERO, now));
        // Unknown or in the future: young, whatever the grace.
        assert!(!older_than(None, Duration::ZERO, now));
        assert!(!older_than(Some(now + HOUR), Duration::ZERO, now));
    }
}
