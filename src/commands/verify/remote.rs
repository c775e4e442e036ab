//! `verify --remote`: every manifest's blobs on the remote with the sizes it states, every ref
//! naming a commit that has a manifest ([`crate::ops::verify::remote`]).

use anyhow::Result;

use super::{describe_problems, App, Outcome, VerifyOptions};
use crate::commands::RepoRef;
use crate::ops::verify::verify_remote;
use crate::text::plural;

pub(super) async fn verify(app: &App, opts: &VerifyOptions) -> Result<Outcome> {
    let wanted = RepoRef::parse_all(&opts.repos)?;
    let (remote, layout) = app.env().open_remote(opts.remote.url())?;
    let workers = opts.workers.unwrap_or(app.settings.transfer.workers);
    let summary = verify_remote(&remote, &layout, &wanted, workers).await?;
    app.printer.result(&summary, || {
        let mut lines = vec![format!(
            "Verified {}, {} and {} on {} in {:.1}s",
            plural(summary.manifests, "manifest", "manifests"),
            plural(summary.refs, "ref", "refs"),
            plural(summary.blobs, "blob", "blobs"),
            summary.remote,
            summary.seconds
        )];
        describe_problems(&summary.problems, &mut lines);
        lines.join("\n")
    });
    Ok(Outcome::from_failures(summary.problems.len()))
}
