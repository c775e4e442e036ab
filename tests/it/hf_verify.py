"""Runs `hf cache verify` on repos of a cache, with a stand-in for the Hub's tree listing.

usage: hf_verify.py CACHE_DIR TREES_JSON

TREES_JSON maps "<type>s/<repo id>" to {"<commit>": [tree entries as the Hub lists them]}. A local
HTTP server answers GET /api/<type>s/<repo id>/tree/<commit> from it, HF_ENDPOINT points `hf` at
that server, and every listed revision is verified with --fail-on-missing-files and
--fail-on-extra-files. Exit status 1 when any verification fails; `hf`'s output on stderr.
"""

import http.server
import json
import os
import subprocess
import sys
import threading
from urllib.parse import unquote, urlsplit


def main() -> int:
    cache_dir, trees_path = sys.argv[1], sys.argv[2]
    with open(trees_path) as f:
        trees = json.load(f)

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the stdlib's name)
            path = unquote(urlsplit(self.path).path)
            body = None
            if path.startswith("/api/") and "/tree/" in path:
                repo, commit = path[len("/api/"):].split("/tree/", 1)
                body = trees.get(repo, {}).get(commit.strip("/"))
            if body is None:
                self.send_response(404)
                self.send_header("X-Error-Code", "RevisionNotFound")
                self.end_headers()
                return
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = dict(os.environ, HF_ENDPOINT=f"http://127.0.0.1:{server.server_address[1]}")
    env.pop("HF_HUB_OFFLINE", None)
    hf = os.path.join(os.path.dirname(sys.executable), "hf")
    failed = 0
    for repo, commits in sorted(trees.items()):
        repo_type, repo_id = repo.split("s/", 1)
        for commit in sorted(commits):
            cmd = [hf, "cache", "verify", repo_id, "--repo-type", repo_type, "--revision", commit,
                   "--cache-dir", cache_dir, "--fail-on-missing-files", "--fail-on-extra-files"]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                failed += 1
                print(f"$ {' '.join(cmd)}\n{done.stdout}{done.stderr}", file=sys.stderr)
    server.shutdown()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
