#!/usr/bin/env bash
# A 3-node Aurora cluster over DPDK memif (config/dpdk-memif.toml), then the same three nodes over
# tcp_uring, each measured with `aurora bench` in the same run: commit latency over DPDK vs the
# kernel path. The memif mesh: node 1 serves sockets 1-2 and 1-3, node 2 joins 1-2 and serves 2-3,
# node 3 joins 1-3 and 2-3; each node's transport learns which port reaches which peer.
#
#   hack/dpdk-cluster.sh [SECONDS] [SPIN_US] [DURABILITY]
# SPIN_US (default 50, the config's) is how long an idle node spins before it parks; DPDK parks by
# sleeping (no interrupts), so a small value saves the cores and costs latency. Three spinning
# nodes need three cores; this box has two. DURABILITY (fsync, the config's, or memory) takes the
# disk out of the commit so the fabric shows. Needs root and DPDK (hack/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_RUN=${1:-5}
SPIN_US=${2:-50}
DURABILITY=${3:-fsync}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
PROFILE=${PROFILE:-release}
if [ "$PROFILE" = release ]; then
    cargo build --release --features dpdk --quiet
else
    cargo build --features dpdk --quiet
fi
AURORA="$CARGO_TARGET_DIR/$PROFILE/aurora"
RIG="/tmp/aurora-dpdk-cluster-$$"
mkdir -p "$RIG"
pids=()
cleanup() {
    local rc=$?
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf /var/run/dpdk/aurora-a1700d3-* "$RIG"/*.sock
    [ $rc = 0 ] || { for f in "$RIG"/*.log; do echo "== $f"; grep -v '^EAL\|TELEMETRY' "$f" | tail -5; done; }
    exit $rc
}
trap cleanup EXIT

ENDPOINTS=127.0.0.1:7202,127.0.0.1:7212,127.0.0.1:7222
CLUSTER_ID=0x0A1700D3
s12="$RIG/s12.sock"; s13="$RIG/s13.sock"; s23="$RIG/s23.sock"
vdevs=(
    "[\"net_memif0,role=server,socket=$s12,socket-abstract=no\", \"net_memif1,role=server,socket=$s13,socket-abstract=no\"]"
    "[\"net_memif0,role=client,socket=$s12,socket-abstract=no\", \"net_memif1,role=server,socket=$s23,socket-abstract=no\"]"
    "[\"net_memif0,role=client,socket=$s13,socket-abstract=no\", \"net_memif1,role=client,socket=$s23,socket-abstract=no\"]"
)

# memif: a client must find its server's socket, and EAL start-up takes seconds on a loaded box.
wait_socket() {
    for _ in $(seq 1 300); do [ -S "$1" ] && return 0; sleep 0.1; done
    echo "memif socket $1 did not appear in 30 s (did the server side fail? see its log)"; return 1
}

start_cluster() {
    local transport=$1
    pids=()
    rm -rf "$RIG/data-$transport" "$RIG"/*.sock
    for n in 1 2 3; do
        AURORA_DPDK__VDEVS="${vdevs[$((n - 1))]}" "$AURORA" serve --config config/dpdk-memif.toml \
            --set node_id=$n --set transport="$transport" --set "data_dir=$RIG/data-$transport/n$n" \
            --set runtime.spin_us="$SPIN_US" --set durability="$DURABILITY" > "$RIG/$transport-n$n.log" 2>&1 &
        pids+=($!)
        # memif: every socket's server before its client.
        if [ "$transport" = dpdk ]; then
            case $n in
                1) wait_socket "$s12" && wait_socket "$s13" ;;
                2) wait_socket "$s23" ;;
            esac
        fi
    done
    for _ in $(seq 1 100); do
        if "$AURORA" put --endpoints "$ENDPOINTS" --cluster-id "$CLUSTER_ID" --timeout-ms 1000 \
            rig/ready yes > /dev/null 2>&1; then
            echo "dpdk-cluster: $transport cluster committed its first write"
            return 0
        fi
        sleep 0.3
    done
    echo "dpdk-cluster: the $transport cluster did not commit a write in 30 s"
    return 1
}

stop_cluster() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    pids=()
}

bench() {
    "$AURORA" bench --endpoints "$ENDPOINTS" --cluster-id "$CLUSTER_ID" --duration "$SECONDS_RUN" \
        --json | tail -1
}

start_cluster dpdk
dpdk_json=$(bench)
"$AURORA" put --endpoints "$ENDPOINTS" --cluster-id "$CLUSTER_ID" rig/after-bench ok > /dev/null
stop_cluster
start_cluster tcp_uring
tcp_json=$(bench)
stop_cluster
echo "dpdk:      $dpdk_json"
echo "tcp_uring: $tcp_json"
