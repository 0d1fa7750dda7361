#!/usr/bin/env bash
# Runs the end-to-end tests (and, for ui/*.test.js, the console in chromium through playwright-core):
# the official oso-cloud npm clients (2.6.0 and 1.6.1) against a live
# `mandate serve --dev`. Each test file starts its own server on a free loopback port.
#
#   tests/e2e/run.sh [--install-only | --no-install] [test files...]   (default: every *.test.js)
#
# The binary comes from $MANDATE_BIN, else the newest build/*/src/cli/mandate. Dependencies are
# installed from package-lock.json with `npm ci` (or `npm install` without a lock file), quietly, and
# only when package.json, the lock file or the node version changed since the last install.
# MANDATE_E2E_KEEP=1 keeps each server's data directory and log (paths are printed).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"

die() {
  echo "e2e: $*" >&2
  exit 1
}

mode=run
if [[ "${1:-}" == "--install-only" || "${1:-}" == "--no-install" ]]; then
  mode="${1#--}"
  shift
fi

command -v node >/dev/null || die "node not found on PATH (Node.js 20 or newer is needed)"
command -v npm >/dev/null || die "npm not found on PATH"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || die "Node.js $(node --version) is too old; the tests need 20 or newer (node --test)"

install_deps() {
  local stamp_file=node_modules/.mandate-e2e-stamp
  local stamp
  stamp="$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1) node-$(node --version)"
  if [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$stamp" ]]; then
    return 0
  fi
  local cmd=(npm ci)
  [[ -f package-lock.json ]] || cmd=(npm install)
  local log
  log="$(mktemp)"
  if ! "${cmd[@]}" --no-audit --no-fund --loglevel=error --prefer-offline --fetch-retries=1 --fetch-timeout=30000 >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "'${cmd[*]}' failed in $here: could not install oso-cloud from $(npm config get registry). Is the npm registry reachable from this machine (proxy, offline)?"
  fi
  rm -f "$log"
  echo "$stamp" >"$stamp_file"
}

# Installs are serialized so parallel CTest runs cannot race on node_modules.
if [[ "$mode" != no-install ]]; then
  if command -v flock >/dev/null; then
    exec 9>"$here/.install.lock"
    flock 9
    install_deps
    flock -u 9
  else
    install_deps
  fi
fi
[[ "$mode" == install-only ]] && exit 0
[[ -d node_modules/oso-cloud && -d node_modules/oso-cloud-1 && -d node_modules/playwright-core ]] ||
  die "node_modules is incomplete; run $0 --install-only first"

if [[ -z "${MANDATE_BIN:-}" ]]; then
  MANDATE_BIN="$(ls -t "$repo"/build/*/src/cli/mandate 2>/dev/null | head -n1 || true)"
  [[ -n "$MANDATE_BIN" ]] || die "MANDATE_BIN is not set and no build/*/src/cli/mandate exists; build the 'mandate' target first"
fi
[[ -x "$MANDATE_BIN" ]] || die "MANDATE_BIN=$MANDATE_BIN is not an executable"
export MANDATE_BIN

if (($# == 0)); then
  set -- *.test.js
fi
exec node --test --test-reporter=spec --test-timeout=180000 "$@"
