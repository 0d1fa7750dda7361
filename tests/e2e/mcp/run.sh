#!/usr/bin/env bash
# Runs the MCP gateway end-to-end tests (tests/e2e/mcp/*.test.js) with the official MCP SDK and
# reference servers pinned in package-lock.json.
#
#   tests/e2e/mcp/run.sh [--install-only | --no-install] [test files...]
#
# The binary comes from $MANDATE_BIN, else the newest build/*/src/cli/mandate.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
cd "$here"
die() {
  echo "e2e-mcp: $*" >&2
  exit 1
}
mode=run
if [[ "${1:-}" == "--install-only" || "${1:-}" == "--no-install" ]]; then
  mode="${1#--}"
  shift
fi
command -v node >/dev/null || die "node not found on PATH (Node.js 20 or newer is needed)"
command -v npm >/dev/null || die "npm not found on PATH"

install_deps() {
  local stamp_file=node_modules/.mandate-e2e-stamp stamp log
  stamp="$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1) node-$(node --version)"
  [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]] && return 0
  log="$(mktemp)"
  if ! npm ci --no-audit --no-fund --loglevel=error --prefer-offline --fetch-retries=1 --fetch-timeout=30000 >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "'npm ci' failed in $here: is the npm registry ($(npm config get registry)) reachable?"
  fi
  rm -f "$log"
  echo "$stamp" >"$stamp_file"
}
if [[ "$mode" != no-install ]]; then
  exec 9>"$here/.install.lock"
  flock 9
  install_deps
  flock -u 9
fi
[[ "$mode" == install-only ]] && exit 0
[[ -d node_modules/@modelcontextprotocol/sdk ]] || die "node_modules is incomplete; run $0 --install-only first"
if [[ -z "${MANDATE_BIN:-}" ]]; then
  MANDATE_BIN="$(ls -t "$repo"/build/*/src/cli/mandate 2>/dev/null | head -n1 || true)"
  [[ -n "$MANDATE_BIN" ]] || die "MANDATE_BIN is not set and no build/*/src/cli/mandate exists"
fi
export MANDATE_BIN
(($# == 0)) && set -- *.test.js
exec node --test --test-reporter=spec --test-timeout=120000 "$@"
