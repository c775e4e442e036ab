#!/usr/bin/env bash
# Throwaway Garage S3 servers for the integration tests: one node, or a 3-node cluster.
#
#   scripts/garage.sh install           install garage 2.5.0 with cargo when it is missing
#   scripts/garage.sh start DIR         start a server whose config, data, log and pid live in DIR,
#                                       and write DIR/env.sh with the HFCS_TEST_* variables
#   scripts/garage.sh cluster DIR       start 3 nodes on loopback (replication factor 3), each in
#                                       DIR/nodeN with its pid in DIR/nodeN.pid, and write DIR/env.sh
#                                       with the HFCS_CLUSTER_* variables (S3 endpoint of node 1)
#   scripts/garage.sh start-node DIR N  start node N of the cluster in DIR again after it was stopped,
#                                       and wait until the cluster is fully healthy
#   scripts/garage.sh stop DIR          stop the server or every node of the cluster started in DIR
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

# Succeeds once the URL answers 200 (the admin API's /health does once every node is up and
# every partition has all its replicas).
http_ok() {
    python3 - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception:
    sys.exit(1)
EOF
}

# Waits until the server started with CONFIG answers RPC; fails if it exits or takes over 60s.
wait_rpc() {
    local bin="$1" config="$2" pidfile="$3" logfile="$4"
    local i
    for i in $(seq 1 120); do
        if "$bin" -c "$config" status >/dev/null 2>&1; then
            return 0
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
}

