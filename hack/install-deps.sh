#!/usr/bin/env bash
# Installs the Debian packages the test suite needs, on a fresh Debian 12 machine. Idempotent.
set -euo pipefail

packages=(
    pkg-config
    g++ # libfuzzer-sys builds libFuzzer (hack/fuzz.sh)
    libdpdk-dev dpdk clang libclang-dev iproute2 nftables # feature dpdk + its rigs (hack/dpdk-rig.sh)
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
