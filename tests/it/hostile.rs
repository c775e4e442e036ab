//! Hostile and bad input: manifests planted in the bucket, local caches holding links that leave
//! the cache dir. Nothing hostile is ever written, uploaded, followed or deleted; each refusal
//! says what it refused and where.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::common::cache::pseudo_random;
use crate::common::{
    blob_key, commit_hash, files_under, manifest_key, ref_key, sha256_hex, CacheBuilder, Sandbox,
};

/// A manifest planted under a ref, and what the refusal must mention.
struct Case {
    name: &'static str,
    body: Vec<u8>,
    /// Extra `pull` arguments.
    args: &'static [&'static str],
    /// Said on stderr (case-insensitive), besides the manifest key.
    says: &'static str,
}

/// A payload that is in the bucket under its real blob name, so only the manifest is hostile.
struct Payload {
    bytes: Vec<u8>,
    etag: String,
}

fn payload() -> Payload {
    let bytes = b"bytes a hostile manifest wants written somewhere\n".to_vec();
    Payload {
        etag: sha256_hex(&bytes),
        bytes,
    }
}

/// `{"repo", "revision", "repo_type": "model", "files": [config.json, extra]}` for `repo_id`.
fn manifest(repo_id: &str, commit: &str, p: &Payload, extra: Value) -> Value {
    let mut files = vec![json!({"path": "config.json", "blob": p.etag, "size": p.bytes.len()})];
    if !extra.is_null() {
        files.push(extra);
    }
    json!({"repo": repo_id, "revision": commit, "repo_type": "model", "files": files})
}

fn file(path: &str, blob: &str, size: Value) -> Value {
    json!({"path": path, "blob": blob, "size": size})
}

