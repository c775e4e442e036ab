"""The `serve` scenarios of bench/bench.py: huggingface_hub's snapshot_download through
`hf-cache-sync serve` against Olah and against our own `pull`, and 16 clients at once.

Every scenario checks each downloaded file's sha256 against the fixture before deleting it.
"""
import hashlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

MIB = 1024 * 1024
REPO_ID = "bench/model"
REPO_FOLDER = "models--bench--model"


def commit_of(seed):
    return hashlib.sha1(seed.encode()).hexdigest()


def git_blob_sha1(data):
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(4 * MIB)
            if not block:
                return h.hexdigest()
            h.update(block)


def make_model(root, shard_size, write_random):
    """A model repo as the Hub holds one: config, generation config, tokenizer files, a README,
    the safetensors index and two LFS shards of `shard_size` bytes. Returns (repo dir, commit,
    {path: sha256})."""
    repo = os.path.join(root, REPO_FOLDER)
    commit = commit_of(f"model-{shard_size}")
    snap = os.path.join(repo, "snapshots", commit)
    blobs = os.path.join(repo, "blobs")
    os.makedirs(blobs, exist_ok=True)
    os.makedirs(snap, exist_ok=True)
    files = {}

    def place(path, etag):
        dest = os.path.join(snap, path)
        if not os.path.lexists(dest):
            os.symlink("../../blobs/" + etag, dest)

    def small(path, data):
        etag = git_blob_sha1(data)
        with open(os.path.join(blobs, etag), "wb") as f:
            f.write(data)
        place(path, etag)
        files[path] = hashlib.sha256(data).hexdigest()

    shards = []
    for i in range(2):
        name = f"model-{i + 1:05d}-of-00002.safetensors"
        tmp = os.path.join(blobs, f"{name}.tmp")
        etag = write_random(tmp, shard_size)
        os.replace(tmp, os.path.join(blobs, etag))
        place(name, etag)
        files[name] = etag
        shards.append(name)
    small("config.json", b'{\n  "architectures": ["LlamaForCausalLM"],\n  "hidden_size": 2048,\n'
          b'  "num_attention_heads": 32,\n  "num_hidden_layers": 22,\n  "vocab_size": 32000,\n'
          b'  "torch_dtype": "bfloat16"\n}\n')
    small("generation_config.json", b'{\n  "bos_token_id": 1,\n  "eos_token_id": 2,\n'
          b'  "max_length": 2048\n}\n')
    vocab = ",\n".join(f'    "tok{i:05d}": {i}' for i in range(32000)).encode()
    small("tokenizer.json", b'{\n  "version": "1.0",\n  "model": {\n   "type": "BPE",\n   "vocab": {\n'
          + vocab + b"\n   }\n  }\n}\n")
    small("tokenizer_config.json", b'{\n  "bos_token": "<s>",\n  "eos_token": "</s>",\n'
          b'  "model_max_length": 2048\n}\n')
    small("README.md", b"---\nlicense: apache-2.0\n---\n# bench/model\n\nA benchmark fixture.\n")
    weight_map = ",\n".join(f'    "model.layers.{i}.weight": "{shards[i % 2]}"' for i in range(22))
    small("model.safetensors.index.json",
          ('{\n  "metadata": {"total_size": %d},\n  "weight_map": {\n%s\n  }\n}\n'
           % (2 * shard_size, weight_map)).encode())
    os.makedirs(os.path.join(repo, "refs"), exist_ok=True)
    with open(os.path.join(repo, "refs", "main"), "w") as f:
        f.write(commit)
    return repo, commit, files


