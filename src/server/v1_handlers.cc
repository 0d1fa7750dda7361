// Handlers of the native agent endpoints (docs/agents.md): POST /v1/check and /v1/check/batch,
// the agent registry under /v1/agents, grants (/v1/grants) and tasks (/v1/tasks/{id}). Bodies are
// decoded completely, with JSON-pointer errors, before anything is evaluated, counted or stored.
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "agents/agents.h"
#include "server/api.h"
#include "server/status_macros.h"
#include "store/wire_json.h"

namespace mandate::server {

namespace json = boost::json;
namespace net = boost::asio;
using store::EncodeFact;
using store::EncodeTypedValue;

namespace {

const JsonPointer kRoot;

// Grants last at most this long (ten years): a bound that keeps expiry arithmetic far from overflow.
constexpr int64_t kMaxGrantSeconds = int64_t{10} * 366 * 24 * 3600;
// Task and agent ids are at most this long.
constexpr size_t kMaxIdBytes = 256;
// Most checks in one /v1/check/batch.
constexpr size_t kMaxBatchChecks = 1000;

// Refuses keys a request object does not define, so that a misspelt field is not silently ignored.
absl::Status OnlyKeys(const json::object& o, std::initializer_list<std::string_view> known, const JsonPointer& at) {
  for (const auto& kv : o) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || kv.key() == k;
    if (!ok) return at.Key(kv.key()).Error("unknown field");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DecodeId(const json::value* v, const JsonPointer& at, absl::string_view what) {
  if (v == nullptr) return at.Error("required field is missing");
  if (!v->is_string()) return at.Error(absl::StrCat("expected ", what, " as a string"));
  std::string id(v->get_string());
  if (id.empty() || id.size() > kMaxIdBytes) {
    return at.Error(absl::StrCat(what, " must be 1 to ", kMaxIdBytes, " bytes long"));
  }
  for (char c : id) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '/') {
      return at.Error(absl::StrCat(what, " must not contain control characters or '/'"));
    }
  }
  return id;
}

absl::StatusOr<TypedValue> RequiredValue(const json::object& o, std::string_view key, const JsonPointer& at) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return at.Key(key).Error("required field is missing");
  MANDATE_ASSIGN_OR_RETURN(TypedValue value, DecodeValue(*v, at.Key(key)));
  return CheckValue(std::move(value), at.Key(key));
}

absl::StatusOr<absl::Time> DecodeTime(const json::value& v, const JsonPointer& at) {
  if (!v.is_string()) return at.Error("expected an RFC 3339 time as a string, e.g. \"2026-11-30T09:30:00-05:00\"");
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(v.get_string()), &t, &err)) {
    return at.Error(absl::StrCat("not an RFC 3339 time (e.g. \"2026-11-30T09:30:00-05:00\"): ", err));
  }
  return t;
}

std::string FormatTime(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(unix_seconds), absl::UTCTimeZone());
}

