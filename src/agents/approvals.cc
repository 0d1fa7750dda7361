#include "agents/approvals.h"

#include <algorithm>
#include <utility>

#include <boost/json.hpp>
#include <openssl/rand.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace mandate::agents {
namespace {

namespace json = boost::json;

int64_t SystemSeconds() { return absl::ToUnixSeconds(absl::Now()); }

QueryArg Const(TypedValue v) { return QueryArg{std::move(v), ""}; }

// Whether pred(args...) holds, every argument bound.
absl::StatusOr<bool> Holds(const Snapshot& snapshot, std::string predicate, std::vector<TypedValue> args,
                           const QueryOptions& options) {
  ConjunctiveQuery q;
  QueryCall call{std::move(predicate), {}};
  for (TypedValue& a : args) call.args.push_back(Const(std::move(a)));
  q.calls.push_back(std::move(call));
  absl::StatusOr<QueryResult> r = QueryIfDefined(snapshot, q, options);
  if (!r.ok()) return r.status();
  return !r->rows.empty();
}

void AppendCanonical(const json::value& v, std::string* out) {
  switch (v.kind()) {
    case json::kind::object: {
      const json::object& o = v.get_object();
      std::vector<const json::key_value_pair*> members;
      for (const json::key_value_pair& kv : o) members.push_back(&kv);
      std::sort(members.begin(), members.end(),
                [](const json::key_value_pair* a, const json::key_value_pair* b) { return a->key() < b->key(); });
      out->push_back('{');
      for (size_t i = 0; i < members.size(); ++i) {
        if (i > 0) out->push_back(',');
        out->append(json::serialize(json::value(members[i]->key())));
        out->push_back(':');
        AppendCanonical(members[i]->value(), out);
      }
      out->push_back('}');
      return;
    }
    case json::kind::array: {
      out->push_back('[');
      const json::array& a = v.get_array();
      for (size_t i = 0; i < a.size(); ++i) {
        if (i > 0) out->push_back(',');
        AppendCanonical(a[i], out);
      }
      out->push_back(']');
      return;
    }
    default:
      out->append(json::serialize(v));
  }
}

std::string NewApprovalId() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    // The OpenSSL generator does not fail once seeded; fall back to a hash of the clock and address
    // rather than refusing the request (ids must be unique, and the store refuses a duplicate).
    const std::string seed = absl::StrCat(absl::GetCurrentTimeNanos(), ":", reinterpret_cast<uintptr_t>(&bytes));
    return absl::StrCat("apr_", store::Sha256Hex(seed).substr(0, 32));
  }
  return absl::StrCat("apr_", absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes))));
}

}  // namespace

absl::StatusOr<QueryResult> QueryIfDefined(const Snapshot& snapshot, const ConjunctiveQuery& q,
                                           const QueryOptions& options) {
  absl::StatusOr<QueryResult> r = snapshot.Query(q, options);
  if (!r.ok() && absl::StartsWith(r.status().message(), "unknown predicate")) return QueryResult{};
  if (r.ok() && !r->reasons.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat("evaluation stopped: ", r->reasons.front()));
  }
  return r;
}

std::string CanonicalJson(const json::value& v) {
  std::string out;
  AppendCanonical(v, &out);
  return out;
}

std::string ArgumentsDigest(const json::value& arguments) { return store::Sha256Hex(CanonicalJson(arguments)); }

std::string RequestKey(const TypedValue& actor, const std::vector<TypedValue>& chain, const std::string& action,
                       const TypedValue& resource, const std::string& arguments_digest) {
  auto typed = [](const TypedValue& v) { return json::object{{"type", v.type}, {"id", v.id}}; };
  json::array principals;
  for (const TypedValue& p : chain) principals.push_back(typed(p));
  const json::object binding{{"actor", typed(actor)},
                             {"on_behalf_of", std::move(principals)},
                             {"action", action},
                             {"resource", typed(resource)},
                             {"arguments_digest", arguments_digest}};
  return store::Sha256Hex(CanonicalJson(binding));
}

absl::StatusOr<bool> RequiresApproval(const Snapshot& snapshot, const TypedValue& actor, const std::string& action,
                                      const TypedValue& resource, const QueryOptions& options) {
  return Holds(snapshot, "requires_approval", {actor, TypedValue{"String", action}, resource}, options);
}

absl::StatusOr<std::optional<int64_t>> PolicyApprovalTtl(const Snapshot& snapshot, const TypedValue& actor,
                                                         const std::string& action, const TypedValue& resource,
                                                         const QueryOptions& options) {
  ConjunctiveQuery q;
  q.calls.push_back(QueryCall{"approval_ttl",
                              {Const(actor), Const(TypedValue{"String", action}), Const(resource), QueryArg{std::nullopt, "seconds"}}});
  absl::StatusOr<QueryResult> r = QueryIfDefined(snapshot, q, options);
  if (!r.ok()) return r.status();
  std::optional<int64_t> ttl;
  for (const auto& row : r->rows) {
    int64_t seconds = 0;
    if (row.size() != 1 || !row[0] || row[0]->type != "Integer" || !absl::SimpleAtoi(row[0]->id, &seconds) ||
        seconds < 1 || seconds > kMaxApprovalTtlSeconds) {
      return absl::InvalidArgumentError(absl::StrCat(
          "an approval_ttl rule must bind seconds to an integer from 1 to ", kMaxApprovalTtlSeconds));
    }
    ttl = ttl ? std::min(*ttl, seconds) : seconds;
  }
  return ttl;
}

