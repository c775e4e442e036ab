//! Ready-made repos used by several test files.

use std::path::Path;

use super::cache::{commit_hash, git_sha1_hex, pseudo_random, sha256_hex, CacheBuilder, CacheView};
use super::python::Download;
use super::spec::RepoSpec;

/// A model with two revisions that share two of their three files:
///
/// ```text
/// rev a (ref v1.0): config.json (a), model.safetensors (LFS), tokenizer/tokenizer.json
/// rev b (ref main): config.json (b), model.safetensors (LFS), tokenizer/tokenizer.json
/// ```
pub struct TwoRevisions {
    pub repo_id: String,
    pub a: String,
    pub b: String,
    pub config_a: Vec<u8>,
    pub config_b: Vec<u8>,
    pub weights: Vec<u8>,
    pub tokenizer: Vec<u8>,
}

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer/tokenizer.json";

impl TwoRevisions {
    pub fn new(repo_id: &str) -> TwoRevisions {
        TwoRevisions {
            repo_id: repo_id.to_string(),
            a: commit_hash(&format!("{repo_id} a")),
            b: commit_hash(&format!("{repo_id} b")),
            config_a: format!("{{\"model\": \"{repo_id}\", \"hidden_size\": 64}}\n").into_bytes(),
            config_b: format!("{{\"model\": \"{repo_id}\", \"hidden_size\": 128}}\n").into_bytes(),
            weights: pseudo_random(&format!("{repo_id} weights"), 200 * 1024),
            tokenizer: format!("{{\"tokenizer\": \"{repo_id}\"}}\n").into_bytes(),
        }
    }

    /// Writes the repo into `cache`, with symlinked snapshots as huggingface_hub makes them.
    pub fn write(&self, cache: &Path) {
        CacheBuilder::new(cache)
            .repo(&self.repo_id)
            .rev(&self.a)
            .file(CONFIG, &self.config_a)
            .lfs_file(WEIGHTS, &self.weights)
            .file(TOKENIZER, &self.tokenizer)
            .rev(&self.b)
            .file(CONFIG, &self.config_b)
            .lfs_file(WEIGHTS, &self.weights)
            .file(TOKENIZER, &self.tokenizer)
            .ref_("main", &self.b)
            .ref_("v1.0", &self.a);
    }

    /// `(path, etag, bytes)` of each file of revision `commit`.
    pub fn files(&self, commit: &str) -> Vec<(&'static str, String, &[u8])> {
        let config = if commit == self.a {
            &self.config_a
        } else {
            &self.config_b
        };
        vec![
            (CONFIG, git_sha1_hex(config), config.as_slice()),
            (WEIGHTS, sha256_hex(&self.weights), self.weights.as_slice()),
            (
                TOKENIZER,
                git_sha1_hex(&self.tokenizer),
                self.tokenizer.as_slice(),
            ),
        ]
    }

    /// The four distinct blob names, sorted.
    pub fn etags(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .files(&self.a)
            .into_iter()
            .chain(self.files(&self.b))
            .map(|(_, etag, _)| etag)
            .collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn weights_etag(&self) -> String {
        sha256_hex(&self.weights)
    }

    pub fn total_bytes(&self) -> u64 {
        (self.config_a.len() + self.config_b.len() + self.weights.len() + self.tokenizer.len())
            as u64
    }

    /// Checks `cache` holds revision `commit` as huggingface_hub would have written it.
    #[track_caller]
    pub fn assert_pulled(&self, cache: &Path, commit: &str) {
        let view = CacheView::model(cache, &self.repo_id);
        for (path, etag, bytes) in self.files(commit) {
            view.assert_linked_file(commit, path, &etag, bytes);
        }
        view.assert_blobs_clean();
    }

    /// huggingface_hub loads every file of `commit` through `revision` (a ref name or the commit).
    pub fn downloads<'a>(&'a self, revision: &'a str, commit: &str) -> Vec<Download<'a>> {
        self.files(commit)
            .into_iter()
            .map(|(path, _, bytes)| Download::model(&self.repo_id, revision, path, bytes))
            .collect()
    }
}

impl RepoSpec {
    /// A model with two revisions that share two of their three files:
    ///
    /// ```text
    /// rev a (ref v1.0): config.json (a), model.safetensors (LFS), tokenizer/tokenizer.json
    /// rev b (ref main): config.json (b), model.safetensors (LFS), tokenizer/tokenizer.json
    /// ```
    pub fn two_revisions(repo_id: &str) -> RepoSpec {
        let config_a = format!("{{\"model\": \"{repo_id}\", \"hidden_size\": 64}}\n");
        let config_b = format!("{{\"model\": \"{repo_id}\", \"hidden_size\": 128}}\n");
        let weights = pseudo_random(&format!("{repo_id} weights"), 200 * 1024);
        let tokenizer = format!("{{\"tokenizer\": \"{repo_id}\"}}\n");
        RepoSpec::new(repo_id)
            .rev(&commit_hash(&format!("{repo_id} a")), &["v1.0"])
            .file(CONFIG, config_a.as_bytes())
            .lfs(WEIGHTS, &weights)
            .file(TOKENIZER, tokenizer.as_bytes())
            .rev(&commit_hash(&format!("{repo_id} b")), &["main"])
            .file(CONFIG, config_b.as_bytes())
            .lfs(WEIGHTS, &weights)
            .file(TOKENIZER, tokenizer.as_bytes())
    }
}
