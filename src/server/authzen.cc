#include "server/authzen.h"

#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>

#include <boost/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#include "server/status_macros.h"

namespace mandate::server {

namespace json = boost::json;

namespace {

const JsonPointer kRoot;

// An optional object-valued field: absent or null gives nullptr.
absl::StatusOr<const json::object*> OptionalObject(const json::object& o, std::string_view key,
                                                   const JsonPointer& at) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || v->is_null()) return nullptr;
  return AsObject(*v, at.Key(key));
}

absl::StatusOr<AuthzenEntity> DecodeEntity(const json::value& v, const JsonPointer& at, bool id_required) {
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, at));
  AuthzenEntity e;
  MANDATE_ASSIGN_OR_RETURN(e.type, RequiredString(*o, "type", at));
  if (id_required) {
    MANDATE_ASSIGN_OR_RETURN(e.id, RequiredString(*o, "id", at));
  } else {
    // The searched-for entity: its id "can be omitted, and if present, is IGNORED" (1.0 §8, §9).
    const json::value* id = o->if_contains("id");
    if (id != nullptr && !id->is_null() && !id->is_string()) return at.Key("id").Error("expected a string");
  }
  MANDATE_ASSIGN_OR_RETURN(e.properties, OptionalObject(*o, "properties", at));
  return e;
}

absl::StatusOr<AuthzenAction> DecodeAction(const json::value& v, const JsonPointer& at) {
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, at));
  AuthzenAction a;
  MANDATE_ASSIGN_OR_RETURN(a.name, RequiredString(*o, "name", at));
  MANDATE_ASSIGN_OR_RETURN(a.properties, OptionalObject(*o, "properties", at));
  return a;
}

// Decodes whichever of subject/action/resource/context `o` has; a null field counts as absent.
absl::StatusOr<AuthzenTuple> DecodePresent(const json::object& o, const JsonPointer& at, bool subject_id,
                                           bool resource_id, bool want_action) {
  AuthzenTuple t;
  if (const json::value* v = o.if_contains("subject"); v != nullptr && !v->is_null()) {
    MANDATE_ASSIGN_OR_RETURN(t.subject, DecodeEntity(*v, at.Key("subject"), subject_id));
  }
  if (const json::value* v = o.if_contains("action"); want_action && v != nullptr && !v->is_null()) {
    MANDATE_ASSIGN_OR_RETURN(t.action, DecodeAction(*v, at.Key("action")));
  }
  if (const json::value* v = o.if_contains("resource"); v != nullptr && !v->is_null()) {
    MANDATE_ASSIGN_OR_RETURN(t.resource, DecodeEntity(*v, at.Key("resource"), resource_id));
  }
  MANDATE_ASSIGN_OR_RETURN(t.context, OptionalObject(o, "context", at));
  return t;
}

