#!/usr/bin/env bash
# Runtime benchmarks (benches/runtime.rs): idle CPU of spinning vs adaptive shard loops, mailbox
# ping-pong and throughput, timing wheel vs BTreeMap. Each prints the baseline it is compared with,
# measured in the same run. Quiet machine wanted: the load average is printed first for that reason.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs"
exec cargo bench --bench runtime "$@"
