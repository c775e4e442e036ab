//! Write-through: after a pull that a later source served (the Hub, a farther remote), the
//! revision goes to the sources before it, nearest first, exactly as `push` would write it (the
//! push engine does it: blobs, then the tree listing and manifest, then the ref), so the next
//! machine finds it nearer. Nothing here fails the pull: a key that may not write, a gated repo
//! or a failed upload is reported and the pull stands.

use std::path::Path;

use serde::Serialize;

use super::fleet::Published;
use super::plan::Plan;
use super::push::{self, PushPolicy, PushSummary};
use super::source::Sources;
use crate::cache::scan::scan_repo;
use crate::net::TransferCtx;
use crate::remote::{Access, RemoteError};
use crate::task::blocking;
use crate::text::error_chain;

/// What write-through did to one remote.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub remote: String,
    /// `written`, `skipped` or `failed`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub uploaded: usize,
    pub bytes_uploaded: u64,
    pub manifests: usize,
    pub refs: usize,
    pub trees: usize,
}

impl Written {
    /// One line for people: what was written where, or why not.
    pub fn describe(&self) -> String {
        match (self.status, &self.detail) {
            ("written", _) => format!(
                "wrote through to {}: {} blobs ({}), {} manifest, {} tree listing, {} ref",
                self.remote,
                self.uploaded,
                crate::report::human_bytes(self.bytes_uploaded),
                self.manifests,
                self.trees,
                self.refs
            ),
            (status, Some(d)) => format!("write-through to {} {status}: {d}", self.remote),
            (status, None) => format!("write-through to {} {status}", self.remote),
        }
    }

    pub fn is_written(&self) -> bool {
        self.status == "written"
    }

    /// Counts the blobs written through early, as the Hub served them ([`Published`]), with what
    /// write-through then wrote to the same remotes.
    pub fn add_published(written: &mut [Written], sources: &Sources, published: &Published) {
        for (&i, &(count, bytes)) in published {
            let remote = sources.get(i).describe();
            if let Some(w) = written.iter_mut().find(|w| w.remote == remote) {
                w.uploaded += count;
                w.bytes_uploaded += bytes;
            }
        }
    }
}

/// Pushes the plan's revision (and the ref the pull wrote) from the cache to every remote
/// before the source that served it. A gated repo (as the Hub says, or as push's heuristic
/// guesses when the Hub was not asked) goes only where `team.allow_gated` allows.
pub async fn write_through(
    sources: &Sources,
    plan: &Plan,
    cache_dir: &Path,
    policy: &PushPolicy,
    ctx: impl Fn() -> TransferCtx,
) -> Vec<Written> {
    let nearer: Vec<usize> = (0..plan.tier)
        .filter(|&i| sources.remote(i).is_some())
        .collect();
    if nearer.is_empty() {
        return Vec::new();
    }
    let skipped = |detail: String| {
        nearer
            .iter()
            .map(|&i| outcome(sources, i, "skipped", Some(detail.clone()), None))
            .collect()
    };
    if plan.gated == Some(true) && !policy.allow_gated {
        return skipped(format!(
            "{} is gated on the Hub: not written to a shared remote unless team.allow_gated is true",
            plan.repo_id
        ));
    }
    let (root, folder) = (cache_dir.to_path_buf(), plan.folder.clone());
    let Some((mut repo, _)) = blocking(move || scan_repo(&root, &folder)).await else {
        return skipped(format!("{} is not in the cache", plan.folder));
    };
    repo.revisions.retain(|r| r.commit == plan.commit);
    repo.refs
        .retain(|name, commit| Some(name) == plan.ref_name.as_ref() && *commit == plan.commit);
    let push_policy = PushPolicy {
        // The Hub's answer settles it; push's license heuristic guesses only without one.
        allow_gated: policy.allow_gated || plan.gated == Some(false),
        sync_xet: policy.sync_xet,
    };
    let mut out = Vec::new();
    for i in nearer {
        let (remote, layout) = sources.remote(i).expect("a remote");
        let ctx = ctx();
        let mut summary = PushSummary::default();
        let result = async {
            let planned = push::plan(
                vec![&repo],
                push_policy,
                ctx.progress.as_ref(),
                &mut summary,
            )
            .await?;
            let warn = |m: &str| ctx.progress.log(&format!("warning: write-through: {m}"));
            push::execute(remote, layout, &ctx, planned, false, &mut summary, &warn).await
        }
        .await;
        out.push(match result {
            Err(e) => outcome(sources, i, "failed", Some(why_not_written(&e)), Some(&summary)),
            Ok(()) if summary.skipped_gated > 0 => outcome(
                sources,
                i,
                "skipped",
                Some("likely gated (its license asks users to accept terms); set team.allow_gated: true to write it through".into()),
                Some(&summary),
            ),
            Ok(()) if !summary.failures.is_empty() => {
                let detail = summary.failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                outcome(sources, i, "failed", Some(detail), Some(&summary))
            }
            Ok(()) => outcome(sources, i, "written", None, Some(&summary)),
        });
    }
    out
}

/// Why nothing (or not all) was written, with what to do about a read-only key.
fn why_not_written(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let denied = e.chain().find_map(|c| {
        c.downcast_ref::<RemoteError>().or(match c.downcast_ref() {
            Some(crate::transfer::TransferError::Remote(e)) => Some(e),
            _ => None,
        })
    });
    match denied {
        Some(e @ RemoteError::DirDenied { .. }) if e.denied() == Some(Access::Write) => {
            format!("{text} (the pull itself is done; writing through needs write access to the remote folder)")
        }
        Some(e) if e.denied() == Some(Access::Write) => {
            format!("{text} (a read-only key: the pull itself is done; writing through needs a key with write access)")
        }
        _ => error_chain(e.as_ref()),
    }
}

fn outcome(
    sources: &Sources,
    i: usize,
    status: &'static str,
    detail: Option<String>,
    s: Option<&PushSummary>,
) -> Written {
    let d = PushSummary::default();
    let s = s.unwrap_or(&d);
    Written {
        remote: sources.get(i).describe(),
        status,
        detail,
        uploaded: s.uploaded,
        bytes_uploaded: s.bytes_uploaded,
        manifests: s.manifests + s.manifests_unchanged,
        refs: s.refs + s.refs_unchanged,
        trees: s.trees + s.trees_unchanged,
    }
}
