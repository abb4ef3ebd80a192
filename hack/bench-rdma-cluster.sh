#!/usr/bin/env bash
# 3-node commit latency over RDMA vs over tcp_uring inside the same SoftRoCE VM boot (TCG: the
# ratio means something, the microseconds do not). One release binary (feature rdma); every
# cluster uses config/cluster-3.toml with the same overrides and the same peer addresses, node i
# at 192.0.2.i (rxe(i-1)'s GID; the veth/bridge of hack/rdma/guest-init.sh), clients on loopback
# TCP. Each round measures three clusters one after the other with `aurora bench` (1 client, 1 put
# in flight, 64 B values): rdma replicating over SEND, rdma with the one-sided ring
# (rdma.ring_slots=64: Appends RDMA-WRITTEN into the followers' rings), and tcp_uring; prints
# every round, the medians of the commit p50s and the medians of the per-round ratios.
#
# Both fabrics cross the same wires: RoCE leaves by the rxe device's veth (its UDP socket binds the
# GID's address). tcp_uring's dialing sockets bind no source address, and with all three hosts in
# one namespace the kernel would deliver them over loopback; so node i runs as uid 1000+i and a
# uidrange rule sends its 192.0.2.0/24 traffic through host i's routing table (out of veth i, from
# 192.0.2.i). Each phase prints the packets that left the three veths, which shows it.
#
# Usage: hack/bench-rdma-cluster.sh [ROUNDS=3] [SECONDS=5] [DURABILITY=memory]
# Cost: a release build with --features rdma, then one VM boot and ROUNDS × 3 × (start + 2 s
# baseline + 1 s warm-up + SECONDS).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-5}
durability=${3:-memory}

cargo build --release --features rdma --bin aurora >&2
bin=$(realpath "${CARGO_TARGET_DIR:-target}/release/aurora")
[[ -x $bin ]] || { echo "bench-rdma-cluster: no release binary at $bin" >&2; exit 1; }

read -r -d '' guest <<GUEST || true
set -u
# The rig's AURORA_RDMA_* variables would be read as configuration keys by aurora serve.
unset \${!AURORA_RDMA_@}
bin=$bin
work=\$(mktemp -d)
chmod 755 "\$work"
for id in 1 2 3; do
    uid=\$((1000 + id))
    printf 'bench-only-secret-0123456789abcdef0123\n' >"\$work/secret-\$id"
    chown \$uid:\$uid "\$work/secret-\$id"
    chmod 600 "\$work/secret-\$id"
    ip rule add pref \$((90 + id)) uidrange \$uid-\$uid to 192.0.2.0/24 lookup \$((99 + id)) \
        || { echo "bench-rdma-cluster: uidrange rule for node \$id failed" >&2; exit 1; }
done
export AURORA_CLUSTER_ID=0x0A170003 AURORA_ENDPOINTS=127.0.0.1:7102,127.0.0.1:7112,127.0.0.1:7122
sets=()
for i in 0 1 2; do
    sets+=(--set "members[\$i].peer_addr=192.0.2.\$((i + 1)):7101"
           --set "members[\$i].client_addr=127.0.0.1:\$((7102 + 10 * i))"
           --set "members[\$i].admin_addr=127.0.0.1:\$((7103 + 10 * i))")
done
# Three nodes and the client share two emulated vCPUs: no pinning, no spinning; timings for TCG.
sets+=(--set runtime.shards=1 --set runtime.pin=false --set runtime.cores=[] --set runtime.spin_us=0
       --set timing.heartbeat_interval_ms=50 --set timing.election_timeout_min_ms=1000
       --set timing.election_timeout_max_ms=2000 --set timing.request_timeout_ms=5000
       --set durability=$durability)
