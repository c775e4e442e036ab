//! Credentials the way AWS users have them: no keys in the environment or the config file, but a
//! profile, an instance role (EC2) or task role (ECS) the SDK's default chain finds, as
//! hf-cache-sync 0.1 found them through boto3. Each one pushes and pulls, and doctor names it
//! without printing a secret or a session token.

use std::path::Path;

use crate::common::stand_in::{CredentialServer, CONTAINER_AUTH, ROLE, SESSION_TOKEN};
use crate::common::{commit_hash, CacheBuilder, CacheView, Cli, Sandbox};

/// A config file naming the bucket (and, unless the environment does, the endpoint and region)
/// but holding no keys.
fn keyless_config(t: &Sandbox, with_endpoint: bool) {
    let g = t.garage();
    let endpoint = if with_endpoint {
        format!("  endpoint: {}\n  region: {}\n", g.endpoint, g.region)
    } else {
        String::new()
    };
    t.write_config(&format!(
        "storage:\n{endpoint}  bucket: {}\nteam:\n  prefix: {}\n",
        g.bucket, t.prefix
    ));
}

/// Pushes a one-file repo with `cli()` and pulls it into a fresh cache with it.
#[track_caller]
fn round_trip(t: &Sandbox, cli: impl Fn() -> Cli) {
    let repo_id = format!("org/{}", t.prefix);
    let commit = commit_hash(&repo_id);
    let src = t.cache("src");
    CacheBuilder::new(&src)
        .repo(&repo_id)
        .rev(&commit)
        .file("config.json", repo_id.as_bytes())
        .ref_("main", &commit);
    let g = t.garage();
    cli()
        .cache_dir(&src)
        .arg("push")
        .run()
        .success()
        .never_prints(&g.secret_key)
        .never_prints(SESSION_TOKEN);
    let dst = t.cache("dst");
    cli()
        .cache_dir(&dst)
        .args(["pull", &repo_id])
        .run()
        .success()
        .never_prints(&g.secret_key)
        .never_prints(SESSION_TOKEN);
    CacheView::model(&dst, &repo_id).assert_file(&commit, "config.json", repo_id.as_bytes());
}

/// doctor's Credentials row, after checking every check passed and nothing secret was printed.
#[track_caller]
fn doctor_credentials(t: &Sandbox, cli: Cli) -> String {
    let g = t.garage();
    let cache = t.cache("doctor-hub");
    let out = cli
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .success()
        .never_prints(&g.secret_key)
        .never_prints(SESSION_TOKEN);
    let r = out.json();
    let checks = r["checks"].as_array().unwrap();
    for c in checks {
        assert_eq!(c["status"], "ok", "{out}");
    }
    let find = |name: &str| {
        checks
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no {name} check\n{out}"))["detail"]
            .as_str()
            .unwrap()
            .to_string()
    };
    format!("{} | {}", find("Credentials"), find("Region"))
}

fn write_file(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
}

#[test]
fn a_named_profile_supplies_keys_and_region_and_the_endpoint_comes_from_the_environment() {
    let t = Sandbox::new("aws_profile");
    keyless_config(&t, false);
    let g = t.garage();
    // The region and keys live only in the profile files; the default profile holds wrong keys,
    // so only AWS_PROFILE=team can make this work.
    write_file(
        &t.home().join(".aws/credentials"),
        &format!(
            "[default]\naws_access_key_id = GKwrong\naws_secret_access_key = wrong\n\n\
             [team]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            g.access_key, g.secret_key
        ),
    );
    write_file(
        &t.home().join(".aws/config"),
        &format!("[profile team]\nregion = {}\n", g.region),
    );
    let cli = || {
        t.hfcs()
            .env("AWS_PROFILE", "team")
            .env("AWS_ENDPOINT_URL_S3", &g.endpoint)
    };
    round_trip(&t, cli);
    let row = doctor_credentials(&t, cli());
    assert!(row.contains("source profile:team"), "{row}");
    assert!(row.contains("(from the AWS profile team)"), "{row}");

    // AWS_ENDPOINT_URL serves when the S3-specific variable is not set; AWS_REGION wins over
    // the profile's region.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&t.cache("doctor-hub"))
        .env("AWS_PROFILE", "team")
        .env("AWS_ENDPOINT_URL", &g.endpoint)
        .env("AWS_REGION", &g.region)
        .arg("doctor")
        .run()
        .success();
    let text = out.stdout.clone();
    assert!(text.contains("(from AWS_ENDPOINT_URL)"), "{out}");
    assert!(text.contains("(from AWS_REGION)"), "{out}");

    // The default profile's wrong keys are rejected: the profile really is what answers.
    t.hfcs()
        .env("AWS_ENDPOINT_URL_S3", &g.endpoint)
        .env("AWS_REGION", &g.region)
        .cache_dir(&t.cache("src"))
        .arg("push")
        .run()
        .code(2)
        .stderr_has_any(&["credentials rejected"]);
}

