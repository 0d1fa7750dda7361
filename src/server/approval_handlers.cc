// Handlers of human approvals (docs/approvals.md): GET /v1/approvals and /v1/approvals/{id},
// POST /v1/approvals/{id}/approve and /deny, and the part of POST /v1/check that needs an approval
// (the store call and the long poll of wait_seconds).
//
// Threading: a /v1/check is evaluated on the I/O thread; when it needs an approval, the approval
// step (one Store call) runs on the blocking pool. A long poll then holds no thread: it waits on an
// io_context timer that a decision recorded by this process cancels at once; every second it also
// re-reads the approval from the store, so that a decision made by another node sharing the
// database is seen too. When the approval is decided (or expires, or the wait ends), the check is
// evaluated again against the current snapshot and answered.
#include <algorithm>
#include <atomic>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "agents/approvals.h"
#include "audit/log.h"
#include "server/api.h"
#include "server/status_macros.h"
#include "store/wire_json.h"

namespace mandate::server {

namespace json = boost::json;
namespace net = boost::asio;
using store::EncodeTypedValue;

// A /v1/check waiting for its approval to be decided.
struct CheckInFlight {
  agents::CheckRequest request;
  agents::CheckResult result;
  json::value body;
  uint64_t revision = 0;  // the store revision `result` was evaluated at
  std::chrono::steady_clock::time_point deadline;
  std::vector<agents::ApprovalEvent> events;  // steps of earlier rounds, audited with the answer
  // The wait: a timer on its own strand (woken early by a local decision), and the watch token.
  std::unique_ptr<net::strand<net::io_context::executor_type>> strand;
  std::unique_ptr<net::steady_timer> timer;
  uint64_t watch = 0;
  bool woken = false;  // on the strand
};

namespace {

const JsonPointer kRoot;

// The longest a /v1/check may wait for a decision, and how often a waiting check re-reads its
// approval (for decisions recorded by other nodes).
constexpr int64_t kMaxWaitSeconds = 300;
constexpr std::chrono::seconds kRecheckInterval{1};
constexpr size_t kMaxNoteBytes = 4096;
constexpr size_t kMaxListed = 1000;

std::string Rfc3339(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(unix_seconds), absl::UTCTimeZone());
}

// A stored JSON text (written by this server), or `fallback` if it does not parse.
json::value StoredJson(const std::string& text, json::value fallback) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  return ec ? fallback : v;
}

json::object ApprovalJson(const store::ApprovalRecord& a, const std::string& base) {
  json::array chain;
  for (const TypedValue& p : a.on_behalf_of) chain.push_back(EncodeTypedValue(p));
  json::object o{{"id", a.id},
                 {"status", a.status},
                 {"actor", EncodeTypedValue(a.actor)},
                 {"on_behalf_of", std::move(chain)},
                 {"action", a.action},
                 {"resource", EncodeTypedValue(a.resource)},
                 {"context", StoredJson(a.context_json, json::object{})},
                 {"reasons", StoredJson(a.reasons_json, json::array{})},
                 {"created_at", Rfc3339(a.created_at)},
                 {"expires_at", Rfc3339(a.expires_at)},
                 {"uses_left", a.uses_left},
                 {"url", absl::StrCat(base, "/ui/#/approvals/", a.id)}};
  if (!a.arguments_digest.empty()) o["arguments_digest"] = a.arguments_digest;
  if (a.decided_at) o["decided_at"] = Rfc3339(*a.decided_at);
  if (!a.approver.type.empty()) o["approver"] = EncodeTypedValue(a.approver);
  if (!a.note.empty()) o["note"] = a.note;
  return o;
}

// The audit record of one approval step. Its actor is who acted: the agent for requested, used and
// expired; the approver for approved, denied and refused.
audit::Entry ApprovalEntry(const agents::ApprovalEvent& e, const std::string& base, const std::string& agent_type) {
  audit::Entry r;
  r.kind = "approval";
  const bool by_approver = e.by.has_value();
  r.actor = ToString(by_approver ? *e.by : e.approval.actor);
  r.agent = !by_approver && e.approval.actor.type == agent_type;
  if (!by_approver) {
    for (const TypedValue& p : e.approval.on_behalf_of) r.chain.push_back(ToString(p));
  }
  r.action = absl::StrCat("approval.", e.event);
  r.resource = ToString(e.approval.resource);
  if (e.event == "refused") {
    r.decision = "deny";
    r.reasons.push_back(e.message);
  }
  // Webhook receivers subscribe to records of kind "approval"; `event` says what happened.
  const bool decided = e.event == "approved" || e.event == "denied";
  r.detail["event"] = decided ? "approval_decided" : absl::StrCat("approval_", e.event);
  r.detail["approval"] = ApprovalJson(e.approval, base);
  return r;
}

