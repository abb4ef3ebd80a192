#!/usr/bin/env bash
# Real-process chaos, checked for linearizability (docs/RELIABILITY.md, "Chaos").
#
# For each cluster (default: 3 and 5 nodes with fsync durability, then 3 nodes in memory mode) every
# `aurora serve` runs in its own network namespace, joined to the others by a veth pair on one
# bridge. While the recorder (hack/chaos/recorder.rs, binary aurora-chaos) runs several clients doing
# put/get/cas on a few keys and writes to unique keys, a nemesis driven by --seed injects one fault
# at a time:
#   kill      kill -9 a node, restart it after the hold
#   pause     SIGSTOP a node, SIGCONT after the hold
#   restart   SIGTERM a node and start it again at once
#   crash-all kill -9 every node, restart them all (fsync only: the acked writes must be on disk)
#   split     nftables: a minority and the rest cannot reach each other (symmetric)
#   oneway    nftables: node a drops everything node b sends (b still hears a)
#   bridge    nftables: two halves that cannot reach each other, one node that reaches both
#   isolate   nftables: one node cut off from every peer
# At the end every fault is healed and every node runs; the recorder reads every key and every
# acknowledged unique write, appends those reads to the history, and checks the history with
# aurora::lincheck. The run fails on a non-linearizable history, an inconclusive check, or a missing
# acknowledged write. Histories, node logs and the fault log of the last run stay in --out.
#
# Usage: hack/chaos.sh [--duration S] [--out DIR] [--seed N] [--clusters "3:fsync 5:fsync"]
#   --duration  seconds of faults per cluster (default 45; hack/test.sh runs the default: ~3.5 min)
#   --out       where histories, logs and summaries go (default target/chaos); emptied first
#   --seed      nemesis and workload seed (default: the current time, printed for replay)
#   --clusters  space-separated NODES:DURABILITY pairs (default "3:fsync 5:fsync 3:memory")
#   --stale-reads  sabotage: workload reads are served stale by one fixed node per client; the run
#               must FAIL (shows the rig and the checker catch a real non-linearizable read path)
# Needs root (network namespaces, nftables); installs nftables and iproute2 when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=45
out="target/chaos"
seed="$(date +%s)"
clusters="3:fsync 5:fsync 3:memory"
recorder_flags=()
while (($#)); do
    case "$1" in
    --duration) duration="$2"; shift ;;
    --out) out="$2"; shift ;;
    --seed) seed="$2"; shift ;;
    --clusters) clusters="$2"; shift ;;
    --stale-reads) recorder_flags+=(--stale-reads) ;;
    -h | --help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "chaos: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[[ "$duration" =~ ^[0-9]+$ ]] && ((duration > 0)) || { echo "chaos: --duration must be a positive number of seconds, got '$duration'" >&2; exit 2; }
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "chaos: --seed must be a non-negative integer, got '$seed'" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "chaos: needs root for network namespaces and nftables (run as root or under sudo)" >&2; exit 2; }

