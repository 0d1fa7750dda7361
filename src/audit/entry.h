// What the server records in the audit log: one Entry per decision (each item of a batch counts),
// per administrative change and per fired alert, completed with the request's common fields and
// serialized as one JSON object (docs/audit.md lists the fields). Secrets never enter an Entry:
// the API key is recorded by its role only, and request headers are not recorded.
#ifndef MANDATE_AUDIT_ENTRY_H_
#define MANDATE_AUDIT_ENTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "mandate/mandate.h"

namespace mandate::audit {

struct Entry {
  std::string kind = "decision";   // decision | admin | alert | system
  std::string actor;               // "Type:id" (admin changes: "ApiKey:<role>" unless a handler knows better)
  std::vector<std::string> chain;  // delegation chain, from the agent to the principal it acts for
  bool agent = false;              // the actor is an agent
  std::string action;              // decisions: the action asked about; admin: policy.upload, facts.write, ...
  std::string resource;            // "Type:id"; for list/search decisions the resource type
  std::string decision;            // allow | deny | approval_required; admin: ok | error (set from the status)
  std::vector<std::string> reasons;
  boost::json::value context;  // e.g. the request's context facts; capped when serialized
  // The context already serialized (SerializeContext), used instead of `context`: the items of a
  // batch share their request's one copy instead of each copying and serializing it.
  std::shared_ptr<const std::string> context_json;
  boost::json::object detail;  // anything else worth keeping (results, counts, versions)
};

// A decision about one actor, action and resource.
Entry DecisionEntry(const TypedValue& actor, std::string action, std::string resource, bool allowed);

// The fields every record of one request shares.
struct RequestInfo {
  std::string request_id;
  std::string api;     // "POST /api/authorize"
  std::string client;  // peer address
  std::string role;    // of the API key: read | admin
  int status = 0;      // HTTP status of the response
  std::string error;   // the response's message when status >= 400
  int64_t latency_us = 0;
  int64_t policy_version = 0;
  uint64_t revision = 0;
};

// `context` serialized for Entry::context_json.
std::shared_ptr<const std::string> SerializeContext(const boost::json::object& context);

// Serializes the records of one request straight into JSON text (no intermediate JSON values): the
// request's shared fields are rendered once, in the constructor, and reused by every entry.
class RecordWriter {
 public:
  RecordWriter(const RequestInfo& info, size_t max_context_bytes);
  // The JSON body of the record. A context (or detail) larger than `max_context_bytes` serialized
  // is replaced by {"truncated":true,"bytes":N,"sha256":...}, so that it can still be matched
  // against a copy kept elsewhere.
  std::string Serialize(const Entry& e) const;

 private:
  std::string head_;                   // ,"request_id":..,"api":..
  std::string tail_;                   // ,"status":.. up to the closing brace
  std::string_view default_decision_;  // ok | error, from the status, for entries without a decision
  size_t max_context_bytes_;
};

// One record alone: RecordWriter(info, max_context_bytes).Serialize(e).
std::string Serialize(const Entry& e, const RequestInfo& info, size_t max_context_bytes);

// Appends `s` to `out` as a JSON string literal (quotes, backslashes and control characters escaped
// as boost::json::serialize escapes them).
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace mandate::audit

#endif  // MANDATE_AUDIT_ENTRY_H_
