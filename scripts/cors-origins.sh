#!/usr/bin/env bash
# Prints the allow-list for `devstack api --allow-origins`: CORS_ALLOW_ORIGINS if set, else
# template.yaml's CorsAllowOrigins default (what a deployment without overrides allows), plus
# the origins given as arguments (the local web client's, which is on an origin of its own).
#
#   scripts/cors-origins.sh [<origin>...]
set -euo pipefail

ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
base="${CORS_ALLOW_ORIGINS:-}"
if [[ -z "$base" ]]; then
  # The `Default:` line of the CorsAllowOrigins parameter (a CommaDelimitedList).
  base=$(awk '/^  CorsAllowOrigins:/ { p = 1; next } p && /^    Default:/ { print $2; exit } p && /^  [A-Za-z]/ { exit }' \
    "$ROOT/template.yaml")
  [[ -n "$base" ]] || { echo "cors-origins.sh: no CorsAllowOrigins default in template.yaml" >&2; exit 1; }
fi
origins="$base"
for extra in "$@"; do origins="$origins,$extra"; done
echo "$origins"
