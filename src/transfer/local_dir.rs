//! Pulls into a project folder (`pull REPO --local-dir DIR`, and lock entries that name a
//! folder): a revision already in the cache laid out under DIR as real files, each reflinked from
//! the cache where the file system can and copied otherwise, never linked (an edit in DIR must
//! never reach a cache blob), written beside its final name and renamed over it. Each file gets
//! the metadata huggingface_hub keeps for `hf download --local-dir`, so it sees the folder as up
//! to date; [`check`] verifies such a folder byte for byte.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::cache::hash::{hash_file, BlobHasher};
use crate::cache::local_dir::{self as layout, FileMetadata, CACHEDIR_TAG, GITIGNORE};
use crate::cache::lock::{self, LockError, Mode};
use crate::cache::reflink::{clone_or_copy, Copied};
use crate::cache::trees::tree_path;
use crate::cache::write::{check_within, io_err, sync_dir, write_user_file, WriteError};
use crate::cache::{
    blob_path, is_safe_relative_path, snapshot_path, temp, TEMP_PREFIX, TEMP_SUFFIX,
};
use crate::failure::Failure;
use crate::manifest::ManifestFile;
use crate::report::{lock_waiter, Progress};

/// How DIR is called in errors about links that leave it.
const WHAT: &str = "the local dir";

/// A revision whose files are in the cache (its snapshot built): where they are read from.
#[derive(Debug, Clone, Copy)]
pub struct CachedRevision<'a> {
    pub repo_dir: &'a Path,
    pub commit: &'a str,
    pub files: &'a [ManifestFile],
}

/// Why a folder could not be filled, or one file of it.
#[derive(Debug, thiserror::Error)]
pub enum LocalDirError {
    #[error("{}: a file, not a folder", path.display())]
    NotAFolder { path: PathBuf },
    #[error("cannot write to {}: {source}", path.display())]
    NotWritable { path: PathBuf, source: io::Error },
    /// A file that would land outside DIR (or in huggingface_hub's bookkeeping): nothing of the
    /// revision is written.
    #[error("refusing to write {path:?} into {}: {why}", dir.display())]
    Refused {
        dir: PathBuf,
        path: String,
        why: String,
    },
    #[error("{}: {why}; pull the revision again to repair the cache", path.display())]
    NotInCache { path: PathBuf, why: String },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl LocalDirError {
    /// What to do about it, when the folder itself is the problem.
    pub fn hint(&self) -> Option<String> {
        match self {
            LocalDirError::NotAFolder { path } => Some(format!(
                "pass a folder to --local-dir (it is made when missing), or move {} away",
                path.display()
            )),
            LocalDirError::NotWritable { path, .. } => Some(format!(
                "pass a folder you may write to, or fix the permissions of {}",
                path.display()
            )),
            LocalDirError::Refused { .. } => Some(
                "nothing was written to the folder: remove the link that leaves it, or pull \
                 into another folder"
                    .into(),
            ),
            _ => None,
        }
    }

    /// Whether the folder as a whole cannot be used (rather than one file failing).
    pub fn is_about_the_folder(&self) -> bool {
        matches!(
            self,
            LocalDirError::NotAFolder { .. } | LocalDirError::NotWritable { .. }
        )
    }
}

/// What [`place`] did, or [`preview`] would do.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// The folder, absolute.
    pub path: PathBuf,
    /// Files written (a dry run: to be written).
    pub placed: usize,
    /// Of those, how many share the cache's extents and how many are copies.
    pub reflinked: usize,
    pub copied: usize,
    pub bytes_placed: u64,
    /// Files that already held the revision's content by their metadata, left as they were.
    pub already_current: usize,
    /// Files that were there with other content (edited, or of another revision), replaced
    /// by the revision's (a dry run: would be).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replaced: Vec<String>,
    #[serde(skip)]
    pub failures: Vec<Failure>,
}

impl Report {
    /// What was replaced, for a warning: a file the user edited is put back as the revision
    /// has it (the pin wins), and said.
    pub fn replaced_note(&self, dry_run: bool) -> Option<String> {
        if self.replaced.is_empty() {
            return None;
        }
        let mut shown: Vec<&str> = self.replaced.iter().take(5).map(String::as_str).collect();
        if self.replaced.len() > 5 {
            shown.push("…");
        }
        Some(format!(
            "{} {} in {} that held other content: {}",
            if dry_run { "would replace" } else { "replaced" },
            crate::text::plural(self.replaced.len(), "file", "files"),
            self.path.display(),
            shown.join(", ")
        ))
    }
}

