//! A directory remote (NFS, Lustre, a local disk): the bucket layout as files. Writes go through a
//! temporary file and a rename, so readers never see half an object.

use crate::remote::Access;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{BlobError, BlobSource, ObjectInfo, RemoteError};
use crate::cache::hash::READ_CHUNK;
use crate::cache::modes::{self, OwnerOnly};
use crate::cache::temp;
use crate::cache::write::{
    copy_verified, fill_from_file, io_err, sync_dir, write_atomic, BlobSink, Verifier, WriteError,
    TEMP_PREFIX,
};
use crate::net::TransferCtx;
use crate::task::blocking;

#[derive(Clone)]
pub struct DirRemote {
    root: PathBuf,
    /// A destination a dry-run push would create: while it does not exist it reads as empty.
    planned: bool,
    /// The team prefix keys go under, for [`DirRemote::describe`] only.
    prefix: String,
}

impl DirRemote {
    pub fn new(root: PathBuf) -> DirRemote {
        DirRemote {
            root,
            planned: false,
            prefix: String::new(),
        }
    }

    /// Names `prefix` (the team prefix keys go under) when the remote is described.
    pub fn with_prefix(mut self, prefix: &str) -> DirRemote {
        self.prefix = prefix.trim_matches('/').to_string();
        self
    }

    /// `/shared/dir`, or `/shared/dir (prefix team)`.
    /// The folder the keys go under (the root, then the prefix): what JSON documents name the
    /// remote by.
    pub fn url(&self) -> String {
        self.root
            .join(self.prefix.trim_end_matches('/'))
            .display()
            .to_string()
    }

    pub fn describe(&self) -> String {
        if self.prefix.is_empty() {
            self.root.display().to_string()
        } else {
            format!("{} (prefix {})", self.root.display(), self.prefix)
        }
    }

    /// For a dry run of a push that would create the folder: read it as an empty remote.
    pub fn plan_creation(&mut self) {
        self.planned = true;
    }

    /// True while a planned destination does not exist: nothing to read from it.
    fn planned_and_absent(&self) -> bool {
        self.planned && !self.root.exists()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn error(&self, err: io::Error, action: Access, key: &str) -> RemoteError {
        self.error_at(err, action, &self.path(key), key)
    }

    /// `err` from `action` on `path` (the file or folder of `key`), in words about paths: a
    /// folder is not a bucket and its file system has no keys or capabilities.
    fn error_at(&self, err: io::Error, action: Access, path: &Path, key: &str) -> RemoteError {
        match err.kind() {
            io::ErrorKind::NotFound if !self.root.is_dir() => self.missing_root(),
            io::ErrorKind::NotFound => RemoteError::NotFound {
                key: key.to_string(),
            },
            kind @ (io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem) => {
                RemoteError::DirDenied {
                    root: self.root.clone(),
                    path: path.to_path_buf(),
                    action,
                    creating_dir: false,
                    kind,
                }
            }
            _ => RemoteError::Other {
                detail: format!("{}: {err}", path.display()),
                code: String::new(),
            },
        }
    }

    /// `err` from creating the folder `dir` (and the ones above it).
    fn mkdir_error(&self, err: io::Error, dir: &Path) -> RemoteError {
        match self.error_at(err, Access::Write, dir, "") {
            RemoteError::DirDenied {
                root,
                path,
                action,
                kind,
                ..
            } => RemoteError::DirDenied {
                root,
                path,
                action,
                creating_dir: true,
                kind,
            },
            RemoteError::Other { detail, code } => RemoteError::Other {
                detail: format!("cannot create directory {detail}"),
                code,
            },
            other => other,
        }
    }

    fn missing_root(&self) -> RemoteError {
        RemoteError::NoSuchDir {
            path: self.root.display().to_string(),
        }
    }

    /// Creates the remote's folder for a first push, as `cp -r` and rsync create their
    /// destination: the last component only. A missing parent stays an error, so a shared
    /// mount that is not mounted is not quietly replaced by a folder on the local disk.
    pub fn create_root(&self) -> Result<(), RemoteError> {
        match fs::create_dir(&self.root) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && self.root.is_dir() => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(self.missing_root()),
            Err(e) => Err(self.mkdir_error(e, &self.root)),
        }
    }

