#!/usr/bin/env bash
# The node against the stack's ceiling, in one run on one machine.
#
# Starts a demo federation and, next to it, `baseline` (node/examples/baseline.rs): a minimal
# hyper + rustls server with the node's mTLS configuration that answers fixed JSON. Then
# `attesta bench` puts the same load (same client stack, same connections, same subjects) on:
#   baseline   the ceiling: TLS + HTTP only
#   residence  comune-pesaro's POST /v1/attest/residence (policy, RocksDB, Ed25519 signature)
#   status     inps-pesaro's POST /v1/status (policy, two peer calls, their verification)
# and prints throughput, p99 and the ratios to the baseline.
# Usage: node/benches/scripts/compare.sh [duration] [concurrency]     # defaults: 10s 16
set -euo pipefail
cd "$(dirname "$0")/../../.."
duration=${1:-10s}
c=${2:-16}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"

command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }
.ci/bootstrap.sh
cargo build --locked -q -p attesta --bin attesta --example baseline
bin="$CARGO_TARGET_DIR/debug/attesta"
baseline_bin="$CARGO_TARGET_DIR/debug/examples/baseline"

dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
RUST_LOG=warn "$bin" demo up --dir "$dir" --base-port "$port" >/dev/null 2>&1 &
demo=$!
baseline=
# On exit, with the script's own status: what it started is stopped, its files removed.
cleanup() {
  local rc=$?
  kill $demo $baseline 2>/dev/null || true
  wait $demo $baseline 2>/dev/null || true
  rm -rf "$dir"
  exit $rc
}
trap cleanup EXIT
for _ in $(seq 1 600); do [ -f "$dir/endpoints.json" ] && break; sleep 0.1; done
[ -f "$dir/endpoints.json" ] || { echo "demo did not start" >&2; exit 1; }
base_port=$((port + 30))   # past the demo's nodes (port..) and consoles (port + 10..)
"$baseline_bin" --config "$dir/agencies/comune-pesaro/node.toml" --listen "127.0.0.1:$base_port" 2>"$dir/baseline.log" &
baseline=$!
for _ in $(seq 1 100); do grep -q listening "$dir/baseline.log" && break; sleep 0.1; done
grep -q listening "$dir/baseline.log" || { cat "$dir/baseline.log" >&2; exit 1; }

client="$dir/agencies/inps-pesaro/client.toml"
# Residents of the comuni that have a registry node in the demo (Pesaro, Urbino).
subjects="$dir/subjects.csv"
awk -F, 'NR == 1 || $8 == "041044" || $8 == "041067"' "$dir/data/residents.csv" > "$subjects"
pesaro=$(jq -r '."comune-pesaro"' "$dir/endpoints.json")
bench() { "$bin" bench --config "$client" --duration "$duration" --concurrency "$c" --subjects "$subjects" --json "$@"; }

echo "machine: $(nproc) cores; $c connections; $duration per route; subjects: $(($(wc -l < "$subjects") - 1)) residents of Pesaro and Urbino"
bench --route residence --url "https://127.0.0.1:$base_port" > "$dir/baseline.json"
bench --route residence --url "$pesaro" --node-agency comune-pesaro > "$dir/residence.json"
bench --route status > "$dir/status.json"

printf '%-10s %12s %10s %10s %10s %12s %10s\n' route "requests/s" "p50 ms" "p99 ms" "p99.9 ms" "vs baseline" "failed"
b=$(jq .throughput_per_sec "$dir/baseline.json")
for r in baseline residence status; do
  jq -r --arg r "$r" --argjson b "$b" \
    '[$r, .throughput_per_sec, .latency_ms.p50, .latency_ms.p99, .latency_ms.p99_9, (.throughput_per_sec / $b), (.failed + .errors + .incomplete)]
     | "\(.[0])\t\(.[1])\t\(.[2])\t\(.[3])\t\(.[4])\t\(.[5])\t\(.[6])"' "$dir/$r.json" |
    awk -F'\t' '{ printf "%-10s %12.0f %10.2f %10.2f %10.2f %11.1f%% %10d\n", $1, $2, $3, $4, $5, $6 * 100, $7 }'
done