absl::Status BadParam(absl::string_view name, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("query parameter `", name, "`: ", problem));
}

absl::StatusOr<std::string> ApprovalId(const Call& c) {
  std::optional<std::string> id = c.PathParam("id");
  if (!id || id->empty() || id->size() > 256) return absl::InvalidArgumentError("invalid path: bad approval id");
  return *id;
}

absl::StatusOr<TypedValue> TypedParam(absl::string_view name, absl::string_view text) {
  std::pair<std::string, std::string> parts = absl::StrSplit(text, absl::MaxSplits(':', 1));
  if (parts.first.empty() || parts.second.empty()) return BadParam(name, "expected Type:id, e.g. Agent:pay-bot");
  absl::StatusOr<TypedValue> v = CheckValue(TypedValue{parts.first, parts.second}, kRoot);
  if (!v.ok()) return BadParam(name, v.status().message());
  return v;
}

}  // namespace

absl::StatusOr<agents::ApprovalDecisionRequest> DecodeApprovalDecision(const json::value& body, bool approve) {
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  for (const auto& kv : *o) {
    const std::string_view k = kv.key();
    if (k != "approver" && k != "note" && k != "uses" && k != "ttl_seconds") {
      return kRoot.Key(k).Error("unknown field");
    }
  }
  agents::ApprovalDecisionRequest d;
  d.approve = approve;
  if (const json::value* a = o->if_contains("approver"); a != nullptr && !a->is_null()) {
    MANDATE_ASSIGN_OR_RETURN(TypedValue approver, DecodeValue(*a, kRoot.Key("approver")));
    MANDATE_ASSIGN_OR_RETURN(d.approver, CheckValue(std::move(approver), kRoot.Key("approver")));
  }
  MANDATE_ASSIGN_OR_RETURN(std::optional<std::string> note, OptionalString(*o, "note", kRoot));
  if (note && note->size() > kMaxNoteBytes) {
    return kRoot.Key("note").Error(absl::StrCat("at most ", kMaxNoteBytes, " bytes"));
  }
  d.note = note.value_or("");
  for (const char* key : {"uses", "ttl_seconds"}) {
    MANDATE_ASSIGN_OR_RETURN(std::optional<int64_t> v, OptionalInt(*o, key, kRoot));
    if (!v) continue;
    if (!approve) return kRoot.Key(key).Error("applies to an approval, not to a denial");
    const int64_t most = std::string_view(key) == "uses" ? agents::kMaxApprovalUses : agents::kMaxApprovalTtlSeconds;
    if (*v < 1 || *v > most) return kRoot.Key(key).Error(absl::StrCat("must be from 1 to ", most));
    (std::string_view(key) == "uses" ? d.uses : d.ttl_seconds) = *v;
  }
  return d;
}

absl::StatusOr<int64_t> TakeWaitSeconds(json::value* body) {
  json::object* o = body->if_object();
  if (o == nullptr) return 0;  // DecodeCheck reports the shape
  const json::value* w = o->if_contains("wait_seconds");
  if (w == nullptr) return 0;
  int64_t seconds = 0;
  if (w->is_int64()) {
    seconds = w->get_int64();
  } else if (!w->is_null()) {
    return kRoot.Key("wait_seconds").Error("expected an integer number of seconds");
  }
  if (seconds < 0 || seconds > kMaxWaitSeconds) {
    return kRoot.Key("wait_seconds").Error(absl::StrCat("must be from 0 to ", kMaxWaitSeconds));
  }
  o->erase("wait_seconds");
  return seconds;
}

std::string Api::PublicBase(const Call& c) const {
  if (!options_.public_url.empty()) {
    std::string base = options_.public_url;
    while (!base.empty() && base.back() == '/') base.pop_back();
    return base;
  }
  return absl::StrCat("http://", std::string(c.request[boost::beast::http::field::host]));
}

void Api::AuditApprovalEvents(Call& c, const std::vector<agents::ApprovalEvent>& events) const {
  const std::string base = PublicBase(c);
  for (const agents::ApprovalEvent& e : events) {
    c.Audit(ApprovalEntry(e, base, service_.agents().config().actor_type));
  }
}

