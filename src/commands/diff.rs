//! `diff`: local revisions against remote manifests, revision by revision: in sync, partial (the
//! snapshot holds some of the revision's files, each as the manifest names it: a pull of some
//! files), local only, remote only, or incomplete (the remote lacks files the snapshot has, the
//! bucket lacks a blob a manifest names, content differs, or a snapshot link is broken). Refs are
//! compared too ([`crate::ops::diff`]). Read-only on both sides; `--exit-code` turns any
//! difference into exit 1 for CI gates.

use std::collections::BTreeSet;

use anyhow::Result;

use super::{short, App, Outcome, RemoteChoice, RepoRef};
use crate::ops::diff::{RefDiff, RefState, State};
use crate::ops::DiffReport;
use crate::report::table;

#[derive(Debug)]
pub struct DiffOptions {
    pub repos: Vec<String>,
    pub remote: RemoteChoice,
    pub exit_code: bool,
}

pub async fn run(app: &App, opts: DiffOptions) -> Result<Outcome> {
    let repos = RepoRef::parse_all(&opts.repos)?;
    let (remote, layout) = app.env().open_remote(opts.remote.url())?;
    let ops_opts = crate::ops::DiffOptions {
        repos,
        workers: app.settings.transfer.workers,
        sync_xet: app.settings.sync_xet,
    };
    let mut report = crate::ops::diff(&remote, &layout, &app.settings.cache_dir, &ops_opts).await?;
    for w in &report.warnings {
        app.printer.warn(w);
    }
    if let Some(e) = report.not_found.take() {
        return Err(e.into());
    }
    app.printer.result(&report, || human(&report));
    Ok(if opts.exit_code && report.differences > 0 {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

fn human(s: &DiffReport) -> String {
    let mut out = Vec::new();
    if s.revisions.is_empty() && s.refs.is_empty() {
        out.push("nothing to compare: no revisions in the cache or on the remote".to_string());
        return out.join("\n");
    }
    if !s.revisions.is_empty() {
        let rows: Vec<Vec<String>> = s
            .revisions
            .iter()
            .map(|d| {
                let refs: BTreeSet<&String> = d.local_refs.iter().chain(&d.remote_refs).collect();
                let state = if d.partial && d.state == State::LocalOnly {
                    "local only, partial".to_string()
                } else {
                    d.state.label().to_string()
                };
                vec![
                    state,
                    d.repo.clone(),
                    short(&d.revision).to_string(),
                    refs.into_iter().cloned().collect::<Vec<_>>().join(", "),
                ]
            })
            .collect();
        let text = table(&["STATE", "REPO", "REVISION", "REFS"], &rows, &[]);
        let mut lines = text.lines();
        out.push(lines.next().unwrap_or_default().to_string());
        for (d, line) in s.revisions.iter().zip(lines) {
            out.push(line.to_string());
            for (what, files) in [
                ("missing locally", &d.missing_locally),
                ("missing on the remote", &d.missing_remotely),
                ("different content", &d.different),
                ("broken links", &d.broken_locally),
            ] {
                if !files.is_empty() {
                    out.push(format!("    {what}: {}", files.join(", ")));
                }
            }
        }
    }
    let changed: Vec<&RefDiff> = s
        .refs
        .iter()
        .filter(|r| r.state != RefState::Same)
        .collect();
    if !changed.is_empty() {
        out.push(String::new());
        for r in changed {
            let side = |c: &Option<String>| {
                c.as_deref()
                    .map_or("-".to_string(), |c| short(c).to_string())
            };
            out.push(format!(
                "ref {} of {}: local {}, remote {}",
                r.name,
                r.repo,
                side(&r.local),
                side(&r.remote)
            ));
        }
    }
    out.push(String::new());
    out.push(format!(
        "{} in sync, {} partial, {} local only, {} remote only, {} incomplete; {}",
        s.in_sync,
        s.partial,
        s.local_only,
        s.remote_only,
        s.incomplete,
        match s.refs_differ {
            0 => "refs agree".to_string(),
            1 => "1 ref differs".to_string(),
            n => format!("{n} refs differ"),
        }
    ));
    out.join("\n")
}
