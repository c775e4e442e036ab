//! The remote layout shared with hf-cache-sync 0.1, and the manifest format.
//!
//! Keys: `[prefix/]blobs/<etag>`, `[prefix/]manifests/<org__name>@<commit>.json`,
//! `[prefix/]refs/<org__name>/<ref>`, and beside a manifest the commit's tree listing as
//! huggingface_hub keeps it, `[prefix/]trees/<org__name>@<commit>.json` (0.1 ignores that family). A manifest read from the remote is untrusted input and is
//! validated before anything is written. Runs that must not overlap (a gc and a push) announce
//! themselves with lock objects, `[prefix/]locks/<kind>-<id>.json`, a family no catalog reader
//! lists.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::cache::{is_blob_name, is_safe_ref_name, is_safe_relative_path, RepoType};

const BLOBS: &str = "blobs/";
const MANIFESTS: &str = "manifests/";
const REFS: &str = "refs/";
const TREES: &str = "trees/";
const MANIFEST_SUFFIX: &str = ".json";
const LOCKS: &str = "locks/";
const LOCK_SUFFIX: &str = ".json";
/// Where `doctor` writes its probe object: outside `blobs/`, which push trusts as an index.
const DOCTOR_PROBES: &str = "_hf_cache_sync_doctor/";

/// Larger manifests are refused: tens of thousands of files fit in a few MB.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024 * 1024;
/// No single file of a model repo is near this; larger sizes in a manifest are hostile.
pub const MAX_FILE_SIZE: u64 = 1 << 50;
/// Ref bodies are a commit hash; anything much larger is not a ref.
pub const MAX_REF_BYTES: usize = 1024;

/// `org/name` → `org__name`, as 0.1 encodes repo ids in keys.
pub fn safe_repo_key(repo_id: &str) -> String {
    repo_id.replace('/', "__")
}

/// Builds and parses object keys under an optional team prefix.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Empty, or the prefix followed by `/`.
    prefix: String,
}

impl Layout {
    pub fn new(prefix: &str) -> Layout {
        let p = prefix.trim_matches('/');
        Layout {
            prefix: if p.is_empty() {
                String::new()
            } else {
                format!("{p}/")
            },
        }
    }

    pub fn blobs_prefix(&self) -> String {
        format!("{}{BLOBS}", self.prefix)
    }
    pub fn manifests_prefix(&self) -> String {
        format!("{}{MANIFESTS}", self.prefix)
    }
    pub fn refs_prefix(&self) -> String {
        format!("{}{REFS}", self.prefix)
    }
    pub fn trees_prefix(&self) -> String {
        format!("{}{TREES}", self.prefix)
    }

    pub fn blob_key(&self, etag: &str) -> String {
        format!("{}{BLOBS}{etag}", self.prefix)
    }

    pub fn manifest_key(&self, repo_id: &str, revision: &str) -> String {
        format!(
            "{}{MANIFESTS}{}@{revision}{MANIFEST_SUFFIX}",
            self.prefix,
            safe_repo_key(repo_id)
        )
    }

    /// The start of the manifest keys of `repo_id`'s commits that begin with `commit_prefix`:
    /// listing it finds the commits a short hash may mean.
    pub fn manifest_commit_prefix(&self, repo_id: &str, commit_prefix: &str) -> String {
        format!(
            "{}{MANIFESTS}{}@{commit_prefix}",
            self.prefix,
            safe_repo_key(repo_id)
        )
    }

    /// The tree listing of a revision, beside its manifest.
    pub fn tree_key(&self, repo_id: &str, revision: &str) -> String {
        format!(
            "{}{TREES}{}@{revision}{MANIFEST_SUFFIX}",
            self.prefix,
            safe_repo_key(repo_id)
        )
    }

    pub fn ref_key(&self, repo_id: &str, ref_name: &str) -> String {
        format!("{}{REFS}{}/{ref_name}", self.prefix, safe_repo_key(repo_id))
    }

