#!/usr/bin/env bash
# Full mTLS handshakes per second and keep-alive requests per second on /v1/whoami.
#
# Starts a demo federation in a temporary directory, then loads comune-pesaro's node with
# ApacheBench (Debian's apache2-utils, installed if missing) presenting inps-pesaro's
# certificate:
#   - without keep-alive: every request is a new TCP connection and a full TLS 1.3 handshake
#     with client certificate (the node never resumes sessions);
#   - with keep-alive: requests on established connections.
# Usage: node/benches/scripts/mtls.sh [requests] [concurrency]
set -euo pipefail
cd "$(dirname "$0")/../../.."
n=${1:-5000}
c=${2:-16}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"

command -v ab >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq apache2-utils >/dev/null; }
.ci/bootstrap.sh
cargo build --locked -q -p attesta --bin attesta
bin="$CARGO_TARGET_DIR/debug/attesta"

dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
RUST_LOG=warn "$bin" demo up --dir "$dir" --base-port "$port" >/dev/null 2>&1 &
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
for _ in $(seq 1 300); do [ -f "$dir/endpoints.json" ] && break; sleep 0.1; done
[ -f "$dir/endpoints.json" ] || { echo "demo did not start" >&2; exit 1; }

pem="$dir/inps.pem"
cat "$dir/agencies/inps-pesaro/auth.crt" "$dir/agencies/inps-pesaro/auth.key" > "$pem"
url="https://127.0.0.1:$((port + 2))/v1/whoami"   # comune-pesaro

run() {
  ab -q "$@" -E "$pem" -f TLS1.3 "$url" 2>&1 |
    awk '/Complete requests|Failed requests|Requests per second|Time per request.*mean\)$|^  99%/'
}
echo "machine: $(nproc) cores; ab $(ab -V | head -1 | awk '{print $5}'); n=$n c=$c"
echo "-- full mTLS handshakes (new connection per request)"
run -n "$n" -c "$c"
echo "-- keep-alive requests"
run -k -n "$((n * 10))" -c "$c"
