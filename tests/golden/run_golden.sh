#!/usr/bin/env bash
# Driver for the golden tests registered by golden.cmake. One invocation checks one case:
#
#   run_golden.sh test     MANDATE POLICY.polar
#       `mandate test POLICY` must exit 0 and end with "N passed, 0 failed" (N > 0).
#   run_golden.sh validate MANDATE CASE.polar
#       `mandate validate CASE` must exit with the status CASE.expected asks for (default 1) and
#       print every line CASE.expected lists: for each, one output line must contain its fragments
#       (separated by " ... ") in order, e.g. `x.polar:8:13 ... unknown relation "prent"`.
#       `#` lines are comments; `@exit N` sets the expected status.
#
# On failure it prints what it ran, what it expected and the full output, then exits 1.
set -u

usage() {
  echo "usage: run_golden.sh test|validate MANDATE FILE" >&2
  exit 2
}
[ $# -eq 3 ] || usage
mode=$1 mandate=$2 file=$3
[ -x "$mandate" ] || { echo "run_golden.sh: $mandate is not an executable" >&2; exit 2; }
[ -f "$file" ] || { echo "run_golden.sh: no such file: $file" >&2; exit 2; }

out=$(mktemp)
trap 'rm -f "$out"' EXIT

fail() {
  echo "FAIL: $*"
  echo "---- output of: ${cmd[*]} (exit $status)"
  cat "$out"
  exit 1
}

case "$mode" in
  test)
    cmd=("$mandate" test "$file")
    "${cmd[@]}" >"$out" 2>&1
    status=$?
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    [ -n "$summary" ] || fail "no closing 'N passed, M failed' line"
    [ "$status" -eq 0 ] || fail "expected exit 0"
    case "$summary" in
      "0 passed, "*) fail "no assertion ran" ;;
      *", 0 failed") ;;
      *) fail "expected 0 failed, got: $summary" ;;
    esac
    echo "ok: $summary"
    ;;
  validate)
    expected="${file%.polar}.expected"
    [ -f "$expected" ] || { echo "run_golden.sh: missing $expected" >&2; exit 2; }
    want_status=1
    exit_line=$(grep -E '^@exit [0-9]+$' "$expected" | tail -n 1)
    [ -n "$exit_line" ] && want_status=${exit_line#@exit }
    cmd=("$mandate" validate "$file")
    "${cmd[@]}" >"$out" 2>&1
    status=$?
    [ "$status" -eq "$want_status" ] || fail "expected exit $want_status"
    missing=0
    while IFS= read -r line || [ -n "$line" ]; do
      case "$line" in ''|'#'*|'@exit '*) continue ;; esac
      # One output line must contain the fragments (separated by " ... ") in this order.
      if ! awk -v want="$line" '
          BEGIN { n = split(want, parts, / \.\.\. /) }
          { rest = $0
            for (i = 1; i <= n; i++) {
              at = index(rest, parts[i]); if (!at) next
              rest = substr(rest, at + length(parts[i]))
            }
            found = 1; exit }
          END { exit !found }' "$out"; then
        echo "missing from the output: $line"
        missing=1
      fi
    done <"$expected"
    [ "$missing" -eq 0 ] || fail "expected lines missing (listed above)"
    echo "ok: exit $status, every expected line printed"
    ;;
  *) usage ;;
esac
