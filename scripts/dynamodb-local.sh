#!/usr/bin/env bash
# Runs DynamoDB Local (the jar installed by scripts/tools.sh) in the background.
#
#   scripts/dynamodb-local.sh start  [--port N] [--in-memory | --db-path DIR]
#   scripts/dynamodb-local.sh stop   [--port N]
#   scripts/dynamodb-local.sh status [--port N]
#
# Defaults: port 8000, data on disk in .local/dynamodb/ (-sharedDb, so every
# client sees the same tables regardless of credentials/region).
# Log: .local/dynamodb-<port>.log   pid: .local/dynamodb-<port>.pid
# (start/stop also take a flock on .local/dynamodb-<port>.lock when flock exists)
#
# `start` is idempotent: if DynamoDB Local already answers on the port it
# exits 0. After launching it waits (up to 30 s) until a real ListTables
# request returns HTTP 200. `status` exits 0 only if such a request succeeds.
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"
LOCAL_DIR="$ROOT/.local"
NPM_PREFIX="$LOCAL_DIR/npm"

START_TIMEOUT_SECONDS=30
STOP_TIMEOUT_SECONDS=10

log() { printf 'dynamodb-local.sh: %s\n' "$*" >&2; }
die() { printf 'dynamodb-local.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/dynamodb-local.sh start  [--port N] [--in-memory | --db-path DIR]
       scripts/dynamodb-local.sh stop   [--port N]
       scripts/dynamodb-local.sh status [--port N]
defaults: --port 8000, data on disk in .local/dynamodb/
EOF
}

# Directory containing DynamoDBLocal.jar, as scripts/tools.sh finds it, or nothing.
dynamodb_local_dir() {
  "$SCRIPT_DIR/tools.sh" jar-dir
}

# Serialises start/stop for one port (so parallel `start`s launch one server).
# Optional: skipped when flock(1) is not available.
lock_port() {
  local port="$1"
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p -- "$LOCAL_DIR"
  exec 9>"$LOCAL_DIR/dynamodb-$port.lock"
  flock -w 120 9 || die "timed out waiting for the lock on port $port"
}

port_open() {
  (: <>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# True if a real DynamoDB API call (ListTables) returns HTTP 200.
dynamodb_answers() {
  local port="$1" code
  code="$(curl -s -o /dev/null -w '%{http_code}' --noproxy '*' \
    --connect-timeout 2 --max-time 5 -X POST \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x' \
    --data '{}' "http://127.0.0.1:$port/" 2>/dev/null)" || true
  [[ "$code" == "200" ]]
}

# Prints the pid recorded in the pid file if that process is alive and is a
# DynamoDB Local java process (guards against pid reuse); nothing otherwise.
running_pid() {
  local pid_file="$1" pid args
  [[ -f "$pid_file" ]] || return 0
  pid="$(<"$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  kill -0 "$pid" 2>/dev/null || return 0
  args="$(ps -p "$pid" -o args= 2>/dev/null)" || return 0
  if [[ "$args" == *DynamoDBLocal.jar* ]]; then
    printf '%s\n' "$pid"
  fi
}

# SIGTERM, then SIGKILL if the process has not exited after STOP_TIMEOUT_SECONDS.
terminate() {
  local pid="$1" deadline=$((SECONDS + STOP_TIMEOUT_SECONDS))
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid did not exit after ${STOP_TIMEOUT_SECONDS}s; sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
    sleep 0.5
  fi
}

show_log_tail() {
  local log_file="$1"
  if [[ -f "$log_file" ]]; then
    log "last lines of ${log_file#"$ROOT"/}:"
    tail -n 30 "$log_file" >&2 || true
  fi
}

# Waits until the port accepts connections and ListTables works.
# With a pid, fails early if that process dies.
wait_ready() {
  local port="$1" pid="$2" deadline=$((SECONDS + START_TIMEOUT_SECONDS))
  while ((SECONDS < deadline)); do
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      return 2
    fi
    if port_open "$port" && dynamodb_answers "$port"; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

cmd_start() {
  local port="$1" storage="$2" db_path="$3"
  local pid_file="$LOCAL_DIR/dynamodb-$port.pid" log_file="$LOCAL_DIR/dynamodb-$port.log"
  local pid dir java rc=0
  local -a storage_args

  lock_port "$port"
  if port_open "$port"; then
    if dynamodb_answers "$port"; then
      pid="$(running_pid "$pid_file")"
      log "DynamoDB Local already running on port $port${pid:+ (pid $pid)}"
      exit 0
    fi
    pid="$(running_pid "$pid_file")"
    if [[ -z "$pid" ]]; then
      die "port $port is in use by a process that does not answer DynamoDB requests"
    fi
    log "DynamoDB Local (pid $pid) is starting on port $port; waiting"
  else
    pid="$(running_pid "$pid_file")"
    if [[ -n "$pid" ]]; then
      log "DynamoDB Local (pid $pid) is starting on port $port; waiting"
    fi
  fi

  if [[ -z "$pid" ]]; then
    dir="$(dynamodb_local_dir)"
    if [[ -z "$dir" ]]; then
      log "DynamoDBLocal.jar not found; running scripts/tools.sh install"
      "$SCRIPT_DIR/tools.sh" install >&2
      dir="$(dynamodb_local_dir)"
      [[ -n "$dir" ]] || die "DynamoDBLocal.jar still missing after scripts/tools.sh install"
    fi
    java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
    command -v "$java" >/dev/null 2>&1 || die "java not found (install Java 17+ or set JAVA_HOME)"
    command -v curl >/dev/null 2>&1 || die "curl not found"

    if [[ "$storage" == memory ]]; then
      storage_args=(-inMemory)
    else
      mkdir -p -- "$db_path"
      db_path="$(cd -- "$db_path" && pwd -P)"
      storage_args=(-dbPath "$db_path")
    fi
    mkdir -p -- "$LOCAL_DIR"
    rm -f -- "$pid_file"

    if [[ "$storage" == memory ]]; then
      log "starting DynamoDB Local on port $port (in memory)"
    else
      log "starting DynamoDB Local on port $port (data in $db_path)"
    fi
    (
      cd -- "$dir"
      exec nohup "$java" -Djava.library.path="$dir/DynamoDBLocal_lib" \
        -jar "$dir/DynamoDBLocal.jar" -port "$port" -sharedDb "${storage_args[@]}"
    ) >"$log_file" 2>&1 </dev/null 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$pid_file"
  fi

  wait_ready "$port" "$pid" || rc=$?
  case "$rc" in
    0)
      log "DynamoDB Local ready at http://127.0.0.1:$port (pid $pid, log ${log_file#"$ROOT"/})"
      ;;
    2)
      rm -f -- "$pid_file"
      show_log_tail "$log_file"
      die "DynamoDB Local (pid $pid) exited during startup"
      ;;
    *)
      show_log_tail "$log_file"
      terminate "$pid"
      rm -f -- "$pid_file"
      die "DynamoDB Local did not answer on port $port within ${START_TIMEOUT_SECONDS}s (stopped pid $pid)"
      ;;
  esac
}

