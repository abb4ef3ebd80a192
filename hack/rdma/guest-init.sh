#!/bin/bash
# PID 1 of the hack/rdma-vm.sh guest, after switch_root into the host root (read-only over 9p).
# Brings up three SoftRoCE devices, one per simulated host, then runs /mnt/cmd and leaves its exit
# code in /mnt/rc.
#
# Topology: host i has veth$i (address 192.0.2.(i+1), rdma device rxe$i) whose peer vbr$i is a port of
# the bridge br0, so every host reaches every other over its own wire, and one host can be partitioned
# with netem on its veth. All of it lives in one network namespace (rxe in a second namespace does not
# work on 6.1: its UDP socket lives in the root namespace), so policy routing keeps each host's
# traffic on its own veth: without it the kernel would deliver 192.0.2.1 -> 192.0.2.2 over loopback
# and rxe's QP setup fails ("Failed to modify QP to RTR"). Each source address gets a table whose
# subnet route leaves by its own veth (and whose own address is local); the local table moves behind
# those rules, so only packets that arrive on a veth are delivered locally; arp_ignore=1 makes only
# the owner of an address answer for it.
#
# The command sees AURORA_RDMA_DEV{0,1,2} (rxe0..2), AURORA_RDMA_ADDR{0,1,2}, AURORA_RDMA_NETDEV{0,1,2}
# and AURORA_RDMA_GID_INDEX (the IPv4-mapped RoCE v2 GID's index, the same on every device).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
echo booted >/mnt/booted

fail() { # exit-code message
    echo "$1 $2" >/mnt/setup-failed
    echo "rdma-vm guest: setup failed: $2"
    sync
    busybox poweroff -f
}

mount -t tmpfs tmpfs /var/tmp 2>/dev/null || true
ip link set lo up
for m in rdma_rxe rdma_ucm veth bridge sch_netem; do
    modprobe "$m" || fail 71 "modprobe $m"
done

hosts=3
ip link add br0 type bridge || fail 71 "ip link add br0"
ip link set br0 up || fail 71 "br0 up"
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.all.accept_local=1 net.ipv4.conf.all.arp_ignore=1 || fail 71 "sysctl"
for ((i = 0; i < hosts; i++)); do
    dev=veth$i addr=192.0.2.$((i + 1)) table=$((100 + i))
    ip link add "$dev" type veth peer name "vbr$i" || fail 71 "ip link add $dev"
    ip link set "vbr$i" master br0 && ip link set "vbr$i" up || fail 71 "vbr$i into br0"
    sysctl -qw "net.ipv4.conf.$dev.rp_filter=0" "net.ipv4.conf.$dev.accept_local=1" "net.ipv4.conf.$dev.arp_ignore=1"
    ip addr add "$addr/24" dev "$dev" || fail 71 "address on $dev"
    ip link set "$dev" up || fail 71 "link up $dev"
    ip rule add pref "$table" from "$addr" iif lo lookup "$table" || fail 71 "rule for $dev"
    ip route add 192.0.2.0/24 dev "$dev" src "$addr" table "$table" || fail 71 "route for $dev"
    ip route add local "$addr" dev lo table "$table" || fail 71 "local route for $dev"
    export "AURORA_RDMA_DEV$i=rxe$i" "AURORA_RDMA_ADDR$i=$addr" "AURORA_RDMA_NETDEV$i=$dev"
done
ip rule add pref 1000 lookup local && ip rule del pref 0 lookup local || fail 71 "moving the local table"

for ((i = 0; i < hosts; i++)); do
    rdma link add "rxe$i" type rxe netdev "veth$i" || fail 72 "rdma link add rxe$i on veth$i"
done
# The IPv4-mapped GID (::ffff:a.b.c.d) appears once rxe sees the address; wait for it (bounded).
gid_index=
for _ in $(seq 1 100); do
    for i in $(seq 0 15); do # the table has 1024 rows, the used ones come first
        if [[ $(cat "/sys/class/infiniband/rxe0/ports/1/gids/$i" 2>/dev/null) == 0000:0000:0000:0000:0000:ffff:c000:0201 ]]; then
            gid_index=$i
            break
        fi
    done
    [[ -n $gid_index ]] && break
    sleep 0.1
done
[[ -n $gid_index ]] || fail 72 "rxe0 shows no IPv4-mapped GID for 192.0.2.1 ($(ls /sys/class/infiniband 2>/dev/null | tr '\n' ' '))"

ulimit -l unlimited
export AURORA_RDMA_GID_INDEX=$gid_index
export HOME=/tmp TMPDIR=/tmp
echo "rdma-vm guest: rxe0..rxe$((hosts - 1)) up on 192.0.2.1..$hosts, GID index $gid_index; running the command"
bash /mnt/cmd </dev/null
echo $? >/mnt/rc
sync
busybox poweroff -f
