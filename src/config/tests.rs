//! The config file and the environment resolved into settings.

use super::file::{parse_text, SizeValue};
use super::*;

#[test]
fn parses_full_file() {
    let cfg = parse_text(
        "storage:\n  endpoint: http://x\n  bucket: b\ncache:\n  max_local_gb: 10\n  sync_xet: true\nteam:\n  prefix: /t/\n  allow_gated: true\ntransfer:\n  multipart_threshold: 8MiB\n",
    )
    .unwrap();
    assert_eq!(cfg.storage.unwrap().bucket.as_deref(), Some("b"));
    assert_eq!(cfg.cache.unwrap().max_local_gb, Some(10.0));
    assert!(matches!(
        cfg.transfer.unwrap().multipart_threshold,
        Some(SizeValue::Text(_))
    ));
}

#[test]
fn empty_and_comment_only_files_are_empty_configs() {
    assert!(parse_text("").unwrap().storage.is_none());
    assert!(parse_text("# nothing\n").unwrap().storage.is_none());
    assert!(parse_text("storage:\n").unwrap().storage.is_none());
}

#[test]
fn unknown_key_names_key_and_line() {
    let err = parse_text("storage:\n  bucket: b\n  buckte: c\n").unwrap_err();
    assert!(err.contains("buckte"), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn type_errors_speak_of_numbers_not_rust_types() {
    for (yaml, says) in [
        ("cache:\n  max_local_gb: lots\n", "expected a number"),
        ("transfer:\n  workers: many\n", "expected a whole number"),
        ("cache:\n  sync_xet: maybe\n", "expected true or false"),
        (
            "transfer:\n  part_size: [8, MiB]\n",
            "expected a size such as 64MiB",
        ),
    ] {
        let err = parse_text(yaml).unwrap_err();
        assert!(err.contains(says), "{yaml}: {err}");
        for rust in ["f64", "usize", "SizeValue", "untagged"] {
            assert!(!err.contains(rust), "{yaml}: {err}");
        }
    }
}

#[test]
fn wrong_type_is_an_error() {
    let err = parse_text("cache:\n  sync_xet: maybe\n").unwrap_err();
    assert!(err.contains("sync_xet") || err.contains("line 2"), "{err}");
}

#[test]
fn timeouts_are_positive_seconds() {
    use std::time::Duration;
    assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
    assert_eq!(parse_seconds(" 2.5 "), Ok(Duration::from_millis(2500)));
    for bad in ["0", "-1", "abc", "", "inf", "NaN", "1e400", "10s"] {
        let err = parse_seconds(bad).unwrap_err();
        assert!(err.contains("positive number of seconds"), "{bad}: {err}");
    }
}

#[test]
fn sizes_parse() {
    assert_eq!(parse_size("64MiB").unwrap(), 64 * 1024 * 1024);
    assert_eq!(parse_size("5MB").unwrap(), 5_000_000);
    assert_eq!(parse_size("1024").unwrap(), 1024);
    assert!(parse_size("lots").is_err());
}

#[test]
fn a_rate_in_the_file_is_text_or_bytes_per_second() {
    let rate = |yaml: &str| {
        parse_text(yaml)
            .unwrap()
            .transfer
            .unwrap()
            .limit_rate
            .unwrap()
            .rate()
            .map(Rate::bytes_per_second)
    };
    assert_eq!(rate("transfer:\n  limit_rate: 50M\n"), Ok(50 << 20));
    assert_eq!(rate("transfer:\n  limit_rate: \"1.5G\"\n"), Ok(3 << 29));
    assert_eq!(rate("transfer:\n  limit_rate: 1048576\n"), Ok(1 << 20));
    assert!(rate("transfer:\n  limit_rate: 0\n").is_err());
    let err = parse_text("transfer:\n  limit_rate: [50, M]\n").unwrap_err();
    assert!(err.contains("expected a rate such as 50M"), "{err}");
    assert!(!err.contains("RateValue"), "{err}");
}

#[test]
fn prefix_is_trimmed() {
    assert_eq!(normalize_prefix("/team-a/"), "team-a");
    assert_eq!(normalize_prefix(""), "");
}

#[test]
fn secret_is_masked() {
    let s = Secret::new("abcdefghij".into());
    assert_eq!(format!("{s:?}"), "Secret(****)");
    assert_eq!(s.masked(), "ab****");
    let long = Secret::new("K005abcdefghijklmnopqrstuvwxyz".into());
    assert_eq!(long.masked(), "K005****");
    assert_eq!(Secret::new("abc".into()).masked(), "****");
    assert_eq!(Secret::default().masked(), "(empty)");
}

#[test]
fn transfer_errors_name_where_the_value_came_from() {
    let t = TransferSettings {
        workers: 0,
        multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
        part_size: None,
        timeout: None,
        lock_timeout: DEFAULT_LOCK_TIMEOUT,
        limit_rate: None,
    };
    let err = validate_transfer(&t).unwrap_err();
    assert!(err.starts_with("transfer.workers: "), "{err}");
    assert!(check_workers(257).is_err());
    assert_eq!(check_workers(16), Ok(16));
    assert!(check_part_bound(1024).is_err());
    assert!(check_part_bound(MAX_PART_SIZE + 1).is_err());
}

#[cfg(unix)]
#[test]
fn a_secret_readable_by_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(CONFIG_FILE_NAME);
    std::fs::write(&path, "storage:\n  secret_key: s\n").unwrap();
    for (mode, warned) in [(0o644, true), (0o640, true), (0o604, true), (0o600, false)] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let w = exposed_secret_warning(&path);
        assert_eq!(w.is_some(), warned, "mode {mode:o}: {w:?}");
        if let Some(w) = w {
            assert!(w.contains("chmod 600"), "{w}");
            assert!(!w.contains(": s\n"), "{w}");
        }
    }
}