#[test]
fn an_instance_role_from_the_metadata_service_pushes_and_pulls() {
    let t = Sandbox::new("aws_imds");
    keyless_config(&t, true);
    let g = t.garage();
    let imds = CredentialServer::instance_metadata(&g.access_key, &g.secret_key);
    let cli = || {
        t.hfcs()
            .env("AWS_EC2_METADATA_DISABLED", "false")
            .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url())
    };
    round_trip(&t, cli);
    let row = doctor_credentials(&t, cli());
    assert!(row.contains("source instance_metadata"), "{row}");
    let seen = imds.seen();
    assert!(
        seen.contains(&"PUT /latest/api/token".to_string()),
        "{seen:?}"
    );
    assert!(
        seen.contains(&format!(
            "GET /latest/meta-data/iam/security-credentials/{ROLE}"
        )),
        "{seen:?}"
    );
}

#[test]
fn container_credentials_from_a_loopback_url_push_and_pull() {
    let t = Sandbox::new("aws_container");
    keyless_config(&t, true);
    let g = t.garage();
    let ecs = CredentialServer::container(&g.access_key, &g.secret_key);
    let cli = || {
        t.hfcs()
            .env(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                format!("{}/creds", ecs.url()),
            )
            .env("AWS_CONTAINER_AUTHORIZATION_TOKEN", CONTAINER_AUTH)
    };
    round_trip(&t, cli);
    let row = doctor_credentials(&t, cli());
    assert!(row.contains("source container"), "{row}");
    assert!(
        ecs.seen().iter().all(|r| r == "GET /creds"),
        "{:?}",
        ecs.seen()
    );
}

#[test]
fn a_session_token_goes_with_the_aws_key_pair_and_is_never_printed() {
    let t = Sandbox::new("aws_session_token");
    keyless_config(&t, true);
    let g = t.garage();
    let cli = || {
        t.hfcs()
            .env("AWS_ACCESS_KEY_ID", &g.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &g.secret_key)
            .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
    };
    round_trip(&t, cli);
    let row = doctor_credentials(&t, cli());
    assert!(
        row.contains("source aws_env") && row.contains("session token set"),
        "{row}"
    );
}

#[test]
fn with_no_credentials_anywhere_the_error_names_every_place_looked() {
    let t = Sandbox::new("aws_none");
    keyless_config(&t, true);
    let src = t.cache("src");
    let out = t
        .hfcs()
        .cache_dir(&src)
        .arg("push")
        .run()
        .code(2)
        .stderr_has("no credentials");
    for source in [
        "profile:default",
        "web_identity",
        "container",
        "instance_metadata",
    ] {
        assert!(out.stderr.contains(source), "{source}\n{out}");
    }
    assert!(out.stderr.contains("hint:"), "{out}");

    let out = t.hfcs().json().cache_dir(&src).arg("doctor").run().code(1);
    let r = out.json();
    let checks = r["checks"].as_array().unwrap();
    let by_name = |n: &str| checks.iter().find(|c| c["name"] == n).unwrap().clone();
    assert_eq!(by_name("Credentials")["status"], "failed", "{out}");
    assert!(by_name("Credentials")["hint"].is_string(), "{out}");
    assert_eq!(by_name("Bucket reachable")["status"], "skipped", "{out}");
}

#[test]
fn an_sso_profile_is_named_as_such_and_its_missing_login_explained() {
    let t = Sandbox::new("aws_sso");
    keyless_config(&t, true);
    // An SSO profile whose `aws sso login` never happened: no cached token, so nothing is asked
    // of any server, and the failure is the SSO source's own.
    write_file(
        &t.home().join(".aws/config"),
        "[profile dev]\nsso_session = corp\nsso_account_id = 123456789012\n\
         sso_role_name = ReadOnly\nregion = garage\n\n\
         [sso-session corp]\nsso_start_url = https://corp.awsapps.invalid/start\n\
         sso_region = us-east-1\n",
    );
    let out = t
        .hfcs()
        .env("AWS_PROFILE", "dev")
        .cache_dir(&t.cache("src"))
        .arg("push")
        .run()
        .code(2)
        .stderr_has("no credentials")
        .stderr_has("sso:")
        .stderr_has(
            "hint: the SSO session has not been started or has expired: run `aws sso login`",
        );
    assert!(
        !out.stderr.contains("ProviderError {"),
        "no debug dump\n{out}"
    );
    let out = t
        .hfcs()
        .json()
        .env("AWS_PROFILE", "dev")
        .cache_dir(&t.cache("src"))
        .arg("doctor")
        .run()
        .code(1);
    let text = out.stdout.clone();
    assert!(text.contains("sso:"), "{out}");
}
