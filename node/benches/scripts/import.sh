#!/usr/bin/env bash
# Import throughput and memory: generates N residents (default 1,000,000), starts a registry
# node in its own process, imports them with `attesta import` (snapshot), and reports rows per
# second and the node's peak RSS (VmHWM). Then measures residence attestations per second over
# mTLS with keep-alive (ApacheBench, POST).
# Usage: node/benches/scripts/import.sh [residents]
set -euo pipefail
cd "$(dirname "$0")/../../.."
n=${1:-1000000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"
command -v ab >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null; }
.ci/bootstrap.sh
cargo build --locked -q -p attesta --bin attesta
bin="$CARGO_TARGET_DIR/debug/attesta"

dir=$(mktemp -d)
trap 'kill $node 2>/dev/null; wait $node 2>/dev/null; rm -rf "$dir"' EXIT
"$bin" ca init --dir "$dir/ca" --trust-domain bench.attesta.test >/dev/null
"$bin" ca issue --dir "$dir/ca" --agency comune-pesaro --out "$dir/node" >/dev/null
"$bin" ca issue --dir "$dir/ca" --agency inps-pesaro --out "$dir/client" >/dev/null
port=$((20000 + RANDOM % 20000))
cat > "$dir/node/node.toml" <<TOML
agency = "comune-pesaro"
trust_domain = "bench.attesta.test"
listen = "127.0.0.1:$port"
data_dir = "data"
serves = ["residence"]
[tls]
ca = "../ca/ca.crt"
crl = "../ca/crl.pem"
cert = "auth.crt"
key = "auth.key"
[signing]
cert = "sign.crt"
key = "sign.key"
TOML

t0=$(date +%s.%N)
"$bin" generate --out "$dir/gen" --residents "$n" --seed 1 --as-of 2026-11-23 >/dev/null
t1=$(date +%s.%N)
echo "generate: $n residents in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s ($(du -h "$dir/gen/residents.csv" | cut -f1))"

RUST_LOG=warn "$bin" node run --config "$dir/node/node.toml" 2>/dev/null &
node=$!
for _ in $(seq 1 100); do
  curl -sf --cert "$dir/client/auth.crt" --key "$dir/client/auth.key" --cacert "$dir/ca/ca.crt" "https://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done
rss0=$(awk '/VmHWM/ {print $2}' /proc/$node/status)
t0=$(date +%s.%N)
"$bin" import residents --config "$dir/node/node.toml" "$dir/gen/residents.csv" --as-of 2026-11-23
t1=$(date +%s.%N)
secs=$(echo "$t1 - $t0" | bc)
rss=$(awk '/VmHWM/ {print $2}' /proc/$node/status)
echo "import: $n rows in $(printf '%.1f' "$secs") s = $(printf '%.0f' "$(echo "$n / $secs" | bc -l)") rows/s (upload, validation and write)"
echo "node peak RSS: $((rss / 1024)) MiB (at start: $((rss0 / 1024)) MiB)"

cf=$(sed -n 2p "$dir/gen/residents.csv" | cut -d, -f1)
printf '{"subject":"%s","purpose":"bench"}' "$cf" > "$dir/q.json"
cat "$dir/client/auth.crt" "$dir/client/auth.key" > "$dir/client.pem"
echo "-- residence attestations over mTLS, keep-alive, 16 concurrent"
ab -q -k -n 30000 -c 16 -p "$dir/q.json" -T application/json -E "$dir/client.pem" -f TLS1.3 \
  "https://127.0.0.1:$port/v1/attest/residence" 2>&1 |
  awk '/Complete requests|Failed requests|Non-2xx|Requests per second|^  99%/'
