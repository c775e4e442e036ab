//! `list`: repos and revisions with the sizes and revisions huggingface_hub sees, filtered and
//! sorted like `hf cache ls`, as a table, JSON or CSV, and the remote from key names or manifests.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::common::mixed::{self, days_ago};
use crate::common::spec::RepoSpec;
use crate::common::{
    blob_key, check_cache, commit_hash, git_sha1_hex, manifest_key, ref_key, Cli, Sandbox,
};

/// `list -q ARGS` run by `cli`: the identifiers it prints.
#[track_caller]
fn ids(cli: Cli, args: &[&str]) -> Vec<String> {
    let out = cli.args(["list", "-q"]).args(args).run().success();
    // Nothing else on stderr, unless the filters matched nothing, which is said.
    let said_empty = out.stdout.is_empty()
        && out.stderr.starts_with("no ")
        && out.stderr.trim_end().ends_with("match the filters")
        && out.stderr.lines().count() == 1;
    assert!(out.stderr.is_empty() || said_empty, "{out}");
    out.stdout.lines().map(String::from).collect()
}

fn local(t: &Sandbox, cache: &Path) -> Cli {
    t.bare().cache_dir(cache)
}

/// The entry whose `id` is `id` in a `list --json` document.
#[track_caller]
fn entry<'a>(doc: &'a Value, id: &str) -> &'a Value {
    doc["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id)
        .unwrap_or_else(|| panic!("no entry {id} in {doc}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

fn epoch_seconds(rfc3339: &Value) -> u64 {
    let t = humantime::parse_rfc3339(rfc3339.as_str().unwrap()).unwrap();
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// org/m last accessed 40 days ago, modified 60; org/d accessed 2 days ago, modified 3; other/n
/// just now.
fn aged(cache: &Path, [m, d, n]: &[RepoSpec; 3]) {
    mixed::age(cache, m, days_ago(40), days_ago(60));
    mixed::age(cache, d, days_ago(2), days_ago(3));
    mixed::age(cache, n, SystemTime::now(), SystemTime::now());
}

#[test]
fn sizes_revisions_and_refs_match_scan_cache_dir() {
    let t = Sandbox::local("list_matches_hf");
    let cache = t.cache("hub");
    let [org_m, org_d, _] = mixed::write(&cache);
    let hf = check_cache(&cache, &[]);

    let out = local(&t, &cache).json().arg("list").run().success();
    let repos = out.json();
    assert_eq!(repos["command"], "list", "{out}");
    assert_eq!(repos["source"], "local", "{out}");
    assert_eq!(repos["kind"], "repos", "{out}");
    let out = local(&t, &cache)
        .json()
        .args(["list", "--revisions"])
        .run()
        .success();
    let revisions = out.json();
    assert_eq!(revisions["kind"], "revisions", "{out}");

    let hf_repos = hf["repos"].as_array().unwrap();
    assert_eq!(repos["count"], hf_repos.len(), "{repos}");
    let mut hf_revision_count = 0;
    for hf_repo in hf_repos {
        let id = format!(
            "{}/{}",
            hf_repo["repo_type"].as_str().unwrap(),
            hf_repo["repo_id"].as_str().unwrap()
        );
        let e = entry(&repos, &id);
        assert_eq!(e["repo_type"], hf_repo["repo_type"], "{id}");
        assert_eq!(e["repo_id"], hf_repo["repo_id"], "{id}");
        assert_eq!(e["size"], hf_repo["size_on_disk"], "{id}: {e}\n{hf_repo}");
        let hf_revs = hf_repo["revisions"].as_array().unwrap();
        assert_eq!(e["revisions"], hf_revs.len(), "{id}");
        let hf_refs: BTreeSet<String> = hf_revs.iter().flat_map(|r| strings(&r["refs"])).collect();
        assert_eq!(
            strings(&e["refs"]),
            hf_refs.into_iter().collect::<Vec<_>>(),
            "{id}"
        );
        assert_eq!(
            epoch_seconds(&e["last_accessed"]),
            hf_repo["last_accessed"].as_f64().unwrap() as u64,
            "{id}"
        );
        for hf_rev in hf_revs {
            hf_revision_count += 1;
            let commit = hf_rev["commit_hash"].as_str().unwrap();
            let r = entry(&revisions, commit);
            assert_eq!(r["repo"], id.as_str(), "{r}");
            assert_eq!(r["revision"], commit, "{r}");
            assert_eq!(
                r["size"], hf_rev["size_on_disk"],
                "{id}@{commit}: {r}\n{hf_rev}"
            );
            assert_eq!(r["files"], hf_rev["nb_files"], "{r}");
            assert_eq!(r["refs"], hf_rev["refs"], "{r}");
            assert_eq!(r["detached"], hf_rev["refs"] == json!([]), "{r}");
            assert_eq!(
                epoch_seconds(&r["last_modified"]),
                hf_rev["last_modified"].as_f64().unwrap() as u64,
                "{r}"
            );
        }
    }
    assert_eq!(revisions["count"], hf_revision_count, "{revisions}");
    assert_eq!(entry(&revisions, org_m.detached())["detached"], true);
    assert_eq!(
        strings(&entry(&revisions, org_d.commit("pr/1"))["refs"]),
        ["pr/1"]
    );

    // Totals count each file once; blobs no revision uses are not listed.
    assert_eq!(repos["total_size"], hf["size_on_disk"], "{repos}");
    assert_eq!(revisions["total_size"], hf["size_on_disk"], "{revisions}");
    assert_eq!(repos["warnings"], json!([]));
    assert_eq!(
        entry(&repos, "model/org/m")["path"],
        org_m.dir(&cache).to_str().unwrap()
    );
}

#[test]
fn filters_select_by_age_size_type_and_refs_and_combine() {
    let t = Sandbox::local("list_filters");
    let cache = t.cache("hub");
    let c = mixed::write(&cache);
    aged(&cache, &c);
    let [org_m, org_d, other_n] = &c;
    let m = "model/org/m";
    let d = "dataset/org/d";
    let n = "model/other/n";

    let cases: &[(&[&str], &[&str])] = &[
        (&[], &[d, m, n]),
        // accessed>30d: last accessed more than 30 days ago.
        (&["--filter", "accessed>30d"], &[m]),
        (&["--filter", "accessed<7d"], &[d, n]),
        (&["--filter", "modified>=30d"], &[m]),
        (&["--filter", "modified<1h"], &[n]),
        (&["--filter", "type=dataset"], &[d]),
        (&["--filter", "type=model"], &[m, n]),
        (&["--filter", "type!=model"], &[d]),
        (&["--filter", "refs=main"], &[d, m, n]),
        (&["--filter", "refs=pr/1"], &[d]),
        (&["--filter", "refs=v1.0"], &[m]),
        (&["--filter", "size>100KB"], &[m]),
        (&["--filter", "size<=100KiB"], &[d, n]),
        // Several filters: all must hold.
        (&["--filter", "size<100KB", "--filter", "type=model"], &[n]),
        (&["--filter", "accessed<7d", "--filter", "refs=pr/1"], &[d]),
        (
            &["--filter", "accessed>30d", "--filter", "type=dataset"],
            &[],
        ),
    ];
    for (args, expected) in cases {
        assert_eq!(ids(local(&t, &cache), args), *expected, "list -q {args:?}");
    }

    // Per revision: sizes, refs and detached revisions are the revision's own.
    assert_eq!(
        ids(local(&t, &cache), &["--revisions", "--filter", "refs=main"]),
        [
            org_d.commit("main"),
            org_m.commit("main"),
            other_n.commit("main")
        ]
    );
    let mut weighty_not_main = vec![org_m.commit("v1.0"), org_m.detached()];
    weighty_not_main.sort();
    assert_eq!(
        ids(
            local(&t, &cache),
            &[
                "--revisions",
                "--filter",
                "size>100KB",
                "--filter",
                "refs!=main"
            ]
        ),
        weighty_not_main
    );
}

#[test]
fn sort_keys_in_both_directions() {
    let t = Sandbox::local("list_sort");
    let cache = t.cache("hub");
    aged(&cache, &mixed::write(&cache));
    let m = "model/org/m";
    let d = "dataset/org/d";
    let n = "model/other/n";

    // As `hf cache ls`: sizes, times and counts descend unless told, names ascend.
    let cases: &[(&[&str], &[&str])] = &[
        (&["--sort", "name"], &[d, m, n]),
        (&["--sort", "-name"], &[n, m, d]),
        (&["--sort", "name:desc"], &[n, m, d]),
        (&["--sort", "size"], &[m, d, n]),
        (&["--sort", "size:asc"], &[n, d, m]),
        (&["--sort", "-size"], &[m, d, n]),
        (&["--sort=-size"], &[m, d, n]),
        (&["--sort", "size:desc"], &[m, d, n]),
        (&["--sort", "accessed"], &[n, d, m]),
        (&["--sort", "accessed:asc"], &[m, d, n]),
        (&["--sort", "-accessed"], &[n, d, m]),
        (&["--sort", "modified"], &[n, d, m]),
        (&["--sort", "modified:asc"], &[m, d, n]),
        (&["--sort", "-revisions"], &[m, d, n]),
        (&["--sort", "revisions"], &[m, d, n]),
        (&["--sort", "-size", "--filter", "type=model"], &[m, n]),
    ];
    for (args, expected) in cases {
        assert_eq!(ids(local(&t, &cache), args), *expected, "list -q {args:?}");
    }
}

#[test]
fn hf_cache_ls_flags_and_sizes_side_by_side() {
    let t = Sandbox::local("list_hf_parity");
    let cache = t.cache("hub");
    aged(&cache, &mixed::write(&cache));
    let (m, d, n) = ("model/org/m", "dataset/org/d", "model/other/n");

    // -f is --filter; --limit keeps the first rows after sorting.
    assert_eq!(
        ids(local(&t, &cache), &["-f", "type=model"]),
        ids(local(&t, &cache), &["--filter", "type=model"])
    );
    assert_eq!(
        ids(local(&t, &cache), &["--sort", "size", "--limit", "2"]),
        [m, d]
    );
    assert_eq!(
        ids(local(&t, &cache), &["--limit", "0"]),
        Vec::<String>::new()
    );

    // Each size reads as `hf cache ls` prints it.
    let out = local(&t, &cache)
        .args(["list", "--no-truncate"])
        .run()
        .success();
    let hf = crate::common::hf_cache_ls(&cache, &[]);
    for row in hf.as_array().unwrap() {
        let id = row["id"].as_str().unwrap();
        let ours = out
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("{id} not listed\n{out}"));
        let size = ours.split_whitespace().nth(1).unwrap();
        assert_eq!(
            size,
            row["size"].as_str().unwrap(),
            "{id}: {ours}\nhf: {hf}"
        );
    }
    assert!(hf.as_array().unwrap().len() == 3, "{hf}");

    // Cells are cut to fit the terminal's width, unless --no-truncate.
    let narrow = |args: &[&str]| {
        local(&t, &cache)
            .env("COLUMNS", "80")
            .args(["list", "--revisions"])
            .args(args)
            .run()
            .success()
    };
    let cut = narrow(&[]);
    assert!(cut.stdout.lines().all(|l| l.chars().count() <= 80), "{cut}");
    assert!(cut.stdout.contains("..."), "{cut}");
    assert!(
        cut.stderr.contains("hint: ") && cut.stderr.contains("--no-truncate"),
        "{cut}"
    );
    let whole = narrow(&["--no-truncate"]);
    assert!(!whole.stdout.contains("..."), "{whole}");
    assert!(
        whole.stdout.contains(n) && whole.stdout.contains(d),
        "{whole}"
    );
}

#[test]
fn quiet_prints_identifiers_rm_accepts() {
    let t = Sandbox::local("list_quiet");
    let cache = t.cache("hub");
    let [org_m, org_d, other_n] = mixed::write(&cache);

    assert_eq!(
        ids(local(&t, &cache), &[]),
        ["dataset/org/d", "model/org/m", "model/other/n"]
    );
    // By repo, then by commit.
    let mut commits = Vec::new();
    for mut group in [
        vec![org_d.commit("main"), org_d.commit("pr/1")],
        vec![org_m.commit("v1.0"), org_m.commit("main"), org_m.detached()],
        vec![other_n.commit("main")],
    ] {
        group.sort();
        commits.extend(group);
    }
    assert_eq!(ids(local(&t, &cache), &["--revisions"]), commits);
}

#[test]
fn csv_has_a_header_and_one_record_per_row() {
    let t = Sandbox::local("list_csv");
    let cache = t.cache("hub");
    let [org_m, org_d, _] = mixed::write(&cache);

    let out = local(&t, &cache)
        .args(["list", "--format", "csv"])
        .run()
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0], "id,repo_type,repo_id,size,revisions,last_accessed,last_modified,refs,path",
        "{out}"
    );
    assert_eq!(lines.len(), 4, "{out}");
    let m: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(
        &m[..5],
        [
            "model/org/m",
            "model",
            "org/m",
            &org_m.total_bytes().to_string(),
            "3"
        ]
    );
    assert!(
        m[5].ends_with('Z') && m[6].ends_with('Z'),
        "RFC 3339 times: {m:?}"
    );
    assert_eq!(m[7], "main v1.0");
    assert_eq!(m[8], org_m.dir(&cache).to_str().unwrap());

    let out = local(&t, &cache)
        .args([
            "list",
            "--revisions",
            "--format",
            "csv",
            "--filter",
            "type=dataset",
        ])
        .run()
        .success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "repo,revision,repo_type,repo_id,size,files,last_accessed,last_modified,refs,path",
        "{out}"
    );
    assert_eq!(lines.len(), 3, "{out}");
    let pr = org_d.commit("pr/1");
    let f = lines
        .iter()
        .find(|l| l.contains(pr))
        .unwrap_or_else(|| panic!("no record for revision f\n{out}"));
    assert!(
        f.starts_with(&format!("dataset/org/d,{pr},dataset,org/d,")),
        "{out}"
    );
    assert!(f.contains(",pr/1,"), "{out}");
}

