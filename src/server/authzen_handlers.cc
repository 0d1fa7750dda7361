// Handlers of the OpenID AuthZEN 1.0 endpoints (/access/v1/*, /.well-known/authzen-configuration).
// Requests are decoded and mapped by authzen.h; every decision comes from the same snapshot, engine
// and keys as the Oso-compatible API. docs/authzen.md describes the contract.
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <boost/beast/http/field.hpp>
#include <boost/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "server/api.h"
#include "server/authzen.h"
#include "server/status_macros.h"

namespace mandate::server {

namespace json = boost::json;

namespace {

const JsonPointer kRoot;

// Stack space for the DOM of an evaluation request's body: a single evaluation needs well under 4 KB.
constexpr size_t kBodyBuffer = 4096;

// The grants in effect now (docs/agents.md): AuthZEN decisions see them like /v1/check and /api/* do.
std::vector<Fact> GrantedNow(Service& service) {
  return service.agents().ActiveGrantFacts(absl::ToUnixSeconds(absl::Now()));
}

void AppendGrants(Service& service, std::vector<Fact>* facts) {
  std::vector<Fact> granted = GrantedNow(service);
  facts->insert(facts->end(), std::make_move_iterator(granted.begin()), std::make_move_iterator(granted.end()));
}

json::object Denied(std::string_view id, std::string reason) {
  return json::object{
      {"decision", false},
      {"context", json::object{{"id", id}, {"reason_admin", json::object{{"en", std::move(reason)}}}}}};
}

// `?explain` (any value but "false" or "0") or `options.explain: true` in the body.
absl::StatusOr<bool> WantsExplain(const Call& c, const json::object& body) {
  if (std::optional<std::string> p = c.Param("explain"); p && *p != "false" && *p != "0") return true;
  return DecodeAuthzenExplain(body);
}

// ResolveAuthzenType for the items of one request, which name the same few types over and over:
// the answer for the last type seen is kept.
class TypeMemo {
 public:
  const absl::StatusOr<std::string>& Resolve(const Snapshot& snap, const AuthzenConfig& config,
                                             const std::string& wire) {
    if (!valid_ || wire != wire_) {
      wire_ = wire;
      type_ = ResolveAuthzenType(snap.policy(), config, wire);
      valid_ = true;
    }
    return type_;
  }

 private:
  bool valid_ = false;
  std::string wire_;
  absl::StatusOr<std::string> type_;
};

// The answer to one evaluation: {"decision": allowed}, unless `full` holds more (the reason of a
// deny that came from a failure, or an explanation).
struct Evaluation {
  bool allowed = false;
  std::optional<json::object> full;

