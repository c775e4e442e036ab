#!/usr/bin/env bash
# Bootstraps a fresh GPU node: installs hf-cache-sync, pulls the pinned models from the team's
# remote into the hub cache, verifies every blob of them, and exits non-zero when any model is
# missing. Idempotent: run it again (a reboot, a re-provisioning) and it finds everything in
# place, installs nothing and downloads nothing.
#
#   HFCS_MODELS="org/model@<commit> dataset/org/data@<commit>" examples/gpu-node-bootstrap.sh
#   examples/gpu-node-bootstrap.sh models.txt          # the same list, one a line, `#` comments
#   examples/gpu-node-bootstrap.sh hf-cache-sync.lock  # a lock file (`hf-cache-sync lock`)
#
# Settings (environment):
#   HFCS_MODELS     the pinned models when no file is given: [type/]org/name[@revision], a commit
#                   as the revision pins it (a ref such as main is followed instead)
#   HFCS_LOCK       a lock file instead (a file argument ending in .lock is one too): every pin
#                   pulled in one run, and with the cache intact no remote is asked at all
#   HFCS_VERSION    the hf-cache-sync version to install (default 0.2.0)
#   HFCS_PACKAGE    what pip installs (default hf-cache-sync==$HFCS_VERSION; a wheel path or URL)
#   HFCS_HOME       where it is installed (default /opt/hf-cache-sync, or ~/.local/hf-cache-sync
#                   when /opt is not writable)
#   HFCS_CONFIG     config file for the remote (default ./.hf-cache-sync.yaml, then ~/)
#   HF_HUB_CACHE    the hub cache (default $HF_HOME/hub, ~/.cache/huggingface/hub)
#   and the remote's keys: B2_APPLICATION_KEY_ID / B2_APPLICATION_KEY or AWS_* (or the config file).
set -euo pipefail

version="${HFCS_VERSION:-0.2.0}"
models_file="${1:-}"

log() { echo "bootstrap: $*" >&2; }
die() {
    echo "bootstrap: error: $1" >&2
    [[ -n "${2:-}" ]] && echo "bootstrap: hint: $2" >&2
    exit "${3:-1}"
}

# --- the list of models, or the lock file
lock="${HFCS_LOCK:-}"
if [[ "$models_file" == *.lock ]]; then
    lock="$models_file"
fi
if [[ -n "$lock" ]]; then
    [[ -r "$lock" ]] || die "cannot read the lock file $lock" \
        "write one with hf-cache-sync lock, and commit it with the code" 2
    models=""
elif [[ -n "$models_file" ]]; then
    [[ -r "$models_file" ]] || die "cannot read the model list $models_file" \
        "give a file with one [type/]org/name@revision a line" 2
    models="$(cat "$models_file")"
else
    models="${HFCS_MODELS:-}"
fi
# shellcheck disable=SC2001 # a comment ends each line of the list, not the whole list
mapfile -t wanted < <(sed 's/#.*//' <<<"$models" | tr -s ' \t' '\n' | sed '/^$/d')
if [[ -z "$lock" ]] && (( ${#wanted[@]} == 0 )); then
    die "no models to pull" "set HFCS_MODELS or pass a file listing them" 2
fi

# --- the tool: installed once, in a venv of its own
if [[ -z "${HFCS_HOME:-}" ]]; then
    if [[ -w /opt ]]; then HFCS_HOME=/opt/hf-cache-sync; else HFCS_HOME="$HOME/.local/hf-cache-sync"; fi
fi
hfcs="$HFCS_HOME/bin/hf-cache-sync"
if [[ "$("$hfcs" --version 2>/dev/null || true)" == "hf-cache-sync $version" ]]; then
    log "hf-cache-sync $version is installed in $HFCS_HOME"
else
    log "installing hf-cache-sync $version into $HFCS_HOME"
    command -v python3 >/dev/null || die "python3 is not installed" "install python3 and python3-venv"
    python3 -m venv "$HFCS_HOME" || die "cannot create a venv in $HFCS_HOME" \
        "install python3-venv, or set HFCS_HOME to a writable directory"
    "$HFCS_HOME/bin/python" -m pip install --quiet --disable-pip-version-check \
        "${HFCS_PACKAGE:-hf-cache-sync==$version}"
    installed="$("$hfcs" --version)"
    [[ "$installed" == "hf-cache-sync $version" ]] || die "installed $installed, not $version" \
        "make HFCS_VERSION and HFCS_PACKAGE agree"
fi
global=()
if [[ -n "${HFCS_CONFIG:-}" ]]; then
    global+=(--config "$HFCS_CONFIG")
fi

# --- a lock file: one pull of every pin, then every pinned file hashed
if [[ -n "$lock" ]]; then
    log "pull --lock $lock"
    "$hfcs" "${global[@]}" pull --lock "$lock" || die "not pulled: the pins named above" \
        "hf-cache-sync list --remote shows what the remote holds; push the models from a machine that has them"
    log "verify --lock $lock"
    "$hfcs" "${global[@]}" verify --lock "$lock" || die "the cache does not hold the pins intact" \
        "run hf-cache-sync pull --lock $lock again, or verify --repair"
    log "ready: every pin of $lock is in the hub cache"
    exit 0
fi

# --- the models: each pull moves only what the cache lacks
repos=()
missing=()
for model in "${wanted[@]}"; do
    repo="${model%%@*}"
    args=("$repo")
    if [[ "$repo" =~ ^(model|dataset|space|kernel)/([^/]+/[^/]+)$ ]]; then
        args=("${BASH_REMATCH[2]}" --repo-type "${BASH_REMATCH[1]}")
    fi
    if [[ "$model" == *@* ]]; then
        args+=(--revision "${model#*@}")
    fi
    repos+=("$repo")
    log "pull $model"
    if ! "$hfcs" "${global[@]}" pull "${args[@]}"; then
        missing+=("$model")
    fi
done

# --- everything there and intact?
if (( ${#missing[@]} > 0 )); then
    die "not pulled: ${missing[*]}" \
        "hf-cache-sync list --remote shows what the remote holds; push the models from a machine that has them"
fi
log "verify ${repos[*]}"
"$hfcs" "${global[@]}" verify "${repos[@]}" || die "the cache does not hold the models intact" \
    "run hf-cache-sync verify --repair, then this script again"
log "ready: ${#repos[@]} models in the hub cache"
