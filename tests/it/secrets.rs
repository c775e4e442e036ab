//! Secrets: every command, verbose and as JSON, against a working server and against failing
//! ones, never prints the secret key nor writes it to any file; `doctor` shows at most its first
//! four characters; a config or `.env` file holding a secret that others may read earns a warning.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::cli::Output;
use crate::common::{commit_hash, random_hex, CacheBuilder, Cli, Key, Sandbox};

/// Every command, with the cache it runs on (`hub` holds `org/m`; `dst` is where pulls go).
const COMMANDS: &[(&[&str], &str)] = &[
    (&["doctor"], "hub"),
    (&["push"], "hub"),
    (&["status", "--remote"], "hub"),
    (&["list", "--remote"], "hub"),
    (&["diff"], "hub"),
    (&["pull", "org/m"], "dst"),
    (&["pull-all"], "dst"),
    (&["verify", "--remote"], "hub"),
    (&["prune", "--dry-run"], "hub"),
    (&["rm", "--remote", "org/m", "--dry-run"], "hub"),
    (&["init", "--force"], "hub"),
];

/// Where the credentials come from, and how the remote is reached.
struct Setup {
    name: &'static str,
    /// The secret in use, searched for everywhere.
    secret: String,
    yaml: String,
    envs: Vec<(String, String)>,
    env_file: Option<String>,
    /// The remote works: every command must succeed.
    working: bool,
}

/// The test server's storage section without credentials, for this sandbox's prefix.
fn storage_only(t: &Sandbox) -> String {
    let g = t.garage();
    format!(
        "storage:\n  endpoint: {}\n  bucket: {}\n  region: {}\nteam:\n  prefix: {}\n",
        g.endpoint, g.bucket, g.region, t.prefix
    )
}

fn setups(t: &Sandbox, name: &str) -> Setup {
    let g = t.garage();
    // Distinctive, so any echo of it is found; and long enough to be masked to 4 characters.
    let sweep = format!("hfcsSweepSecret{}", random_hex(24));
    let rw = t.garage_yaml(Key::ReadWrite);
    let b2_env = |secret: &str| {
        vec![
            ("B2_APPLICATION_KEY_ID".to_string(), g.access_key.clone()),
            ("B2_APPLICATION_KEY".to_string(), secret.to_string()),
        ]
    };
    match name {
        "config file" => Setup {
            name: "config file",
            secret: g.secret_key.clone(),
            yaml: rw,
            envs: vec![],
            env_file: None,
            working: true,
        },
        "B2 environment" => Setup {
            name: "B2 environment",
            secret: g.secret_key.clone(),
            yaml: storage_only(t),
            envs: b2_env(&g.secret_key),
            env_file: None,
            working: true,
        },
        ".env file" => Setup {
            name: ".env file",
            secret: g.secret_key.clone(),
            yaml: storage_only(t),
            envs: vec![],
            env_file: Some(format!(
                "B2_APPLICATION_KEY_ID={}\nB2_APPLICATION_KEY={}\n",
                g.access_key, g.secret_key
            )),
            working: true,
        },
        "wrong secret" => Setup {
            name: "wrong secret",
            yaml: rw.replace(&g.secret_key, &sweep),
            secret: sweep,
            envs: vec![],
            env_file: None,
            working: false,
        },
        "wrong secret in B2 environment" => Setup {
            name: "wrong secret in B2 environment",
            yaml: storage_only(t),
            envs: b2_env(&sweep),
            secret: sweep,
            env_file: None,
            working: false,
        },
        "unreachable endpoint" => {
            // A port nobody listens on: bound, then released.
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            Setup {
                name: "unreachable endpoint",
                yaml: rw
                    .replace(&g.endpoint, &format!("http://127.0.0.1:{port}"))
                    .replace(&g.secret_key, &sweep),
                secret: sweep,
                envs: vec![],
                env_file: None,
                working: false,
            }
        }
        "missing bucket" => Setup {
            name: "missing bucket",
            secret: g.secret_key.clone(),
            yaml: rw.replace(
                &format!("bucket: {}", g.bucket),
                &format!("bucket: hfcs-missing-{}", random_hex(8)),
            ),
            envs: vec![],
            env_file: None,
            working: false,
        },
        other => panic!("unknown setup {other}"),
    }
}