/// Checks that DIR can receive files: it is not a file (nor under one). Unless `dry_run`, it is
/// made, with the `.cache/huggingface/` folder huggingface_hub keeps there (its `.gitignore` and
/// `CACHEDIR.TAG`), and a file is made and removed in it to prove this user may write there.
/// Returns DIR as an absolute path. Call it before fetching, so a wrong folder costs nothing.
pub fn prepare(dir: &Path, dry_run: bool) -> Result<PathBuf, LocalDirError> {
    let not_writable = |path: &Path| {
        let path = path.to_path_buf();
        move |source| LocalDirError::NotWritable { path, source }
    };
    let dir = std::path::absolute(dir).map_err(not_writable(dir))?;
    let mut existing = dir.as_path();
    loop {
        match fs::metadata(existing) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(LocalDirError::NotAFolder {
                    path: existing.to_path_buf(),
                })
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                match existing.parent() {
                    Some(parent) => existing = parent,
                    None => break,
                }
            }
            Err(e) => return Err(not_writable(existing)(e)),
        }
    }
    if dry_run {
        return Ok(dir);
    }
    let bookkeeping = layout::bookkeeping_dir(&dir);
    check_within(&dir, &bookkeeping, WHAT).map_err(|e| refused(&dir, ".cache/huggingface", e))?;
    fs::create_dir_all(&bookkeeping).map_err(not_writable(&bookkeeping))?;
    drop(temp::create_in(&dir, TEMP_PREFIX).map_err(not_writable(&dir))?);
    for (name, body) in [(".gitignore", GITIGNORE), ("CACHEDIR.TAG", CACHEDIR_TAG)] {
        let path = bookkeeping.join(name);
        // As huggingface_hub: written once, never overwritten (a user may have edited it).
        if fs::symlink_metadata(&path).is_err() {
            write_user_file(&path, body.as_bytes())?;
        }
    }
    Ok(dir)
}

/// Lays the revision's files out under DIR (see the module doc). A file whose metadata says it
/// holds the revision's blob, and that was not modified since, is left alone (its metadata
/// updated when it names another commit); any other is replaced. Paths are checked first: one
/// that would land outside DIR refuses the whole revision before anything is written. A file
/// that fails is a failure in the report; the others go on. Each is written under the lock
/// huggingface_hub takes for it, waiting at most `lock_timeout`.
///
/// Blocking. Hold the repo's lease while it runs, so no prune removes a blob being read.
pub fn place(
    rev: &CachedRevision<'_>,
    dir: &Path,
    lock_timeout: Duration,
    progress: &Arc<dyn Progress>,
) -> Result<Report, LocalDirError> {
    let dir = prepare(dir, false)?;
    check_paths(&dir, rev.files)?;
    let mut report = Report {
        path: dir.clone(),
        ..Report::default()
    };
    progress.add_total(
        rev.files.len() as u64,
        rev.files.iter().map(|f| f.size).sum(),
    );
    let mut leftovers = leftovers(&dir, rev.files);
    let mut folders = BTreeSet::new();
    for f in rev.files {
        let dest = layout::file_path(&dir, &f.path);
        let stale = leftovers.remove(&temp_key(&dest)).unwrap_or_default();
        let existed = fs::symlink_metadata(&dest).is_ok();
        match place_one(rev, &dir, f, &stale, lock_timeout, progress) {
            Ok(Some(copied)) => {
                if existed {
                    report.replaced.push(f.path.clone());
                }
                report.placed += 1;
                report.bytes_placed += f.size;
                match copied {
                    Copied::Reflink => report.reflinked += 1,
                    Copied::Copy => report.copied += 1,
                }
                folders.extend(dest.parent().map(Path::to_path_buf));
            }
            Ok(None) => report.already_current += 1,
            Err(e) => report
                .failures
                .push(Failure::new(dest.display().to_string(), e)),
        }
        progress.add_bytes(f.size);
        progress.item_done();
    }
    if let Err(e) = copy_listing(rev, &dir) {
        let path = layout::listing_path(&dir, rev.commit);
        report
            .failures
            .push(Failure::new(path.display().to_string(), e));
    }
    for folder in &folders {
        sync_dir(folder);
    }
    Ok(report)
}

/// [`place`] (or, given no progress, [`preview`]) off the async workers, for a revision whose
/// snapshot is built.
pub async fn lay_out(
    repo_dir: PathBuf,
    commit: String,
    files: Vec<ManifestFile>,
    dir: PathBuf,
    lock_timeout: Duration,
    progress: Option<Arc<dyn Progress>>,
) -> Result<Report, LocalDirError> {
    crate::task::blocking(move || {
        let rev = CachedRevision {
            repo_dir: &repo_dir,
            commit: &commit,
            files: &files,
        };
        let Some(progress) = progress else {
            return preview(&rev, &dir);
        };
        let report = place(&rev, &dir, lock_timeout, &progress);
        progress.finish();
        report
    })
    .await
}

