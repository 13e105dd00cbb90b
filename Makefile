# The two commands of the README, plus helpers. Each installs what a fresh machine lacks.
#
# Builds go to a target directory outside the work tree so that every clone on this machine
# shares one build of RocksDB's C++ (20-30 minutes the first time on two cores).
CARGO_TARGET_DIR ?= $(HOME)/.cache/attesta-target
export CARGO_TARGET_DIR

DEMO_DIR ?= demo

.PHONY: demo test lint bootstrap build

## Start the demo federation in ./demo (Ctrl-C stops it).
demo: bootstrap
	cargo run --locked -p attesta -- demo up --dir $(DEMO_DIR)

## Run every test: the workspace's, then the console's in a real browser (headless Chromium).
test: bootstrap
	cargo test --workspace --locked
	tests/console/run.sh

## Formatting and clippy, as CI runs them.
lint: bootstrap
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

build: bootstrap
	cargo build --workspace --locked

bootstrap:
	@.ci/bootstrap.sh
