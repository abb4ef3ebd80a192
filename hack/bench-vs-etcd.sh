#!/usr/bin/env bash
# Aurora beside etcd on this machine: a 3-member etcd and a 3-node Aurora on loopback, fresh data
# directories, the same three workloads through each system's native client (put with 1 client, put
# with 64 in flight, linearizable get with 1 client; 64 B values), in both durability modes:
#   memory: etcd --unsafe-no-fsync   <->  Aurora durability = memory
#   fsync:  etcd default             <->  Aurora durability = fsync
# Prints one table with the ratios, writes JSON and a latency-CDF PNG (hack/bench_vs_etcd.rs).
#
# Usage: hack/bench-vs-etcd.sh [--quick] [--json FILE] [--png FILE] [--systems etcd,aurora]
#                               [--aurora-set KEY=VALUE ...]
#   --quick       3 s per workload after a 1 s warm-up (default 10 s after 2 s)
#   --json        where the joined results go (default target/bench-vs-etcd/results.json)
#   --png         where the CDF picture goes (default: the JSON path with .png)
#   --aurora-set  extra Aurora configuration (`aurora up --set`), e.g. runtime.max_park_us=1000
# Where Aurora's time goes: after each Aurora run every node's /metrics (HDR quantiles of commit
# latency, replication RTT, fsync and apply time) is saved beside the JSON as aurora-MODE-nodeN.prom.
#
# Not a test.sh stage (it takes ~2 min with --quick, ~5 min without). Needs root only to install
# etcd-server, etcd-client, protobuf-compiler (etcd-client's build), fonts-dejavu-core (the picture)
# from Debian when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command_line="hack/bench-vs-etcd.sh $*"

seconds=10
warmup=2
json=""
png=""
systems="etcd,aurora"
aurora_set=()
while (($#)); do
    case "$1" in
    --quick) seconds=3 warmup=1 ;;
    --json) json="$2"; shift ;;
    --png) png="$2"; shift ;;
    --systems) systems="$2"; shift ;;
    --aurora-set) aurora_set+=(--set "$2"); shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "bench-vs-etcd: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done

need=()
for p in etcd-server etcd-client protobuf-compiler libprotobuf-dev fonts-dejavu-core curl; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
    echo "bench-vs-etcd: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

target="${CARGO_TARGET_DIR:-target}"
work="$(mktemp -d /tmp/bench-vs-etcd.XXXXXX)"
out_dir="target/bench-vs-etcd"
mkdir -p "$out_dir"
json="${json:-$out_dir/results.json}"
png="${png:-${json%.json}.png}"
mkdir -p "$(dirname "$json")" "$(dirname "$png")"

echo "bench-vs-etcd: building (release)"
# One build for both binaries: the feature only adds the etcd client and the plotting crate.
cargo build --release --quiet --features bench-etcd --bin aurora --bin aurora-vs-etcd
aurora="$target/release/aurora"
tool="$target/release/aurora-vs-etcd"

pids=()
stop_all() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    pids=()
}
trap 'stop_all; rm -rf "$work"' EXIT

# Waits until every endpoint answers, at most 30 s.
wait_etcd() {
    for _ in $(seq 1 300); do
        if ETCDCTL_API=3 etcdctl --endpoints="$1" endpoint health >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    echo "bench-vs-etcd: etcd did not become healthy in 30 s; logs in $work/etcd-*.log" >&2
    tail -n 20 "$work"/etcd-*.log >&2
    exit 1
}

start_etcd() { # mode
    local mode="$1" cluster="" extra=()
    [ "$mode" = memory ] && extra+=(--unsafe-no-fsync)
    for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://127.0.0.1:${i}2380"; done
    for i in 1 2 3; do
        rm -rf "$work/etcd-$i"
        etcd --name "e$i" --data-dir "$work/etcd-$i" \
            --listen-client-urls "http://127.0.0.1:${i}2379" --advertise-client-urls "http://127.0.0.1:${i}2379" \
            --listen-peer-urls "http://127.0.0.1:${i}2380" --initial-advertise-peer-urls "http://127.0.0.1:${i}2380" \
            --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "bench-$mode" \
            --log-level warn --logger zap "${extra[@]}" >"$work/etcd-$i.log" 2>&1 &
        pids+=($!)
    done
    etcd_endpoints="http://127.0.0.1:12379,http://127.0.0.1:22379,http://127.0.0.1:32379"
    wait_etcd "$etcd_endpoints"
}

# A 3-node Aurora through the user-facing path, `aurora up`, with a fresh data directory.
start_aurora() { # mode
    rm -rf "$work/aurora-$1"
    "$aurora" up --nodes 3 --durability "$1" --data-dir "$work/aurora-$1" --base-port 17100 \
        "${aurora_set[@]}" >"$work/aurora-up-$1.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 300); do
        grep -q "Press Ctrl-C" "$work/aurora-up-$1.log" && return 0
        kill -0 "${pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    echo "bench-vs-etcd: aurora up did not report a leader in 30 s:" >&2
    cat "$work/aurora-up-$1.log" >&2
    exit 1
}
aurora_endpoints="127.0.0.1:17102,127.0.0.1:17112,127.0.0.1:17122"

parts=()
for mode in memory fsync; do
    if [[ ",$systems," == *,etcd,* ]]; then
        echo "bench-vs-etcd: etcd 3.4 ($(etcd --version | head -1 | awk '{print $3}')), mode $mode"
        start_etcd "$mode"
        "$tool" measure --system etcd --mode "$mode" --endpoints "$etcd_endpoints" \
            --seconds "$seconds" --warmup-seconds "$warmup" --out "$work/etcd-$mode.json"
        stop_all
        parts+=("$work/etcd-$mode.json")
    fi
    if [[ ",$systems," == *,aurora,* ]]; then
        echo "bench-vs-etcd: aurora (3 nodes, aurora up), mode $mode"
        start_aurora "$mode"
        "$tool" measure --system aurora --mode "$mode" --endpoints "$aurora_endpoints" \
            --seconds "$seconds" --warmup-seconds "$warmup" --out "$work/aurora-$mode.json"
        for i in 1 2 3; do
            curl -fsS "http://127.0.0.1:$((17093 + 10 * i))/metrics" >"$(dirname "$json")/aurora-$mode-node$i.prom" ||
                echo "bench-vs-etcd: could not scrape node $i's /metrics" >&2
        done
        grep -hE '^aurora_(commit_latency|fsync_duration|replication_rtt)_seconds\{.*quantile="0\.5"\} [0-9]' \
            "$(dirname "$json")"/aurora-"$mode"-node*.prom | sed 's/^/    p50 /' || true
        stop_all
        parts+=("$work/aurora-$mode.json")
    fi
done

"$tool" report "${parts[@]}" --json "$json" --png "$png" --command "$command_line"
