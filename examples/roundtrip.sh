#!/usr/bin/env bash
# The main job end to end, with no server: push a hub cache to a directory remote, pull it into
# an empty cache on "another machine", and check every file came back byte for byte.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --quiet
bin="$PWD/target/release/hf-cache-sync"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 examples/make_cache.py "$work/machine-a" --repos 3 --lfs-mib 16
mkdir -p "$work/shared-remote"

echo "--- push from machine A"
"$bin" --cache-dir "$work/machine-a" push --remote "$work/shared-remote"
echo "--- push again (nothing to do)"
"$bin" --cache-dir "$work/machine-a" push --remote "$work/shared-remote"
echo "--- pull one repo on machine B"
"$bin" --cache-dir "$work/machine-b" pull demo-org/model-0 --remote "$work/shared-remote"
echo "--- pull everything on machine B"
"$bin" --cache-dir "$work/machine-b" pull-all --remote "$work/shared-remote"

echo "--- compare"
for repo in "$work"/machine-a/models--*; do
  name="$(basename "$repo")"
  diff -r "$repo/snapshots/$(cat "$repo/refs/main")" \
          "$work/machine-b/$name/snapshots/$(cat "$repo/refs/main")" >/dev/null
  echo "ok  $name: main snapshot identical"
done
echo "round trip complete"