// The inserts of a fact array, each labeled with its place.
absl::StatusOr<std::vector<LabeledChange>> DecodeInserts(const json::value& v, const JsonPointer& at) {
  MANDATE_ASSIGN_OR_RETURN(const json::array* facts, AsArray(v, at));
  std::vector<LabeledChange> out;
  for (size_t i = 0; i < facts->size(); ++i) {
    MANDATE_ASSIGN_OR_RETURN(Fact f, DecodeFact((*facts)[i], at.Index(i)));
    LabeledChange c;
    c.change.fact = std::move(f);
    c.where = at.Index(i).Where();
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace

// ---- /v1/check -----------------------------------------------------------------------------------

absl::StatusOr<agents::CheckRequest> DecodeCheck(const json::value& v, const JsonPointer& at, const Policy& policy,
                                                 bool trusted_time, int64_t now_unix) {
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(v, at));
  MANDATE_RETURN_IF_ERROR(
      OnlyKeys(*o, {"actor", "on_behalf_of", "action", "resource", "context", "context_facts", "time", "explain",
                    "arguments"},
               at));
  agents::CheckRequest req;
  MANDATE_ASSIGN_OR_RETURN(req.actor, RequiredValue(*o, "actor", at));
  MANDATE_ASSIGN_OR_RETURN(req.action, RequiredString(*o, "action", at));
  if (req.action.empty()) return at.Key("action").Error("the action must not be empty");
  MANDATE_ASSIGN_OR_RETURN(req.resource, RequiredValue(*o, "resource", at));
  MANDATE_ASSIGN_OR_RETURN(const json::array* chain, OptionalArray(*o, "on_behalf_of", at));
  if (chain != nullptr) {
    for (size_t i = 0; i < chain->size(); ++i) {
      const JsonPointer p = at.Key("on_behalf_of").Index(i);
      MANDATE_ASSIGN_OR_RETURN(TypedValue principal, DecodeValue((*chain)[i], p));
      MANDATE_ASSIGN_OR_RETURN(principal, CheckValue(std::move(principal), p));
      req.on_behalf_of.push_back(std::move(principal));
    }
  }
  if (const json::value* ctx = o->if_contains("context"); ctx != nullptr && !ctx->is_null()) {
    MANDATE_ASSIGN_OR_RETURN(const json::object* c, AsObject(*ctx, at.Key("context")));
    for (const auto& kv : *c) {
      const JsonPointer p = at.Key("context").Key(kv.key());
      if (kv.key().empty()) return p.Error("a context key must not be empty");
      TypedValue value;
      if (kv.value().is_string()) {
        value = TypedValue{"String", std::string(kv.value().get_string())};
      } else if (kv.value().is_int64()) {
        value = TypedValue{"Integer", std::to_string(kv.value().get_int64())};
      } else if (kv.value().is_uint64()) {
        return p.Error("integer out of the 64-bit signed range");
      } else if (kv.value().is_bool()) {
        value = TypedValue{"Boolean", kv.value().get_bool() ? "true" : "false"};
      } else {
        return p.Error("a context value must be a string, an integer or a boolean");
      }
      MANDATE_ASSIGN_OR_RETURN(value, CheckValue(std::move(value), p));
      req.context.emplace_back(std::string(kv.key()), std::move(value));
    }
  }
  MANDATE_ASSIGN_OR_RETURN(req.context_facts, DecodeFactList(*o, "context_facts", at));
  for (size_t i = 0; i < req.context_facts.size(); ++i) {
    MANDATE_RETURN_IF_ERROR(Service::CheckFact(policy, req.context_facts[i], at.Key("context_facts").Index(i).Where()));
  }
  req.now_unix = now_unix;
  if (const json::value* t = o->if_contains("time"); t != nullptr && !t->is_null()) {
    MANDATE_ASSIGN_OR_RETURN(absl::Time time, DecodeTime(*t, at.Key("time")));
    // Only admin keys may move the clock (simulations, tests); for others the field is ignored.
    if (trusted_time) req.now_unix = absl::ToUnixSeconds(time);
  }
  if (const json::value* e = o->if_contains("explain"); e != nullptr && !e->is_null()) {
    if (!e->is_bool()) return at.Key("explain").Error("expected true or false");
    req.explain = e->get_bool();
  }
  // Any JSON (null included): an approval binds to its digest (docs/approvals.md).
  if (const json::value* a = o->if_contains("arguments")) req.arguments_digest = agents::ArgumentsDigest(*a);
  return req;
}

Reply& Reply::WithRevision(uint64_t revision) {
  offset = revision;
  if (body.is_object()) body.get_object()["revision"] = std::to_string(revision);
  return *this;
}

namespace {

json::object DecisionJson(const agents::CheckResult& r, uint64_t revision, const std::string& request_id) {
  json::array reasons;
  for (const agents::Reason& reason : r.reasons) {
    json::object o{{"code", reason.code}, {"message", reason.message}};
    if (reason.code == agents::kRateLimited && r.retry_after_seconds) o["retry_after_seconds"] = *r.retry_after_seconds;
    reasons.push_back(std::move(o));
  }
  json::object out{{"decision", r.allowed ? "allow" : r.approval_required ? "approval_required" : "deny"},
                   {"allowed", r.allowed},
                   {"reasons", std::move(reasons)},
                   {"revision", std::to_string(revision)},
                   {"request_id", request_id}};
  if (r.retry_after_seconds) out["retry_after_seconds"] = *r.retry_after_seconds;
  if (!r.evaluations.empty()) {
    json::array evaluations;
    for (const auto& e : r.evaluations) {
      evaluations.push_back(json::object{{"principal", EncodeTypedValue(e.principal)},
                                         {"allowed", e.allowed},
                                         {"explanation", ExplanationJson(e.explanation)}});
    }
    out["explanation"] = json::object{{"evaluations", std::move(evaluations)}};
  }
  return out;
}

// The audit record of one /v1/check decision: the chain, the reasons and the request's context.
void AuditCheck(Call& c, const agents::CheckRequest& req, const agents::CheckResult& r, const std::string& agent_type,
                const json::value& request) {
  audit::Entry& e = c.Audit(DecisionRecord(req.actor, req.action, ToString(req.resource), r.allowed));
  if (r.approval_required) e.decision = "approval_required";
  if (r.approval) e.detail["approval"] = r.approval->id;
  for (const TypedValue& p : req.on_behalf_of) e.chain.push_back(ToString(p));
  e.agent = req.actor.type == agent_type;
  for (const agents::Reason& reason : r.reasons) e.reasons.push_back(absl::StrCat(reason.code, ": ", reason.message));
  json::object context;
  if (const json::object* o = request.if_object()) {
    for (const char* key : {"context", "context_facts", "time"}) {
      if (const json::value* v = o->if_contains(key); v != nullptr && !v->is_null()) context[key] = *v;
    }
  }
  if (!context.empty()) e.context = std::move(context);
}

// An admin change of the registry, grants or tasks.
void AuditAdmin(Call& c, std::string action, json::object detail) {
  audit::Entry e;
  e.kind = "admin";
  e.action = std::move(action);
  e.detail = std::move(detail);
  c.Audit(std::move(e));
}

// ---- Agents, grants, tasks -------------------------------------------------------------------------

json::object AgentJson(const store::AgentRecord& a, const std::string& type) {
  return json::object{{"id", a.id},
                      {"type", type},
                      {"owner", a.owner.type.empty() ? json::value(nullptr) : json::value(EncodeTypedValue(a.owner))},
                      {"description", a.description},
                      {"status", a.status},
                      {"created_at", a.created_at},
                      {"updated_at", a.updated_at}};
}

json::object GrantJson(const store::GrantRecord& g) {
  return json::object{{"id", g.id},
                      {"fact", EncodeFact(g.fact)},
                      {"task", g.task.empty() ? json::value(nullptr) : json::value(g.task)},
                      {"expires_at", g.expires_at ? json::value(FormatTime(*g.expires_at)) : json::value(nullptr)}};
}

absl::Status DecodeOwner(const json::value& v, const JsonPointer& at, TypedValue* owner) {
  if (v.is_null()) {
    *owner = TypedValue{};
    return absl::OkStatus();
  }
  MANDATE_ASSIGN_OR_RETURN(TypedValue value, DecodeValue(v, at));
  MANDATE_ASSIGN_OR_RETURN(*owner, CheckValue(std::move(value), at));
  return absl::OkStatus();
}

absl::StatusOr<std::string> DecodeStatus(const json::value& v, const JsonPointer& at) {
  if (!v.is_string() || (v.get_string() != "active" && v.get_string() != "suspended")) {
    return at.Error("status must be \"active\" or \"suspended\"");
  }
  return std::string(v.get_string());
}

absl::StatusOr<std::string> DecodeDescription(const json::value& v, const JsonPointer& at) {
  if (!v.is_string()) return at.Error("expected a string");
  if (v.get_string().size() > 4096) return at.Error("at most 4096 bytes");
  return std::string(v.get_string());
}

absl::StatusOr<std::string> PathId(const Call& c, absl::string_view what) {
  std::optional<std::string> id = c.PathParam("id");
  json::value v = id ? json::value(*id) : json::value(nullptr);
  absl::StatusOr<std::string> decoded = DecodeId(id ? &v : nullptr, kRoot, what);
  if (!decoded.ok()) return absl::InvalidArgumentError(absl::StrCat("invalid path: ", decoded.status().message()));
  return decoded;
}

int64_t NowUnix() { return absl::ToUnixSeconds(absl::Now()); }

}  // namespace

absl::StatusOr<Reply> Api::V1Check(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(int64_t wait_seconds, TakeWaitSeconds(&body));
  // The store revision (the number space of write tokens), read before the snapshot: the snapshot
  // has applied at least this revision. Snapshot::revision() is an in-memory counter.
  const uint64_t revision = service_.revision();
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  MANDATE_ASSIGN_OR_RETURN(agents::CheckRequest req,
                           DecodeCheck(body, kRoot, *snap->policy(), c.role == Role::kAdmin, NowUnix()));
  // Evaluated here, on the I/O thread; only a request that needs approval goes on to the store.
  agents::CheckResult r = service_.agents().Evaluate(*snap, req);
  if (r.approval_step) return ApprovalCheck(std::move(req), std::move(r), std::move(body), wait_seconds, revision);
  return CheckAnswer(c, req, r, body, revision, c.request_id);
}

Reply Api::CheckAnswer(Call& c, const agents::CheckRequest& req, const agents::CheckResult& r,
                       const json::value& request, uint64_t revision, const std::string& request_id) {
  metrics_.RecordDecision(r.allowed);
  AuditCheck(c, req, r, service_.agents().config().actor_type, request);
  AuditApprovalEvents(c, r.approval_events);
  json::object out = DecisionJson(r, revision, request_id);
  if (r.approval) {
    out["approval"] = json::object{{"id", r.approval->id},
                                   {"status", r.approval->status},
                                   {"expires_at", FormatTime(r.approval->expires_at)},
                                   {"url", absl::StrCat(PublicBase(c), "/ui/#/approvals/", r.approval->id)}};
  }
  return Reply{200, std::move(out)};
}

absl::StatusOr<Reply> Api::V1CheckBatch(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_RETURN_IF_ERROR(OnlyKeys(*o, {"checks"}, kRoot));
  MANDATE_ASSIGN_OR_RETURN(const json::array* checks, RequiredArray(*o, "checks", kRoot));
  if (checks->size() > kMaxBatchChecks) {
    return kRoot.Key("checks").Error(absl::StrCat("at most ", kMaxBatchChecks, " checks per batch"));
  }
  // One snapshot and one clock reading for the whole batch; every check is decoded before any is
  // evaluated, so a bad one leaves the rate-limit counters untouched. The store revision is read
  // before the snapshot, as in V1Check.
  const uint64_t revision = service_.revision();
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  const int64_t now = NowUnix();
  std::vector<agents::CheckRequest> requests;
  for (size_t i = 0; i < checks->size(); ++i) {
    MANDATE_ASSIGN_OR_RETURN(agents::CheckRequest req, DecodeCheck((*checks)[i], kRoot.Key("checks").Index(i),
                                                                   *snap->policy(), c.role == Role::kAdmin, now));
    requests.push_back(std::move(req));
  }
  std::vector<agents::CheckResult> results;
  bool approvals = false;
  for (const agents::CheckRequest& req : requests) {
    results.push_back(service_.agents().Evaluate(*snap, req));
    approvals = approvals || results.back().approval_step.has_value();
  }
  auto answer = [this, revision, requests = std::move(requests), body = std::move(body)](
                    Call& call, std::vector<agents::CheckResult>& results) {
    json::array decisions;
    for (size_t i = 0; i < requests.size(); ++i) {
      service_.agents().FinishApproval(requests[i], &results[i]);  // a no-op unless it needs an approval
      decisions.push_back(CheckAnswer(call, requests[i], results[i], body.at("checks").at(i), revision,
                                      absl::StrCat(call.request_id, "/", i))
                              .body);
    }
    return Reply{200, json::object{{"decisions", std::move(decisions)}, {"request_id", call.request_id}}};
  };
  if (!approvals) return answer(c, results);
  // The approval steps touch the store: they run on the blocking pool, never on the I/O thread.
  Reply later;
  later.later = [this, answer = std::move(answer), results = std::move(results)](std::shared_ptr<Call> call) mutable {
    net::post(blocking_, [this, call, answer = std::move(answer), results = std::move(results)]() mutable {
      Finish(*call, answer(*call, results));
    });
  };
  return later;
}

absl::StatusOr<Reply> Api::V1CreateAgent(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_RETURN_IF_ERROR(OnlyKeys(*o, {"id", "type", "owner", "description", "status"}, kRoot));
  const std::string& type = service_.agents().config().actor_type;
  store::AgentRecord agent;
  MANDATE_ASSIGN_OR_RETURN(agent.id, DecodeId(o->if_contains("id"), kRoot.Key("id"), "an agent id"));
  if (const json::value* t = o->if_contains("type"); t != nullptr && !(t->is_string() && t->get_string() == type)) {
    return kRoot.Key("type").Error(absl::StrCat("agents have type \"", type, "\" on this server"));
  }
  if (const json::value* v = o->if_contains("owner"))
    MANDATE_RETURN_IF_ERROR(DecodeOwner(*v, kRoot.Key("owner"), &agent.owner));
  if (const json::value* v = o->if_contains("description")) {
    MANDATE_ASSIGN_OR_RETURN(agent.description, DecodeDescription(*v, kRoot.Key("description")));
  }
  if (const json::value* v = o->if_contains("status")) {
    MANDATE_ASSIGN_OR_RETURN(agent.status, DecodeStatus(*v, kRoot.Key("status")));
  }
  AuditAdmin(c, "agent.create", json::object{{"agent", agent.id}, {"status", agent.status}});
  uint64_t revision = 0;
  MANDATE_ASSIGN_OR_RETURN(store::AgentRecord stored, service_.agents().CreateAgent(std::move(agent), &revision));
  return std::move(Reply{201, AgentJson(stored, type)}.WithRevision(revision));
}

absl::StatusOr<Reply> Api::V1ListAgents(Call& c) {
  json::array out;
  for (const store::AgentRecord& a : service_.agents().ListAgents()) {
    out.push_back(AgentJson(a, service_.agents().config().actor_type));
  }
  return Reply{200, json::object{{"agents", std::move(out)}}};
}

absl::StatusOr<Reply> Api::V1GetAgent(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(std::string id, PathId(c, "an agent id"));
  std::optional<store::AgentRecord> a = service_.agents().GetAgent(id);
  if (!a) return absl::NotFoundError(absl::StrCat("no agent \"", id, "\""));
  return Reply{200, AgentJson(*a, service_.agents().config().actor_type)};
}

absl::StatusOr<Reply> Api::V1PatchAgent(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(std::string id, PathId(c, "an agent id"));
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_RETURN_IF_ERROR(OnlyKeys(*o, {"owner", "description", "status"}, kRoot));
  agents::AgentPatch patch;
  if (const json::value* v = o->if_contains("owner")) {
    TypedValue owner;
    MANDATE_RETURN_IF_ERROR(DecodeOwner(*v, kRoot.Key("owner"), &owner));
    patch.owner = std::move(owner);
  }
  if (const json::value* v = o->if_contains("description")) {
    MANDATE_ASSIGN_OR_RETURN(patch.description, DecodeDescription(*v, kRoot.Key("description")));
  }
  if (const json::value* v = o->if_contains("status")) {
    MANDATE_ASSIGN_OR_RETURN(patch.status, DecodeStatus(*v, kRoot.Key("status")));
  }
  AuditAdmin(c, "agent.update", json::object{{"agent", id}, {"patch", *o}});
  uint64_t revision = 0;
  MANDATE_ASSIGN_OR_RETURN(store::AgentRecord stored, service_.agents().UpdateAgent(id, patch, &revision));
  return std::move(Reply{200, AgentJson(stored, service_.agents().config().actor_type)}.WithRevision(revision));
}

absl::StatusOr<Reply> Api::V1DeleteAgent(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(std::string id, PathId(c, "an agent id"));
  AuditAdmin(c, "agent.delete", json::object{{"agent", id}});
  uint64_t revision = 0;
  MANDATE_RETURN_IF_ERROR(service_.agents().DeleteAgent(id, &revision));
  return std::move(Reply{200, json::object{{"deleted", id}}}.WithRevision(revision));
}

absl::StatusOr<Api::PendingGrant> Api::DecodeGrant(const json::object& meta, const JsonPointer& at,
                                                   std::vector<LabeledChange> inserts) const {
  PendingGrant g;
  if (const json::value* t = meta.if_contains("task"); t != nullptr && !t->is_null()) {
    MANDATE_ASSIGN_OR_RETURN(g.task, DecodeId(t, at.Key("task"), "a task id"));
  }
  const json::value* ttl = meta.if_contains("ttl_seconds");
  const json::value* expires = meta.if_contains("expires_at");
  if (ttl != nullptr && ttl->is_null()) ttl = nullptr;
  if (expires != nullptr && expires->is_null()) expires = nullptr;
  if (ttl != nullptr && expires != nullptr) return at.Error("give ttl_seconds or expires_at, not both");
  const int64_t now = NowUnix();
  if (ttl != nullptr) {
    if (!ttl->is_int64() || ttl->get_int64() <= 0 || ttl->get_int64() > kMaxGrantSeconds) {
      return at.Key("ttl_seconds").Error(absl::StrCat("expected an integer from 1 to ", kMaxGrantSeconds));
    }
    g.expires_at = now + ttl->get_int64();
  }
  if (expires != nullptr) {
    MANDATE_ASSIGN_OR_RETURN(absl::Time t, DecodeTime(*expires, at.Key("expires_at")));
    const int64_t unix = absl::ToUnixSeconds(t);
    if (unix <= now) return at.Key("expires_at").Error("the time is not in the future");
    if (unix - now > kMaxGrantSeconds) return at.Key("expires_at").Error("more than ten years ahead");
    g.expires_at = unix;
  }
  if (g.task.empty() && !g.expires_at) {
    return at.Error("a grant needs \"task\", \"ttl_seconds\" or \"expires_at\" (it would never end)");
  }
  if (inserts.empty()) return at.Error("no facts to grant");
  const std::shared_ptr<const Snapshot> snap = service_.snapshot();
  for (LabeledChange& c : inserts) {
    MANDATE_RETURN_IF_ERROR(Service::CheckFact(*snap->policy(), c.change.fact, c.where));
    g.facts.push_back(std::move(c.change.fact));
  }
  return g;
}

absl::StatusOr<json::value> Api::StoreGrant(PendingGrant grant, uint64_t* revision) {
  const std::string task = grant.task;
  const std::optional<int64_t> expires_at = grant.expires_at;
  MANDATE_ASSIGN_OR_RETURN(std::vector<store::GrantRecord> stored,
                           service_.agents().Grant(std::move(grant.facts), grant.task, grant.expires_at, revision));
  json::array grants;
  for (const store::GrantRecord& g : stored) grants.push_back(GrantJson(g));
  return json::object{{"grants", std::move(grants)},
                      {"task", task.empty() ? json::value(nullptr) : json::value(task)},
                      {"expires_at", expires_at ? json::value(FormatTime(*expires_at)) : json::value(nullptr)}};
}

absl::StatusOr<Reply> Api::V1Grant(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_RETURN_IF_ERROR(OnlyKeys(*o, {"facts", "task", "ttl_seconds", "expires_at"}, kRoot));
  const json::value* facts = o->if_contains("facts");
  if (facts == nullptr) return kRoot.Key("facts").Error("required field is missing");
  MANDATE_ASSIGN_OR_RETURN(std::vector<LabeledChange> inserts, DecodeInserts(*facts, kRoot.Key("facts")));
  if (inserts.empty()) return kRoot.Key("facts").Error("no facts to grant");
  MANDATE_ASSIGN_OR_RETURN(PendingGrant grant, DecodeGrant(*o, kRoot, std::move(inserts)));
  json::array facts_detail;
  for (const Fact& f : grant.facts) facts_detail.emplace_back(ToString(f));
  json::object detail{{"facts", std::move(facts_detail)}, {"task", grant.task}};
  if (grant.expires_at) detail["expires_at"] = *grant.expires_at;
  AuditAdmin(c, "grant", std::move(detail));
  uint64_t revision = 0;
  MANDATE_ASSIGN_OR_RETURN(json::value out, StoreGrant(std::move(grant), &revision));
  return std::move(Reply{201, std::move(out)}.WithRevision(revision));
}

absl::StatusOr<Reply> Api::V1ListGrants(Call& c) {
  json::array grants;
  for (const store::GrantRecord& g : service_.agents().ActiveGrants(NowUnix())) grants.push_back(GrantJson(g));
  return Reply{200, json::object{{"grants", std::move(grants)}}};
}

absl::StatusOr<Reply> Api::V1GetTask(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(std::string id, PathId(c, "a task id"));
  MANDATE_ASSIGN_OR_RETURN(store::TaskRecord task, service_.agents().GetTask(id));
  json::array grants;
  for (const store::GrantRecord& g : service_.agents().TaskGrants(id, NowUnix())) grants.push_back(GrantJson(g));
  return Reply{200, json::object{{"id", task.id},
                                 {"status", task.status},
                                 {"created_at", task.created_at},
                                 {"completed_at",
                                  task.completed_at.empty() ? json::value(nullptr) : json::value(task.completed_at)},
                                 {"grants", std::move(grants)}}};
}

absl::StatusOr<Reply> Api::V1CompleteTask(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(std::string id, PathId(c, "a task id"));
  if (!c.request.body().empty()) {
    MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
    MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
    MANDATE_RETURN_IF_ERROR(OnlyKeys(*o, {}, kRoot));
  }
  AuditAdmin(c, "task.complete", json::object{{"task", id}});
  uint64_t revision = 0;
  MANDATE_ASSIGN_OR_RETURN(store::TaskRecord task, service_.agents().CompleteTask(id, &revision));
  Reply reply{200, json::object{{"id", task.id},
                                {"status", task.status},
                                {"created_at", task.created_at},
                                {"completed_at", task.completed_at}}};
  return std::move(reply.WithRevision(revision));
}

}  // namespace mandate::server
