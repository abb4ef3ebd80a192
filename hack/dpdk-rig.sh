#!/usr/bin/env bash
# The DPDK suite (issue 6): builds with feature `dpdk` and runs the transport on real DPDK devices.
#   1. unit tests of the DPDK layers, and the memif rig: two `aurora dpdk-ping` processes over
#      net_memif (clean, and with the test-only drop knob on both sides), EAL failures reported
#      as one clear error (tests/dpdk_memif.rs);
#   2. the same memif pair on 2 MiB hugepages reserved here and given back at the end;
#   3. two network namespaces joined by a veth pair: net_af_packet (clean, then with nft dropping
#      10% of the datagrams on the veth) and net_af_xdp;
#   4. a 3-node cluster over a memif mesh commits writes (hack/dpdk-cluster.sh, debug build, short
#      bench beside the same nodes over tcp_uring).
# Every rig that cannot start fails the script loudly. Needs root (hugepages, netns, nft).
# Cost on the 2-vCPU CI machine: ~2 min of rigs after the dpdk build and clippy (~4 min warm, measured 03:12–03:16 UTC under load; add ~4 min cold).
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "dpdk-rig: needs root (hugepages, network namespaces, nft)"; exit 1; }
pkg-config --atleast-version=22.11 libdpdk || {
    echo "dpdk-rig: DPDK >= 22.11 not found; run hack/install-deps.sh"; exit 1; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
RIG="aurora-rig-$$"
NS_A="$RIG-a"
NS_B="$RIG-b"
HUGE_MNT=/dev/hugepages
old_hugepages=$(cat /proc/sys/vm/nr_hugepages)
mounted_huge=0
pids=()

cleanup() {
    local rc=$?
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
    rm -f "$HUGE_MNT"/"$RIG"* 2>/dev/null || true
    rm -rf /var/run/dpdk/"$RIG"* /tmp/"$RIG"*.sock
    echo "$old_hugepages" > /proc/sys/vm/nr_hugepages
    if [ "$mounted_huge" = 1 ]; then umount "$HUGE_MNT" || true; fi
    echo "dpdk-rig: hugepages given back (vm.nr_hugepages = $(cat /proc/sys/vm/nr_hugepages))"
    exit "$rc"
}
trap cleanup EXIT

step() { printf '\n--> dpdk-rig: %s\n' "$*"; }

step "build (feature dpdk), clippy, unit tests"
cargo build --features dpdk --quiet
cargo clippy --all-targets --features dpdk --quiet -- -D warnings
cargo test --features dpdk --quiet --lib transport::dpdk
AURORA="$CARGO_TARGET_DIR/debug/aurora"

step "memif rig: clean, lossy (drop knob), EAL failures"
cargo test --features dpdk --quiet --test dpdk_memif -- --test-threads=1

# memif: a client must find its server's socket, and EAL start-up takes seconds on a loaded box.
wait_socket() {
    for _ in $(seq 1 300); do [ -S "$1" ] && return 0; sleep 0.1; done
    echo "memif socket $1 did not appear in 30 s (did the server side fail? see its log)"; return 1
}

# One ping-pong between two processes; $1 name, $2/$3 extra args of server/client, $4/$5 a
# command prefix for each (ip netns exec …). Fails with both logs when either side fails.
pair() {
    local name=$1 srv_args=$2 cli_args=$3 srv_pre=$4 cli_pre=$5
    local log="/tmp/$RIG-$name"
    # shellcheck disable=SC2086
    $srv_pre "$AURORA" dpdk-ping --role server --file-prefix "$RIG-$name-s" $srv_args \
        > "$log-server.out" 2> "$log-server.err" &
    local srv=$!
    pids+=("$srv")
    case "$srv_args" in
        *socket=*) wait_socket "$(sed 's/.*socket=\([^ ,]*\).*/\1/' <<< "$srv_args")" ;;
        *) sleep 1 ;;
    esac
    # shellcheck disable=SC2086
    if ! $cli_pre "$AURORA" dpdk-ping --role client --file-prefix "$RIG-$name-c" $cli_args \
        > "$log-client.out" 2> "$log-client.err"; then
        echo "dpdk-rig: $name: client FAILED"; tail -5 "$log-client.err"; tail -5 "$log-server.err"
        return 1
    fi
    if ! wait "$srv"; then
        echo "dpdk-rig: $name: server FAILED"; tail -5 "$log-server.err"; return 1
    fi
    echo "dpdk-rig: $name: $(tail -1 "$log-client.out")"
}

