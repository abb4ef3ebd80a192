#!/bin/bash
# PID 1 of the hack/rdma-vm.sh guest, after switch_root into the host root (read-only over 9p).
# Brings up two SoftRoCE devices on the two ends of one veth pair, then runs /mnt/cmd and leaves its
# exit code in /mnt/rc.
#
# Why policy routing: both veth ends live in one network namespace (rxe in a second namespace does
# not work on 6.1: its UDP socket lives in the root namespace), so without it the kernel would
# deliver 192.0.2.1 → 192.0.2.2 over loopback and rxe's QP setup fails ("Failed to modify QP to
# RTR"). Each source address gets its own table whose route leaves by its own veth end; the local
# table moves behind those rules, so only packets that arrive on a veth are delivered locally. Each
# table also routes its own address to lo, so traffic from an address to itself stays local.
#
# The command sees AURORA_RDMA_DEV0/1 (rxe0, rxe1), AURORA_RDMA_ADDR0/1, AURORA_RDMA_NETDEV0/1 and
# AURORA_RDMA_GID_INDEX (the IPv4-mapped GID's index, the same on both devices).
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
for m in rdma_rxe rdma_ucm veth sch_netem; do
    modprobe "$m" || fail 71 "modprobe $m"
done

a0=192.0.2.1 a1=192.0.2.2
ip link add veth0 type veth peer name veth1 || fail 71 "ip link add veth pair"
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
    net.ipv4.conf.all.accept_local=1 net.ipv4.conf.all.arp_ignore=1 || fail 71 "sysctl"
for i in 0 1; do
    dev=veth$i addr=a$i
    sysctl -qw "net.ipv4.conf.$dev.rp_filter=0" "net.ipv4.conf.$dev.accept_local=1" "net.ipv4.conf.$dev.arp_ignore=1"
    ip addr add "${!addr}/24" dev "$dev" || fail 71 "address on $dev"
    ip link set "$dev" up || fail 71 "link up $dev"
    table=$((100 + i))
    ip rule add pref $((100 + i)) from "${!addr}" iif lo lookup $table || fail 71 "rule for $dev"
    ip route add 192.0.2.0/24 dev "$dev" src "${!addr}" table $table || fail 71 "route for $dev"
    ip route add local "${!addr}" dev lo table $table || fail 71 "local route for $dev"
done
ip rule add pref 1000 lookup local && ip rule del pref 0 lookup local || fail 71 "moving the local table"

for i in 0 1; do
    rdma link add rxe$i type rxe netdev veth$i || fail 72 "rdma link add rxe$i on veth$i"
done
# The IPv4-mapped GID (::ffff:a.b.c.d) appears once the address is seen by rxe; wait for it (bounded).
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
[[ -n $gid_index ]] || fail 72 "rxe0 shows no IPv4-mapped GID for $a0 ($(ls /sys/class/infiniband 2>/dev/null | tr '\n' ' '))"

ulimit -l unlimited
export AURORA_RDMA_DEV0=rxe0 AURORA_RDMA_DEV1=rxe1 AURORA_RDMA_ADDR0=$a0 AURORA_RDMA_ADDR1=$a1
export AURORA_RDMA_NETDEV0=veth0 AURORA_RDMA_NETDEV1=veth1 AURORA_RDMA_GID_INDEX=$gid_index
export HOME=/tmp TMPDIR=/tmp
echo "rdma-vm guest: rxe0 $a0 / rxe1 $a1 up, GID index $gid_index; running the command"
bash /mnt/cmd </dev/null
echo $? >/mnt/rc
sync
busybox poweroff -f
