#!/usr/bin/env python3
"""Profiles one benchmark scenario: where a tool's time goes, for the analysis in RESULTS.md.

Run through `bash bench/run.sh --profile SCENARIO` (which starts Garage and the venv like a
benchmark run). For ours and the scenario's peer it runs the same command as the benchmark, once
each under `strace -c -f` (system calls: count, errors, time) and once under `perf record -g`
(hottest symbols), and prints both. Each run gets a fresh destination; they are deleted at the
end.
"""
import argparse
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402

MIB = bench.MIB


def strace_summary(cmd, env, out):
    subprocess.run(["strace", "-c", "-f", "-o", out] + cmd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        lines = f.read().splitlines()
    # Header, separator, the 15 most expensive calls, the total.
    return "\n".join(lines[:17] + lines[-2:])


def perf_summary(cmd, env, out):
    subprocess.run(["perf", "record", "-q", "-g", "-o", out, "--"] + cmd, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rep = subprocess.run(["perf", "report", "-i", out, "--no-children", "--sort", "dso,symbol",
                          "-g", "none", "--percent-limit", "1.5"],
                         capture_output=True, text=True).stdout
    return "\n".join(l for l in rep.splitlines() if l.strip() and not l.startswith("#"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--scenario", required=True,
                    choices=["pull-many", "dir-pull", "pull-big", "push-big", "https-push-big"])
    ap.add_argument("--shard-mib", type=int, default=512)
    ap.add_argument("--many-repos", type=int, default=50)
    ap.add_argument("--many-files", type=int, default=40)
    ap.add_argument("--many-file-bytes", type=int, default=20_000)
    a = ap.parse_args()

    # Bench for its environment, config files and s5cmd command line.
    b = bench.Bench(argparse.Namespace(
        work=a.work, ours=a.ours, baseline="", venv=a.venv, only="", skip_tools=""))
    work = a.work
    commands = {}
    cleanups = []
    envs = {}

    def dest(name):
        d = os.path.join(work, b.fresh(name))
        cleanups.append(lambda: shutil.rmtree(d, ignore_errors=True))
        return d

    def s5_copies(etags):
        """s5cmd copying the blobs `etags` of the scenario's prefix into a fresh folder."""
        d = dest("s5dest")
        os.makedirs(d)
        cmds = os.path.join(work, b.fresh("s5cmds") + ".txt")
        with open(cmds, "w") as f:
            for e in etags:
                f.write(f"cp s3://{b.bucket}/{prefix}/blobs/{e} {d}/{e}\n")
        return b.s5("run", cmds)

    if a.scenario in ("pull-many",):
        cache = os.path.join(work, "many-cache")
        bench.make_many(cache, a.many_repos, a.many_files, a.many_file_bytes)
        prefix = b.fresh("many")
        subprocess.run(b.ours_cmd(b.config(cache, prefix), "push"), env=b.env, check=True,
                       stdout=subprocess.DEVNULL)
        repos = sorted(os.path.join(cache, d) for d in os.listdir(cache))
        etags = [e for r in repos for e in bench.main_blobs(r)]

        def ours():
            return b.ours_cmd(b.config(dest("dest"), prefix), "pull-all")

        def peer():
            return s5_copies(etags)
        commands = {"ours": ours, "s5cmd": peer}
    elif a.scenario in ("dir-pull", "pull-big", "push-big", "https-push-big"):
        cache = os.path.join(work, "big-cache")
        bench.make_big(cache, a.shard_mib * MIB)
        repo = os.path.join(cache, "models--bench--big")
        etags = bench.main_blobs(repo)
        if a.scenario == "dir-pull":
            remote = os.path.join(work, "dir-remote")
            os.makedirs(remote)
            subprocess.run([a.ours, "--cache-dir", cache, "push", "--remote", remote], env=b.env,
                           check=True, stdout=subprocess.DEVNULL)

            def ours():
                return [a.ours, "--cache-dir", dest("dirdest"), "pull", "bench/big", "--remote", remote]

            def peer():
                d = dest("cpdest")
                os.makedirs(d)
                srcs = [os.path.join(remote, "blobs", e) for e in etags]
                return ["sh", "-c", " ".join(f"'{c}'" for c in ["cp", *srcs, d + "/"]) + " && sync"]
            commands = {"ours": ours, "cp + sync": peer}
        elif a.scenario == "pull-big":
            prefix = b.fresh("big")
            subprocess.run(b.ours_cmd(b.config(cache, prefix), "push"), env=b.env, check=True,
                           stdout=subprocess.DEVNULL)

            def ours():
                return b.ours_cmd(b.config(dest("dest"), prefix), "pull", "bench/big")

            def peer():
                cmd = s5_copies(etags)
                return ["sh", "-c", " ".join(f"'{c}'" for c in cmd) + " && sync"]
            commands = {"ours": ours, "s5cmd + sync": peer}
        else:
            endpoint = None
            if a.scenario == "https-push-big":
                front = bench.TlsFront(work, b.endpoint, sys.executable)
                cleanups.append(front.stop)
                endpoint = front.endpoint
                for tool in ("ours", "s5cmd"):
                    envs[tool], _ = b.tls_env(tool, front, cache)

            def ours():
                return b.ours_cmd(b.config(cache, b.fresh("push"), endpoint), "push")

            def peer():
                return b.s5("cp", os.path.join(repo, "blobs", "*"), f"s3://{b.bucket}/{b.fresh('s5push')}/blobs/",
                            endpoint=endpoint)
            commands = {"ours": ours, "s5cmd": peer}

    for name, make in commands.items():
        env = envs.get(name, b.env)
        # Warm-up: page cache and server state as in the benchmark's counted rounds.
        subprocess.run(make(), env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"\n=== {a.scenario}: {name}: strace -c -f", flush=True)
        print(strace_summary(make(), env, os.path.join(work, b.fresh("strace"))), flush=True)
        print(f"\n=== {a.scenario}: {name}: perf record -g (symbols over 1.5 %)", flush=True)
        print(perf_summary(make(), env, os.path.join(work, b.fresh("perf"))), flush=True)
    for c in cleanups:
        c()


if __name__ == "__main__":
    main()
