#!/usr/bin/env bash
# `make test`: every check the project has. Installs its own tools and starts its own
# DynamoDB Local and API, and stops them again however it ends.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

DYNAMODB_PORT="${TEST_DYNAMODB_PORT:-8001}"
API_PORT="${TEST_API_PORT:-9001}"
# `cargo lambda watch` serves the functions here; devstack puts API Gateway's CORS in front of it
# on API_PORT, where the tests call.
FUNCTIONS_PORT="${TEST_FUNCTIONS_PORT:-9101}"
# devstack's WebSocket API (API Gateway's stand-in) and the stream dispatcher (Lambda's event
# source mapping) hand events to the functions through `cargo lambda watch`'s Invoke API.
WS_PORT="${TEST_WS_PORT:-9003}"
DRIVER_PORT="${TEST_DRIVER_PORT:-9515}"
# The web client (devstack web), on an origin of its own, which the API's allow-list includes.
WEB_PORT="${TEST_WEB_PORT:-9006}"
export SAM_CLI_TELEMETRY=0
# Each step says how long the script has run, so a slow CI run shows where its time went.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

scripts/tools.sh install
scripts/tools.sh install-browser
eval "$(scripts/tools.sh env)"

step "format"
cargo fmt --all -- --check
step "clippy"
cargo clippy --workspace --all-targets --features api-tests/e2e,api-tests/browser -- -D warnings
step "template"
cfn-lint template.yaml
sam validate --lint --template-file template.yaml
# Checks that do not fit this stack are skipped in the template itself, each with its reason.
checkov --quiet --compact --skip-download --framework cloudformation --file template.yaml