fn bytes(v: &Value) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// Every hostile manifest, for the repo `repo_id` at `commit`.
fn cases(repo_id: &str, commit: &str, p: &Payload) -> Vec<Case> {
    let n = p.bytes.len();
    let good = |path: &str| file(path, &p.etag, json!(n));
    let with = |extra: Value| bytes(&manifest(repo_id, commit, p, extra));
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut m = manifest(repo_id, commit, p, Value::Null);
        f(&mut m);
        bytes(&m)
    };
    let case = |name, body, says| Case {
        name,
        body,
        args: &[],
        says,
    };
    vec![
        // Paths that leave the snapshot.
        case(
            "absolute path",
            with(good("/tmp/hfcs-escape")),
            "unsafe file path",
        ),
        case(
            "absolute /etc path",
            with(good("/etc/hfcs-escape")),
            "unsafe file path",
        ),
        case(
            "leading ..",
            with(good("../../../../hfcs-escape")),
            "unsafe file path",
        ),
        case(
            "inner ..",
            with(good("sub/../../../hfcs-escape")),
            "unsafe file path",
        ),
        case("trailing ..", with(good("sub/..")), "unsafe file path"),
        case(
            "backslash ..",
            with(good("..\\..\\hfcs-escape")),
            "unsafe file path",
        ),
        case(
            "dot segment",
            with(good("./config.json")),
            "unsafe file path",
        ),
        case("empty segment", with(good("a//b")), "unsafe file path"),
        case("trailing slash", with(good("a/")), "unsafe file path"),
        case("NUL in path", with(good("a\u{0}b")), "unsafe file path"),
        case("empty path", with(good("")), "unsafe file path"),
        // A file that is also a folder: writing `a/b` would go through the link at `a`.
        case(
            "file and folder",
            bytes(
                &json!({"repo": repo_id, "revision": commit, "repo_type": "model",
                "files": [good("a"), good("a/b")]}),
            ),
            "both a file and a folder",
        ),
        // Blob names that are not 40/64 lowercase hex.
        case(
            "blob with ..",
            with(file("w.bin", &format!("../../{}", p.etag), json!(n))),
            "lowercase hex",
        ),
        case(
            "blob with /",
            with(file(
                "w.bin",
                &format!("{}/{}", &p.etag[..20], &p.etag[21..]),
                json!(n),
            )),
            "lowercase hex",
        ),
        case(
            "upper-case blob",
            with(file("w.bin", &p.etag.to_uppercase(), json!(n))),
            "lowercase hex",
        ),
        case(
            "39-hex blob",
            with(file("w.bin", &p.etag[..39], json!(n))),
            "lowercase hex",
        ),
        case(
            "65-hex blob",
            with(file("w.bin", &format!("{}0", p.etag), json!(n))),
            "lowercase hex",
        ),
        case(
            "non-hex blob",
            with(file("w.bin", &"g".repeat(40), json!(n))),
            "lowercase hex",
        ),
        case(
            "empty blob",
            with(file("w.bin", "", json!(n))),
            "lowercase hex",
        ),
        // Duplicates and sizes.
        case(
            "duplicate path",
            with(good("config.json")),
            "duplicate path",
        ),
        case(
            "size over 1 PiB",
            with(file("w.bin", &p.etag, json!((1u64 << 50) + 1))),
            "absurd size",
        ),
        case(
            "size u64::MAX",
            with(file("w.bin", &p.etag, json!(u64::MAX))),
            "absurd size",
        ),
        case(
            "negative size",
            with(file("w.bin", &p.etag, json!(-1))),
            "not valid JSON",
        ),
        case(
            "fractional size",
            with(file("w.bin", &p.etag, json!(1.5))),
            "not valid JSON",
        ),
        case(
            "size beyond u64",
            with(file("w.bin", &p.etag, json!(1e30))),
            "not valid JSON",
        ),
        // Wrong JSON types and shapes.
        case(
            "size as text",
            with(file("w.bin", &p.etag, json!("12"))),
            "not valid JSON",
        ),
        case(
            "path as number",
            with(json!({"path": 7, "blob": p.etag, "size": n})),
            "not valid JSON",
        ),
        case(
            "blob as null",
            with(json!({"path": "w.bin", "blob": null, "size": n})),
            "not valid JSON",
        ),
        case(
            "file missing size",
            with(json!({"path": "w.bin", "blob": p.etag})),
            "not valid JSON",
        ),
        case(
            "repo as number",
            edit(&|m| m["repo"] = json!(1)),
            "not valid JSON",
        ),
        case(
            "files as object",
            edit(&|m| m["files"] = json!({})),
            "not valid JSON",
        ),
        case(
            "files missing",
            edit(&|m| {
                m.as_object_mut().unwrap().remove("files");
            }),
            "not valid JSON",
        ),
        case("top-level array", b"[]".to_vec(), "not valid JSON"),
        case(
            "not JSON",
            b"<html>not a manifest</html>".to_vec(),
            "not valid JSON",
        ),
        case(
            "truncated JSON",
            with(Value::Null)[..40].to_vec(),
            "not valid JSON",
        ),
        case("empty body", Vec::new(), "not valid JSON"),
        case(
            "not UTF-8",
            b"{\"repo\": \"\xff\xfe\"}".to_vec(),
            "not valid JSON",
        ),
        // Identity: another repo, another revision, another type.
        case(
            "unknown repo type",
            edit(&|m| m["repo_type"] = json!("widget")),
            "unknown repo_type",
        ),
        case(
            "repo id with ..",
            edit(&|m| m["repo"] = json!("../evil")),
            "invalid repo id",
        ),
        case(
            "revision with ..",
            edit(&|m| m["revision"] = json!("..")),
            "invalid revision",
        ),
        case(
            "another repo",
            edit(&|m| m["repo"] = json!("victim/model")),
            "describes victim/model",
        ),
        case(
            "another revision",
            edit(&|m| m["revision"] = json!(commit_hash("other"))),
            "describes",
        ),
        Case {
            name: "another repo type",
            body: edit(&|m| m["repo_type"] = json!("dataset")),
            args: &["--repo-type", "model"],
            says: "is a dataset, not a model",
        },
    ]
}

