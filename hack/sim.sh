#!/usr/bin/env bash
# The deterministic simulator (DESIGN.md §9.2), built with the `sim` profile (optimised, debug
# assertions and overflow checks on, so the core's invariants stay armed).
#
#   hack/sim.sh --seeds N [--start S]     run seeds S..S+N-1; prints each failing seed, ends with
#                                         "sim: N seeds, F failures"; exit 1 on any failure
#   hack/sim.sh --seed S --trace          replay one seed with a readable event trace
#   hack/sim.sh ... --mutant NAME         with a deliberately broken variant (builds --features mutants)
#
# Other flags go to `aurora sim` (see `aurora sim --help`: --jobs, --first-failure).
set -euo pipefail
cd "$(dirname "$0")/.."

features=()
for arg in "$@"; do
    if [ "$arg" = "--mutant" ]; then
        features=(--features mutants)
    fi
done
cargo build --quiet --profile sim --bin aurora "${features[@]}"
exec "${CARGO_TARGET_DIR:-target}/sim/aurora" sim "$@"