watch_pid=""
devstack_pid=""
ws_pid=""
streams_pid=""
driver_pid=""
web_pid=""
cleanup() {
  if [[ -n "$watch_pid" ]]; then kill -- "-$watch_pid" 2>/dev/null || true; fi
  if [[ -n "$devstack_pid" ]]; then kill "$devstack_pid" 2>/dev/null || true; fi
  if [[ -n "$ws_pid" ]]; then kill "$ws_pid" 2>/dev/null || true; fi
  if [[ -n "$streams_pid" ]]; then kill "$streams_pid" 2>/dev/null || true; fi
  if [[ -n "$driver_pid" ]]; then kill "$driver_pid" 2>/dev/null || true; fi
  if [[ -n "$web_pid" ]]; then kill "$web_pid" 2>/dev/null || true; fi
  scripts/dynamodb-local.sh stop --port "$DYNAMODB_PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "DynamoDB Local (in memory, port $DYNAMODB_PORT)"
scripts/dynamodb-local.sh stop --port "$DYNAMODB_PORT" >/dev/null 2>&1 || true
scripts/dynamodb-local.sh start --port "$DYNAMODB_PORT" --in-memory

step "unit and integration tests"
DYNAMODB_ENDPOINT="http://127.0.0.1:$DYNAMODB_PORT" cargo test --workspace

step "end to end over HTTP (devstack on port $API_PORT, cargo lambda watch on $FUNCTIONS_PORT)"
table="e2e-$(date +%s)"
burst_password="burst-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
env_file=$(scripts/local-env.sh "$ROOT/.local/e2e.env" "$table" "http://127.0.0.1:$DYNAMODB_PORT" \
  "ws://127.0.0.1:$WS_PORT/live")
# Cargo unifies dependency features over the packages it is asked for, so every cargo call here
# names the same set (the workspace) and reuses what the tests above compiled; only the
# functions' own build, the set `cargo lambda watch` runs, is compiled again.
cargo build --bins
cargo build --workspace --bin devstack
(
  set -a
  # shellcheck disable=SC1090
  source "$env_file"
  set +a
  target/debug/msgctl seed-demo
  # A group of 32 for the burst test (every participant sends at once).
  for i in $(seq -f '%04g' 1 32); do
    MSGCTL_PASSWORD="$burst_password" target/debug/msgctl create-user "burst-$i" >/dev/null
  done
)
# Several instances per function, as Lambda scales out: races in the tests cross processes.
# RUST_LOG=info as under `make dev` (which sources the environment file): its watcher then logs
# each instance's whole environment, which the last step proves holds no secret.
RUST_LOG=info setsid cargo lambda watch --ignore-changes --disable-cors --concurrency 4 --invoke-address 127.0.0.1 --invoke-port "$FUNCTIONS_PORT" \
  --env-file "$env_file" > "$ROOT/.local/e2e-watch.log" 2>&1 &
watch_pid=$!
# devstack api writes the access log (one JSON line per request) on stdout, the rest on stderr.
target/debug/devstack api --listen "127.0.0.1:$API_PORT" --invoke "http://127.0.0.1:$FUNCTIONS_PORT" \
  --allow-origins "$(scripts/cors-origins.sh "http://127.0.0.1:$WEB_PORT" "http://localhost:$WEB_PORT")" \
  > "$ROOT/.local/e2e-access.log" 2> "$ROOT/.local/e2e-devstack.log" &
devstack_pid=$!
# Every frame it sends a client is recorded, and checked against docs/events.schema.json last.
frames_file="$ROOT/.local/e2e-frames.jsonl"
: > "$frames_file"
target/debug/devstack ws --listen "127.0.0.1:$WS_PORT" --invoke "http://127.0.0.1:$FUNCTIONS_PORT" \
  --record-frames "$frames_file" > "$ROOT/.local/e2e-ws.log" 2>&1 &
ws_pid=$!
for _ in $(seq 1 120); do
  if curl -s -o /dev/null "http://127.0.0.1:$API_PORT/api/unread_count/"; then break; fi
  sleep 1
done
# Started once the functions answer, so that no stream record meets an Invoke API that is not up.
target/debug/devstack streams --dynamodb-endpoint "http://127.0.0.1:$DYNAMODB_PORT" --table "$table" \
  --invoke "http://127.0.0.1:$FUNCTIONS_PORT" > "$ROOT/.local/e2e-streams.log" 2>&1 &
streams_pid=$!
E2E_BASE_URL="http://127.0.0.1:$API_PORT" E2E_WEBSOCKET_URL="ws://127.0.0.1:$WS_PORT/live" \
  E2E_ACCESS_LOG="$ROOT/.local/e2e-access.log" E2E_BURST_PASSWORD="$burst_password" \
  cargo test --workspace --features api-tests/e2e --test e2e \
  || { tail -n 60 "$ROOT/.local/e2e-watch.log" "$ROOT/.local/e2e-devstack.log" "$ROOT/.local/e2e-ws.log" \
    "$ROOT/.local/e2e-streams.log" >&2; exit 1; }

step "admin panel and web client in headless Chromium (ChromeDriver on port $DRIVER_PORT, web client on $WEB_PORT)"
chromedriver --port="$DRIVER_PORT" > "$ROOT/.local/chromedriver.log" 2>&1 &
driver_pid=$!
target/debug/devstack web --listen "127.0.0.1:$WEB_PORT" --root web --api-base "http://127.0.0.1:$API_PORT" \
  > "$ROOT/.local/e2e-web.log" 2>&1 &
web_pid=$!
for _ in $(seq 1 30); do
  if curl -s -o /dev/null "http://127.0.0.1:$DRIVER_PORT/status"; then break; fi
  sleep 0.5
done
E2E_BASE_URL="http://127.0.0.1:$API_PORT" WEBDRIVER_URL="http://127.0.0.1:$DRIVER_PORT" \
  WEB_CLIENT_URL="http://127.0.0.1:$WEB_PORT" cargo test --workspace --features api-tests/browser --test browser \
  || { tail -n 60 "$ROOT/.local/e2e-watch.log" >&2; exit 1; }

step "every WebSocket frame of the end-to-end and browser runs against docs/events.schema.json"
E2E_FRAMES_FILE="$frames_file" cargo test --workspace --features api-tests/e2e --test e2e \
  -- --ignored --exact frames::every_frame_of_the_run_matches_the_schema

# Last, because it hammers the login and trips the brute-force limits for the demo users.
step "fuzzing the API against docs/openapi.yaml (Schemathesis)"
scripts/fuzz.sh "http://127.0.0.1:$API_PORT" "$ROOT/.local/e2e-watch.log"

step "no secret in the local stack's logs"
scripts/no-secrets-in-logs.sh "$ROOT/.local/jwt-secret" "$ROOT"/.local/*.log
step "all checks passed"
