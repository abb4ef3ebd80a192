#!/usr/bin/env bash
# Runs one command inside a throwaway QEMU (TCG) guest that has two SoftRoCE devices, and returns the
# command's exit code. Why a VM: the host kernel has no RDMA (notes/fabric-rigs.md); Debian's stock
# kernel has rdma_rxe, and KVM here cannot run it, so the guest is emulated (TCG: correct, slow —
# benchmarks in it give ratios, not speed).
#
# The guest boots Debian's linux-image-amd64 (the uncompressed vmlinux, via PVH: 10–20 s faster under
# TCG) with a tiny busybox initramfs that mounts the HOST root filesystem read-only over 9p and
# switch_roots into it, so binaries built on the host run unchanged at the same paths. A second,
# read-write 9p share (/mnt in the guest) carries the command in and the exit code out.
# hack/rdma/guest-init.sh then brings up rxe0/rxe1 on the two ends of a veth pair (see there).
#
# Usage: hack/rdma-vm.sh 'command …'      (run from anywhere; the command runs in the repo root)
# Environment: AURORA_RDMA_VM_TIMEOUT_S (default 900), AURORA_RDMA_VM_CACHE (kernel + initramfs cache,
# default /tmp/aurora-rdma-vm), RUST_LOG / RUST_BACKTRACE are passed into the guest.
#
# Exit codes: the command's own, or
#   70  the guest did not boot to its init script (kernel, initramfs or 9p failure; see the console)
#   71  the guest could not set up rdma_rxe, veth or policy routing
#   72  no rxe device with an IPv4-mapped GID appeared
#   73  the guest never reported the command's exit code (crash, hang, or timeout)
#   74  a host prerequisite is missing (run hack/install-deps.sh)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
(($# >= 1)) || { echo "usage: $0 'command …'" >&2; exit 64; }
timeout_s=${AURORA_RDMA_VM_TIMEOUT_S:-900}
cache=${AURORA_RDMA_VM_CACHE:-/tmp/aurora-rdma-vm}

need() { command -v "$1" >/dev/null 2>&1 || { echo "rdma-vm: '$1' not found: run hack/install-deps.sh" >&2; exit 74; }; }
need qemu-system-x86_64
need busybox
need cpio
need xz
kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*-amd64' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
[[ -n $kver && -d /lib/modules/$kver ]] || { echo "rdma-vm: no Debian amd64 kernel in /boot: install linux-image-amd64 (hack/install-deps.sh)" >&2; exit 74; }
[[ -x /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav34.so || -e /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav34.so ]] \
    || { echo "rdma-vm: the rxe verbs provider is missing: install ibverbs-providers (hack/install-deps.sh)" >&2; exit 74; }

mkdir -p "$cache"
kernel=$cache/vmlinux-$kver
initrd=$cache/initramfs-$kver.cpio.gz

# The uncompressed kernel: the xz stream inside the bzImage (Debian builds with CONFIG_KERNEL_XZ).
if [[ ! -s $kernel ]]; then
    offset=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "/boot/vmlinuz-$kver" | head -1 | cut -d: -f1 || true)
    # (tail dies of SIGPIPE when xz stops after the stream: not a failure.)
    if [[ -n $offset ]] && { tail -c +$((offset + 1)) "/boot/vmlinuz-$kver" || true; } | xz -dc --single-stream >"$kernel.tmp" 2>/dev/null \
        && head -c 4 "$kernel.tmp" | grep -q ELF; then
        mv "$kernel.tmp" "$kernel"
    else
        rm -f "$kernel.tmp"
        echo "rdma-vm: could not extract vmlinux; booting the compressed bzImage (slower)" >&2
        kernel=/boot/vmlinuz-$kver
    fi
fi

# The initramfs: busybox, the modules 9p over virtio needs, and an init that switch_roots into the host root.
if [[ ! -s $initrd ]]; then
    stage=$(mktemp -d)
    mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
    cp /bin/busybox "$stage/bin/busybox"
    for applet in sh mount umount insmod switch_root mkdir echo cat poweroff sleep; do
        ln -s busybox "$stage/bin/$applet"
    done
    # Dependency order from modprobe itself, each module once.
    modules=()
    while read -r _ file _; do
        m=$(basename "$file" .ko)
        [[ " ${modules[*]} " == *" $m "* ]] && continue
        modules+=("$m")
        cp "$file" "$stage/lib/modules/$m.ko"
    done < <(for m in virtio_pci 9pnet_virtio 9p; do modprobe -S "$kver" --show-depends "$m"; done)
    cat >"$stage/init" <<INIT
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${modules[*]}; do insmod /lib/modules/\$m.ko || echo "rdma-vm guest: insmod \$m failed"; done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 hostroot /newroot; then
    echo "rdma-vm guest: mounting the host root over 9p failed"; poweroff -f
fi
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 share /newroot/mnt || { echo "rdma-vm guest: mounting the share failed"; poweroff -f; }
mount -t tmpfs tmpfs /newroot/tmp
mount -t tmpfs tmpfs /newroot/run
mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /bin/bash /mnt/guest-init.sh
INIT
    chmod +x "$stage/init"
    (cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1) >"$initrd.tmp"
    mv "$initrd.tmp" "$initrd"
    rm -rf "$stage"
fi

share=$(mktemp -d /tmp/aurora-rdma-share.XXXXXX)
trap 'rm -rf "$share"' EXIT
cp "$repo/hack/rdma/guest-init.sh" "$share/guest-init.sh"
{
    printf 'cd %q\n' "$repo"
    for var in RUST_LOG RUST_BACKTRACE; do
        [[ -n ${!var:-} ]] && printf 'export %s=%q\n' "$var" "${!var}"
    done
    printf '%s\n' "$*"
} >"$share/cmd"

start=$(date +%s)
rc=0
timeout --foreground -k 10 "$timeout_s" qemu-system-x86_64 \
    -accel tcg -cpu max -m 2048 -smp 2 -machine q35 -nodefaults -nic none -display none -no-reboot \
    -serial stdio -monitor none \
    -kernel "$kernel" -initrd "$initrd" \
    -append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
    -virtfs local,path="$share",mount_tag=share,security_model=none,multidevs=remap \
    </dev/null || rc=$?
echo "rdma-vm: guest ran $(($(date +%s) - start)) s (qemu exit $rc)" >&2

if [[ ! -e $share/booted ]]; then
    echo "rdma-vm: FAILED: the guest did not boot to its init script (exit 70)" >&2
    exit 70
fi
if [[ -e $share/setup-failed ]]; then
    echo "rdma-vm: FAILED: rxe/veth setup in the guest: $(cat "$share/setup-failed") (exit $(cut -d' ' -f1 "$share/setup-failed"))" >&2
    exit "$(cut -d' ' -f1 "$share/setup-failed")"
fi
if [[ ! -s $share/rc ]]; then
    echo "rdma-vm: FAILED: the guest never reported the command's exit code (crash, hang or ${timeout_s} s timeout) (exit 73)" >&2
    exit 73
fi
exit "$(cat "$share/rc")"
