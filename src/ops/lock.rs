//! Locking: pins revisions in a lock file, from the local cache (or, with `--remote`, from the
//! remote's refs): one line a repo, the commit its ref names and the ref in a comment. Naming
//! repos updates their lines in an existing file and keeps the others; naming none pins every
//! repo's `main`.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use super::repos::{require_on_remote, require_repos, RepoRef};
use super::{file_filter, scan_existing, Env};
use crate::cache::scan::{CacheScan, Repo};
use crate::cache::write::write_user_file;
use crate::cache::{is_commit_hash, RepoType};
use crate::commands::RemoteChoice;
use crate::config::ConfigError;
use crate::lockfile::{lock_folder, render, LockFile, Pin};
use crate::manifest::safe_repo_key;
use crate::patterns::FileFilter;
use crate::remote::catalog::{Catalog, ReadMode};

pub struct LockOptions {
    /// `org/name`, `type/org/name`, … each optionally with `@REF` (default `main`) or
    /// `@<commit>`.
    pub repos: Vec<String>,
    /// `-` writes to stdout.
    pub output: PathBuf,
    pub remote: RemoteChoice,
    pub include_files: Vec<String>,
    pub exclude_files: Vec<String>,
    /// `--local-dir`: the folder the one repo named is laid out in.
    pub local_dir: Option<PathBuf>,
}

/// A repo named on the command line, with the revision asked for.
struct Wanted {
    repo: RepoRef,
    revision: String,
}

