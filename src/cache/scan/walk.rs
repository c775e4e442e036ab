//! The walk of one repo folder (blobs, snapshots, refs) and of the cache dir's own entries:
//! what it finds becomes data, anything odd a [`ScanWarning`], and no link is followed out of
//! the cache dir.

use crate::cache::file_id;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use super::{
    collect_files, normalize_lexically, partial_of, relative_slash_path, same_dir, Blob,
    FileSource, Repo, Revision, ScanWarning, SnapshotFile, TreeFile,
};
use crate::cache::trees::{parse_tree_file_name, TreeListing, TREES_DIR};
use crate::cache::{is_blob_name, RepoType};

/// Scans with warnings kept: one for the cache dir's entries, one per repo folder.
pub(super) struct Scanner {
    /// The root as given and canonicalized: links are checked against the latter.
    pub canonical_root: PathBuf,
    /// The repo folder being scanned, if any: every warning names it.
    pub repo: Option<String>,
    pub warnings: Vec<ScanWarning>,
}

impl Scanner {
    pub fn warn(&mut self, path: &Path, message: String) {
        self.warnings.push(ScanWarning {
            repo: self.repo.clone(),
            path: path.to_path_buf(),
            message,
            advisory: false,
        });
    }

    /// A warning about something huggingface_hub ignores too.
    fn advise(&mut self, path: &Path, message: String) {
        self.warn(path, message);
        if let Some(w) = self.warnings.last_mut() {
            w.advisory = true;
        }
    }

    fn inside_cache(&self, canonical: &Path) -> bool {
        canonical.starts_with(&self.canonical_root)
    }

