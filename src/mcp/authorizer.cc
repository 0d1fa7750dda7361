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
  c.arguments_digest = request.arguments_digest;
  return c;
}

agents::CheckResult Authorizer::Evaluate(const AuthzRequest& request, bool* needs_store) const {
  std::shared_ptr<const Snapshot> snap = snapshot_();
  agents::CheckResult r = agents_->Evaluate(*snap, ToCheck(request));
  *needs_store = r.approval_step.has_value();
  return r;
}

AuthzResult Authorizer::Finish(const AuthzRequest& request, agents::CheckResult r) const {
  if (r.approval_step) agents_->FinishApproval(ToCheck(request), &r);
  AuthzResult result;
  result.allowed = r.allowed;
  result.reasons = std::move(r.reasons);
  result.retry_after_seconds = r.retry_after_seconds;
  result.approval_required = r.approval_required;
  result.approval = std::move(r.approval);
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
  options.prepared_context = snap->PrepareContext(options.context_facts);  // one per principal below
  options.now_unix = request.now_unix;
  for (const TypedValue& who : principals) {
    if (!snap->Check(who, request.action, request.resource, options).allowed) return false;
  }
  return true;
}

}  // namespace mandate::mcp