  json::object Object() const { return full ? *full : json::object{{"decision", allowed}}; }
  // Appends the answer as JSON text.
  void AppendTo(std::string* out) const {
    if (full) {
      out->append(json::serialize(*full));
    } else {
      out->append(allowed ? "{\"decision\":true}" : "{\"decision\":false}");
    }
  }
};

// One evaluation. Fails closed: a type that maps to nothing is a deny with the reason in the
// context, not an error.
Evaluation Decide(const Snapshot& snap, const AuthzenConfig& config, const AuthzenTuple& t, bool explain,
                  const std::vector<Fact>& granted, TypeMemo& subject_types, TypeMemo& resource_types) {
  const absl::StatusOr<std::string>& subject_type = subject_types.Resolve(snap, config, t.subject->type);
  const absl::StatusOr<std::string>& resource_type = resource_types.Resolve(snap, config, t.resource->type);
  if (!subject_type.ok() || !resource_type.ok()) {
    return {false, Denied("unknown_type", absl::StrCat(subject_type.ok() ? "resource " : "subject ",
                                                       (subject_type.ok() ? resource_type : subject_type)
                                                           .status()
                                                           .message()))};
  }
  const TypedValue subject{*subject_type, *t.subject->id};
  const TypedValue resource{*resource_type, *t.resource->id};
  QueryOptions options;
  options.context_facts = AuthzenFacts(t, subject, resource);
  options.context_facts.insert(options.context_facts.end(), granted.begin(), granted.end());
  options.explain = explain;
  const Decision d = snap.Check(subject, t.action->name, resource, options);
  // A plain allow or deny is {"decision": b} unless the caller asks for the why: the interop
  // runners compare /evaluations answers as whole objects. A deny that comes from a failure (a
  // limit, a timeout) always says so.
  Evaluation out{d.allowed, std::nullopt};
  if (!d.allowed && !d.reasons.empty()) {
    out.full = Denied("evaluation_stopped", absl::StrJoin(d.reasons, "; "));
  } else if (!d.allowed && explain) {
    out.full = Denied("not_allowed", absl::StrCat("no rule of the policy allows ", ToString(subject), " to ",
                                                  t.action->name, " ", ToString(resource)));
  }
  if (explain && d.explanation) {
    if (!out.full) out.full = json::object{{"decision", d.allowed}};
    json::value& context = (*out.full)["context"];
    if (!context.is_object()) context = json::object();
    context.get_object()["explanation"] = ExplanationJson(*d.explanation);
  }
  return out;
}

absl::Status Unbounded(absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat(what, " is unbounded: a rule allows it for any value (a wildcard), so it cannot be listed; "
                         "ask /access/v1/evaluation about specific values instead"));
}

// A search answer: the page of `ids` the request asked for, each made a result by `result`.
template <typename MakeResult>
absl::StatusOr<Reply> SearchReply(std::vector<std::string> ids, const AuthzenPage& page, MakeResult result) {
  ids = SortedUnique(std::move(ids));
  const size_t total = ids.size();
  MANDATE_ASSIGN_OR_RETURN(IdPage p, PageOf(std::move(ids), page.limit, page.token, kRoot.Key("page").Key("token")));
  json::array results;
  results.reserve(p.ids.size());
  for (const std::string& id : p.ids) results.emplace_back(result(id));
  const size_t count = p.ids.size();
  return Reply{200, json::object{{"results", std::move(results)},
                                 {"page", json::object{{"next_token", p.next_token.value_or("")},
                                                       {"count", count},
                                                       {"total", total}}}}};
}

// A search whose fixed entity names a type the policy does not have: nothing can match.
template <typename MakeResult>
absl::StatusOr<Reply> EmptySearch(const AuthzenPage& page, MakeResult result) {
  return SearchReply({}, page, result);
}

// Parses the body into `storage`, with the memory resource `storage` was made with.
absl::StatusOr<const json::object*> BodyObject(const Call& c, json::value* storage) {
  MANDATE_ASSIGN_OR_RETURN(*storage, ParseJsonBody(c.request.body(), storage->storage()));
  return AsObject(*storage, kRoot);
}

// A host name, IPv4/IPv6 literal and port: nothing that could break out of a URL.
bool PlainHost(std::string_view host) {
  if (host.empty() || host.size() > 255) return false;
  for (char ch : host) {
    if (!(absl::ascii_isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '-' || ch == ':' || ch == '[' ||
          ch == ']')) {
      return false;
    }
  }
  return true;
}

}  // namespace

namespace {

// The context of the last item recorded and its serialized text: the items of a batch that share
// the request's default context serialize it once.
struct RecordedContext {
  const json::object* context = nullptr;
  std::shared_ptr<const std::string> json;
};

// The audit record of one AuthZEN evaluation (the AuthZEN types as the caller named them).
const json::object& Recorded(Call& c, const AuthzenTuple& t, const json::object& decision,
                             RecordedContext* last = nullptr) {
  audit::Entry e;
  e.actor = absl::StrCat(t.subject->type, ":", t.subject->id.value_or(""));
  e.action = t.action->name;
  e.resource = absl::StrCat(t.resource->type, ":", t.resource->id.value_or(""));
  const json::value* d = decision.if_contains("decision");
  e.decision = d != nullptr && d->is_bool() && d->as_bool() ? "allow" : "deny";
  if (const json::value* ctx = decision.if_contains("context"); ctx != nullptr && ctx->is_object()) {
    if (const json::value* r = ctx->as_object().if_contains("reason_admin"); r != nullptr) e.detail["reason"] = *r;
  }
  if (t.context != nullptr) {
    RecordedContext here;
    if (last == nullptr) last = &here;
    if (last->context != t.context || last->json == nullptr) *last = {t.context, audit::SerializeContext(*t.context)};
    e.context_json = last->json;
  }
  c.Audit(std::move(e));
  return decision;
}

}  // namespace

absl::StatusOr<Reply> Api::AuthzenEvaluation(Call& c) {
  // The body's DOM lives in a stack buffer (it dies with this call): no heap allocation to parse it.
  unsigned char buffer[kBodyBuffer];
  json::monotonic_resource arena(buffer, sizeof buffer);
  json::value body(&arena);
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, BodyObject(c, &body));
  MANDATE_ASSIGN_OR_RETURN(AuthzenTuple t, DecodeAuthzenTuple(*o, kRoot, AuthzenRequestKind::kEvaluation));
  MANDATE_ASSIGN_OR_RETURN(bool explain, WantsExplain(c, *o));
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  TypeMemo subject_types, resource_types;
  const Evaluation e = Decide(*snap, options_.authzen, t, explain, GrantedNow(service_), subject_types, resource_types);
  metrics_.RecordDecision(e.allowed);
  if (c.auditing) Recorded(c, t, e.Object());
  Reply reply;
  e.AppendTo(&reply.json_text);
  return reply;
}

