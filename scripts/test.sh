#!/usr/bin/env bash
# The whole test suite on a fresh machine: starts the servers the tests need
# (scripts/services.sh), then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(bash scripts/services.sh)"
if [ -z "${ELASTIC_URL:-}" ]; then
  echo "elasticsearch live tests: SKIPPED (ELASTIC_URL is not set; no Elasticsearch server can be installed here)"
fi
cargo test --workspace --locked