/// What [`place`] would do, writing nothing: the same checks of DIR and of the paths, and
/// which files are already current.
pub fn preview(rev: &CachedRevision<'_>, dir: &Path) -> Result<Report, LocalDirError> {
    let dir = prepare(dir, true)?;
    check_paths(&dir, rev.files)?;
    let mut report = Report {
        path: dir.clone(),
        ..Report::default()
    };
    for f in rev.files {
        if current_metadata(&dir, f).is_some() {
            report.already_current += 1;
        } else {
            if fs::symlink_metadata(layout::file_path(&dir, &f.path)).is_ok() {
                report.replaced.push(f.path.clone());
            }
            report.placed += 1;
            report.bytes_placed += f.size;
        }
    }
    Ok(report)
}

/// The error for a path that must not be written.
fn refused(dir: &Path, path: &str, why: impl std::fmt::Display) -> LocalDirError {
    LocalDirError::Refused {
        dir: dir.to_path_buf(),
        path: path.to_string(),
        why: why.to_string(),
    }
}

/// Why the repo path `path` may not be written under DIR at all, if it may not.
fn unsafe_path(path: &str) -> Option<&'static str> {
    if !is_safe_relative_path(path) || path.contains('\\') {
        Some("not a relative path inside the folder")
    } else if layout::is_bookkeeping_path(path) {
        Some("inside .cache/huggingface, where huggingface_hub keeps its metadata")
    } else {
        None
    }
}

/// Refuses, before anything is written, a file that would land outside DIR: an absolute path or
/// one that climbs out with `..` (the manifest's paths were vetted already; checked again
/// here), one inside the bookkeeping folder, or one reached through a link that leaves DIR (a
/// folder on the way, the file itself, its metadata or lock file).
fn check_paths(dir: &Path, files: &[ManifestFile]) -> Result<(), LocalDirError> {
    for f in files {
        if let Some(why) = unsafe_path(&f.path) {
            return Err(refused(dir, &f.path, why));
        }
        for path in [
            layout::file_path(dir, &f.path),
            layout::metadata_path(dir, &f.path),
            layout::lock_path(dir, &f.path),
        ] {
            check_within(dir, &path, WHAT).map_err(|e| refused(dir, &f.path, e))?;
        }
    }
    Ok(())
}

/// The metadata that makes DIR's copy of `f` current, if any: a regular file of the blob's
/// size, metadata naming the blob, written no earlier than a second before the file was last
/// modified (huggingface_hub's own rule for trusting it).
fn current_metadata(dir: &Path, f: &ManifestFile) -> Option<FileMetadata> {
    let file = fs::symlink_metadata(layout::file_path(dir, &f.path)).ok()?;
    if !file.is_file() || file.len() != f.size {
        return None;
    }
    let text = fs::read_to_string(layout::metadata_path(dir, &f.path)).ok()?;
    let meta = FileMetadata::parse(&text)?;
    (meta.etag == f.blob && meta.is_fresh_for(file.modified().ok()?)).then_some(meta)
}

/// Places one file under its lock: `None` when it was current already. `stale`: temporary
/// files a killed run left for it, removed once the lock is held (a live writer would hold it).
fn place_one(
    rev: &CachedRevision<'_>,
    dir: &Path,
    f: &ManifestFile,
    stale: &[PathBuf],
    lock_timeout: Duration,
    progress: &Arc<dyn Progress>,
) -> Result<Option<Copied>, LocalDirError> {
    let lock_path = layout::lock_path(dir, &f.path);
    let on_wait = lock_waiter(
        progress.clone(),
        lock_path.clone(),
        format!("another download is writing {}", f.path),
        lock_timeout,
    );
    let _lock = lock::wait(&lock_path, Mode::Exclusive, lock_timeout, on_wait)?;
    for t in stale {
        let _ = fs::remove_file(t);
    }
    if let Some(meta) = current_metadata(dir, f) {
        if meta.commit != rev.commit {
            write_metadata(dir, f, rev.commit)?;
        }
        return Ok(None);
    }
    let copied = write_file(rev, f, &layout::file_path(dir, &f.path))?;
    // After the file: the timestamp must not be older than the file's modification time.
    write_metadata(dir, f, rev.commit)?;
    Ok(Some(copied))
}

