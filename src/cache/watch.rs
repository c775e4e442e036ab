//! Watching the hub cache for finished downloads, for `watch`: which file-system events mean a
//! repo has something new to push (a blob renamed into `blobs/`, a snapshot link, a ref), which
//! only mean the repo is busy (a partial download growing, this tool's temporary files), and
//! which concern nothing pushed at all (`.locks/`, the shared store's own files).

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::lock::{self, Probe};
use super::scan::Repo;
use super::{is_blob_name, lock_path, parse_repo_folder, TEMP_PREFIX, TEMP_SUFFIX};

/// What one event says about the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A repo (its folder name) has something finished to push.
    Ready(String),
    /// A repo is being written to: a push of it waits until it has been quiet.
    Busy(String),
    /// The watch lost events (a queue overflow): anything may have changed.
    Rescan,
}

/// What happened to a path, as far as readiness goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Created, or renamed to this name.
    Appeared,
    /// Closed after writing.
    Written,
    /// Anything else: data written, metadata, removal, a rename away.
    Other,
}

impl Change {
    fn of(kind: &EventKind) -> Change {
        match kind {
            EventKind::Create(CreateKind::Any | CreateKind::File | CreateKind::Folder)
            | EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Any)) => {
                Change::Appeared
            }
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => Change::Written,
            _ => Change::Other,
        }
    }
}

/// `.incomplete` downloads and this tool's `.hfcs-*.tmp` files: never a sign of anything finished.
fn is_partial_name(name: &str) -> bool {
    name.ends_with(".incomplete") || (name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX))
}

/// What a change to `path` (inside the cache at `root`) says, if anything.
pub fn classify(root: &Path, path: &Path, change: Change) -> Option<Seen> {
    let rel = path.strip_prefix(root).ok()?;
    let parts: Vec<&str> = rel
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    let folder = *parts.first()?;
    parse_repo_folder(folder)?;
    let busy = Some(Seen::Busy(folder.to_string()));
    let name = *parts.last()?;
    if parts.len() < 2 || is_partial_name(name) || change == Change::Other {
        return busy;
    }
    let ready = match parts[1] {
        // Only a whole blob under its final name: huggingface_hub renames it into place.
        "blobs" => parts.len() == 3 && is_blob_name(name) && change == Change::Appeared,
        // Links (or copies) of a snapshot, a new snapshot folder, a ref written.
        "snapshots" | "refs" => parts.len() > 2,
        _ => false,
    };
    if ready {
        Some(Seen::Ready(folder.to_string()))
    } else {
        busy
    }
}

/// Everything one notify event says.
fn classify_event(root: &Path, event: &notify::Event) -> Vec<Seen> {
    if event.need_rescan() {
        return vec![Seen::Rescan];
    }
    let change = Change::of(&event.kind);
    // A rename seen whole names the old path, then the new one: only the new one appeared.
    if let EventKind::Modify(ModifyKind::Name(RenameMode::Both)) = event.kind {
        return event
            .paths
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let change = if i == 1 {
                    Change::Appeared
                } else {
                    Change::Other
                };
                classify(root, p, change)
            })
            .collect();
    }
    event
        .paths
        .iter()
        .filter_map(|p| classify(root, p, change))
        .collect()
}

/// A recursive watch of a cache dir, sending what it sees to a channel. Stops when dropped.
pub struct CacheWatch {
    _watcher: RecommendedWatcher,
}

/// Why a cache could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(
        "cannot watch {}: the system's limit on watched folders is reached; raise it (on \
         Linux: sysctl fs.inotify.max_user_watches=524288) or watch a smaller cache",
        path.display()
    )]
    TooManyFolders { path: PathBuf },
    #[error("cannot watch {}: {source}", path.display())]
    Other {
        path: PathBuf,
        source: notify::Error,
    },
}

impl CacheWatch {
    /// Starts watching `root` and everything below it; events go to `send` as they happen.
    pub fn start(
        root: &Path,
        send: impl Fn(Seen) + Send + 'static,
    ) -> Result<CacheWatch, WatchError> {
        // Paths come back under the root as given: canonical, so they strip cleanly.
        let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let base = canonical.clone();
        let handler = move |res: notify::Result<notify::Event>| match res {
            Ok(event) => classify_event(&base, &event).into_iter().for_each(&send),
            // The backend lost track (an overflowed queue, a folder it could not add).
            Err(_) => send(Seen::Rescan),
        };
        let err = |source: notify::Error| match source.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::TooManyFolders {
                path: root.to_path_buf(),
            },
            _ => WatchError::Other {
                path: root.to_path_buf(),
                source,
            },
        };
        let mut watcher = notify::recommended_watcher(handler).map_err(err)?;
        watcher
            .watch(&canonical, RecursiveMode::Recursive)
            .map_err(err)?;
        Ok(CacheWatch { _watcher: watcher })
    }
}

