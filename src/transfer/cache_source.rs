//! A local Hugging Face cache dir as a source (`serve --from-cache`): one node's cache answers
//! the rack before the bucket is asked. Only complete revisions are answered from it: a commit
//! with its tree listing (`<repo>/trees/<commit>.json`, which huggingface_hub writes only for a
//! whole snapshot); a snapshot without one may hold some files only (downloaded with
//! `allow_patterns`), so the next source answers for it. A branch or tag resolves through
//! `<repo>/refs/<name>`. Blobs are read from `<repo>/blobs/<etag>` into the caller's verifying
//! sink, as any source's bytes are: a corrupt or unreadable blob falls to the next source, a
//! missing (pruned) one too.

use std::path::{Path, PathBuf};

use super::plan::{Plan, Target};
use super::pull::{plan_for, PullError};
use super::source::Wanted;
use super::TransferError;
use crate::cache::trees::{tree_path, TreeListing};
use crate::cache::write::{fill_from_file, BlobSink};
use crate::cache::{blob_path, is_commit_hash, ref_path, repo_folder_name, RepoType};
use crate::hub::tree::manifest_from;
use crate::manifest::Layout;
use crate::net::TransferCtx;
use crate::remote::RemoteError;
use crate::task::blocking;

/// How the access log and the metrics name bytes read from the cache dir.
pub const CACHE_SOURCE: &str = "cache";

/// The revision `target` names, as the cache dir `dir` holds it whole; `Missing` when it does
/// not (no such repo, ref or listing), `Refused` when what it holds cannot be trusted.
pub fn resolve(dir: &Path, target: &Target) -> Result<Plan, PullError> {
    let repo_type = target.repo_type.unwrap_or(RepoType::Model);
    let folder = repo_folder_name(repo_type, &target.repo_id);
    let repo_dir = dir.join(&folder);
    let revision = target.revision.as_deref().unwrap_or("main");
    let here = || format!("{} in the cache dir {}", target.repo_id, dir.display());
    let (commit, ref_name) = if is_commit_hash(revision) {
        (revision.to_string(), None)
    } else {
        let path = ref_path(&repo_dir, revision);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(PullError::Missing(format!("{}: no ref {revision}", here())))
            }
            Err(e) => {
                return Err(PullError::Refused(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let commit = text.trim();
        if !is_commit_hash(commit) {
            return Err(PullError::Refused(format!(
                "{} does not hold a commit hash",
                path.display()
            )));
        }
        (commit.to_string(), Some(revision.to_string()))
    };
    let path = tree_path(&repo_dir, &commit);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PullError::Missing(format!(
                "{}: commit {commit} has no tree listing (its snapshot may be partial)",
                here()
            )))
        }
        Err(e) => {
            return Err(PullError::Refused(format!(
                "cannot read {}: {e}",
                path.display()
            )))
        }
    };
    let listing = TreeListing::parse(&bytes)
        .map_err(|e| PullError::Refused(format!("tree listing {}: {e}", path.display())))?;
    let manifest = manifest_from(&target.repo_id, repo_type, &commit, &listing)
        .map_err(|e| PullError::Refused(format!("tree listing {}: {e}", path.display())))?;
    let target = Target {
        repo_type: Some(repo_type),
        ..target.clone()
    };
    let mut plan = plan_for(&Layout::default(), dir, &target, manifest, commit, ref_name)?;
    plan.listing = Some(bytes);
    Ok(plan)
}

/// Where the cache dir `dir` keeps the blob `job` asks for, when a file names its repo.
pub fn blob_file(dir: &Path, job: Wanted<'_>) -> Option<PathBuf> {
    let file = job.named_by?;
    let repo_dir = dir.join(repo_folder_name(file.repo_type, &file.repo_id));
    Some(blob_path(&repo_dir, job.etag))
}

/// Reads the blob of `job` from the cache dir `dir` into `writer`, which verifies it.
pub async fn download<W: BlobSink>(
    dir: &Path,
    job: Wanted<'_>,
    writer: W,
    ctx: &TransferCtx,
) -> Result<W::Done, TransferError> {
    let Some(path) = blob_file(dir, job) else {
        return Err(RemoteError::NotFound {
            key: job.etag.to_string(),
        }
        .into());
    };
    let _slot = ctx.slot().await;
    let ctx = ctx.clone();
    blocking(move || -> Result<W::Done, TransferError> {
        let unreadable = |e: std::io::Error| -> TransferError {
            RemoteError::Other {
                detail: format!("cannot read {}: {e}", path.display()),
                code: String::new(),
            }
            .into()
        };
        let input = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RemoteError::NotFound {
                    key: path.display().to_string(),
                }
                .into())
            }
            Err(e) => return Err(unreadable(e)),
        };
        fill_from_file(&input, writer, unreadable, |n| {
            ctx.progress.add_bytes(n);
            ctx.rate.pace_blocking(n);
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::trees::TreeEntry;
    use std::collections::BTreeMap;

    fn target(revision: &str) -> Target {
        Target {
            repo_id: "org/m".into(),
            repo_type: Some(RepoType::Model),
            revision: Some(revision.into()),
            files: Default::default(),
        }
    }

    #[test]
    fn only_a_listed_commit_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("models--org--m");
        let commit = "c".repeat(40);
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), &commit).unwrap();
        let missing = resolve(dir.path(), &target("main")).unwrap_err();
        assert!(matches!(missing, PullError::Missing(_)), "{missing:?}");
        assert!(missing.to_string().contains("no tree listing"), "{missing}");
        assert!(matches!(
            resolve(dir.path(), &target("v1")),
            Err(PullError::Missing(_))
        ));
        let mut files = BTreeMap::new();
        files.insert(
            "w.bin".to_string(),
            TreeEntry {
                size: 134,
                blob_id: "a".repeat(40),
                lfs_sha256: Some("b".repeat(64)),
                lfs_size: Some(5000),
                xet_hash: None,
            },
        );
        let bytes = TreeListing::new(files).to_json_bytes();
        std::fs::create_dir_all(repo.join("trees")).unwrap();
        std::fs::write(tree_path(&repo, &commit), &bytes).unwrap();
        for rev in ["main", commit.as_str()] {
            let plan = resolve(dir.path(), &target(rev)).unwrap();
            assert_eq!(plan.commit, commit);
            assert_eq!(plan.manifest.files.len(), 1);
            assert_eq!(plan.manifest.files[0].blob, "b".repeat(64));
            assert_eq!(plan.manifest.files[0].size, 5000);
            assert_eq!(plan.listing.as_deref(), Some(bytes.as_slice()));
        }
        std::fs::write(repo.join("refs/main"), "not a commit").unwrap();
        assert!(matches!(
            resolve(dir.path(), &target("main")),
            Err(PullError::Refused(_))
        ));
    }
}
