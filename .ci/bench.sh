#!/usr/bin/env bash
# Every benchmark script, at a tiny size (seconds each), so none of them can rot: a script
# that no longer runs fails CI. Their numbers are printed, never asserted (they come from
# full-size runs on a quiet machine: docs/PERFORMANCE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"

# What the scripts use besides attesta: bc and curl (import.sh), jq (compare.sh), ApacheBench
# (mtls.sh).
.ci/bootstrap.sh bc curl jq apache2-utils

run() {
  local started=$SECONDS
  echo "-- $*"
  "$@"
  echo "   ($(( SECONDS - started )) s)"
}
s=node/benches/scripts
run bash $s/compare.sh 1s 4 2000 20000
run bash $s/import.sh 2000 1s 4
run bash $s/audit.sh 20000 4 1
run bash $s/mtls.sh 200 4
run bash $s/memory.sh 1 1s 4
run bash $s/tenants.sh 2000 1s 4 49
