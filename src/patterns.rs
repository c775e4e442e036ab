//! File patterns over the paths in a repo, matched as `hf download --include/--exclude` and
//! huggingface_hub's `allow_patterns`/`ignore_patterns` match them: shell globs on the whole
//! path, `*` crossing `/` (fnmatch), and a pattern ending in `/` taking everything under it.
//! `pull --include-files/--exclude-files` and lock-file entries use them.

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::manifest::Manifest;

/// A pattern that is not a glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a valid file pattern: {why}")]
pub struct PatternError {
    pub pattern: String,
    pub why: String,
}

/// Which files of a revision to take: those matching any include pattern (every file when
/// there is none) and no exclude pattern.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    include: Vec<String>,
    exclude: Vec<String>,
    include_set: Option<GlobSet>,
    exclude_set: Option<GlobSet>,
}

impl FileFilter {
    pub fn new(include: &[String], exclude: &[String]) -> Result<FileFilter, PatternError> {
        Ok(FileFilter {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
            include_set: build(include)?,
            exclude_set: build(exclude)?,
        })
    }

    /// Whether every file is taken.
    pub fn is_all(&self) -> bool {
        self.include.is_empty() && self.exclude.is_empty()
    }

    pub fn matches(&self, path: &str) -> bool {
        self.include_set.as_ref().is_none_or(|g| g.is_match(path))
            && !self.exclude_set.as_ref().is_some_and(|g| g.is_match(path))
    }

    pub fn include(&self) -> &[String] {
        &self.include
    }

    pub fn exclude(&self) -> &[String] {
        &self.exclude
    }

    /// The manifest's files the patterns take; none is an error naming what the revision holds
    /// (so a later source, whose manifest may be whole, can be asked).
    pub fn select(&self, mut manifest: Manifest) -> Result<Manifest, String> {
        if self.is_all() {
            return Ok(manifest);
        }
        let mut names: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
        names.sort_unstable();
        let shown = match names.len() {
            0..=5 => names.join(", "),
            n => format!("{}, … ({n} in all)", names[..5].join(", ")),
        };
        let why = format!(
            "no file of {}@{} matches {} (its {}: {shown})",
            manifest.repo,
            crate::text::short(&manifest.revision),
            self.describe(),
            crate::text::plural(names.len(), "file", "files"),
        );
        manifest.files.retain(|f| self.matches(&f.path));
        if manifest.files.is_empty() {
            return Err(why);
        }
        Ok(manifest)
    }

    /// The patterns as a person would pass them: `--include-files 'a' --exclude-files 'b'`.
    pub fn describe(&self) -> String {
        let flags = self
            .include
            .iter()
            .map(|p| format!("--include-files '{p}'"))
            .chain(
                self.exclude
                    .iter()
                    .map(|p| format!("--exclude-files '{p}'")),
            );
        flags.collect::<Vec<_>>().join(" ")
    }
}

/// Checks one pattern, as a lock-file line or a flag gives it.
pub fn check(pattern: &str) -> Result<(), PatternError> {
    glob(pattern).map(|_| ())
}

fn glob(pattern: &str) -> Result<Glob, PatternError> {
    let error = |why: String| PatternError {
        pattern: pattern.to_string(),
        why,
    };
    if pattern.is_empty() {
        return Err(error("it is empty".into()));
    }
    // huggingface_hub takes `dir/` for everything under `dir/`.
    let full = if pattern.ends_with('/') {
        format!("{pattern}*")
    } else {
        pattern.to_string()
    };
    Glob::new(&full).map_err(|e| error(e.kind().to_string()))
}

fn build(patterns: &[String]) -> Result<Option<GlobSet>, PatternError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder.add(glob(p)?);
    }
    builder.build().map(Some).map_err(|e| PatternError {
        pattern: patterns.join(" "),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(include: &[&str], exclude: &[&str]) -> FileFilter {
        let own = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        FileFilter::new(&own(include), &own(exclude)).unwrap()
    }

    #[test]
    fn no_pattern_takes_everything() {
        let f = filter(&[], &[]);
        assert!(f.is_all());
        assert!(f.matches("a/b/c.bin"));
    }

    #[test]
    fn star_crosses_slashes_as_fnmatch_does() {
        let f = filter(&["*.gguf"], &[]);
        assert!(f.matches("model-Q4_K_M.gguf"));
        assert!(f.matches("quants/model-Q4_K_M.gguf"));
        assert!(!f.matches("README.md"));
        assert!(!f.is_all());
    }

    #[test]
    fn a_trailing_slash_takes_the_folder() {
        let f = filter(&["onnx/"], &[]);
        assert!(f.matches("onnx/model.onnx"));
        assert!(!f.matches("onnx.txt"));
    }

    #[test]
    fn exclude_wins_over_include() {
        let f = filter(&["*.gguf", "*.json"], &["*Q8*"]);
        assert!(f.matches("m-Q4.gguf"));
        assert!(!f.matches("m-Q8_0.gguf"));
        assert!(f.matches("config.json"));
        let only_exclude = filter(&[], &["*.bin"]);
        assert!(only_exclude.matches("model.safetensors"));
        assert!(!only_exclude.matches("pytorch_model.bin"));
    }

    #[test]
    fn bad_patterns_say_why() {
        let e = check("model-[Q4.gguf").unwrap_err();
        assert_eq!(e.pattern, "model-[Q4.gguf");
        assert!(e.to_string().contains("not a valid file pattern"), "{e}");
        assert!(check("").is_err());
        assert!(check("*.gguf").is_ok());
    }

    #[test]
    fn describes_itself_as_flags() {
        let f = filter(&["*.gguf"], &["*Q8*"]);
        assert_eq!(
            f.describe(),
            "--include-files '*.gguf' --exclude-files '*Q8*'"
        );
    }
}
