//! Ready-made repos used by several test files.

use super::cache::{commit_hash, pseudo_random};
use super::spec::RepoSpec;

pub const CONFIG: &str = "config.json";
pub const WEIGHTS: &str = "model.safetensors";
pub const TOKENIZER: &str = "tokenizer/tokenizer.json";

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
