//! `serve` as its operators see it: `/metrics` in Prometheus's text format counting what the
//! clients were sent, a corrupt object counted as an error, the page at `/` listing what the
//! remote holds and the last hour, both behind the tokens; and the Kubernetes example, parsed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::common::fixtures::{CONFIG, WEIGHTS};
use crate::common::pushed;
use crate::common::serve::{corrupt_in_the_bucket_right_in_a_share, raw, snapshot_org_m, Server};

/// `/metrics` parsed: each sample (`name{labels}` as written) and its value, after checking
/// every metric has its `# HELP` and `# TYPE` lines and every counter ends in `_total`.
#[track_caller]
fn scrape(addr: &str, headers: &[(&str, &str)]) -> BTreeMap<String, f64> {
    let got = raw(addr, "GET", "/metrics", headers);
    assert_eq!(got.status, 200);
    assert_eq!(
        got.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = String::from_utf8(got.body).unwrap();
    let mut types = BTreeMap::new();
    let mut helped = Vec::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            types.insert(name.to_string(), kind.to_string());
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.push(rest.split_once(' ').unwrap().0.to_string());
        } else {
            let (sample, value) = line.rsplit_once(' ').expect("`sample value`");
            let name = sample.split('{').next().unwrap();
            assert!(types.contains_key(name), "{name} has no # TYPE:\n{text}");
            samples.insert(sample.to_string(), value.parse().unwrap());
        }
    }
    for (name, kind) in &types {
        assert!(helped.contains(name), "{name} has no # HELP");
        assert_eq!(kind == "counter", name.ends_with("_total"), "{name}");
    }
    samples
}

/// [`scrape`] once no request is in flight: a client may have read a whole answer an instant
/// before the server is done with it.
#[track_caller]
fn settled(addr: &str, headers: &[(&str, &str)]) -> BTreeMap<String, f64> {
    for _ in 0..100 {
        let s = scrape(addr, headers);
        if value(&s, "hfcs_serve_in_flight_requests") == 0 {
            return s;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("requests still in flight after 5 s at rest");
}

/// The value of `sample`, 0 when absent.
fn value(samples: &BTreeMap<String, f64>, sample: &str) -> u64 {
    samples.get(sample).copied().unwrap_or(0.0) as u64
}

/// The bytes column of the access-log lines whose source is `source`.
fn logged_bytes(stderr: &str, source: &str) -> u64 {
    stderr
        .lines()
        .filter(|l| l.ends_with(&format!(" {source}")))
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f[f.len() - 3].parse::<u64>().unwrap()
        })
        .sum()
}

#[test]
fn metrics_count_the_requests_and_the_bytes_served() {
    let (t, m) = pushed("serve_metrics");
    let server = Server::start(&t, &[]);
    let addr = server.addr().to_string();
    let source = format!("s3://{}/{}", t.garage().bucket, t.prefix);
    let at_rest = scrape(&addr, &[]);
    assert_eq!(value(&at_rest, "hfcs_serve_in_flight_requests"), 0);
    let weights = &m.revision("main").file(WEIGHTS).bytes;
    let got = raw(&addr, "GET", &format!("/org/m/resolve/main/{WEIGHTS}"), &[]);
    assert_eq!(got.body, *weights);
    let head = raw(&addr, "HEAD", &format!("/org/m/resolve/main/{CONFIG}"), &[]);
    assert_eq!(head.status, 200);
    let s = scrape(&addr, &[]);
    let bytes = format!("hfcs_serve_sent_bytes_total{{source=\"{source}\"}}");
    assert_eq!(value(&s, &bytes), weights.len() as u64, "{s:?}");
    let get_200 = "hfcs_serve_requests_total{method=\"GET\",code=\"200\"}";
    // The first scrape, then the file.
    assert_eq!(value(&s, get_200), 2, "{s:?}");
    assert_eq!(
        value(
            &s,
            "hfcs_serve_requests_total{method=\"HEAD\",code=\"200\"}"
        ),
        1
    );
    assert_eq!(value(&s, "hfcs_serve_in_flight_requests"), 0);
    assert_eq!(value(&s, "hfcs_serve_errors_total{kind=\"cut\"}"), 0);
    snapshot_org_m(&server.url, &t.cache("client"), None, &m);
    let s = settled(&addr, &[]);
    let sent = value(&s, &bytes);
    let upstream: u64 = s
        .iter()
        .filter(|(k, _)| k.starts_with("hfcs_serve_upstream_fetches_total"))
        .map(|(_, v)| *v as u64)
        .sum();
    assert_eq!(upstream, 0, "nothing came from a fallback: {s:?}");
    let out = server.stop().success();
    assert_eq!(
        sent,
        logged_bytes(&out.stderr, &source),
        "the bytes counted are those the access log says went out:\n{out}"
    );
    assert!(sent > weights.len() as u64);
}

