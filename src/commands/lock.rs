//! `lock [REPO_ID[@REF]...] [-o FILE]`: pins revisions in a lock file with [`ops::lock::lock`],
//! then says what it pinned (or, with `-o -`, prints the file).

use anyhow::Result;

use super::{short, App, Outcome};
use crate::ops;
use crate::ops::lock::LockSummary;
use crate::text::plural;

pub use crate::ops::lock::LockOptions;

pub async fn run(app: &App, opts: LockOptions) -> Result<Outcome> {
    let summary = ops::lock::lock(&app.env(), opts).await?;
    for s in &summary.skipped {
        app.printer.warn(s);
    }
    match &summary.content {
        Some(text) if !app.printer.json => print!("{text}"),
        _ => app.printer.result(&summary, || human(&summary)),
    }
    Ok(Outcome::Success)
}

fn human(s: &LockSummary) -> String {
    let mut lines: Vec<String> = s
        .locked
        .iter()
        .map(|p| {
            let from = p.ref_name.as_deref().unwrap_or("commit");
            format!("  {}@{} ({from})", p.repo, short(&p.revision))
        })
        .collect();
    let kept = if s.kept > 0 {
        format!(", kept {}", plural(s.kept, "other pin", "other pins"))
    } else {
        String::new()
    };
    lines.push(format!(
        "Locked {} from {} in {}{kept}",
        plural(s.locked.len(), "repo", "repos"),
        s.from,
        s.file.display()
    ));
    lines.join("\n")
}
