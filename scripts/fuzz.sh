#!/usr/bin/env bash
# Fuzzes the API served by `cargo lambda watch` at $1 (seeded with the demo data) with
# Schemathesis against docs/openapi.yaml: every response as the spec says, schema-valid input
# accepted, schema-violating input refused; 20 examples per operation, deterministic.
#
#   scripts/fuzz.sh <base url> <cargo lambda watch log>
#
# "No 5xx" is checked on the functions themselves, in the watch log: the emulator answers 500
# on its own, before any function runs, for a JSON body that is not UTF-8 (API Gateway would
# base64-encode it; tests/api/misc.rs sends such bodies to the functions in-process).
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
base="$1" log="$2"
token=$(curl -sf -X POST "$base/api/token/" -d username=alice -d password=super_pass \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access"])')
# Only what the functions logged from here on counts: the tests before this one answer 503s on
# purpose (racing sends that a client retries).
start=$(wc -l < "$log")
before=$(grep -c '"request served"' "$log" || true)
"$ROOT/.venv-fuzz/bin/st" --config-file "$ROOT/tests/fuzz/schemathesis.toml" run "$ROOT/docs/openapi.yaml" \
  --url "$base" -H "Authorization: Bearer $token" --workers 1 --generation-deterministic \
  --exclude-checks not_a_server_error,content_type_conformance --max-failures 20
served=$(($(grep -c '"request served"' "$log") - before))
errors=$(tail -n +"$((start + 1))" "$log" | grep '"request served"' | grep -c '"status":5' || true)
echo "fuzz: the functions served $served requests, $errors of them with a 5xx"
[[ "$errors" == 0 ]]
