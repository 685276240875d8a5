#!/usr/bin/env bash
# Installs what is missing, then runs every check and test: formatting, clippy, unit tests and
# the integration tests against a real local fleet (needs root: the fleet uses namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
# The scripts capo runs on hosts (see crates/capo-scripts/sh/.shellcheckrc).
shellcheck -s sh crates/capo-scripts/sh/*.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Two test threads: each integration test brings up its own fleet, and Puppet is CPU-bound.
cargo test --workspace --locked -- --test-threads=2

# The benchmarks, once at a small size with the debug binaries, so they cannot rot (the
# figures of such a run mean nothing; see docs/performance.md for the real thing).
cargo build --locked -p capo -p capo-simfleet
CAPO="$PWD/target/debug/capo" bench/peers.sh --quick --out "${TMPDIR:-/tmp}/capo-peers-quick.md"
CAPO="$PWD/target/debug/capo" bench/latency.sh --hosts 5 --rounds 1
BIN_DIR="$PWD/target/debug" bench/scale.sh --no-build --hosts 200 --jobs 100 --commands exec,rollout,plan,status,check --shards 2
BIN_DIR="$PWD/target/debug" bench/ssh_config.sh --no-build --hosts 200 --blocks 20 --jobs 100 --rounds 1
BIN_DIR="$PWD/target/debug" bench/html.sh --no-build --hosts 200 --jobs 100 --apply-delay 100ms --rounds 1
