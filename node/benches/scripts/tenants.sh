#!/usr/bin/env bash
# A service centre hosting the province's comuni: what hosting costs (docs/PERFORMANCE.md).
#
# Starts the demo federation with RESIDENTS synthetic residents (the province has ~350,000):
# the Provincia's service centre (cst-pu) hosts 48 comuni as tenants, Pesaro and Urbino run
# nodes of their own. Up to TENANTS, it onboards more agencies on the running host the way an
# operator does (`attesta policy host`, then `attesta tenant add`): unions of comuni, which
# keep no registry and only ask (`--serves none`). Then prints:
#   - the time the demo took to generate, start and import, and the service centre's RocksDB
#     use and the demo's RSS (six nodes in one process);
#   - the time to onboard each further tenant (publish, issue certificates, start serving);
#   - the service centre's start-up time alone (all its tenants: certificates, stores, logs);
#   - import throughput into a hosted comune (Fano, as the comune) and a dedicated node (Pesaro);
#   - `attesta bench --route residence` on a hosted comune (Fano) and on a dedicated node
#     (Pesaro), and `--route status` for residents of hosted comuni and of Pesaro;
#   - the CPU the demo process spends idle, and witness traffic: 50 logs signing and
#     getting cosigned.
# Usage: node/benches/scripts/tenants.sh [residents] [duration] [concurrency] [tenants]
#        defaults: 350000 10s 16 60
set -euo pipefail
cd "$(dirname "$0")/../../.."
residents=${1:-350000}
duration=${2:-10s}
c=${3:-16}
tenants=${4:-60}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"

.ci/bootstrap.sh
command -v curl >/dev/null || { echo "tenants.sh reads metrics with curl: apt-get install curl" >&2; exit 1; }
cargo build --locked -q -p attesta --bin attesta
bin="$CARGO_TARGET_DIR/debug/attesta"

dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
ms() { date +%s%3N; }
wait_file() { for _ in $(seq 1 3000); do [ -f "$1" ] && return 0; sleep 0.1; done; echo "$1 did not appear" >&2; exit 1; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

start=$(ms)
RUST_LOG=warn "$bin" demo up --dir "$dir" --base-port "$port" --residents "$residents" >"$dir/demo.out" 2>&1 &
demo=$!; pids+=("$demo")
wait_file "$dir/endpoints.json"
echo "demo up with $residents residents (generate, start 6 nodes, publish, import): $(( $(ms) - start )) ms"
grep '^imported' "$dir/demo.out" | sed 's/^/  /'
url() { grep -o "\"$1\": \"https://[^\"]*" "$dir/endpoints.json" | grep -o 'https://.*'; }
metric() { # agency, series
  curl -sS --max-time 5 --cacert "$dir/ca/ca.crt" --cert "$dir/agencies/$1/auth.crt" \
    --key "$dir/agencies/$1/auth.key" "$(url "$1")/metrics" | awk -v s="$2" '$1 == s { print int($2) }'
}
host=$(url cst-pu)
host_toml="$dir/agencies/cst-pu/node.toml"

# Onboarding on the running host, up to $tenants tenants.
hosted=$(curl -sS --max-time 5 --cacert "$dir/ca/ca.crt" --cert "$dir/agencies/cst-pu/auth.crt" \
  --key "$dir/agencies/cst-pu/auth.key" "$host/v1/admin/tenants" | grep -o '"agency"' | wc -l)
added=0; t=$(ms)
for i in $(seq $((hosted + 1)) "$tenants"); do
  id=$(printf 'unione-%02d' "$i")
  "$bin" policy host --config "$dir/agencies/prefettura-pu/node.toml" --agency "$id" --host cst-pu --serves none >/dev/null
  "$bin" tenant add --config "$host_toml" --agency "$id" --ca "$dir/ca" --serves none >/dev/null
  added=$((added + 1))
done
if [ "$added" -gt 0 ]; then
  echo "onboarded $added agencies on the running host (policy host + tenant add): $(( ($(ms) - t) / added )) ms each; cst-pu now hosts $tenants"
fi
echo "demo RSS (six nodes, one process): $(( $(awk '/VmRSS/ { print $2 }' "/proc/$demo/status") / 1024 )) MiB;" \
  "cst-pu RocksDB in use: $(( $(metric cst-pu attesta_store_memory_in_use_bytes) / 1048576 )) MiB"

# Idle: every log that grew signs a checkpoint a second and gets it cosigned.
sleep 3
t0=$(cpu_ticks "$demo"); sleep 10; t1=$(cpu_ticks "$demo")
echo "idle CPU of the demo process: $(( (t1 - t0) * 1000 / hz / 10 )) ms/s"

# Subjects: Fano's residents (hosted), Pesaro's (dedicated), every hosted comune's.
awk -F, 'NR == 1 || $8 == "041013"' "$dir/data/residents.csv" > "$dir/fano.csv"
awk -F, 'NR == 1 || $8 == "041044"' "$dir/data/residents.csv" > "$dir/pesaro.csv"
awk -F, 'NR == 1 || ($8 != "041044" && $8 != "041067")' "$dir/data/residents.csv" > "$dir/hosted.csv"

t=$(ms); "$bin" import residents --config "$host_toml" --tenant comune-fano "$dir/fano.csv" --as-of 2026-12-01 >/dev/null
rows=$(( $(wc -l < "$dir/fano.csv") - 1 ))
echo "import into a hosted comune (Fano, $rows rows): $(( $(ms) - t )) ms"
t=$(ms); "$bin" import residents --config "$dir/agencies/comune-pesaro/node.toml" "$dir/pesaro.csv" --as-of 2026-12-01 >/dev/null
rows=$(( $(wc -l < "$dir/pesaro.csv") - 1 ))
echo "import into a dedicated node (Pesaro, $rows rows): $(( $(ms) - t )) ms"

bench() { "$bin" bench --config "$dir/agencies/inps-pesaro/client.toml" --duration "$duration" --concurrency "$c" "$@" | grep -E 'throughput|p99|failed' | tr '\n' ' '; echo; }
echo "residence, hosted (Fano via cst-pu): $(bench --route residence --subjects "$dir/fano.csv" --url "$host/tenants/comune-fano" --node-agency cst-pu)"
echo "residence, dedicated (Pesaro):       $(bench --route residence --subjects "$dir/pesaro.csv" --url "$(url comune-pesaro)" --node-agency comune-pesaro)"
s0=$(metric questura-pu 'attesta_witness_requests_total{result="cosigned"}'); t0=$(cpu_ticks "$demo")
echo "status, residents of hosted comuni:  $(bench --route status --subjects "$dir/hosted.csv")"
t1=$(cpu_ticks "$demo"); s1=$(metric questura-pu 'attesta_witness_requests_total{result="cosigned"}')
echo "  (the Questura cosigned $(( s1 - s0 )) checkpoints meanwhile; demo CPU $(( (t1 - t0) * 1000 / hz )) ms)"
echo "status, residents of Pesaro:         $(bench --route status --subjects "$dir/pesaro.csv")"

# The service centre alone: stop the demo, start its node, time until it is ready.
kill "$demo"; wait "$demo" 2>/dev/null || true
t=$(ms)
RUST_LOG=warn "$bin" node run --config "$host_toml" >/dev/null 2>&1 &
node=$!; pids+=("$node")
for _ in $(seq 1 600); do
  curl -sS --max-time 1 --cacert "$dir/ca/ca.crt" --cert "$dir/agencies/cst-pu/auth.crt" \
    --key "$dir/agencies/cst-pu/auth.key" "$host/readyz" >/dev/null 2>&1 && break
  sleep 0.05
done
echo "cst-pu start-up alone ($tenants tenants): $(( $(ms) - t )) ms; RSS $(( $(awk '/VmRSS/ { print $2 }' "/proc/$node/status") / 1024 )) MiB"