def check_snapshot(cache, commit, expected, who):
    """Every file of `expected` ({path: sha256}) and no other in `cache`'s snapshot of the
    model at `commit`, with those contents; the number of bytes checked."""
    snap = os.path.join(cache, REPO_FOLDER, "snapshots", commit)
    found = set()
    for dirpath, _, names in os.walk(snap):
        for name in names:
            found.add(os.path.relpath(os.path.join(dirpath, name), snap))
    if found != set(expected):
        raise SystemExit(f"{who}: the snapshot in {snap} holds {sorted(found)}, expected "
                         f"{sorted(expected)}")
    total = 0
    for path, sha in expected.items():
        full = os.path.join(snap, path)
        got = sha256_file(full)
        if got != sha:
            raise SystemExit(f"{who}: {path} has sha256 {got}, the fixture {sha}")
        total += os.path.getsize(full)
    return total


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def wait_http(url, proc, log, what, timeout=60, any_status=False):
    """Waits until `url` answers 200 (any status with `any_status`) while `proc` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited ({proc.returncode}) before answering; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except urllib.error.HTTPError:
            if any_status:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer {url} within {timeout} s; see {log}")


class Process:
    """A server the benchmark started, its output in a log file."""

    def __init__(self, cmd, env, log, health, what, cwd=None, any_status=False):
        self.log = log
        self.what = what
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
        try:
            wait_http(health, self.proc, log, what, any_status=any_status)
        except SystemExit:
            self.stop()
            raise

    @property
    def pid(self):
        return self.proc.pid

    def cpu(self):
        """User+system CPU seconds so far (/proc/<pid>/stat)."""
        with open(f"/proc/{self.pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self):
        """VmHWM of /proc/<pid>/status, in MiB."""
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise SystemExit(f"no VmHWM in /proc/{self.pid}/status")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class ServeBench:
    def __init__(self, bench, write_random):
        self.b = bench
        self.write_random = write_random
        self.py = os.path.join(bench.venv_bin, "python")
        help_text = subprocess.run([bench.ours, "serve", "--help"], capture_output=True,
                                   env=bench.env).stdout.decode(errors="replace")
        self.has_presign = "--presign" in help_text

    # --- pieces
    def fixture(self, shard_mib):
        root = os.path.join(self.b.work, f"model-{shard_mib}m-cache")
        if os.path.exists(root):
            shutil.rmtree(root)
        repo, commit, expected = make_model(root, shard_mib * MIB, self.write_random)
        prefix = self.b.fresh("serve")
        subprocess.run(self.b.ours_cmd(self.b.config(root, prefix), "push"), env=self.b.env,
                       check=True, stdout=subprocess.DEVNULL)
        return root, repo, commit, expected, prefix

    def serve(self, prefix, *extra):
        port = free_port()
        cache = os.path.join(self.b.work, self.b.fresh("serve-cache"))
        os.makedirs(cache)
        cfg = self.b.config(cache, prefix)
        log = os.path.join(self.b.work, self.b.fresh("serve") + ".log")
        return Process(self.b.ours_cmd(cfg, "serve", "--listen", f"127.0.0.1:{port}", *extra),
                       self.b.env, log, f"http://127.0.0.1:{port}/healthz",
                       "hf-cache-sync serve " + " ".join(extra)), f"http://127.0.0.1:{port}"

    def client_env(self, endpoint):
        return dict(self.b.env, HF_ENDPOINT=endpoint, HF_HUB_DISABLE_XET="1",
                    HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1",
                    HF_HUB_DISABLE_UPDATE_CHECK="1", HF_HUB_DISABLE_IMPLICIT_TOKEN="1")

    def snapshot_cmd(self, dest):
        """snapshot_download of the model's main with `dest` as HF_HUB_CACHE."""
        code = ("import os, sys; os.environ['HF_HUB_CACHE'] = sys.argv[1]; "
                "from huggingface_hub import snapshot_download; "
                f"snapshot_download('{REPO_ID}')")
        return [self.py, "-c", code, dest]

    def snapshot(self, who, commit, expected):
        """A run's setup: a fresh cache; its cleanup checks every file, then deletes it."""
        def setup():
            dest = os.path.join(self.b.work, self.b.fresh("snapdest"))

            def cleanup():
                check_snapshot(dest, commit, expected, who)
                shutil.rmtree(dest, ignore_errors=True)
            return self.snapshot_cmd(dest), cleanup
        return setup

    def hub_standin(self, repo, commit):
        port_file = os.path.join(self.b.work, self.b.fresh("hub-url"))
        proc = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(__file__), "hub_standin.py"),
                                 repo, REPO_ID, commit, port_file])
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.1)
        else:
            proc.kill()
            raise SystemExit("the Hub stand-in did not start")
        with open(port_file) as f:
            return proc, f.read().strip()

    def olah(self, hub_url):
        port = free_port()
        hub = hub_url.split("://", 1)[1]
        olah_dir = os.path.join(self.b.work, self.b.fresh("olah"))
        os.makedirs(olah_dir)
        cmd = [os.path.join(self.b.venv_bin, "olah-cli"), "--host", "127.0.0.1", "--port", str(port),
               "--hf-scheme", "http", "--hf-netloc", hub, "--hf-lfs-netloc", hub,
               "--mirror-scheme", "http", "--mirror-netloc", f"127.0.0.1:{port}",
               "--repos-path", os.path.join(olah_dir, "repos"),
               "--log-path", os.path.join(olah_dir, "logs")]
        log = os.path.join(olah_dir, "olah.out")
        # Olah has no health route: any HTTP answer (its `/` is a 500 without a page) means it
        # listens.
        return Process(cmd, self.b.env, log, f"http://127.0.0.1:{port}/", "olah-cli",
                       cwd=olah_dir, any_status=True), f"http://127.0.0.1:{port}"

    # --- scenarios
    def serve_olah(self):
        """Warm snapshot_download through serve (its remote holds the revision) against
        through Olah (which already fetched it once from the Hub stand-in)."""
        mib = max(1, self.b.args.shard_mib // 8)
        root, repo, commit, expected, prefix = self.fixture(mib)
        nbytes = sum(os.path.getsize(os.path.realpath(os.path.join(repo, "snapshots", commit, p)))
                     for p in expected)
        servers = []
        standin = None
        try:
            standin, hub_url = self.hub_standin(repo, commit)
            serve, serve_url = self.serve(prefix)
            servers.append(serve)
            olah, olah_url = self.olah(hub_url)
            servers.append(olah)
            # Olah fetches the repo from the stand-in once: from then on it serves from its disk.
            first = os.path.join(self.b.work, self.b.fresh("olah-first"))
            subprocess.run(self.snapshot_cmd(first), env=self.client_env(olah_url), check=True)
            check_snapshot(first, commit, expected, "Olah's first fetch")
            shutil.rmtree(first)
            tools = {"ours": self.snapshot("serve", commit, expected),
                     "Olah": self.snapshot("Olah", commit, expected)}
            envs = {"ours": self.client_env(serve_url), "Olah": self.client_env(olah_url)}
            per_tool = self.b.run("serve-olah", tools, {"Olah": "<= 0.7"}, nbytes=nbytes, env=envs,
                                  observe=lambda: sum(s.cpu() for s in servers))
            self.b.notes.append(
                f"serve-olah: huggingface_hub's snapshot_download of {REPO_ID} (config.json, "
                "generation_config.json, tokenizer.json, tokenizer_config.json, README.md, "
                f"model.safetensors.index.json and 2 safetensors shards of {mib} MiB, "
                f"{nbytes / MIB:.1f} MiB) into a fresh HF_HUB_CACHE per run, HF_HUB_DISABLE_XET=1, "
                "through `hf-cache-sync serve` (its remote a Garage prefix the repo was pushed to) "
                "and through Olah (olah-cli pointed at bench/hub_standin.py with --hf-scheme http "
                "--hf-netloc/--hf-lfs-netloc, which fetched the repo once before the runs). "
                "Page cache warm. Every file's sha256 checked after each run. CPU is the client's; "
                "the server's own CPU per run (median, /proc/<pid>/stat): "
                + ", ".join(f"{n} {v:.2f} s" for n, v in per_tool.items()) + "; each run's seconds: "
                + self.per_run("serve-olah") + ".")
        finally:
            for s in servers:
                s.stop()
            if standin:
                standin.kill()
                standin.wait()
            shutil.rmtree(root, ignore_errors=True)
            self.b.drop_prefix(prefix)

    def per_run(self, scenario):
        runs = self.b.runs_of.get(scenario, {})
        return "; ".join(f"{n} " + ", ".join(f"{s:.2f}" for s in v) for n, v in runs.items())

    def serve_vs_pull(self):
        """snapshot_download through serve against `pull` of the same revision from the same
        prefix, page cache dropped before every run; `serve --presign` too when it exists."""
        mib = max(1, self.b.args.shard_mib // 2)
        root, repo, commit, expected, prefix = self.fixture(mib)
        nbytes = sum(os.path.getsize(os.path.realpath(os.path.join(repo, "snapshots", commit, p)))
                     for p in expected)
        servers = []
        try:
            serve, serve_url = self.serve(prefix)
            servers.append(serve)
            tools = {"ours": self.snapshot("serve", commit, expected)}
            envs = {"ours": self.client_env(serve_url)}

            def pull():
                dest = os.path.join(self.b.work, self.b.fresh("pulldest"))

                def cleanup():
                    check_snapshot(dest, commit, expected, "pull")
                    shutil.rmtree(dest, ignore_errors=True)
                return self.b.ours_cmd(self.b.config(dest, prefix), "pull", REPO_ID), cleanup

            tools["ours pull"] = pull
            envs["ours pull"] = self.b.env
            if self.has_presign:
                presign, presign_url = self.serve(prefix, "--presign")
                servers.append(presign)
                tools["ours serve --presign"] = self.snapshot("serve --presign", commit, expected)
                envs["ours serve --presign"] = self.client_env(presign_url)
            per_tool = self.b.run("serve-vs-pull", tools, {"ours pull": "<= 1.5"}, nbytes=nbytes,
                                  env=envs, observe=lambda: sum(s.cpu() for s in servers),
                                  drop_caches=True)
            med = {n: statistics.median(v) for n, v in self.b.runs_of["serve-vs-pull"].items()}
            presign = ""
            if self.has_presign:
                presign = (f" `serve --presign` took {med['ours serve --presign'] / med['ours pull']:.2f}x"
                           " the pull's time.")
            else:
                presign = " The binary's `serve --help` has no --presign: not run."
            self.b.notes.append(
                f"serve-vs-pull: the same model with 2 shards of {mib} MiB ({nbytes / MIB:.1f} MiB), "
                "snapshot_download through `serve` (remote: a Garage prefix holding the revision) "
                "against `hf-cache-sync pull` of the same revision from the same prefix into a fresh "
                "cache; every file's sha256 checked after each run. The server's own CPU per run "
                "(median): " + ", ".join(f"{n} {v:.2f} s" for n, v in per_tool.items()
                                         if n != "ours pull") + "." + presign)
        finally:
            for s in servers:
                s.stop()
            shutil.rmtree(root, ignore_errors=True)
            self.b.drop_prefix(prefix)

    def serve_16(self, clients=16):
        """`clients` snapshot_download processes at once, each into its own fresh cache, through
        one serve process started for this scenario: its peak RSS and CPU-s per GiB served."""
        mib = max(1, self.b.args.shard_mib // 8)
        root, repo, commit, expected, prefix = self.fixture(mib)
        nbytes = sum(os.path.getsize(os.path.realpath(os.path.join(repo, "snapshots", commit, p)))
                     for p in expected)
        serve = None
        scenario = f"serve-{clients}"
        try:
            serve, url = self.serve(prefix)
            env = self.client_env(url)
            walls, cpus = [], []
            rounds = self.b.args.runs + 1
            for r in range(rounds):
                dests = [os.path.join(self.b.work, self.b.fresh("s16dest")) for _ in range(clients)]
                cpu0 = serve.cpu()
                start = time.monotonic()
                procs = [subprocess.Popen(self.snapshot_cmd(d), env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE) for d in dests]
                errs = [p.communicate()[1] for p in procs]
                wall = time.monotonic() - start
                cpu = serve.cpu() - cpu0
                received = 0
                for i, (p, d) in enumerate(zip(procs, dests)):
                    if p.returncode != 0:
                        sys.stderr.write(errs[i].decode(errors="replace")[-3000:])
                        raise SystemExit(f"{scenario}: client {i} failed ({p.returncode})")
                    received += check_snapshot(d, commit, expected, f"{scenario} client {i}")
                    shutil.rmtree(d, ignore_errors=True)
                if r > 0:
                    walls.append(wall)
                    cpus.append((cpu, received))
                print(f"  {scenario}: round {r + 1}/{rounds} done ({wall:.2f} s, serve {cpu:.2f} CPU-s)",
                      file=sys.stderr)
            hwm = serve.peak_rss_mib()
            med = statistics.median(walls)
            cpu = statistics.median(c for c, _ in cpus)
            per_gib = statistics.median(c / (n / (1024 * MIB)) for c, n in cpus)
            self.b.rows.append((scenario, f"ours serve ({clients} clients)", med, cpu, per_gib, hwm, "",
                                "RSS <= 200 MiB, <= 1.5 CPU-s/GiB"))
            print(f"{scenario:14} serve {med:9.3f}s {cpu:7.2f} CPU-s {per_gib:6.2f} CPU-s/GiB "
                  f"{hwm:8.1f} MiB VmHWM", file=sys.stderr)
            self.b.notes.append(
                f"{scenario}: {clients} snapshot_download processes at once, each into its own fresh "
                f"HF_HUB_CACHE, of the model with 2 shards of {mib} MiB ({nbytes / MIB:.1f} MiB a "
                f"client, {clients * nbytes / MIB:.0f} MiB a round) through one `serve` started for "
                "the scenario; all clients succeeded and every file's sha256 matched. Wall: from "
                "the first start to the last exit. CPU and CPU-s/GiB are the serve process's "
                "(utime+stime of /proc/<pid>/stat before and after a round, divided by the bytes "
                "the clients received); peak RSS is its VmHWM (/proc/<pid>/status) after all "
                f"rounds. Each round's seconds: {', '.join(f'{w:.2f}' for w in walls)}; serve "
                f"CPU-s: {', '.join(f'{c:.2f}' for c, _ in cpus)}.")
        finally:
            if serve:
                serve.stop()
            shutil.rmtree(root, ignore_errors=True)
            self.b.drop_prefix(prefix)
