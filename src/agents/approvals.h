// Human-in-the-loop approvals (DESIGN §4, docs/approvals.md): the policy rules
// `requires_approval(actor, action, resource)` and `can_approve(approver, actor, action, resource)`,
// the binding of an approval to one exact request, and the approval records kept in the Store.
//
// A check that the policy allows and that matches requires_approval proceeds only with an approved,
// unexpired approval bound to the same request key (actor, chain, action, resource, digest of the
// arguments); it then takes one use. Otherwise the check answers approval_required with the pending
// approval (the same one for every identical request while it is pending). Every step that must
// hold across nodes (dedup, the pending cap, single use, deciding once) is one atomic Store call.
//
// Thread safety: every method may be called from any thread.
#ifndef MANDATE_AGENTS_APPROVALS_H_
#define MANDATE_AGENTS_APPROVALS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/json/value.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "agents/config.h"
#include "mandate/mandate.h"
#include "store/store.h"

namespace mandate::agents {

// Reason codes of approval decisions.
inline constexpr char kApprovalRequired[] = "approval_required";
inline constexpr char kApprovalDenied[] = "approval_denied";
inline constexpr char kTooManyPendingApprovals[] = "too_many_pending_approvals";

// Bounds of what an approver may grant.
inline constexpr int64_t kMaxApprovalUses = 1000;
inline constexpr int64_t kMaxApprovalTtlSeconds = int64_t{30} * 24 * 3600;

// The rows of `q` (every argument bound but its variables); a predicate the policy does not define
// has no rows, and an evaluation stopped at a limit is ResourceExhausted.
absl::StatusOr<QueryResult> QueryIfDefined(const Snapshot& snapshot, const ConjunctiveQuery& q,
                                           const QueryOptions& options);

// The canonical text of a JSON value: object members sorted by key (byte order), no whitespace,
// strings and numbers as Boost.JSON serializes them. Two values with equal canonical text are the
// same arguments.
std::string CanonicalJson(const boost::json::value& v);
// Hex SHA-256 of CanonicalJson(arguments): what an approval binds to.
std::string ArgumentsDigest(const boost::json::value& arguments);
// The key binding an approval to one request: hex SHA-256 over the actor, the chain, the action, the
// resource and the arguments digest ("" when the request sent no arguments).
std::string RequestKey(const TypedValue& actor, const std::vector<TypedValue>& chain, const std::string& action,
                       const TypedValue& resource, const std::string& arguments_digest);

// Whether a requires_approval(actor, action, resource) rule matches. `options` carries the
// request's facts and time, as for allow.
absl::StatusOr<bool> RequiresApproval(const Snapshot& snapshot, const TypedValue& actor, const std::string& action,
                                      const TypedValue& resource, const QueryOptions& options);

// The seconds an approval for this request stays valid, from approval_ttl(actor, action, resource,
// seconds) rules (the smallest when several match); nullopt when none matches (the config default
// applies). InvalidArgument when a rule binds seconds to anything but an integer from 1 to
// kMaxApprovalTtlSeconds.
absl::StatusOr<std::optional<int64_t>> PolicyApprovalTtl(const Snapshot& snapshot, const TypedValue& actor,
                                                         const std::string& action, const TypedValue& resource,
                                                         const QueryOptions& options);

// Whether `approver` may decide `approval` (PermissionDenied saying why otherwise):
//  - the actor itself never may, whatever the policy says;
//  - anyone else needs can_approve(approver, actor, action, resource) to hold;
//  - a principal of the request's own on_behalf_of chain additionally needs
//    can_approve_in_chain(approver, actor, action, resource) to hold: the policy must say explicitly
//    that people may approve what is done on their own behalf.
// `options` carries the facts to evaluate with (the request's acts_for links and agent owners).
absl::Status MayApprove(const Snapshot& snapshot, const store::ApprovalRecord& approval, const TypedValue& approver,
                        const QueryOptions& options);

// One step in an approval's life, for the audit log and webhooks.
struct ApprovalEvent {
  std::string event;  // requested | approved | denied | refused | used | expired
  store::ApprovalRecord approval;
  std::optional<TypedValue> by;  // approved, denied, refused: the approver
  std::string message;           // refused: why
};

struct ApprovalDecisionRequest {
  bool approve = false;
  TypedValue approver;
  std::string note;
  std::optional<int64_t> uses;         // approve only; default 1
  std::optional<int64_t> ttl_seconds;  // approve only; default Config::approval_ttl_seconds
};

class Approvals {
 public:
  using WallClock = std::function<int64_t()>;  // unix seconds
  using Listener = std::function<void(const ApprovalEvent&)>;

  // `store` must outlive the result; `clock` defaults to the system clock.
  Approvals(store::Store* store, const Config& config, WallClock clock = nullptr);

  int64_t Now() const { return clock_(); }

  // For an allowed check that needs approval: uses an approved approval bound to `fresh.request_key`
  // or returns the pending or denied one, or stores `fresh` (given the actor, chain, action,
  // resource, context, digests and reasons; this sets id, status, times) as a new pending approval.
  // ResourceExhausted when the actor has Config::max_pending_approvals pending already. A new
  // approval waits `ttl_seconds` (PolicyApprovalTtl) or Config::approval_ttl_seconds for a decision.
  absl::StatusOr<store::ApprovalResolution> Resolve(store::ApprovalRecord fresh, std::optional<int64_t> ttl_seconds);

  absl::StatusOr<store::ApprovalRecord> Get(const std::string& id) const;  // NotFound
  // `filter.now_unix` is set here.
  absl::StatusOr<std::vector<store::ApprovalRecord>> List(store::ApprovalFilter filter) const;

  // Records a decision on a pending approval (the caller has checked MayApprove) and wakes the
  // watchers of `id`. InvalidArgument for uses/ttl_seconds out of range or given with a denial,
  // NotFound for an unknown id, Aborted when it is no longer pending (decided, used or expired).
  // An approval stays usable for decision.ttl_seconds, else `default_ttl_seconds`. `revision` (may
  // be null) receives the decision's revision token (store.h).
  absl::StatusOr<store::ApprovalRecord> Decide(const std::string& id, const ApprovalDecisionRequest& decision,
                                               int64_t default_ttl_seconds, uint64_t* revision = nullptr);

  // Marks approvals that expired as expired in the store and reports each to the listener once
  // (approvals that expired are reported "expired" by every read anyway; this is for the audit log).
  absl::Status ExpireDue();
  // Replaces the listener; returns once no call to the previous one is running.
  void SetExpiryListener(Listener listener);

  // Calls `wake` (on the deciding thread, without locks held) when a decision on `id` is recorded by
  // this process; returns a token for Unwatch. Decisions made by other nodes are not seen: long
  // pollers also re-read the store now and then.
  uint64_t Watch(const std::string& id, std::function<void()> wake);
  void Unwatch(uint64_t token);

 private:
  store::Store* const store_;
  const Config config_;
  const WallClock clock_;

  std::mutex mu_;  // guards the members below
  uint64_t next_token_ = 1;
  std::map<uint64_t, std::pair<std::string, std::function<void()>>> watchers_;
  std::mutex listener_mu_;  // guards on_expired_, held while it runs
  Listener on_expired_;
};

}  // namespace mandate::agents

#endif  // MANDATE_AGENTS_APPROVALS_H_
