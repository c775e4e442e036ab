//! Lock files (`hf-cache-sync.lock`): pinned revisions, one line a repo, meant to be committed
//! next to the code that loads them.
//!
//! ```text
//! # comments and blank lines are ignored
//! org/name@<40-hex commit>                          # main
//! dataset/org/data@<40-hex commit> *.parquet !test/ # main
//! org/model-GGUF@<40-hex commit> *Q4_K_M.gguf local-dir=models/gguf
//! ```
//!
//! After the pinned revision: file patterns (as `pull --include-files`; `!PATTERN` leaves files
//! out, as `--exclude-files`) and `local-dir=DIR` (the files also land as plain files under
//! DIR, relative to the lock file). A comment that is exactly a ref name says which ref the
//! commit was locked from; `pull --lock` points that ref at it, so code loading the repo by
//! ref offline gets the pinned revision. Every bad line is reported (file, line, what is
//! wrong) and nothing is pulled from a file that has one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::cache::{is_commit_hash, is_safe_ref_name, RepoType};
use crate::config::ConfigError;
use crate::ops::repos::RepoRef;
use crate::patterns::{self, FileFilter};

const SYNTAX_HINT: &str = "each line is `[type/]org/name@<40-hex commit> [PATTERN]... \
                           [!PATTERN]... [local-dir=DIR]  # ref`; `hf-cache-sync lock` writes \
                           one from the cache";

const LOCAL_DIR: &str = "local-dir=";

/// One pinned revision.
#[derive(Debug, Clone)]
pub struct Pin {
    /// Line number in the file, from 1.
    pub line: usize,
    pub repo_type: RepoType,
    pub repo_id: String,
    pub commit: String,
    /// Which files (every one when no pattern is given).
    pub files: FileFilter,
    /// The ref the commit was locked from (`# main`).
    pub ref_name: Option<String>,
    /// `local-dir=DIR`, resolved against the lock file's folder.
    pub local_dir: Option<PathBuf>,
}

impl Pin {
    /// `type/org/name@<12 hex>`, as reports name an entry.
    pub fn describe(&self) -> String {
        format!(
            "{}/{}@{}",
            self.repo_type,
            self.repo_id,
            crate::text::short(&self.commit)
        )
    }

    /// The entry's line as `lock` writes it.
    pub fn to_line(&self, base: &Path) -> String {
        let mut line = match self.repo_type {
            RepoType::Model => self.repo_id.clone(),
            t => format!("{t}/{}", self.repo_id),
        };
        let _ = write!(line, "@{}", self.commit);
        for p in self.files.include() {
            let _ = write!(line, " {p}");
        }
        for p in self.files.exclude() {
            let _ = write!(line, " !{p}");
        }
        if let Some(dir) = &self.local_dir {
            let shown = dir.strip_prefix(base).unwrap_or(dir);
            let _ = write!(line, " {LOCAL_DIR}{}", shown.display());
        }
        if let Some(r) = &self.ref_name {
            let _ = write!(line, "  # {r}");
        }
        line
    }
}

/// A lock file read and checked.
#[derive(Debug)]
pub struct LockFile {
    pub path: PathBuf,
    pub entries: Vec<Pin>,
}

impl LockFile {
    /// Reads `path`; a missing or unreadable file, or any bad line, is a usage error naming
    /// every bad line.
    pub fn read(path: &Path) -> Result<LockFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Usage {
            message: format!("cannot read lock file {}: {e}", path.display()),
            hint: format!(
                "`hf-cache-sync lock -o {}` writes one from the cache",
                path.display()
            ),
        })?;
        let (entries, errors) = parse(&text, &lock_folder(path));
        if !errors.is_empty() {
            let lines: Vec<String> = errors
                .iter()
                .map(|(n, why)| format!("{}:{n}: {why}", path.display()))
                .collect();
            return Err(ConfigError::Usage {
                message: format!(
                    "lock file {} has {}; nothing was done:\n  {}",
                    path.display(),
                    crate::text::plural(errors.len(), "bad line", "bad lines"),
                    lines.join("\n  ")
                ),
                hint: SYNTAX_HINT.into(),
            });
        }
        Ok(LockFile {
            path: path.to_path_buf(),
            entries,
        })
    }
}

