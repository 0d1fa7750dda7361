// OpenID AuthZEN 1.0 (the Authorization API) on top of the Polar engine: decoding and validation of
// the request bodies, and the mapping of AuthZEN subjects, actions, resources and context onto Polar
// instances, action strings and request-scoped facts. The HTTP handlers are in authzen_handlers.cc;
// docs/authzen.md is the contract users read (type matching, fact names, value conversion).
//
// Everything here is a pure function of its arguments (plus a per-thread cache of the policy's type
// names), so it is unit-tested without a server.
#ifndef MANDATE_SERVER_AUTHZEN_H_
#define MANDATE_SERVER_AUTHZEN_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "absl/status/statusor.h"

#include "mandate/mandate.h"
#include "server/json_decode.h"

namespace mandate::server {

// The [authzen] section of mandate.toml.
struct AuthzenConfig {
  // AuthZEN type -> Polar type, e.g. {"identity": "User"}. Keys are compared case-insensitively and
  // take precedence over the policy's own type names.
  std::map<std::string, std::string> types;
  // The `policy_decision_point` of /.well-known/authzen-configuration, e.g. "https://pdp.example.com"
  // (the URL gateways use). Empty: "http://" + the request's Host header.
  std::string policy_decision_point;
};

// Names of the request-scoped facts an AuthZEN request becomes (part of the contract).
inline constexpr std::string_view kSubjectProperty = "subject_property";  // (subject, key, value)
inline constexpr std::string_view kResourceProperty = "resource_property";  // (resource, key, value)
inline constexpr std::string_view kActionProperty = "action_property";  // (action name, key, value)
inline constexpr std::string_view kContextFact = "context";  // (key, value), the DESIGN §4 built-in

// Search results per page when the request gives no page.limit (or 0), and the largest page served.
inline constexpr int64_t kAuthzenMaxPageSize = 1000;

// A subject or resource as the request names it. `properties` points into the parsed request body,
// which must outlive this value.
struct AuthzenEntity {
  std::string type;
  std::optional<std::string> id;  // absent only in the entity a search looks for
  const boost::json::object* properties = nullptr;
};

struct AuthzenAction {
  std::string name;
  const boost::json::object* properties = nullptr;
};

// The 4-tuple of one evaluation (or the fixed parts of a search).
struct AuthzenTuple {
  std::optional<AuthzenEntity> subject;
  std::optional<AuthzenAction> action;
  std::optional<AuthzenEntity> resource;
  const boost::json::object* context = nullptr;
};

// What a request must carry, per endpoint (AuthZEN 1.0 §6–§9).
enum class AuthzenRequestKind {
  kEvaluation,      // subject, action, resource (each with its id)
  kSubjectSearch,   // subject.type (id ignored), action, resource
  kResourceSearch,  // subject, action, resource.type (id ignored)
  kActionSearch,    // subject, resource; no action
};

// Decodes and validates the 4-tuple of a request object at `at` against the 1.0 request schema: an
// entity is an object with string `type` and `id` (id optional where the kind says so), an action an
// object with a string `name`, `properties` and `context` objects. Unknown fields are ignored. Errors
// are InvalidArgument naming the JSON pointer of the problem ("... at /subject: required field is
// missing").
absl::StatusOr<AuthzenTuple> DecodeAuthzenTuple(const boost::json::object& o, const JsonPointer& at,
                                                AuthzenRequestKind kind);

enum class EvaluationsSemantic { kExecuteAll, kDenyOnFirstDeny, kPermitOnFirstPermit };

// POST /access/v1/evaluations after defaults are applied: each item is the top-level tuple with the
// item's own fields taking precedence (a field is replaced whole, never merged).
struct AuthzenBatch {
  bool has_evaluations = false;  // false: a single evaluation, answered like /access/v1/evaluation
  std::vector<AuthzenTuple> items;
  EvaluationsSemantic semantic = EvaluationsSemantic::kExecuteAll;
};
absl::StatusOr<AuthzenBatch> DecodeAuthzenBatch(const boost::json::object& o);

// The `page` of a search request: `token` (also accepted as `next_token`, as drafts spelled it) and
// `limit` (a non-negative number; 0 or absent = kAuthzenMaxPageSize, larger values are capped).
struct AuthzenPage {
  std::optional<std::string> token;
  int64_t limit = kAuthzenMaxPageSize;
};
absl::StatusOr<AuthzenPage> DecodeAuthzenPage(const boost::json::object& o, const JsonPointer& at);

// `options.explain` of a request (a Mandate extension; unknown to other PDPs, so harmless to send).
absl::StatusOr<bool> DecodeAuthzenExplain(const boost::json::object& o);

// The Polar type an AuthZEN type names: the configured mapping first (keys case-insensitive), then
// the policy's declared actor and resource types, exact match first, then the one type equal to it
// ignoring case. NotFound (with a message for the decision's context) when none or several match.
absl::StatusOr<std::string> ResolveAuthzenType(const std::shared_ptr<const Policy>& policy,
                                               const AuthzenConfig& config, std::string_view type);

// Converts one JSON value of a property or the context to Polar values, appended to `out`: a string
// is a String, true/false a Boolean, an integral number an Integer (other numbers become the String
// of their JSON text), an array contributes each scalar element, null nothing. Objects are handled
// by AuthzenFacts (their keys are flattened), not here.
void AuthzenScalars(const boost::json::value& v, std::vector<TypedValue>* out);

// The request-scoped facts of a tuple whose subject and resource map to `subject` and `resource`
// (nullopt when the request names no instance, as in searches):
//   subject_property(subject, key, value)   for each subject.properties entry
//   resource_property(resource, key, value) for each resource.properties entry
//   action_property(action, key, value)     for each action.properties entry
//   context(key, value)                     for each context entry
// An array value gives one fact per element; a nested object is flattened with dotted keys
// ("library_record.isbn"), up to 8 levels.
std::vector<Fact> AuthzenFacts(const AuthzenTuple& t, const std::optional<TypedValue>& subject,
                               const std::optional<TypedValue>& resource);

// An explanation as JSON: {"kind","text","location"?,"satisfied","failed"?,"children"?}.
boost::json::value ExplanationJson(const Explanation& e);

}  // namespace mandate::server

#endif  // MANDATE_SERVER_AUTHZEN_H_