absl::StatusOr<Reply> Api::AuthzenEvaluations(Call& c) {
  unsigned char buffer[kBodyBuffer];  // as in AuthzenEvaluation; a larger body grows onto the heap
  json::monotonic_resource arena(buffer, sizeof buffer);
  json::value body(&arena);
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, BodyObject(c, &body));
  MANDATE_ASSIGN_OR_RETURN(AuthzenBatch batch, DecodeAuthzenBatch(*o));
  MANDATE_ASSIGN_OR_RETURN(bool explain, WantsExplain(c, *o));
  // One snapshot for the whole batch: its decisions are consistent with each other.
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  const std::vector<Fact> granted = GrantedNow(service_);
  TypeMemo subject_types, resource_types;
  Reply reply;
  std::string& out = reply.json_text;
  if (!batch.has_evaluations) {
    const Evaluation e = Decide(*snap, options_.authzen, batch.items[0], explain, granted, subject_types, resource_types);
    metrics_.RecordDecision(e.allowed);
    if (c.auditing) Recorded(c, batch.items[0], e.Object());
    e.AppendTo(&out);
    return reply;
  }
  // The answer is written as text: {"evaluations":[{"decision":b},...]}.
  out.reserve(20 + 20 * batch.items.size());
  out.append("{\"evaluations\":[");
  RecordedContext context;
  if (c.auditing) c.audit.reserve(c.audit.size() + batch.items.size());
  uint64_t decided = 0;
  uint64_t allowed = 0;
  for (const AuthzenTuple& t : batch.items) {
    const Evaluation e = Decide(*snap, options_.authzen, t, explain, granted, subject_types, resource_types);
    if (c.auditing) Recorded(c, t, e.Object(), &context);
    if (decided++ > 0) out.push_back(',');
    e.AppendTo(&out);
    allowed += e.allowed ? 1 : 0;
    if (batch.semantic == EvaluationsSemantic::kDenyOnFirstDeny && !e.allowed) break;
    if (batch.semantic == EvaluationsSemantic::kPermitOnFirstPermit && e.allowed) break;
  }
  out.append("]}");
  metrics_.RecordDecisions(allowed, decided - allowed);
  return reply;
}

absl::StatusOr<Reply> Api::AuthzenSearchSubject(Call& c) {
  json::value body;
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, BodyObject(c, &body));
  MANDATE_ASSIGN_OR_RETURN(AuthzenTuple t, DecodeAuthzenTuple(*o, kRoot, AuthzenRequestKind::kSubjectSearch));
  MANDATE_ASSIGN_OR_RETURN(AuthzenPage page, DecodeAuthzenPage(*o, kRoot));
  const std::string& wire_type = t.subject->type;
  auto result = [&wire_type](const std::string& id) { return json::object{{"type", wire_type}, {"id", id}}; };
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  absl::StatusOr<std::string> subject_type = ResolveAuthzenType(snap->policy(), options_.authzen, wire_type);
  absl::StatusOr<std::string> resource_type = ResolveAuthzenType(snap->policy(), options_.authzen, t.resource->type);
  if (!subject_type.ok() || !resource_type.ok()) return EmptySearch(page, result);

  const TypedValue resource{*resource_type, *t.resource->id};
  QueryOptions options;
  options.context_facts = AuthzenFacts(t, std::nullopt, resource);
  AppendGrants(service_, &options.context_facts);
  // allow(subject: T, "action", Resource{"id"}) with the subject unbound.
  ConjunctiveQuery query;
  query.calls.push_back(QueryCall{"allow",
                                  {QueryArg{std::nullopt, "subject"}, QueryArg{TypedValue{"String", t.action->name}, ""},
                                   QueryArg{resource, ""}}});
  query.constraints["subject"] = VarConstraint{*subject_type, std::nullopt};
  MANDATE_ASSIGN_OR_RETURN(QueryResult found, snap->Query(query, options));
  if (!found.reasons.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the search stopped before finishing: ", absl::StrJoin(found.reasons, "; ")));
  }
  std::vector<std::string> ids;
  ids.reserve(found.rows.size());
  for (const auto& row : found.rows) {
    if (row.empty() || !row[0]) {
      return Unbounded(absl::StrCat("the set of ", *subject_type, " that may ", t.action->name, " ",
                                    ToString(resource)));
    }
    if (row[0]->type == *subject_type) ids.push_back(row[0]->id);
  }
  return SearchReply(std::move(ids), page, result);
}