#[test]
fn table_aligns_columns_with_human_sizes_and_relative_times() {
    let t = Sandbox::local("list_table");
    let cache = t.cache("hub");
    let c = mixed::write(&cache);
    aged(&cache, &c);

    let out = local(&t, &cache).arg("list").run().success();
    let lines: Vec<&str> = out.stdout.lines().collect();
    let header = lines[0];
    assert!(header.starts_with("ID "), "{out}");
    let accessed_col = header.find("LAST ACCESSED").expect("LAST ACCESSED column");
    let size_end = header.find("SIZE").unwrap() + "SIZE".len();
    let rows = &lines[1..4];
    for (row, (id, accessed, modified)) in rows.iter().zip([
        ("dataset/org/d", "2 days ago", "3 days ago"),
        ("model/org/m", "5 weeks ago", "2 months ago"),
        ("model/other/n", "just now", "just now"),
    ]) {
        assert!(row.starts_with(id), "{out}");
        assert_eq!(row.find(accessed), Some(accessed_col), "aligned\n{out}");
        assert!(row.contains(modified), "{out}");
        // Sizes are right-aligned under their header, as `hf cache ls` prints them.
        let size_cell = row[..size_end].trim_end();
        assert_eq!(size_cell.len(), size_end, "size column\n{out}");
        assert!(size_cell.ends_with('K'), "{out}");
    }
    assert!(rows[1].ends_with("main, v1.0"), "{out}");
    assert_eq!(lines[4], "", "{out}");
    assert!(lines[5].starts_with("3 repos, "), "{out}");
    assert!(lines[5].ends_with('K'), "{out}");

    let out = local(&t, &cache)
        .args([
            "list",
            "--revisions",
            "--filter",
            "type=model",
            "--sort",
            "-size",
        ])
        .run()
        .success();
    assert!(out.stdout.starts_with("REPO "), "{out}");
    assert!(out.stdout.contains("(detached)"), "{out}");
    assert!(
        out.stdout.contains(c[0].detached()),
        "full commit hashes\n{out}"
    );
    assert!(out.stdout.contains("4 revisions of 2 repos"), "{out}");
}

