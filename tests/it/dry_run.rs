//! Dry runs show what would move: a line per repo and revision, a line per blob with `-v`, and
//! the same list in `--json` (`planned`), for push, pull and pull-all.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::common::spec::RepoSpec;
use crate::common::{files_under, Sandbox};

/// Every blob a `planned` list names, and their bytes.
fn planned_blobs(summary: &Value) -> (BTreeSet<String>, u64) {
    let mut etags = BTreeSet::new();
    let mut bytes = 0;
    for rev in summary["planned"]
        .as_array()
        .unwrap_or_else(|| panic!("no planned in {summary}"))
    {
        let blobs = rev["blobs"].as_array().unwrap();
        let sum: u64 = blobs.iter().map(|b| b["size"].as_u64().unwrap()).sum();
        assert_eq!(rev["bytes"], sum, "{rev}");
        assert_eq!(rev["repo"], "model/org/m", "{rev}");
        for b in blobs {
            assert!(!b["paths"].as_array().unwrap().is_empty(), "{b}");
            assert!(
                etags.insert(b["etag"].as_str().unwrap().to_string()),
                "listed twice: {b}"
            );
        }
        bytes += sum;
    }
    (etags, bytes)
}

fn lines_starting<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

fn sandbox(name: &str) -> (Sandbox, RepoSpec, std::path::PathBuf, std::path::PathBuf) {
    let (t, remote) = Sandbox::with_dir_remote(name);
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    (t, m, src, remote)
}

#[test]
fn push_dry_run_lists_each_revision_and_with_v_each_blob() {
    let (t, m, src, remote) = sandbox("dry_run_push");
    let out = t
        .hfcs()
        .cache_dir(&src)
        .args(["push", "--dry-run"])
        .run()
        .success();
    let revisions = lines_starting(&out.stdout, "would upload model/org/m@");
    assert_eq!(revisions.len(), 2, "{out}");
    for (rev, tag) in [(m.commit("v1.0"), "(v1.0)"), (m.commit("main"), "(main)")] {
        let line = revisions.iter().find(|l| l.contains(&rev[..12])).unwrap();
        assert!(line.contains(tag), "{out}");
    }
    assert!(
        lines_starting(&out.stdout, "  ").is_empty(),
        "no blob lines without -v\n{out}"
    );

    let out = t
        .hfcs()
        .cache_dir(&src)
        .args(["push", "--dry-run", "-v"])
        .run()
        .success();
    let blob_lines = lines_starting(&out.stdout, "  ");
    assert_eq!(blob_lines.len(), 4, "each blob once\n{out}");
    for etag in m.etags() {
        assert!(
            blob_lines.iter().any(|l| l.contains(&etag)),
            "{etag}\n{out}"
        );
    }

    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["push", "--dry-run"])
        .run()
        .success();
    let (etags, bytes) = planned_blobs(&out.json());
    assert_eq!(etags, m.etags().into_iter().collect(), "{out}");
    assert_eq!(bytes, m.total_bytes(), "{out}");
    assert!(files_under(&remote).is_empty(), "a dry run moves nothing");

    // Once pushed, nothing would move and each revision says why.
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let out = t
        .hfcs()
        .json()
        .cache_dir(&src)
        .args(["push", "--dry-run"])
        .run()
        .success();
    assert_eq!(planned_blobs(&out.json()).0.len(), 0, "{out}");
    let out = t
        .hfcs()
        .cache_dir(&src)
        .args(["push", "--dry-run"])
        .run()
        .success();
    for line in lines_starting(&out.stdout, "would upload") {
        assert!(
            line.contains(": 0 blobs (0 B), 3 already on the remote"),
            "{out}"
        );
    }
}

#[test]
fn pull_and_pull_all_dry_runs_list_what_they_would_download() {
    let (t, m, src, _remote) = sandbox("dry_run_pull");
    t.hfcs().cache_dir(&src).arg("push").run().success();
    let dst = t.cache("dst");

    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--dry-run"])
        .run()
        .success();
    let (etags, bytes) = planned_blobs(&out.json());
    assert_eq!(etags, m.etags_of(&["main"]).into_iter().collect(), "{out}");
    let main_bytes: u64 = m
        .revision("main")
        .files
        .iter()
        .map(|f| f.bytes.len() as u64)
        .sum();
    assert_eq!(bytes, main_bytes, "{out}");
    let out = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--dry-run", "-v"])
        .run()
        .success();
    assert_eq!(
        lines_starting(&out.stdout, "  ").len(),
        3,
        "a line per blob\n{out}"
    );
    // What would happen, in the conditional: nothing was downloaded, and no time is reported.
    let summary = lines_starting(&out.stdout, "Would pull model/org/m@");
    assert_eq!(summary.len(), 1, "{out}");
    assert!(summary[0].contains("would download 3 blobs"), "{out}");
    assert!(!summary[0].contains("downloaded"), "{out}");
    assert!(!summary[0].contains(" in 0."), "{out}");

    let out = t
        .hfcs()
        .cache_dir(&dst)
        .args(["pull-all", "--dry-run"])
        .run()
        .success();
    let line = lines_starting(&out.stdout, "  would download model/org/m@");
    assert_eq!(line.len(), 1, "{out}");
    let total = lines_starting(&out.stdout, "Would pull 1 repo");
    assert!(total[0].contains("would download 3 blobs"), "{out}");
    assert!(!total[0].contains("downloaded"), "{out}");
    assert!(line[0].contains("(main): 3 blobs"), "{out}");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull-all", "--dry-run"])
        .run()
        .success();
    assert_eq!(planned_blobs(&out.json()).0.len(), 3, "{out}");
    assert!(files_under(&dst).is_empty(), "a dry run writes nothing");

    // What is there already is counted, not listed.
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "org/m"])
        .run()
        .success();
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .args(["pull-all", "--dry-run"])
        .run()
        .success();
    let s = out.json();
    assert_eq!(planned_blobs(&s).0.len(), 0, "{out}");
    assert_eq!(s["planned"][0]["present"], 3, "{out}");
}
