#!/usr/bin/env bash
# Import throughput and memory: generates N residents (default 1,000,000), runs Pesaro's
# registry node alone in its own process, imports them with `attesta import` (snapshot), and
# reports rows per second and the node's peak RSS (VmHWM). Then measures residence
# attestations per second on it with `attesta bench` (mTLS, keep-alive, as INPS).
#
# The federation around the node (CA, certificates, the Prefettura's signed manifest, which
# grants Pesaro `import` and INPS `residence`) comes from a tiny demo federation that is
# started once and stopped again; the node keeps the manifest in its data directory.
# Usage: node/benches/scripts/import.sh [residents] [duration] [concurrency]
#        defaults: 1000000 10s 16
set -euo pipefail
cd "$(dirname "$0")/../../.."
n=${1:-1000000}
duration=${2:-10s}
c=${3:-16}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"
.ci/bootstrap.sh
cargo build --locked -q -p attesta --bin attesta
bin="$CARGO_TARGET_DIR/debug/attesta"

dir=$(mktemp -d)
demo=
node=
# On exit, with the script's own status: what it started is stopped, its files removed.
cleanup() {
  local rc=$?
  kill $demo $node 2>/dev/null || true
  wait $demo $node 2>/dev/null || true
  rm -rf "$dir"
  exit $rc
}
trap cleanup EXIT
port=$((20000 + RANDOM % 20000))
RUST_LOG=warn "$bin" demo up --dir "$dir/demo" --base-port "$port" --residents 200 >"$dir/demo.log" 2>&1 &
demo=$!
for _ in $(seq 1 1200); do grep -q Ctrl-C "$dir/demo.log" && break; sleep 0.1; done
grep -q Ctrl-C "$dir/demo.log" || { cat "$dir/demo.log" >&2; echo "import.sh: the demo federation did not start" >&2; exit 1; }
kill -INT "$demo"
wait "$demo" || true
demo=

pesaro="$dir/demo/agencies/comune-pesaro"
inps="$dir/demo/agencies/inps-pesaro"
url="https://127.0.0.1:$((port + 2))"   # comune-pesaro's port in the demo

t0=$(date +%s.%N)
"$bin" generate --out "$dir/gen" --residents "$n" --seed 1 --as-of 2026-11-23 >/dev/null
t1=$(date +%s.%N)
echo "generate: $n residents in $(printf '%.1f' "$(echo "$t1 - $t0" | bc)") s ($(du -h "$dir/gen/residents.csv" | cut -f1))"

# Alone, without its Prefettura: the manifest it has stays in force (its refreshes fail quietly).
RUST_LOG=error "$bin" node run --config "$pesaro/node.toml" 2>"$dir/node.log" &
node=$!
ready=
for _ in $(seq 1 300); do
  if curl -sf --cert "$inps/auth.crt" --key "$inps/auth.key" --cacert "$dir/demo/ca/ca.crt" "$url/readyz" >/dev/null; then
    ready=1
    break
  fi
  sleep 0.1
done
[ -n "$ready" ] || { cat "$dir/node.log" >&2; echo "import.sh: the node did not become ready" >&2; exit 1; }
rss0=$(awk '/VmHWM/ {print $2}' "/proc/$node/status")
t0=$(date +%s.%N)
"$bin" import residents --config "$pesaro/node.toml" "$dir/gen/residents.csv" --as-of 2026-11-23
t1=$(date +%s.%N)
secs=$(echo "$t1 - $t0" | bc)
rss=$(awk '/VmHWM/ {print $2}' "/proc/$node/status")
echo "import: $n rows in $(printf '%.2f' "$secs") s = $(printf '%.0f' "$(echo "$n / $secs" | bc -l)") rows/s (upload, validation and write)"
echo "node peak RSS: $((rss / 1024)) MiB (at start: $((rss0 / 1024)) MiB)"

echo "-- residence attestations on the imported node ($c connections, $duration)"
"$bin" bench --config "$inps/client.toml" --route residence --url "$url" --node-agency comune-pesaro \
  --subjects "$dir/gen/residents.csv" --duration "$duration" --concurrency "$c"
