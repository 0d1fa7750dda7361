#!/usr/bin/env bash
# Drives the customer-churn example over HTTP: starts `mandate serve` on policy.polar and
# facts.jsonl (private data directory, a free port), registers the agents, then asks POST /v1/check
# the scenario's questions and checks every answer. Exits non-zero if any answer differs.
# ctest runs it as examples.agents.walkthrough. Needs curl and jq.
# Usage: examples/agents/run.sh [MANDATE_BINARY]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mandate=$(realpath "${1:-$here/../../build/release/mandate}")
# The admin key is the operator's; the read key is the agent gateway's, which asks the questions.
source "$here/../lib/serve.sh"

failures=0
# expect DECISION CODE DESCRIPTION REQUEST: asks /v1/check with the gateway key (or the admin key
# when the request fixes "time") and compares the decision and the first reason code.
expect() {
  local want=$1 want_code=$2 what=$3 body=$4 key=gateway-key
  [[ $body == *'"time"'* ]] && key=admin-key
  local got code
  got=$(call POST /v1/check "$body" "$key")
  code=$(jq -r '.reasons[0].code // ""' <<<"$got")
  if [[ $(jq -r .decision <<<"$got") == "$want" && $code == "$want_code" ]]; then
    printf '  ok    %-5s %-18s %s\n' "$want" "$code" "$what"
  else
    printf '  FAIL  %s: expected %s %s, got %s\n' "$what" "$want" "$want_code" "$got"
    failures=$((failures + 1))
  fi
}
bot='{"type":"Agent","id":"churn-bot"}'
drafter='{"type":"Agent","id":"drafter"}'
alice='{"type":"User","id":"alice"}'
bob='{"type":"User","id":"bob"}'
acct() { echo "{\"type\":\"Account\",\"id\":\"$1\"}"; }
req() {  # req ACTOR CHAIN ACTION RESOURCE [EXTRA]
  echo "{\"actor\":$1,\"on_behalf_of\":[$2],\"action\":\"$3\",\"resource\":$4${5:-}}"
}

echo "Registering the agents (the owner becomes has_relation(Agent, \"owner\", User))"
call POST /v1/agents '{"id":"churn-bot","owner":{"type":"User","id":"alice"},"description":"churn review"}' >/dev/null
call POST /v1/agents '{"id":"drafter","description":"drafts emails for churn-bot; no owner of its own"}' >/dev/null

echo "Reading: only the owner's accounts, their usage, the playbook folders"
expect allow "" "churn-bot for alice reads Account:acme" "$(req "$bot" "$alice" read "$(acct acme)")"
expect deny actor_denied "churn-bot for alice reads Account:initech (bob's)" \
  "$(req "$bot" "$alice" read "$(acct initech)")"
expect deny actor_denied "churn-bot for bob reads Account:initech (its owner is alice)" \
  "$(req "$bot" "$bob" read "$(acct initech)")"
expect allow "" "churn-bot for alice reads Usage:acme-usage" \
  "$(req "$bot" "$alice" read '{"type":"Usage","id":"acme-usage"}')"
expect allow "" "churn-bot for alice reads Folder:playbooks/churn/emails (nested)" \
  "$(req "$bot" "$alice" read '{"type":"Folder","id":"playbooks/churn/emails"}')"
expect deny delegator_denied "churn-bot for bob reads the playbooks (bob may not)" \
  "$(req "$bot" "$bob" read '{"type":"Folder","id":"playbooks/churn"}')"

echo "Deleting: alice may, her agent may not"
expect deny actor_denied "churn-bot for alice deletes Account:acme" "$(req "$bot" "$alice" delete "$(acct acme)")"

echo "Emailing: weekdays 08:00-17:00 in alice's time zone (America/New_York); admin keys may fix the time"
at() { echo ",\"time\":\"$1\""; }
expect allow "" "Monday 09:30 in New York" "$(req "$bot" "$alice" email "$(acct acme)" "$(at 2026-11-30T09:30:00-05:00)")"
expect deny actor_denied "Monday 17:30 in New York" \
  "$(req "$bot" "$alice" email "$(acct acme)" "$(at 2026-11-30T17:30:00-05:00)")"
expect deny actor_denied "Saturday 10:00 in New York" \
  "$(req "$bot" "$alice" email "$(acct acme)" "$(at 2026-11-28T10:00:00-05:00)")"
expect allow "" "Monday after the DST change, 08:30 EDT (12:30 UTC)" \
  "$(req "$bot" "$alice" email "$(acct acme)" "$(at 2026-03-09T12:30:00Z)")"
expect deny actor_denied "the same Monday, 07:30 EDT (11:30 UTC)" \
  "$(req "$bot" "$alice" email "$(acct acme)" "$(at 2026-03-09T11:30:00Z)")"

echo "The sub-agent: drafter works for churn-bot for alice; it reads, it never emails"
expect allow "" "drafter for churn-bot for alice reads Account:acme" \
  "$(req "$drafter" "$bot,$alice" read "$(acct acme)")"
expect deny actor_denied "drafter for churn-bot for alice emails Account:acme" \
  "$(req "$drafter" "$bot,$alice" email "$(acct acme)" "$(at 2026-11-30T09:30:00-05:00)")"
expect deny delegator_denied "drafter for churn-bot for bob reads Account:acme" \
  "$(req "$drafter" "$bot,$bob" read "$(acct acme)")"

echo "Just-in-time access: a task grant, revoked when the task completes"
renewals='{"type":"Folder","id":"renewals"}'
expect deny actor_denied "churn-bot for alice reads Folder:renewals" "$(req "$bot" "$alice" read "$renewals")"
call POST /v1/grants "{\"facts\":[{\"predicate\":\"has_role\",\"args\":[$bot,{\"type\":\"String\",\"id\":\"reader\"},$renewals]}],\"task\":\"t-77\",\"ttl_seconds\":900}" >/dev/null
expect allow "" "... after POST /v1/grants for task t-77" "$(req "$bot" "$alice" read "$renewals")"
call POST /v1/tasks/t-77/complete >/dev/null
expect deny actor_denied "... after POST /v1/tasks/t-77/complete" "$(req "$bot" "$alice" read "$renewals")"

echo "Suspension: from the next request on"
call PATCH /v1/agents/churn-bot '{"status":"suspended"}' >/dev/null
expect deny agent_suspended "suspended churn-bot for alice reads Account:acme" "$(req "$bot" "$alice" read "$(acct acme)")"
call PATCH /v1/agents/churn-bot '{"status":"active"}' >/dev/null
expect allow "" "active again" "$(req "$bot" "$alice" read "$(acct acme)")"

echo "Rate limit: at most 50 emails an hour (two were sent above)"
body=$(req "$bot" "$alice" email "$(acct acme)" "$(at 2026-11-30T10:00:00-05:00)")
allowed=0
for _ in $(seq 60); do
  [[ $(call POST /v1/check "$body" | jq -r .decision) == allow ]] && allowed=$((allowed + 1))
done
if [[ $allowed == 48 ]]; then
  echo "  ok    48 more allowed, then rate_limited"
else
  echo "  FAIL  expected 48 more emails allowed, got $allowed"
  failures=$((failures + 1))
fi
expect deny rate_limited "the 51st email" "$body"

if ((failures)); then
  echo "$failures answer(s) differ"
  exit 1
fi
echo "all answers as expected"