#[test]
fn a_corrupt_object_counts_as_an_error_and_the_fallback_as_upstream() {
    let (t, big, fallback) = corrupt_in_the_bucket_right_in_a_share("serve_metrics_corrupt");
    let server = Server::start(&t, &["--fallback", &fallback]);
    let path = format!("/org/m/resolve/main/{WEIGHTS}");
    let first = raw(server.addr(), "GET", &path, &[]);
    assert!(first.body.len() < big.len(), "cut");
    let second = raw(server.addr(), "GET", &path, &[]);
    assert_eq!(second.body, big);
    let s = scrape(server.addr(), &[]);
    assert_eq!(
        value(&s, "hfcs_serve_errors_total{kind=\"cut\"}"),
        1,
        "{s:?}"
    );
    assert_eq!(value(&s, "hfcs_serve_errors_total{kind=\"status_5xx\"}"), 0);
    // The share as a source: its folder, under the team prefix.
    let of_share = |metric: &str| -> Vec<u64> {
        let start = format!("{metric}{{source=\"{fallback}/");
        s.iter()
            .filter(|(k, _)| k.starts_with(&start))
            .map(|(_, v)| *v as u64)
            .collect()
    };
    assert_eq!(of_share("hfcs_serve_upstream_fetches_total"), [1], "{s:?}");
    assert_eq!(of_share("hfcs_serve_sent_bytes_total"), [big.len() as u64]);
    assert_eq!(value(&s, "hfcs_serve_in_flight_requests"), 0);
    server.stop().success();
}

/// The cells of the page's row for `repo`.
fn row_of(page: &str, repo: &str) -> Vec<String> {
    let start = format!("<tr><td>{repo}</td>");
    let line = page
        .lines()
        .find(|l| l.starts_with(&start))
        .unwrap_or_else(|| panic!("no row for {repo}:\n{page}"));
    line.split("<td")
        .skip(1)
        .map(|c| c.split_once('>').unwrap().1.split("</td>").next().unwrap())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_page_shows_the_remotes_repos_and_the_last_hour_to_the_team_only() {
    let (t, m) = pushed("serve_page");
    let tokens = t.path("tokens");
    std::fs::write(&tokens, "hf_team_token\n").unwrap();
    let server = Server::start(&t, &["--auth", &format!("tokens={}", tokens.display())]);
    let addr = server.addr().to_string();
    let bearer = [("Authorization", "Bearer hf_team_token")];
    assert_eq!(raw(&addr, "GET", "/", &[]).status, 401);
    assert_eq!(raw(&addr, "GET", "/metrics", &[]).status, 401);
    assert_eq!(raw(&addr, "GET", "/healthz", &[]).status, 200);
    snapshot_org_m(&server.url, &t.cache("client"), Some("hf_team_token"), &m);
    settled(&addr, &bearer);
    let got = raw(&addr, "GET", "/", &bearer);
    assert_eq!(got.status, 200);
    assert_eq!(got.header("content-type"), Some("text/html; charset=utf-8"));
    let page = String::from_utf8(got.body).unwrap();
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    // The row is what `list --remote --manifests` says of the repo.
    let listed = t
        .hfcs()
        .args(["list", "--remote", "--manifests", "--json"])
        .run()
        .success()
        .json();
    let entry = &listed["entries"][0];
    assert_eq!(entry["repo"], "model/org/m", "{listed}");
    let row = row_of(&page, "org/m");
    assert_eq!(row[1], "model");
    assert_eq!(row[2], "2", "two revisions: {row:?}");
    assert_eq!(row[3], "main, v1.0");
    let size = entry["size"].as_u64().unwrap();
    assert!(size > m.revision("main").file(WEIGHTS).bytes.len() as u64);
    assert!(
        page.contains(&format!("data-bytes=\"{size}\"")),
        "size {size}:\n{page}"
    );
    // The 401s, the health check, the client's requests: all in the last hour.
    let requests: u64 = page
        .split("<p id=\"requests\">")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("the last hour's requests");
    let stopped = {
        let s = scrape(&addr, &bearer);
        let total: u64 = s
            .iter()
            .filter(|(k, _)| k.starts_with("hfcs_serve_requests_total"))
            .map(|(_, v)| *v as u64)
            .sum();
        // The page request itself is counted by the time of the scrape.
        assert_eq!(total, requests + 1, "{s:?}");
        server.stop().success()
    };
    let source = format!("s3://{}/{}", t.garage().bucket, t.prefix);
    assert!(requests >= 5, "{page}");
    assert!(
        row_of(&page, &source)[1].ends_with("KiB"),
        "the source's bytes in a human size:\n{page}"
    );
    assert!(page.contains(&format!(
        "data-bytes=\"{}\"",
        logged_bytes(&stopped.stderr, &source)
    )));
}

/// `examples/kubernetes.yaml`: its documents, by kind.
fn k8s_example() -> BTreeMap<String, serde_yaml::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/kubernetes.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("a YAML document"))
        .map(|v| (v["kind"].as_str().expect("a kind").to_string(), v))
        .collect()
}

