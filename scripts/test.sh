#!/usr/bin/env bash
# The whole test suite on a fresh machine: starts the servers the tests need
# (scripts/services.sh), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/services.sh)"
cargo test --workspace --locked
