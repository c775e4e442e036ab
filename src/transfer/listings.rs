//! The tree listings a pull takes from its remotes: the `trees/<org__name>@<commit>.json`
//! sidecar a push left beside a manifest, trusted only when valid and covering the manifest's
//! files, and a warning when it shows the manifest holds only part of the commit.

use futures::StreamExt;

use super::plan::Plan;
use super::source::Sources;
use crate::cache::trees::{TreeListing, MAX_LISTING_BYTES};
use crate::net::TransferCtx;
use crate::remote::RemoteError;
use crate::text::short;

/// Reads the tree listing each plan's remote keeps beside its manifest, for the plans that have
/// none yet: valid and covering the manifest's files, it is written back after the snapshot;
/// malformed or contradicting the manifest, it is a warning and left out.
pub async fn read_listings(
    sources: &Sources,
    ctx: &TransferCtx,
    plans: &mut [Plan],
) -> Vec<String> {
    let wanted: Vec<(usize, String)> = plans
        .iter()
        .enumerate()
        .filter(|(_, p)| p.listing.is_none())
        .filter_map(|(i, p)| {
            let (_, layout) = sources.remote(p.tier)?;
            Some((i, layout.tree_key(&p.repo_id, &p.commit)))
        })
        .collect();
    let plans_ref = &*plans;
    type Got = (usize, String, Result<Option<Vec<u8>>, RemoteError>);
    let got: Vec<Got> = futures::stream::iter(wanted)
        .map(|(i, key)| async move {
            let (remote, _) = sources.remote(plans_ref[i].tier).expect("a remote");
            let got = remote.get(&key, MAX_LISTING_BYTES).await;
            (i, key, got)
        })
        .buffer_unordered(ctx.workers.max(1))
        .collect()
        .await;
    let mut warnings = Vec::new();
    for (i, key, got) in got {
        let plan = &mut plans[i];
        let checked = match got {
            Ok(None) => continue,
            Err(e) => Err(format!(
                "cannot read {key}: {}",
                crate::text::error_chain(&e)
            )),
            Ok(Some(bytes)) => TreeListing::parse(&bytes)
                .and_then(|l| {
                    l.check_covers(
                        plan.manifest
                            .files
                            .iter()
                            .map(|f| (f.path.as_str(), Some(f.blob.as_str()), f.size)),
                    )
                    .map(|()| l.files.len())
                })
                .map(|listed| (bytes, listed))
                .map_err(|e| format!("{key} is not trusted ({e})")),
        };
        match checked {
            Ok((bytes, listed)) => {
                if listed > plan.files_in_revision {
                    // Pushed from a cache holding part of the revision: what the manifest
                    // lacks is not on this remote.
                    let note = format!(
                        "{} names {} of the {listed} files of {}@{} (pushed from a cache \
                         holding part of it): the others are not pulled from it; \
                         --fallback hf-hub fetches them",
                        layout_key_of_manifest(sources, plan),
                        plan.files_in_revision,
                        plan.repo_id,
                        short(&plan.commit)
                    );
                    ctx.progress.log(&format!("warning: {note}"));
                    warnings.push(note);
                }
                plan.listing = Some(bytes);
            }
            Err(why) => {
                let note = format!(
                    "{why}; {}@{} is pulled without it",
                    plan.repo_id,
                    short(&plan.commit)
                );
                ctx.progress.log(&format!("warning: {note}"));
                warnings.push(note);
            }
        }
    }
    warnings
}

/// The key of the plan's manifest on the remote it was resolved from.
fn layout_key_of_manifest(sources: &Sources, plan: &Plan) -> String {
    match sources.remote(plan.tier) {
        Some((_, layout)) => layout.manifest_key(&plan.repo_id, &plan.commit),
        None => format!("{}@{}", plan.repo_id, plan.commit),
    }
}
