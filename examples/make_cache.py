#!/usr/bin/env python3
"""Writes a small Hugging Face hub cache in huggingface_hub's layout (standard library only).

usage: make_cache.py CACHE_DIR [--repos N] [--files N] [--lfs-mib N]

Each repo gets two revisions that share most blobs, a `main` ref and a `refs/pr/1`; LFS files are
named by sha256, the rest by git blob SHA-1, and snapshots are relative symlinks into blobs/.
"""
import argparse
import hashlib
import os


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write_repo(root, repo_id, files, commits):
    repo = os.path.join(root, "models--" + repo_id.replace("/", "--"))
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    for commit, rev_files in zip(commits, files):
        for path, (data, lfs) in rev_files.items():
            etag = hashlib.sha256(data).hexdigest() if lfs else git_blob_sha1(data)
            blob = os.path.join(repo, "blobs", etag)
            if not os.path.exists(blob):
                with open(blob, "wb") as f:
                    f.write(data)
            link = os.path.join(repo, "snapshots", commit, path)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            if not os.path.lexists(link):
                os.symlink("../" * (path.count("/") + 2) + "blobs/" + etag, link)
    os.makedirs(os.path.join(repo, "refs", "pr"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(commits[-1])
    with open(os.path.join(repo, "refs", "pr", "1"), "w") as f:
        f.write(commits[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cache_dir")
    ap.add_argument("--repos", type=int, default=2)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--lfs-mib", type=int, default=8)
    args = ap.parse_args()
    for r in range(args.repos):
        repo_id = f"demo-org/model-{r}"
        common = {
            f"tokenizer/part-{i}.json": (f'{{"repo": {r}, "part": {i}}}\n'.encode(), False)
            for i in range(args.files)
        }
        weights = (os.urandom(args.lfs_mib * 1024 * 1024), True)
        v1 = dict(common, **{"config.json": (b'{"v": 1}\n', False), "model.safetensors": weights})
        v2 = dict(common, **{"config.json": (b'{"v": 2}\n', False), "model.safetensors": weights})
        commits = [hashlib.sha1(f"{repo_id}@{v}".encode()).hexdigest() for v in (1, 2)]
        write_repo(args.cache_dir, repo_id, [v1, v2], commits)
    print(f"wrote {args.repos} repos to {args.cache_dir}")


if __name__ == "__main__":
    main()