const SETUPS: &[&str] = &[
    "config file",
    "B2 environment",
    ".env file",
    "wrong secret",
    "wrong secret in B2 environment",
    "unreachable endpoint",
    "missing bucket",
];

/// Runs every command twice (`-v`, then `-v --json`) under one setup in its own sandbox, and
/// checks outputs, files and bucket. Returns (invocations, files checked).
fn sweep(name: &str) -> (usize, usize) {
    let t = Sandbox::new(&format!("secrets_{}", name.replace([' ', '.'], "_")));
    let s = setups(&t, name);
    t.write_config(&s.yaml);
    if let Some(body) = &s.env_file {
        t.write_work_file(".env", body);
    }
    let hub = t.cache("hub");
    let dst = t.cache("dst");
    let commit = commit_hash("secrets");
    CacheBuilder::new(&hub)
        .repo("org/m")
        .rev(&commit)
        .file("config.json", b"{\"secrets\": 1}\n")
        .lfs_file("model.safetensors", b"weights, never a secret")
        .ref_("main", &commit);
    // init writes into its working dir: a folder of its own, so no other command finds the file.
    let init_dir = t.cache("init");

    let cli = |args: &[&str], cache: &str, json: bool| -> Cli {
        let mut cli = t
            .hfcs()
            .global("-v")
            .cache_dir(if cache == "hub" { &hub } else { &dst })
            .args(args);
        if json {
            cli = cli.json();
        }
        if args[0] == "init" {
            cli = cli.current_dir(&init_dir);
        }
        for (k, v) in &s.envs {
            cli = cli.env(k, v);
        }
        cli
    };
    let check = |args: &[&str], out: Output| {
        let out = out.no_panic().never_prints(&s.secret);
        let local_only = matches!(args[0], "init" | "prune");
        if s.working || local_only {
            assert_eq!(out.code, Some(0), "{}: expected success\n{out}", s.name);
        } else {
            assert!(
                out.code.is_some_and(|c| c != 0),
                "{}: expected a failure\n{out}",
                s.name
            );
        }
        if args[0] == "doctor" {
            // Masked: at most the first four characters, never five.
            assert!(
                !format!("{}{}", out.stdout, out.stderr).contains(&s.secret[..5]),
                "{}: doctor shows more than 4 characters of the secret\n{out}",
                s.name
            );
            if s.working {
                assert!(
                    out.stdout.contains(&format!("{}****", &s.secret[..4])),
                    "{out}"
                );
            }
        }
    };

    let mut runs = 0;
    if s.working {
        // In order: the remote must hold org/m before it is pulled.
        for (args, cache) in COMMANDS {
            for json in [false, true] {
                check(args, cli(args, cache, json).run());
                runs += 1;
            }
        }
    } else {
        // Failing remotes retry with backoff: run the invocations side by side.
        let all: Vec<(&[&str], &str, bool)> = COMMANDS
            .iter()
            .flat_map(|(a, c)| [(*a, *c, false), (*a, *c, true)])
            .collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = all
                .iter()
                .map(|(args, cache, json)| {
                    let cli = cli(args, cache, *json);
                    scope.spawn(move || (*args, cli.run()))
                })
                .collect();
            for h in handles {
                let (args, out) = h.join().expect("sweep thread");
                check(args, out);
                runs += 1;
            }
        });
    }

    // No file anywhere in the sandbox holds the secret, but the ones this test wrote it into.
    let written_by_test = [t.config_path(), t.work().join(".env")];
    let mut files = 0;
    for rel in crate::common::files_under(&t.path("")) {
        let path = t.path(&rel);
        if written_by_test.contains(&path) {
            continue;
        }
        files += 1;
        let Ok(bytes) = fs::read(&path) else { continue };
        assert!(
            !contains(&bytes, s.secret.as_bytes()),
            "{}: {} holds the secret",
            s.name,
            path.display()
        );
    }
    // Nor does any object this sandbox's commands wrote.
    let bucket = t.bucket();
    for key in bucket.keys() {
        let body = bucket.get(&key).unwrap_or_default();
        assert!(
            !contains(&body, s.secret.as_bytes()),
            "{}: {key} holds the secret",
            s.name
        );
    }
    (runs, files)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn no_command_ever_prints_or_writes_the_secret_key() {
    let results: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = SETUPS
            .iter()
            .map(|name| scope.spawn(move || sweep(name)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("sweep"))
            .collect()
    });
    let runs: usize = results.iter().map(|r| r.0).sum();
    let files: usize = results.iter().map(|r| r.1).sum();
    assert_eq!(runs, SETUPS.len() * COMMANDS.len() * 2);
    println!(
        "secret sweep: {runs} invocations ({} commands x verbose/json x {} setups), {files} files checked",
        COMMANDS.len(),
        SETUPS.len()
    );
}