/// The cache file holding `f`'s bytes: its snapshot file (a link to the blob, or a plain file
/// where symlinks are off), else the blob.
fn source_of(rev: &CachedRevision<'_>, f: &ManifestFile) -> Result<PathBuf, LocalDirError> {
    let snapshot = layout::file_path(&snapshot_path(rev.repo_dir, rev.commit), &f.path);
    if fs::metadata(&snapshot).is_ok_and(|m| m.is_file()) {
        return Ok(snapshot);
    }
    let blob = blob_path(rev.repo_dir, &f.blob);
    if fs::metadata(&blob).is_ok_and(|m| m.is_file()) {
        return Ok(blob);
    }
    Err(LocalDirError::NotInCache {
        path: snapshot,
        why: format!("neither the snapshot file nor blob {} is there", f.blob),
    })
}

/// Writes `dest` with `f`'s bytes from the cache: a new file beside it, reflinked or copied,
/// fsynced, then renamed over whatever `dest` was (a link there is replaced, never followed).
fn write_file(
    rev: &CachedRevision<'_>,
    f: &ManifestFile,
    dest: &Path,
) -> Result<Copied, LocalDirError> {
    let source_path = source_of(rev, f)?;
    let mut source = File::open(&source_path).map_err(io_err(&source_path))?;
    let len = source.metadata().map_err(io_err(&source_path))?.len();
    if len != f.size {
        return Err(LocalDirError::NotInCache {
            path: source_path,
            why: format!("{len} bytes where the revision's file has {}", f.size),
        });
    }
    let parent = dest.parent().expect("a file inside DIR");
    fs::create_dir_all(parent).map_err(io_err(parent))?;
    if fs::symlink_metadata(dest).is_ok_and(|m| m.is_dir()) {
        return Err(WriteError::Io {
            path: dest.to_path_buf(),
            source: io::Error::new(io::ErrorKind::AlreadyExists, "a folder is in the way"),
        }
        .into());
    }
    let mut tmp = temp::create_in(parent, &temp_prefix(dest)).map_err(io_err(parent))?;
    let copied = clone_or_copy(&mut source, tmp.as_file_mut()).map_err(io_err(dest))?;
    let written = tmp.as_file().metadata().map_err(io_err(dest))?.len();
    if written != f.size {
        return Err(LocalDirError::NotInCache {
            path: source_path,
            why: format!("changed while it was copied ({written} bytes)"),
        });
    }
    tmp.as_file().sync_all().map_err(io_err(dest))?;
    tmp.persist(dest).map_err(io_err(dest))?;
    Ok(copied)
}

/// How much of a file's name goes into the name of its temporary file, so that
/// `.hfcs-<name>.XXXXXX.tmp` stays within the 255 bytes a file name may have.
const NAME_IN_TEMP: usize = 200;

/// `dest`'s name as its temporary files carry it: cut to [`NAME_IN_TEMP`] bytes.
fn temp_key(dest: &Path) -> PathBuf {
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let mut cut = name.len().min(NAME_IN_TEMP);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    dest.with_file_name(&name[..cut])
}

/// `.hfcs-<name>.`: the prefix of the temporary files made while writing `dest`, so a run
/// killed half-way through a copy leaves a file that says what it was for, and the next run
/// removes it.
fn temp_prefix(dest: &Path) -> String {
    let key = temp_key(dest);
    let name = key.file_name().unwrap_or_default().to_string_lossy();
    format!("{TEMP_PREFIX}{name}.")
}

/// The temporary files killed runs left in the folders the revision writes into, by the
/// [`temp_key`] of the file each was for: one read of each folder, however many files it holds.
/// A file of the revision that happens to look like one is never among them.
fn leftovers(dir: &Path, files: &[ManifestFile]) -> HashMap<PathBuf, Vec<PathBuf>> {
    let dests: BTreeSet<PathBuf> = files
        .iter()
        .map(|f| layout::file_path(dir, &f.path))
        .collect();
    let folders: BTreeSet<&Path> = dests.iter().filter_map(|d| d.parent()).collect();
    let mut out: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    for folder in folders {
        let Ok(entries) = fs::read_dir(folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let Some((for_name, _)) = name
                .strip_prefix(TEMP_PREFIX)
                .and_then(|n| n.strip_suffix(TEMP_SUFFIX))
                .and_then(|n| n.rsplit_once('.'))
            else {
                continue;
            };
            let path = entry.path();
            if !dests.contains(&path) {
                out.entry(folder.join(for_name)).or_default().push(path);
            }
        }
    }
    out
}

