#include "agents/agents.h"

#include <algorithm>
#include <chrono>

#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/api_impl.h"

namespace mandate::agents {
namespace {

int64_t SteadyMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool InEffect(const store::GrantRecord& g, int64_t now_unix) { return !g.expires_at || now_unix < *g.expires_at; }

absl::Status CheckStatus(const std::string& status) {
  if (status == "active" || status == "suspended") return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("status must be \"active\" or \"suspended\", got \"", status, "\""));
}

TypedValue Str(std::string s) { return TypedValue{"String", std::move(s)}; }

QueryArg Const(TypedValue v) { return QueryArg{std::move(v), ""}; }
QueryArg Var(std::string name) { return QueryArg{std::nullopt, std::move(name)}; }

// Whether the policy has the predicate at all: a query of one it has not answers nothing (see
// QueryIfDefined), once the request's context and values converted without error.
bool Defines(const Snapshot& snapshot, std::string_view predicate, uint32_t arity) {
  return snapshot.impl().program().FindPredicate(predicate, arity).has_value();
}

// The rate_limit(actor, action, resource, bucket, max, window_seconds) rules that match a request.
absl::StatusOr<std::vector<RateRule>> RateRulesFor(const Snapshot& snapshot, const CheckRequest& req,
                                                   const QueryOptions& options) {
  ConjunctiveQuery q;
  q.calls.push_back(QueryCall{
      "rate_limit",
      {Const(req.actor), Const(Str(req.action)), Const(req.resource), Var("bucket"), Var("max"), Var("window")}});
  absl::StatusOr<QueryResult> r = QueryIfDefined(snapshot, q, options);
  if (!r.ok()) return r.status();
  std::vector<RateRule> rules;
  for (const auto& row : r->rows) {
    if (row.size() != 3 || !row[0] || !row[1] || !row[2] || row[1]->type != "Integer" || row[2]->type != "Integer") {
      return absl::InvalidArgumentError(
          "a rate_limit rule must bind bucket to a value and max and window_seconds to integers");
    }
    RateRule rule;
    rule.bucket = ToString(*row[0]);
    if (!absl::SimpleAtoi(row[1]->id, &rule.max) || !absl::SimpleAtoi(row[2]->id, &rule.window_seconds) ||
        rule.max < 0 || rule.window_seconds <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("rate_limit rule for bucket ", rule.bucket, ": max must be >= 0 and window_seconds > 0"));
    }
    if (row[0]->type == "String") rule.bucket = row[0]->id;
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace

Agents::Agents(store::Store* store, Config config, Clock clock, Approvals::WallClock wall_clock)
    : store_(store),
      config_(std::move(config)),
      clock_(clock ? std::move(clock) : Clock(SteadyMillis)),
      approvals_(store, config_, std::move(wall_clock)) {}

absl::StatusOr<std::unique_ptr<Agents>> Agents::Open(store::Store* store, Config config, Clock clock,
                                                     Approvals::WallClock wall_clock) {
  absl::StatusOr<std::vector<store::AgentRecord>> agents = store->ListAgents();
  if (!agents.ok()) return agents.status();
  absl::StatusOr<std::vector<store::GrantRecord>> grants = store->ListGrants();
  if (!grants.ok()) return grants.status();
  std::unique_ptr<Agents> a(new Agents(store, std::move(config), std::move(clock), std::move(wall_clock)));
  a->Install(*std::move(agents), *std::move(grants));
  if (a->config_.purge_interval_seconds > 0) a->purger_ = std::thread([p = a.get()] { p->PurgeLoop(); });
  return a;
}

void Agents::Install(std::vector<store::AgentRecord> agents, std::vector<store::GrantRecord> grants) {
  auto map = std::make_shared<AgentMap>();
  for (store::AgentRecord& r : agents) map->emplace(r.id, std::move(r));
  auto list = std::make_shared<const GrantList>(std::move(grants));
  std::lock_guard<std::mutex> l(state_mu_);
  agents_ = std::move(map);
  grants_ = std::move(list);
}

absl::Status Agents::Reload() {
  std::lock_guard<std::mutex> w(write_mu_);
  absl::StatusOr<std::vector<store::AgentRecord>> agents = store_->ListAgents();
  if (!agents.ok()) return agents.status();
  absl::StatusOr<std::vector<store::GrantRecord>> grants = store_->ListGrants();
  if (!grants.ok()) return grants.status();
  Install(*std::move(agents), *std::move(grants));
  return absl::OkStatus();
}

Agents::~Agents() {
  {
    std::lock_guard<std::mutex> l(purge_mu_);
    stopping_ = true;
  }
  purge_cv_.notify_all();
  if (purger_.joinable()) purger_.join();
}

void Agents::PurgeLoop() {
  std::unique_lock<std::mutex> l(purge_mu_);
  while (!purge_cv_.wait_for(l, std::chrono::seconds(config_.purge_interval_seconds), [this] { return stopping_; })) {
    l.unlock();
    // A failure is retried at the next interval; expired grants are invisible meanwhile.
    PurgeExpiredGrants(absl::ToUnixSeconds(absl::Now())).IgnoreError();
    approvals_.ExpireDue().IgnoreError();
    l.lock();
  }
}

std::shared_ptr<const Agents::AgentMap> Agents::agents() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return agents_;
}

std::shared_ptr<const Agents::GrantList> Agents::grants() const {
  std::lock_guard<std::mutex> l(state_mu_);
  return grants_;
}

// ---- Registry ----------------------------------------------------------------------------------

absl::StatusOr<store::AgentRecord> Agents::CreateAgent(store::AgentRecord agent, uint64_t* revision) {
  if (absl::Status s = CheckStatus(agent.status); !s.ok()) return s;
  std::lock_guard<std::mutex> w(write_mu_);
  if (agents()->contains(agent.id)) {
    return absl::AlreadyExistsError(absl::StrCat("agent \"", agent.id, "\" already exists; PATCH it instead"));
  }
  absl::StatusOr<store::AgentRecord> stored = store_->PutAgent(agent, revision);
  if (!stored.ok()) return stored.status();
  auto next = std::make_shared<AgentMap>(*agents());
  (*next)[stored->id] = *stored;
  std::lock_guard<std::mutex> l(state_mu_);
  agents_ = std::move(next);
  return stored;
}

absl::StatusOr<store::AgentRecord> Agents::UpdateAgent(const std::string& id, const AgentPatch& patch,
                                                       uint64_t* revision) {
  if (patch.status) {
    if (absl::Status s = CheckStatus(*patch.status); !s.ok()) return s;
  }
  std::lock_guard<std::mutex> w(write_mu_);
  std::shared_ptr<const AgentMap> current = agents();
  auto it = current->find(id);
  if (it == current->end()) return absl::NotFoundError(absl::StrCat("no agent \"", id, "\""));
  store::AgentRecord updated = it->second;
  if (patch.owner) updated.owner = *patch.owner;
  if (patch.description) updated.description = *patch.description;
  if (patch.status) updated.status = *patch.status;
  absl::StatusOr<store::AgentRecord> stored = store_->PutAgent(updated, revision);
  if (!stored.ok()) return stored.status();
  auto next = std::make_shared<AgentMap>(*current);
  (*next)[id] = *stored;
  std::lock_guard<std::mutex> l(state_mu_);
  agents_ = std::move(next);
  return stored;
}

absl::Status Agents::DeleteAgent(const std::string& id, uint64_t* revision) {
  std::lock_guard<std::mutex> w(write_mu_);
  if (absl::Status s = store_->DeleteAgent(id, revision); !s.ok()) return s;
  auto next = std::make_shared<AgentMap>(*agents());
  next->erase(id);
  std::lock_guard<std::mutex> l(state_mu_);
  agents_ = std::move(next);
  return absl::OkStatus();
}

std::optional<store::AgentRecord> Agents::GetAgent(const std::string& id) const {
  std::shared_ptr<const AgentMap> current = agents();
  auto it = current->find(id);
  if (it == current->end()) return std::nullopt;
  return it->second;
}

std::vector<store::AgentRecord> Agents::ListAgents() const {
  std::vector<store::AgentRecord> out;
  const std::shared_ptr<const AgentMap> map = agents();  // kept alive for the loop
  for (const auto& [id, a] : *map) out.push_back(a);
  return out;
}

// ---- Grants ------------------------------------------------------------------------------------

absl::StatusOr<std::vector<store::GrantRecord>> Agents::Grant(std::vector<Fact> facts, const std::string& task,
                                                              std::optional<int64_t> expires_at, uint64_t* revision) {
  if (task.empty() && !expires_at) {
    return absl::InvalidArgumentError("a grant needs a task, an expiry, or both");
  }
  std::vector<store::GrantRecord> records;
  records.reserve(facts.size());
  for (Fact& f : facts) {
    store::GrantRecord g;
    g.fact = std::move(f);
    g.task = task;
    g.expires_at = expires_at;
    records.push_back(std::move(g));
  }
  std::lock_guard<std::mutex> w(write_mu_);
  if (absl::Status s = store_->AddGrants(&records, revision); !s.ok()) return s;
  auto next = std::make_shared<GrantList>(*grants());
  next->insert(next->end(), records.begin(), records.end());
  std::lock_guard<std::mutex> l(state_mu_);
  grants_ = std::move(next);
  return records;
}

absl::StatusOr<store::TaskRecord> Agents::CompleteTask(const std::string& id, uint64_t* revision) {
  std::lock_guard<std::mutex> w(write_mu_);
  absl::StatusOr<store::TaskRecord> task = store_->CompleteTask(id, revision);
  if (!task.ok()) return task;
  auto next = std::make_shared<GrantList>();
  const std::shared_ptr<const GrantList> list = grants();  // kept alive for the loop
  for (const store::GrantRecord& g : *list) {
    if (g.task != id) next->push_back(g);
  }
  std::lock_guard<std::mutex> l(state_mu_);
  grants_ = std::move(next);
  return task;
}

absl::StatusOr<store::TaskRecord> Agents::GetTask(const std::string& id) const { return store_->GetTask(id); }

std::vector<store::GrantRecord> Agents::TaskGrants(const std::string& id, int64_t now_unix) const {
  std::vector<store::GrantRecord> out;
  const std::shared_ptr<const GrantList> list = grants();  // kept alive for the loop
  for (const store::GrantRecord& g : *list) {
    if (g.task == id && InEffect(g, now_unix)) out.push_back(g);
  }
  return out;
}

std::vector<store::GrantRecord> Agents::ActiveGrants(int64_t now_unix) const {
  std::vector<store::GrantRecord> out;
  const std::shared_ptr<const GrantList> list = grants();  // kept alive for the loop
  for (const store::GrantRecord& g : *list) {
    if (InEffect(g, now_unix)) out.push_back(g);
  }
  return out;
}

std::vector<Fact> Agents::ActiveGrantFacts(int64_t now_unix) const {
  std::vector<Fact> out;
  const std::shared_ptr<const GrantList> list = grants();  // kept alive for the loop
  for (const store::GrantRecord& g : *list) {
    if (InEffect(g, now_unix)) out.push_back(g.fact);
  }
  return out;
}

absl::StatusOr<int64_t> Agents::PurgeExpiredGrants(int64_t now_unix) {
  std::lock_guard<std::mutex> w(write_mu_);
  absl::StatusOr<int64_t> n = store_->PurgeExpiredGrants(now_unix);
  if (!n.ok()) return n;
  auto next = std::make_shared<GrantList>();
  const std::shared_ptr<const GrantList> list = grants();  // kept alive for the loop
  for (const store::GrantRecord& g : *list) {
    if (InEffect(g, now_unix)) next->push_back(g);
  }
  std::lock_guard<std::mutex> l(state_mu_);
  grants_ = std::move(next);
  return n;
}

// ---- Decisions ---------------------------------------------------------------------------------

std::vector<Fact> Agents::RequestFacts(const CheckRequest& req) const {
  std::vector<Fact> granted = ActiveGrantFacts(req.now_unix);
  std::vector<Fact> facts;
  // One allocation: acts_for and the owners below add at most 2 * on_behalf_of + 2 facts.
  facts.reserve(req.context_facts.size() + req.context.size() + granted.size() + 2 * req.on_behalf_of.size() + 2);
  facts.insert(facts.end(), req.context_facts.begin(), req.context_facts.end());
  for (const auto& [key, value] : req.context) facts.push_back(Fact{"context", {Str(key), value}});
  const TypedValue* from = &req.actor;
  for (const TypedValue& p : req.on_behalf_of) {
    facts.push_back(Fact{"acts_for", {*from, p}});
    from = &p;
  }
  facts.insert(facts.end(), std::make_move_iterator(granted.begin()), std::make_move_iterator(granted.end()));
  // The owners of the registered agents the request names.
  std::shared_ptr<const AgentMap> registry = agents();
  std::vector<const TypedValue*> named{&req.actor, &req.resource};
  for (const TypedValue& p : req.on_behalf_of) named.push_back(&p);
  std::vector<std::string> seen;
  for (const TypedValue* v : named) {
    if (v->type != config_.actor_type || std::find(seen.begin(), seen.end(), v->id) != seen.end()) continue;
    seen.push_back(v->id);
    auto it = registry->find(v->id);
    if (it == registry->end() || it->second.owner.type.empty()) continue;
    facts.push_back(Fact{"has_relation", {*v, Str("owner"), it->second.owner}});
  }
  return facts;
}

CheckResult Agents::Check(const Snapshot& snapshot, const CheckRequest& req) {
  CheckResult out = Evaluate(snapshot, req);
  if (out.approval_step) FinishApproval(req, &out);
  return out;
}

CheckResult Agents::Evaluate(const Snapshot& snapshot, const CheckRequest& req) {
  CheckResult out;
  auto deny = [&](const char* code, std::string message) {
    out.allowed = false;
    out.reasons.push_back(Reason{code, std::move(message)});
    return out;
  };
  if (req.on_behalf_of.size() > static_cast<size_t>(std::max(0, config_.max_chain_length))) {
    return deny(kChainTooLong, absl::StrCat("on_behalf_of names ", req.on_behalf_of.size(),
                                            " principals; this server allows at most ", config_.max_chain_length));
  }
  std::vector<const TypedValue*> chain{&req.actor};
  for (const TypedValue& p : req.on_behalf_of) chain.push_back(&p);
  {
    std::shared_ptr<const AgentMap> registry = agents();
    for (const TypedValue* p : chain) {
      if (p->type != config_.actor_type) continue;
      auto it = registry->find(p->id);
      if (it != registry->end() && it->second.status == "suspended") {
        return deny(kAgentSuspended, absl::StrCat(ToString(*p), " is suspended"));
      }
    }
  }

  QueryOptions options;
  options.context_facts = RequestFacts(req);
  options.now_unix = req.now_unix;
  options.limits = req.limits;
  // Up to chain + 3 queries share the context: convert it once.
  options.prepared_context = snapshot.PrepareContext(options.context_facts);

  if (config_.require_delegation_fact) {
    for (size_t i = 1; i < chain.size(); ++i) {
      ConjunctiveQuery q;
      q.calls.push_back(QueryCall{"delegates", {Const(*chain[i]), Const(*chain[i - 1])}});
      absl::StatusOr<QueryResult> r = QueryIfDefined(snapshot, q, options);
      if (!r.ok()) return deny(kEvaluationError, std::string(r.status().message()));
      if (r->rows.empty()) {
        return deny(kDelegationNotBacked,
                    absl::StrCat("no delegates(", ToString(*chain[i]), ", ", ToString(*chain[i - 1]),
                                 ") fact backs on_behalf_of[", i - 1, "]: ", ToString(*chain[i]),
                                 " has not delegated to ", ToString(*chain[i - 1])));
      }
    }
  }

  options.explain = req.explain;
  bool all_allowed = true;
  for (size_t i = 0; i < chain.size(); ++i) {
    Decision d = snapshot.Check(*chain[i], req.action, req.resource, options);
    for (const std::string& r : d.reasons) out.reasons.push_back(Reason{kEvaluationError, r});
    if (!d.reasons.empty()) d.allowed = false;  // fail closed
    if (req.explain) {
      out.evaluations.push_back(
          CheckResult::Evaluation{*chain[i], d.allowed, d.explanation ? *std::move(d.explanation) : Explanation{}});
    }
    if (d.allowed) continue;
    all_allowed = false;
    const std::string what = absl::StrCat(req.action, " ", ToString(req.resource));
    if (i == 0) {
      out.reasons.push_back(Reason{kActorDenied, absl::StrCat(ToString(req.actor), " may not ", what)});
    } else {
      out.reasons.push_back(
          Reason{kDelegatorDenied, absl::StrCat(ToString(*chain[i]), " (on_behalf_of[", i - 1, "]) may not ", what,
                                                ", so ", ToString(req.actor), " may not do it on its behalf")});
    }
  }
  if (!all_allowed) return out;

  options.explain = false;
  // Every check above converted the context, actor, action and resource without error, so the
  // queries of predicates the policy does not have are skipped: they would answer nothing.
  absl::StatusOr<std::vector<RateRule>> rules =
      Defines(snapshot, "rate_limit", 6) ? RateRulesFor(snapshot, req, options) : std::vector<RateRule>{};
  if (!rules.ok()) return deny(kEvaluationError, std::string(rules.status().message()));
  absl::StatusOr<bool> needs_approval = Defines(snapshot, "requires_approval", 3)
                                            ? RequiresApproval(snapshot, req.actor, req.action, req.resource, options)
                                            : false;
  if (!needs_approval.ok()) return deny(kEvaluationError, std::string(needs_approval.status().message()));
  if (*needs_approval) {
    absl::StatusOr<std::optional<int64_t>> ttl = PolicyApprovalTtl(snapshot, req.actor, req.action, req.resource, options);
    if (!ttl.ok()) return deny(kEvaluationError, std::string(ttl.status().message()));
    // Rate limits count allowed decisions: they are taken once an approval is used (FinishApproval).
    boost::json::array why{boost::json::object{
        {"code", "requires_approval"},
        {"message", absl::StrCat("requires_approval(", ToString(req.actor), ", \"", req.action, "\", ",
                                 ToString(req.resource), ") holds: a person must approve this request")}}};
    const std::string what = absl::StrCat(req.action, " ", ToString(req.resource));
    std::string principals;
    for (const TypedValue& p : req.on_behalf_of) absl::StrAppend(&principals, principals.empty() ? "" : ", ", ToString(p));
    why.push_back(boost::json::object{
        {"code", "allowed"},
        {"message", absl::StrCat("the policy allows ", ToString(req.actor), " to ", what,
                                 principals.empty() ? "" : absl::StrCat(", and every principal it acts for (",
                                                                        principals, ")"))}});
    out.approval_step = CheckResult::ApprovalStep{*std::move(rules), boost::json::serialize(why), *ttl};
    return out;
  }
  return TakeRate(req, *rules, out);
}

CheckResult Agents::TakeRate(const CheckRequest& req, const std::vector<RateRule>& rules, CheckResult out) {
  const RateVerdict v = limiter_.Acquire(ToString(req.actor), rules, clock_());
  if (!v.allowed) {
    out.allowed = false;
    out.retry_after_seconds = v.retry_after_seconds;
    out.reasons.push_back(Reason{
        kRateLimited, absl::StrCat(ToString(req.actor), " reached the limit of ", v.rule.max, " per ",
                                   v.rule.window_seconds, "s of bucket \"", v.rule.bucket, "\"; retry in ",
                                   v.retry_after_seconds, "s")});
    return out;
  }
  out.allowed = true;
  return out;
}

namespace {

boost::json::object ContextJson(const CheckRequest& req) {
  boost::json::object o;
  for (const auto& [key, v] : req.context) {
    int64_t n = 0;
    if (v.type == "Integer" && absl::SimpleAtoi(v.id, &n)) {
      o[key] = n;
    } else if (v.type == "Boolean") {
      o[key] = v.id == "true";
    } else {
      o[key] = v.id;
    }
  }
  return o;
}

}  // namespace

void Agents::FinishApproval(const CheckRequest& req, CheckResult* out) {
  if (!out->approval_step) return;
  CheckResult::ApprovalStep step = *std::move(out->approval_step);
  out->approval_step.reset();
  out->allowed = false;
  store::ApprovalRecord fresh;
  fresh.request_key = RequestKey(req.actor, req.on_behalf_of, req.action, req.resource, req.arguments_digest);
  fresh.actor = req.actor;
  fresh.on_behalf_of = req.on_behalf_of;
  fresh.action = req.action;
  fresh.resource = req.resource;
  fresh.context_json = boost::json::serialize(ContextJson(req));
  fresh.arguments_digest = req.arguments_digest;
  fresh.reasons_json = std::move(step.reasons_json);
  absl::StatusOr<store::ApprovalResolution> r = approvals_.Resolve(std::move(fresh), step.ttl_seconds);
  if (!r.ok()) {
    const bool full = r.status().code() == absl::StatusCode::kResourceExhausted;
    out->reasons.push_back(Reason{full ? kTooManyPendingApprovals : kEvaluationError,
                                  full ? std::string(r.status().message())
                                       : absl::StrCat("approvals: ", r.status().message())});
    return;
  }
  const std::string what = absl::StrCat(req.action, " ", ToString(req.resource));
  out->approval = r->record;
  switch (r->kind) {
    case store::ApprovalResolution::Kind::kUsed:
      out->approval_events.push_back(ApprovalEvent{"used", r->record, std::nullopt, ""});
      *out = TakeRate(req, step.rate_rules, std::move(*out));
      return;
    case store::ApprovalResolution::Kind::kDenied:
      out->reasons.push_back(
          Reason{kApprovalDenied, absl::StrCat(ToString(r->record.approver), " denied approval ", r->record.id,
                                               " for ", ToString(req.actor), " to ", what,
                                               r->record.note.empty() ? "" : absl::StrCat(": ", r->record.note))});
      return;
    case store::ApprovalResolution::Kind::kCreated:
      out->approval_events.push_back(ApprovalEvent{"requested", r->record, std::nullopt, ""});
      [[fallthrough]];
    case store::ApprovalResolution::Kind::kPending:
      out->approval_required = true;
      out->reasons.push_back(Reason{kApprovalRequired, absl::StrCat(ToString(req.actor), " needs a person's approval to ",
                                                                    what, "; approval ", r->record.id, " is pending")});
      return;
  }
}

absl::StatusOr<store::ApprovalRecord> Agents::DecideApproval(const Snapshot& snapshot, const std::string& id,
                                                             const ApprovalDecisionRequest& decision,
                                                             std::vector<ApprovalEvent>* events, uint64_t* revision) {
  absl::StatusOr<store::ApprovalRecord> a = approvals_.Get(id);
  if (!a.ok()) return a.status();
  if (a->status != "pending") {
    return absl::AbortedError(absl::StrCat("approval \"", id, "\" is ", a->status, ", not pending"));
  }
  CheckRequest req;
  req.actor = a->actor;
  req.on_behalf_of = a->on_behalf_of;
  req.action = a->action;
  req.resource = a->resource;
  req.now_unix = approvals_.Now();
  QueryOptions options;
  options.context_facts = RequestFacts(req);
  options.now_unix = req.now_unix;
  options.prepared_context = snapshot.PrepareContext(options.context_facts);
  if (absl::Status may = MayApprove(snapshot, *a, decision.approver, options); !may.ok()) {
    events->push_back(ApprovalEvent{"refused", *a, decision.approver, std::string(may.message())});
    return may;
  }
  // Approved, it stays usable as long as it waited for a decision (approval_ttl or the config)
  // unless the approver says otherwise.
  absl::StatusOr<store::ApprovalRecord> decided =
      approvals_.Decide(id, decision, a->expires_at - a->created_at, revision);
  if (decided.ok()) {
    events->push_back(ApprovalEvent{decision.approve ? "approved" : "denied", *decided, decision.approver, ""});
  }
  return decided;
}

}  // namespace mandate::agents