need=()
for p in nftables iproute2; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if ((${#need[@]})); then
    echo "chaos: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

target="${CARGO_TARGET_DIR:-target}"
echo "chaos: building (release) aurora and aurora-chaos"
cargo build --release --quiet --bin aurora --bin aurora-chaos
aurora="$(realpath "$target/release/aurora")"
recorder="$(realpath "$target/release/aurora-chaos")"

rm -rf "$out"
mkdir -p "$out"
out="$(realpath "$out")"

# Names are prefixed so they cannot collide with other rigs on the machine.
bridge=aurch-br
subnet=10.77.0
peer_port=7101
client_port=7102
admin_port=7103
cluster_id=$((0x0A17C4A0))

RANDOM=$seed          # bash's generator: the same seed gives the same fault schedule
nodes=0
declare -A pid=()     # node -> pid of its aurora serve, absent while it is down
dir=""                # the current cluster's output directory

log() { printf '%s %s\n' "$(date -u +%H:%M:%S.%3N)" "$*" | tee -a "$dir/faults.log"; }
ns() { echo "aurch-n$1"; }

net_up() {
    ip link add "$bridge" type bridge
    ip addr add "$subnet.254/24" dev "$bridge"
    ip link set "$bridge" up
    for i in $(seq 1 "$nodes"); do
        ip netns add "$(ns "$i")"
        ip link add "aurch-v$i" type veth peer name eth0 netns "$(ns "$i")"
        ip link set "aurch-v$i" master "$bridge" up
        ip -n "$(ns "$i")" addr add "$subnet.$i/24" dev eth0
        ip -n "$(ns "$i")" link set eth0 up
        ip -n "$(ns "$i")" link set lo up
        ip netns exec "$(ns "$i")" nft -f - <<EOF
table inet chaos {
    chain input { type filter hook input priority 0; policy accept; }
    chain output { type filter hook output priority 0; policy accept; }
}
EOF
    done
}

net_down() {
    # Delete the host ends of the veths first (synchronous, and it takes the namespace end along):
    # a deleted namespace frees its devices asynchronously, so the next cluster's `ip link add`
    # could otherwise still find aurch-vN ("RTNETLINK answers: File exists").
    for i in $(seq 1 5); do ip link del "aurch-v$i" 2>/dev/null || true; done
    for i in $(seq 1 5); do ip netns del "$(ns "$i")" 2>/dev/null || true; done
    ip link del "$bridge" 2>/dev/null || true
    local tries=0
    while ip -o link show | grep -q "aurch-"; do
        ((++tries <= 100)) || { echo "chaos: aurch-* links still present 10 s after teardown" >&2; ip -o link show | grep "aurch-" >&2; return 1; }
        sleep 0.1
    done
}

write_config() { # durability
    {
        echo "# written by hack/chaos.sh for a $nodes-node $1 cluster in network namespaces"
        echo "cluster_id = $cluster_id"
        echo "secret = \"chaos-only-secret-$seed-0123456789abcdef\""
        echo "durability = \"$1\""
        echo "transport = \"tcp_uring\""
        for i in $(seq 1 "$nodes"); do
            printf '\n[[members]]\nid = %d\nrole = "voter"\npeer_addr = "%s"\nclient_addr = "%s"\nadmin_addr = "%s"\n' \
                "$i" "$subnet.$i:$peer_port" "$subnet.$i:$client_port" "$subnet.$i:$admin_port"
        done
        # The timings of `aurora up` (a shared machine, not a fabric).
        printf '\n[timing]\nheartbeat_interval_ms = 20\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\nrequest_timeout_ms = 2000\n'
        # Two cores run every node, the recorder and the nemesis: park when idle, do not pin.
        printf '\n[runtime]\nshards = 1\npin = false\nspin_us = 0\n'
    } >"$dir/cluster.toml"
}

start_node() { # node
    local i="$1"
    [ -z "${pid[$i]:-}" ] || { echo "chaos: node $i is already running" >&2; exit 1; }
    AURORA_NODE_ID="$i" AURORA_DATA_DIR="$dir/data/n$i" \
        ip netns exec "$(ns "$i")" "$aurora" serve --config "$dir/cluster.toml" >>"$dir/node-$i.log" 2>&1 &
    pid[$i]=$!
}

kill_node() { # node signal
    local i="$1"
    [ -n "${pid[$i]:-}" ] || return 0
    kill -CONT "${pid[$i]}" 2>/dev/null || true
    kill "-$2" "${pid[$i]}" 2>/dev/null || true
    wait "${pid[$i]}" 2>/dev/null || true
    unset "pid[$i]"
}

# Drops, inside node a's namespace, every packet from (and, unless one-way, to) node b.
cut() { # a b [oneway]
    ip netns exec "$(ns "$1")" nft add rule inet chaos input ip saddr "$subnet.$2" drop
    [ "${3:-}" = oneway ] || ip netns exec "$(ns "$1")" nft add rule inet chaos output ip daddr "$subnet.$2" drop
}

heal_net() {
    for i in $(seq 1 "$nodes"); do
        ip netns exec "$(ns "$i")" nft flush chain inet chaos input
        ip netns exec "$(ns "$i")" nft flush chain inet chaos output
    done
}

# A random permutation of the nodes (Fisher–Yates on bash's seeded generator).
shuffled() {
    local a=($(seq 1 "$nodes")) i j t
    for ((i = nodes - 1; i > 0; i--)); do
        j=$((RANDOM % (i + 1))); t=${a[i]}; a[i]=${a[j]}; a[j]=$t
    done
    echo "${a[@]}"
}

faults=0
# Injects one fault, holds it, heals it. Never leaves a fault behind.
nemesis_step() { # durability
    local kinds=(kill pause restart split oneway bridge isolate)
    [ "$1" = fsync ] && kinds+=(crash-all)
    local kind=${kinds[RANDOM % ${#kinds[@]}]}
    local hold_ms=$((1000 + RANDOM % 3000))
    local order=($(shuffled)) minority=$((nodes / 2)) a b
    case "$kind" in
    kill)
        log "fault $kind node ${order[0]} for ${hold_ms} ms"
        kill_node "${order[0]}" KILL; sleep_ms "$hold_ms"; start_node "${order[0]}" ;;
    pause)
        log "fault $kind node ${order[0]} for ${hold_ms} ms"
        kill -STOP "${pid[${order[0]}]}"; sleep_ms "$hold_ms"; kill -CONT "${pid[${order[0]}]}" ;;
    restart)
        log "fault $kind node ${order[0]}"
        kill_node "${order[0]}" TERM; start_node "${order[0]}"; sleep_ms "$hold_ms" ;;
    crash-all)
        log "fault $kind for ${hold_ms} ms"
        for i in $(seq 1 "$nodes"); do kill_node "$i" KILL; done
        sleep_ms "$hold_ms"
        for i in $(seq 1 "$nodes"); do start_node "$i"; done ;;
    split)
        log "fault $kind {${order[*]:0:minority}} | {${order[*]:minority}} for ${hold_ms} ms"
        for a in "${order[@]:0:minority}"; do
            for b in "${order[@]:minority}"; do cut "$a" "$b"; cut "$b" "$a"; done
        done
        sleep_ms "$hold_ms"; heal_net ;;
    oneway)
        log "fault $kind node ${order[0]} hears nothing from node ${order[1]} for ${hold_ms} ms"
        cut "${order[0]}" "${order[1]}" oneway; sleep_ms "$hold_ms"; heal_net ;;
    bridge)
        # order[0] reaches everyone; the rest split into two halves that cannot reach each other.
        local rest=("${order[@]:1}") half=$(((nodes - 1) / 2))
        log "fault $kind {${rest[*]:0:half}} | ${order[0]} | {${rest[*]:half}} for ${hold_ms} ms"
        for a in "${rest[@]:0:half}"; do
            for b in "${rest[@]:half}"; do cut "$a" "$b"; cut "$b" "$a"; done
        done
        sleep_ms "$hold_ms"; heal_net ;;
    isolate)
        log "fault $kind node ${order[0]} for ${hold_ms} ms"
        for b in "${order[@]:1}"; do cut "${order[0]}" "$b"; cut "$b" "${order[0]}"; done
        sleep_ms "$hold_ms"; heal_net ;;
    esac
    faults=$((faults + 1))
    log "healed $kind"
}

sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }

cleanup() {
    for i in "${!pid[@]}"; do kill_node "$i" KILL; done
    [ -n "$recorder_pid" ] && kill -9 "$recorder_pid" 2>/dev/null || true
    net_down
}
recorder_pid=""
trap cleanup EXIT

echo "chaos: seed $seed, $duration s of faults per cluster, clusters: $clusters, output in $out"
net_down # leftovers of an interrupted run
status=0
summaries=()
for spec in $clusters; do
    nodes="${spec%%:*}"
    durability="${spec#*:}"
    [[ "$nodes" =~ ^[35]$ && "$durability" =~ ^(fsync|memory)$ ]] || { echo "chaos: cluster '$spec' is not 3|5:fsync|memory" >&2; exit 2; }
    dir="$out/$nodes-$durability"
    mkdir -p "$dir/data"
    faults=0
    net_up
    write_config "$durability"
    for i in $(seq 1 "$nodes"); do start_node "$i"; done
    endpoints=$(for i in $(seq 1 "$nodes"); do printf '%s:%s,' "$subnet.$i" "$client_port"; done)
    endpoints="${endpoints%,}"
    log "cluster: $nodes nodes, $durability, endpoints $endpoints"
    "$recorder" --endpoints "$endpoints" --cluster-id "$cluster_id" --seconds "$duration" --seed "$seed" --out "$dir" \
        --healed-file "$dir/healed" "${recorder_flags[@]}" &
    recorder_pid=$!
    # The recorder first waits for the cluster to serve; faults start when it says so.
    for _ in $(seq 1 600); do [ -e "$dir/started" ] || sleep 0.1; done
    [ -e "$dir/started" ] || { echo "chaos: the $nodes-node cluster did not serve within 60 s; see $dir/node-*.log" >&2; status=1; }
    if [ -e "$dir/started" ]; then
        end=$((SECONDS + duration))
        while ((SECONDS < end)); do
            nemesis_step "$durability"
            sleep_ms $((500 + RANDOM % 1500))
        done
        heal_net
        for i in $(seq 1 "$nodes"); do [ -n "${pid[$i]:-}" ] || start_node "$i"; done
        log "all healed after $faults faults; every node running"
        echo "$faults" >"$dir/faults"
        touch "$dir/healed"
    fi
    rc=0
    wait "$recorder_pid" || rc=$?
    recorder_pid=""
    ((rc == 0)) || status=1
    [ -e "$dir/summary.txt" ] && summaries+=("$nodes-$durability: $(cat "$dir/summary.txt"), $faults faults")
    for i in "${!pid[@]}"; do kill_node "$i" TERM; done
    net_down
done

echo
echo "chaos: seed $seed (replay: hack/chaos.sh --duration $duration --seed $seed --clusters \"$clusters\")"
for s in "${summaries[@]}"; do echo "  $s"; done
if ((status)); then
    echo "chaos: FAILED — histories, node logs and faults.log are in $out" >&2
    exit 1
fi
echo "chaos: passed — histories in $out"
