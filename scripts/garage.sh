#!/usr/bin/env bash
# A throwaway single-node Garage S3 server for the integration tests.
#
#   scripts/garage.sh install      install garage 2.5.0 with cargo when it is missing
#   scripts/garage.sh start DIR    start a server whose config, data, log and pid live in DIR,
#                                  and write DIR/env.sh with the HFCS_TEST_* variables
#   scripts/garage.sh stop DIR     stop the server started in DIR
set -euo pipefail

GARAGE_VERSION="2.5.0"
BUCKET="hfcs-test"
REGION="garage"

# Fixed test credentials (they only ever exist on a loopback test server).
RW_KEY_NAME="hfcs-test-rw"
RW_KEY_ID="GKfeedfacecafe00000000a001"
RW_SECRET="2ac0e4f870c23fb9609dd27910540bd07341e0c4d1d573809599cb78b7baf2d7"
RO_KEY_NAME="hfcs-test-ro"
RO_KEY_ID="GKfeedfacecafe00000000b002"
RO_SECRET="ee2ae69101565356d7b97f4bf7fdb96fc6fb480466d0d892b07a7b131f190397"

log() { echo "garage.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# Prints the path of the garage binary, or nothing.
find_garage() {
    if command -v garage >/dev/null 2>&1; then
        command -v garage
    elif [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/garage" ]]; then
        echo "${CARGO_HOME:-$HOME/.cargo}/bin/garage"
    fi
}

cmd_install() {
    local bin
    bin="$(find_garage)"
    if [[ -n "$bin" ]]; then
        log "using $bin ($("$bin" --version 2>/dev/null | head -n1))"
        return 0
    fi
    # Another `cargo install garage` already running (e.g. a provisioning step)? Let it finish.
    if command -v pgrep >/dev/null 2>&1 && pgrep -f "cargo install garage" >/dev/null 2>&1; then
        log "a 'cargo install garage' is already running; waiting for it"
        while pgrep -f "cargo install garage" >/dev/null 2>&1; do
            sleep 10
        done
        bin="$(find_garage)"
        if [[ -n "$bin" ]]; then
            log "using $bin"
            return 0
        fi
    fi
    log "installing garage $GARAGE_VERSION with cargo (this takes about 10 minutes)"
    cargo install garage --locked --version "$GARAGE_VERSION"
    bin="$(find_garage)"
    [[ -n "$bin" ]] || die "cargo install finished but no garage binary was found"
    log "installed $bin"
}

# Prints N free TCP ports on 127.0.0.1, one per line.
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
EOF
}

random_hex() {
    python3 -c "import secrets, sys; print(secrets.token_hex(int(sys.argv[1])))" "$1"
}

# Succeeds once an HTTP server answers on the given URL (any status code).
http_answers() {
    python3 - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
EOF
}

cmd_start() {
    local dir="${1:?usage: garage.sh start DIR}"
    local bin
    bin="$(find_garage)"
    [[ -n "$bin" ]] || die "garage is not installed; run: scripts/garage.sh install"

    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local config="$dir/garage.toml"
    local pidfile="$dir/garage.pid"
    local logfile="$dir/garage.log"

    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        die "a garage server is already running from $dir (pid $(cat "$pidfile"))"
    fi

    local ports rpc_port s3_port admin_port
    ports="$(free_ports 3)"
    rpc_port="$(sed -n 1p <<<"$ports")"
    s3_port="$(sed -n 2p <<<"$ports")"
    admin_port="$(sed -n 3p <<<"$ports")"

    mkdir -p "$dir/meta" "$dir/data"
    cat >"$config" <<EOF
metadata_dir = "$dir/meta"
data_dir = "$dir/data"
db_engine = "sqlite"
replication_factor = 1

rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(random_hex 32)"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:$s3_port"

[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$(random_hex 32)"
EOF

    log "starting garage on 127.0.0.1:$s3_port (config $config)"
    RUST_LOG="${GARAGE_LOG:-garage=info}" \
        nohup "$bin" -c "$config" server </dev/null >"$logfile" 2>&1 &
    echo $! >"$pidfile"
    disown || true

    local g=("$bin" -c "$config")
    local i
    for i in $(seq 1 120); do
        if "${g[@]}" status >/dev/null 2>&1; then
            break
        fi
        if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            tail -n 30 "$logfile" >&2 || true
            die "garage exited during startup (log: $logfile)"
        fi
        if [[ $i -eq 120 ]]; then
            tail -n 30 "$logfile" >&2 || true
            die "garage did not become ready within 60s (log: $logfile)"
        fi
        sleep 0.5
    done

    local node_id
    node_id="$("${g[@]}" node id -q 2>/dev/null | head -n1)"
    node_id="${node_id%%@*}"
    [[ -n "$node_id" ]] || die "could not read the node id"

    {
        "${g[@]}" layout assign -z dc1 -c 1G "$node_id"
        "${g[@]}" layout apply --version 1
        "${g[@]}" key import --yes -n "$RW_KEY_NAME" "$RW_KEY_ID" "$RW_SECRET"
        "${g[@]}" key import --yes -n "$RO_KEY_NAME" "$RO_KEY_ID" "$RO_SECRET"
        "${g[@]}" bucket create "$BUCKET"
        "${g[@]}" bucket allow --read --write --owner "$BUCKET" --key "$RW_KEY_NAME"
        "${g[@]}" bucket allow --read "$BUCKET" --key "$RO_KEY_NAME"
    } >>"$dir/setup.log" 2>&1 || {
        tail -n 30 "$dir/setup.log" >&2 || true
        die "garage setup failed (log: $dir/setup.log)"
    }

    for i in $(seq 1 120); do
        if http_answers "http://127.0.0.1:$s3_port/$BUCKET"; then
            break
        fi
        if [[ $i -eq 120 ]]; then
            die "the S3 API on 127.0.0.1:$s3_port does not answer (log: $logfile)"
        fi
        sleep 0.5
    done

    cat >"$dir/env.sh" <<EOF
export HFCS_TEST_ENDPOINT=http://127.0.0.1:$s3_port
export HFCS_TEST_REGION=$REGION
export HFCS_TEST_BUCKET=$BUCKET
export HFCS_TEST_ACCESS_KEY=$RW_KEY_ID
export HFCS_TEST_SECRET_KEY=$RW_SECRET
export HFCS_TEST_RO_ACCESS_KEY=$RO_KEY_ID
export HFCS_TEST_RO_SECRET_KEY=$RO_SECRET
export HFCS_TEST_GARAGE_CONFIG=$config
export HFCS_TEST_GARAGE_BIN=$bin
EOF
    log "ready: http://127.0.0.1:$s3_port bucket $BUCKET (pid $(cat "$pidfile"))"
}

cmd_stop() {
    local dir="${1:?usage: garage.sh stop DIR}"
    local pidfile="$dir/garage.pid"
    if [[ ! -f "$pidfile" ]]; then
        log "no pid file in $dir; nothing to stop"
        return 0
    fi
    local pid
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "garage (pid $pid) ignored SIGTERM; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            for i in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    fi
    rm -f "$pidfile"
    log "stopped garage (pid $pid)"
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start "${2:-}" ;;
stop) cmd_stop "${2:-}" ;;
*)
    echo "usage: $0 install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
