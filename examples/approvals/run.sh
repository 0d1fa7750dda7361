#!/usr/bin/env bash
# Drives the payments example over HTTP (docs/approvals.md): starts `mandate serve` on policy.polar
# and facts.jsonl (private data directory, a free port), then lets pay-bot ask to pay invoices for
# clara, and approvers decide: approval_required with one pending approval, who may approve, single
# use, binding to the arguments, a long poll woken by an approval, and a denial. Exits non-zero if
# any answer differs. ctest runs it as examples.approvals.walkthrough. Needs curl and jq.
# Usage: examples/approvals/run.sh [MANDATE_BINARY]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mandate=$(realpath "${1:-$here/../../build/release/mandate}")
# The agent's gateway asks with the read key; the approvals backend decides with the admin key.
extra_config='[server]
public_url = "https://mandate.example.com"
[agents]
approval_ttl_seconds = 900'
source "$here/../lib/serve.sh"

failures=0
status() {  # status PATH BODY: the HTTP status of an admin POST
  curl -sS -o /dev/null -w '%{http_code}' -X POST "$url$1" -H 'Authorization: Bearer admin-key' \
    -H 'Content-Type: application/json' --data "$2"
}
check() { call POST /v1/check "$1" gateway-key; }
ok() { printf '  ok    %s\n' "$1"; }
fail() {
  printf '  FAIL  %s\n' "$1"
  failures=$((failures + 1))
}
same() {  # same WHAT GOT WANT
  if [[ $2 == "$3" ]]; then ok "$1: $2"; else fail "$1: expected $3, got $2"; fi
}
pay() {  # pay INVOICE AMOUNT [EXTRA]
  echo "{\"actor\":{\"type\":\"Agent\",\"id\":\"pay-bot\"},\"on_behalf_of\":[{\"type\":\"User\",\"id\":\"clara\"}],\"action\":\"pay\",\"resource\":{\"type\":\"Invoice\",\"id\":\"$1\"},\"context\":{\"run\":\"monthly\"},\"arguments\":{\"invoice\":\"$1\",\"amount\":$2,\"iban\":\"DE89370400440532013000\"}${3:-}}"
}
by() { echo "{\"approver\":{\"type\":\"User\",\"id\":\"$1\"},\"note\":\"${2:-checked}\"}"; }

echo "pay-bot asks to pay inv-1 (500) for clara: a person must approve"
first=$(check "$(pay inv-1 500)")
id=$(jq -r .approval.id <<<"$first")
same "decision" "$(jq -r .decision <<<"$first")" approval_required
same "approval url" "$(jq -r .approval.url <<<"$first")" "https://mandate.example.com/ui/#/approvals/$id"
same "asking again returns the same approval" "$(check "$(pay inv-1 500)" | jq -r .approval.id)" "$id"
same "pending approvals of pay-bot" "$(call GET '/v1/approvals?status=pending&actor=Agent:pay-bot' | jq -r '.approvals | length')" 1

echo "Who may approve it"
same "pay-bot itself" "$(status "/v1/approvals/$id/approve" '{"approver":{"type":"Agent","id":"pay-bot"}}')" 403
same "clara, for whom pay-bot pays" "$(status "/v1/approvals/$id/approve" "$(by clara)")" 403
same "avi, a finance approver" "$(status "/v1/approvals/$id/approve" "$(by avi)")" 200
same "deciding it again" "$(status "/v1/approvals/$id/deny" "$(by lea)")" 409

echo "The approval covers that exact payment, once"
same "paying 5000 instead" "$(check "$(pay inv-1 5000)" | jq -r .decision)" approval_required
same "paying the approved 500" "$(check "$(pay inv-1 500)" | jq -r .decision)" allow
same "paying it a second time" "$(check "$(pay inv-1 500)" | jq -r .decision)" approval_required
same "reading needs no approval" "$(check '{"actor":{"type":"Agent","id":"pay-bot"},"on_behalf_of":[{"type":"User","id":"clara"}],"action":"read","resource":{"type":"Invoice","id":"inv-1"}}' | jq -r .decision)" allow

echo "inv-2 (25,000): pay-bot waits (wait_seconds) while a lead approves"
check "$(pay inv-2 25000 ',"wait_seconds":60')" >"$work/waited" &
waiter=$!
big=
for _ in $(seq 200); do
  big=$(call GET '/v1/approvals?status=pending' | jq -r '.approvals[] | select(.resource.id == "inv-2") | .id')
  [[ -n $big ]] && break
  sleep 0.05
done
same "avi may not approve more than 10,000" "$(status "/v1/approvals/$big/approve" "$(by avi)")" 403
same "lea, a lead" "$(status "/v1/approvals/$big/approve" "$(by lea 'call the supplier first')")" 200
wait "$waiter"
same "the waiting request" "$(jq -r .decision "$work/waited")" allow

echo "A denial answers the request it was for"
denied=$(check "$(pay inv-1 777)" | jq -r .approval.id)
same "lea denies" "$(status "/v1/approvals/$denied/deny" "$(by lea 'not in the budget')")" 200
again=$(check "$(pay inv-1 777)")
same "asking again" "$(jq -r '.decision + " " + .reasons[0].code' <<<"$again")" "deny approval_denied"

if ((failures)); then
  echo "$failures answer(s) differ"
  exit 1
fi
echo "all answers as expected"