fn strings(v: &serde_yaml::Value) -> Vec<String> {
    v.as_sequence()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().expect("a string").to_string())
        .collect()
}

#[test]
fn the_kubernetes_example_runs_serve_with_real_flags_and_probes_its_health() {
    let docs = k8s_example();
    let (deployment, service) = (&docs["Deployment"], &docs["Service"]);
    assert_eq!(docs.len(), 2, "a Deployment and a Service");
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() > 1);
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(strings(&c["command"]), ["hf-cache-sync"]);
    let args = strings(&c["args"]);
    assert_eq!(args[0], "serve");
    let (t, m) = pushed("serve_k8s_example");
    let help = t.bare().args(["serve", "--help"]).run().success().stdout;
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        let name = flag.split('=').next().unwrap();
        assert!(
            help.contains(&format!("  {name} ")),
            "{name} is not a flag of serve"
        );
    }
    let after = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
    let port: u64 = after("--listen")
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(c["ports"][0]["containerPort"].as_u64(), Some(port));
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"].as_u64(), Some(port), "{probe}");
    }
    assert!(c["resources"]["requests"]["memory"].is_string());
    assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(port));
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        c["ports"][0]["name"]
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    // The tokens file is in the Secret mounted where --auth reads it.
    let tokens = after("--auth");
    let tokens = tokens.strip_prefix("tokens=").unwrap();
    let mount = &c["volumeMounts"][0];
    assert_eq!(
        std::path::Path::new(tokens).parent().unwrap(),
        std::path::Path::new(mount["mountPath"].as_str().unwrap())
    );
    assert!(pod["volumes"][0]["secret"]["secretName"].is_string());
    // Run as the manifest says, the test server in place of the bucket (same variables),
    // on any port: the serve it starts answers a token holder.
    let g = crate::common::Garage::get();
    let tokens_file = t.path("tokens");
    std::fs::write(&tokens_file, "hf_k8s_token\n").unwrap();
    let mut cli = t.bare();
    for e in c["env"].as_sequence().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = match name {
            "AWS_ENDPOINT_URL_S3" => g.endpoint.clone(),
            "AWS_REGION" => g.region.clone(),
            "AWS_ACCESS_KEY_ID" => g.ro_access_key.clone(),
            "AWS_SECRET_ACCESS_KEY" => g.ro_secret_key.clone(),
            "HF_HOME" => t.path("hf").display().to_string(),
            other => panic!("{other}: a variable the test does not know"),
        };
        cli = cli.env(name, value);
    }
    let run_args: Vec<String> = args
        .iter()
        .map(|a| match a.as_str() {
            a if a.starts_with("0.0.0.0:") => "0.0.0.0:0".to_string(),
            a if a.starts_with("tokens=") => format!("tokens={}", tokens_file.display()),
            a if a.starts_with("--remote=s3://") => {
                format!("--remote=s3://{}/{}", g.bucket, t.prefix)
            }
            a => a.to_string(),
        })
        .collect();
    let mut run = cli
        .args(&run_args)
        .timeout(Duration::from_secs(120))
        .start();
    let line = run
        .wait_for_stderr("HF_ENDPOINT=", Duration::from_secs(60))
        .expect("serve says where it answers");
    let port = line
        .rsplit(':')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    assert_eq!(raw(&addr, "GET", "/healthz", &[]).status, 200);
    let got = raw(
        &addr,
        "GET",
        &format!("/org/m/resolve/main/{CONFIG}"),
        &[("Authorization", "Bearer hf_k8s_token")],
    );
    assert_eq!(got.body, m.revision("main").file(CONFIG).bytes);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(run.pid() as libc::pid_t, libc::SIGTERM) };
    run.wait().success();
}