/// Records that DIR's copy of `f` holds the blob of `commit`, as of now.
fn write_metadata(dir: &Path, f: &ManifestFile, commit: &str) -> Result<(), WriteError> {
    let meta = FileMetadata::new(commit, &f.blob, SystemTime::now());
    write_user_file(
        &layout::metadata_path(dir, &f.path),
        meta.render().as_bytes(),
    )
}

/// Copies the commit's tree listing from the cache, when it has one, to where huggingface_hub
/// 2.x looks for it in a local dir: offline, `snapshot_download(local_dir=DIR)` then tells a
/// complete folder from a partial one.
fn copy_listing(rev: &CachedRevision<'_>, dir: &Path) -> Result<(), LocalDirError> {
    let Ok(bytes) = fs::read(tree_path(rev.repo_dir, rev.commit)) else {
        return Ok(());
    };
    let to = layout::listing_path(dir, rev.commit);
    if fs::read(&to).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    check_within(dir, &to, WHAT).map_err(|e| refused(dir, ".cache/huggingface/trees", e))?;
    Ok(write_user_file(&to, &bytes)?)
}

/// What is wrong with one file of a folder [`check`] looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// The path in the repo.
    pub path: String,
    pub kind: ProblemKind,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A path that may not be written under the folder, or is reached through a link leaving it.
    Refused,
    Missing,
    /// A folder or a link where the file should be.
    NotAFile,
    Size,
    /// The bytes do not hash to the blob's name.
    Content,
    Unreadable,
    /// The bytes are right but huggingface_hub would not take the file as current: no metadata,
    /// metadata older than the file, or naming another blob or commit.
    Metadata,
}

/// Verifies that DIR holds every file of the revision with the right bytes, each hashed against
/// its blob name (sha256 for 64-hex names, git blob SHA-1 for 40-hex ones), and with metadata
/// that makes huggingface_hub take it as current for `commit`. One problem at most a file; none
/// when the folder is complete. Blocking; reads every byte. `verify --lock` checks the folders
/// its entries name with it.
pub fn check(dir: &Path, commit: &str, files: &[ManifestFile]) -> Vec<Problem> {
    files
        .iter()
        .filter_map(|f| {
            check_file(dir, commit, f)
                .err()
                .map(|(kind, detail)| Problem {
                    path: f.path.clone(),
                    kind,
                    detail,
                })
        })
        .collect()
}

fn check_file(dir: &Path, commit: &str, f: &ManifestFile) -> Result<(), (ProblemKind, String)> {
    if let Some(why) = unsafe_path(&f.path) {
        return Err((ProblemKind::Refused, why.into()));
    }
    let dest = layout::file_path(dir, &f.path);
    check_within(dir, &dest, WHAT).map_err(|e| (ProblemKind::Refused, e.to_string()))?;
    let meta = match fs::symlink_metadata(&dest) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err((
                ProblemKind::Missing,
                format!("{} is missing", dest.display()),
            ))
        }
        Err(e) => return Err((ProblemKind::Unreadable, format!("{}: {e}", dest.display()))),
    };
    if !meta.is_file() {
        let what = if meta.is_symlink() {
            "a link"
        } else {
            "a folder"
        };
        return Err((
            ProblemKind::NotAFile,
            format!("{} is {what}, not a file", dest.display()),
        ));
    }
    if meta.len() != f.size {
        return Err((
            ProblemKind::Size,
            format!("{} bytes, expected {}", meta.len(), f.size),
        ));
    }
    let hasher = BlobHasher::for_name(&f.blob, f.size).ok_or_else(|| {
        (
            ProblemKind::Content,
            format!("{} is not a blob name", f.blob),
        )
    })?;
    match hash_file(&dest, hasher) {
        Ok((_, read)) if read != f.size => {
            return Err((
                ProblemKind::Unreadable,
                format!("changed while it was read ({read} bytes)"),
            ))
        }
        Ok((digest, _)) if digest != f.blob => {
            return Err((
                ProblemKind::Content,
                format!("hashes to {digest}, not {}", f.blob),
            ))
        }
        Ok(_) => {}
        Err(e) => return Err((ProblemKind::Unreadable, format!("{}: {e}", dest.display()))),
    }
    match current_metadata(dir, f) {
        None => Err((
            ProblemKind::Metadata,
            format!(
                "{} is missing or older than the file: huggingface_hub would not take it as current",
                layout::metadata_path(dir, &f.path).display()
            ),
        )),
        Some(m) if m.commit != commit => Err((
            ProblemKind::Metadata,
            format!("its metadata names commit {}, not {commit}", m.commit),
        )),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests;
