#!/usr/bin/env bash
# `make bench`: cold starts, package sizes, warm overhead, DynamoDB work and cost, scale, and a
# load run with peak memory; prints the budget table and writes it into docs/performance.md and
# docs/cost.md. Starts its own DynamoDB Local and API, and stops them however it ends.
#
#   BENCH_STARTS=21 BENCH_LOAD_SECS=60 BENCH_LOAD_USERS=8 BENCH_PROCESS_INVOCATIONS=2000 make bench
#
# BENCH_PROFILE picks the cargo profile of this machine's binaries (default `release`, what is
# deployed); CI's short form uses `ci-bench`, the same profile without LTO, which builds
# faster. The arm64 packages are always built with `release`.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"

DYNAMODB_PORT="${BENCH_DYNAMODB_PORT:-8002}"
API_PORT="${BENCH_API_PORT:-9002}"
STARTS="${BENCH_STARTS:-21}"
LOAD_SECS="${BENCH_LOAD_SECS:-60}"
LOAD_USERS="${BENCH_LOAD_USERS:-8}"
# The load runs: instances per function, one run each (Lambda scales out one per concurrent request).
LOAD_INSTANCES="${BENCH_LOAD_INSTANCES:-1 4}"
PROFILE="${BENCH_PROFILE:-release}"
BIN="target/$PROFILE"
LARGE_MESSAGES="${BENCH_LARGE_MESSAGES:-100000}"
LARGE_THREADS="${BENCH_LARGE_THREADS:-5000}"
LIVE_SENDS="${BENCH_LIVE_SENDS:-200}"
# A group where everyone writes at once: 32 participants, each sending this many at one moment.
BURST_MESSAGES="${BENCH_BURST_MESSAGES:-10}"
# Warm invocations per endpoint of each whole function process (a tenth for the login).
PROCESS_INVOCATIONS="${BENCH_PROCESS_INVOCATIONS:-2000}"
# devstack's WebSocket API and its stream dispatcher's counts, for the live delivery run.
WS_PORT="${BENCH_WS_PORT:-9007}"
STREAMS_STATS_PORT="${BENCH_STREAMS_STATS_PORT:-9008}"
FUNCTIONS=(token threads messages unread_count users admin purge realtime fanout)
OUT="$ROOT/target/bench"
# Each step says how long the script has run, so a slow CI run shows where its time went.
step() { printf '\n==> [%dm%02ds] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

scripts/tools.sh install
eval "$(scripts/tools.sh env)"
mkdir -p "$OUT" "$ROOT/.local"

watch_pid=""
live_pids=()
cleanup() {
  if [[ -n "$watch_pid" ]]; then kill -- "-$watch_pid" 2>/dev/null || true; fi
  if [[ ${#live_pids[@]} -gt 0 ]]; then kill "${live_pids[@]}" 2>/dev/null || true; fi
  scripts/dynamodb-local.sh stop --port "$DYNAMODB_PORT" >/dev/null 2>&1 || true
}
trap cleanup EXIT

pkgs=()
for f in "${FUNCTIONS[@]}"; do pkgs+=(-p "$f"); done

step "release builds for this machine (cold starts and the load run use these)"
# The workspace's default members, exactly as `cargo lambda watch --profile "$PROFILE"` builds
# them, so the load run starts without compiling; the bench's own crates in a separate invocation
# so their test utilities never end up in a function.
cargo build --profile "$PROFILE" --bins
cargo build --profile "$PROFILE" -p hello-world -p hello-dynamodb
cargo build --profile "$PROFILE" -p bench -p loadgen -p devstack

step "arm64 packages (what is deployed)"
cargo lambda build --release --arm64 --output-format zip "${pkgs[@]}"

step "DynamoDB Local (in memory, port $DYNAMODB_PORT)"
scripts/dynamodb-local.sh stop --port "$DYNAMODB_PORT" >/dev/null 2>&1 || true
scripts/dynamodb-local.sh start --port "$DYNAMODB_PORT" --in-memory

step "cold start, warm overhead (in-process and whole process), DynamoDB work and scale"
"$BIN/bench" measure --dynamodb "http://127.0.0.1:$DYNAMODB_PORT" --starts "$STARTS" --bin-dir "$BIN" \
  --process-invocations "$PROCESS_INVOCATIONS" \
  --large-messages "$LARGE_MESSAGES" --large-threads "$LARGE_THREADS" --out "$OUT/results.json"

step "load: $LOAD_USERS users for $LOAD_SECS s per run, at $LOAD_INSTANCES instances per function"
# A fresh DynamoDB Local: with the scale case's 100,000 messages still in it, it answered the
# load run's calls in seconds instead of milliseconds.
scripts/dynamodb-local.sh stop --port "$DYNAMODB_PORT" >/dev/null 2>&1 || true
scripts/dynamodb-local.sh start --port "$DYNAMODB_PORT" --in-memory
table="bench-load-$(date +%s)"
env_file=$(scripts/local-env.sh "$ROOT/.local/bench.env" "$table" "http://127.0.0.1:$DYNAMODB_PORT" \
  "ws://127.0.0.1:$WS_PORT/live")
password="load-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
(
  set -a
  # shellcheck disable=SC1090
  source "$env_file"
  set +a
  "$BIN/msgctl" create-table
  for i in $(seq -f '%04g' 1 "$LOAD_USERS"); do
    MSGCTL_PASSWORD="$password" "$BIN/msgctl" create-user "load-$i" >/dev/null
  done
  for i in $(seq -f '%04g' 1 32); do
    MSGCTL_PASSWORD="$password" "$BIN/msgctl" create-user "burst-$i" >/dev/null
  done
)
# Starts the API with up to $1 processes per function and waits until each function answers.
start_api() {
  setsid cargo lambda watch --profile "$PROFILE" --ignore-changes --concurrency "$1" \
    --invoke-address 127.0.0.1 --invoke-port "$API_PORT" --env-file "$env_file" \
    > "$ROOT/.local/bench-watch-$1.log" 2>&1 &
  watch_pid=$!
  # The first request to each function starts its process; do that before the clock runs.
  for path in /api/unread_count/ /api/threads/ /api/threads/x/messages/ /api/users/me/ /api/token/refresh/; do
    for _ in $(seq 1 300); do
      code=$(curl -s -o /dev/null -w '%{http_code}' -X GET "http://127.0.0.1:$API_PORT$path" || true)
      if [[ "$code" =~ ^[1-5][0-9][0-9]$ && "$code" != 000 && "$code" != 502 ]]; then break; fi
      sleep 1
    done
  done
}
stop_api() {
  kill -- "-$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  watch_pid=""
}
load_args=()
for instances in $LOAD_INSTANCES; do
  if [[ -n "$watch_pid" ]]; then stop_api; fi
  start_api "$instances"
  echo "bench: load run with up to $instances instances per function" >&2
  LOADGEN_PASSWORD="$password" "$BIN/loadgen" --base-url "http://127.0.0.1:$API_PORT" \
    --users "$LOAD_USERS" --user-prefix load- --duration "$LOAD_SECS" --json "$OUT/load-$instances.json"
  load_args+=(--load "$instances=$OUT/load-$instances.json")
done

# Peak resident memory (VmHWM) of each function process that served the last load run.
: > "$OUT/rss.txt"
for f in "${FUNCTIONS[@]}"; do
  for pid in $(pgrep -x "$f" || true); do
    kib=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    if [[ -n "$kib" ]]; then echo "$f $kib" >> "$OUT/rss.txt"; fi
  done
done

step "live delivery: $LIVE_SENDS sends through devstack ws (port $WS_PORT) and devstack streams"
# Started after the load run, so that the fan-out of its writes neither slows the load nor
# queues ahead of the probe's events (the mappings start at LATEST, as the template says). The
# dispatcher polls four times a second, as Lambda polls a DynamoDB stream's shards: "Lambda
# polls shards in your DynamoDB stream for records at a base rate of four times per second"
# (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html).
"$BIN/devstack" ws --listen "127.0.0.1:$WS_PORT" --invoke "http://127.0.0.1:$API_PORT" \
  > "$ROOT/.local/bench-ws.log" 2>&1 &
live_pids+=($!)
"$BIN/devstack" streams --dynamodb-endpoint "http://127.0.0.1:$DYNAMODB_PORT" --table "$table" \
  --invoke "http://127.0.0.1:$API_PORT" --poll-interval-ms 250 --stats-listen "127.0.0.1:$STREAMS_STATS_PORT" \
  > "$ROOT/.local/bench-streams.log" 2>&1 &
live_pids+=($!)
for _ in $(seq 1 60); do
  if curl -s -o /dev/null "http://127.0.0.1:$STREAMS_STATS_PORT/stats"; then break; fi
  sleep 0.5
done
LOADGEN_PASSWORD="$password" "$BIN/loadgen" --base-url "http://127.0.0.1:$API_PORT" \
  --users 2 --user-prefix load- --live "$LIVE_SENDS" --json "$OUT/live.json" \
  || { tail -n 40 "$ROOT/.local/bench-ws.log" "$ROOT/.local/bench-streams.log" >&2; exit 1; }
curl -s "http://127.0.0.1:$STREAMS_STATS_PORT/stats" > "$OUT/streams.json"

step "burst: 32 participants of one thread send $BURST_MESSAGES messages each at once"
# With the stream's fan-out still running, as it does in production. A 5xx or a count that is
# not exact is reported (the report says so); only a burst that cannot run fails the bench.
rm -f "$OUT/burst.json"
LOADGEN_PASSWORD="$password" "$BIN/loadgen" --base-url "http://127.0.0.1:$API_PORT" \
  --users 32 --user-prefix burst- --burst "$BURST_MESSAGES" --json "$OUT/burst.json" \
  || echo "bench: the burst had failures (see the report)" >&2
[[ -s "$OUT/burst.json" ]] || { echo "bench: the burst did not run" >&2; exit 1; }
kill "${live_pids[@]}" 2>/dev/null || true
live_pids=()
stop_api

step "report"
"$BIN/bench" report --results "$OUT/results.json" "${load_args[@]}" --rss "$OUT/rss.txt" \
  --live "$OUT/live.json" --streams "$OUT/streams.json" --burst "$OUT/burst.json" --docs docs
