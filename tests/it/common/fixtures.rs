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

    /// A GGUF repo at one commit (`main`): four quantizations, a config and a README.
    pub fn quantized(repo_id: &str, commit: &str) -> RepoSpec {
        RepoSpec::new(repo_id)
            .rev(commit, &["main"])
            .file("config.json", b"{\"model_type\": \"llama\"}")
            .file("README.md", b"# model-GGUF\n")
            .lfs("model-Q2_K.gguf", &[2u8; 3000])
            .lfs("model-Q4_K_M.gguf", &[4u8; 5000])
            .lfs("model-Q8_0.gguf", &[8u8; 9000])
            .lfs("fp16/model-F16.gguf", &[16u8; 12000])
    }
}
