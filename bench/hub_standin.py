"""A Hub stand-in for the benchmark: serves one revision of a hub-cache repo over the Hub's HTTP API.

    python hub_standin.py REPO_DIR REPO_ID COMMIT PORT_FILE

REPO_DIR is a `models--org--name` folder; the files of `snapshots/COMMIT` are served as the
model REPO_ID at that commit (and as its `main`): `/api/models/{id}` and
`/api/models/{id}/revision/{rev}`, the recursive tree, paths-info (POST), and
`/{id}/resolve/{rev}/{path}` with `X-Repo-Commit`, `ETag`, and for LFS files (blobs named by
sha256) `X-Linked-Etag`, `X-Linked-Size` and a 302 to a second listener standing in for the CDN. Bodies go out with sendfile and honour `Range`. Both listeners are on 127.0.0.1; the
Hub's address (http://127.0.0.1:PORT) is written to PORT_FILE once both listen.
"""

import hashlib
import json
import os
import re
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit


def load(repo_dir, commit):
    """{path: (blob file, etag, size, lfs)} of the snapshot."""
    snap = os.path.join(repo_dir, "snapshots", commit)
    files = {}
    for dirpath, _, names in os.walk(snap):
        for name in names:
            link = os.path.join(dirpath, name)
            blob = os.path.realpath(link)
            etag = os.path.basename(blob)
            rel = os.path.relpath(link, snap)
            files[rel] = (blob, etag, os.path.getsize(blob), len(etag) == 64)
    return files


class Served:
    def info(self):
        """The repo's info, as `/api/models/{id}` and `.../revision/{rev}` answer it."""
        return {
            "id": self.repo_id, "sha": self.commit, "private": False, "gated": False,
            "lastModified": "2026-01-01T00:00:00.000Z",
            "siblings": [{"rfilename": p} for p in sorted(self.files)],
        }

    def __init__(self, repo_id, commit, files):
        self.repo_id, self.commit, self.files = repo_id, commit, files
        self.cdn = ""
        self.by_etag = {etag: blob for blob, etag, _, _ in files.values()}
        self.tree = []
        self.pointer_oid = {}
        for path, (blob, etag, size, lfs) in sorted(files.items()):
            if lfs:
                pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{etag}\n"
                           f"size {size}\n").encode()
                oid = hashlib.sha1(b"blob %d\0" % len(pointer) + pointer).hexdigest()
                self.pointer_oid[path] = oid
                self.tree.append({"type": "file", "path": path, "size": size, "oid": oid,
                                  "lfs": {"oid": etag, "size": size, "pointerSize": len(pointer)}})
            else:
                self.tree.append({"type": "file", "path": path, "size": size, "oid": etag})


def make_handler(served, role):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def reply_json(self, value):
            body = json.dumps(value).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def not_found(self, code):
            self.send_response(404)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def send_file(self, path, headers):
            size = os.path.getsize(path)
            start, end = 0, size - 1
            m = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
            if m:
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            else:
                self.send_response(200)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            if self.command == "HEAD":
                return
            self.wfile.flush()
            with open(path, "rb") as f:
                offset, left = start, end - start + 1
                while left > 0:
                    sent = os.sendfile(self.connection.fileno(), f.fileno(), offset, left)
                    if sent == 0:
                        break
                    offset += sent
                    left -= sent

        def do_HEAD(self):
            self.do_GET()

        def do_POST(self):
            # paths-info: the tree entries of the paths asked for, as a form (`paths=a&paths=b`)
            # or as JSON (`{"paths": [...]}`).
            path = unquote(urlsplit(self.path).path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            prefix = f"/api/models/{served.repo_id}/paths-info/"
            if role != "hub" or not path.startswith(prefix):
                return self.not_found("")
            if path[len(prefix):].strip("/") not in ("main", served.commit):
                return self.not_found("RevisionNotFound")
            if self.headers.get("Content-Type", "").startswith("application/json"):
                wanted = json.loads(body or b"{}").get("paths", [])
            else:
                wanted = parse_qs(body.decode()).get("paths", [])
            wanted = set([wanted] if isinstance(wanted, str) else wanted)
            return self.reply_json([e for e in served.tree if e["path"] in wanted])

        def do_GET(self):
            path = unquote(urlsplit(self.path).path)
            if role == "cdn":
                blob = served.by_etag.get(path.rsplit("/", 1)[-1])
                return self.send_file(blob, []) if blob else self.not_found("EntryNotFound")
            if path == f"/api/models/{served.repo_id}":
                return self.reply_json(served.info())
            prefix = f"/api/models/{served.repo_id}/"
            if path.startswith(prefix):
                kind, _, rev = path[len(prefix):].partition("/")
                rev = rev.split("/", 1)[0]
                if rev not in ("main", served.commit):
                    return self.not_found("RevisionNotFound")
                if kind == "revision":
                    return self.reply_json(served.info())
                if kind == "tree":
                    return self.reply_json(served.tree)
                return self.not_found("")
            prefix = f"/{served.repo_id}/resolve/"
            if not path.startswith(prefix):
                return self.not_found("RepoNotFound")
            rev, _, file = path[len(prefix):].partition("/")
            if rev not in ("main", served.commit) or file not in served.files:
                return self.not_found("EntryNotFound")
            blob, etag, size, lfs = served.files[file]
            headers = [("X-Repo-Commit", served.commit)]
            if not lfs:
                return self.send_file(blob, headers + [("ETag", f'"{etag}"')])
            self.send_response(302)
            for k, v in headers + [
                ("ETag", f'"{served.pointer_oid[file]}"'),
                ("X-Linked-Etag", f'"{etag}"'),
                ("X-Linked-Size", str(size)),
                ("Location", f"{served.cdn}/blobs/{etag}"),
                ("Content-Length", "0"),
            ]:
                self.send_header(k, v)
            self.end_headers()

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def server_bind(self):
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        super().server_bind()


def main():
    repo_dir, repo_id, commit, port_file = sys.argv[1:5]
    served = Served(repo_id, commit, load(repo_dir, commit))
    hub = Server(("127.0.0.1", 0), make_handler(served, "hub"))
    cdn = Server(("127.0.0.1", 0), make_handler(served, "cdn"))
    served.cdn = f"http://127.0.0.1:{cdn.server_address[1]}"
    threading.Thread(target=cdn.serve_forever, daemon=True).start()
    with open(port_file + ".tmp", "w") as f:
        f.write(f"http://127.0.0.1:{hub.server_address[1]}")
    os.replace(port_file + ".tmp", port_file)
    hub.serve_forever()


if __name__ == "__main__":
    main()