pids=()
veth_packets() { cat /sys/class/net/veth{0,1,2}/statistics/tx_packets | awk '{s += \$1} END {print s}'; }
start_cluster() { # fabric round   (fabric: rdma, rdma-ring or tcp_uring)
    local transport=\$1 ring=()
    [[ \$1 == rdma-ring ]] && transport=rdma ring=(--set rdma.ring_slots=64)
    pids=()
    for id in 1 2 3; do
        mkdir -p "\$work/\$1-\$2-n\$id" && chown \$((1000 + id)) "\$work/\$1-\$2-n\$id"
        AURORA_NODE_ID=\$id AURORA_DATA_DIR="\$work/\$1-\$2-n\$id" AURORA_SECRET_FILE="\$work/secret-\$id" \
            setpriv --reuid=\$((1000 + id)) --regid=\$((1000 + id)) --clear-groups "\$bin" serve --config config/cluster-3.toml --set transport=\$transport "\${ring[@]}" "\${sets[@]}" \
            2>"\$work/\$1-\$2-n\$id.log" &
        pids+=(\$!)
    done
    for _ in \$(seq 300); do
        "\$bin" put bench/ready yes >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "bench-rdma-cluster: the \$1 cluster did not commit a write in 60 s" >&2
    for f in "\$work/\$1-\$2"-n*.log; do echo "== \$f" && tail -n 8 "\$f"; done >&2
    exit 1
}
stop_cluster() {
    for p in "\${pids[@]}"; do kill "\$p" 2>/dev/null || true; done
    for p in "\${pids[@]}"; do wait "\$p" 2>/dev/null || true; done
}
measure() { # transport round -> "p50_us veth_packets"
    start_cluster \$1 \$2
    local before=\$(veth_packets)
    local json=\$("\$bin" bench --duration $seconds --json | tail -1)
    local after=\$(veth_packets)
    stop_cluster
    # The guest's /tmp is a tmpfs in 2 GiB of RAM: each node preallocates a WAL segment.
    rm -rf "\$work/\$1-\$2"-n?
    local p50=\$(echo "\$json" | sed -n 's/.*"commit":{"p50_ns":\([0-9]*\).*/\1/p')
    if [[ -z \$p50 ]]; then
        echo "bench-rdma-cluster: no commit p50 from the \$1 cluster in: \$json" >&2
        for f in "\$work/\$1-\$2"-n*.log; do echo "== \$f" && tail -n 8 "\$f"; done >&2
        exit 1
    fi
    echo "\$(awk "BEGIN {printf \\"%.1f\\", \$p50 / 1000}") \$((after - before))"
}
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=\$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk "BEGIN {printf \\"%.2f\\", \$1 / \$2}"; }
rs= gs= ts= ratios= gratios=
for r in \$(seq $rounds); do
    out=\$(measure rdma \$r) || exit 1
    read -r a ap <<<"\$out"
    out=\$(measure rdma-ring \$r) || exit 1
    read -r g gp <<<"\$out"
    out=\$(measure tcp_uring \$r) || exit 1
    read -r b bp <<<"\$out"
    echo "round \$r: commit p50 rdma (SEND) \$a us (\$ap veth packets), rdma (ring) \$g us (\$gp), tcp_uring \$b us (\$bp); rdma/tcp_uring \$(ratio \$a \$b)x, ring/tcp_uring \$(ratio \$g \$b)x"
    rs+=" \$a"; gs+=" \$g"; ts+=" \$b"; ratios+=" \$(ratio \$a \$b)"; gratios+=" \$(ratio \$g \$b)"
done
echo "median of $rounds rounds (3 nodes, durability $durability, 1 client, 1 in flight, 64 B puts, $seconds s each):"
echo "  commit p50: rdma (SEND) \$(echo \$rs | median) us, rdma (one-sided ring) \$(echo \$gs | median) us, tcp_uring \$(echo \$ts | median) us"
echo "  median per-round ratio: rdma (SEND)/tcp_uring \$(echo \$ratios | median)x, rdma (ring)/tcp_uring \$(echo \$gratios | median)x"
GUEST
exec hack/rdma-vm.sh "$guest"