#[test]
fn json_flag_and_format_json_print_the_same_document() {
    let t = Sandbox::local("list_json");
    let cache = t.cache("hub");
    mixed::write(&cache);

    let a = local(&t, &cache).json().arg("list").run().success();
    let b = local(&t, &cache)
        .args(["list", "--format", "json"])
        .run()
        .success();
    // --json wins over any --format and over -q: one JSON document.
    let c = local(&t, &cache)
        .json()
        .args(["list", "--format", "csv", "-q"])
        .run()
        .success();
    let strip_times = |mut v: Value| {
        for e in v["entries"].as_array_mut().unwrap() {
            e["last_accessed"] = Value::Null;
        }
        v
    };
    assert_eq!(strip_times(a.json()), strip_times(b.json()));
    assert_eq!(strip_times(a.json()), strip_times(c.json()));
}

#[test]
fn bad_filters_and_sort_keys_are_usage_errors_naming_them() {
    let t = Sandbox::local("list_bad_args");
    let cache = t.cache("hub");
    mixed::write(&cache);

    for expr in [
        "size>lots",
        "colour=red",
        "type>model",
        "type=widget",
        "accessed>soon",
        "size",
    ] {
        let out = local(&t, &cache)
            .args(["list", "--filter", expr])
            .run()
            .code(2)
            .stderr_has(expr)
            .stderr_has("hint: ");
        assert_eq!(out.stdout, "", "{out}");
    }
    local(&t, &cache)
        .args(["list", "--sort", "weight"])
        .run()
        .code(2)
        .stderr_has("\"weight\"")
        .stderr_has("hint: ");
    local(&t, &cache)
        .args(["list", "--revisions", "--sort", "revisions"])
        .run()
        .code(2);
    // The remote keeps no times: a time filter on it is refused before anything is contacted.
    local(&t, &cache)
        .args(["list", "--remote", "--filter", "accessed>30d"])
        .run()
        .code(2)
        .stderr_has("accessed>30d");
}