void Api::WireApprovalExpiry() {
  if (options_.audit_log == nullptr) return;
  service_.agents().approvals().SetExpiryListener(
      [this](const agents::ApprovalEvent& e) { AuditApprovalSteps("approvals.expiry", {e}); });
}

void Api::AuditApprovalSteps(std::string_view api, const std::vector<agents::ApprovalEvent>& events) const {
  if (options_.audit_log == nullptr || events.empty()) return;
  audit::RequestInfo info;
  info.api = std::string(api);
  info.revision = service_.revision();
  const std::string base = options_.public_url.empty() ? "" : options_.public_url;
  std::vector<std::string> entries;
  for (const agents::ApprovalEvent& e : events) {
    entries.push_back(audit::Serialize(ApprovalEntry(e, base, service_.agents().config().actor_type), info,
                                       options_.audit_context_bytes));
  }
  options_.audit_log->Append(std::move(entries), [](absl::Status) {});
}

Reply Api::ApprovalCheck(agents::CheckRequest req, agents::CheckResult r, json::value body, int64_t wait_seconds,
                         uint64_t revision) {
  auto check = std::make_shared<CheckInFlight>();
  check->request = std::move(req);
  check->result = std::move(r);
  check->body = std::move(body);
  check->revision = revision;
  check->deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
  Reply later;
  later.later = [this, check](std::shared_ptr<Call> call) {
    net::post(blocking_, [this, call = std::move(call), check]() mutable {
      service_.agents().FinishApproval(check->request, &check->result);
      if (check->result.approval_required && std::chrono::steady_clock::now() < check->deadline && !stopping_) {
        return AwaitApproval(std::move(call), std::move(check));
      }
      agents::CheckResult& res = check->result;
      res.approval_events.insert(res.approval_events.begin(), check->events.begin(), check->events.end());
      Finish(*call, CheckAnswer(*call, check->request, res, check->body, check->revision, call->request_id));
    });
  };
  return later;
}

void Api::AwaitApproval(std::shared_ptr<Call> call, std::shared_ptr<CheckInFlight> check) {
  const std::string id = check->result.approval->id;
  check->events.insert(check->events.end(), check->result.approval_events.begin(),
                       check->result.approval_events.end());
  check->result.approval_events.clear();
  if (check->timer == nullptr) {
    // One timer per waiting check, touched only on its strand from here on.
    check->strand = std::make_unique<net::strand<net::io_context::executor_type>>(net::make_strand(io_));
    check->timer = std::make_unique<net::steady_timer>(*check->strand);
  }
  check->woken = false;
  // A decision recorded by this process wakes the check at once.
  check->watch = service_.agents().approvals().Watch(id, [weak = std::weak_ptr<CheckInFlight>(check)] {
    if (auto c = weak.lock()) {
      net::post(*c->strand, [c] {
        c->woken = true;
        c->timer->cancel();
      });
    }
  });
  net::post(*check->strand, [this, call = std::move(call), check, id]() mutable {
    const auto now = std::chrono::steady_clock::now();
    check->timer->expires_at(check->woken ? now : std::min(check->deadline, now + kRecheckInterval));
    check->timer->async_wait([this, call = std::move(call), check, id](boost::system::error_code) mutable {
      service_.agents().approvals().Unwatch(check->watch);
      const bool timed_out = std::chrono::steady_clock::now() >= check->deadline || stopping_;
      const bool woken = check->woken;
      net::post(blocking_, [this, call = std::move(call), check, id, timed_out, woken]() mutable {
        // Decided (here or on another node), expired, or out of time: evaluate the request again.
        absl::StatusOr<store::ApprovalRecord> a = service_.agents().approvals().Get(id);
        const bool pending = a.ok() && a->status == "pending";
        if (pending && !timed_out && !woken) return AwaitApproval(std::move(call), std::move(check));
        if (pending) {
          // Out of time: the answer is still approval_required with the pending approval.
          agents::CheckResult& res = check->result;
          res.approval = *a;
          res.approval_events = check->events;
          return Finish(*call, CheckAnswer(*call, check->request, res, check->body, check->revision,
                                           call->request_id));
        }
        check->revision = service_.revision();  // before the snapshot, as in V1Check
        const std::shared_ptr<const Snapshot> snap = service_.snapshot();
        check->result = service_.agents().Evaluate(*snap, check->request);
        service_.agents().FinishApproval(check->request, &check->result);
        agents::CheckResult& res = check->result;
        res.approval_events.insert(res.approval_events.begin(), check->events.begin(), check->events.end());
        Finish(*call, CheckAnswer(*call, check->request, res, check->body, check->revision, call->request_id));
      });
    });
  });
}