#[test]
fn hostile_manifests_are_refused_before_anything_is_written() {
    let t = Sandbox::new("hostile_manifests");
    let bucket = t.bucket();
    let p = payload();
    bucket.put(&blob_key(&p.etag), p.bytes.clone());
    let repo_id = "evil/m";
    let total = cases(repo_id, "", &p).len();
    let mut refused = 0;
    for i in 0..total {
        // One commit per case, under `main`: pulling by ref and by commit take the same checks.
        let commit = commit_hash(&format!("hostile {i}"));
        let case = cases(repo_id, &commit, &p).swap_remove(i);
        let key = manifest_key(repo_id, &commit);
        bucket.put(&key, case.body.clone());
        bucket.put(&ref_key(repo_id, "main"), commit.clone());
        for revision in ["main", commit.as_str()] {
            let dst = t.cache(&format!("dst{i}-{}", revision.len()));
            let out = t
                .hfcs()
                .cache_dir(&dst)
                .args(["pull", repo_id, "-r", revision])
                .args(case.args)
                .run()
                .code(1)
                .failure()
                .stderr_has(&key)
                .stderr_has_any(&[case.says]);
            assert_eq!(
                files_under(&dst),
                Vec::<String>::new(),
                "{}: the cache was written to\n{out}",
                case.name
            );
        }
        refused += 1;
    }
    assert!(!Path::new("/tmp/hfcs-escape").exists());
    assert!(!Path::new("/etc/hfcs-escape").exists());
    assert!(
        !files_under(&t.path(""))
            .iter()
            .any(|f| f.contains("hfcs-escape")),
        "a hostile path was written"
    );
    println!("hostile manifests refused: {refused}/{total}");
    assert_eq!(refused, total);
}

/// Waits for `child`, watching its peak resident memory (`VmHWM`, which only grows) in
/// /proc while it runs. `wait4`'s figure would not do: a child spawned by this large test process
/// starts out with the parent's pages counted.
fn wait_peak_rss(mut child: std::process::Child) -> (Option<i32>, u64, String) {
    use std::io::Read;
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    let status = loop {
        if let Ok(text) = fs::read_to_string(&status_file) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
            peak_kib = peak_kib.max(hwm.unwrap_or(0));
        }
        if let Some(status) = child.try_wait().expect("wait for pull") {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    (status.code(), peak_kib * 1024, stderr)
}

#[test]
fn a_100_mb_manifest_is_refused_by_its_size_without_buffering_it() {
    let t = Sandbox::new("hostile_huge_manifest");
    let bucket = t.bucket();
    let p = payload();
    let repo_id = "evil/huge";
    let commit = commit_hash("huge");
    // Valid JSON all the way: only its size gives it away.
    let mut body = format!(
        "{{\"repo\": \"{repo_id}\", \"revision\": \"{commit}\", \"repo_type\": \"model\", \"files\": ["
    )
    .into_bytes();
    let mut i = 0u64;
    while body.len() < 100 * 1024 * 1024 {
        body.extend_from_slice(
            format!(
                "{{\"path\": \"f{i:09}\", \"blob\": \"{}\", \"size\": {}}},",
                p.etag,
                p.bytes.len()
            )
            .as_bytes(),
        );
        i += 1;
    }
    body.pop();
    body.extend_from_slice(b"]}");
    let key = manifest_key(repo_id, &commit);
    bucket.put(&key, body);
    bucket.put(&ref_key(repo_id, "main"), commit.clone());

    let dst = t.cache("dst");
    let child = t.hfcs().cache_dir(&dst).args(["pull", repo_id]).spawn();
    let (code, peak, stderr) = wait_peak_rss(child);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&key), "the error names the key\n{stderr}");
    assert!(stderr.contains("larger than 64.0 MiB"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        peak < 48 * 1024 * 1024,
        "pull peaked at {} MiB: the manifest was buffered",
        peak >> 20
    );
    assert_eq!(files_under(&dst), Vec::<String>::new());
    println!("100 MB manifest refused; pull peaked at {} MiB", peak >> 20);
}

/// A valid manifest for `evil/linked` whose files go under `sub/`.
fn plant_linked(t: &Sandbox, p: &Payload, commit: &str) {
    let bucket = t.bucket();
    bucket.put(&blob_key(&p.etag), p.bytes.clone());
    let m = manifest(
        "evil/linked",
        commit,
        p,
        file("sub/weights.bin", &p.etag, json!(p.bytes.len())),
    );
    bucket.put(&manifest_key("evil/linked", commit), bytes(&m));
    bucket.put(&ref_key("evil/linked", "main"), commit.to_string());
}

