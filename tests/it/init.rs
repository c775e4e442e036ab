//! `init`: the commented template written owner-only into the working directory, never over an
//! existing file without `--force`, and accepted by every later command.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::common::Sandbox;

fn template() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(".hf-cache-sync.yaml.example");
    fs::read_to_string(path).expect("the example config")
}

#[track_caller]
fn mode(path: &Path) -> u32 {
    fs::metadata(path).expect("written").permissions().mode() & 0o777
}

#[test]
fn writes_the_template_readable_by_its_owner_only() {
    let t = Sandbox::local("init_writes");
    let out = t.bare().json().arg("init").run().success();
    let path = t.work().join(".hf-cache-sync.yaml");
    assert_eq!(fs::read_to_string(&path).unwrap(), template());
    assert_eq!(mode(&path), 0o600);
    let s = out.json();
    assert_eq!(s["command"], "init", "{out}");
    assert_eq!(s["overwritten"], false, "{out}");
    for key in [
        "storage:",
        "access_key:",
        "secret_key:",
        "cache:",
        "max_local_gb:",
        "team:",
        "prefix:",
        "transfer:",
        "multipart_threshold:",
    ] {
        assert!(template().contains(key), "the template lacks {key}");
    }
}

#[test]
fn refuses_to_overwrite_without_force() {
    let t = Sandbox::local("init_force");
    let path = t.write_work_file(".hf-cache-sync.yaml", "team:\n  prefix: mine\n");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

    t.bare()
        .arg("init")
        .run()
        .failure()
        .stderr_has("--force")
        .stderr_has(".hf-cache-sync.yaml");
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "team:\n  prefix: mine\n"
    );

    let out = t.bare().json().args(["init", "--force"]).run().success();
    assert_eq!(out.json()["overwritten"], true, "{out}");
    assert_eq!(fs::read_to_string(&path).unwrap(), template());
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn force_replaces_a_config_that_does_not_parse() {
    let t = Sandbox::local("init_broken");
    let path = t.write_work_file(".hf-cache-sync.yaml", "storage: [unclosed\n");
    // Other commands refuse the broken file...
    t.bare()
        .cache_dir(&t.cache("hub"))
        .arg("verify")
        .run()
        .code(2);
    // ...and init --force is how to start over.
    t.bare().args(["init", "--force"]).run().success();
    assert_eq!(fs::read_to_string(&path).unwrap(), template());
}

#[test]
fn the_written_file_is_accepted_by_later_commands() {
    let t = Sandbox::local("init_then_use");
    t.bare().arg("init").run().success();
    let cache = t.cache("hub");
    // Found in the working directory and parsed without complaint.
    t.bare().cache_dir(&cache).arg("verify").run().success();
    let out = t
        .bare()
        .json()
        .cache_dir(&cache)
        .arg("doctor")
        .run()
        .code(1);
    let report = out.json();
    let config = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Config file")
        .unwrap();
    assert_eq!(config["status"], "ok", "{out}");
    assert!(
        config["detail"]
            .as_str()
            .unwrap()
            .contains(".hf-cache-sync.yaml"),
        "{out}"
    );
}