#[test]
fn broken_links_and_a_missing_cache_are_reported_not_fatal() {
    let t = Sandbox::local("list_broken");
    let cache = t.cache("hub");
    mixed::write(&cache);
    mixed::add_broken_link(&cache);

    let out = local(&t, &cache).json().arg("list").run().success();
    let doc = out.json();
    assert_eq!(doc["count"], 4, "{out}");
    assert_eq!(
        entry(&doc, "model/org/broken")["size"],
        5,
        "ok.txt only\n{out}"
    );
    assert!(
        out.stderr.contains("warning:") && out.stderr.contains("gone.bin"),
        "{out}"
    );
    assert_eq!(doc["warnings"].as_array().unwrap().len(), 1, "{out}");

    let nowhere = t.path("nowhere");
    let out = local(&t, &nowhere).arg("list").run().success();
    assert_eq!(out.stdout, "", "{out}");
    assert!(out.stderr.contains("does not exist"), "{out}");
    let out = local(&t, &nowhere).json().arg("list").run().success();
    assert_eq!(out.json()["count"], 0, "{out}");
    assert_eq!(out.json()["entries"], json!([]), "{out}");
    let out = local(&t, &nowhere)
        .args(["list", "--format", "csv"])
        .run()
        .success();
    assert_eq!(out.stdout.lines().count(), 1, "just the header\n{out}");
}

