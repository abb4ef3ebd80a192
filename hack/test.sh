#!/usr/bin/env bash
# The one test command (README): installs what it needs on a fresh Debian 12 machine, then runs every
# check CI runs. Any failure stops the script with a non-zero exit and says which stage failed.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n==> %s\n' "$*"; }
trap 'rc=$?; [ $rc -eq 0 ] || printf "\ntest.sh: FAILED in stage: %s (exit %d)\n" "${current_stage:-setup}" "$rc"' EXIT
run_stage() { current_stage="$1"; shift; stage "$current_stage"; "$@"; }

run_stage "install dependencies" hack/install-deps.sh
run_stage "format" cargo fmt --all -- --check
run_stage "clippy" cargo clippy --all-targets -- -D warnings
run_stage "clippy (mutants)" cargo clippy --all-targets --features mutants -- -D warnings
run_stage "clippy (failpoints)" cargo clippy --all-targets --features failpoints -- -D warnings
run_stage "transport: io_uring enabled" bash -c '[ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ] || { echo "io_uring is disabled; the tcp_uring transport and its tests need sysctl kernel.io_uring_disabled=0"; exit 1; }'
run_stage "unit and integration tests" cargo test
run_stage "serve smoke: config/cluster-3.toml as 3 processes, CLI put/get, kill -9 leader (~5 s)" hack/serve-smoke.sh
run_stage "simulator: 2000 seeds of mixed faults (sim profile build ~4 min, run ~70 s on 2 cores)" hack/sim.sh --seeds 2000 --start 0
run_stage "storage crash tests (failpoints)" cargo test --features failpoints --test storage_crash
run_stage "transport bench (short run beside the raw-socket floor)" cargo run --release --quiet -- bench transport --round-trips 5000 --warmup 1000
run_stage "cluster bench (3-node aurora up, memory and fsync, 2 s per case, ~30 s)" hack/bench-cluster.sh 2
run_stage "fuzz frame_decode (30 s)" hack/fuzz.sh 30 frame_decode
run_stage "dpdk: memif, hugepages, af_packet (+nft loss), af_xdp, 3-node memif cluster (~2 min + dpdk build)" hack/dpdk-rig.sh
run_stage "rdma: clippy and the suite in the SoftRoCE VM, incl. a 3-node aurora serve cluster over rdma (~5 min)" bash -c 'cargo clippy --all-targets --features rdma -- -D warnings && hack/rdma-test.sh'
run_stage "chaos: 3/5-node fsync + 3-node memory in netns under faults, histories checked (~3.5 min)" hack/chaos.sh --duration 45 --seed 20261206 --out target/chaos
echo
echo "test.sh: all stages passed"