#[derive(Debug, Serialize)]
pub struct LockedPin {
    pub repo: String,
    pub revision: String,
    #[serde(rename = "ref")]
    pub ref_name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct LockSummary {
    pub command: &'static str,
    pub file: PathBuf,
    /// `the cache at …` or the remote.
    pub from: String,
    /// The pins written or updated by this run.
    pub locked: Vec<LockedPin>,
    /// Pins kept from the file as they were.
    pub kept: usize,
    /// Repos left out, and why.
    pub skipped: Vec<String>,
    /// `-o -`: the lock file's text, written nowhere (stdout, or the JSON document).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Pins what `opts` names (see the module doc) and writes the lock file, unless `-o -`.
pub async fn lock(env: &Env<'_>, opts: LockOptions) -> Result<LockSummary> {
    let files = file_filter(&opts.include_files, &opts.exclude_files)?;
    let wanted = opts
        .repos
        .iter()
        .map(|text| parse_wanted(text))
        .collect::<Result<Vec<_>, _>>()?;
    let base = lock_folder(&opts.output);
    let local_dir = match &opts.local_dir {
        Some(dir) if wanted.len() == 1 => Some(beside_lock(dir, &base)),
        Some(_) => {
            return Err(ConfigError::Usage {
                message: format!("--local-dir takes one repo, and {} are named", wanted.len()),
                hint: "lock one repo with --local-dir: hf-cache-sync lock org/name --local-dir \
                       models/name"
                    .into(),
            }
            .into())
        }
        None => None,
    };
    let to_stdout = opts.output.as_os_str() == "-";
    let mut skipped = Vec::new();
    let (from, mut pins) = if opts.remote == RemoteChoice::NotAsked {
        let scan = scan_existing(&env.settings.cache_dir).await?;
        let from = format!("the cache at {}", scan.root.display());
        (from, from_cache(&scan, &wanted, &mut skipped)?)
    } else {
        let (remote, layout) = env.open_remote(opts.remote.url())?;
        let mut catalog = Catalog::list(&remote, &layout, false)
            .await?
            .reading(env.settings.transfer.workers, ReadMode::Warn);
        let refs: Vec<&Wanted> = wanted.iter().collect();
        catalog
            .read_ref_targets(|safe, name| {
                (refs.is_empty() && name == "main")
                    || refs
                        .iter()
                        .any(|w| safe_repo_key(&w.repo.repo_id) == safe && w.revision == name)
            })
            .await?;
        let named: Vec<RepoRef> = wanted.iter().map(|w| w.repo.clone()).collect();
        require_on_remote(&catalog, &named, &remote.describe())?;
        (
            remote.describe(),
            from_remote(&catalog, &wanted, &mut skipped)?,
        )
    };
    for pin in &mut pins {
        pin.files = files.clone();
        pin.local_dir.clone_from(&local_dir);
    }
    // Naming repos updates their lines in an existing file; the rest stay as they are.
    let mut kept = 0;
    if !wanted.is_empty() && !to_stdout && opts.output.exists() {
        let existing = LockFile::read(&opts.output)?;
        for old in existing.entries {
            let replaced = pins
                .iter_mut()
                .find(|p| p.repo_type == old.repo_type && p.repo_id == old.repo_id);
            match replaced {
                Some(new) => {
                    if files.is_all() {
                        new.files = old.files.clone();
                    }
                    if local_dir.is_none() {
                        new.local_dir = old.local_dir.clone();
                    }
                }
                None => {
                    kept += 1;
                    pins.push(old);
                }
            }
        }
    }
    if pins.is_empty() {
        // What was left out says why there is nothing, as the warnings of a run that locks.
        let why: String = skipped.iter().map(|s| format!("; {s}")).collect();
        return Err(ConfigError::Usage {
            message: format!("nothing to lock: no repo in {from} has a main ref{why}"),
            hint: "name the repos and refs to pin: hf-cache-sync lock org/name@v1.0".into(),
        }
        .into());
    }
    let text = render(&pins, &base);
    if !to_stdout {
        write_lock(&opts.output, &text)?;
    }
    let summary = LockSummary {
        command: "lock",
        file: opts.output.clone(),
        from,
        locked: pins
            .iter()
            .filter(|p| p.line == 0)
            .map(|p| LockedPin {
                repo: format!("{}/{}", p.repo_type, p.repo_id),
                revision: p.commit.clone(),
                ref_name: p.ref_name.clone(),
            })
            .collect(),
        kept,
        skipped,
        content: to_stdout.then_some(text),
    };
    Ok(summary)
}

/// `org/name`, `org/name@v1.0`, `dataset/org/name@<commit>`.
fn parse_wanted(text: &str) -> Result<Wanted, ConfigError> {
    let (repo, revision) = match text.rsplit_once('@') {
        Some((repo, rev)) if !repo.is_empty() && !rev.is_empty() => (repo, rev),
        _ => (text, "main"),
    };
    if !crate::cache::is_safe_ref_name(revision) {
        return Err(ConfigError::Usage {
            message: format!("{text:?}: {revision:?} is not a ref name or commit"),
            hint: "name a revision as org/name@main, org/name@v1.0 or org/name@<commit>".into(),
        });
    }
    Ok(Wanted {
        repo: RepoRef::parse(repo)?,
        revision: revision.to_string(),
    })
}

fn pin(repo_type: RepoType, repo_id: &str, commit: &str, ref_name: Option<&str>) -> Pin {
    Pin {
        line: 0,
        repo_type,
        repo_id: repo_id.to_string(),
        commit: commit.to_string(),
        files: FileFilter::default(),
        ref_name: ref_name.map(str::to_string),
        local_dir: None,
    }
}

/// Pins from the cache: each named repo's revision, or every repo's `main` (a repo with one
/// ref and no `main` pins that ref; one with no ref but a single revision pins it).
fn from_cache(
    scan: &CacheScan,
    wanted: &[Wanted],
    skipped: &mut Vec<String>,
) -> Result<Vec<Pin>, anyhow::Error> {
    let named: Vec<RepoRef> = wanted.iter().map(|w| w.repo.clone()).collect();
    require_repos(scan, &named)?;
    let mut pins = Vec::new();
    if wanted.is_empty() {
        for repo in &scan.repos {
            match default_pin(repo) {
                Some(p) => pins.push(p),
                None => skipped.push(format!(
                    "{} has no main ref and several revisions: name it as {}@REF to lock it",
                    repo.qualified_id(),
                    repo.qualified_id()
                )),
            }
        }
        return Ok(pins);
    }
    for w in wanted {
        for repo in scan
            .repos
            .iter()
            .filter(|r| w.repo.matches(r.repo_type, &r.repo_id))
        {
            pins.push(named_pin(repo, &w.revision)?);
        }
    }
    Ok(pins)
}

fn default_pin(repo: &Repo) -> Option<Pin> {
    let by_ref = repo
        .refs
        .get_key_value("main")
        .or_else(|| (repo.refs.len() == 1).then(|| repo.refs.iter().next())?);
    let (ref_name, commit) = match by_ref {
        Some((name, commit)) => (Some(name.as_str()), commit.as_str()),
        None if repo.revisions.len() == 1 => (None, repo.revisions[0].commit.as_str()),
        None => return None,
    };
    repo.revision(commit)?;
    Some(pin(repo.repo_type, &repo.repo_id, commit, ref_name))
}

fn named_pin(repo: &Repo, revision: &str) -> Result<Pin, ConfigError> {
    if is_commit_hash(revision) && repo.revision(revision).is_some() {
        return Ok(pin(repo.repo_type, &repo.repo_id, revision, None));
    }
    match repo.refs.get(revision) {
        Some(commit) if repo.revision(commit).is_some() => {
            Ok(pin(repo.repo_type, &repo.repo_id, commit, Some(revision)))
        }
        _ => Err(ConfigError::Usage {
            message: format!(
                "{} has no revision {revision} in the cache (refs: {})",
                repo.qualified_id(),
                names_or_none(repo.refs.keys())
            ),
            hint: "pull it first, or lock from the remote with --remote".into(),
        }),
    }
}

fn names_or_none<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// Pins from the remote's refs: each named repo's ref, or every `main`.
fn from_remote(
    catalog: &Catalog,
    wanted: &[Wanted],
    skipped: &mut Vec<String>,
) -> Result<Vec<Pin>, ConfigError> {
    let mut pins = Vec::new();
    for r in catalog.refs() {
        let named = wanted
            .iter()
            .find(|w| safe_repo_key(&w.repo.repo_id) == r.safe && w.revision == r.name);
        if named.is_none() && (!wanted.is_empty() || r.name != "main") {
            continue;
        }
        let Some(m) = catalog.manifest_named_by(r) else {
            skipped.push(format!("{} names no readable manifest; left out", r.key));
            continue;
        };
        let repo_type = m.repo_type().expect("validated");
        if named.is_some_and(|w| !w.repo.matches(repo_type, &m.repo)) {
            continue;
        }
        pins.push(pin(repo_type, &m.repo, &m.revision, Some(&r.name)));
    }
    for w in wanted {
        let found = pins.iter().any(|p| w.repo.matches(p.repo_type, &p.repo_id));
        if found {
            continue;
        }
        let safe = safe_repo_key(&w.repo.repo_id);
        if is_commit_hash(&w.revision) && catalog.has_manifest_key(&safe, &w.revision) {
            let repo_type = w.repo.repo_type.unwrap_or(RepoType::Model);
            pins.push(pin(repo_type, &w.repo.repo_id, &w.revision, None));
            continue;
        }
        return Err(ConfigError::Usage {
            message: format!(
                "{} has no ref {} on the remote",
                w.repo.qualified(),
                w.revision
            ),
            hint: "`hf-cache-sync list --remote` shows what the remote holds".into(),
        });
    }
    Ok(pins)
}

/// Writes the lock file whole (a reader never sees half of it), readable as any new file.
fn write_lock(path: &Path, text: &str) -> Result<(), ConfigError> {
    let path = match path.parent() {
        Some(p) if p.as_os_str().is_empty() => Path::new(".").join(path),
        _ => path.to_path_buf(),
    };
    write_user_file(&path, text.as_bytes()).map_err(|e| ConfigError::Usage {
        message: format!("cannot write lock file: {e}"),
        hint: "pass -o with a path in a folder you may write to".into(),
    })
}

/// `--local-dir` as the lock file writes it: relative to the lock file's folder when it is
/// under it (so the project can move), else absolute.
fn beside_lock(dir: &Path, base: &Path) -> PathBuf {
    let (Ok(dir_abs), Ok(base_abs)) = (std::path::absolute(dir), std::path::absolute(base)) else {
        return dir.to_path_buf();
    };
    match dir_abs.strip_prefix(&base_abs) {
        Ok(inside) => base.join(inside),
        Err(_) => dir_abs,
    }
}