#[test]
fn remote_is_listed_from_key_names_and_from_manifests_on_request() {
    let t = Sandbox::new("list_remote");
    let cache = t.cache("hub");
    let [org_m, org_d, other_n] = mixed::write(&cache);
    t.hfcs()
        .json()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    // An unreadable manifest: only a run that reads manifests can notice it.
    let bucket = t.bucket();
    let junk = manifest_key("org/junk", &commit_hash("junk"));
    bucket.put(&junk, "not json");

    // By default: one LIST each of manifests/ and refs/, ids decoded from the keys, and one
    // manifest a repo read for its type. The junk one leaves its repo untyped, unreported.
    let out = t.hfcs().json().args(["list", "--remote"]).run().success();
    let doc = out.json();
    assert_eq!(doc["source"], "remote", "{out}");
    assert_eq!(doc["manifests_read"], false, "{out}");
    assert_eq!(doc["total_size"], Value::Null, "{out}");
    assert_eq!(
        doc["warnings"],
        json!([]),
        "the junk manifest is not read\n{out}"
    );
    let m = entry(&doc, "model/org/m");
    assert_eq!(m["repo_type"], "model", "{m}");
    assert_eq!(m["size"], Value::Null, "{m}");
    assert_eq!(m["revisions"], 3, "{m}");
    assert_eq!(strings(&m["refs"]), ["main", "v1.0"]);
    assert_eq!(
        strings(&entry(&doc, "dataset/org/d")["refs"]),
        ["main", "pr/1"]
    );
    assert_eq!(
        ids(t.hfcs(), &["--remote"]),
        ["dataset/org/d", "model/org/m", "model/other/n", "org/junk"]
    );

    // With --manifests: exact ids and types, sizes, and which revision each ref names.
    let out = t
        .hfcs()
        .json()
        .args(["list", "--remote", "--manifests"])
        .run()
        .success();
    let doc = out.json();
    assert_eq!(doc["manifests_read"], true, "{out}");
    assert_eq!(doc["count"], 3, "the junk manifest is left out\n{out}");
    assert!(
        doc["warnings"][0].as_str().unwrap().contains(&junk),
        "{out}"
    );
    assert!(out.stderr.contains(&junk), "{out}");
    bucket.delete(&junk);
    let sizes = [&org_m, &org_d, &other_n].map(RepoSpec::total_bytes);
    assert_eq!(entry(&doc, "model/org/m")["size"], sizes[0], "{out}");
    assert_eq!(entry(&doc, "dataset/org/d")["size"], sizes[1], "{out}");
    assert_eq!(entry(&doc, "model/other/n")["size"], sizes[2], "{out}");
    assert_eq!(doc["total_size"], sizes.iter().sum::<u64>(), "{out}");

    // Revisions match the local ones: sizes, file counts, refs.
    let remote = t
        .hfcs()
        .json()
        .args(["list", "--remote", "--manifests", "--revisions"])
        .run()
        .success()
        .json();
    let local_doc = local(&t, &cache)
        .json()
        .args(["list", "--revisions"])
        .run()
        .success()
        .json();
    assert_eq!(remote["count"], local_doc["count"], "{remote}");
    for l in local_doc["entries"].as_array().unwrap() {
        let r = entry(&remote, l["id"].as_str().unwrap());
        for field in ["repo", "repo_type", "size", "files", "refs", "detached"] {
            assert_eq!(r[field], l[field], "{field} of {}\n{r}\n{l}", l["id"]);
        }
    }

    // A filter that needs types reads the manifests by itself.
    assert_eq!(
        ids(t.hfcs(), &["--remote", "--filter", "type=dataset"]),
        ["dataset/org/d"]
    );
    assert_eq!(
        ids(
            t.hfcs(),
            &["--remote", "--revisions", "--filter", "refs=pr/1"]
        ),
        [org_d.commit("pr/1")]
    );

    let out = t.hfcs().args(["list", "--remote"]).run().success();
    assert!(out.stdout.starts_with("ID "), "{out}");
    assert!(
        out.stderr.contains("--manifests"),
        "says how to get exact ids\n{out}"
    );
}

