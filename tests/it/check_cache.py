"""Checks a Hugging Face cache directory the way huggingface_hub itself sees it.

usage: check_cache.py CACHE_DIR [--download REPO_TYPE REPO_ID REVISION FILENAME SHA256]...

Runs scan_cache_dir() and fails when it reports any warning (a corrupted cache), prints the scan as
JSON on stdout, then loads every --download file with hf_hub_download(local_files_only=True) and
fails unless its bytes hash to the expected sha256. Exit status 1 on any problem, details on stderr.
"""

import os

# Must be set before huggingface_hub is imported: its constants are read at import time.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

from huggingface_hub import hf_hub_download, scan_cache_dir  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("cache_dir")
    parser.add_argument(
        "--download",
        nargs=5,
        action="append",
        default=[],
        metavar=("REPO_TYPE", "REPO_ID", "REVISION", "FILENAME", "SHA256"),
    )
    args = parser.parse_args()

    problems = []
    info = scan_cache_dir(args.cache_dir)
    for warning in info.warnings:
        problems.append(f"scan_cache_dir warning: {warning}")

    repos = []
    for repo in sorted(info.repos, key=lambda r: (r.repo_type, r.repo_id)):
        repos.append(
            {
                "repo_id": repo.repo_id,
                "repo_type": repo.repo_type,
                "size_on_disk": repo.size_on_disk,
                "nb_files": repo.nb_files,
                "last_accessed": repo.last_accessed,
                "last_modified": repo.last_modified,
                "revisions": [
                    {
                        "commit_hash": rev.commit_hash,
                        "refs": sorted(rev.refs),
                        "nb_files": rev.nb_files,
                        "size_on_disk": rev.size_on_disk,
                        "last_modified": rev.last_modified,
                        "files": sorted(f.file_path.relative_to(rev.snapshot_path).as_posix() for f in rev.files),
                    }
                    for rev in sorted(repo.revisions, key=lambda r: r.commit_hash)
                ],
            }
        )

    downloads = []
    for repo_type, repo_id, revision, filename, expected in args.download:
        try:
            path = hf_hub_download(
                repo_id=repo_id,
                filename=filename,
                revision=revision,
                repo_type=repo_type,
                cache_dir=args.cache_dir,
                local_files_only=True,
            )
        except Exception as e:  # report every failure, not just the first
            problems.append(f"hf_hub_download({repo_type} {repo_id}@{revision} {filename}) failed: {type(e).__name__}: {e}")
            continue
        with open(path, "rb") as f:
            actual = hashlib.sha256(f.read()).hexdigest()
        if actual != expected:
            problems.append(
                f"hf_hub_download({repo_type} {repo_id}@{revision} {filename}) returned {path} "
                f"with sha256 {actual}, expected {expected}"
            )
        downloads.append({"repo_id": repo_id, "filename": filename, "revision": revision, "path": path})

    report = {
        "repos": repos,
        "downloads": downloads,
        # The physical size: each file once, store-only shared payloads included, blobs no
        # revision uses left out.
        "size_on_disk": info.size_on_disk,
        "incomplete": {
            "count": len(info.incomplete_files),
            "size_on_disk": info.incomplete_size_on_disk,
        },
    }
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
