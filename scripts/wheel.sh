#!/usr/bin/env bash
# Builds the Python wheel, installs it into a fresh venv and runs a push/pull round trip through
# the installed `hf-cache-sync` against the Garage test server, as a team that installs its tools
# with pip would (no Rust toolchain needed where the wheel is installed).
#
#   scripts/wheel.sh PYTHON     PYTHON: an interpreter whose environment has maturin and
#                               huggingface_hub (scripts/test.sh passes its venv's); the HFCS_TEST_*
#                               variables of scripts/garage.sh must be set.
#   WHEEL_PROFILE=release scripts/wheel.sh PYTHON    builds an optimised wheel (the default is the
#                               dev profile the tests already compiled).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
python="${1:?usage: scripts/wheel.sh PYTHON}"
: "${HFCS_TEST_ENDPOINT:?the Garage test server is not running (see scripts/garage.sh)}"
step() { echo "==> wheel: $*" >&2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/hfcs-wheel.XXXXXX")"
trap 'rm -rf "$work"' EXIT

profile_flag=()
if [[ "${WHEEL_PROFILE:-dev}" == "release" ]]; then
    profile_flag=(--release)
fi
step "building the wheel (${WHEEL_PROFILE:-dev} profile)"
"$python" -m maturin build --quiet "${profile_flag[@]}" --out "$work/dist" >&2
wheel="$(ls "$work"/dist/hf_cache_sync-*.whl)"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)"
case "$(basename "$wheel")" in
    "hf_cache_sync-$version-"*) ;;
    *) echo "error: the wheel $(basename "$wheel") does not carry Cargo.toml's version $version" >&2; exit 1 ;;
esac
size=$(stat -c %s "$wheel")

step "installing $(basename "$wheel") into a fresh venv"
python3 -m venv "$work/venv"
start=$(date +%s.%N)
"$work/venv/bin/pip" install --quiet --no-index "$wheel"
end=$(date +%s.%N)
install_secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')

# Only what pip put on PATH from here on: the venv's bin, never target/.
export PATH="$work/venv/bin:/usr/bin:/bin"
bin="$(command -v hf-cache-sync)"
[[ "$bin" == "$work/venv/bin/hf-cache-sync" ]] || { echo "error: hf-cache-sync on PATH is $bin" >&2; exit 1; }
installed="$(hf-cache-sync --version)"
[[ "$installed" == "hf-cache-sync $version" ]] || { echo "error: installed binary says '$installed'" >&2; exit 1; }

step "round trip through $bin"
prefix="wheel-$(date +%s)-$$"
cat >"$work/config.yaml" <<YAML
storage:
  endpoint: $HFCS_TEST_ENDPOINT
  bucket: $HFCS_TEST_BUCKET
  region: $HFCS_TEST_REGION
team:
  prefix: $prefix
YAML
export B2_APPLICATION_KEY_ID="$HFCS_TEST_ACCESS_KEY" B2_APPLICATION_KEY="$HFCS_TEST_SECRET_KEY"
export HOME="$work/home" AWS_EC2_METADATA_DISABLED=true
mkdir -p "$HOME"
"$python" examples/make_cache.py "$work/machine-a" --repos 2 --lfs-mib 2 >/dev/null
hf-cache-sync --config "$work/config.yaml" --cache-dir "$work/machine-a" push >&2
hf-cache-sync --config "$work/config.yaml" --cache-dir "$work/machine-b" pull-all >&2
for repo in "$work"/machine-a/models--*; do
    name="$(basename "$repo")"
    commit="$(cat "$repo/refs/main")"
    diff -r "$repo/snapshots/$commit" "$work/machine-b/$name/snapshots/$commit" >/dev/null || {
        echo "error: $name: the pulled snapshot differs from the pushed one" >&2
        exit 1
    }
done
"$python" tests/it/check_cache.py "$work/machine-b" >/dev/null

echo "wheel: $(basename "$wheel"), $((size / 1024 / 1024)) MiB, installed in ${install_secs}s; push/pull round trip through the installed binary ok"