/// Is a download into `repo` still going on: a partial download whose lock someone holds, or
/// that changed within `quiet`? A snapshot is pushed only once its downloads are done, so no
/// manifest lists part of a revision. Blocking (probes locks).
pub fn download_in_progress(
    cache_dir: &Path,
    repo: &Repo,
    now: SystemTime,
    quiet: Duration,
) -> bool {
    repo.partials.iter().any(|p| {
        let recent = p
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .is_none_or(|age| age < quiet);
        let locked = p.etag.as_ref().is_some_and(|etag| {
            matches!(
                lock::probe(&lock_path(cache_dir, &repo.folder, etag)),
                Probe::Held
            )
        });
        // An unlocked partial nobody has written to for a while was abandoned: prune collects
        // it, and it holds nothing up.
        recent || locked
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "0123456789abcdef0123456789abcdef01234567";

    fn seen(rel: &str, change: Change) -> Option<Seen> {
        let root = Path::new("/cache");
        classify(root, &root.join(rel), change)
    }

    fn ready(folder: &str) -> Option<Seen> {
        Some(Seen::Ready(folder.into()))
    }

    fn busy(folder: &str) -> Option<Seen> {
        Some(Seen::Busy(folder.into()))
    }

    #[test]
    fn a_blob_renamed_into_place_is_ready_its_partial_only_busy() {
        let m = "models--org--m";
        let partial = format!("{m}/blobs/{ETAG}.0a1b2c3d.incomplete");
        assert_eq!(seen(&partial, Change::Appeared), busy(m));
        assert_eq!(seen(&partial, Change::Written), busy(m));
        assert_eq!(seen(&partial, Change::Other), busy(m));
        assert_eq!(
            seen(&format!("{m}/blobs/{ETAG}"), Change::Appeared),
            ready(m)
        );
        // Written in place under its final name: not how a finished blob arrives.
        assert_eq!(seen(&format!("{m}/blobs/{ETAG}"), Change::Written), busy(m));
        let temp = format!("{m}/blobs/.hfcs-{ETAG}-x1y2z3.tmp");
        assert_eq!(seen(&temp, Change::Appeared), busy(m));
        assert_eq!(
            seen(&format!("{m}/blobs/notes.txt"), Change::Appeared),
            busy(m)
        );
    }

    #[test]
    fn snapshot_links_and_refs_are_ready() {
        let d = "datasets--org--d";
        let snap = format!("{d}/snapshots/{ETAG}");
        assert_eq!(seen(&snap, Change::Appeared), ready(d));
        assert_eq!(
            seen(&format!("{snap}/sub/w.bin"), Change::Appeared),
            ready(d)
        );
        assert_eq!(seen(&format!("{snap}/w.bin"), Change::Other), busy(d));
        assert_eq!(seen(&format!("{d}/refs/pr/1"), Change::Written), ready(d));
        assert_eq!(seen(&format!("{d}/refs/main"), Change::Appeared), ready(d));
        assert_eq!(seen(&format!("{d}/snapshots"), Change::Appeared), busy(d));
        assert_eq!(seen(d, Change::Appeared), busy(d));
        assert_eq!(
            seen(&format!("{d}/.no_exist/{ETAG}/x"), Change::Appeared),
            busy(d)
        );
    }

    #[test]
    fn what_is_not_a_repo_is_ignored() {
        for rel in [
            ".locks/models--org--m/x.lock",
            ".locks/hf-cache-sync.push.lock",
            "blobs/ab/abcdef",
            "CACHEDIR.TAG",
            "widgets--org--w/blobs/x",
        ] {
            assert_eq!(seen(rel, Change::Appeared), None, "{rel}");
        }
        assert_eq!(
            classify(
                Path::new("/cache"),
                Path::new("/elsewhere/models--a--b/refs/main"),
                Change::Written
            ),
            None
        );
    }

    #[test]
    fn a_rename_seen_whole_counts_for_its_new_name() {
        let m = "models--org--m";
        let event = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path(PathBuf::from(format!("/cache/{m}/blobs/{ETAG}.incomplete")))
            .add_path(PathBuf::from(format!("/cache/{m}/blobs/{ETAG}")));
        assert_eq!(
            classify_event(Path::new("/cache"), &event),
            vec![Seen::Busy(m.into()), Seen::Ready(m.into())]
        );
        let lost = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(
            classify_event(Path::new("/cache"), &lost),
            vec![Seen::Rescan]
        );
    }
}
