//! What a push did (or, in a dry run, would do), as `push` and `watch` report it.

use serde::Serialize;

use super::PlannedRevision;
use crate::failure::Failure;
use crate::report::human_bytes;
use crate::text::plural;

#[derive(Debug, Default, Serialize)]
pub struct PushSummary {
    pub command: &'static str,
    pub remote: String,
    pub dry_run: bool,
    pub repos: usize,
    pub revisions: usize,
    pub uploaded: usize,
    pub skipped_existing: usize,
    pub skipped_gated: usize,
    pub skipped_pointer: usize,
    pub failed: usize,
    pub bytes_uploaded: u64,
    pub manifests: usize,
    pub manifests_unchanged: usize,
    pub refs: usize,
    pub refs_unchanged: usize,
    /// Tree listings (`trees/<org__name>@<commit>.json`) written, and already there.
    pub trees: usize,
    pub trees_unchanged: usize,
    pub seconds: f64,
    pub failures: Vec<Failure>,
    /// Dry run only: what each revision would upload.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned: Option<Vec<PlannedRevision>>,
}

impl PushSummary {
    /// What the push did, for people: a line of counts, then what was skipped and what failed.
    pub fn text(&self) -> String {
        let s = self;
        let verb = if s.dry_run {
            "Would upload"
        } else {
            "Uploaded"
        };
        // A dry run took no time worth saying and skipped nothing yet.
        let (skipped, took) = if s.dry_run {
            ("would skip", String::new())
        } else {
            ("skipped", format!(" in {:.1}s", s.seconds))
        };
        let mut lines = vec![format!(
            "{verb} {} ({}), {skipped} {} already on the remote; {} and {} {} ({} and {} unchanged); {}, {}{took}",
            plural(s.uploaded, "blob", "blobs"),
            human_bytes(s.bytes_uploaded),
            s.skipped_existing,
            plural(s.manifests, "manifest", "manifests"),
            plural(s.refs, "ref", "refs"),
            if s.dry_run { "to write" } else { "written" },
            s.manifests_unchanged,
            s.refs_unchanged,
            plural(s.repos, "repo", "repos"),
            plural(s.revisions, "revision", "revisions"),
        )];
        if s.trees + s.trees_unchanged > 0 {
            lines.push(format!(
                "{} {} ({} unchanged)",
                plural(s.trees, "tree listing", "tree listings"),
                if s.dry_run { "to write" } else { "written" },
                s.trees_unchanged
            ));
        }
        if s.skipped_gated > 0 {
            lines.push(format!(
                "Skipped {}",
                plural(s.skipped_gated, "likely-gated repo", "likely-gated repos")
            ));
        }
        if s.skipped_pointer > 0 {
            lines.push(format!(
                "Skipped {} (set cache.sync_xet: true to push them)",
                plural(
                    s.skipped_pointer,
                    "LFS/Xet pointer file",
                    "LFS/Xet pointer files"
                )
            ));
        }
        if !s.failures.is_empty() {
            lines.push(format!("{} failed:", s.failures.len()));
            for f in &s.failures {
                lines.push(format!("  {f}"));
            }
        }
        lines.join("\n")
    }
}
