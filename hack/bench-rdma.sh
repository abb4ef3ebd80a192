#!/usr/bin/env bash
# RDMA latency in the SoftRoCE VM against perftest, in the same VM run (TCG: the ratios mean
# something, the microseconds do not). Alternates perftest and Aurora, ROUNDS times each, and prints
# the medians and the median per-round ratio (perftest's t_typical and Aurora's p50 are both half a round trip):
#   ib_send_lat -s 64   vs  Aurora SEND/RECV ping-pong of 64-byte frames (benches/rdma.rs send)
#   ib_write_lat -s 64  vs  Aurora one-sided ring write ping-pong, 64-byte slots (benches/rdma.rs write)
# Usage: hack/bench-rdma.sh [ROUNDS=3] [ROUND_TRIPS=2000]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
iters=${2:-2000}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo bench --features rdma --bench rdma --no-run 2>&1 | tee "$log" >&2
bin=$(sed -n 's/^ *Executable .*(\(.*\))$/\1/p' "$log" | head -1)
[[ -x $bin ]] || { echo "bench-rdma: no bench binary in the cargo output" >&2; exit 1; }
bin=$(realpath "$bin")

read -r -d '' guest <<GUEST || true
set -u
gid=\$AURORA_RDMA_GID_INDEX
perftest() { # tool -> t_typical (half round trip, us)
    \$1 -d rxe1 -x \$gid -s 64 -n $iters >/tmp/server.log 2>&1 &
    for _ in \$(seq 100); do
        \$1 -d rxe0 -x \$gid -s 64 -n $iters \$AURORA_RDMA_ADDR1 >/tmp/client.log 2>&1 && break
        sleep 0.3
    done
    wait
    awk '/^ *64 /{print \$5}' /tmp/client.log
}
aurora() { $bin \$1 $iters | sed -n 's/.*half_rtt_p50_us=\([0-9.]*\).*/\1/p'; }
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=\$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk "BEGIN {printf \\"%.2f\\", \$1 / \$2}"; }
ss= as= sw= aw= rs= rw=
for r in \$(seq $rounds); do
    s=\$(perftest ib_send_lat); a=\$(aurora send); w=\$(perftest ib_write_lat); b=\$(aurora write)
    echo "round \$r: ib_send_lat \$s us, aurora send \$a us (\$(ratio \$a \$s)x), ib_write_lat \$w us, aurora ring write \$b us (\$(ratio \$b \$w)x)"
    ss+=" \$s"; as+=" \$a"; sw+=" \$w"; aw+=" \$b"; rs+=" \$(ratio \$a \$s)"; rw+=" \$(ratio \$b \$w)"
done
echo "median of $rounds rounds ($iters round trips each, 64 B, half round trip; ratio = median of per-round ratios):"
echo "  SEND ping-pong:  aurora \$(echo \$as | median) us, ib_send_lat \$(echo \$ss | median) us, ratio \$(echo \$rs | median)x"
echo "  one-sided write: aurora \$(echo \$aw | median) us, ib_write_lat \$(echo \$sw | median) us, ratio \$(echo \$rw | median)x"
GUEST
exec hack/rdma-vm.sh "$guest"
