#!/usr/bin/env bash
# The audit log's numbers: durable appends/s under concurrent load (group commit), and the
# offline verification time of a bundle of N entries. See node/examples/audit_scale.rs.
# Usage: node/benches/scripts/audit.sh [entries] [concurrency] [seconds]     # defaults: 1000000 64 5
set -euo pipefail
cd "$(dirname "$0")/../../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"
.ci/bootstrap.sh
cargo build --locked -q -p attesta --example audit_scale
"$CARGO_TARGET_DIR/debug/examples/audit_scale" \
  --entries "${1:-1000000}" --concurrency "${2:-64}" --seconds "${3:-5}"