    /// `doctor`'s write probe, `[prefix/]_hf_cache_sync_doctor/probe-<token>`, as 0.1 names it.
    pub fn doctor_probe_key(&self, token: &str) -> String {
        format!("{}{DOCTOR_PROBES}probe-{token}", self.prefix)
    }

    /// Where bucket locks live (see [`crate::remote::bucket_lock`]).
    pub fn locks_prefix(&self) -> String {
        format!("{}{LOCKS}", self.prefix)
    }

    /// A bucket lock, `[prefix/]locks/<kind>-<id>.json`; `kind` holds no `-`.
    pub fn lock_key(&self, kind: &str, id: &str) -> String {
        format!("{}{LOCKS}{kind}-{id}{LOCK_SUFFIX}", self.prefix)
    }

    /// (kind, id) of a `locks/<kind>-<id>.json` key, if it is one.
    pub fn parse_lock_key<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        let body = key
            .strip_prefix(&self.prefix)?
            .strip_prefix(LOCKS)?
            .strip_suffix(LOCK_SUFFIX)?;
        let (kind, id) = body.split_once('-')?;
        (!kind.is_empty() && !id.is_empty() && !body.contains('/')).then_some((kind, id))
    }

    /// The etag of a `blobs/<etag>` key, if it is one.
    pub fn parse_blob_key<'a>(&self, key: &'a str) -> Option<&'a str> {
        let etag = key.strip_prefix(&self.prefix)?.strip_prefix(BLOBS)?;
        is_blob_name(etag).then_some(etag)
    }

    /// (`org__name`, commit) of a `manifests/<org__name>@<commit>.json` key, if it is one.
    pub fn parse_manifest_key<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        self.parse_revision_key(key, MANIFESTS)
    }

    /// (`org__name`, commit) of a `trees/<org__name>@<commit>.json` key, if it is one.
    #[cfg(test)]
    pub fn parse_tree_key<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        self.parse_revision_key(key, TREES)
    }

    /// (`org__name`, commit) of a `<dir><org__name>@<commit>.json` key.
    fn parse_revision_key<'a>(&self, key: &'a str, dir: &str) -> Option<(&'a str, &'a str)> {
        let body = key
            .strip_prefix(&self.prefix)?
            .strip_prefix(dir)?
            .strip_suffix(MANIFEST_SUFFIX)?;
        // Repo ids cannot hold `@`; the last one separates the commit.
        let (safe, commit) = body.rsplit_once('@')?;
        (!safe.is_empty()
            && !safe.contains('/')
            && is_safe_ref_name(commit)
            && !commit.contains('/'))
        .then_some((safe, commit))
    }

    /// (`org__name`, ref name) of a ref key; ref names may be nested (`pr/1`).
    pub fn parse_ref_key<'a>(&self, key: &'a str) -> Option<(&'a str, &'a str)> {
        let body = key.strip_prefix(&self.prefix)?.strip_prefix(REFS)?;
        let (safe, name) = body.split_once('/')?;
        (!safe.is_empty() && is_safe_ref_name(name)).then_some((safe, name))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    pub path: String,
    pub blob: String,
    pub size: u64,
}

/// One revision of one repo: which blob each file path holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub repo: String,
    pub revision: String,
    #[serde(default = "default_repo_type")]
    pub repo_type: String,
    pub files: Vec<ManifestFile>,
}

fn default_repo_type() -> String {
    "model".into()
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("manifest is not valid JSON of the expected shape: {0}")]
    Json(String),
    #[error("manifest refused: {0}")]
    Hostile(String),
}

