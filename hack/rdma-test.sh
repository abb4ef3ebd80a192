#!/usr/bin/env bash
# The RDMA suite: builds the feature-`rdma` test binaries on the host, then runs them inside the
# SoftRoCE VM (hack/rdma-vm.sh), one test at a time (the partition tests change the guest's veth);
# rdma_serve_config runs on the host first as well (a machine without RDMA devices).
# Fails loudly — never skips — when the VM cannot boot or no rxe device appears (rdma-vm.sh's
# exit codes 70–74), and when any test fails.
#
# Usage: hack/rdma-test.sh [test-name-filter]
set -euo pipefail
cd "$(dirname "$0")/.."
filter=${1:-}

build_log=$(mktemp)
trap 'rm -f "$build_log"' EXIT
cargo test --features rdma --no-run --lib --test 'rdma_*' 2>&1 | tee "$build_log" >&2
# "Executable tests/rdma_ring.rs (target/debug/deps/rdma_ring-…)" and "unittests src/lib.rs (…)"
mapfile -t bins < <(sed -n 's/^ *Executable .*(\(.*\))$/\1/p' "$build_log")
((${#bins[@]} >= 2)) || { echo "rdma-test: found no test binaries in the cargo output" >&2; exit 1; }

# `aurora serve` over rdma on a machine without RDMA devices: the host is one (the same binary
# runs again in the VM, where the devices exist).
for bin in "${bins[@]}"; do
    if [[ $bin == */rdma_serve_config-* ]]; then
        echo "==> $(basename "$bin") on the host (no RDMA device)"
        "$bin" ${filter:+$filter} --test-threads=1
    fi
done

cmd="set -e; failed=0"
for bin in "${bins[@]}"; do
    path=$(realpath "$bin")
    if [[ $bin == *"/aurora-"* ]]; then
        args="transport::rdma"  # the lib's unit tests: only the rdma module's
    else
        args=""
    fi
    cmd+="; echo \"==> \$(basename $path)\"; $path $args ${filter:+$filter} --test-threads=1 || failed=1"
done
cmd+="; exit \$failed"
exec hack/rdma-vm.sh "$cmd"