/// The folder a lock file's `local-dir=` paths are relative to: the one it is in.
pub fn lock_folder(lock: &Path) -> PathBuf {
    match lock.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The entries of `text`, and each bad line's number and what is wrong with it.
pub fn parse(text: &str, base: &Path) -> (Vec<Pin>, Vec<(usize, String)>) {
    let mut entries: Vec<Pin> = Vec::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let (body, comment) = match raw.split_once('#') {
            Some((body, comment)) => (body, Some(comment.trim())),
            None => (raw, None),
        };
        if body.trim().is_empty() {
            continue;
        }
        match parse_line(number, body, comment, base) {
            Ok(entry) => {
                let twice = entries.iter().find(|e| {
                    e.repo_type == entry.repo_type
                        && e.repo_id == entry.repo_id
                        && e.commit == entry.commit
                });
                match twice {
                    Some(first) => errors.push((
                        number,
                        format!(
                            "{} is already pinned on line {}; put its patterns on one line",
                            entry.describe(),
                            first.line
                        ),
                    )),
                    None => entries.push(entry),
                }
            }
            Err(why) => errors.push((number, why)),
        }
    }
    (entries, errors)
}

fn parse_line(
    number: usize,
    body: &str,
    comment: Option<&str>,
    base: &Path,
) -> Result<Pin, String> {
    let mut words = body.split_whitespace();
    let pinned = words.next().expect("a non-blank line has a word");
    let (repo, commit) = pinned.rsplit_once('@').ok_or_else(|| {
        format!("{pinned:?} pins no commit: write it as org/name@<40-hex commit>")
    })?;
    if let [kind, _, _] = repo.split('/').collect::<Vec<_>>()[..] {
        if RepoType::parse(kind).is_none() && !repo.starts_with("hf:") {
            return Err(format!(
                "unknown repo type {kind:?} in {repo:?} (model, dataset, space or kernel)"
            ));
        }
    }
    let named = RepoRef::parse(repo).map_err(|e| match e {
        ConfigError::Usage { message, .. } => message,
        other => other.to_string(),
    })?;
    if !is_commit_hash(commit) {
        return Err(format!(
            "{commit:?} is not a 40-hex commit hash (a lock pins commits, not refs: \
             `hf-cache-sync lock` resolves refs for you)"
        ));
    }
    let (mut include, mut exclude, mut local_dir) = (Vec::new(), Vec::new(), None);
    for word in words {
        if let Some(dir) = word.strip_prefix(LOCAL_DIR) {
            if dir.is_empty() {
                return Err("local-dir= names no folder".into());
            }
            if local_dir.is_some() {
                return Err("local-dir= is given twice".into());
            }
            local_dir = Some(base.join(dir));
            continue;
        }
        let (list, pattern) = match word.strip_prefix('!') {
            Some(p) => (&mut exclude, p),
            None => (&mut include, word),
        };
        patterns::check(pattern).map_err(|e| e.to_string())?;
        list.push(pattern.to_string());
    }
    let files = FileFilter::new(&include, &exclude).map_err(|e| e.to_string())?;
    let ref_name = comment
        .filter(|c| !c.is_empty() && !c.contains(char::is_whitespace))
        .filter(|c| is_safe_ref_name(c) && !is_commit_hash(c))
        .map(str::to_string);
    Ok(Pin {
        line: number,
        repo_type: named.repo_type.unwrap_or(RepoType::Model),
        repo_id: named.repo_id,
        commit: commit.to_string(),
        files,
        ref_name,
        local_dir,
    })
}