absl::Status MayApprove(const Snapshot& snapshot, const store::ApprovalRecord& a, const TypedValue& approver,
                        const QueryOptions& options) {
  const std::string who = ToString(approver);
  if (approver == a.actor) {
    return absl::PermissionDeniedError(absl::StrCat(who, " made this request and may not approve it"));
  }
  const std::vector<TypedValue> args{approver, a.actor, TypedValue{"String", a.action}, a.resource};
  absl::StatusOr<bool> can = Holds(snapshot, "can_approve", args, options);
  if (!can.ok()) return absl::PermissionDeniedError(absl::StrCat("can_approve could not be evaluated: ", can.status().message()));
  if (!*can) {
    return absl::PermissionDeniedError(absl::StrCat("can_approve(", who, ", ", ToString(a.actor), ", \"", a.action,
                                                    "\", ", ToString(a.resource), ") does not hold"));
  }
  if (std::find(a.on_behalf_of.begin(), a.on_behalf_of.end(), approver) != a.on_behalf_of.end()) {
    absl::StatusOr<bool> own = Holds(snapshot, "can_approve_in_chain", args, options);
    if (!own.ok()) {
      return absl::PermissionDeniedError(
          absl::StrCat("can_approve_in_chain could not be evaluated: ", own.status().message()));
    }
    if (!*own) {
      return absl::PermissionDeniedError(
          absl::StrCat(who, " is in the request's on_behalf_of chain and may approve it only where the policy says so "
                            "with a can_approve_in_chain rule"));
    }
  }
  return absl::OkStatus();
}

Approvals::Approvals(store::Store* store, const Config& config, WallClock clock)
    : store_(store), config_(config), clock_(clock ? std::move(clock) : WallClock(SystemSeconds)) {}

absl::StatusOr<store::ApprovalResolution> Approvals::Resolve(store::ApprovalRecord fresh,
                                                             std::optional<int64_t> ttl_seconds) {
  const int64_t now = Now();
  fresh.id = NewApprovalId();
  fresh.status = "pending";
  fresh.created_at = now;
  fresh.expires_at = now + ttl_seconds.value_or(std::max<int64_t>(1, config_.approval_ttl_seconds));
  fresh.decided_at.reset();
  fresh.approver = TypedValue{};
  fresh.note.clear();
  fresh.uses_left = 0;
  return store_->ResolveApproval(fresh, now, config_.max_pending_approvals);
}

absl::StatusOr<store::ApprovalRecord> Approvals::Get(const std::string& id) const {
  return store_->GetApproval(id, clock_());
}

absl::StatusOr<std::vector<store::ApprovalRecord>> Approvals::List(store::ApprovalFilter filter) const {
  filter.now_unix = clock_();
  return store_->ListApprovals(filter);
}

absl::StatusOr<store::ApprovalRecord> Approvals::Decide(const std::string& id, const ApprovalDecisionRequest& d,
                                                        int64_t default_ttl_seconds, uint64_t* revision) {
  if (!d.approve && (d.uses || d.ttl_seconds)) {
    return absl::InvalidArgumentError("uses and ttl_seconds apply to an approval, not to a denial");
  }
  const int64_t uses = d.uses.value_or(1);
  const int64_t ttl = d.ttl_seconds.value_or(std::max<int64_t>(1, default_ttl_seconds));
  if (uses < 1 || uses > kMaxApprovalUses) {
    return absl::InvalidArgumentError(absl::StrCat("uses must be from 1 to ", kMaxApprovalUses));
  }
  if (ttl < 1 || ttl > kMaxApprovalTtlSeconds) {
    return absl::InvalidArgumentError(absl::StrCat("ttl_seconds must be from 1 to ", kMaxApprovalTtlSeconds));
  }
  store::ApprovalDecision decision;
  decision.approve = d.approve;
  decision.approver = d.approver;
  decision.note = d.note;
  decision.decided_at = Now();
  decision.uses = uses;
  decision.expires_at = decision.decided_at + ttl;
  absl::StatusOr<store::ApprovalRecord> out = store_->DecideApproval(id, decision, revision);
  if (!out.ok() && out.status().code() == absl::StatusCode::kFailedPrecondition) {
    return absl::AbortedError(out.status().message());
  }
  if (!out.ok()) return out;
  std::vector<std::function<void()>> wake;
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [token, w] : watchers_) {
      if (w.first == id) wake.push_back(w.second);
    }
  }
  for (const auto& w : wake) w();
  return out;
}

absl::Status Approvals::ExpireDue() {
  absl::StatusOr<std::vector<store::ApprovalRecord>> expired = store_->ExpireApprovals(Now());
  if (!expired.ok()) return expired.status();
  // Held while the listener runs, so that SetExpiryListener(nullptr) returns only once no call to
  // the old listener is in progress.
  std::lock_guard<std::mutex> l(listener_mu_);
  if (on_expired_) {
    for (store::ApprovalRecord& a : *expired) on_expired_(ApprovalEvent{"expired", std::move(a), std::nullopt, ""});
  }
  return absl::OkStatus();
}

void Approvals::SetExpiryListener(Listener listener) {
  std::lock_guard<std::mutex> l(listener_mu_);
  on_expired_ = std::move(listener);
}

uint64_t Approvals::Watch(const std::string& id, std::function<void()> wake) {
  std::lock_guard<std::mutex> l(mu_);
  const uint64_t token = next_token_++;
  watchers_.emplace(token, std::make_pair(id, std::move(wake)));
  return token;
}

void Approvals::Unwatch(uint64_t token) {
  std::lock_guard<std::mutex> l(mu_);
  watchers_.erase(token);
}

}  // namespace mandate::agents
