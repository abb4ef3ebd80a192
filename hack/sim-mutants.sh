#!/usr/bin/env bash
# Shows the simulator catches each deliberately broken protocol variant (src/mutants.rs): for every
# mutant, runs seeds from 0 until the first failure and prints seeds-to-detection and the failure,
# then how many of the first RATE_SEEDS seeds fail (the detection rate). ring-keep-grant only shows in
# the half of the seeds that send appends as one-sided ring writes (Scenario::one_sided).
#
#   hack/sim-mutants.sh [MAX_SEEDS] [RATE_SEEDS]      defaults 2000 and 200
#
# Exit 1 if any mutant survives MAX_SEEDS seeds.
set -euo pipefail
cd "$(dirname "$0")/.."

max_seeds="${1:-2000}"
rate_seeds="${2:-200}"
cargo build --quiet --profile sim --features mutants --bin aurora
bin="${CARGO_TARGET_DIR:-target}/sim/aurora"

survivors=0
for mutant in weak-quorums double-vote commit-previous-term lease-without-quorum ack-before-persist \
    ring-keep-grant; do
    out="$("$bin" sim --mutant "$mutant" --seeds "$max_seeds" --start 0 --first-failure || true)"
    first="$(grep -m1 '^first failure: seed' <<<"$out" || true)"
    if [ -z "$first" ]; then
        printf '%-22s SURVIVED %s seeds\n' "$mutant" "$max_seeds"
        survivors=$((survivors + 1))
        continue
    fi
    seed="$(sed -E 's/^first failure: seed ([0-9]+).*/\1/' <<<"$first")"
    reason="$(grep -m1 "^seed $seed FAILED" <<<"$out" | sed -E 's/^seed [0-9]+ FAILED: //' | cut -c1-110)"
    rate="$("$bin" sim --mutant "$mutant" --seeds "$rate_seeds" --start 0 | grep -m1 '^sim: ' || true)"
    printf '%-22s caught after %4d seeds (seed %s); %s | %s\n' \
        "$mutant" "$((seed + 1))" "$seed" "${rate#sim: }" "$reason"
done
echo "sim-mutants: $survivors survivors"
[ "$survivors" -eq 0 ]