cmd_stop() {
  local port="$1"
  local pid_file="$LOCAL_DIR/dynamodb-$port.pid" pid
  lock_port "$port"
  pid="$(running_pid "$pid_file")"
  if [[ -z "$pid" ]]; then
    rm -f -- "$pid_file"
    if port_open "$port"; then
      die "something answers on port $port but it was not started by this script (no live pid file); not stopping it"
    fi
    log "DynamoDB Local is not running on port $port"
    return 0
  fi

  log "stopping DynamoDB Local on port $port (pid $pid)"
  terminate "$pid"
  rm -f -- "$pid_file"
  log "stopped"
}

cmd_status() {
  local port="$1" pid
  pid="$(running_pid "$LOCAL_DIR/dynamodb-$port.pid")"
  if port_open "$port" && dynamodb_answers "$port"; then
    log "DynamoDB Local is running on port $port${pid:+ (pid $pid)}"
    return 0
  fi
  if port_open "$port"; then
    log "port $port is open but does not answer DynamoDB requests"
  elif [[ -n "$pid" ]]; then
    log "DynamoDB Local (pid $pid) is not answering on port $port yet"
  else
    log "DynamoDB Local is not running on port $port"
  fi
  return 1
}

main() {
  local cmd="${1:-}" port=8000 storage=disk db_path="$LOCAL_DIR/dynamodb" storage_set=""
  if [[ -z "$cmd" ]]; then
    usage
    exit 2
  fi
  shift
  case "$cmd" in
    start | stop | status) ;;
    -h | --help | help) usage; exit 0 ;;
    *) usage; die "unknown command: $cmd" ;;
  esac

  while (($# > 0)); do
    case "$1" in
      --port)
        (($# >= 2)) || die "--port needs a value"
        port="$2"
        shift 2
        ;;
      --port=*)
        port="${1#--port=}"
        shift
        ;;
      --in-memory)
        [[ -z "$storage_set" || "$storage_set" == memory ]] || die "--in-memory and --db-path are mutually exclusive"
        storage=memory storage_set=memory
        shift
        ;;
      --db-path | --db-path=*)
        if [[ "$1" == --db-path ]]; then
          (($# >= 2)) || die "--db-path needs a value"
          db_path="$2"
          shift 2
        else
          db_path="${1#--db-path=}"
          shift
        fi
        [[ -n "$db_path" ]] || die "--db-path needs a non-empty value"
        [[ -z "$storage_set" || "$storage_set" == disk ]] || die "--in-memory and --db-path are mutually exclusive"
        storage=disk storage_set=disk
        ;;
      -h | --help)
        usage
        exit 0
        ;;
      *)
        usage
        die "unknown option: $1"
        ;;
    esac
  done

  [[ "$port" =~ ^[0-9]{1,5}$ ]] || die "invalid port: $port"
  port=$((10#$port))
  ((port >= 1 && port <= 65535)) || die "invalid port: $port"
  if [[ -n "$storage_set" && "$cmd" != start ]]; then
    die "--in-memory/--db-path only apply to start"
  fi

  case "$cmd" in
    start) cmd_start "$port" "$storage" "$db_path" ;;
    stop) cmd_stop "$port" ;;
    status) cmd_status "$port" ;;
  esac
}

main "$@"
