#!/usr/bin/env bash
# Measures how a send's latency grows with the writes a DynamoDB Local table with a stream has
# taken, in a disposable DynamoDB Local kept on disk as `make dev` keeps its own, and prints a
# markdown table (docs/performance.md has the results).
#
#   scripts/dynamodb-local-growth.sh [WRITES...]     (default: 0 20000 50000 100000)
#
# GROWTH_DYNAMODB_PORT (8009) is where its DynamoDB Local listens; its data is deleted afterwards.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
PORT="${GROWTH_DYNAMODB_PORT:-8009}"

scripts/tools.sh install
eval "$(scripts/tools.sh env)"
dir="$(mktemp -d "${TMPDIR:-/tmp}/dynamodb-growth.XXXXXX")"
cleanup() {
  scripts/dynamodb-local.sh stop --port "$PORT" >/dev/null 2>&1 || true
  rm -rf -- "$dir"
}
trap cleanup EXIT
scripts/dynamodb-local.sh start --port "$PORT" --db-path "$dir"
cargo run -q -p bench --example dynamodb_local_growth -- "http://127.0.0.1:$PORT" "$dir" "$@"
