#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build attesta:
# - libclang-dev: RocksDB's bindings are generated with bindgen, which loads libclang;
# - libssl-dev, pkg-config: the openssl crate (the federation CA) links the system OpenSSL;
# - g++, make: RocksDB's C++.
# Further Debian packages a caller needs may be named as arguments (`.ci/bench.sh` does).
# Idempotent: installs nothing when everything is there.
set -euo pipefail

packages=(libclang-dev libssl-dev pkg-config g++ make "$@")
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "bootstrap: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

for tool in cargo rustc; do
  command -v "$tool" >/dev/null || { echo "bootstrap: $tool not found; install a Rust toolchain (rustup)" >&2; exit 1; }
done
