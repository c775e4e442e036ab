//! `init`: writes a commented `.hf-cache-sync.yaml` into the current directory.
//!
//! The template is the repository's `.hf-cache-sync.yaml.example`, so the documented example and
//! what `init` writes never drift apart. The file may come to hold a secret key, so it is created
//! readable by its owner only.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::{App, Outcome};
use crate::config::{ConfigError, CONFIG_FILE_NAME};

/// Every known key, commented.
pub const TEMPLATE: &str = include_str!("../../.hf-cache-sync.yaml.example");

#[derive(Debug, Serialize)]
struct InitSummary {
    command: &'static str,
    path: PathBuf,
    overwritten: bool,
}

pub async fn run(app: &App, force: bool) -> Result<Outcome> {
    let cwd = std::env::current_dir().map_err(|e| ConfigError::Usage {
        message: format!("cannot find the current directory: {e}"),
        hint: "run init from a folder that exists".into(),
    })?;
    let path = cwd.join(CONFIG_FILE_NAME);
    let existed = path.symlink_metadata().is_ok();
    if existed && !force {
        return Err(ConfigError::Usage {
            message: format!("{} already exists", path.display()),
            hint: "pass --force to overwrite it".into(),
        }
        .into());
    }
    write_private(&path, TEMPLATE.as_bytes(), force)?;
    let summary = InitSummary {
        command: "init",
        path,
        overwritten: existed,
    };
    app.printer.result(&summary, || {
        format!(
            "{} {} (readable by you only). Fill in storage.*, or set the B2_* / AWS_* variables, \
             then run `hf-cache-sync doctor`.",
            if summary.overwritten {
                "Overwrote"
            } else {
                "Created"
            },
            summary.path.display()
        )
    });
    Ok(Outcome::Success)
}

/// Writes through a temporary file in the same folder (created owner-only) and a rename, so the
/// file never exists with wider permissions or half-written. Without `overwrite`, a file that
/// appeared meanwhile is kept.
fn write_private(path: &Path, bytes: &[u8], overwrite: bool) -> Result<(), ConfigError> {
    let fail = |e: std::io::Error| ConfigError::Usage {
        message: format!("cannot write {}: {e}", path.display()),
        hint: "run init from a folder you may write to".into(),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".hf-cache-sync.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(fail)?;
    set_owner_only(tmp.as_file()).map_err(fail)?;
    tmp.write_all(bytes).map_err(fail)?;
    tmp.as_file().sync_all().map_err(fail)?;
    if overwrite {
        tmp.persist(path).map_err(|e| fail(e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| fail(e.error))?;
    }
    Ok(())
}

#[cfg(unix)]
fn set_owner_only(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_owner_only(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_names_every_section() {
        for section in ["storage:", "cache:", "team:", "transfer:"] {
            assert!(TEMPLATE.contains(section), "{section} missing");
        }
        assert!(TEMPLATE.contains(&format!("bucket: {}\n", crate::config::TEMPLATE_BUCKET)));
        for key in [
            "endpoint:",
            "bucket:",
            "region:",
            "access_key:",
            "secret_key:",
        ] {
            assert!(TEMPLATE.contains(key), "{key} missing");
        }
    }

    #[cfg(unix)]
    #[test]
    fn written_file_is_owner_only_and_not_clobbered() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE_NAME);
        write_private(&path, b"a: 1\n", false).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(write_private(&path, b"b: 2\n", false).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"a: 1\n");
        write_private(&path, b"b: 2\n", true).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"b: 2\n");
        // Nothing else left in the folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