# Prints `<node id>@<rpc address>` of the server started with CONFIG.
node_id() {
    local id
    id="$("$1" -c "$2" node id -q 2>/dev/null | head -n1)"
    [[ -n "$id" ]] || die "could not read the node id ($2)"
    echo "$id"
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

    wait_rpc "$bin" "$config" "$pidfile" "$logfile"

    local g=("$bin" -c "$config")
    local i node_id
    node_id="$(node_id "$bin" "$config")"
    node_id="${node_id%%@*}"

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

CLUSTER_NODES=3
# Set while `cluster` sets up, so that a failure stops the nodes it already started.
CLUSTER_SETUP_DIR=""

# Starts node N of the cluster in DIR from its existing config and waits until it answers RPC.
start_cluster_node() {
    local bin="$1" dir="$2" n="$3"
    local config="$dir/node$n/garage.toml"
    local pidfile="$dir/node$n.pid"
    local logfile="$dir/node$n.log"
    [[ -f "$config" ]] || die "no node $n in the cluster in $dir (missing $config)"
    if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        die "node $n of the cluster in $dir is already running (pid $(cat "$pidfile"))"
    fi
    RUST_LOG="${GARAGE_LOG:-garage=info}" \
        nohup "$bin" -c "$config" server </dev/null >>"$logfile" 2>&1 &
    echo $! >"$pidfile"
    disown || true
    wait_rpc "$bin" "$config" "$pidfile" "$logfile"
}

# Waits until the admin API at URL reports the whole cluster healthy.
wait_healthy() {
    local dir="$1" url="$2"
    local i
    for i in $(seq 1 240); do
        if http_ok "$url"; then
            return 0
        fi
        sleep 0.25
    done
    die "the cluster in $dir did not become healthy within 60s (logs: $dir/node*.log)"
}

cluster_setup_failed() {
    if [[ -n "$CLUSTER_SETUP_DIR" ]]; then
        cmd_stop "$CLUSTER_SETUP_DIR" 2>/dev/null || true
    fi
}

cmd_cluster() {
    local dir="${1:?usage: garage.sh cluster DIR}"
    local bin
    bin="$(find_garage)"
    [[ -n "$bin" ]] || die "garage is not installed; run: scripts/garage.sh install"

    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local n
    for n in $(seq 1 "$CLUSTER_NODES"); do
        if [[ -f "$dir/node$n.pid" ]] && kill -0 "$(cat "$dir/node$n.pid")" 2>/dev/null; then
            die "a garage cluster is already running from $dir"
        fi
    done
    CLUSTER_SETUP_DIR="$dir"
    trap cluster_setup_failed EXIT

    # Three ports a node (rpc, s3, admin), picked in one go so that none repeats.
    local ports secret admin_token
    ports="$(free_ports $((3 * CLUSTER_NODES)))"
    secret="$(random_hex 32)"
    admin_token="$(random_hex 32)"
    local rpc_port=() s3_port=() admin_port=()
    for n in $(seq 1 "$CLUSTER_NODES"); do
        rpc_port[n]="$(sed -n "$((3 * n - 2))p" <<<"$ports")"
        s3_port[n]="$(sed -n "$((3 * n - 1))p" <<<"$ports")"
        admin_port[n]="$(sed -n "$((3 * n))p" <<<"$ports")"
        mkdir -p "$dir/node$n/meta" "$dir/node$n/data"
        cat >"$dir/node$n/garage.toml" <<EOF
metadata_dir = "$dir/node$n/meta"
data_dir = "$dir/node$n/data"
db_engine = "sqlite"
replication_factor = 3

rpc_bind_addr = "127.0.0.1:${rpc_port[n]}"
rpc_public_addr = "127.0.0.1:${rpc_port[n]}"
rpc_secret = "$secret"

[s3_api]
s3_region = "$REGION"
api_bind_addr = "127.0.0.1:${s3_port[n]}"

[admin]
api_bind_addr = "127.0.0.1:${admin_port[n]}"
admin_token = "$admin_token"
EOF
    done

    log "starting a $CLUSTER_NODES-node garage cluster in $dir"
    for n in $(seq 1 "$CLUSTER_NODES"); do
        start_cluster_node "$bin" "$dir" "$n"
    done

    # Node 1 learns the others' addresses; gossip and the stored peer lists do the rest.
    local g=("$bin" -c "$dir/node1/garage.toml")
    local ids=() full
    for n in $(seq 1 "$CLUSTER_NODES"); do
        full="$(node_id "$bin" "$dir/node$n/garage.toml")"
        ids[n]="${full%%@*}"
        if [[ $n -gt 1 ]]; then
            "${g[@]}" node connect "$full" >>"$dir/setup.log" 2>&1 || {
                tail -n 30 "$dir/setup.log" >&2 || true
                die "node 1 cannot connect to node $n (log: $dir/setup.log)"
            }
        fi
    done

    # One zone a node, so each zone holds one of the three copies of every partition.
    {
        for n in $(seq 1 "$CLUSTER_NODES"); do
            "${g[@]}" layout assign -z "dc$n" -c 1G "${ids[n]}"
        done
        "${g[@]}" layout apply --version 1
    } >>"$dir/setup.log" 2>&1 || {
        tail -n 30 "$dir/setup.log" >&2 || true
        die "garage layout setup failed (log: $dir/setup.log)"
    }
    local health="http://127.0.0.1:${admin_port[1]}/health"
    wait_healthy "$dir" "$health"

    {
        "${g[@]}" key import --yes -n "$RW_KEY_NAME" "$RW_KEY_ID" "$RW_SECRET"
        "${g[@]}" bucket create "$BUCKET"
        "${g[@]}" bucket allow --read --write --owner "$BUCKET" --key "$RW_KEY_NAME"
    } >>"$dir/setup.log" 2>&1 || {
        tail -n 30 "$dir/setup.log" >&2 || true
        die "garage setup failed (log: $dir/setup.log)"
    }

    local i
    for i in $(seq 1 120); do
        if http_answers "http://127.0.0.1:${s3_port[1]}/$BUCKET"; then
            break
        fi
        if [[ $i -eq 120 ]]; then
            die "the S3 API on 127.0.0.1:${s3_port[1]} does not answer (log: $dir/node1.log)"
        fi
        sleep 0.5
    done

    {
        echo "export HFCS_CLUSTER_ENDPOINT=http://127.0.0.1:${s3_port[1]}"
        echo "export HFCS_CLUSTER_REGION=$REGION"
        echo "export HFCS_CLUSTER_BUCKET=$BUCKET"
        echo "export HFCS_CLUSTER_ACCESS_KEY=$RW_KEY_ID"
        echo "export HFCS_CLUSTER_SECRET_KEY=$RW_SECRET"
        echo "export HFCS_CLUSTER_NODES=$CLUSTER_NODES"
        echo "export HFCS_CLUSTER_HEALTH=$health"
        echo "export HFCS_CLUSTER_GARAGE_BIN=$bin"
        for n in $(seq 1 "$CLUSTER_NODES"); do
            echo "export HFCS_CLUSTER_NODE${n}_PIDFILE=$dir/node$n.pid"
            echo "export HFCS_CLUSTER_NODE${n}_CONFIG=$dir/node$n/garage.toml"
        done
    } >"$dir/env.sh"
    CLUSTER_SETUP_DIR=""
    trap - EXIT
    log "ready: http://127.0.0.1:${s3_port[1]} bucket $BUCKET on $CLUSTER_NODES nodes (pids in $dir/node*.pid)"
}

cmd_start_node() {
    local dir="${1:?usage: garage.sh start-node DIR N}"
    local n="${2:?usage: garage.sh start-node DIR N}"
    local bin
    bin="$(find_garage)"
    [[ -n "$bin" ]] || die "garage is not installed; run: scripts/garage.sh install"
    [[ -f "$dir/env.sh" ]] || die "no cluster in $dir (missing env.sh)"
    local health
    health="$(sed -n 's/^export HFCS_CLUSTER_HEALTH=//p' "$dir/env.sh")"
    start_cluster_node "$bin" "$dir" "$n"
    # The node dials its known peers itself; node 1 dialling it too spares a reconnect backoff.
    if [[ "$n" != 1 ]]; then
        "$bin" -c "$dir/node1/garage.toml" node connect \
            "$(node_id "$bin" "$dir/node$n/garage.toml")" >>"$dir/setup.log" 2>&1 || true
    fi
    wait_healthy "$dir" "$health"
    log "node $n is back (pid $(cat "$dir/node$n.pid")) and the cluster is healthy"
}

# Stops the server whose pid is in PIDFILE (SIGTERM, SIGKILL after 10s) and removes the file.
stop_pidfile() {
    local pidfile="$1"
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

# Stops the single server or every node of the cluster started in DIR.
cmd_stop() {
    local dir="${1:?usage: garage.sh stop DIR}"
    local pidfile found=0
    # The nodes of a cluster shut down side by side.
    for pidfile in "$dir/garage.pid" "$dir"/node*.pid; do
        [[ -f "$pidfile" ]] || continue
        found=1
        stop_pidfile "$pidfile" &
    done
    wait
    if [[ $found -eq 0 ]]; then
        log "no pid file in $dir; nothing to stop"
    fi
}

case "${1:-}" in
install) cmd_install ;;
start) cmd_start "${2:-}" ;;
cluster) cmd_cluster "${2:-}" ;;
start-node) cmd_start_node "${2:-}" "${3:-}" ;;
stop) cmd_stop "${2:-}" ;;
*)
    echo "usage: $0 install | start DIR | cluster DIR | start-node DIR N | stop DIR" >&2
    exit 2
    ;;
esac
