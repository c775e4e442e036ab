//! `status`: a summary of the local cache (what is cached, what it costs on disk against the
//! budget, what could be reclaimed) and of the configured remote; with `--remote`, what the remote
//! holds, counted from LISTs alone ([`crate::ops::status`]).

use std::time::Duration;

use anyhow::Result;

use super::{App, Outcome, RemoteChoice};
use crate::cache::RepoType;
use crate::ops::status::RemoteStatus;
use crate::ops::{StatusOptions, StatusReport};
use crate::remote::RemoteSpec;
use crate::report::{budget, human_bytes};
use crate::text::plural;

pub async fn run(app: &App, remote: RemoteChoice) -> Result<Outcome> {
    let with_remote = remote.asked();
    let spec = match RemoteSpec::resolve(&app.settings, remote.url()) {
        Ok(spec) => Some(spec),
        Err(e) if with_remote => return Err(e.into()),
        Err(_) => None,
    };
    let opened = if with_remote {
        Some(app.env().open_remote(remote.url())?)
    } else {
        None
    };
    let opts = StatusOptions {
        cache_dir: &app.settings.cache_dir,
        max_local_gb: app.settings.max_local_gb,
        partial_max_age: app.settings.partial_max_age,
        remote: spec.as_ref(),
        contents: opened.as_ref().map(|(r, l)| (r, l)),
    };
    let report = crate::ops::status(&opts).await?;
    for w in &report.warnings {
        app.printer.warn(w);
    }
    app.printer.result(&report, || human(&report));
    Ok(Outcome::Success)
}

/// Where the remote is and, with `--remote`, what it holds.
/// Partial downloads named one per line; `--json` lists them all.
const MAX_PARTIALS_LISTED: usize = 10;

fn remote_lines(r: &RemoteStatus) -> Vec<(&'static str, String)> {
    let mut lines = Vec::new();
    let place = match r.kind {
        "s3" => format!(
            "s3://{} at {}{}",
            r.bucket.as_deref().unwrap_or_default(),
            r.endpoint.as_deref().unwrap_or("the AWS default endpoint"),
            r.region
                .as_deref()
                .map(|g| format!(" (region {g})"))
                .unwrap_or_default()
        ),
        _ => r
            .path
            .as_deref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    };
    let prefix = if r.prefix.is_empty() {
        "no prefix".to_string()
    } else {
        format!("prefix {}", r.prefix)
    };
    lines.push(("remote", format!("{place}, {prefix}")));
    if let Some(c) = &r.contents {
        lines.push((
            "",
            format!(
                "holds {}, {}, {}, {}, {}",
                plural(c.repos, "repo", "repos"),
                plural(c.revisions, "revision", "revisions"),
                plural(c.refs, "ref", "refs"),
                plural(c.blobs, "blob", "blobs"),
                human_bytes(c.bytes)
            ),
        ));
    }
    lines
}

fn human(s: &StatusReport) -> String {
    let mut lines: Vec<(&str, String)> = Vec::new();
    let cache = if s.exists {
        s.cache_dir.display().to_string()
    } else {
        format!(
            "{} (does not exist: nothing is cached yet)",
            s.cache_dir.display()
        )
    };
    lines.push(("cache dir", cache));
    let types: Vec<String> = RepoType::ALL
        .iter()
        .filter_map(|t| {
            let n = *s.repos_by_type.get(t.as_str())?;
            Some(plural(n, t.as_str(), t.folder_prefix()))
        })
        .collect();
    lines.push((
        "repos",
        if types.is_empty() {
            "0".into()
        } else {
            format!("{} ({})", s.repos, types.join(", "))
        },
    ));
    let mut revisions = format!("{} ({} detached", s.revisions, s.detached_revisions);
    if s.partial_revisions > 0 {
        revisions.push_str(&format!(", {} partial", s.partial_revisions));
    }
    lines.push(("revisions", format!("{revisions})")));
    let mut blobs = format!("{}", s.blobs);
    if s.shared_blobs > 0 {
        blobs.push_str(&format!(" ({} in the shared store)", s.shared_blobs));
    }
    if s.copied_files > 0 {
        blobs.push_str(&format!(
            ", plus {} stored as snapshot copies",
            plural(s.copied_files, "file", "files")
        ));
    }
    lines.push(("blobs", blobs));
    let b = &s.budget;
    let mut disk = format!(
        "{} of a {} budget (cache.max_local_gb), {}% used",
        human_bytes(s.bytes_on_disk),
        budget(b.max_local_gb),
        b.used_percent
    );
    if b.over_budget {
        disk.push_str(&format!(
            "; over by {}: run prune",
            human_bytes(s.bytes_on_disk - b.bytes)
        ));
    }
    lines.push(("on disk", disk));
    let orphans = s
        .orphans
        .describe(("blob", "blobs"), "(no revision uses them)");
    lines.push(("orphans", orphans));
    if s.shared_store_unreferenced.blobs > 0 {
        let unlinked = s
            .shared_store_unreferenced
            .describe(("payload", "payloads"), "no repo links to");
        lines.push(("shared store", unlinked));
    }
    let p = &s.partials;
    lines.push((
        "partials",
        format!(
            "{}, {} ({} stale: untouched for over {})",
            plural(p.count, "partial download", "partial downloads"),
            human_bytes(p.bytes),
            p.stale,
            humantime::format_duration(Duration::from_secs(p.stale_after_seconds))
        ),
    ));
    for f in p.files.iter().take(MAX_PARTIALS_LISTED) {
        let age = f.age_seconds.map_or("age unknown".into(), |s| {
            format!("{} old", humantime::format_duration(Duration::from_secs(s)))
        });
        let stale = if f.stale { ", stale" } else { "" };
        lines.push((
            "",
            format!(
                "{} ({}, {age}{stale}): {}",
                f.repo,
                human_bytes(f.bytes),
                f.path.display()
            ),
        ));
    }
    if p.files.len() > MAX_PARTIALS_LISTED {
        lines.push((
            "",
            format!(
                "… and {} more (--json lists them all)",
                p.files.len() - MAX_PARTIALS_LISTED
            ),
        ));
    }
    match &s.remote {
        None => lines.push((
            "remote",
            "not configured (set storage.bucket or storage.endpoint)".into(),
        )),
        Some(r) => lines.extend(remote_lines(r)),
    }
    if !s.warnings.is_empty() {
        lines.push((
            "warnings",
            format!("{} (listed on stderr)", s.warnings.len()),
        ));
    }
    lines
        .iter()
        .map(|(label, value)| format!("{label:<13}{value}"))
        .collect::<Vec<_>>()
        .join("\n")
}