impl Manifest {
    /// Bytes exactly as hf-cache-sync 0.1 writes them (Python `json.dumps(indent=2)`, which
    /// escapes every non-ASCII character).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        crate::text::python_json(self, b"  ")
    }

    /// Parses and validates an untrusted manifest.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Same repo, revision, type and files, whatever order the files are listed in: 0.1 writes
    /// them in directory-walk order, this tool sorts them, and neither must rewrite the other's.
    pub fn same_content(&self, other: &Manifest) -> bool {
        fn sorted(m: &Manifest) -> Vec<&ManifestFile> {
            let mut files: Vec<&ManifestFile> = m.files.iter().collect();
            files.sort_by(|a, b| a.path.cmp(&b.path));
            files
        }
        self.repo == other.repo
            && self.revision == other.revision
            && self.repo_type == other.repo_type
            && sorted(self) == sorted(other)
    }

    /// Both manifests' files together, when they describe the same revision and agree on every
    /// path they share: a commit's files never change, so a cache holding part of a revision
    /// (pulled with file patterns) adds to what the remote knows of it instead of shrinking it.
    /// `None` when they disagree.
    pub fn union(&self, other: &Manifest) -> Option<Manifest> {
        if self.repo != other.repo
            || self.revision != other.revision
            || self.repo_type != other.repo_type
        {
            return None;
        }
        let mut files: std::collections::BTreeMap<&str, &ManifestFile> =
            self.files.iter().map(|f| (f.path.as_str(), f)).collect();
        for f in &other.files {
            match files.get(f.path.as_str()) {
                Some(mine) if *mine != f => return None,
                Some(_) => {}
                None => {
                    files.insert(&f.path, f);
                }
            }
        }
        Some(Manifest {
            files: files.into_values().cloned().collect(),
            ..self.clone()
        })
    }

    pub fn repo_type(&self) -> Option<RepoType> {
        RepoType::ALL
            .into_iter()
            .find(|t| t.as_str() == self.repo_type)
    }

    /// Refuses anything that could write outside the snapshot or under a wrong name.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let hostile = |m: String| Err(ManifestError::Hostile(m));
        if !is_valid_repo_id(&self.repo) {
            return hostile(format!("invalid repo id {:?}", self.repo));
        }
        if self.repo_type().is_none() {
            return hostile(format!("unknown repo_type {:?}", self.repo_type));
        }
        if !is_safe_ref_name(&self.revision) || self.revision.contains('/') {
            return hostile(format!("invalid revision {:?}", self.revision));
        }
        let mut seen = BTreeSet::new();
        for f in &self.files {
            if !is_safe_relative_path(&f.path) || f.path.contains('\\') {
                return hostile(format!("unsafe file path {:?}", f.path));
            }
            if !is_blob_name(&f.blob) {
                return hostile(format!(
                    "blob name {:?} for {:?} is not 40 or 64 lowercase hex",
                    f.blob, f.path
                ));
            }
            if f.size > MAX_FILE_SIZE {
                return hostile(format!("absurd size {} for {:?}", f.size, f.path));
            }
            if !seen.insert(f.path.as_str()) {
                return hostile(format!("duplicate path {:?}", f.path));
            }
        }
        // A path that is also a folder of another path ("a" and "a/b") cannot both be written.
        for f in &self.files {
            let mut prefix = f.path.as_str();
            while let Some((parent, _)) = prefix.rsplit_once('/') {
                if seen.contains(parent) {
                    return hostile(format!("{:?} is both a file and a folder", parent));
                }
                prefix = parent;
            }
        }
        Ok(())
    }
}

