//! A tmpfs mounted at a folder for one test (a disk that fills up, a folder nobody may write
//! to), when the tests run as root; unmounted when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts `size` (e.g. `8m`) at `dir`. Without root, or where mounting is not allowed (an
    /// unprivileged container), prints why and returns `None`: the one case these tests skip.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        Tmpfs::mount_with(
            dir,
            &format!("size={size},mode=0755"),
            &format!("a {size} tmpfs"),
        )
    }

    /// Mounts an empty read-only tmpfs at `dir`: a folder even root may not write to. `None` as
    /// for [`Tmpfs::mount`].
    pub fn read_only(dir: &Path) -> Option<Tmpfs> {
        Tmpfs::mount_with(dir, "ro,size=1m,mode=0755", "a read-only tmpfs")
    }

    fn mount_with(dir: &Path, options: &str, what: &str) -> Option<Tmpfs> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipped: this test needs root to mount {what}; run as root to test it");
            return None;
        }
        std::fs::create_dir_all(dir).expect("create mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs {
                dir: dir.to_path_buf(),
            }),
            Ok(o) => {
                eprintln!(
                    "skipped: mount -t tmpfs at {} failed ({}): {}",
                    dir.display(),
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("skipped: cannot run mount: {e}");
                None
            }
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Still busy (a child not yet gone): detach it now, it goes once unused.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}
