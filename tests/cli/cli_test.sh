#!/usr/bin/env bash
# CLI tests: runs the built `mandate` on the small policies and facts in tests/cli/data and checks the
# exit status and the exact stdout. Where the text comes from the engine's diagnostics (errors, explain
# trees) lines are matched by pattern instead, so that rewording a message does not break these tests.
# Usage: cli_test.sh MANDATE_BINARY GROUP   (GROUP: test validate check list actions query usage)
set -uo pipefail
mandate=$(realpath "$1")
group=$2
cd "$(dirname "$0")/data"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
problems=()

# Runs mandate with ARGS, leaving stdout in $tmp/out, stderr in $tmp/err and the status in $status.
run() {
  "$mandate" "$@" >"$tmp/out" 2>"$tmp/err"
  status=$?
}

# Records the case named by ARGS as passed or failed with the problems collected since run().
report() {
  if ((${#problems[@]} == 0)); then
    passed=$((passed + 1))
    printf 'ok    mandate %s\n' "$*"
  else
    failed=$((failed + 1))
    printf 'FAIL  mandate %s\n' "$*"
    printf '      %s\n' "${problems[@]}"
    echo "      --- stdout"
    sed 's/^/      | /' "$tmp/out"
    echo "      --- stderr"
    sed 's/^/      | /' "$tmp/err"
  fi
  problems=()
}

check_status() {
  [[ $status == "$1" ]] || problems+=("exit status $status, expected $1")
}

# expect STATUS STDOUT ARGS...: the exit status and the whole of stdout must be exactly these.
expect() {
  local want_status=$1 want_out=$2
  shift 2
  run "$@"
  check_status "$want_status"
  if [[ $(cat "$tmp/out") != "$want_out" ]]; then
    problems+=("stdout differs (- expected, + actual):")
    while IFS= read -r line; do problems+=("$line"); done < <(diff -u <(printf '%s\n' "$want_out") "$tmp/out" | tail -n +3)
  fi
  report "$@"
}

# expect_lines STATUS STREAM PATTERN... -- ARGS...: the exit status must match and every extended
# regular expression must match some line of STREAM (out or err).
expect_lines() {
  local want_status=$1 stream=$2
  shift 2
  local patterns=()
  while [[ $1 != -- ]]; do
    patterns+=("$1")
    shift
  done
  shift
  run "$@"
  check_status "$want_status"
  for p in "${patterns[@]}"; do
    grep -Eq -- "$p" "$tmp/$stream" || problems+=("no line of std$stream matches: $p")
  done
  report "$@"
}

group_test() {
  expect 0 "PASS members read their org's documents (2/2)
PASS admins edit everything (1/1)
3 passed, 0 failed" test rbac.polar
  expect_lines 1 out '^PASS viewers read \(1/1\)$' '^FAIL viewers edit \(1/2\)$' \
    '^  failing\.polar:22: .*allow\(User\{"alice"\}, "edit", Doc\{"plan"\}\).* — .+' '^2 passed, 1 failed$' \
    -- test failing.polar
  expect_lines 2 err '^syntax_error\.polar:4:[0-9]+: error: .+' '^error: the policy has errors; no tests were run$' \
    -- test syntax_error.polar
  expect_lines 2 err 'nope\.polar' -- test nope.polar
}

group_validate() {
  expect 0 "ok: 1 file, 0 errors, 0 warnings" validate rbac.polar
  expect_lines 1 out '^syntax_error\.polar:4:[0-9]+: error: .+' '^1 file, [1-9][0-9]* errors?, [0-9]+ warnings?$' \
    -- validate syntax_error.polar
  expect_lines 1 out '^invalid\.polar:6:[0-9]+: error: .*editor' '^invalid\.polar:7:[0-9]+: error: .*folder' \
    '^1 file, [2-9] errors, [0-9]+ warnings?$' -- validate invalid.polar
  expect_lines 0 out '^warning\.polar:9:[0-9]+: warning: .*never_used' '^ok: 1 file, 0 errors, 1 warning$' \
    -- validate warning.polar
  expect_lines 2 err 'nope\.polar' -- validate nope.polar
}

group_check() {
  local data=(-p rbac.polar -f facts.jsonl)
  expect 0 "allow" check "${data[@]}" User:alice read Doc:plan
  expect 1 "deny" check "${data[@]}" User:alice edit Doc:plan
  expect 0 "allow" check "${data[@]}" User:bob edit Doc:plan
  expect 1 "deny" check "${data[@]}" User:alice read Doc:secret
  expect 0 "allow" check "${data[@]}" User:root edit Doc:anything
  # Several facts files, long options, options after the positional arguments.
  expect 0 "allow" check User:carol read Doc:secret --policy rbac.polar --facts facts.jsonl --facts facts.polar
  # Context facts are seen by this request only.
  expect 1 "deny" check "${data[@]}" User:dave read Doc:plan
  expect 0 "allow" check "${data[@]}" User:dave read Doc:plan --context-fact 'has_role(User{"dave"}, "member", Org{"acme"})'
  expect 0 "allow" check "${data[@]}" User:dave read Doc:plan -c 'has_role(User{"dave"}, "owner", Org{"acme"});'
  # --now sets @current_unix_time.
  local grant=(-p expiring.polar -c 'grant_until(User{"ann"}, Doc{"d"}, 1000)')
  expect 0 "allow" check "${grant[@]}" --now 999 User:ann read Doc:d
  expect 1 "deny" check "${grant[@]}" --now 1000 User:ann read Doc:d
  # --explain adds the proof (or the closest rules) after the decision.
  expect_lines 0 out '^allow$' 'has_role' -- check "${data[@]}" User:alice read Doc:plan --explain
  expect_lines 1 out '^deny$' '[a-z]' 'edit' -- check "${data[@]}" User:alice edit Doc:plan --explain
  # A step limit fails closed, with the reason.
  expect_lines 1 out '^deny$' '^  reason: .*limit' -- check "${data[@]}" --max-steps 1 User:alice read Doc:plan
  # Errors: exit 2 with a message saying what is wrong.
  expect_lines 2 err "^error: ACTOR 'alice': expected Type:id, e\.g\. User:alice$" -- check "${data[@]}" alice read Doc:plan
  expect_lines 2 err "^error: RESOURCE 'plan': expected Type:id" -- check "${data[@]}" User:alice read plan
  expect_lines 2 err '^error: cannot read nope\.polar: No such file or directory$' -- check -p nope.polar User:a read Doc:b
  expect_lines 2 err 'nope\.jsonl' -- check -p rbac.polar -f nope.jsonl User:a read Doc:b
  expect_lines 2 err '^syntax_error\.polar:4:[0-9]+: error: ' '^error: the policy has errors' \
    -- check -p syntax_error.polar User:a read Doc:b
  expect_lines 2 err '^error: .*bad_json\.jsonl:2' -- check -p rbac.polar -f bad_json.jsonl User:a read Doc:b
  expect_lines 2 err '^error: unknown_predicate\.jsonl:1: .*has_colour' \
    -- check -p rbac.polar -f unknown_predicate.jsonl User:a read Doc:b
  expect_lines 2 err '^error: .*--context-fact' -- check -p rbac.polar User:a read Doc:b -c 'has_role(User{"a"}'
  expect_lines 2 err '^error: --context-fact .*has_colour' -- check -p rbac.polar User:a read Doc:b -c 'has_colour(Doc{"b"}, "red")'
  expect_lines 2 err '.' -- check -p rbac.polar User:alice read
  expect_lines 2 err '.' -- check User:alice read Doc:plan
}

group_list() {
  local data=(-p rbac.polar -f facts.jsonl)
  expect 0 "memo
plan" list "${data[@]}" User:alice read Doc
  expect 0 "memo
plan" list "${data[@]}" User:bob edit Doc
  expect 0 "" list "${data[@]}" User:alice edit Doc
  expect 0 "acme" list "${data[@]}" User:alice read Org
  expect 0 "secret" list "${data[@]}" -f facts.polar User:carol read Doc
  expect_lines 0 out '^\*$' -- list "${data[@]}" User:root read Doc
  expect_lines 2 err "^error: ACTOR 'alice'" -- list "${data[@]}" alice read Doc
}

group_actions() {
  local data=(-p rbac.polar -f facts.jsonl)
  expect 0 "edit
read" actions "${data[@]}" User:bob Doc:plan
  expect 0 "read" actions "${data[@]}" User:alice Doc:plan
  expect 0 "invite
read" actions "${data[@]}" User:bob Org:acme
  expect 0 "" actions "${data[@]}" User:nobody Doc:plan
  expect 0 "edit
read" actions "${data[@]}" User:root Doc:unknown
  expect_lines 2 err "^error: RESOURCE 'plan'" -- actions "${data[@]}" User:alice plan
}

group_query() {
  local data=(-p rbac.polar -f facts.jsonl)
  # has_role is also derived by the policy: an owner is a member too.
  expect 0 "user = User:alice  role = member
user = User:bob  role = member
user = User:bob  role = owner" query "${data[@]}" 'has_role(user: User, role: String, Org:acme)'
  expect 0 '{"user":{"type":"User","id":"alice"},"role":{"type":"String","id":"member"}}
{"user":{"type":"User","id":"bob"},"role":{"type":"String","id":"member"}}
{"user":{"type":"User","id":"bob"},"role":{"type":"String","id":"owner"}}' \
    query "${data[@]}" --format json 'has_role(user: User, role: String, Org:acme)'
  expect 0 "action = read" query "${data[@]}" 'allow(User:alice, action: String, Doc:plan)'
  expect 0 "doc = Doc:memo  org = Org:acme
doc = Doc:plan  org = Org:acme" query "${data[@]}" 'has_relation(doc: Doc, "org", org: Org) and has_role(User:alice, "member", org)'
  expect 0 "true" query "${data[@]}" 'allow(User:alice, "read", Doc:plan)'
  expect 1 "false" query "${data[@]}" 'allow(User:alice, "edit", Doc:plan)'
  expect 0 "doc = *" query "${data[@]}" 'allow(User:root, "read", doc: Doc)'
  expect 0 '{"doc":"*"}' query "${data[@]}" --format json 'allow(User:root, "read", doc: Doc)'
  expect 1 "" query "${data[@]}" 'allow(User:nobody, "read", doc: Doc)'
  expect_lines 2 err '^error: ' -- query "${data[@]}" 'allow(User:alice'
  expect_lines 2 err 'xml' -- query "${data[@]}" --format xml 'allow(User:alice, "read", Doc:plan)'
}

group_usage() {
  expect_lines 0 out '^mandate [0-9]+\.[0-9]+\.[0-9]+$' -- --version
  expect_lines 0 out '^ +test ' '^ +validate ' '^ +check ' '^ +list ' '^ +actions ' '^ +query ' -- --help
  expect_lines 0 out '--policy' '--facts' '--context-fact' '--explain' '--now' 'Exit status: 0 allow' -- check --help
  expect_lines 0 out '--format' -- query --help
  expect_lines 2 err 'subcommand' --
  expect_lines 2 err "^error: unknown command 'frobnicate'; commands: test, validate, check" -- frobnicate
}

if ! declare -F "group_$group" >/dev/null; then
  echo "cli_test.sh: unknown group '$group'" >&2
  exit 2
fi
"group_$group"
echo "$passed passed, $failed failed"
((failed == 0))