/// `org/name` or `name`: no empty parts, no `..`, no characters that cannot be in a folder name.
pub fn is_valid_repo_id(id: &str) -> bool {
    let parts: Vec<&str> = id.split('/').collect();
    !id.is_empty()
        && parts.len() <= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

/// A ref body is a commit hash, possibly with whitespace around it.
pub fn parse_ref_body(bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    (!text.is_empty() && is_safe_ref_name(text) && !text.contains('/')).then(|| text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            repo: "org/name".into(),
            revision: "a".repeat(40),
            repo_type: "model".into(),
            files: vec![ManifestFile {
                path: "config.json".into(),
                blob: "b".repeat(40),
                size: 12,
            }],
        }
    }

    #[test]
    fn a_part_of_a_revision_adds_to_the_whole_and_a_conflict_is_refused() {
        let whole = {
            let mut m = sample();
            m.files.push(ManifestFile {
                path: "model.gguf".into(),
                blob: "c".repeat(64),
                size: 99,
            });
            m
        };
        let part = sample();
        assert!(part.union(&whole).unwrap().same_content(&whole));
        assert!(whole.union(&part).unwrap().same_content(&whole));
        let mut other_part = whole.clone();
        other_part.files.remove(0);
        assert!(part.union(&other_part).unwrap().same_content(&whole));
        let mut conflicting = sample();
        conflicting.files[0].size = 13;
        assert!(conflicting.union(&whole).is_none());
        let mut other_commit = whole.clone();
        other_commit.revision = "d".repeat(40);
        assert!(part.union(&other_commit).is_none());
    }

    #[test]
    fn keys_match_0_1() {
        let l = Layout::new("");
        assert_eq!(l.blob_key("ab"), "blobs/ab");
        assert_eq!(
            l.manifest_key("org/name", "c1"),
            "manifests/org__name@c1.json"
        );
        assert_eq!(l.ref_key("org/name", "pr/1"), "refs/org__name/pr/1");
        let t = Layout::new("/team/");
        assert_eq!(t.blob_key("ab"), "team/blobs/ab");
        assert_eq!(
            t.manifest_key("org/name", "c1"),
            "team/manifests/org__name@c1.json"
        );
        assert_eq!(
            t.parse_ref_key("team/refs/org__name/pr/1"),
            Some(("org__name", "pr/1"))
        );
        assert_eq!(t.parse_ref_key("team/refs/org__name/../x"), None);
        assert_eq!(
            t.parse_blob_key(&format!("team/blobs/{}", "a".repeat(40))),
            Some("a".repeat(40).as_str())
        );
        assert_eq!(t.parse_blob_key("team/blobs/x.tmp"), None);
        assert_eq!(
            t.doctor_probe_key("ab12"),
            "team/_hf_cache_sync_doctor/probe-ab12"
        );
        assert_eq!(
            t.parse_manifest_key(&t.manifest_key("org/na@me", "c1")),
            Some(("org__na@me", "c1"))
        );
        assert_eq!(t.parse_manifest_key("team/manifests/x.json"), None);
        assert_eq!(
            t.parse_manifest_key(&t.manifest_key("a__b/c", "c2")),
            Some(("a__b__c", "c2"))
        );
        assert_eq!(t.parse_manifest_key("team/manifests/@c1.json"), None);
        assert_eq!(t.parse_manifest_key("team/manifests/x/y@c1.json"), None);
        assert_eq!(t.parse_manifest_key("manifests/org__name@c1.json"), None);
        assert_eq!(t.tree_key("org/name", "c1"), "team/trees/org__name@c1.json");
        assert_eq!(
            t.parse_tree_key("team/trees/org__name@c1.json"),
            Some(("org__name", "c1"))
        );
        assert_eq!(t.parse_tree_key("team/manifests/org__name@c1.json"), None);
    }

    #[test]
    fn lock_keys_sit_beside_the_families_0_1_reads() {
        let t = Layout::new("team");
        let key = t.lock_key("shared", "0123abcd");
        assert_eq!(key, "team/locks/shared-0123abcd.json");
        assert_eq!(t.parse_lock_key(&key), Some(("shared", "0123abcd")));
        for other in [
            "team/locks/shared.json",
            "team/locks/-x.json",
            "team/locks/a/shared-x.json",
            "team/locks/shared-x",
            "locks/shared-x.json",
        ] {
            assert_eq!(t.parse_lock_key(other), None, "{other}");
        }
        // No catalog family lists a lock.
        assert!(!key.starts_with(&t.blobs_prefix()));
        assert!(!key.starts_with(&t.manifests_prefix()));
        assert!(!key.starts_with(&t.refs_prefix()));
        assert!(!key.starts_with(&t.trees_prefix()));
    }

    #[test]
    fn json_is_byte_compatible_with_python() {
        let mut m = sample();
        m.files[0].path = "données/é.txt".into();
        let text = String::from_utf8(m.to_json_bytes()).unwrap();
        let expected = format!(
            "{{\n  \"repo\": \"org/name\",\n  \"revision\": \"{}\",\n  \"repo_type\": \"model\",\n  \"files\": [\n    {{\n      \"path\": \"donn\\u00e9es/\\u00e9.txt\",\n      \"blob\": \"{}\",\n      \"size\": 12\n    }}\n  ]\n}}",
            "a".repeat(40),
            "b".repeat(40)
        );
        assert_eq!(text, expected);
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
        // Characters outside the BMP become surrogate pairs, as Python writes them.
        m.files[0].path = "🤗".into();
        let text = String::from_utf8(m.to_json_bytes()).unwrap();
        assert!(text.contains("\\ud83e\\udd17"), "{text}");
    }

    #[test]
    fn file_order_does_not_change_the_content() {
        let mut m = sample();
        m.files.push(ManifestFile {
            path: "a.bin".into(),
            blob: "c".repeat(64),
            size: 3,
        });
        let mut walked = m.clone();
        walked.files.reverse();
        assert_ne!(m, walked);
        assert!(m.same_content(&walked));
        walked.files[0].size = 4;
        assert!(!m.same_content(&walked));
        let mut other = m.clone();
        other.repo_type = "dataset".into();
        assert!(!m.same_content(&other));
    }

    #[test]
    fn repo_type_defaults_to_model() {
        let m = Manifest::parse(br#"{"repo":"a/b","revision":"c","files":[]}"#).unwrap();
        assert_eq!(m.repo_type, "model");
    }

    #[test]
    fn hostile_manifests_are_refused() {
        type Mutation = Box<dyn Fn(&mut Manifest)>;
        let cases: Vec<Mutation> = vec![
            Box::new(|m| m.files[0].path = "/etc/passwd".into()),
            Box::new(|m| m.files[0].path = "../../x".into()),
            Box::new(|m| m.files[0].path = "a/../../x".into()),
            Box::new(|m| m.files[0].path = "a\\..\\x".into()),
            Box::new(|m| m.files[0].path = "".into()),
            Box::new(|m| m.files[0].blob = "../../../etc/passwd".into()),
            Box::new(|m| m.files[0].blob = "B".repeat(40)),
            Box::new(|m| m.files[0].size = u64::MAX),
            Box::new(|m| m.revision = "../x".into()),
            Box::new(|m| m.revision = "a/b".into()),
            Box::new(|m| m.revision = "a\\..\\x".into()),
            Box::new(|m| m.repo = "../evil".into()),
            Box::new(|m| m.repo_type = "widget".into()),
            Box::new(|m| {
                let f = m.files[0].clone();
                m.files.push(f)
            }),
            Box::new(|m| {
                let mut f = m.files[0].clone();
                f.path = "config.json/inner".into();
                m.files.push(f)
            }),
        ];
        for (i, mutate) in cases.iter().enumerate() {
            let mut m = sample();
            mutate(&mut m);
            assert!(
                matches!(m.validate(), Err(ManifestError::Hostile(_))),
                "case {i} accepted: {m:?}"
            );
        }
        assert!(sample().validate().is_ok());
    }

    #[test]
    fn wrong_json_types_are_errors() {
        for bad in [
            &br#"{"repo":1,"revision":"c","files":[]}"#[..],
            br#"{"repo":"a","revision":"c","files":[{"path":"x","blob":"y","size":-1}]}"#,
            br#"{"repo":"a","revision":"c","files":{}}"#,
            b"[]",
            b"not json",
        ] {
            assert!(matches!(Manifest::parse(bad), Err(ManifestError::Json(_))));
        }
    }

    #[test]
    fn ref_bodies() {
        assert_eq!(parse_ref_body(b"abc\n").as_deref(), Some("abc"));
        assert_eq!(parse_ref_body(b"../x"), None);
        assert_eq!(parse_ref_body(b""), None);
        assert_eq!(parse_ref_body(b"..\\..\\x"), None);
    }

    /// Fuzzing the manifest parser and validator: arbitrary bytes, and valid manifests with one
    /// field replaced by a hostile or ill-typed value, never panic; whatever is accepted can only
    /// write inside its snapshot; valid manifests round-trip through 0.1's byte format.
    /// `PROPTEST_CASES=100000 cargo test --bin hf-cache-sync manifest::tests::fuzz` runs longer.
    mod fuzz {
        use super::super::*;
        use proptest::prelude::*;
        use serde_json::{json, Value};

        use crate::fuzzing::config;

        fn to_hex(bytes: &[u8]) -> String {
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        }

        fn sha1() -> impl Strategy<Value = String> {
            any::<[u8; 20]>().prop_map(|b| to_hex(&b))
        }

        fn blob() -> impl Strategy<Value = String> {
            prop_oneof![sha1(), any::<[u8; 32]>().prop_map(|b| to_hex(&b))]
        }

        fn path_part() -> impl Strategy<Value = String> {
            "[a-zA-Z0-9_.é🤗 -]{1,10}".prop_filter("a normal component", |p| p != "." && p != "..")
        }

        fn valid_manifest() -> impl Strategy<Value = Manifest> {
            let file = (
                proptest::collection::vec(path_part(), 1..4),
                blob(),
                0..=MAX_FILE_SIZE,
            );
            (
                "[a-z0-9]{1,8}(/[a-zA-Z0-9._-]{1,12})?",
                sha1(),
                prop_oneof![Just("model"), Just("dataset"), Just("space")],
                proptest::collection::vec(file, 0..6),
            )
                .prop_map(|(repo, revision, repo_type, files)| {
                    let mut seen = BTreeSet::new();
                    let files = files
                        .into_iter()
                        .map(|(parts, blob, size)| ManifestFile {
                            // One level per file keeps "a" and "a/b" from both appearing.
                            path: format!("{}/{}", parts.len(), parts.join("/")),
                            blob,
                            size,
                        })
                        .filter(|f| seen.insert(f.path.clone()))
                        .collect();
                    Manifest {
                        repo,
                        revision,
                        repo_type: repo_type.to_string(),
                        files,
                    }
                })
                .prop_filter("a valid repo id", |m| is_valid_repo_id(&m.repo))
        }

        /// Values a hostile or broken writer could put in any field.
        fn hostile_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| json!(f)),
                Just(json!(-1)),
                Just(json!(1u64 << 50)),
                Just(json!((1u64 << 50) + 1)),
                Just(json!(u64::MAX)),
                Just(json!("/etc/passwd")),
                Just(json!("../../x")),
                Just(json!("a/../../x")),
                Just(json!("a\\..\\x")),
                Just(json!("a//b")),
                Just(json!("./a")),
                Just(json!("a\u{0}b")),
                Just(json!("")),
                Just(json!("A".repeat(40))),
                Just(json!(format!("{}/{}", "a".repeat(20), "b".repeat(19)))),
                Just(json!([])),
                Just(json!({})),
                Just(json!([{"path": "x", "blob": "y", "size": 1}])),
                any::<String>().prop_map(Value::from),
            ]
        }

        /// Where in a manifest a value can be replaced: top-level fields, or a field of a file.
        #[derive(Debug, Clone)]
        enum Spot {
            Top(&'static str),
            File(usize, &'static str),
            Remove(&'static str),
            DuplicateFile(usize),
        }

        fn spot() -> impl Strategy<Value = Spot> {
            let top = prop_oneof![
                Just("repo"),
                Just("revision"),
                Just("repo_type"),
                Just("files")
            ];
            let field = prop_oneof![Just("path"), Just("blob"), Just("size"), Just("extra")];
            prop_oneof![
                top.clone().prop_map(Spot::Top),
                (0usize..6, field).prop_map(|(i, f)| Spot::File(i, f)),
                top.prop_map(Spot::Remove),
                (0usize..6).prop_map(Spot::DuplicateFile),
            ]
        }

        fn mutate(doc: &mut Value, spot: &Spot, value: Value) {
            match spot {
                Spot::Top(k) if doc.is_object() => doc[*k] = value,
                Spot::Top(_) => {}
                Spot::Remove(k) => {
                    if let Some(o) = doc.as_object_mut() {
                        o.remove(*k);
                    }
                }
                Spot::File(i, k) => {
                    if let Some(f) = doc["files"].get_mut(*i).filter(|f| f.is_object()) {
                        f[*k] = value;
                    }
                }
                Spot::DuplicateFile(i) => {
                    if let Some(files) = doc["files"].as_array_mut() {
                        if let Some(f) = files.get(*i).cloned() {
                            files.push(f);
                        }
                    }
                }
            }
        }

        /// What an accepted manifest promises pull: every write stays inside the snapshot.
        fn assert_safe(m: &Manifest) -> Result<(), TestCaseError> {
            let root = std::path::Path::new("/cache/snapshots/c");
            let mut seen = BTreeSet::new();
            for f in &m.files {
                prop_assert!(is_blob_name(&f.blob), "{:?}", f);
                prop_assert!(f.size <= MAX_FILE_SIZE, "{:?}", f);
                prop_assert!(seen.insert(f.path.clone()), "duplicate {:?}", f);
                let joined = crate::cache::scan::normalize_lexically(&root.join(&f.path));
                prop_assert!(joined.starts_with(root) && joined != root, "{:?}", f);
            }
            prop_assert!(m.repo_type().is_some());
            prop_assert!(is_valid_repo_id(&m.repo));
            prop_assert!(is_safe_ref_name(&m.revision) && !m.revision.contains('/'));
            Ok(())
        }

        proptest! {
            #![proptest_config(config())]

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
                if let Ok(m) = Manifest::parse(&bytes) {
                    assert_safe(&m)?;
                }
            }

            #[test]
            fn valid_manifests_round_trip(m in valid_manifest()) {
                let bytes = m.to_json_bytes();
                let parsed = Manifest::parse(&bytes)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {m:?}")))?;
                prop_assert_eq!(&parsed, &m);
                prop_assert_eq!(parsed.to_json_bytes(), bytes);
            }

            #[test]
            fn mutated_manifests_never_panic_and_stay_safe(
                m in valid_manifest(),
                mutations in proptest::collection::vec((spot(), hostile_value()), 1..4),
            ) {
                let mut doc: Value = serde_json::from_slice(&m.to_json_bytes()).unwrap();
                for (spot, value) in &mutations {
                    mutate(&mut doc, spot, value.clone());
                }
                let bytes = serde_json::to_vec(&doc).unwrap();
                if let Ok(parsed) = Manifest::parse(&bytes) {
                    assert_safe(&parsed)?;
                }
            }

            #[test]
            fn truncated_manifests_never_panic(m in valid_manifest(), cut in any::<prop::sample::Index>()) {
                let bytes = m.to_json_bytes();
                let end = cut.index(bytes.len() + 1);
                if let Ok(parsed) = Manifest::parse(&bytes[..end]) {
                    assert_safe(&parsed)?;
                }
            }

            #[test]
            fn ref_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                if let Some(commit) = parse_ref_body(&bytes) {
                    prop_assert!(is_safe_ref_name(&commit) && !commit.contains('/'));
                }
            }
        }
    }
}