absl::StatusOr<Reply> Api::AuthzenSearchResource(Call& c) {
  json::value body;
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, BodyObject(c, &body));
  MANDATE_ASSIGN_OR_RETURN(AuthzenTuple t, DecodeAuthzenTuple(*o, kRoot, AuthzenRequestKind::kResourceSearch));
  MANDATE_ASSIGN_OR_RETURN(AuthzenPage page, DecodeAuthzenPage(*o, kRoot));
  const std::string& wire_type = t.resource->type;
  auto result = [&wire_type](const std::string& id) { return json::object{{"type", wire_type}, {"id", id}}; };
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  absl::StatusOr<std::string> subject_type = ResolveAuthzenType(snap->policy(), options_.authzen, t.subject->type);
  absl::StatusOr<std::string> resource_type = ResolveAuthzenType(snap->policy(), options_.authzen, wire_type);
  if (!subject_type.ok() || !resource_type.ok()) return EmptySearch(page, result);

  const TypedValue subject{*subject_type, *t.subject->id};
  QueryOptions options;
  options.context_facts = AuthzenFacts(t, subject, std::nullopt);
  AppendGrants(service_, &options.context_facts);
  bool wildcard = false;
  MANDATE_ASSIGN_OR_RETURN(std::vector<std::string> ids,
                           snap->List(subject, t.action->name, *resource_type, options, &wildcard));
  if (wildcard) {
    return Unbounded(absl::StrCat("the set of ", *resource_type, " that ", ToString(subject), " may ", t.action->name));
  }
  return SearchReply(std::move(ids), page, result);
}

absl::StatusOr<Reply> Api::AuthzenSearchAction(Call& c) {
  json::value body;
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, BodyObject(c, &body));
  MANDATE_ASSIGN_OR_RETURN(AuthzenTuple t, DecodeAuthzenTuple(*o, kRoot, AuthzenRequestKind::kActionSearch));
  MANDATE_ASSIGN_OR_RETURN(AuthzenPage page, DecodeAuthzenPage(*o, kRoot));
  auto result = [](const std::string& name) { return json::object{{"name", name}}; };
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  absl::StatusOr<std::string> subject_type = ResolveAuthzenType(snap->policy(), options_.authzen, t.subject->type);
  absl::StatusOr<std::string> resource_type = ResolveAuthzenType(snap->policy(), options_.authzen, t.resource->type);
  if (!subject_type.ok() || !resource_type.ok()) return EmptySearch(page, result);

  const TypedValue subject{*subject_type, *t.subject->id};
  const TypedValue resource{*resource_type, *t.resource->id};
  QueryOptions options;
  options.context_facts = AuthzenFacts(t, subject, resource);
  AppendGrants(service_, &options.context_facts);
  bool wildcard = false;
  MANDATE_ASSIGN_OR_RETURN(std::vector<std::string> actions, snap->Actions(subject, resource, options, &wildcard));
  if (wildcard) {
    return Unbounded(absl::StrCat("the set of actions ", ToString(subject), " may do on ", ToString(resource)));
  }
  return SearchReply(std::move(actions), page, result);
}

absl::StatusOr<Reply> Api::AuthzenConfiguration(Call& c) {
  std::string base(absl::StripSuffix(options_.authzen.policy_decision_point, "/"));
  if (base.empty()) {
    const std::string_view host = c.request[boost::beast::http::field::host];
    // Without a usable Host header the endpoints are given as paths on this server.
    if (PlainHost(host)) base = absl::StrCat("http://", std::string(host));
  }
  json::object o;
  if (!base.empty()) o["policy_decision_point"] = base;
  o["access_evaluation_endpoint"] = absl::StrCat(base, "/access/v1/evaluation");
  o["access_evaluations_endpoint"] = absl::StrCat(base, "/access/v1/evaluations");
  o["search_subject_endpoint"] = absl::StrCat(base, "/access/v1/search/subject");
  o["search_resource_endpoint"] = absl::StrCat(base, "/access/v1/search/resource");
  o["search_action_endpoint"] = absl::StrCat(base, "/access/v1/search/action");
  return Reply{200, std::move(o)};
}

}  // namespace mandate::server
