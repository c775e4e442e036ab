//! `serve --auth hub`: a gated repo in the bucket goes only to a client whose own token the
//! upstream Hub (the stand-in) admits, asked once per token and repo; a public one to anyone;
//! one the Hub does not know only to the team's tokens of `--auth tokens=FILE`. huggingface_hub
//! judges: it raises its own errors and writes nothing when refused.

use crate::common::fixtures::CONFIG;
use crate::common::hub::{HubRepo, HubStandIn};
use crate::common::serve::{hf_client, raw, PyOut, Server, DOWNLOAD};
use crate::common::spec::RepoSpec;
use crate::common::{files_under, Sandbox};

const GRANTED: &str = "hf_granted_reader_token";
const WRONG: &str = "hf_someone_not_granted";
const TEAM: &str = "hf_team_member_token";
const OWNER: &str = "hf_private_owner_token";

/// `org/gated`, `org/public`, `org/ours` and `org/private` pushed to the bucket; the Hub
/// stand-in knows the first as gated (open to [`GRANTED`]), the second as public, the third not
/// at all, the fourth as private to [`OWNER`].
fn pushed(name: &str) -> (Sandbox, Vec<RepoSpec>, HubStandIn) {
    let t = Sandbox::new(name);
    let specs: Vec<RepoSpec> = ["org/gated", "org/public", "org/ours", "org/private"]
        .iter()
        .map(|id| RepoSpec::two_revisions(id))
        .collect();
    let src = t.cache("src");
    for s in &specs {
        s.write(&src);
    }
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let hub = HubStandIn::start(
        vec![
            HubRepo::model("org/gated").gated(GRANTED),
            HubRepo::model("org/public"),
            HubRepo::model("org/private").private(OWNER),
        ],
        100,
    );
    (t, specs, hub)
}

fn start(t: &Sandbox, hub: &HubStandIn, args: &[&str]) -> Server {
    let cli = t.hfcs().env("HF_ENDPOINT", hub.url());
    Server::start_with(cli, args)
}

/// huggingface_hub's `hf_hub_download` of `repo`'s config at main into a fresh cache `name`.
fn download(t: &Sandbox, server: &Server, name: &str, repo: &str, token: Option<&str>) -> PyOut {
    let cache = t.cache(name);
    let args = [repo, "model", "main", CONFIG];
    hf_client(&server.url, &cache, (token, false), DOWNLOAD, &args)
}

/// The client was refused with `error` and nothing landed in its cache.
#[track_caller]
fn refused(t: &Sandbox, out: &PyOut, cache: &str, error: &str) {
    assert_eq!(out.code, Some(3), "{out:?}");
    assert!(out.stdout.contains(error), "{out:?}");
    let blobs: Vec<_> = files_under(&t.cache(cache))
        .into_iter()
        .filter(|f| f.contains("/blobs/") || f.contains("/snapshots/"))
        .collect();
    assert!(blobs.is_empty(), "{blobs:?}");
}

fn config_of(spec: &RepoSpec) -> &[u8] {
    &spec.revision("main").file(CONFIG).bytes
}

#[test]
fn hub_auth_serves_a_gated_repo_only_to_tokens_the_hub_admits() {
    let (t, specs, hub) = pushed("serve_auth_hub");
    let server = start(&t, &hub, &["--auth", "hub"]);
    for cache in ["granted-1", "granted-2"] {
        let out = download(&t, &server, cache, "org/gated", Some(GRANTED));
        assert_eq!(std::fs::read(out.ok()).unwrap(), config_of(&specs[0]));
    }
    let checks = |token: &str| {
        hub.seen()
            .iter()
            .filter(|s| s.target.ends_with("/auth-check"))
            .filter(|s| s.authorization.as_deref() == Some(&format!("Bearer {token}")))
            .count()
    };
    assert_eq!(checks(GRANTED), 1, "{:#?}", hub.seen());
    let out = download(&t, &server, "none", "org/gated", None);
    refused(&t, &out, "none", "GatedRepoError");
    let out = download(&t, &server, "wrong", "org/gated", Some(WRONG));
    refused(&t, &out, "wrong", "GatedRepoError");
    // The Hub's refusal is kept too: asked again, it is not asked again.
    let out = download(&t, &server, "wrong-2", "org/gated", Some(WRONG));
    refused(&t, &out, "wrong-2", "GatedRepoError");
    assert_eq!(checks(WRONG), 1);
    // A raw request without a token gets the Hub's headers and no bytes.
    let path = format!("/org/gated/resolve/main/{CONFIG}");
    let got = raw(server.addr(), "GET", &path, &[]);
    assert_eq!(got.status, 401);
    assert_eq!(got.header("x-error-code"), Some("GatedRepo"));
    assert!(got.header("x-error-message").is_some());
    assert!(!got.body.windows(3).any(|w| w == &config_of(&specs[0])[..3]));
    // Public on the Hub: anyone.
    let out = download(&t, &server, "public", "org/public", None);
    assert_eq!(std::fs::read(out.ok()).unwrap(), config_of(&specs[1]));
    // Unknown to the Hub, and no tokens file: no one.
    let out = download(&t, &server, "ours", "org/ours", Some(GRANTED));
    refused(&t, &out, "ours", "RepositoryNotFoundError");
    let out = server.stop().success();
    for secret in [GRANTED, WRONG] {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{out}"
        );
    }
    assert!(out.stderr.contains(&format!("GET {path} 401")), "{out}");
}