    /// True (with a warning) when `path` is a link that resolves outside the cache dir: nothing
    /// is read through it, so nothing outside can be uploaded, hashed or counted.
    pub fn escapes(&mut self, path: &Path) -> bool {
        let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return false;
        }
        match fs::canonicalize(path) {
            Ok(target) if !self.inside_cache(&target) => {
                self.warn(
                    path,
                    format!(
                        "link points outside the cache dir (to {}); ignored",
                        target.display()
                    ),
                );
                true
            }
            _ => false,
        }
    }

    pub fn scan_repo(
        &mut self,
        dir: PathBuf,
        folder: String,
        repo_type: RepoType,
        repo_id: String,
    ) -> Repo {
        let mut repo = Repo {
            repo_type,
            repo_id,
            folder,
            partials: Vec::new(),
            dir,
            blobs: BTreeMap::new(),
            revisions: Vec::new(),
            refs: BTreeMap::new(),
            trees: BTreeMap::new(),
        };
        self.scan_blobs(&mut repo);
        self.scan_snapshots(&mut repo);
        self.scan_refs(&mut repo);
        self.scan_trees(&mut repo);
        repo
    }

    /// `trees/<commit>.json`: each listing parsed and checked against its snapshot; one that is
    /// malformed or contradicts the snapshot is kept as a file (it goes with its revision) but
    /// never trusted. Other names (huggingface_hub's temporary files) are not listings.
    fn scan_trees(&mut self, repo: &mut Repo) {
        let dir = repo.dir.join(TREES_DIR);
        if self.escapes(&dir) {
            return;
        }
        let Ok(entries) = fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Some(commit) = parse_tree_file_name(&name) else {
                continue;
            };
            let path = entry.path();
            if self.escapes(&path) || !entry.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            let listing = fs::read(&path)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|b| TreeListing::parse(&b).map_err(|e| e.to_string()))
                .and_then(|l| match repo.revision(commit) {
                    Some(rev) => l
                        .check_covers(
                            rev.files
                                .iter()
                                .map(|f| (f.path.as_str(), f.etag(), f.size)),
                        )
                        .map(|()| l)
                        .map_err(|e| format!("contradicts the snapshot: {e}")),
                    None => Ok(l),
                });
            let listing = match listing {
                Ok(l) => Some(l),
                Err(why) => {
                    self.advise(&path, format!("tree listing not trusted: {why}"));
                    None
                }
            };
            repo.trees
                .insert(commit.to_string(), TreeFile { path, listing });
        }
    }

    fn scan_blobs(&mut self, repo: &mut Repo) {
        let blobs_dir = repo.dir.join("blobs");
        if self.escapes(&blobs_dir) {
            return;
        }
        let Ok(entries) = fs::read_dir(&blobs_dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // Partial downloads, locks and temporary files are not blobs.
            if !is_blob_name(&name) {
                if let Some(partial) = partial_of(&entry.path(), &name) {
                    repo.partials.push(partial);
                }
                continue;
            }
            let path = entry.path();
            let Ok(link_meta) = fs::symlink_metadata(&path) else {
                continue;
            };
            let content_path = if link_meta.file_type().is_symlink() {
                match fs::canonicalize(&path) {
                    Ok(target) if self.inside_cache(&target) => target,
                    Ok(target) => {
                        self.warn(
                            &path,
                            format!(
                                "blob links outside the cache dir (to {}); ignored",
                                target.display()
                            ),
                        );
                        continue;
                    }
                    Err(_) => {
                        self.warn(&path, "broken blob link; ignored".into());
                        continue;
                    }
                }
            } else {
                path.clone()
            };
            let meta = match fs::metadata(&content_path) {
                Ok(m) if m.is_file() => m,
                _ => {
                    self.warn(&path, "blob is not a regular file; ignored".into());
                    continue;
                }
            };
            let shared = content_path.starts_with(self.canonical_root.join("blobs"));
            repo.blobs.insert(
                name,
                Blob {
                    path,
                    content_path,
                    size: meta.len(),
                    shared,
                    file_id: file_id(&meta),
                    links: crate::cache::link_count(&meta),
                    accessed: meta.accessed().ok(),
                    modified: meta.modified().ok(),
                },
            );
        }
    }

    fn scan_snapshots(&mut self, repo: &mut Repo) {
        let snapshots = repo.dir.join("snapshots");
        if self.escapes(&snapshots) {
            return;
        }
        let entries = match fs::read_dir(&snapshots) {
            Ok(e) => e,
            Err(_) => {
                self.warn(&repo.dir, "repo has no snapshots/ folder".into());
                return;
            }
        };
        let mut dirs = Vec::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if self.escapes(&path) {
                continue;
            }
            if path.is_dir() {
                match entry.file_name().into_string() {
                    Ok(commit) => dirs.push((commit, path)),
                    Err(_) => self.warn(&path, "folder name is not UTF-8; ignored".into()),
                }
            } else {
                self.warn(
                    &path,
                    "file directly in snapshots/ (expected a folder per revision)".into(),
                );
            }
        }
        dirs.sort();
        for (commit, dir) in dirs {
            let mut files = Vec::new();
            let mut broken = Vec::new();
            self.walk_snapshot(repo, &dir, &dir, &mut files, &mut broken);
            files.sort_by(|a, b| a.path.cmp(&b.path));
            broken.sort();
            let modified = fs::metadata(&dir).and_then(|m| m.modified()).ok();
            repo.revisions.push(Revision {
                commit,
                dir,
                files,
                broken,
                modified,
            });
        }
    }

    /// Every file of the snapshot under `dir` into `out`; links that lead to no usable file
    /// into `broken`.
    fn walk_snapshot(
        &mut self,
        repo: &Repo,
        root: &Path,
        dir: &Path,
        out: &mut Vec<SnapshotFile>,
        broken: &mut Vec<String>,
    ) {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                self.warn(dir, format!("cannot read: {e}"));
                return;
            }
        };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let Ok(ft) = entry.file_type() else { continue };
            if ft.is_dir() {
                self.walk_snapshot(repo, root, &path, out, broken);
                continue;
            }
            let Some(rel) = relative_slash_path(root, &path) else {
                self.warn(&path, "file name is not UTF-8; ignored".into());
                continue;
            };
            if ft.is_symlink() {
                match self.resolve_link(repo, &path, rel.clone()) {
                    Some(file) => out.push(file),
                    None => broken.push(rel),
                }
            } else if ft.is_file() {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(SnapshotFile {
                    path: rel,
                    size,
                    source: FileSource::Copy(path),
                });
            }
        }
    }

    fn resolve_link(&mut self, repo: &Repo, link: &Path, rel: String) -> Option<SnapshotFile> {
        let target = fs::read_link(link).ok()?;
        let joined = normalize_lexically(&link.parent()?.join(&target));
        let blobs_dir = normalize_lexically(&repo.dir.join("blobs"));
        let name = joined.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let points_at_repo_blob = (joined.parent() == Some(blobs_dir.as_path())
            || same_dir(joined.parent(), &blobs_dir))
            && is_blob_name(name);
        if points_at_repo_blob {
            return match repo.blobs.get(name) {
                Some(blob) => Some(SnapshotFile {
                    path: rel,
                    size: blob.size,
                    source: FileSource::Blob(name.to_string()),
                }),
                None => {
                    self.warn(link, format!("broken link (blob {name} is missing)"));
                    None
                }
            };
        }
        match fs::canonicalize(link) {
            Ok(canonical) if !self.inside_cache(&canonical) => {
                self.warn(
                    link,
                    format!(
                        "link points outside the cache dir (to {}); ignored",
                        canonical.display()
                    ),
                );
                None
            }
            Ok(canonical) if canonical.is_file() => {
                let size = fs::metadata(&canonical).map(|m| m.len()).unwrap_or(0);
                Some(SnapshotFile {
                    path: rel,
                    size,
                    source: FileSource::Copy(canonical),
                })
            }
            Ok(_) => {
                self.warn(link, "link does not point at a file; ignored".into());
                None
            }
            Err(_) => {
                self.warn(link, "broken link".into());
                None
            }
        }
    }

    fn scan_refs(&mut self, repo: &mut Repo) {
        let refs_dir = repo.dir.join("refs");
        if self.escapes(&refs_dir) {
            return;
        }
        let mut files = Vec::new();
        collect_files(&refs_dir, &mut files);
        for path in files {
            let Some(name) = relative_slash_path(&refs_dir, &path) else {
                continue;
            };
            let Ok(body) = fs::read_to_string(&path) else {
                self.warn(&path, "unreadable ref".into());
                continue;
            };
            let commit = body.trim().to_string();
            if repo.revision(&commit).is_none() {
                self.warn(
                    &repo.dir,
                    format!("ref {name} points at {commit}, which has no snapshot"),
                );
            }
            repo.refs.insert(name, commit);
        }
    }
}