/// The lock file's text for `entries`: a header saying how to use it, then one line each,
/// sorted so the file diffs well.
pub fn render(entries: &[Pin], base: &Path) -> String {
    let mut lines: Vec<(String, String)> = entries
        .iter()
        .map(|e| (format!("{}/{}", e.repo_type, e.repo_id), e.to_line(base)))
        .collect();
    lines.sort();
    let mut out = String::from(
        "# Pinned Hugging Face revisions. `hf-cache-sync pull --lock FILE` pulls them,\n\
         # `hf-cache-sync verify --lock FILE` checks them; `hf-cache-sync lock` rewrites this file.\n",
    );
    for (_, line) in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const C1: &str = "0123456789abcdef0123456789abcdef01234567";
    const C2: &str = "89abcdef0123456789abcdef0123456789abcdef";

    fn ok(text: &str) -> Vec<Pin> {
        let (entries, errors) = parse(text, Path::new("/proj"));
        assert!(errors.is_empty(), "{errors:?}");
        entries
    }

    fn bad(text: &str) -> Vec<(usize, String)> {
        parse(text, Path::new("/proj")).1
    }

    #[test]
    fn reads_entries_patterns_dirs_and_refs() {
        let text = format!(
            "# header\n\norg/a@{C1}  # main\n\
             dataset/org/d@{C2} *.parquet !test/ local-dir=data/d # v1.0\n\
             hf://spaces/org/s@{C1}\n"
        );
        let e = ok(&text);
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].repo_type, e[0].repo_id.as_str()),
            (RepoType::Model, "org/a")
        );
        assert_eq!(e[0].ref_name.as_deref(), Some("main"));
        assert!(e[0].files.is_all());
        assert_eq!(e[0].line, 3);
        assert_eq!(e[1].repo_type, RepoType::Dataset);
        assert_eq!(e[1].files.include(), ["*.parquet"]);
        assert_eq!(e[1].files.exclude(), ["test/"]);
        assert!(e[1].files.matches("train/0.parquet"));
        assert!(!e[1].files.matches("test/0.parquet"));
        assert_eq!(e[1].local_dir.as_deref(), Some(Path::new("/proj/data/d")));
        assert_eq!(e[1].ref_name.as_deref(), Some("v1.0"));
        assert_eq!(e[2].repo_type, RepoType::Space);
        assert_eq!(e[2].ref_name, None);
    }

    #[test]
    fn a_comment_that_is_not_one_ref_name_is_only_a_comment() {
        let e = ok(&format!("org/a@{C1} # the good one\norg/b@{C1} #\n"));
        assert_eq!(e[0].ref_name, None);
        assert_eq!(e[1].ref_name, None);
    }

    #[test]
    fn every_bad_line_is_named_with_what_is_wrong() {
        let text = format!(
            "org/a@main\norg/x/y/z@{C1}\norg/b\nweird/org/c@{C1}\norg/d@{C1} model-[Q4\n\
             org/e@{C1} local-dir=\norg/f@{C1}\norg/f@{C1} *.json\n"
        );
        let errors = bad(&text);
        let lines: Vec<usize> = errors.iter().map(|(n, _)| *n).collect();
        assert_eq!(lines, [1, 2, 3, 4, 5, 6, 8], "{errors:?}");
        assert!(errors[0].1.contains("not a 40-hex commit"), "{errors:?}");
        assert!(errors[1].1.contains("invalid repo id"), "{errors:?}");
        assert!(errors[2].1.contains("pins no commit"), "{errors:?}");
        assert!(
            errors[3].1.contains("unknown repo type \"weird\""),
            "{errors:?}"
        );
        assert!(
            errors[4].1.contains("not a valid file pattern"),
            "{errors:?}"
        );
        assert!(errors[5].1.contains("names no folder"), "{errors:?}");
        assert!(
            errors[6].1.contains("already pinned on line 7"),
            "{errors:?}"
        );
    }

    #[test]
    fn written_lines_read_back_the_same() {
        let text = format!(
            "dataset/org/d@{C2} *.parquet !test/ local-dir=data/d  # v1.0\norg/a@{C1}  # main\n"
        );
        let entries = ok(&text);
        let rendered = render(&entries, Path::new("/proj"));
        assert!(rendered.starts_with("# "), "{rendered}");
        let body: Vec<&str> = rendered.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            body,
            [
                format!("dataset/org/d@{C2} *.parquet !test/ local-dir=data/d  # v1.0"),
                format!("org/a@{C1}  # main"),
            ]
        );
        let again = ok(&rendered);
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].local_dir, entries[0].local_dir);
    }
}