#[test]
fn ambiguous_key_names_are_settled_by_manifest_bodies() {
    let t = Sandbox::new("list_ambiguous");
    let bucket = t.bucket();
    // `a/b__c` and `a__b/c` share the key part `a__b__c`.
    let body = b"shared bytes\n";
    let etag = git_sha1_hex(body);
    bucket.put(&blob_key(&etag), body.to_vec());
    let (c1, c2) = (commit_hash("one"), commit_hash("two"));
    let manifest = |repo: &str, repo_type: &str, commit: &str| {
        json!({"repo": repo, "revision": commit, "repo_type": repo_type,
               "files": [{"path": "f.txt", "blob": etag, "size": body.len()}]})
        .to_string()
    };
    bucket.put(
        &manifest_key("a/b__c", &c1),
        manifest("a/b__c", "model", &c1),
    );
    bucket.put(
        &manifest_key("a__b/c", &c2),
        manifest("a__b/c", "dataset", &c2),
    );
    bucket.put(&ref_key("a/b__c", "main"), c1.clone());

    let out = t.hfcs().json().args(["list", "--remote"]).run().success();
    let doc = out.json();
    assert_eq!(doc["count"], 1, "one key name, one guess\n{out}");
    assert_eq!(entry(&doc, "a/b__c")["revisions"], 2, "{out}");

    let out = t
        .hfcs()
        .json()
        .args(["list", "--remote", "--manifests"])
        .run()
        .success();
    let doc = out.json();
    assert_eq!(doc["count"], 2, "{out}");
    let model = entry(&doc, "model/a/b__c");
    assert_eq!(model["revisions"], 1, "{out}");
    assert_eq!(strings(&model["refs"]), ["main"], "the ref names c1\n{out}");
    let dataset = entry(&doc, "dataset/a__b/c");
    assert_eq!(dataset["repo_id"], "a__b/c", "{out}");
    assert_eq!(strings(&dataset["refs"]), Vec::<String>::new(), "{out}");
    // One blob, counted once.
    assert_eq!(doc["total_size"], body.len(), "{out}");
}