step "memif rig on hugepages (reserved here, given back at exit)"
echo 128 > /proc/sys/vm/nr_hugepages
[ "$(cat /proc/sys/vm/nr_hugepages)" -ge 64 ] || { echo "dpdk-rig: could not reserve hugepages"; exit 1; }
if ! mountpoint -q "$HUGE_MNT"; then
    mkdir -p "$HUGE_MNT"; mount -t hugetlbfs nodev "$HUGE_MNT"; mounted_huge=1
fi
sock="/tmp/$RIG.sock"
eal_huge="--eal-arg=-m --eal-arg=128 --eal-arg=--no-pci --eal-arg=--huge-unlink"
pair memif-hugepages \
    "--vdev net_memif0,role=server,socket=$sock,socket-abstract=no $eal_huge --round-trips 5000 --warmup 500" \
    "--vdev net_memif0,role=client,socket=$sock,socket-abstract=no $eal_huge --round-trips 5000 --warmup 500" "" ""
echo "$old_hugepages" > /proc/sys/vm/nr_hugepages

step "veth rig: two network namespaces"
ip netns add "$NS_A"
ip netns add "$NS_B"
ip link add va netns "$NS_A" type veth peer name vb netns "$NS_B"
for ns in "$NS_A" "$NS_B"; do
    ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=0
    ip netns exec "$ns" ip link set lo up
done
ip -n "$NS_A" link set va up
ip -n "$NS_B" link set vb up
eal_nohuge="--eal-arg=--no-huge --eal-arg=-m --eal-arg=256 --eal-arg=--no-pci"
run_a="ip netns exec $NS_A"
run_b="ip netns exec $NS_B"

pair af_packet \
    "--vdev net_af_packet0,iface=va,qpairs=1 $eal_nohuge --round-trips 3000 --warmup 200" \
    "--vdev net_af_packet0,iface=vb,qpairs=1 $eal_nohuge --round-trips 3000 --warmup 200" \
    "$run_a" "$run_b"

# Loss on the veth itself: nft drops 10% of the UDP datagrams each side sends (egress hook; the
# af_packet PMD must not bypass the qdisc layer for the hook to see them).
for side in "$NS_A va" "$NS_B vb"; do
    set -- $side
    ip netns exec "$1" nft -f - <<NFT
table netdev aurora_rig {
    chain loss {
        type filter hook egress device $2 priority 0;
        udp dport { 9001, 9002 } numgen random mod 10 == 0 counter drop
    }
}
NFT
done
pair af_packet-nft-loss \
    "--vdev net_af_packet0,iface=va,qpairs=1,qdisc_bypass=0 $eal_nohuge --round-trips 2000 --warmup 100" \
    "--vdev net_af_packet0,iface=vb,qpairs=1,qdisc_bypass=0 $eal_nohuge --round-trips 2000 --warmup 100" \
    "$run_a" "$run_b"
dropped=$(ip netns exec "$NS_A" nft list chain netdev aurora_rig loss | grep -o 'packets [0-9]*' | awk '{print $2}')
echo "dpdk-rig: nft dropped $dropped datagrams on va"
[ "${dropped:-0}" -gt 0 ] || { echo "dpdk-rig: the nft loss rule dropped nothing: the loss run proved nothing"; exit 1; }
ip netns exec "$NS_A" nft delete table netdev aurora_rig
ip netns exec "$NS_B" nft delete table netdev aurora_rig

pair af_xdp \
    "--vdev net_af_xdp0,iface=va,start_queue=0,queue_count=1 $eal_nohuge --round-trips 3000 --warmup 200" \
    "--vdev net_af_xdp0,iface=vb,start_queue=0,queue_count=1 $eal_nohuge --round-trips 3000 --warmup 200" \
    "$run_a" "$run_b"

step "3-node cluster over a memif mesh"
PROFILE=debug hack/dpdk-cluster.sh 2

step "all DPDK rigs passed"
