#!/usr/bin/env bash
# Fails if the JWT signing key appears in any of the given logs.
#
#   scripts/no-secrets-in-logs.sh <secret-file> <log>...
#
# `make test` runs it over every log the local stack wrote under .local/. It also fails when
# there is nothing to search (no key, or no log with lines in it), so it cannot pass vacuously.
set -euo pipefail

secret_file="$1"
shift
[[ -s "$secret_file" ]] || { echo "no-secrets-in-logs: $secret_file is empty or missing" >&2; exit 1; }
lines=0
for log in "$@"; do
  [[ -f "$log" ]] || continue
  lines=$((lines + $(wc -l < "$log")))
  if grep -qF -f "$secret_file" -- "$log"; then
    echo "no-secrets-in-logs: the JWT signing key is in $log (line $(grep -nF -f "$secret_file" -- "$log" | head -n1 | cut -d: -f1))" >&2
    exit 1
  fi
done
((lines > 0)) || { echo "no-secrets-in-logs: no log lines to search" >&2; exit 1; }
echo "no-secrets-in-logs: the key is in none of $# logs ($lines lines)" >&2
