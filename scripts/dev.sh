#!/usr/bin/env bash
# `make dev`: DynamoDB Local on disk, the table and demo data, and the API on localhost:9000.
# Safe to run again: every step skips what is already there.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

DYNAMODB_PORT="${DYNAMODB_PORT:-8000}"
API_PORT="${API_PORT:-9000}"
# `cargo lambda watch` serves the functions here, without its own any-origin CORS; devstack puts
# the template's CORS allow-list in front of it on API_PORT, as API Gateway does.
FUNCTIONS_PORT="${FUNCTIONS_PORT:-9100}"
TABLE="${TABLE_NAME:-messaging}"
# devstack's WebSocket API, and its stream dispatcher that runs the fanout and purge functions.
WS_PORT="${WS_PORT:-9004}"
# The reference web client (web/), on an origin of its own as in production, so the API's CORS
# allow-list gets its origins.
WEB_PORT="${WEB_PORT:-9005}"

scripts/tools.sh install
eval "$(scripts/tools.sh env)"
scripts/dynamodb-local.sh start --port "$DYNAMODB_PORT"

env_file=$(scripts/local-env.sh "$ROOT/.local/dev.env" "$TABLE" "http://127.0.0.1:$DYNAMODB_PORT" \
  "ws://127.0.0.1:$WS_PORT/live")
set -a
# shellcheck disable=SC1090
source "$env_file"
set +a

cargo build --bins
cargo build -p devstack
# DynamoDB Local keeps every stream record, and the database slows down as they pile up
# (docs/performance.md, "DynamoDB Local after long use"): drop other tables, and rebuild ours
# with an empty stream once its history is long. `make clean-local` starts from nothing.
target/debug/devstack compact --dynamodb-endpoint "http://127.0.0.1:$DYNAMODB_PORT" --table "$TABLE"
target/debug/msgctl create-table
target/debug/msgctl seed-demo

target/debug/devstack api --listen "127.0.0.1:$API_PORT" --invoke "http://127.0.0.1:$FUNCTIONS_PORT" \
  --allow-origins "$(scripts/cors-origins.sh "http://localhost:$WEB_PORT" "http://127.0.0.1:$WEB_PORT")" &
devstack_pids=($!)
target/debug/devstack web --listen "127.0.0.1:$WEB_PORT" --root web --api-base "http://localhost:$API_PORT" &
devstack_pids+=($!)
target/debug/devstack ws --listen "127.0.0.1:$WS_PORT" --invoke "http://127.0.0.1:$FUNCTIONS_PORT" &
devstack_pids+=($!)
# The dispatcher waits for the functions: `cargo lambda watch` below compiles before it answers.
(
  until curl -s -o /dev/null "http://127.0.0.1:$FUNCTIONS_PORT/api/unread_count/"; do sleep 1; done
  exec target/debug/devstack streams --dynamodb-endpoint "http://127.0.0.1:$DYNAMODB_PORT" --table "$TABLE" \
    --invoke "http://127.0.0.1:$FUNCTIONS_PORT"
) &
devstack_pids+=($!)
trap 'kill "${devstack_pids[@]}" 2>/dev/null || true' EXIT
echo "dev: serving the API on http://localhost:$API_PORT (try: curl -X POST localhost:$API_PORT/api/token/ -d username=alice -d password=super_pass)" >&2
echo "dev: WebSocket API on ws://localhost:$WS_PORT/live (connect with ?ticket= from POST /api/realtime/ticket/; docs/realtime.md)" >&2
echo "dev: web client on http://localhost:$WEB_PORT (log in as alice or bob, password super_pass)" >&2
echo "dev: browser origins allowed (CORS): template.yaml's CorsAllowOrigins default (set CORS_ALLOW_ORIGINS=a,b to change) and the web client's" >&2
cargo lambda watch --disable-cors --concurrency 4 --invoke-address 127.0.0.1 --invoke-port "$FUNCTIONS_PORT" --env-file "$env_file"