absl::StatusOr<Reply> Api::V1ListApprovals(Call& c) {
  store::ApprovalFilter filter;
  std::optional<std::string> actor_type, actor_id;
  for (const auto& [k, v] : c.params) {
    if (k == "status") {
      if (v != "pending" && v != "approved" && v != "denied" && v != "expired" && v != "used") {
        return BadParam(k, "must be pending, approved, denied, expired or used");
      }
      filter.status = v;
    } else if (k == "actor") {
      MANDATE_ASSIGN_OR_RETURN(TypedValue a, TypedParam(k, v));
      filter.actor = std::move(a);
    } else if (k == "actor_type") {
      actor_type = v;
    } else if (k == "actor_id") {
      actor_id = v;
    } else if (k == "limit") {
      int64_t n = 0;
      if (!absl::SimpleAtoi(v, &n) || n < 1 || n > static_cast<int64_t>(kMaxListed)) {
        return BadParam(k, absl::StrCat("must be an integer from 1 to ", kMaxListed));
      }
      filter.limit = static_cast<size_t>(n);
    } else {
      return BadParam(k, "unknown parameter (status, actor, actor_type, actor_id, limit)");
    }
  }
  if (actor_type.has_value() != actor_id.has_value()) {
    return BadParam(actor_type ? "actor_id" : "actor_type", "actor_type and actor_id go together");
  }
  if (actor_type) {
    if (filter.actor) return BadParam("actor", "give either actor or actor_type and actor_id");
    MANDATE_ASSIGN_OR_RETURN(TypedValue a, TypedParam("actor_type", absl::StrCat(*actor_type, ":", *actor_id)));
    filter.actor = std::move(a);
  }
  MANDATE_ASSIGN_OR_RETURN(std::vector<store::ApprovalRecord> found, service_.agents().approvals().List(filter));
  // Pending first (an inbox), each group newest first.
  std::stable_partition(found.begin(), found.end(), [](const store::ApprovalRecord& a) { return a.status == "pending"; });
  const std::string base = PublicBase(c);
  json::array out;
  for (const store::ApprovalRecord& a : found) out.push_back(ApprovalJson(a, base));
  return Reply{200, json::object{{"approvals", std::move(out)}}};
}

absl::StatusOr<Reply> Api::V1GetApproval(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(std::string id, ApprovalId(c));
  MANDATE_ASSIGN_OR_RETURN(store::ApprovalRecord a, service_.agents().approvals().Get(id));
  return Reply{200, ApprovalJson(a, PublicBase(c))};
}

absl::StatusOr<Reply> Api::V1ApproveApproval(Call& c) { return DecideApproval(c, true); }
absl::StatusOr<Reply> Api::V1DenyApproval(Call& c) { return DecideApproval(c, false); }

absl::StatusOr<Reply> Api::DecideApproval(Call& c, bool approve) {
  MANDATE_ASSIGN_OR_RETURN(std::string id, ApprovalId(c));
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(agents::ApprovalDecisionRequest d, DecodeApprovalDecision(body, approve));
  if (c.user) {
    // A console session decides as its signed-in user, never as whoever the body names.
    if (c.user->console_role != "approver" && c.user->console_role != "admin") {
      return absl::PermissionDeniedError(absl::StrCat("console user \"", c.user->id, "\" has the role ",
                                                      c.user->console_role, "; deciding approvals needs the "
                                                      "approver or admin role"));
    }
    const TypedValue user{c.user->type, c.user->id};
    if (!d.approver.type.empty() && d.approver != user) {
      return kRoot.Key("approver").Error(
          absl::StrCat("a console session decides as its own user (", ToString(user), ")"));
    }
    d.approver = user;
  } else {
    if (c.role != Role::kAdmin) {
      return absl::PermissionDeniedError(
          "this API key is read-only; deciding an approval needs an admin key (acting for the approver it names)");
    }
    if (d.approver.type.empty()) return kRoot.Key("approver").Error("required field is missing");
  }
  std::vector<agents::ApprovalEvent> events;
  uint64_t revision = 0;
  absl::StatusOr<store::ApprovalRecord> decided =
      service_.agents().DecideApproval(*service_.snapshot(), id, d, &events, &revision);
  AuditApprovalEvents(c, events);
  if (!decided.ok()) return decided.status();
  return std::move(Reply{200, ApprovalJson(*decided, PublicBase(c))}.WithRevision(revision));
}

}  // namespace mandate::server
