#!/usr/bin/env bash
# Writes the environment file the functions get under `cargo lambda watch` and prints its path.
#
#   scripts/local-env.sh <env-file> <table> <dynamodb-endpoint> [<websocket-url>]
#
# The WebSocket URL is devstack's local WebSocket API, where the realtime and fanout functions
# post events (default ws://127.0.0.1:9004/live, `make dev`'s).
# The JWT key is random per checkout, kept in the ignored .local/ folder, never in the repository.
# The functions read it from that file (JWT_SECRET_FILE): `cargo lambda watch` logs every
# variable of the environment file when it starts a function, so the key itself is not one.
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
file="$1" table="$2" endpoint="$3" websocket_url="${4:-ws://127.0.0.1:9004/live}"

mkdir -p "$ROOT/.local"
secret_file="$ROOT/.local/jwt-secret"
if [[ ! -s "$secret_file" ]]; then
  (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n=+/' > "$secret_file")
fi

(umask 077 && cat > "$file" <<ENV
TABLE_NAME=$table
JWT_SECRET_FILE=$secret_file
AWS_ENDPOINT_URL_DYNAMODB=$endpoint
AWS_ACCESS_KEY_ID=local
AWS_SECRET_ACCESS_KEY=local
AWS_REGION=us-east-1
WEBSOCKET_URL=$websocket_url
RUST_LOG=info
ENV
)
echo "$file"
