#!/usr/bin/env bash
# Smoke test of `aurora serve` with the shipped config/cluster-3.toml: three real processes on
# loopback (addresses, data dirs and secret overridden through AURORA_* variables and --set, the
# layering a deployment uses), put/get through the CLI, kill -9 the leader, check that a new leader
# serves the acknowledged write, and stop the rest with SIGTERM (clean shutdown, exit 0).
# Cost: one debug build of the binary (shared with `cargo test`) plus ~5 s.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --bin aurora
bin="${CARGO_TARGET_DIR:-target}/debug/aurora"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

printf 'smoke-test-only-secret-0123456789abcdef\n' > "$work/secret"
chmod 600 "$work/secret"
# Ports below the kernel's ephemeral range: earlier stages leave thousands of client sockets on
# ephemeral ports, and a listener placed among them can find its port taken (CI saw all three admin
# binds fail that way).
ephemeral_lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range)
base=$((20000 + RANDOM % (ephemeral_lo - 20000 - 30)))
sets=()
endpoints=()
for i in 0 1 2; do
    p=$((base + 10 * i))
    sets+=(--set "members[$i].peer_addr=127.0.0.1:$p" --set "members[$i].client_addr=127.0.0.1:$((p + 1))"
           --set "members[$i].admin_addr=127.0.0.1:$((p + 2))")
    endpoints+=("127.0.0.1:$((p + 1))")
done
export AURORA_ENDPOINTS
AURORA_ENDPOINTS="$(IFS=,; echo "${endpoints[*]}")"
export AURORA_CLUSTER_ID=0x0A170003

for id in 1 2 3; do
    AURORA_NODE_ID=$id AURORA_DATA_DIR="$work/n$id" AURORA_SECRET_FILE="$work/secret" \
        "$bin" serve --config config/cluster-3.toml "${sets[@]}" \
        --set runtime.pin=false --set runtime.cores=[] --set runtime.shards=1 --set runtime.spin_us=0 \
        2> "$work/n$id.log" &
    pids+=($!)
done

# GET one admin path with bash's /dev/tcp (no curl needed on a fresh machine).
admin_get() {
    exec 3<>"/dev/tcp/127.0.0.1/$1"
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "$2" >&3
    cat <&3
    exec 3<&-
}
for _ in $(seq 100); do
    "$bin" put smoke/key before-failover > /dev/null 2>&1 && break
    sleep 0.1
done
"$bin" get smoke/key | grep -q before-failover || { echo "serve-smoke: get after put failed"; cat "$work"/n*.log; exit 1; }

leader=""
for id in 1 2 3; do
    port=$((base + 10 * (id - 1) + 2))
    if admin_get "$port" /status | grep -q '"role":"leader"'; then leader=$id; fi
done
[ -n "$leader" ] || { echo "serve-smoke: no node reports itself leader"; exit 1; }
echo "serve-smoke: leader is node $leader; kill -9"
kill -9 "${pids[$((leader - 1))]}"
for _ in $(seq 100); do
    "$bin" put smoke/after killed-leader > /dev/null 2>&1 && break
    sleep 0.1
done
"$bin" get smoke/key | grep -q before-failover || { echo "serve-smoke: acknowledged write lost"; exit 1; }
"$bin" get smoke/after | grep -q killed-leader || { echo "serve-smoke: new leader does not serve"; exit 1; }
for id in 1 2 3; do
    [ "$id" = "$leader" ] && continue
    kill -TERM "${pids[$((id - 1))]}"
    wait "${pids[$((id - 1))]}" || { echo "serve-smoke: node $id did not stop cleanly"; cat "$work/n$id.log"; exit 1; }
done
echo "serve-smoke: ok (put/get, leader killed, new leader serves, clean SIGTERM shutdown)"
