#include "audit/entry.h"

#include <boost/json.hpp>

#include "audit/format.h"

namespace mandate::audit {
namespace {

namespace json = boost::json;

json::value Capped(const json::value& v, size_t max_bytes) {
  std::string text = json::serialize(v);
  if (text.size() <= max_bytes) return v;
  return json::object{{"truncated", true}, {"bytes", text.size()}, {"sha256", HexHash(Sha256(text))}};
}

}  // namespace

Entry DecisionEntry(const TypedValue& actor, std::string action, std::string resource, bool allowed) {
  Entry e;
  e.actor = ToString(actor);
  e.agent = actor.type == "Agent";
  e.action = std::move(action);
  e.resource = std::move(resource);
  e.decision = allowed ? "allow" : "deny";
  return e;
}

std::string Serialize(const Entry& e, const RequestInfo& info, size_t max_context_bytes) {
  json::object o;
  o.reserve(20);
  o["kind"] = e.kind;
  if (!info.request_id.empty()) o["request_id"] = info.request_id;
  if (!info.api.empty()) o["api"] = info.api;
  if (!e.actor.empty()) o["actor"] = e.actor;
  if (e.agent) o["agent"] = true;
  if (!e.chain.empty()) {
    json::array chain;
    for (const std::string& c : e.chain) chain.emplace_back(c);
    o["chain"] = std::move(chain);
  }
  if (!e.action.empty()) o["action"] = e.action;
  if (!e.resource.empty()) o["resource"] = e.resource;
  std::string decision = e.decision;
  if (decision.empty() && info.status != 0) decision = info.status < 400 ? "ok" : "error";
  if (!decision.empty()) o["decision"] = decision;
  if (!e.reasons.empty()) {
    json::array reasons;
    for (const std::string& r : e.reasons) reasons.emplace_back(r);
    o["reasons"] = std::move(reasons);
  }
  if (!e.context.is_null()) o["context"] = Capped(e.context, max_context_bytes);
  if (!e.detail.empty()) o["detail"] = Capped(e.detail, max_context_bytes);
  if (info.status != 0) o["status"] = info.status;
  if (!info.error.empty()) o["error"] = info.error.substr(0, 1024);
  if (info.policy_version != 0) o["policy_version"] = info.policy_version;
  if (info.revision != 0) o["revision"] = info.revision;
  if (info.latency_us != 0) o["latency_us"] = info.latency_us;
  if (!info.client.empty()) o["client"] = info.client;
  if (!info.role.empty()) o["key_role"] = info.role;
  return json::serialize(o);
}

}  // namespace mandate::audit
