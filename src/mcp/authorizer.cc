#include "mcp/authorizer.h"

namespace mandate::mcp {

agents::CheckRequest Authorizer::ToCheck(const AuthzRequest& request) const {
  agents::CheckRequest c;
  c.actor = request.principal->actor;
  c.on_behalf_of = request.principal->on_behalf_of;
  c.action = request.action;
  c.resource = request.resource;
  c.context = request.context;
  c.now_unix = request.now_unix;
  return c;
}

AuthzResult Authorizer::Check(const AuthzRequest& request) const {
  AuthzResult result;
  std::shared_ptr<const Snapshot> snap = snapshot_();
  agents::CheckResult r = agents_->Check(*snap, ToCheck(request));
  result.allowed = r.allowed;
  result.reasons = std::move(r.reasons);
  result.retry_after_seconds = r.retry_after_seconds;
  return result;
}

bool Authorizer::Visible(const AuthzRequest& request) const {
  const Principal& p = *request.principal;
  std::vector<TypedValue> principals{p.actor};
  principals.insert(principals.end(), p.on_behalf_of.begin(), p.on_behalf_of.end());
  if (static_cast<int>(p.on_behalf_of.size()) > agents_->config().max_chain_length) return false;
  for (const TypedValue& who : principals) {
    if (who.type != agents_->config().actor_type) continue;
    std::optional<store::AgentRecord> agent = agents_->GetAgent(who.id);
    if (agent && agent->status == "suspended") return false;
  }
  std::shared_ptr<const Snapshot> snap = snapshot_();
  const agents::CheckRequest c = ToCheck(request);
  QueryOptions options;
  options.context_facts = agents_->RequestFacts(c);
  options.now_unix = request.now_unix;
  for (const TypedValue& who : principals) {
    if (!snap->Check(who, request.action, request.resource, options).allowed) return false;
  }
  return true;
}

}  // namespace mandate::mcp