    /// Files and folders of the remote that only their owner may read, looking at no more than
    /// `limit`: no other user can pull them. Blocking.
    pub fn owner_only(&self, limit: usize) -> io::Result<OwnerOnly> {
        let temporary = |rel: &Path| {
            rel.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(modes::is_temporary)
        };
        modes::survey(&self.root, limit, &|_| true, &temporary)
    }

    pub fn check_root(&self) -> Result<(), RemoteError> {
        if self.root.is_dir() {
            Ok(())
        } else {
            Err(self.missing_root())
        }
    }

    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, RemoteError> {
        if self.planned_and_absent() {
            return Ok(Vec::new());
        }
        self.check_root()?;
        // Keys are `/`-separated; list the folder that holds the prefix and filter.
        let (dir_part, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let start = self.root.join(dir_part);
        let root = self.root.clone();
        let mut out = blocking(move || {
            let mut out = Vec::new();
            walk(&root, &start, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| self.error(e, Access::List, prefix))?;
        out.retain(|o| o.key.starts_with(prefix));
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    pub async fn get(&self, key: &str, max: usize) -> Result<Option<Vec<u8>>, RemoteError> {
        if self.planned_and_absent() {
            return Ok(None);
        }
        self.check_root()?;
        let path = self.path(key);
        // `None`: larger than `max`, refused by its size before a byte is buffered (the capped
        // read also catches a file that grows meanwhile).
        let result = blocking(move || -> io::Result<Option<Vec<u8>>> {
            let file = fs::File::open(&path)?;
            if file.metadata()?.len() > max as u64 {
                return Ok(None);
            }
            let mut data = Vec::new();
            file.take(max as u64 + 1).read_to_end(&mut data)?;
            Ok((data.len() <= max).then_some(data))
        })
        .await;
        match result {
            Ok(Some(data)) => Ok(Some(data)),
            Ok(None) => Err(RemoteError::Other {
                detail: super::too_large(key, max),
                code: String::new(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e, Access::Read, key)),
        }
    }

    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), RemoteError> {
        self.writing(key, move |this, path, key| {
            write_atomic(path, &body).map_err(|e| match e {
                WriteError::Io { source, path: at } => {
                    this.error_at(source, Access::Write, &at, key)
                }
                other => RemoteError::Other {
                    detail: other.to_string(),
                    code: String::new(),
                },
            })
        })
        .await
    }

    /// Writes `key` unless it exists: `Ok(false)` when it does. The file is written under a
    /// temporary name and linked to `key`, which fails when `key` exists, whoever races.
    pub async fn put_new(&self, key: &str, body: Bytes) -> Result<bool, RemoteError> {
        self.writing(key, move |this, path, key| {
            let write_error = |e: io::Error| this.error(e, Access::Write, key);
            let dir = path.parent().expect("key has a folder");
            let mut tmp = temp::create_in(dir, TEMP_PREFIX).map_err(write_error)?;
            tmp.as_file_mut().write_all(&body).map_err(write_error)?;
            tmp.as_file().sync_all().map_err(write_error)?;
            match fs::hard_link(tmp.path(), path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(write_error(e)),
            }
        })
        .await
    }

    /// Runs `write` on a blocking thread with the file of `key` (its folder made).
    async fn writing<T: Send + 'static>(
        &self,
        key: &str,
        write: impl FnOnce(&DirRemote, &Path, &str) -> Result<T, RemoteError> + Send + 'static,
    ) -> Result<T, RemoteError> {
        self.check_root()?;
        let path = self.path(key);
        let (this, key) = (self.clone(), key.to_string());
        blocking(move || {
            let dir = path.parent().expect("key has a folder");
            fs::create_dir_all(dir).map_err(|e| this.mkdir_error(e, dir))?;
            write(&this, &path, &key)
        })
        .await
    }

    /// The size of the object at `key`, or `None` when there is none.
    pub async fn object_size(&self, key: &str) -> Result<Option<u64>, RemoteError> {
        self.check_root()?;
        let path = self.path(key);
        match blocking(move || fs::metadata(path)).await {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.error(e, Access::Read, key)),
        }
    }

    pub async fn delete(&self, key: &str) -> Result<(), RemoteError> {
        self.check_root()?;
        let path = self.path(key);
        match blocking(move || fs::remove_file(path)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.error(e, Access::Delete, key)),
        }
    }

    /// Copies while hashing; the object appears under its key only if the content matched.
    /// Each chunk (1 MiB) waits for the run's bandwidth cap once it is copied.
    pub async fn upload_blob(
        &self,
        src: &BlobSource,
        key: &str,
        ctx: &TransferCtx,
    ) -> Result<(), BlobError> {
        self.check_root()?;
        let _slot = ctx.slot().await;
        let dest = self.path(key);
        let dir = dest.parent().expect("key has a folder").to_path_buf();
        let (this, src, key, ctx) = (self.clone(), src.clone(), key.to_string(), ctx.clone());
        blocking(move || -> Result<(), BlobError> {
            let key = key.as_str();
            let this = &this;
            fs::create_dir_all(&dir).map_err(|e| this.mkdir_error(e, &dir))?;
            let mut tmp = temp::create_in(&dir, TEMP_PREFIX)
                .map_err(|e| this.error_at(e, Access::Write, &dir, key))?;
            let mut input = fs::File::open(&src.path).map_err(io_err(&src.path))?;
            let mut verifier = Verifier::new(&src.etag, src.size)?;
            let in_kernel =
                copy_verified(&input, tmp.as_file(), tmp.path(), &mut verifier, |_, n| {
                    ctx.progress.add_bytes(n);
                    ctx.rate.pace_blocking(n);
                })?;
            if !in_kernel {
                let read_error = |e| BlobError::from(io_err(&src.path)(e));
                read_chunks(&mut input, read_error, |chunk| {
                    verifier.update(chunk)?;
                    tmp.as_file_mut()
                        .write_all(chunk)
                        .map_err(io_err(tmp.path()))?;
                    ctx.progress.add_bytes(chunk.len() as u64);
                    ctx.rate.pace_blocking(chunk.len() as u64);
                    Ok(())
                })?;
            }
            verifier.check()?;
            tmp.as_file().sync_all().map_err(io_err(&dest))?;
            tmp.persist(&dest).map_err(io_err(&dest))?;
            sync_dir(&dir);
            Ok(())
        })
        .await
    }

    /// Copies into `writer`, each chunk (1 MiB) waiting for the run's bandwidth cap once copied.
    pub async fn download_blob<W: BlobSink>(
        &self,
        key: &str,
        writer: W,
        _size: u64,
        ctx: &TransferCtx,
    ) -> Result<W::Done, BlobError> {
        self.check_root()?;
        let _slot = ctx.slot().await;
        let path = self.path(key);
        let (this, key, ctx) = (self.clone(), key.to_string(), ctx.clone());
        blocking(move || -> Result<W::Done, BlobError> {
            let (this, key) = (&this, key.as_str());
            let read_error = |e| BlobError::from(this.error(e, Access::Read, key));
            let input = fs::File::open(&path).map_err(read_error)?;
            fill_from_file(&input, writer, read_error, |n| {
                ctx.progress.add_bytes(n);
                ctx.rate.pace_blocking(n);
            })
        })
        .await
    }
}

/// Reads `input` to its end a chunk at a time into `sink`: the copy through user memory, where
/// the kernel cannot copy between the two files.
fn read_chunks(
    input: &mut fs::File,
    read_error: impl Fn(io::Error) -> BlobError,
    mut sink: impl FnMut(&[u8]) -> Result<(), BlobError>,
) -> Result<(), BlobError> {
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = input.read(&mut buf).map_err(&read_error)?;
        if n == 0 {
            return Ok(());
        }
        sink(&buf[..n])?;
    }
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<ObjectInfo>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        // Temporary files of writers in progress are not objects.
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let ft = entry.file_type()?;
        if ft.is_dir() {
            walk(root, &entry.path(), out)?;
        } else if ft.is_file() {
            let path = entry.path();
            let Some(key) = crate::cache::scan::relative_slash_path(root, &path) else {
                continue;
            };
            let meta = entry.metadata()?;
            out.push(ObjectInfo {
                key,
                size: meta.len(),
                etag: None,
                last_modified: meta.modified().ok(),
            });
        }
    }
    Ok(())
}
