#!/usr/bin/env bash
# `aurora bench` against a 3-node `aurora up` cluster on loopback, in memory and then fsync
# durability: 1 client x 1 in flight (commit latency) and 4 clients x 8 in flight (throughput),
# 64 B values, each beside a raw TCP round trip measured in the same run.
#
# Usage: hack/bench-cluster.sh [SECONDS_PER_CASE] [extra `aurora bench` flags, e.g. --json]
# Cost: 2 modes x 2 cases x (SECONDS + ~3 s of warm-up and baseline) + ~2 s start-up per mode;
# hack/test.sh runs it with 2 s per case (about 30 s).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
shift || true

cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/aurora"

up_pid=
dir=
cleanup() {
    if [ -n "$up_pid" ] && kill -0 "$up_pid" 2>/dev/null; then
        kill -INT "$up_pid" 2>/dev/null || true
        wait "$up_pid" 2>/dev/null || true
    fi
    if [ -n "$dir" ]; then rm -rf "$dir"; fi
}
trap cleanup EXIT

for durability in memory fsync; do
    dir=$(mktemp -d)
    "$bin" up --nodes 3 --durability "$durability" --data-dir "$dir" --base-port 0 >"$dir/up.out" 2>&1 &
    up_pid=$!
    for _ in $(seq 150); do
        grep -q '^leader: node' "$dir/up.out" && break
        if grep -q 'no leader\|every node has exited' "$dir/up.out" || ! kill -0 "$up_pid" 2>/dev/null; then
            echo "bench-cluster: the $durability cluster did not start:" >&2
            cat "$dir/up.out" "$dir"/node*.log >&2
            exit 1
        fi
        sleep 0.2
    done
    grep -q '^leader: node' "$dir/up.out" || { echo "bench-cluster: no leader in 30 s" >&2; cat "$dir/up.out" >&2; exit 1; }
    endpoints=$(sed -n 's/^export AURORA_ENDPOINTS=//p' "$dir/up.out")
    for shape in "1 1" "4 8"; do
        read -r clients inflight <<<"$shape"
        echo "== durability $durability: $clients client(s) x $inflight in flight, 64 B, $seconds s"
        "$bin" bench --endpoints "$endpoints" --clients "$clients" --inflight "$inflight" \
            --value-size 64 --duration "$seconds" "$@"
    done
    kill -INT "$up_pid"
    wait "$up_pid"
    up_pid=
    rm -rf "$dir"
    dir=
done
