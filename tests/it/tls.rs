//! HTTPS endpoints behind a company CA: a TLS terminator in front of Garage with a certificate
//! from a CA made for this run. With the CA in `AWS_CA_BUNDLE` (or `SSL_CERT_FILE`) push and pull
//! work; without it, or with the wrong CA, they stop at once with an error naming the endpoint,
//! what was trusted and how to fix it.

use crate::common::tls::TlsTerminator;
use crate::common::{commit_hash, CacheBuilder, CacheView, Key, Sandbox};

fn config_for(t: &Sandbox, endpoint: &str) {
    let yaml = t
        .garage_yaml(Key::ReadWrite)
        .replace(&t.garage().endpoint, endpoint);
    assert!(yaml.contains(endpoint), "{yaml}");
    t.write_config(&yaml);
}

#[test]
fn a_company_ca_in_aws_ca_bundle_lets_push_and_pull_through() {
    let t = Sandbox::new("tls_bundle");
    let tls = TlsTerminator::start(&t.path(""));
    config_for(&t, &tls.endpoint);
    let repo_id = format!("org/{}", t.prefix);
    let commit = commit_hash(&repo_id);
    let src = t.cache("src");
    CacheBuilder::new(&src)
        .repo(&repo_id)
        .rev(&commit)
        .lfs_file("model.bin", &vec![7u8; 300_000])
        .file("config.json", repo_id.as_bytes())
        .ref_("main", &commit);

    // Without the CA: a clear, immediate error, exit 2, nothing uploaded.
    let out = t
        .hfcs()
        .cache_dir(&src)
        .arg("push")
        .run()
        .code(2)
        .stderr_has(&tls.endpoint)
        .stderr_has("certificate")
        .stderr_has("system roots only")
        .stderr_has("AWS_CA_BUNDLE");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert!(t.bucket().keys().is_empty(), "{out}");

    // The wrong CA: the error names the bundle that was tried.
    let wrong = tls.wrong_ca_pem.display().to_string();
    t.hfcs()
        .cache_dir(&src)
        .env("AWS_CA_BUNDLE", &wrong)
        .arg("push")
        .run()
        .code(2)
        .stderr_has(&format!("AWS_CA_BUNDLE={wrong}"))
        .stderr_has("does not hold the CA");

    let ca = tls.ca_pem.display().to_string();
    t.hfcs()
        .cache_dir(&src)
        .env("AWS_CA_BUNDLE", &ca)
        .arg("push")
        .run()
        .success();
    let dst = t.cache("dst");
    t.hfcs()
        .cache_dir(&dst)
        .env("AWS_CA_BUNDLE", &ca)
        .args(["pull", &repo_id])
        .run()
        .success();
    let view = CacheView::model(&dst, &repo_id);
    view.assert_file(&commit, "config.json", repo_id.as_bytes());
    view.assert_file(&commit, "model.bin", &vec![7u8; 300_000]);

    // OpenSSL's variable works the same way; doctor says what it trusts.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&t.cache("hub"))
        .env("SSL_CERT_FILE", &ca)
        .arg("doctor")
        .run()
        .success();
    assert!(
        out.stdout
            .contains(&format!("trusting system roots + SSL_CERT_FILE={ca}")),
        "{out}"
    );
}

#[test]
fn a_bundle_that_is_not_a_certificate_is_a_configuration_error() {
    let t = Sandbox::new("tls_bad_bundle");
    let tls = TlsTerminator::start(&t.path(""));
    config_for(&t, &tls.endpoint);
    let bad = t.path("not-a-ca.pem");
    std::fs::write(&bad, "hello\n").unwrap();
    let commit = commit_hash("org/tiny");
    CacheBuilder::new(&t.cache("src"))
        .repo("org/tiny")
        .rev(&commit)
        .file("config.json", b"{}")
        .ref_("main", &commit);
    t.hfcs()
        .cache_dir(&t.cache("src"))
        .env("AWS_CA_BUNDLE", &bad)
        .arg("push")
        .run()
        .code(2)
        .stderr_has("no PEM certificate")
        .stderr_has("AWS_CA_BUNDLE");
    // A plain-HTTP endpoint has no certificate to check: a bundle set for other tools is ignored.
    t.write_config(&t.garage_yaml(Key::ReadWrite));
    t.hfcs()
        .cache_dir(&t.cache("src"))
        .env("SSL_CERT_FILE", &bad)
        .arg("push")
        .run()
        .success();
}