// ---- files holding a secret must be readable by their owner only ----

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

/// The warnings `status` prints about files holding a secret.
fn exposure_warnings(t: &Sandbox, cli: Cli) -> Vec<String> {
    let out = cli.cache_dir(&t.cache("hub")).arg("status").run().success();
    out.stderr
        .lines()
        .filter(|l| l.contains("readable by group/others"))
        .map(String::from)
        .collect()
}

#[test]
fn a_file_holding_a_secret_readable_by_others_is_warned_about() {
    let t = Sandbox::local("secrets_file_modes");
    let secret = "local-secret-0123456789abcdef";
    let config = t.write_config(&format!(
        "storage:\n  bucket: b\n  access_key: id\n  secret_key: {secret}\n"
    ));

    chmod(&config, 0o644);
    let warned = exposure_warnings(&t, t.hfcs());
    let path = config.display().to_string();
    assert_eq!(
        warned,
        [format!(
            "warning: {path} holds a secret key and is readable by group/others; run: chmod 600 {path}"
        )]
    );
    assert!(!warned[0].contains(secret));
    chmod(&config, 0o640);
    assert_eq!(exposure_warnings(&t, t.hfcs()).len(), 1, "group-readable");
    chmod(&config, 0o600);
    assert_eq!(exposure_warnings(&t, t.hfcs()), Vec::<String>::new());
    // JSON output stays one document on stdout; the warning is on stderr.
    chmod(&config, 0o644);
    let out = t
        .hfcs()
        .json()
        .cache_dir(&t.cache("hub"))
        .arg("status")
        .run()
        .success();
    out.json();
    assert!(out.stderr.contains("chmod 600"), "{out}");

    // Readable, but nothing secret in it.
    t.write_config("storage:\n  bucket: b\n");
    chmod(&t.config_path(), 0o644);
    assert_eq!(exposure_warnings(&t, t.hfcs()), Vec::<String>::new());

    // The same rule for `.env`.
    let env = t.write_work_file(
        ".env",
        &format!("B2_APPLICATION_KEY_ID=id\nB2_APPLICATION_KEY={secret}\n"),
    );
    chmod(&env, 0o644);
    let warned = exposure_warnings(&t, t.bare());
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(warned[0].contains(&env.display().to_string()), "{warned:?}");
    chmod(&env, 0o600);
    assert_eq!(exposure_warnings(&t, t.bare()), Vec::<String>::new());
    let env = t.write_work_file(".env", "AWS_SECRET_ACCESS_KEY=x\n");
    chmod(&env, 0o604);
    assert_eq!(
        exposure_warnings(&t, t.bare()).len(),
        1,
        "AWS secret, readable by others"
    );
    t.write_work_file(".env", "B2_BUCKET=b\n");
    chmod(&env, 0o644);
    assert_eq!(exposure_warnings(&t, t.bare()), Vec::<String>::new());
}
