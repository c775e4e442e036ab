//! The key layout against 0.1's, and the manifest format against what Python writes and what a
//! hostile remote could send.

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