absl::Status RequireParts(const AuthzenTuple& t, const JsonPointer& at, bool want_action, absl::string_view hint) {
  if (!t.subject) return at.Key("subject").Error(absl::StrCat("required field is missing", hint));
  if (want_action && !t.action) return at.Key("action").Error(absl::StrCat("required field is missing", hint));
  if (!t.resource) return at.Key("resource").Error(absl::StrCat("required field is missing", hint));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AuthzenTuple> DecodeAuthzenTuple(const json::object& o, const JsonPointer& at,
                                                AuthzenRequestKind kind) {
  const bool want_action = kind != AuthzenRequestKind::kActionSearch;
  MANDATE_ASSIGN_OR_RETURN(AuthzenTuple t, DecodePresent(o, at, kind != AuthzenRequestKind::kSubjectSearch,
                                                         kind != AuthzenRequestKind::kResourceSearch, want_action));
  MANDATE_RETURN_IF_ERROR(RequireParts(t, at, want_action, ""));
  return t;
}

absl::StatusOr<AuthzenBatch> DecodeAuthzenBatch(const json::object& o) {
  AuthzenBatch batch;
  MANDATE_ASSIGN_OR_RETURN(const json::object* options, OptionalObject(o, "options", kRoot));
  if (options != nullptr) {
    MANDATE_ASSIGN_OR_RETURN(std::optional<std::string> semantic,
                             OptionalString(*options, "evaluations_semantic", kRoot.Key("options")));
    if (!semantic || *semantic == "execute_all") {
      batch.semantic = EvaluationsSemantic::kExecuteAll;
    } else if (*semantic == "deny_on_first_deny") {
      batch.semantic = EvaluationsSemantic::kDenyOnFirstDeny;
    } else if (*semantic == "permit_on_first_permit") {
      batch.semantic = EvaluationsSemantic::kPermitOnFirstPermit;
    } else {
      return kRoot.Key("options").Key("evaluations_semantic")
          .Error(absl::StrCat("\"", *semantic,
                              "\" is not an evaluations semantic; use execute_all, deny_on_first_deny or "
                              "permit_on_first_permit"));
    }
  }
  MANDATE_ASSIGN_OR_RETURN(AuthzenTuple defaults, DecodePresent(o, kRoot, true, true, true));
  MANDATE_ASSIGN_OR_RETURN(const json::array* items, OptionalArray(o, "evaluations", kRoot));
  if (items == nullptr || items->empty()) {
    // "If an evaluations array is NOT present", the request is a single evaluation (1.0 §7.1).
    MANDATE_RETURN_IF_ERROR(RequireParts(defaults, kRoot, true, ""));
    batch.items.push_back(std::move(defaults));
    return batch;
  }
  batch.has_evaluations = true;
  batch.items.reserve(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    const JsonPointer at = kRoot.Key("evaluations").Index(i);
    MANDATE_ASSIGN_OR_RETURN(const json::object* item, AsObject((*items)[i], at));
    MANDATE_ASSIGN_OR_RETURN(AuthzenTuple t, DecodePresent(*item, at, true, true, true));
    if (!t.subject) t.subject = defaults.subject;
    if (!t.action) t.action = defaults.action;
    if (!t.resource) t.resource = defaults.resource;
    if (t.context == nullptr) t.context = defaults.context;
    MANDATE_RETURN_IF_ERROR(RequireParts(t, at, true, " (neither this item nor the request's top level has it)"));
    batch.items.push_back(std::move(t));
  }
  return batch;
}

absl::StatusOr<AuthzenPage> DecodeAuthzenPage(const json::object& o, const JsonPointer& at) {
  AuthzenPage page;
  MANDATE_ASSIGN_OR_RETURN(const json::object* p, OptionalObject(o, "page", at));
  if (p == nullptr) return page;
  const JsonPointer page_at = at.Key("page");
  MANDATE_ASSIGN_OR_RETURN(page.token, OptionalString(*p, "token", page_at));
  if (!page.token) {
    MANDATE_ASSIGN_OR_RETURN(page.token, OptionalString(*p, "next_token", page_at));
  }
  if (page.token && page.token->empty()) page.token.reset();  // "" is the "no more pages" token
  if (const json::value* limit = p->if_contains("limit"); limit != nullptr && !limit->is_null()) {
    if (!limit->is_number()) return page_at.Key("limit").Error("expected a number");
    const double n = limit->to_number<double>();
    if (!(n >= 0)) return page_at.Key("limit").Error("must be a non-negative number");
    if (n >= 1 && n < static_cast<double>(kAuthzenMaxPageSize)) page.limit = static_cast<int64_t>(n);
  }
  return page;
}

absl::StatusOr<bool> DecodeAuthzenExplain(const json::object& o) {
  MANDATE_ASSIGN_OR_RETURN(const json::object* options, OptionalObject(o, "options", kRoot));
  if (options == nullptr) return false;
  const json::value* v = options->if_contains("explain");
  if (v == nullptr || v->is_null()) return false;
  if (!v->is_bool()) return kRoot.Key("options").Key("explain").Error("expected true or false");
  return v->get_bool();
}

namespace {

// The policy's declared type names by lower-case name, cached per thread for the last policy seen
// (a policy is immutable, so the cache is valid for as long as that policy is).
const std::multimap<std::string, std::string>& TypesByLowerName(const std::shared_ptr<const Policy>& policy) {
  thread_local std::weak_ptr<const Policy> cached_policy;
  thread_local std::multimap<std::string, std::string> cached;
  if (cached_policy.lock() != policy) {
    cached.clear();
    for (const auto& [name, meta] : policy->Metadata()) {
      if (name != "global") cached.emplace(absl::AsciiStrToLower(name), name);
    }
    cached_policy = policy;
  }
  return cached;
}

}  // namespace

absl::StatusOr<std::string> ResolveAuthzenType(const std::shared_ptr<const Policy>& policy,
                                               const AuthzenConfig& config, std::string_view wire_type) {
  const absl::string_view type(wire_type.data(), wire_type.size());
  const std::string lower = absl::AsciiStrToLower(type);
  for (const auto& [from, to] : config.types) {
    if (absl::AsciiStrToLower(from) == lower) return to;
  }
  const auto& types = TypesByLowerName(policy);
  auto [begin, end] = types.equal_range(lower);
  for (auto it = begin; it != end; ++it) {
    if (it->second == type) return it->second;
  }
  if (begin != end && std::next(begin) == end) return begin->second;
  if (begin == end) {
    return absl::NotFoundError(absl::StrCat("type \"", type,
                                            "\" matches no actor or resource type of the policy (nor any "
                                            "[authzen.types] mapping)"));
  }
  std::vector<std::string> names;
  for (auto it = begin; it != end; ++it) names.push_back(it->second);
  return absl::NotFoundError(absl::StrCat("type \"", type, "\" matches several types of the policy (",
                                          absl::StrJoin(names, ", "), "); map it in [authzen.types]"));
}

void AuthzenScalars(const json::value& v, std::vector<TypedValue>* out) {
  switch (v.kind()) {
    case json::kind::string:
      out->push_back(TypedValue{"String", std::string(v.get_string())});
      break;
    case json::kind::bool_:
      out->push_back(TypedValue{"Boolean", v.get_bool() ? "true" : "false"});
      break;
    case json::kind::int64:
      out->push_back(TypedValue{"Integer", std::to_string(v.get_int64())});
      break;
    case json::kind::uint64:
      if (v.get_uint64() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        out->push_back(TypedValue{"Integer", std::to_string(v.get_uint64())});
      } else {
        out->push_back(TypedValue{"String", json::serialize(v)});
      }
      break;
    case json::kind::double_: {
      const double d = v.get_double();
      // 2^63 is exactly representable; anything in [-2^63, 2^63) with no fraction is an Integer.
      if (std::trunc(d) == d && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
        out->push_back(TypedValue{"Integer", std::to_string(static_cast<int64_t>(d))});
      } else {
        // The shortest text that reads back as the same number ("2.5", "0.1", "1e+300").
        char buf[32];
        const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
        out->push_back(TypedValue{"String", ec == std::errc() ? std::string(buf, end) : json::serialize(v)});
      }
      break;
    }
    case json::kind::array:
      for (const json::value& e : v.get_array()) {
        if (!e.is_array() && !e.is_object()) AuthzenScalars(e, out);
      }
      break;
    case json::kind::null:
    case json::kind::object:
      break;
  }
}

namespace {

constexpr int kMaxPropertyDepth = 8;

// Appends predicate(prefix..., key, value) for each entry of `o`, flattening nested objects.
void AppendPropertyFacts(std::string_view predicate, const std::vector<TypedValue>& prefix, const json::object& o,
                         const std::string& key_prefix, int depth, std::vector<Fact>* out) {
  std::vector<TypedValue> values;
  for (const auto& [k, v] : o) {
    const std::string key = key_prefix.empty() ? std::string(k) : absl::StrCat(key_prefix, ".", std::string(k));
    if (v.is_object()) {
      if (depth < kMaxPropertyDepth) AppendPropertyFacts(predicate, prefix, v.get_object(), key, depth + 1, out);
      continue;
    }
    values.clear();
    AuthzenScalars(v, &values);
    for (TypedValue& value : values) {
      Fact f;
      f.predicate = std::string(predicate);
      f.args = prefix;
      f.args.push_back(TypedValue{"String", key});
      f.args.push_back(std::move(value));
      out->push_back(std::move(f));
    }
  }
}

}  // namespace

std::vector<Fact> AuthzenFacts(const AuthzenTuple& t, const std::optional<TypedValue>& subject,
                               const std::optional<TypedValue>& resource) {
  std::vector<Fact> out;
  if (subject && t.subject && t.subject->properties != nullptr) {
    AppendPropertyFacts(kSubjectProperty, {*subject}, *t.subject->properties, "", 1, &out);
  }
  if (resource && t.resource && t.resource->properties != nullptr) {
    AppendPropertyFacts(kResourceProperty, {*resource}, *t.resource->properties, "", 1, &out);
  }
  if (t.action && t.action->properties != nullptr) {
    AppendPropertyFacts(kActionProperty, {TypedValue{"String", t.action->name}}, *t.action->properties, "", 1, &out);
  }
  if (t.context != nullptr) AppendPropertyFacts(kContextFact, {}, *t.context, "", 1, &out);
  return out;
}

namespace {

json::object ExplainNodeJson(const ExplainNode& n) {
  json::object o{{"kind", n.kind}, {"text", n.text}, {"satisfied", n.satisfied}};
  if (!n.location.empty()) o["location"] = n.location;
  if (!n.failed.empty()) o["failed"] = n.failed;
  if (!n.children.empty()) {
    json::array children;
    children.reserve(n.children.size());
    for (const ExplainNode& c : n.children) children.emplace_back(ExplainNodeJson(c));
    o["children"] = std::move(children);
  }
  return o;
}

}  // namespace

json::value ExplanationJson(const Explanation& e) {
  json::array roots;
  roots.reserve(e.roots.size());
  for (const ExplainNode& n : e.roots) roots.emplace_back(ExplainNodeJson(n));
  return json::object{{"roots", std::move(roots)}, {"text", e.ToText()}};
}

}  // namespace mandate::server
