#!/usr/bin/env bash
# Fuzzes the parsers (node/fuzz/fuzz_targets/: codice fiscale, signed notes and checkpoints,
# cosignatures, audit entries, Merkle proofs, bundles, receipts, JWS and manifests) with
# cargo-fuzz and libFuzzer, SECONDS per target (default 60), and prints executions per target.
# A crash stops with the input's path (node/fuzz/artifacts/<target>/); make it a regression test.
#
# Coverage-guided, without a sanitizer: AddressSanitizer needs a nightly compiler, and the
# project's crates forbid unsafe code. Panics, failed assertions, overflows (debug
# assertions are on), timeouts and out-of-memory are caught.
#
# Builds in its own target directory (the fuzz flags differ from the project's; see
# node/Cargo.toml, feature `node`: the fuzzed crate builds without RocksDB).
# Usage: .ci/fuzz.sh [seconds per target] [target...]
set -euo pipefail
cd "$(dirname "$0")/../node/fuzz"
secs=${1:-60}
shift || true
export CARGO_TARGET_DIR="${ATTESTA_FUZZ_TARGET_DIR:-$HOME/.cache/attesta-fuzz-target}"
command -v cargo-fuzz >/dev/null || cargo install --locked -q cargo-fuzz@0.13.2
flags=(--sanitizer none --release --debug-assertions)
cargo fuzz build "${flags[@]}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
failed=0
for t in "${targets[@]}"; do
  corpus=$(mktemp -d)
  seeds=()
  [ -d "seeds/$t" ] && seeds=("seeds/$t")
  if out=$(cargo fuzz run "${flags[@]}" "$t" "$corpus" "${seeds[@]}" -- \
      -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1); then
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' <<<"$out" | grep -oE '[0-9]+$' || echo "?")
    echo "$t: $execs executions in ${secs}s, no crash"
  else
    failed=1
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|artifact' <<<"$out" | head -20
    echo "$t: CRASH (input under node/fuzz/artifacts/$t/)"
  fi
  rm -rf "$corpus"
done
exit $failed
