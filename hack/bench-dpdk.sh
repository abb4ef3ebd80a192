#!/usr/bin/env bash
# Aurora's DPDK ping-pong against a raw DPDK C ping-pong (hack/dpdk-raw-pingpong.c, built here) on
# the same net_memif pair, in the same run: blocks alternate raw and Aurora so background load hits
# both alike; the report gives each block's p50/p99 and the median p50 ratio (goal <= 1.2x).
#
#   hack/bench-dpdk.sh [ROUND_TRIPS] [BLOCKS] [MODE]
#     MODE spin  (default): both processes spin, pinned to cores 0 and 1 (production polling);
#          yield: both give the CPU away between empty polls (what adaptive polling falls back to
#          once its spin budget is spent, so more processes than cores can share a box).
# Frames are the same size on both sides: Aurora's 64 B payload + 56 B frame header + 20 B
# reliability header + 42 B Ethernet/IPv4/UDP = 182 B. Needs root and DPDK (hack/install-deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUND_TRIPS=${1:-100000}
BLOCKS=${2:-5}
MODE=${3:-spin}
WARMUP=$((ROUND_TRIPS / 10))
FRAME_BYTES=182

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
cargo build --release --features dpdk --quiet
AURORA="$CARGO_TARGET_DIR/release/aurora"
RAW="$CARGO_TARGET_DIR/dpdk-raw-pingpong"
# shellcheck disable=SC2046
cc -O2 -o "$RAW" hack/dpdk-raw-pingpong.c $(pkg-config --cflags --libs libdpdk)

TAG="aurora-bench-$$"
SOCK="/tmp/$TAG.sock"
OUT="/tmp/$TAG"
mkdir -p "$OUT"
trap 'rm -rf /var/run/dpdk/$TAG* "$SOCK"' EXIT
EAL=(--no-huge -m 256 --no-pci)

raw_yield=(); aurora_idle=(--spin)
if [ "$MODE" = yield ]; then raw_yield=(--yield); aurora_idle=(); fi

# memif: a client must find its server's socket, and EAL start-up takes seconds on a loaded box.
wait_socket() {
    for _ in $(seq 1 300); do [ -S "$1" ] && return 0; sleep 0.1; done
    echo "memif socket $1 did not appear in 30 s (did the server side fail? see its log)"; return 1
}

run_raw() {
    local b=$1
    rm -f "$SOCK"
    "$RAW" -l 1 --file-prefix "$TAG-rs" "${EAL[@]}" --vdev "net_memif0,role=server,socket=$SOCK,socket-abstract=no" -- \
        --role server --frame-bytes $FRAME_BYTES --round-trips "$ROUND_TRIPS" --warmup "$WARMUP" \
        "${raw_yield[@]}" > "$OUT/raw-s-$b.out" 2> "$OUT/raw-s-$b.err" &
    local srv=$!
    wait_socket "$SOCK" || { tail -3 "$OUT/raw-s-$b.err"; exit 1; }
    "$RAW" -l 0 --file-prefix "$TAG-rc" "${EAL[@]}" --vdev "net_memif0,role=client,socket=$SOCK,socket-abstract=no" -- \
        --role client --frame-bytes $FRAME_BYTES --round-trips "$ROUND_TRIPS" --warmup "$WARMUP" \
        "${raw_yield[@]}" > "$OUT/raw-$b.json" 2> "$OUT/raw-c-$b.err" \
        || { tail -3 "$OUT/raw-c-$b.err"; exit 1; }
    wait "$srv" || { tail -3 "$OUT/raw-s-$b.err"; exit 1; }
}

run_aurora() {
    local b=$1
    local eal=()
    for a in "${EAL[@]}"; do eal+=("--eal-arg=$a"); done
    rm -f "$SOCK"
    "$AURORA" dpdk-ping --role server --core 1 --file-prefix "$TAG-as" "${eal[@]}" \
        --vdev "net_memif0,role=server,socket=$SOCK,socket-abstract=no" --round-trips "$ROUND_TRIPS" \
        --warmup "$WARMUP" "${aurora_idle[@]}" > "$OUT/aur-s-$b.out" 2> "$OUT/aur-s-$b.err" &
    local srv=$!
    wait_socket "$SOCK" || { tail -3 "$OUT/aur-s-$b.err"; exit 1; }
    "$AURORA" dpdk-ping --role client --core 0 --file-prefix "$TAG-ac" "${eal[@]}" \
        --vdev "net_memif0,role=client,socket=$SOCK,socket-abstract=no" --round-trips "$ROUND_TRIPS" \
        --warmup "$WARMUP" "${aurora_idle[@]}" > "$OUT/aurora-$b.json" 2> "$OUT/aur-c-$b.err" \
        || { tail -3 "$OUT/aur-c-$b.err"; exit 1; }
    wait "$srv" || { tail -3 "$OUT/aur-s-$b.err"; exit 1; }
}

for b in $(seq 1 "$BLOCKS"); do
    run_raw "$b"
    run_aurora "$b"
done

python3 - "$OUT" "$BLOCKS" "$MODE" "$ROUND_TRIPS" <<'PY'
import json, statistics, sys
out, blocks, mode, rts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = []
for b in range(1, blocks + 1):
    raw = json.load(open(f"{out}/raw-{b}.json"))
    aur = json.loads(open(f"{out}/aurora-{b}.json").read().splitlines()[-1])
    rows.append((raw, aur))
    print(f"block {b}: raw p50 {raw['p50_ns']/1000:.2f} us p99 {raw['p99_ns']/1000:.2f} us | "
          f"aurora p50 {aur['p50_ns']/1000:.2f} us p99 {aur['p99_ns']/1000:.2f} us "
          f"(retransmitted {aur['retransmitted_frames']})")
raw50 = statistics.median(r['p50_ns'] for r, _ in rows)
aur50 = statistics.median(a['p50_ns'] for _, a in rows)
raw99 = statistics.median(r['p99_ns'] for r, _ in rows)
aur99 = statistics.median(a['p99_ns'] for _, a in rows)
print(f"\nnet_memif, {rows[0][0]['frame_bytes']} B frames, {rts} round trips x {blocks} blocks, mode {mode}")
print(f"median p50: raw {raw50/1000:.2f} us, aurora {aur50/1000:.2f} us, ratio {aur50/raw50:.2f}x (goal <= 1.2x)")
print(f"median p99: raw {raw99/1000:.2f} us, aurora {aur99/1000:.2f} us, ratio {aur99/raw99:.2f}x")
PY
