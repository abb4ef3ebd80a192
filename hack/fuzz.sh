#!/usr/bin/env bash
# Runs a cargo-fuzz target for a bounded time, installing cargo-fuzz if it is missing.
#
#   hack/fuzz.sh [SECONDS] [TARGET]        defaults: 30 s, frame_decode
#
# cargo-fuzz needs nightly compiler flags. With a nightly toolchain installed it is used; otherwise
# the stable compiler is told to accept them with RUSTC_BOOTSTRAP=1 (set AURORA_FUZZ_BOOTSTRAP=1 to
# force that path). New inputs go to fuzz/corpus/TARGET (gitignored); fuzz/corpus_seed is read-only
# input. A crash leaves its input in fuzz/artifacts/TARGET and fails this script.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
target="${2:-frame_decode}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [[ "${AURORA_FUZZ_BOOTSTRAP:-0}" != 1 ]] && rustup run nightly true >/dev/null 2>&1; then
    fuzz=(cargo +nightly fuzz)
    echo "fuzz: using the nightly toolchain"
else
    fuzz=(env RUSTC_BOOTSTRAP=1 cargo fuzz)
    echo "fuzz: no nightly toolchain (or forced): stable compiler with RUSTC_BOOTSTRAP=1"
fi

mkdir -p "fuzz/corpus/$target"
# The decoder is safe Rust, so AddressSanitizer adds cost without finding anything the Rust checks
# miss; debug assertions stay on so the decoder's own invariants are checked on every input.
"${fuzz[@]}" run --sanitizer none --debug-assertions "$target" \
    "fuzz/corpus/$target" fuzz/corpus_seed -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1
