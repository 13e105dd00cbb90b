#!/usr/bin/env bash
# Checks the nodes against the standards they speak, on a demo federation over real mTLS:
# - docs/openapi.yaml, with schemathesis (from PyPI): generated valid and invalid requests;
#   every answer must have a documented status, content type and body, no 5xx, and invalid
#   requests must be refused. Run against a registry, the Questura and the coordinator, as
#   INPS (the questions), the auditor (the audit routes) and the node's own operator;
# - /metrics in the Prometheus text format, with `promtool check metrics` (Debian's
#   prometheus package), and its content types for both formats.
# Exits non-zero on any failure.
#
# Not checked here, with the reason:
# - positive_data_acceptance: JSON Schema cannot say what a codice fiscale's check letter or
#   birth place is, nor "not after tomorrow" for a date, so schema-valid bodies are rightly
#   refused (the document describes these rules in words);
# - imports (text/csv) and manifest pushes (application/jose): schemathesis has no generator
#   for these bodies; both have their own tests.
#
# Usage: .ci/conformance.sh [max examples per operation]     # default 30
set -euo pipefail
cd "$(dirname "$0")/.."
examples=${1:-30}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"
venv="${ATTESTA_VENV:-$HOME/.cache/attesta-venv}"
[ -x "$venv/bin/st" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q "schemathesis==4.32.5"; }

.ci/bootstrap.sh
for tool in promtool curl; do
  command -v $tool >/dev/null && continue
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends prometheus curl >/dev/null
done
cargo build --locked -q -p attesta --bin attesta
bin="$CARGO_TARGET_DIR/debug/attesta"

dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
RUST_LOG=warn "$bin" demo up --dir "$dir" --base-port "$port" >"$dir.log" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null; wait $demo 2>/dev/null; rm -rf "$dir" "$dir.log"' EXIT
for _ in $(seq 1 600); do [ -f "$dir/endpoints.json" ] && break; sleep 0.1; done
[ -f "$dir/endpoints.json" ] || { cat "$dir.log" >&2; echo "demo did not start" >&2; exit 1; }
url() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$dir/endpoints.json" "$1"; }

failed=0
st_run() { # node agency
  "$venv/bin/st" --no-color run docs/openapi.yaml --url "$(url "$1")" \
    --tls-verify "$dir/ca/ca.crt" \
    --request-cert "$dir/agencies/$2/auth.crt" --request-cert-key "$dir/agencies/$2/auth.key" \
    --max-examples "$examples" --workers 2 --seed 1 \
    --phases examples,coverage,fuzzing \
    --exclude-checks positive_data_acceptance \
    --exclude-path /v1/admin/import/residents --exclude-path /v1/admin/import/permits \
    --exclude-path /v1/manifest/notify --exclude-path /v1/manifest \
    >"$dir/st.out" 2>&1
}
check() { # node agency
  echo "== $1 as $2"
  local tries=0
  until st_run "$1" "$2"; do
    # A failed check, or any error (the node unreachable, a 5xx), is the node's fault. The
    # one exception is a known crash of the tool itself (Hypothesis on CPython 3.11: "AST
    # constructor recursion depth mismatch"), seen now and then: run once more, then report
    # it without failing the build.
    if grep -qE '❌|^Failures:' "$dir/st.out" || ! grep -q 'AST constructor recursion depth mismatch' "$dir/st.out"; then
      failed=1
      cat "$dir/st.out"
      break
    fi
    tries=$((tries + 1))
    if [ $tries -ge 2 ]; then
      echo "schemathesis crashed twice on its own known error (no check failed)"
      break
    fi
  done
  grep -E "Examples|Coverage|Fuzzing|generated" "$dir/st.out"
}
check comune-pesaro inps-pesaro
check comune-pesaro garante-audit
check comune-pesaro comune-pesaro
check questura-pu inps-pesaro
check inps-pesaro inps-pesaro
echo "== /metrics"
own="$dir/agencies/questura-pu"
metrics() {
  curl -sS --cacert "$dir/ca/ca.crt" --cert "$own/auth.crt" --key "$own/auth.key" "$@" \
    "$(url questura-pu)/metrics"
}
type=$(metrics -o "$dir/metrics.txt" -w '%{content_type}')
[ "$type" = "text/plain; version=0.0.4; charset=utf-8" ] || { echo "Prometheus text served as $type"; failed=1; }
promtool check metrics < "$dir/metrics.txt" || failed=1
type=$(metrics -H 'Accept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5' -o "$dir/metrics.om" -w '%{content_type}')
[ "$type" = "application/openmetrics-text; version=1.0.0; charset=utf-8" ] || { echo "OpenMetrics served as $type"; failed=1; }
tail -n 1 "$dir/metrics.om" | grep -qx '# EOF' || { echo "OpenMetrics text does not end with # EOF"; failed=1; }
[ $failed = 0 ] && echo "conformance: OpenAPI (schemathesis), Prometheus text (promtool) and OpenMetrics checks passed"
exit $failed
