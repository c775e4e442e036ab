//! The checks of the local cache dir: that it exists (or can be made), takes new files, holds
//! working relative symlinks, and that other users can read what is in it.

use std::path::Path;

use super::Check;
use crate::cache::modes::OwnerOnly;
use crate::env::EnvVars;
use crate::remote::error::shell_word;

pub(super) fn cache_dir_check(dir: &Path) -> Check {
    const NAME: &str = "Cache dir";
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Check::failed(
                NAME,
                format!("{} is not a folder", dir.display()),
                cache_dir_hint(),
            )
        }
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            return fresh_cache_dir(dir)
        }
        Err(e) => {
            return Check::failed(
                NAME,
                format!("cannot read {}: {e}", dir.display()),
                cache_dir_hint(),
            )
        }
    }
    match crate::cache::temp::probe_writable(dir) {
        Ok(()) if !crate::cache::holds_repo_folders(dir) => Check::ok(
            NAME,
            format!("{} (writable; no repos in it yet)", dir.display()),
        ),
        Ok(()) => Check::ok(NAME, format!("{} (writable)", dir.display())),
        Err(e) => Check::failed(
            NAME,
            format!("{} is not writable: {e}", dir.display()),
            "pull needs to write blobs there: fix the folder's owner or permissions",
        ),
    }
}

fn cache_dir_hint() -> String {
    format!(
        "point --cache-dir, cache.hf_cache_dir, {} or {} at a folder you may write to",
        EnvVars::HF_HUB_CACHE,
        EnvVars::HF_HOME
    )
}

/// A cache dir that does not exist yet, as on a machine that never downloaded a model: pull
/// creates it (folders above it included), so that is a note when the nearest folder that does
/// exist takes new entries, and a failure when it does not.
fn fresh_cache_dir(dir: &Path) -> Check {
    const NAME: &str = "Cache dir";
    let existing = dir
        .ancestors()
        .skip(1)
        .find(|a| std::fs::symlink_metadata(a).is_ok())
        .unwrap_or(Path::new("/"));
    let writable = match std::fs::metadata(existing) {
        Ok(meta) if meta.is_dir() => tempfile::Builder::new()
            .prefix(".hfcs-doctor-")
            .tempdir_in(existing)
            .map(drop)
            .map_err(|e| e.to_string()),
        Ok(_) => Err("not a folder".into()),
        Err(e) => Err(e.to_string()),
    };
    match writable {
        Ok(()) => Check::warning(
            NAME,
            format!(
                "{} does not exist yet; the first pull creates it (in {}, which is writable)",
                dir.display(),
                existing.display()
            ),
            "nothing to fix: `hf-cache-sync pull` (or a download with huggingface_hub) creates it",
        ),
        Err(why) => Check::failed(
            NAME,
            format!(
                "{} does not exist and cannot be created: {}: {why}",
                dir.display(),
                existing.display()
            ),
            cache_dir_hint(),
        ),
    }
}

/// How many entries the modes checks look at: enough for any real repo, and a bound on the time
/// `doctor` spends on a cache or a shared folder of many thousand blobs (on NFS, say).
pub(super) const MODES_LIMIT: usize = 20_000;

/// Files in the cache (blobs, refs, snapshot folders) that only their owner may read: on a GPU
/// node bootstrapped as root and read by a container running as another user, or in a team
/// cache, nobody else can load those models. A note, not a failure: a cache of one's own may
/// well be private.
pub(super) fn cache_modes_check(dir: &Path) -> Check {
    const NAME: &str = "Cache file modes";
    match crate::cache::modes::survey_cache(dir, MODES_LIMIT) {
        Ok(found) => modes_check(NAME, dir, &found, "other users"),
        Err(e) => Check::skipped(NAME, &format!("cannot read {}: {e}", dir.display())),
    }
}

/// The report of a modes check of `root`: a warning naming what only its owner may read.
pub(super) fn modes_check(
    name: &'static str,
    root: &Path,
    found: &OwnerOnly,
    others: &str,
) -> Check {
    let checked = if found.truncated {
        format!("the first {} entries", found.checked)
    } else {
        format!("{} entries", found.checked)
    };
    if found.checked == 0 {
        return Check::ok(name, "nothing in it to check yet");
    }
    if found.count == 0 {
        return Check::ok(name, format!("readable by other users ({checked} checked)"));
    }
    let examples = found
        .examples
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Check::warning(
        name,
        format!(
            "{} of {checked} can be read by their owner only, e.g. {examples}",
            found.count
        ),
        format!(
            "{others} cannot read them: `chmod -R a+rX {}` (or g+rX for a shared group) \
             fixes them; files written from now on get the mode of any new file, so run with \
             umask 022 (or 002 for a shared group)",
            shell_word(&root.display().to_string())
        ),
    )
}

/// Relative symlinks are how huggingface_hub links snapshots to blobs; without them it copies
/// every file, doubling disk use.
pub(super) fn symlink_check(dir: &Path) -> Check {
    const NAME: &str = "Symlinks";
    let result = (|| -> std::io::Result<bool> {
        let probe = tempfile::Builder::new()
            .prefix(".hfcs-doctor-")
            .tempdir_in(dir)?;
        std::fs::write(probe.path().join("target"), b"ok")?;
        crate::cache::write::make_symlink(Path::new("target"), &probe.path().join("link"))?;
        Ok(std::fs::read(probe.path().join("link"))? == b"ok")
    })();
    match result {
        Ok(true) => Check::ok(NAME, "relative symlinks work in the cache dir"),
        Ok(false) => Check::failed(
            NAME,
            "a symlink in the cache dir does not read back its target",
            "put the cache on a filesystem with symlink support",
        ),
        Err(e) => Check::failed(
            NAME,
            format!("cannot create a symlink in the cache dir: {e}"),
            "huggingface_hub and pull fall back to copies (more disk); on Windows enable \
             Developer Mode, elsewhere use a filesystem with symlink support",
        ),
    }
}
