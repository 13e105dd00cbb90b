#!/usr/bin/env bash
# The node against the stack's ceiling, in one run on one machine.
#
# Starts a demo federation and, next to it, `baseline` (node/examples/baseline.rs): a minimal
# hyper + rustls server with the node's mTLS configuration that answers fixed JSON. Then
# `attesta bench` puts the same load (same client stack, same connections, same subjects) on:
#   baseline   the ceiling: TLS + HTTP only
#   residence  comune-pesaro's POST /v1/attest/residence (policy, RocksDB, Ed25519 signature)
#   status     inps-pesaro's POST /v1/status (policy, two peer calls, their verification)
#   hosted     residence on a comune the service centre hosts (Fano via cst-pu), against
#              residence on Pesaro's dedicated node
# and full mTLS handshakes (ApacheBench without keep-alive) on the node and on the baseline;
# then runs import.sh (IMPORT rows) and audit.sh's verifier (ENTRIES entries), and prints
# throughput, p99, the ratios to the baseline, and every goal of docs/PERFORMANCE.md with its
# value and PASS or FAIL. Numbers are printed, never asserted: the exit status says only
# whether the runs ran.
# Usage: node/benches/scripts/compare.sh [duration] [concurrency] [import rows] [bundle entries]
#        defaults: 10s 16 1000000 1000000
set -euo pipefail
cd "$(dirname "$0")/../../.."
duration=${1:-10s}
c=${2:-16}
import_rows=${3:-1000000}
entries=${4:-1000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"

command -v jq >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }
command -v ab >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null; }
command -v bc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bc >/dev/null; }
.ci/bootstrap.sh
cargo build --locked -q -p attesta --bin attesta --example baseline --example audit_scale
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
awk -F, 'NR == 1 || $8 == "041013"' "$dir/data/residents.csv" > "$dir/fano.csv"
host=$(jq -r '."cst-pu"' "$dir/endpoints.json")
"$bin" bench --config "$client" --duration "$duration" --concurrency "$c" --subjects "$dir/fano.csv" --json \
  --route residence --url "$host/tenants/comune-fano" --node-agency cst-pu > "$dir/hosted.json"

printf '%-10s %12s %10s %10s %10s %12s %10s\n' route "requests/s" "p50 ms" "p99 ms" "p99.9 ms" "vs baseline" "failed"
b=$(jq .throughput_per_sec "$dir/baseline.json")
for r in baseline residence status; do
  jq -r --arg r "$r" --argjson b "$b" \
    '[$r, .throughput_per_sec, .latency_ms.p50, .latency_ms.p99, .latency_ms.p99_9, (.throughput_per_sec / $b), (.failed + .errors + .incomplete)]
     | "\(.[0])\t\(.[1])\t\(.[2])\t\(.[3])\t\(.[4])\t\(.[5])\t\(.[6])"' "$dir/$r.json" |
    awk -F'\t' '{ printf "%-10s %12.0f %10.2f %10.2f %10.2f %11.1f%% %10d\n", $1, $2, $3, $4, $5, $6 * 100, $7 }'
done

# Full handshakes: a new connection and TLS 1.3 handshake with client certificate per request.
pem="$dir/inps.pem"
cat "$dir/agencies/inps-pesaro/auth.crt" "$dir/agencies/inps-pesaro/auth.key" > "$pem"
handshakes() {
  ab -q -n "$1" -c "$c" -E "$pem" -f TLS1.3 "$2" 2>&1 | awk '/Requests per second/ { print $4 }'
}
hs_n=$(( c * 100 ))
hs_node=$(handshakes "$hs_n" "$pesaro/v1/whoami")
hs_bare=$(handshakes "$hs_n" "https://127.0.0.1:$base_port/v1/whoami")
echo "full mTLS handshakes ($hs_n requests, no keep-alive): node $hs_node/s, bare rustls $hs_bare/s"

# Import and offline verification, each in its own run (import.sh starts its own node).
bash node/benches/scripts/import.sh "$import_rows" 1s 4 > "$dir/import.log"
import_rate=$(awk '/^import:/ { print $(NF-5) }' "$dir/import.log")
import_rss=$(awk '/^node peak RSS:/ { print $4 }' "$dir/import.log")
"$CARGO_TARGET_DIR/debug/examples/audit_scale" --entries "$entries" --concurrency 4 --seconds 1 > "$dir/audit.log"
verify_s=$(awk '/^offline verification/ { for (i = 1; i <= NF; i++) if ($i ~ /\):$/) { print $(i + 1); exit } }' "$dir/audit.log")
grep -E '^(import|node peak)' "$dir/import.log"
grep '^offline verification' "$dir/audit.log"

# The goals (issue 17), each with its value and PASS or FAIL.
j() { jq -r "$2" "$dir/$1.json"; }
pct() { echo "scale=1; 100 * $1 / $2" | bc -l; }
goal() {  # name, value shown, condition for bc
  local verdict=FAIL
  [ "$(echo "$3" | bc -l)" = 1 ] && verdict=PASS
  printf '%-58s %-28s %s\n' "$1" "$2" "$verdict"
}
status_rate=$(j status .throughput_per_sec)
status_p99=$(j status .latency_ms.p99)
status_bad=$(j status '.failed + .errors + .incomplete')
res_rate=$(j residence .throughput_per_sec)
hosted_rate=$(j hosted .throughput_per_sec)
echo
echo "goals (sizes: $duration per route, $c connections, $import_rows rows imported, $entries entries verified)"
goal "status >= 10% of the baseline" "$(pct "$status_rate" "$b")%" "$status_rate >= 0.10 * $b"
goal "status p99 <= 10 ms" "$status_p99 ms" "$status_p99 <= 10"
goal "status: no failed or incomplete answer" "$status_bad" "$status_bad == 0"
goal "residence >= 35% of the baseline" "$(pct "$res_rate" "$b")%" "$res_rate >= 0.35 * $b"
goal "import >= 100,000 rows/s" "${import_rate:-0} rows/s" "${import_rate:-0} >= 100000"
goal "import: node peak RSS <= 300 MB (286 MiB)" "${import_rss:-?} MiB" "${import_rss:-1000} <= 286"
goal "offline verification of $entries entries <= 1 s" "${verify_s:-?} s" "${verify_s:-1000} <= 1"
goal "full mTLS handshakes >= 80% of bare rustls" "$(pct "${hs_node:-0}" "${hs_bare:-1}")%" "${hs_node:-0} >= 0.80 * ${hs_bare:-1}"
goal "hosted comune >= 80% of a dedicated node (residence)" "$(pct "$hosted_rate" "$res_rate")%" "$hosted_rate >= 0.80 * $res_rate"