/// Fuzzing the config parser: arbitrary text and YAML built from random keys and values never
/// panic, and valid files round-trip. `PROPTEST_CASES=100000 cargo test --bin hf-cache-sync
/// config::tests::fuzz` runs longer.
mod fuzz {
    use super::super::file::parse_text;
    use super::super::*;
    use proptest::prelude::*;

    use crate::fuzzing::config;

    const SECTIONS: [&str; 5] = ["storage", "cache", "team", "transfer", "retries"];
    const KEYS: [&str; 16] = [
        "endpoint",
        "bucket",
        "region",
        "access_key",
        "secret_key",
        "max_local_gb",
        "sync_xet",
        "hf_cache_dir",
        "prefix",
        "allow_gated",
        "workers",
        "multipart_threshold",
        "part_size",
        "buckte",
        "",
        "<<",
    ];

    /// YAML scalars and shapes of every kind, including hostile ones.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|n| format!("{n}")),
            Just("true".to_string()),
            Just("~".to_string()),
            Just("[a, b".to_string()),
            Just("{x: 1}".to_string()),
            Just("\"unclosed".to_string()),
            Just("*alias".to_string()),
            Just("&anchor 5".to_string()),
            Just("!!binary aGk=".to_string()),
            Just("64MiB".to_string()),
            Just("-1".to_string()),
            Just("12QB".to_string()),
            "[ -~]{0,20}",
            any::<String>(),
        ]
    }

    fn yaml_doc() -> impl Strategy<Value = String> {
        let entry = (0..SECTIONS.len(), 0..KEYS.len(), value(), "[ \t]{0,3}");
        proptest::collection::vec(entry, 0..8).prop_map(|entries| {
            let mut text = String::new();
            for (s, k, v, indent) in entries {
                text.push_str(&format!("{}:\n{indent}  {}: {v}\n", SECTIONS[s], KEYS[k]));
            }
            text
        })
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = parse_text(&text);
        }

        #[test]
        fn random_keys_and_values_never_panic(text in yaml_doc()) {
            if let Ok(file) = parse_text(&text) {
                let _ = Settings::resolve(file, None, &Overrides::default());
            }
        }

        #[test]
        fn sizes_never_panic_and_byte_counts_round_trip(text in any::<String>(), n in any::<u64>()) {
            let _ = parse_size(&text);
            prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
        }

        #[test]
        fn valid_files_round_trip(
            bucket in "[a-z0-9][a-z0-9.-]{2,20}",
            prefix in "[a-zA-Z0-9_/-]{0,20}",
            gb in 0u32..100_000,
            sync in any::<bool>(),
            workers in 1usize..=256,
            part_mib in 5u64..=5120,
        ) {
            let text = format!(
                "storage:\n  bucket: \"{bucket}\"\ncache:\n  max_local_gb: {gb}\n  sync_xet: {sync}\n\
                 team:\n  prefix: \"{prefix}\"\ntransfer:\n  workers: {workers}\n  part_size: {part_mib}MiB\n"
            );
            let file = parse_text(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let settings = Settings::resolve(file, None, &Overrides::default())
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            prop_assert_eq!(settings.storage.bucket.as_deref(), Some(bucket.as_str()));
            prop_assert_eq!(settings.prefix, normalize_prefix(&prefix));
            prop_assert_eq!(settings.max_local_gb, f64::from(gb));
            prop_assert_eq!(settings.sync_xet, sync);
            prop_assert_eq!(settings.transfer.workers, workers);
            prop_assert_eq!(settings.transfer.part_size, Some(part_mib << 20));
        }

        #[test]
        fn masking_shows_at_most_four_characters(secret in any::<String>()) {
            let masked = Secret::new(secret.clone()).masked();
            let shown = masked.trim_end_matches('*');
            prop_assert!(shown.chars().count() <= 4 || masked == "(empty)");
            if secret.chars().count() >= 8 {
                prop_assert!(!masked.contains(secret.as_str()));
            }
        }
    }
}

#[test]
fn pull_fallbacks_parse_and_the_hub_comes_last() {
    let cfg =
        parse_text("pull:\n  fallback: [/mnt/nfs, s3://team/hf, hf-hub]\n  write_through: true\n")
            .unwrap();
    let pull = cfg.pull.unwrap();
    assert_eq!(pull.write_through, Some(true));
    let list: Vec<FallbackSpec> = pull
        .fallback
        .unwrap()
        .iter()
        .map(|f| FallbackSpec::parse(std::ffi::OsStr::new(f)))
        .collect();
    assert_eq!(list[2], FallbackSpec::Hub);
    assert!(FallbackSpec::check_list(&list, "pull.fallback").is_ok());
    let first = [FallbackSpec::Hub, FallbackSpec::Remote("/x".into())];
    let err = FallbackSpec::check_list(&first, "--fallback").unwrap_err();
    assert!(err.contains("hf-hub may come once, last"), "{err}");
    assert!(parse_text("pull:\n  fallbak: [hf-hub]\n").is_err());
}

#[test]
fn serve_from_cache_is_read_and_misspelled_keys_are_refused() {
    let cfg = parse_text("serve:\n  from_cache: true\n").unwrap();
    assert_eq!(cfg.serve.unwrap().from_cache, Some(true));
    assert!(parse_text("serve:\n  from_cach: true\n").is_err());
    assert!(parse_text("serve:\n  from_cache: maybe\n").is_err());
}
