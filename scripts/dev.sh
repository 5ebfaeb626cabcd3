#!/usr/bin/env bash
# `make dev`: DynamoDB Local on disk, the table and demo data, and the API on localhost:9000.
# Safe to run again: every step skips what is already there.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

DYNAMODB_PORT="${DYNAMODB_PORT:-8000}"
API_PORT="${API_PORT:-9000}"
TABLE="${TABLE_NAME:-messaging}"

scripts/tools.sh install
eval "$(scripts/tools.sh env)"
scripts/dynamodb-local.sh start --port "$DYNAMODB_PORT"

env_file=$(scripts/local-env.sh "$ROOT/.local/dev.env" "$TABLE" "http://127.0.0.1:$DYNAMODB_PORT")
set -a
# shellcheck disable=SC1090
source "$env_file"
set +a

cargo build --bins
cargo run -q -p msgctl -- create-table
cargo run -q -p msgctl -- seed-demo

echo "dev: serving the API on http://localhost:$API_PORT (try: curl -X POST localhost:$API_PORT/api/token/ -d username=alice -d password=super_pass)" >&2
exec cargo lambda watch --invoke-port "$API_PORT" --env-file "$env_file"