#[test]
fn hub_auth_with_a_tokens_file_lets_the_team_read_what_the_hub_does_not_know() {
    let (t, specs, hub) = pushed("serve_auth_hub_tokens");
    let tokens = t.path("tokens");
    std::fs::write(&tokens, format!("{TEAM}\n")).unwrap();
    let file = format!("tokens={}", tokens.display());
    let server = start(&t, &hub, &["--auth", "hub", "--auth", &file]);
    let out = download(&t, &server, "team", "org/ours", Some(TEAM));
    assert_eq!(std::fs::read(out.ok()).unwrap(), config_of(&specs[2]));
    let out = download(&t, &server, "stranger", "org/ours", Some(WRONG));
    refused(&t, &out, "stranger", "RepositoryNotFoundError");
    let out = download(&t, &server, "anon", "org/ours", None);
    refused(&t, &out, "anon", "RepositoryNotFoundError");
    // The team's token is no key to what the Hub gates.
    let out = download(&t, &server, "team-gated", "org/gated", Some(TEAM));
    refused(&t, &out, "team-gated", "GatedRepoError");
    let out = download(&t, &server, "public", "org/public", None);
    assert_eq!(std::fs::read(out.ok()).unwrap(), config_of(&specs[1]));
    let out = server.stop().success();
    for secret in [TEAM, WRONG] {
        assert!(!out.stderr.contains(secret), "{out}");
    }
    // The combined form says the same.
    let server = start(&t, &hub, &["--auth", &format!("hub,{file}")]);
    let out = download(&t, &server, "team-2", "org/ours", Some(TEAM));
    assert_eq!(std::fs::read(out.ok()).unwrap(), config_of(&specs[2]));
    server.stop().success();
}

#[test]
fn hub_auth_serves_a_private_repo_only_to_its_owners_token_not_the_servers() {
    let (t, specs, hub) = pushed("serve_auth_private");
    // The server's own token sees the private repo; its clients still need theirs.
    let cli = t
        .hfcs()
        .env("HF_ENDPOINT", hub.url())
        .env("HF_TOKEN", OWNER);
    let server = Server::start_with(cli, &["--auth", "hub"]);
    let out = download(&t, &server, "anon", "org/private", None);
    refused(&t, &out, "anon", "RepositoryNotFoundError");
    let out = download(&t, &server, "wrong", "org/private", Some(WRONG));
    refused(&t, &out, "wrong", "RepositoryNotFoundError");
    let out = download(&t, &server, "owner", "org/private", Some(OWNER));
    assert_eq!(std::fs::read(out.ok()).unwrap(), config_of(&specs[3]));
    let out = server.stop().success();
    for secret in [OWNER, WRONG] {
        assert!(!out.stderr.contains(secret), "{out}");
    }
}

#[test]
fn an_auth_serve_does_not_know_is_a_usage_error_naming_the_forms() {
    let t = Sandbox::local("serve_auth_bad");
    for bad in ["hubb", "hub,", "tokens="] {
        let out = t.bare().args(["serve", "--auth", bad]).run().code(2);
        assert!(
            out.stderr.contains("--auth hub") && out.stderr.contains("tokens=FILE"),
            "{out}"
        );
    }
}