/// A folder outside every cache holding one precious file, and its listing.
fn outside_dir(t: &Sandbox, name: &str) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let dir = t.path(name);
    fs::create_dir_all(dir.join("sub")).unwrap();
    fs::write(dir.join("weights.bin"), b"precious").unwrap();
    fs::write(dir.join("config.json"), b"precious config").unwrap();
    fs::write(dir.join("sub/weights.bin"), b"precious too").unwrap();
    (dir.clone(), snapshot_of(&dir))
}

fn snapshot_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|f| {
            let bytes = fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

#[test]
fn pull_never_writes_through_a_local_folder_linked_outside_the_cache() {
    let t = Sandbox::new("hostile_linked_dirs");
    let p = payload();
    let commit = commit_hash("linked");
    plant_linked(&t, &p, &commit);
    let repo = "models--evil--linked";
    // Each folder pull would write into, replaced by a link to a folder outside the cache.
    let spots: [(&str, String); 5] = [
        (
            "snapshot subfolder",
            format!("{repo}/snapshots/{commit}/sub"),
        ),
        ("snapshot folder", format!("{repo}/snapshots/{commit}")),
        ("blobs folder", format!("{repo}/blobs")),
        ("refs folder", format!("{repo}/refs")),
        ("repo folder", repo.to_string()),
    ];
    for (i, (what, spot)) in spots.iter().enumerate() {
        let dst = t.cache(&format!("dst{i}"));
        let (outside, before) = outside_dir(&t, &format!("outside{i}"));
        let link = dst.join(spot);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        symlink(&outside, &link).unwrap();
        let cache_before = files_under(&dst);

        t.hfcs()
            .cache_dir(&dst)
            .args(["pull", "evil/linked"])
            .run()
            .code(1)
            .failure()
            .stderr_has_any(&["outside the cache dir"]);
        assert_eq!(snapshot_of(&outside), before, "{what}: written through");
        assert_eq!(
            files_under(&dst),
            cache_before,
            "{what}: the cache was written to"
        );
    }
    // Without the links the same manifest pulls fine: the refusal was about the links.
    let dst = t.cache("clean");
    t.hfcs()
        .cache_dir(&dst)
        .args(["pull", "evil/linked"])
        .run()
        .success();
    assert_eq!(
        fs::read(dst.join(format!("{repo}/snapshots/{commit}/sub/weights.bin"))).unwrap(),
        p.bytes
    );
}

// ---- a local cache with links that leave it ----

/// The entries planted in a cache, each a link leaving the cache dir.
struct Planted {
    /// (what, path in the cache the warning must name)
    entries: Vec<(&'static str, String)>,
    /// Files outside the cache with their content, which must survive untouched.
    outside: Vec<(PathBuf, Vec<u8>)>,
}

/// `org/good` (a plain repo) and `org/evil`, whose revision `c` holds a good file plus links out of
/// the cache: a blob to a file outside, a blob to /etc/passwd (named by its real hash), a snapshot
/// file to a file outside; its revision `d` is a snapshot folder linked outside; `org/away` is a
/// repo folder linked outside and `org/blobless` has its `blobs/` linked outside.
fn hostile_cache(t: &Sandbox, cache: &Path) -> Planted {
    let out = t.path("outside");
    fs::create_dir_all(out.join("snapdir")).unwrap();
    fs::create_dir_all(out.join("repo/snapshots")).unwrap();
    fs::create_dir_all(out.join("blobs")).unwrap();
    let secret = pseudo_random("outside secret", 4096);
    let leak = b"outside leak\n".to_vec();
    let snap_config = b"{\"outside\": \"snapshot\"}\n".to_vec();
    let passwd = fs::read("/etc/passwd").expect("read /etc/passwd");
    fs::write(out.join("secret.bin"), &secret).unwrap();
    fs::write(out.join("leak.txt"), &leak).unwrap();
    fs::write(out.join("snapdir/config.json"), &snap_config).unwrap();
    fs::write(out.join("blobs").join(sha256_hex(&secret)), &secret).unwrap();

    let c = commit_hash("evil c");
    let d = commit_hash("evil d");
    CacheBuilder::new(cache)
        .repo("org/good")
        .rev(&commit_hash("good"))
        .file("config.json", b"{\"good\": true}\n")
        .ref_("main", &commit_hash("good"))
        .repo("org/evil")
        .rev(&c)
        .file("config.json", b"{\"evil\": true}\n")
        .ref_("main", &c);
    let evil = cache.join("models--org--evil");
    let (secret_etag, passwd_etag) = (sha256_hex(&secret), sha256_hex(&passwd));
    symlink(
        out.join("secret.bin"),
        evil.join("blobs").join(&secret_etag),
    )
    .unwrap();
    symlink("/etc/passwd", evil.join("blobs").join(&passwd_etag)).unwrap();
    let snap = evil.join("snapshots").join(&c);
    symlink(
        format!("../../blobs/{secret_etag}"),
        snap.join("weights.bin"),
    )
    .unwrap();
    symlink(format!("../../blobs/{passwd_etag}"), snap.join("passwd")).unwrap();
    symlink(out.join("leak.txt"), snap.join("leak.txt")).unwrap();
    symlink(out.join("snapdir"), evil.join("snapshots").join(&d)).unwrap();
    symlink(out.join("repo"), cache.join("models--org--away")).unwrap();
    let blobless = cache.join("models--org--blobless");
    fs::create_dir_all(blobless.join("snapshots")).unwrap();
    symlink(out.join("blobs"), blobless.join("blobs")).unwrap();

    Planted {
        entries: vec![
            (
                "blob linked to a file outside",
                format!("blobs/{secret_etag}"),
            ),
            ("blob linked to /etc/passwd", format!("blobs/{passwd_etag}")),
            ("snapshot file linked outside", format!("{c}/leak.txt")),
            ("snapshot folder linked outside", format!("snapshots/{d}")),
            ("repo folder linked outside", "models--org--away".into()),
            (
                "blobs folder linked outside",
                "models--org--blobless/blobs".into(),
            ),
        ],
        outside: vec![
            (out.join("secret.bin"), secret.clone()),
            (out.join("leak.txt"), leak),
            (out.join("snapdir/config.json"), snap_config),
            (out.join("blobs").join(&secret_etag), secret),
            (PathBuf::from("/etc/passwd"), passwd),
        ],
    }
}

impl Planted {
    /// Every outside file still there with its content.
    #[track_caller]
    fn assert_untouched(&self, after: &str) {
        for (path, bytes) in &self.outside {
            let now = fs::read(path).unwrap_or_else(|e| {
                panic!("{after}: {} outside the cache is gone: {e}", path.display())
            });
            assert!(&now == bytes, "{after}: {} was changed", path.display());
        }
    }

    /// stderr (or stdout, for verify's problem list) names every planted entry.
    #[track_caller]
    fn assert_named(&self, out: &crate::common::cli::Output, skip: &[&str]) {
        let text = format!("{}{}", out.stdout, out.stderr);
        for (what, entry) in &self.entries {
            if skip.contains(what) {
                continue;
            }
            assert!(
                text.lines()
                    .any(|l| l.contains(entry.as_str()) && l.contains("outside the cache dir")),
                "{what} ({entry}) is not reported\n{out}"
            );
        }
    }
}

#[test]
fn links_leaving_the_cache_are_never_uploaded_followed_or_deleted() {
    let t = Sandbox::new("hostile_local_links");
    let cache = t.cache("hub");
    let planted = hostile_cache(&t, &cache);
    let bucket = t.bucket();

    // verify reads nothing outside, names each entry, and fails (they are problems to fix).
    let out = t.bare().cache_dir(&cache).arg("verify").run().code(1);
    planted.assert_named(&out, &[]);
    planted.assert_untouched("verify");

    // push uploads everything else and none of the outside bytes.
    let out = t
        .hfcs()
        .json()
        .cache_dir(&cache)
        .arg("push")
        .run()
        .success();
    planted.assert_named(&out, &[]);
    planted.assert_untouched("push");
    let keys = bucket.keys();
    assert!(
        keys.contains(&ref_key("org/good", "main")) && keys.contains(&ref_key("org/evil", "main")),
        "the rest was pushed\n{keys:?}\n{out}"
    );
    for key in &keys {
        let body = bucket.get(key).unwrap();
        for (path, bytes) in &planted.outside {
            assert!(
                !(body == *bytes
                    || (key.starts_with("blobs/") && *key == blob_key(&sha256_hex(bytes)))),
                "{key} holds the bytes of {} from outside the cache",
                path.display()
            );
        }
    }
    let evil = bucket.manifest("org/evil", &commit_hash("evil c"));
    let paths: Vec<&str> = evil["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["config.json"], "{evil}");

    // prune with a zero budget evicts what it may, and nothing outside.
    let out = t
        .bare()
        .cache_dir(&cache)
        .args(["prune", "--max-gb", "0", "--detached", "--yes"])
        .run()
        .success();
    planted.assert_named(&out, &[]);
    planted.assert_untouched("prune");

    // rm of every repo removes the links themselves, never what they point at.
    let out = t
        .bare()
        .cache_dir(&cache)
        .args(["rm", "org/evil", "org/good", "org/blobless", "--yes"])
        .run()
        .success();
    planted.assert_named(&out, &[]);
    planted.assert_untouched("rm");
    for repo in [
        "models--org--evil",
        "models--org--good",
        "models--org--blobless",
    ] {
        assert!(
            cache.join(repo).symlink_metadata().is_err(),
            "{repo} was not removed\n{out}"
        );
    }
    // The linked repo folder is not a repo of this cache: rm does not know it, and says so.
    t.bare()
        .cache_dir(&cache)
        .args(["rm", "org/away", "--yes"])
        .run()
        .code(1)
        .stderr_has("org/away");
    planted.assert_untouched("rm of a linked repo folder");
    println!(
        "local hostile entries ignored by verify, push, prune and rm: {}/{}",
        planted.entries.len(),
        planted.entries.len()
    );
}

#[test]
fn pull_all_refuses_each_hostile_manifest_and_pulls_the_rest() {
    let t = Sandbox::new("hostile_pull_all");
    let src = t.cache("src");
    let good = commit_hash("good");
    CacheBuilder::new(&src)
        .repo("org/good")
        .rev(&good)
        .file("config.json", b"{\"good\": true}\n")
        .ref_("main", &good);
    t.hfcs().cache_dir(&src).arg("push").run().success();

    let bucket = t.bucket();
    let p = payload();
    bucket.put(&blob_key(&p.etag), p.bytes.clone());
    let hostile = [
        (
            "evil/abs",
            file("/tmp/hfcs-escape", &p.etag, json!(p.bytes.len())),
        ),
        (
            "evil/dots",
            file("../../hfcs-escape", &p.etag, json!(p.bytes.len())),
        ),
        (
            "evil/blob",
            file("w.bin", &p.etag.to_uppercase(), json!(p.bytes.len())),
        ),
        ("evil/size", file("w.bin", &p.etag, json!(u64::MAX))),
    ];
    for (repo_id, extra) in &hostile {
        let commit = commit_hash(repo_id);
        bucket.put(
            &manifest_key(repo_id, &commit),
            bytes(&manifest(repo_id, &commit, &p, extra.clone())),
        );
        bucket.put(&ref_key(repo_id, "main"), commit);
    }

    let dst = t.cache("dst");
    let out = t
        .hfcs()
        .json()
        .cache_dir(&dst)
        .arg("pull-all")
        .run()
        .code(1)
        .failure();
    let s = out.json();
    let repos = s["repos"].as_array().unwrap();
    for (repo_id, _) in &hostile {
        let r = repos
            .iter()
            .find(|r| r["repo_id"] == *repo_id)
            .unwrap_or_else(|| panic!("{repo_id} is not reported\n{out}"));
        assert_eq!(r["status"], "failed", "{out}");
        assert!(
            r["error"]
                .as_str()
                .unwrap()
                .contains(&manifest_key(repo_id, &commit_hash(repo_id))),
            "the error names the manifest\n{out}"
        );
    }
    let good_row = repos.iter().find(|r| r["repo_id"] == "org/good").unwrap();
    assert_eq!(good_row["status"], "ok", "{out}");
    let written: Vec<String> = files_under(&dst)
        .into_iter()
        .filter(|f| {
            !f.starts_with("models--org--good/")
                && !f.starts_with(".locks/models--org--good/")
                && f != ".locks/models--org--good.hf-cache-sync.lock"
        })
        .collect();
    assert_eq!(
        written,
        Vec::<String>::new(),
        "hostile repos wrote files\n{out}"
    );
    assert!(!Path::new("/tmp/hfcs-escape").exists());
}
