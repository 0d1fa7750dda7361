// Handlers of the Oso Cloud–compatible endpoints (/api/*). Wire formats follow the official clients
// (see docs/api.md); every request body is decoded with JSON-pointer errors before anything runs.
#include <algorithm>

#include <boost/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "audit/entry.h"
#include "audit/format.h"
#include "server/api.h"
#include "server/status_macros.h"
#include "store/wire_json.h"

namespace mandate::server {

namespace json = boost::json;
using store::EncodeFact;
using store::EncodeTypedValue;

namespace {

const JsonPointer kRoot;

// Stack space for the DOM of a read request's body: an /api/authorize body needs well under 1 KB.
constexpr size_t kSmallBodyBuffer = 4096;

json::array ToJsonArray(const std::vector<std::string>& v) {
  json::array a;
  a.reserve(v.size());
  for (const std::string& s : v) a.emplace_back(s);
  return a;
}

absl::Status Unbounded(const std::string& what) {
  return absl::FailedPreconditionError(
      absl::StrCat(what,
                   " is unbounded: a rule allows it for any value (a wildcard), so the result cannot be listed; "
                   "ask /api/authorize about specific values instead"));
}

json::object EncodeQueryArg(const std::optional<TypedValue>& v, const std::string& type) {
  json::object o;
  if (v) return EncodeTypedValue(*v);
  o["type"] = type.empty() ? json::value(nullptr) : json::value(type);
  o["id"] = nullptr;
  return o;
}

}  // namespace

std::vector<std::string> SortedUnique(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// A token is the page size and the last id of its page (keyset paging).
absl::StatusOr<IdPage> PageOf(std::vector<std::string> sorted_ids, int64_t size,
                              const std::optional<std::string>& token, const JsonPointer& token_at) {
  std::string after;
  if (token) {
    std::string raw;
    const size_t nl = absl::WebSafeBase64Unescape(*token, &raw) ? raw.find('\n') : std::string::npos;
    if (nl == std::string::npos || !absl::SimpleAtoi(raw.substr(0, nl), &size) || size <= 0) {
      return token_at.Error("not a page token this server issued");
    }
    after = raw.substr(nl + 1);
  }
  auto begin = token ? std::upper_bound(sorted_ids.begin(), sorted_ids.end(), after) : sorted_ids.begin();
  auto end = sorted_ids.end();
  if (size > 0 && end - begin > size) end = begin + size;
  IdPage page;
  if (end != sorted_ids.end()) page.next_token = absl::WebSafeBase64Escape(absl::StrCat(size, "\n", *(end - 1)));
  page.ids.assign(std::make_move_iterator(begin), std::make_move_iterator(end));
  return page;
}

absl::StatusOr<QueryOptions> Api::ReadOptions(const json::object& body, const JsonPointer& at,
                                              const Policy& policy) const {
  MANDATE_ASSIGN_OR_RETURN(std::vector<Fact> facts, DecodeFactList(body, "context_facts", at));
  for (size_t i = 0; i < facts.size(); ++i) {
    MANDATE_RETURN_IF_ERROR(service_.CheckFact(policy, facts[i], at.Key("context_facts").Index(i).Where()));
  }
  QueryOptions options;
  options.context_facts = std::move(facts);
  // Grants (docs/agents.md) are request-time facts: in effect until they expire or their task completes.
  std::vector<Fact> granted = service_.agents().ActiveGrantFacts(absl::ToUnixSeconds(absl::Now()));
  options.context_facts.insert(options.context_facts.end(), std::make_move_iterator(granted.begin()),
                               std::make_move_iterator(granted.end()));
  return options;
}

absl::StatusOr<Reply> Api::Authorize(Call& c) {
  // The body's DOM lives in a stack buffer (it dies with this call): no heap allocation to parse it.
  unsigned char buffer[kSmallBodyBuffer];
  json::monotonic_resource arena(buffer, sizeof buffer);
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body(), &arena));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_ASSIGN_OR_RETURN(TypedValue actor, DecodeTypedField(*o, "actor", kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::string action, RequiredString(*o, "action", kRoot));
  MANDATE_ASSIGN_OR_RETURN(TypedValue resource, DecodeTypedField(*o, "resource", kRoot));
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  MANDATE_ASSIGN_OR_RETURN(QueryOptions options, ReadOptions(*o, kRoot, *snap->policy()));
  const Decision d = snap->Check(actor, action, resource, options);
  metrics_.RecordDecision(d.allowed);
  if (c.auditing) c.Audit(DecisionRecord(actor, action, ToString(resource), d.allowed, o)).reasons = d.reasons;
  Reply reply;
  reply.json_text = d.allowed ? "{\"allowed\":true}" : "{\"allowed\":false}";
  return reply;
}

absl::StatusOr<Reply> Api::List(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_ASSIGN_OR_RETURN(TypedValue actor, DecodeTypedField(*o, "actor", kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::string action, RequiredString(*o, "action", kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::string type, RequiredString(*o, "resource_type", kRoot));
  if (type.empty()) return kRoot.Key("resource_type").Error("the type must not be empty");
  MANDATE_ASSIGN_OR_RETURN(std::optional<int64_t> page_size, OptionalInt(*o, "page_size", kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::optional<std::string> page_token, OptionalString(*o, "page_token", kRoot));
  if (page_size && *page_size <= 0) return kRoot.Key("page_size").Error("must be a positive integer");

  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  MANDATE_ASSIGN_OR_RETURN(QueryOptions options, ReadOptions(*o, kRoot, *snap->policy()));
  bool wildcard = false;
  MANDATE_ASSIGN_OR_RETURN(std::vector<std::string> ids, snap->List(actor, action, type, options, &wildcard));
  if (wildcard) return Unbounded(absl::StrCat("the list of ", type, " that ", ToString(actor), " may ", action));
  c.Audit(DecisionRecord(actor, action, type, !ids.empty(), o)).detail = {{"results", ids.size()}};
  // A page size of 0 = everything in one page.
  MANDATE_ASSIGN_OR_RETURN(IdPage page, PageOf(SortedUnique(std::move(ids)), page_size.value_or(0), page_token,
                                               kRoot.Key("page_token")));
  return Reply{200, json::object{{"results", ToJsonArray(page.ids)},
                                 {"next_page_token", page.next_token ? json::value(*page.next_token) : nullptr}}};
}

absl::StatusOr<std::vector<std::string>> Api::ActionsFor(const Snapshot& snap, const json::value& query,
                                                         const JsonPointer& at) const {
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(query, at));
  MANDATE_ASSIGN_OR_RETURN(TypedValue actor, DecodeTypedField(*o, "actor", at));
  MANDATE_ASSIGN_OR_RETURN(TypedValue resource, DecodeTypedField(*o, "resource", at));
  MANDATE_ASSIGN_OR_RETURN(QueryOptions options, ReadOptions(*o, at, *snap.policy()));
  bool wildcard = false;
  MANDATE_ASSIGN_OR_RETURN(std::vector<std::string> actions, snap.Actions(actor, resource, options, &wildcard));
  if (wildcard) {
    return Unbounded(absl::StrCat("the set of actions ", ToString(actor), " may do on ", ToString(resource)));
  }
  return SortedUnique(std::move(actions));
}

namespace {

// An actions query is recorded as one decision: action "*", the allowed actions in the detail.
void RecordActions(Call& c, const json::value& query, const std::vector<std::string>& actions) {
  const json::object& o = query.as_object();  // ActionsFor checked its shape
  absl::StatusOr<TypedValue> actor = DecodeTypedField(o, "actor", kRoot);
  absl::StatusOr<TypedValue> resource = DecodeTypedField(o, "resource", kRoot);
  if (!actor.ok() || !resource.ok()) return;
  c.Audit(DecisionRecord(*actor, "*", ToString(*resource), !actions.empty(), &o)).detail = {
      {"actions", ToJsonArray(actions)}};
}

// A query is recorded as one decision: action "query", the query in the context.
void RecordQuery(Call& c, const json::object& request, size_t rows) {
  audit::Entry e;
  e.action = "query";
  e.decision = rows > 0 ? "allow" : "deny";
  e.context = request;
  e.detail = {{"rows", rows}};
  c.Audit(std::move(e));
}

}  // namespace

absl::StatusOr<Reply> Api::Actions(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  MANDATE_ASSIGN_OR_RETURN(std::vector<std::string> actions, ActionsFor(*snap, body, kRoot));
  RecordActions(c, body, actions);
  return Reply{200, json::object{{"results", ToJsonArray(actions)}}};
}

absl::StatusOr<Reply> Api::BulkActions(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::array* queries, AsArray(body, kRoot));
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  json::array out;
  for (size_t i = 0; i < queries->size(); ++i) {
    MANDATE_ASSIGN_OR_RETURN(std::vector<std::string> actions, ActionsFor(*snap, (*queries)[i], kRoot.Index(i)));
    RecordActions(c, (*queries)[i], actions);
    out.emplace_back(json::object{{"results", ToJsonArray(actions)}});
  }
  return Reply{200, std::move(out)};
}

absl::StatusOr<Reply> Api::AuthorizeResources(Call& c) {
  unsigned char buffer[kSmallBodyBuffer];  // as in Authorize; a larger body grows onto the heap
  json::monotonic_resource arena(buffer, sizeof buffer);
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body(), &arena));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_ASSIGN_OR_RETURN(TypedValue actor, DecodeTypedField(*o, "actor", kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::string action, RequiredString(*o, "action", kRoot));
  MANDATE_ASSIGN_OR_RETURN(const json::array* resources, OptionalArray(*o, "resources", kRoot));
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  MANDATE_ASSIGN_OR_RETURN(QueryOptions options, ReadOptions(*o, kRoot, *snap->policy()));
  std::vector<TypedValue> candidates;
  if (resources != nullptr) {
    candidates.reserve(resources->size());
    const JsonPointer at = kRoot.Key("resources");
    for (size_t i = 0; i < resources->size(); ++i) {
      MANDATE_ASSIGN_OR_RETURN(TypedValue r, DecodeValue((*resources)[i], at.Index(i)));
      candidates.push_back(std::move(r));
    }
  }
  // Order and duplicates are preserved, as the 1.x client expects. The answer is written as text,
  // {"results":[{"type":T,"id":I},...]}, without a JSON value per allowed resource.
  std::shared_ptr<const std::string> context;
  if (c.auditing) {
    context = DecisionContext(o);  // one copy for every item's record
    c.audit.reserve(c.audit.size() + candidates.size());
  }
  Reply reply;
  std::string& out = reply.json_text;
  out.reserve(16 + 32 * candidates.size());
  out.append("{\"results\":[");
  uint64_t allowed = 0;
  for (const TypedValue& r : candidates) {
    const bool ok = snap->Check(actor, action, r, options).allowed;
    if (c.auditing) c.Audit(DecisionRecord(actor, action, ToString(r), ok, context));
    if (!ok) continue;
    if (allowed++ > 0) out.push_back(',');
    out.append("{\"type\":");
    audit::AppendJsonString(&out, r.type);
    out.append(",\"id\":");
    audit::AppendJsonString(&out, r.id);
    out.push_back('}');
  }
  out.append("]}");
  metrics_.RecordDecisions(allowed, candidates.size() - allowed);
  return reply;
}

absl::StatusOr<Reply> Api::EvaluateQuery(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_ASSIGN_OR_RETURN(ConjunctiveQuery query, DecodeQueryV2(*o, kRoot));
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  MANDATE_ASSIGN_OR_RETURN(QueryOptions options, ReadOptions(*o, kRoot, *snap->policy()));
  MANDATE_ASSIGN_OR_RETURN(QueryResult result, snap->Query(query, options));
  if (!result.reasons.empty()) {
    // A partial answer could hide results; refuse it rather than return it as if complete.
    return absl::FailedPreconditionError(
        absl::StrCat("the query stopped before finishing: ", absl::StrJoin(result.reasons, "; ")));
  }
  json::array rows;
  rows.reserve(result.rows.size());
  for (const auto& row : result.rows) {
    json::object r;
    for (size_t i = 0; i < result.vars.size() && i < row.size(); ++i) {
      r[result.vars[i]] = row[i] ? json::value(row[i]->id) : json::value(nullptr);  // null = wildcard
    }
    rows.emplace_back(std::move(r));
  }
  RecordQuery(c, *o, rows.size());
  return Reply{200, json::object{{"results", std::move(rows)}}};
}

absl::StatusOr<Reply> Api::QueryV1(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  const json::value* fact = o->if_contains("fact");
  if (fact == nullptr) return kRoot.Key("fact").Error("required field is missing");
  MANDATE_ASSIGN_OR_RETURN(FactPattern pattern, DecodeFactPattern(*fact, kRoot.Key("fact")));
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  MANDATE_ASSIGN_OR_RETURN(QueryOptions options, ReadOptions(*o, kRoot, *snap->policy()));
  // Concrete arguments are constants; each null id becomes a variable of the given type (if any).
  ConjunctiveQuery query;
  QueryCall call;
  call.predicate = pattern.predicate;
  std::vector<std::string> types(pattern.arg_types.size());
  for (size_t i = 0; i < pattern.arg_types.size(); ++i) {
    const auto& type = pattern.arg_types[i];
    const auto& id = pattern.arg_ids[i];
    types[i] = type.value_or("");
    if (type && id) {
      call.args.push_back(QueryArg{TypedValue{*type, *id}, ""});
      continue;
    }
    const std::string var = absl::StrCat("arg", i);
    call.args.push_back(QueryArg{std::nullopt, var});
    query.constraints[var] = VarConstraint{type.value_or(""), std::nullopt};
  }
  query.calls.push_back(std::move(call));
  MANDATE_ASSIGN_OR_RETURN(QueryResult result, snap->Query(query, options));
  if (!result.reasons.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the query stopped before finishing: ", absl::StrJoin(result.reasons, "; ")));
  }
  json::array facts;
  for (const auto& row : result.rows) {
    json::array args;
    for (size_t i = 0; i < query.calls[0].args.size(); ++i) {
      const QueryArg& a = query.calls[0].args[i];
      if (a.value) {
        args.emplace_back(EncodeTypedValue(*a.value));
        continue;
      }
      const auto var = std::find(result.vars.begin(), result.vars.end(), a.var);
      const size_t k = static_cast<size_t>(var - result.vars.begin());
      args.emplace_back(EncodeQueryArg(k < row.size() ? row[k] : std::nullopt, types[i]));
    }
    facts.emplace_back(json::object{{"predicate", pattern.predicate}, {"args", std::move(args)}});
  }
  RecordQuery(c, *o, facts.size());
  return Reply{200, json::object{{"results", std::move(facts)}}};
}

absl::StatusOr<Reply> Api::GetFacts(Call& c) {
  std::optional<std::string> predicate = c.Param("predicate");
  if (!predicate || predicate->empty()) {
    return absl::InvalidArgumentError("query parameter `predicate` is required");
  }
  FactPattern pattern;
  pattern.predicate = *predicate;
  pattern.arg_types.resize(kMaxFactArgs);
  pattern.arg_ids.resize(kMaxFactArgs);
  size_t min_arity = 1;
  for (const auto& [key, value] : c.params) {
    if (key.rfind("args.", 0) != 0) continue;
    const size_t dot = key.find('.', 5);
    size_t index = 0;
    const std::string field = dot == std::string::npos ? "" : key.substr(dot + 1);
    if (dot == std::string::npos || !absl::SimpleAtoi(key.substr(5, dot - 5), &index) || index >= kMaxFactArgs ||
        (field != "type" && field != "id")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "query parameter `", key, "`: expected args.N.type or args.N.id with N from 0 to ", kMaxFactArgs - 1));
    }
    (field == "type" ? pattern.arg_types : pattern.arg_ids)[index] = value;
    min_arity = std::max(min_arity, index + 1);
  }
  for (size_t i = 0; i < kMaxFactArgs; ++i) {
    if (pattern.arg_ids[i] && !pattern.arg_types[i]) {
      return absl::InvalidArgumentError(absl::StrCat("query parameter args.", i, ".id needs args.", i,
                                                     ".type: an id means nothing without its type"));
    }
    if (pattern.arg_types[i] && pattern.arg_ids[i]) {
      absl::StatusOr<TypedValue> v = CheckValue(TypedValue{*pattern.arg_types[i], *pattern.arg_ids[i]}, JsonPointer());
      if (!v.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("query parameter args.", i, ": ", v.status().message()));
      }
      pattern.arg_ids[i] = v->id;
    }
  }
  // Wildcard arguments are left out of the query string, so the arity is unknown: match every
  // arity that has all the given positions.
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  json::array out;
  for (size_t arity = min_arity; arity <= kMaxFactArgs; ++arity) {
    FactPattern p = pattern;
    p.arg_types.resize(arity);
    p.arg_ids.resize(arity);
    for (const Fact& f : snap->Facts(p)) out.emplace_back(EncodeFact(f));
  }
  return Reply{200, std::move(out)};
}

