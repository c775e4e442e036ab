//! All four repo types huggingface_hub caches (model, dataset, space and, since huggingface_hub
//! 2.x, kernel) through every command, on the remote too; a folder of a type this tool does not
//! know is a warning, never a silent skip.

use crate::common::{commit_hash, files_under, CacheBuilder, CacheView, Sandbox};

#[test]
fn kernel_repos_are_pushed_listed_and_pulled_like_the_others() {
    let t = Sandbox::local("repo_types");
    let src = t.cache("src");
    let remote = t.path("remote");
    let kinds = [
        ("model", "org/m"),
        ("dataset", "org/d"),
        ("space", "org/s"),
        ("kernel", "kernels-community/activation"),
    ];
    for (kind, id) in kinds {
        let commit = commit_hash(&format!("{kind}/{id}"));
        CacheBuilder::new(&src)
            .repo_of_type(kind, id)
            .rev(&commit)
            .file("README.md", format!("{kind} {id}").as_bytes())
            .ref_("main", &commit);
    }
    // A type from some future huggingface_hub.
    let widget = commit_hash("widget");
    CacheBuilder::new(&src)
        .repo_of_type("widget", "org/w")
        .rev(&widget)
        .file("README.md", b"w")
        .ref_("main", &widget);

    let out = t.bare().cache_dir(&src).arg("list").run().success();
    for (_, id) in kinds {
        assert!(out.stdout.contains(id), "{id}\n{out}");
    }
    assert!(out.stderr.contains("widgets--org--w"), "{out}");
    assert!(
        out.stderr.contains("unknown repo type \"widgets\""),
        "{out}"
    );

    let out = t
        .bare()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .success();
    assert!(out.stderr.contains("unknown repo type"), "{out}");
    let manifests = files_under(&remote.join("manifests"));
    assert_eq!(manifests.len(), 4, "{manifests:?}");
    let kernel_manifest = manifests
        .iter()
        .find(|m| m.starts_with("kernels-community__activation@"))
        .expect("the kernel's manifest");
    let body = std::fs::read_to_string(remote.join("manifests").join(kernel_manifest)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["repo_type"], "kernel", "{body}");

    let dst = t.cache("dst");
    t.bare()
        .cache_dir(&dst)
        .args(["pull", "kernels-community/activation", "--remote"])
        .arg(&remote)
        .run()
        .success();
    let commit = commit_hash("kernel/kernels-community/activation");
    CacheView::new(&dst, "kernel", "kernels-community/activation").assert_file(
        &commit,
        "README.md",
        b"kernel kernels-community/activation",
    );

    let all = t.cache("all");
    t.bare()
        .cache_dir(&all)
        .args(["pull-all", "--remote"])
        .arg(&remote)
        .run()
        .success();
    for (kind, id) in kinds {
        let commit = commit_hash(&format!("{kind}/{id}"));
        CacheView::new(&all, kind, id).assert_file(
            &commit,
            "README.md",
            format!("{kind} {id}").as_bytes(),
        );
    }

    // The remote listing reads the manifests' types: the kernel is a kernel there too.
    t.write_config(&format!(
        "storage:\n  endpoint: file://{}\n",
        remote.display()
    ));
    let out = t
        .hfcs()
        .json()
        .cache_dir(&all)
        .args(["list", "--remote", "--manifests"])
        .run()
        .success();
    let text = out.stdout.clone();
    assert!(text.contains("kernels-community/activation"), "{out}");
    assert!(text.contains("\"kernel\""), "{out}");
    let out = t.bare().cache_dir(&all).arg("verify").run().success();
    assert!(!out.stderr.contains("unknown repo type"), "{out}");
}

#[test]
fn a_repo_type_the_remote_does_not_hold_says_to_drop_the_flag() {
    let t = Sandbox::local("repo_type_hint");
    let src = t.cache("src");
    let remote = t.path("remote");
    let commit = commit_hash("org/m");
    CacheBuilder::new(&src)
        .repo_of_type("model", "org/m")
        .rev(&commit)
        .file("README.md", b"m")
        .ref_("main", &commit);
    t.bare()
        .cache_dir(&src)
        .args(["push", "--remote"])
        .arg(&remote)
        .run()
        .success();
    let dst = t.cache("dst");
    t.bare()
        .cache_dir(&dst)
        .args(["pull", "org/m", "--repo-type", "dataset", "--remote"])
        .arg(&remote)
        .run()
        .code(1)
        .stderr_has("org/m on the remote is a model, not a dataset")
        .stderr_has("hint: drop --repo-type dataset (the remote holds it as a model)");
    assert!(files_under(&dst).is_empty());
}
