#!/usr/bin/env bash
# RSS of the nodes under a long load: memory must stay flat (one RocksDB budget per node,
# `store.memory_mb`), not climb with memtables or connections.
#
# Starts a demo federation (five nodes in one process), puts `attesta bench --route status`
# on it for DURATION in rounds, and after each round prints the process's RSS.
# Usage: node/benches/scripts/memory.sh [rounds] [round duration] [concurrency] [MiB per node]
#        defaults: 6 20s 16 64 (the demo's budget)
# The nodes run with glibc's MALLOC_ARENA_MAX=2, the setting docs/OPERATIONS.md recommends
# where memory is tight; `MALLOC_ARENA_MAX= node/benches/scripts/memory.sh …` measures glibc's
# default (up to eight arenas a core, which keep freed memory: about 20 MiB more here).
set -euo pipefail
cd "$(dirname "$0")/../../.."
rounds=${1:-6}
duration=${2:-20s}
c=${3:-16}
memory=${4:-64}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"

.ci/bootstrap.sh
command -v curl >/dev/null || { echo "memory.sh reads the nodes' metrics with curl: apt-get install curl" >&2; exit 1; }
cargo build --locked -q -p attesta --bin attesta
bin="$CARGO_TARGET_DIR/debug/attesta"

dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
arenas=${MALLOC_ARENA_MAX-2}
if [ -n "$arenas" ]; then export MALLOC_ARENA_MAX=$arenas; else unset MALLOC_ARENA_MAX; fi
RUST_LOG=warn "$bin" demo up --dir "$dir" --base-port "$port" --memory-mb "$memory" >/dev/null 2>&1 &
demo=$!
# On exit, with the script's own status: what it started is stopped, its files removed.
cleanup() {
  local rc=$?
  kill $demo 2>/dev/null || true
  wait $demo 2>/dev/null || true
  rm -rf "$dir"
  exit $rc
}
trap cleanup EXIT
for _ in $(seq 1 600); do [ -f "$dir/endpoints.json" ] && break; sleep 0.1; done
[ -f "$dir/endpoints.json" ] || { echo "demo did not start" >&2; exit 1; }

subjects="$dir/subjects.csv"
awk -F, 'NR == 1 || $8 == "041044" || $8 == "041067"' "$dir/data/residents.csv" > "$subjects"
client="$dir/agencies/inps-pesaro/client.toml"

# The demo runs its nodes in one process: its RSS is theirs.
rss() { echo "$(( $(awk '/VmRSS/ { print $2 }' "/proc/$demo/status") / 1024 )) MiB"; }
# RocksDB's share, summed over the nodes: each node's attesta_store_memory_in_use_bytes, read
# with its own certificate (the node's agency may read its metrics).
rocksdb() {
  local total=0 agency url bytes
  for agency in $(grep -o '"[a-z0-9-]*": "https://[^"]*"' "$dir/endpoints.json" | cut -d'"' -f2); do
    url=$(grep -o "\"$agency\": \"https://[^\"]*" "$dir/endpoints.json" | grep -o 'https://.*')
    bytes=$(curl -sS --max-time 5 --cacert "$dir/ca/ca.crt" \
      --cert "$dir/agencies/$agency/auth.crt" --key "$dir/agencies/$agency/auth.key" \
      "$url/metrics" | awk '/^attesta_store_memory_in_use_bytes / { print int($2) }')
    total=$((total + ${bytes:-0}))
  done
  echo "$((total / 1048576)) MiB"
}
echo "RocksDB budget: $memory MiB per node, $(grep -c https "$dir/endpoints.json") nodes; MALLOC_ARENA_MAX=${arenas:-glibc default}"
echo "round 0 (idle): $(rss), RocksDB $(rocksdb)"
for r in $(seq 1 "$rounds"); do
  "$bin" bench --config "$client" --route status --duration "$duration" --concurrency "$c" \
    --subjects "$subjects" >/dev/null
  echo "round $r ($duration of status at $c connections): $(rss), RocksDB $(rocksdb)"
done