absl::StatusOr<Reply> Api::Write(std::vector<LabeledChange> changes) {
  const size_t n = changes.size();
  MANDATE_ASSIGN_OR_RETURN(uint64_t revision, service_.ApplyChanges(std::move(changes)));
  Reply reply{200, json::object{{"message", absl::StrCat("applied ", n, " change(s); revision ", revision)}}};
  reply.offset = revision;
  return reply;
}

namespace {

absl::Status AppendInserts(const json::value& v, const JsonPointer& at, std::vector<LabeledChange>* out) {
  MANDATE_ASSIGN_OR_RETURN(const json::array* facts, AsArray(v, at));
  for (size_t i = 0; i < facts->size(); ++i) {
    MANDATE_ASSIGN_OR_RETURN(Fact f, DecodeFact((*facts)[i], at.Index(i)));
    LabeledChange c;
    c.change.kind = Change::Kind::kInsert;
    c.change.fact = std::move(f);
    c.where = at.Index(i).Where();
    out->push_back(std::move(c));
  }
  return absl::OkStatus();
}

absl::Status AppendDeletes(const json::value& v, const JsonPointer& at, std::vector<LabeledChange>* out) {
  MANDATE_ASSIGN_OR_RETURN(const json::array* patterns, AsArray(v, at));
  for (size_t i = 0; i < patterns->size(); ++i) {
    MANDATE_ASSIGN_OR_RETURN(FactPattern p, DecodeFactPattern((*patterns)[i], at.Index(i)));
    LabeledChange c;
    c.change.kind = Change::Kind::kDelete;
    c.change.pattern = std::move(p);
    c.where = at.Index(i).Where();
    out->push_back(std::move(c));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Reply> Api::Batch(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::array* changesets, AsArray(body, kRoot));
  std::vector<LabeledChange> changes;
  std::vector<PendingGrant> grants;  // insert changesets with the "mandate" grant extension
  for (size_t i = 0; i < changesets->size(); ++i) {
    const JsonPointer at = kRoot.Index(i);
    MANDATE_ASSIGN_OR_RETURN(const json::object* cs, AsObject((*changesets)[i], at));
    const json::value* inserts = cs->if_contains("inserts");
    const json::value* deletes = cs->if_contains("deletes");
    if ((inserts != nullptr) == (deletes != nullptr)) {
      return at.Error("a changeset has exactly one of \"inserts\" or \"deletes\"");
    }
    if (const json::value* ext = cs->if_contains("mandate"); ext != nullptr) {
      if (inserts == nullptr) return at.Key("mandate").Error("grant metadata applies to \"inserts\" only");
      MANDATE_ASSIGN_OR_RETURN(const json::object* meta, AsObject(*ext, at.Key("mandate")));
      std::vector<LabeledChange> facts;
      MANDATE_RETURN_IF_ERROR(AppendInserts(*inserts, at.Key("inserts"), &facts));
      MANDATE_ASSIGN_OR_RETURN(PendingGrant g, DecodeGrant(*meta, at.Key("mandate"), std::move(facts)));
      grants.push_back(std::move(g));
      continue;
    }
    if (inserts != nullptr) MANDATE_RETURN_IF_ERROR(AppendInserts(*inserts, at.Key("inserts"), &changes));
    if (deletes != nullptr) MANDATE_RETURN_IF_ERROR(AppendDeletes(*deletes, at.Key("deletes"), &changes));
  }
  c.Audit(ChangesRecord("facts.write", changes));
  for (const PendingGrant& g : grants) {
    std::vector<LabeledChange> inserts(g.facts.size());
    for (size_t i = 0; i < g.facts.size(); ++i) inserts[i].change.fact = g.facts[i];
    audit::Entry& e = c.Audit(ChangesRecord("grant", inserts));
    e.detail["task"] = g.task;
    if (g.expires_at) e.detail["expires_at"] = *g.expires_at;
  }
  if (grants.empty()) return Write(std::move(changes));
  // Everything was validated above; the facts are written first, then the grants (docs/agents.md).
  Reply reply{200, json::object{}};
  const size_t n_changes = changes.size();
  if (n_changes > 0) {
    MANDATE_ASSIGN_OR_RETURN(reply, Write(std::move(changes)));
  }
  size_t granted = 0;
  uint64_t revision = reply.offset.value_or(service_.revision());
  for (PendingGrant& g : grants) {
    granted += g.facts.size();
    uint64_t granted_at = 0;
    MANDATE_RETURN_IF_ERROR(StoreGrant(std::move(g), &granted_at).status());
    revision = std::max(revision, granted_at);
  }
  reply.body = json::object{{"message", absl::StrCat("applied ", n_changes, " change(s) and ", granted,
                                                     " grant(s); revision ", revision)}};
  reply.offset = revision;
  return reply;
}

absl::StatusOr<Reply> Api::InsertFact(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(Fact fact, DecodeFact(body, kRoot));
  json::object echoed = EncodeFact(fact);
  LabeledChange change;
  change.change.kind = Change::Kind::kInsert;
  change.change.fact = std::move(fact);
  change.where = kRoot.Where();
  std::vector<LabeledChange> changes;
  changes.push_back(std::move(change));
  c.Audit(ChangesRecord("facts.write", changes));
  MANDATE_ASSIGN_OR_RETURN(Reply reply, Write(std::move(changes)));
  reply.body = std::move(echoed);  // the 1.x client gets the stored fact back
  return reply;
}

absl::StatusOr<Reply> Api::DeleteFact(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(FactPattern pattern, DecodeFactPattern(body, kRoot));
  LabeledChange change;
  change.change.kind = Change::Kind::kDelete;
  change.change.pattern = std::move(pattern);
  change.where = kRoot.Where();
  std::vector<LabeledChange> changes;
  changes.push_back(std::move(change));
  c.Audit(ChangesRecord("facts.write", changes));
  return Write(std::move(changes));
}

absl::StatusOr<Reply> Api::BulkLoad(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  std::vector<LabeledChange> changes;
  MANDATE_RETURN_IF_ERROR(AppendInserts(body, kRoot, &changes));
  c.Audit(ChangesRecord("facts.write", changes));
  return Write(std::move(changes));
}

absl::StatusOr<Reply> Api::BulkDelete(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  std::vector<LabeledChange> changes;
  MANDATE_RETURN_IF_ERROR(AppendDeletes(body, kRoot, &changes));
  c.Audit(ChangesRecord("facts.write", changes));
  return Write(std::move(changes));
}

absl::StatusOr<Reply> Api::Bulk(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  std::vector<LabeledChange> changes;
  // Deletes run first, then the inserts, in one atomic write.
  if (const json::value* d = o->if_contains("delete"); d != nullptr && !d->is_null()) {
    MANDATE_RETURN_IF_ERROR(AppendDeletes(*d, kRoot.Key("delete"), &changes));
  }
  if (const json::value* t = o->if_contains("tell"); t != nullptr && !t->is_null()) {
    MANDATE_RETURN_IF_ERROR(AppendInserts(*t, kRoot.Key("tell"), &changes));
  }
  c.Audit(ChangesRecord("facts.write", changes));
  return Write(std::move(changes));
}

absl::StatusOr<Reply> Api::ClearData(Call& c) {
  c.Audit(ChangesRecord("facts.clear", {}));
  MANDATE_ASSIGN_OR_RETURN(uint64_t revision, service_.ClearFacts());
  Reply reply{200, json::object{{"message", absl::StrCat("all facts deleted; revision ", revision)}}};
  reply.offset = revision;
  return reply;
}

namespace {

// The version a request names with ?id=N (OpenAPI) or ?version=N (clients); nullopt = active one.
absl::StatusOr<std::optional<int64_t>> VersionParam(const Call& c) {
  std::optional<std::string> v = c.Param("id");
  if (!v) v = c.Param("version");
  if (!v || v->empty()) return std::optional<int64_t>();
  int64_t n = 0;
  if (!absl::SimpleAtoi(*v, &n) || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("query parameter id/version: \"", *v, "\" is not a policy version number"));
  }
  return std::optional<int64_t>(n);
}

json::value PolicyJson(const store::PolicyVersion& v) {
  return json::object{{"filename", v.filename.empty() ? json::value(nullptr) : json::value(v.filename)},
                      {"src", v.source}};
}

}  // namespace

json::object SavePolicyError(const PolicyRejection& r) {
  json::object o;
  switch (r.kind) {
    case PolicyRejection::Kind::kGeneric:
      o["error_type"] = "Generic";
      o["message"] = r.message;
      break;
    case PolicyRejection::Kind::kValidation: {
      o["error_type"] = "Validation";
      o["message"] = absl::StrCat(r.message, ":\n", absl::StrJoin(r.errors, "\n"));
      json::array errors;
      for (const std::string& e : r.errors) {
        errors.emplace_back(json::object{{"error_type", "ValidationFailed"}, {"message", e}});
      }
      o["errors"] = std::move(errors);
      break;
    }
    case PolicyRejection::Kind::kTestsFailed: {
      o["error_type"] = "TestsFailed";
      json::array errors;
      json::array tests;
      std::vector<std::string> lines;
      for (const TestResult& t : r.tests.tests) {
        tests.emplace_back(json::object{{"name", t.name}, {"passed", t.passed}, {"total", t.total}});
        for (const AssertionFailure& f : t.failures) {
          std::string line = absl::StrCat("test \"", t.name, "\": ", f.assertion, " (", f.location, "): ", f.message);
          errors.emplace_back(json::object{{"error_type", "AssertionFailed"}, {"message", line}});
          lines.push_back(std::move(line));
        }
      }
      o["message"] = absl::StrCat(r.message, ":\n", absl::StrJoin(lines, "\n"));
      o["test_results"] = json::object{{"success", false}, {"errors", std::move(errors)}, {"tests", std::move(tests)}};
      break;
    }
  }
  return o;
}


absl::StatusOr<Reply> Api::GetPolicy(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(std::optional<int64_t> version, VersionParam(c));
  if (version) {
    MANDATE_ASSIGN_OR_RETURN(store::PolicyVersion v, service_.store().GetPolicyVersion(*version));
    return Reply{200, json::object{{"policy", PolicyJson(v)}}};
  }
  const std::shared_ptr<const store::PolicyVersion> active = service_.policy_version();
  return Reply{200, json::object{{"policy", active ? PolicyJson(*active) : json::value(nullptr)}}};
}

absl::StatusOr<Reply> Api::PostPolicy(Call& c) {
  PolicyRejection rejection;
  auto generic = [&](const absl::Status& s) {
    rejection.kind = PolicyRejection::Kind::kGeneric;
    rejection.message = std::string(s.message());
    return Reply{HttpStatusFor(s.code()), SavePolicyError(rejection)};
  };
  absl::StatusOr<json::value> body = ParseJsonBody(c.request.body());
  if (!body.ok()) return generic(body.status());
  absl::StatusOr<const json::object*> o = AsObject(*body, kRoot);
  if (!o.ok()) return generic(o.status());
  absl::StatusOr<std::string> src = RequiredString(**o, "src", kRoot);
  if (!src.ok()) return generic(src.status());
  absl::StatusOr<std::optional<std::string>> filename = OptionalString(**o, "filename", kRoot);
  if (!filename.ok()) return generic(filename.status());

  audit::Entry& record = c.Audit(audit::Entry{});
  record.kind = "admin";
  record.action = "policy.upload";
  record.resource = "policy";
  record.detail = {{"filename", filename->value_or("")}, {"sha256", audit::HexHash(audit::Sha256(*src))}};
  absl::StatusOr<Service::PolicyUpload> upload = service_.UploadPolicy(filename->value_or(""), *src, &rejection);
  if (!upload.ok()) {
    if (upload.status().code() == absl::StatusCode::kInvalidArgument) return Reply{400, SavePolicyError(rejection)};
    return generic(upload.status());
  }
  Reply reply{
      upload->changed ? 200 : 202,
      json::object{{"message", upload->changed ? absl::StrCat("policy updated to version ", upload->version->version)
                                               : std::string("policy unchanged")}}};
  reply.offset = upload->revision;
  record.detail["changed"] = upload->changed;
  if (upload->version) record.detail["version"] = upload->version->version;
  return reply;
}

absl::StatusOr<Reply> Api::PolicyMetadata(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(std::optional<int64_t> version, VersionParam(c));
  std::shared_ptr<const Policy> policy = service_.snapshot()->policy();
  if (version) {
    MANDATE_ASSIGN_OR_RETURN(store::PolicyVersion v, service_.store().GetPolicyVersion(*version));
    MANDATE_ASSIGN_OR_RETURN(policy,
                             Policy::Compile({SourceFile{v.filename.empty() ? "policy.polar" : v.filename, v.source}}));
  }
  json::object resources;
  for (const auto& [type, meta] : policy->Metadata()) {
    json::object relations;
    for (const auto& [name, related] : meta.relations) relations[name] = related;
    resources[type] = json::object{{"roles", ToJsonArray(meta.roles)},
                                   {"permissions", ToJsonArray(meta.permissions)},
                                   {"relations", std::move(relations)}};
  }
  return Reply{200, json::object{{"metadata", json::object{{"resources", std::move(resources)}}}}};
}

absl::StatusOr<Reply> Api::Stats(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(auto counts, service_.store().CountFacts());
  MANDATE_ASSIGN_OR_RETURN(std::vector<store::PolicyVersion> versions, service_.store().ListPolicyVersions());
  uint64_t total = 0;
  json::object predicates;
  for (const auto& [predicate, n] : counts) {
    total += n;
    predicates[predicate] = n;
  }
  json::array version_list;
  for (const store::PolicyVersion& v : versions) {
    version_list.emplace_back(json::object{{"version", v.version}, {"sha256", v.sha256}, {"created_at", v.created_at}});
  }
  // Both shapes the clients know: the Go client's counters and the 1.x TypeScript type.
  return Reply{200, json::object{{"num_facts", total},
                                 {"num_roles", counts.contains("has_role") ? counts.at("has_role") : 0},
                                 {"num_relations", counts.contains("has_relation") ? counts.at("has_relation") : 0},
                                 {"facts", json::object{{"total", total}, {"predicates", std::move(predicates)}}},
                                 {"policy", json::object{{"versions", std::move(version_list)}}}}};
}

absl::StatusOr<Reply> Api::NotSupported(Call& c) {
  return absl::UnimplementedError(absl::StrCat(
      c.route_label, " is an Oso Cloud feature Mandate does not provide (local authorization SQL or parity checks)"));
}

}  // namespace mandate::server
