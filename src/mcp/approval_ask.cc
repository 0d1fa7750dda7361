#include "mcp/approval_ask.h"

#include <boost/json.hpp>

namespace mandate::mcp {

namespace json = boost::json;

namespace {
constexpr size_t kMaxNoteBytes = 4096;  // as POST /v1/approvals/{id}/approve allows

std::string StringMember(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}
}  // namespace

json::object ApprovalElicitationParams(std::string message) {
  json::object decision{{"type", "string"},
                        {"title", "Decision"},
                        {"enum", json::array{"approve", "deny"}},
                        {"enumNames", json::array{"Approve", "Deny"}}};
  json::object note{{"type", "string"},
                    {"title", "Note"},
                    {"description", "Optional; recorded with the decision"},
                    {"maxLength", kMaxNoteBytes}};
  json::object schema{{"type", "object"},
                      {"properties", json::object{{"decision", std::move(decision)}, {"note", std::move(note)}}},
                      {"required", json::array{"decision"}}};
  return json::object{{"message", std::move(message)}, {"requestedSchema", std::move(schema)}};
}

ApprovalAnswer ReadApprovalAnswer(const json::object& response) {
  ApprovalAnswer a;
  const json::value* r = response.if_contains("result");
  if (r == nullptr || !r->is_object()) return a;
  a.action = StringMember(r->as_object(), "action");
  const json::value* c = r->as_object().if_contains("content");
  if (c == nullptr || !c->is_object()) return a;
  a.note = StringMember(c->as_object(), "note").substr(0, kMaxNoteBytes);
  if (a.action != "accept") return a;
  const std::string decision = StringMember(c->as_object(), "decision");
  if (decision == "approve") a.kind = ApprovalAnswer::Kind::kApprove;
  if (decision == "deny") a.kind = ApprovalAnswer::Kind::kDeny;
  return a;
}

}  // namespace mandate::mcp
