#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, on a fresh Debian 12 machine. Idempotent.
set -euo pipefail

packages=(
    pkg-config
    g++ # libfuzzer-sys builds libFuzzer (hack/fuzz.sh)
    # RDMA (feature rdma, hack/rdma-vm.sh): verbs + rdma_cm headers, the SoftRoCE guest and perftest.
    libibverbs-dev librdmacm-dev ibverbs-providers ibverbs-utils rdma-core perftest
    qemu-system-x86 linux-image-amd64 busybox-static cpio xz-utils kmod iproute2
    libdpdk-dev dpdk clang libclang-dev nftables # feature dpdk + its rigs (hack/dpdk-rig.sh)
    nftables iproute2 # hack/chaos.sh: partitions inside network namespaces
)

missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
