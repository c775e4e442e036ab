//! A cache with every shape `status`, `list` and `diff` must account for: revisions sharing
//! blobs, a detached revision, `refs/pr/N`, a shared-store blob, a snapshot of copies, an orphaned
//! blob, partial downloads (one stale) and, on request, a broken link.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::cache::{commit_hash, git_sha1_hex, pseudo_random, sha256_hex, CacheBuilder};
use super::fixtures::{TwoRevisions, CONFIG, WEIGHTS};

pub const DAY: Duration = Duration::from_secs(86400);

/// `days` days ago.
pub fn days_ago(days: u64) -> SystemTime {
    SystemTime::now() - DAY * days as u32
}

/// Sets a file's (or folder's) access and modification times, following links.
#[track_caller]
pub fn set_times(path: &Path, accessed: SystemTime, modified: SystemTime) {
    let file = fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    file.set_times(
        fs::FileTimes::new()
            .set_accessed(accessed)
            .set_modified(modified),
    )
    .unwrap_or_else(|e| panic!("set times of {}: {e}", path.display()));
}

/// ```text
/// model   org/m    a (v1.0), b (main): TwoRevisions; d: detached, shares the weights
///                  + an orphaned blob, a stale partial download and a fresh one
/// dataset org/d    e (main): data.csv in the shared store, README.md
///                  f (pr/1): data.csv, extra.txt
/// model   other/n  g (main): a snapshot of copies (no symlinks, empty blobs/)
/// ```
pub struct MixedCache {
    pub root: PathBuf,
    pub m: TwoRevisions,
    pub d: String,
    pub config_d: Vec<u8>,
    pub orphan: Vec<u8>,
    pub stale_partial: Vec<u8>,
    pub fresh_partial: Vec<u8>,
    pub e: String,
    pub f: String,
    pub data: Vec<u8>,
    pub readme: Vec<u8>,
    pub extra: Vec<u8>,
    pub g: String,
    pub n_config: Vec<u8>,
    pub n_model: Vec<u8>,
}

impl MixedCache {
    pub fn write(root: &Path) -> MixedCache {
        let c = MixedCache {
            root: root.to_path_buf(),
            m: TwoRevisions::new("org/m"),
            d: commit_hash("org/m d"),
            config_d: b"{\"model\": \"org/m\", \"hidden_size\": 256}\n".to_vec(),
            orphan: b"bytes of a blob no revision uses any more".to_vec(),
            stale_partial: vec![7; 3000],
            fresh_partial: vec![8; 500],
            e: commit_hash("org/d e"),
            f: commit_hash("org/d f"),
            data: pseudo_random("org/d data", 50 * 1024),
            readme: b"# a dataset\n".to_vec(),
            extra: b"one more file\n".to_vec(),
            g: commit_hash("other/n g"),
            n_config: b"{\"model\": \"other/n\"}\n".to_vec(),
            n_model: pseudo_random("other/n model", 20 * 1024),
        };
        c.m.write(root);
        CacheBuilder::new(root)
            .repo("org/m")
            .rev(&c.d)
            .file(CONFIG, &c.config_d)
            .lfs_file(WEIGHTS, &c.m.weights)
            .dataset("org/d")
            .rev(&c.e)
            .lfs_file("data.csv", &c.data)
            .shared_store()
            .file("README.md", &c.readme)
            .ref_("main", &c.e)
            .rev(&c.f)
            .lfs_file("data.csv", &c.data)
            .file("extra.txt", &c.extra)
            .ref_("pr/1", &c.f)
            .repo("other/n")
            .rev(&c.g)
            .no_symlinks()
            .file("config.json", &c.n_config)
            .lfs_file("model.bin", &c.n_model)
            .ref_("main", &c.g);
        // Without symlinks huggingface_hub writes the files straight into the snapshot.
        let n_blobs = root.join("models--other--n/blobs");
        for entry in fs::read_dir(&n_blobs).unwrap() {
            fs::remove_file(entry.unwrap().path()).unwrap();
        }

        let blobs = c.m_dir().join("blobs");
        fs::write(blobs.join(git_sha1_hex(&c.orphan)), &c.orphan).unwrap();
        let stale = blobs.join(format!("{}.0123abcd.incomplete", sha256_hex(b"stale")));
        fs::write(&stale, &c.stale_partial).unwrap();
        set_times(&stale, days_ago(1), days_ago(1));
        let fresh = blobs.join(format!("{}.incomplete", sha256_hex(b"fresh")));
        fs::write(&fresh, &c.fresh_partial).unwrap();
        c
    }

    pub fn m_dir(&self) -> PathBuf {
        self.root.join("models--org--m")
    }

    pub fn d_dir(&self) -> PathBuf {
        self.root.join("datasets--org--d")
    }

    pub fn n_dir(&self) -> PathBuf {
        self.root.join("models--other--n")
    }

    /// Every blob org/m's revisions use, each once.
    pub fn m_size(&self) -> u64 {
        self.m.total_bytes() + self.config_d.len() as u64
    }

    pub fn d_size(&self) -> u64 {
        (self.data.len() + self.readme.len() + self.extra.len()) as u64
    }

    pub fn n_size(&self) -> u64 {
        (self.n_config.len() + self.n_model.len()) as u64
    }

    /// Gives every blob of org/m (including the orphan) these times: its last access and
    /// modification as `list` reports them.
    pub fn age_m(&self, accessed: SystemTime, modified: SystemTime) {
        for entry in fs::read_dir(self.m_dir().join("blobs")).unwrap() {
            let path = entry.unwrap().path();
            if !path.to_string_lossy().ends_with(".incomplete") {
                set_times(&path, accessed, modified);
            }
        }
    }

    /// Same for org/d (the shared-store blob is reached through its link).
    pub fn age_d(&self, accessed: SystemTime, modified: SystemTime) {
        for entry in fs::read_dir(self.d_dir().join("blobs")).unwrap() {
            set_times(&entry.unwrap().path(), accessed, modified);
        }
    }

    /// Same for other/n's copies.
    pub fn age_n(&self, accessed: SystemTime, modified: SystemTime) {
        let snapshot = self.n_dir().join("snapshots").join(&self.g);
        for name in ["config.json", "model.bin"] {
            set_times(&snapshot.join(name), accessed, modified);
        }
    }

    /// Adds `model org/broken` whose revision `h` (ref main) has one good file and one link whose
    /// blob is gone. huggingface_hub calls such a cache corrupted, so cross-checks come first.
    pub fn add_broken_link(&self) -> String {
        let (h, blob) = self.add_repo_to_break();
        fs::remove_file(blob).unwrap();
        h
    }

    /// `model org/broken` intact: its revision `h` and the blob whose removal breaks a link.
    pub fn add_repo_to_break(&self) -> (String, PathBuf) {
        let h = commit_hash("org/broken h");
        CacheBuilder::new(&self.root)
            .repo("org/broken")
            .rev(&h)
            .file("ok.txt", b"fine\n")
            .file("gone.bin", b"deleted by hand\n")
            .ref_("main", &h);
        let blob = self
            .root
            .join("models--org--broken/blobs")
            .join(git_sha1_hex(b"deleted by hand\n"));
        (h, blob)
    }
}
