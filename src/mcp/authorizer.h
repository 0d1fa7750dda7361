// The one place the gateway asks for decisions. Every enforcement point (list filtering, calls,
// reads, prompts) goes through an Authorizer, so every point applies the same rules: the
// delegation ceiling over the caller's chain, suspended agents, task grants, request context and
// (for uses, not for list filtering) rate limits, as POST /v1/check does.
#ifndef MANDATE_MCP_AUTHORIZER_H_
#define MANDATE_MCP_AUTHORIZER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "agents/agents.h"
#include "mandate/mandate.h"
#include "mcp/identity.h"

namespace mandate::mcp {

struct AuthzRequest {
  const Principal* principal = nullptr;
  std::string action;
  TypedValue resource;
  std::vector<std::pair<std::string, TypedValue>> context;  // becomes context(key, value)
  int64_t now_unix = 0;
  std::string arguments_digest;  // agents::ArgumentsDigest of the call's arguments; approvals bind to it
};

struct AuthzResult {
  bool allowed = false;
  // For a deny: reason codes and messages as /v1/check gives them (actor_denied, delegator_denied,
  // rate_limited, ...), which name the refused principal but not the policy's rules.
  std::vector<agents::Reason> reasons;
  std::optional<int64_t> retry_after_seconds;
  // A requires_approval rule matched (docs/approvals.md): `approval` is the pending approval the
  // agent's retry waits for. An allow that used an approval names it too.
  bool approval_required = false;
  std::optional<store::ApprovalRecord> approval;
};

class Authorizer {
 public:
  using SnapshotSource = std::function<std::shared_ptr<const Snapshot>()>;
  // `agents` must outlive the authorizer.
  Authorizer(SnapshotSource snapshot, agents::Agents* agents) : snapshot_(std::move(snapshot)), agents_(agents) {}

  // A use (tools/call, resources/read, prompts/get): the full /v1/check decision, counted against
  // the rate limits that match it, in two steps as agents::Agents has them. Evaluate() never
  // touches the store; when `*needs_store` comes back true, Finish() does (an approval is looked up
  // or requested): call it off the server's I/O threads. Thread-safe.
  agents::CheckResult Evaluate(const AuthzRequest& request, bool* needs_store) const;
  AuthzResult Finish(const AuthzRequest& request, agents::CheckResult evaluated) const;
  // Whether an entry is shown in a list: the same decision without counting against rate limits
  // (a list is not a use). Thread-safe.
  bool Visible(const AuthzRequest& request) const;

 private:
  agents::CheckRequest ToCheck(const AuthzRequest& request) const;

  SnapshotSource snapshot_;
  agents::Agents* agents_;
};

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_AUTHORIZER_H_
