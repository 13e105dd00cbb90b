#!/usr/bin/env bash
# The console's browser tests (make test): installs what they need on a fresh Debian machine
# (Chromium, Node.js and npm from Debian; playwright-core and axe-core from npm, pinned by
# package-lock.json), builds attesta, and runs console.test.mjs.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/attesta-target}"

missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]})); then
  echo "console tests: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Playwright drives the system's Chromium: it never downloads a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
cargo build --locked -q -p attesta --bin attesta
export ATTESTA_BIN="$CARGO_TARGET_DIR/debug/attesta"
node --test --test-concurrency=1 console.test.mjs