#[test]
fn remote_reads_that_fail_or_are_refused_are_warnings_and_the_rest_is_listed() {
    let t = Sandbox::local("list_remote_unreadable");
    let remote = t.cache("remote");
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    let m = RepoSpec::two_revisions("org/m");
    let src = t.cache("src");
    m.write(&src);
    let (a, b) = (m.commit("v1.0"), m.commit("main"));
    t.hfcs().cache_dir(&src).arg("push").run().success();
    // Larger than any manifest or ref (sparse): reading them fails.
    let bogus = manifest_key("org/m", &commit_hash("bogus"));
    let big_ref = ref_key("org/m", "pr/1");
    std::fs::File::create(remote.join(&bogus))
        .unwrap()
        .set_len(64 * 1024 * 1024 + 1)
        .unwrap();
    std::fs::create_dir_all(remote.join(&big_ref).parent().unwrap()).unwrap();
    std::fs::File::create(remote.join(&big_ref))
        .unwrap()
        .set_len(4096)
        .unwrap();
    // org/m's manifest of `a` copied under org/x's key: refused, it belongs elsewhere.
    let misplaced = manifest_key("org/x", a);
    std::fs::copy(
        remote.join(manifest_key("org/m", a)),
        remote.join(&misplaced),
    )
    .unwrap();

    let out = t
        .hfcs()
        .json()
        .args(["list", "--remote", "--manifests", "--revisions"])
        .run()
        .success();
    let doc = out.json();
    assert_eq!(doc["count"], 2, "the two readable revisions\n{out}");
    assert_eq!(strings(&entry(&doc, b)["refs"]), ["main"], "{out}");
    assert_eq!(strings(&entry(&doc, a)["refs"]), ["v1.0"], "{out}");
    let warnings = strings(&doc["warnings"]);
    assert_eq!(warnings.len(), 3, "{out}");
    assert!(
        warnings[0].starts_with(&format!("cannot read {bogus}: ")),
        "{out}"
    );
    assert_eq!(
        warnings[1],
        format!(
            "{misplaced} describes org/m@{}, which belongs under another key; ignored",
            a
        ),
        "{out}"
    );
    assert!(
        warnings[2].starts_with(&format!("cannot read {big_ref}: ")),
        "{out}"
    );
    for w in &warnings {
        assert!(out.stderr.contains(&format!("warning: {w}")), "{out}");
    }

    // From key names, with one manifest read a repo for its type alone, nothing can fail. The
    // manifest under org/x's key describes org/m: it says nothing of org/x's type.
    let out = t.hfcs().json().args(["list", "--remote"]).run().success();
    let doc = out.json();
    assert_eq!(doc["warnings"], json!([]), "{out}");
    let by_id = |id: &str| {
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["repo_id"] == id)
            .unwrap_or_else(|| panic!("no repo {id}\n{out}"))
            .clone()
    };
    assert_eq!(by_id("org/m")["revisions"], 3, "{out}");
    assert_eq!(by_id("org/x")["revisions"], 1, "{out}");
    assert_eq!(by_id("org/x")["repo"], "org/x", "{out}");
}
