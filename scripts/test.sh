#!/usr/bin/env bash
# Installs what is missing, then runs every check and test: formatting, clippy, unit tests and
# the integration tests against a real local fleet (needs root: the fleet uses namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Two test threads: each integration test brings up its own fleet, and Puppet is CPU-bound.
cargo test --workspace --locked -- --test-threads=2
