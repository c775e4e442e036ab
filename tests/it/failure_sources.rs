//! Failures name their source: rejected credentials say which keys were used and which source
//! won over which (as `doctor` does); a denied request names the object. (A full disk naming
//! the file it could not write: `resources::a_full_disk_fails_the_pull_clearly_…`.)

use crate::common::spec::RepoSpec;
use crate::common::{Key, Sandbox};

#[test]
fn rejected_credentials_name_the_source_that_won() {
    let t = Sandbox::new("source_rejected");
    let g = t.garage();
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    let bad_secret = "f".repeat(64);
    // The config file holds the good key; the B2 pair in the environment wins over it and over
    // the AWS pair, as in hf-cache-sync 0.1, and is the one rejected.
    let out = t
        .hfcs()
        .cache_dir(&src)
        .arg("push")
        .env("B2_APPLICATION_KEY_ID", "GK000000000000000000000bad")
        .env("B2_APPLICATION_KEY", &bad_secret)
        .env("AWS_ACCESS_KEY_ID", &g.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &g.secret_key)
        .run()
        .code(2)
        .never_prints(&bad_secret)
        .never_prints(&g.secret_key);
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: credentials rejected by"))
        .unwrap_or_else(|| panic!("no rejection\n{out}"));
    for says in [
        "key id GK00**** from B2_APPLICATION_KEY_ID / B2_APPLICATION_KEY (b2_env)",
        "which wins over AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (aws_env) and \
         storage.access_key / storage.secret_key (config)",
    ] {
        assert!(error.contains(says), "{says}\n{out}");
    }
    let hint = out.stderr.lines().last().unwrap();
    assert!(
        hint.starts_with(
            "hint: check B2_APPLICATION_KEY_ID / B2_APPLICATION_KEY; while they are set"
        ),
        "{out}"
    );

    // Keys from the config file alone: named as such.
    t.write_config(
        &t.garage_yaml(Key::ReadWrite)
            .replace(&g.secret_key, &bad_secret),
    );
    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .run()
        .code(2)
        .stderr_has("from storage.access_key / storage.secret_key (config)")
        .stderr_has("hint: check storage.access_key / storage.secret_key")
        .never_prints(&bad_secret);
    assert!(t.bucket().keys().is_empty());
}

#[test]
fn a_denied_write_names_the_object() {
    let t = Sandbox::new("source_denied");
    t.write_config(&t.garage_yaml(Key::ReadOnly));
    let src = t.cache("src");
    RepoSpec::two_revisions("org/m").write(&src);
    t.hfcs()
        .cache_dir(&src)
        .arg("push")
        .run()
        .code(1)
        // The first write of a push is its bucket lock, before it looks at anything.
        .stderr_has(&format!(
            "this key cannot write to bucket {} (key {}/locks/shared-",
            t.garage().bucket,
            t.prefix
        ));
}
