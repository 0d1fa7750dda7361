// Agents as first-class principals (DESIGN §4, docs/agents.md): the agent registry, expiring and
// task grants, and the decision of POST /v1/check — the delegation ceiling over an on_behalf_of
// chain, suspension, request context, rate limits and human approvals (approvals.h) — on top of an
// engine Snapshot.
//
// Grants and registry entries are kept in the Store (durably) and in memory (immutable copies
// swapped under a mutex); every check reads the copy current when it starts. Writers are
// serialized and update memory only after the store committed, and before they return: a grant is
// visible to the first check that starts after Grant returns, and a task's grants are invisible
// to the first check that starts after CompleteTask returns. Expired grants are invisible from
// their expiry second on; a background thread deletes them from storage.
//
// Thread safety: every method may be called from any thread.
#ifndef MANDATE_AGENTS_AGENTS_H_
#define MANDATE_AGENTS_AGENTS_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "agents/approvals.h"
#include "agents/config.h"
#include "agents/rate_limiter.h"
#include "mandate/mandate.h"
#include "store/store.h"

namespace mandate::agents {

// Reason codes of a /v1/check decision (docs/agents.md lists them).
inline constexpr char kActorDenied[] = "actor_denied";
inline constexpr char kDelegatorDenied[] = "delegator_denied";
inline constexpr char kAgentSuspended[] = "agent_suspended";
inline constexpr char kChainTooLong[] = "chain_too_long";
inline constexpr char kDelegationNotBacked[] = "delegation_not_backed";
inline constexpr char kRateLimited[] = "rate_limited";
inline constexpr char kEvaluationError[] = "evaluation_error";

struct CheckRequest {
  TypedValue actor;
  std::vector<TypedValue> on_behalf_of;  // the principals the actor acts for, nearest first
  std::string action;
  TypedValue resource;
  std::vector<std::pair<std::string, TypedValue>> context;  // becomes context(key, value)
  std::vector<Fact> context_facts;                          // request facts, already checked against the policy
  int64_t now_unix = 0;  // the request's time: grant expiry, @current_unix_time, time_within
  // Hex SHA-256 of the canonical JSON of the call's arguments (ArgumentsDigest); "" when the caller
  // sent none. An approval binds to it.
  std::string arguments_digest;
  bool explain = false;
  EvalLimits limits;
};

struct Reason {
  std::string code;
  std::string message;
};

struct CheckResult {
  bool allowed = false;
  std::vector<Reason> reasons;                 // empty for a plain allow
  std::optional<int64_t> retry_after_seconds;  // with kRateLimited
  // With CheckRequest::explain: the evaluation for the actor, then for each principal evaluated.
  struct Evaluation {
    TypedValue principal;
    bool allowed = false;
    Explanation explanation;
  };
  std::vector<Evaluation> evaluations;

  // Approvals. `approval_required`: the decision is "approval_required" (allowed is false) and
  // `approval` is the pending approval. An allow that used an approval, or a deny because it was
  // denied, names it in `approval` too.
  bool approval_required = false;
  std::optional<store::ApprovalRecord> approval;
  std::vector<ApprovalEvent> approval_events;  // requested, used: for the audit log
  // Set by Evaluate when a requires_approval rule matched an allowed request: what FinishApproval
  // needs. Cleared by FinishApproval.
  struct ApprovalStep {
    std::vector<RateRule> rate_rules;
    std::string reasons_json;  // why approval is needed, for the record
    std::optional<int64_t> ttl_seconds;  // from approval_ttl rules
  };
  std::optional<ApprovalStep> approval_step;
};

struct AgentPatch {
  std::optional<TypedValue> owner;  // type "" removes the owner
  std::optional<std::string> description;
  std::optional<std::string> status;
};

class Agents {
 public:
  // A monotonic clock in milliseconds, for rate limits (tests pass a fake one).
  using Clock = std::function<int64_t()>;

  // Loads the registry and the grants from `store` (which must outlive the result) and starts the
  // purge thread.
  // `wall_clock` (unix seconds) drives approval expiry; tests pass fake clocks.
  static absl::StatusOr<std::unique_ptr<Agents>> Open(store::Store* store, Config config, Clock clock = nullptr,
                                                      Approvals::WallClock wall_clock = nullptr);
  ~Agents();  // stops the purge thread

  const Config& config() const { return config_; }

  // In the writes below, `revision` (may be null) receives the write's revision token: a request
  // carrying it is answered on any node only once that node has applied the write (store.h).

  // --- Registry. Statuses are "active" or "suspended" (InvalidArgument otherwise).
  absl::StatusOr<store::AgentRecord> CreateAgent(store::AgentRecord agent,  // AlreadyExists if the id is taken
                                                 uint64_t* revision = nullptr);
  absl::StatusOr<store::AgentRecord> UpdateAgent(const std::string& id, const AgentPatch& patch,  // NotFound
                                                 uint64_t* revision = nullptr);
  absl::Status DeleteAgent(const std::string& id, uint64_t* revision = nullptr);  // NotFound
  std::optional<store::AgentRecord> GetAgent(const std::string& id) const;
  std::vector<store::AgentRecord> ListAgents() const;  // by id

  // --- Grants. Each fact is granted until `expires_at` (unix seconds) and/or until `task` is
  // completed; at least one of them must be given. FailedPrecondition if the task is completed.
  absl::StatusOr<std::vector<store::GrantRecord>> Grant(std::vector<Fact> facts, const std::string& task,
                                                        std::optional<int64_t> expires_at,
                                                        uint64_t* revision = nullptr);
  // Revokes every grant of the task at once; idempotent. NotFound for a task never granted to.
  absl::StatusOr<store::TaskRecord> CompleteTask(const std::string& id, uint64_t* revision = nullptr);
  absl::StatusOr<store::TaskRecord> GetTask(const std::string& id) const;
  // The task's grants that are in effect at `now_unix`.
  std::vector<store::GrantRecord> TaskGrants(const std::string& id, int64_t now_unix) const;
  // Every grant in effect at `now_unix`, by id (GET /v1/grants).
  std::vector<store::GrantRecord> ActiveGrants(int64_t now_unix) const;
  // The facts of every grant in effect at `now_unix` (expires_at unset or later).
  std::vector<Fact> ActiveGrantFacts(int64_t now_unix) const;
  // Deletes grants expired at `now_unix` from storage and memory; returns how many.
  absl::StatusOr<int64_t> PurgeExpiredGrants(int64_t now_unix);
  // Reads the registry and the grants from the store again (another node changed them; see
  // store::Follower::side_changed). On an error the memory copy stays as it was.
  absl::Status Reload();

  // --- Decisions. Allowed only if the chain is within limits, no agent in it is suspended, every
  // link is backed when the config requires it, `allow` holds for the actor and for every
  // principal, and no matching rate_limit rule is full; and, when a requires_approval rule matches,
  // an approved approval bound to the request is used (else the decision is approval_required). An
  // allowed decision is counted against the rate limits that match it. Never fails: errors deny
  // with kEvaluationError.
  CheckResult Check(const Snapshot& snapshot, const CheckRequest& request);
  // Check in two steps, so that a server evaluates without touching the store and does only the
  // approval step (a Store call) off its I/O threads: Evaluate does everything but the approval;
  // when its result has approval_step, FinishApproval completes it.
  CheckResult Evaluate(const Snapshot& snapshot, const CheckRequest& request);
  void FinishApproval(const CheckRequest& request, CheckResult* result);

  // --- Approvals (docs/approvals.md).
  Approvals& approvals() { return approvals_; }
  // Decides approval `id` for `decision.approver`, who must pass MayApprove (evaluated with the
  // request's acts_for links, agent owners and the grants in effect). NotFound for an unknown id,
  // Aborted when it is not pending, PermissionDenied for an approver who may not decide it (with a
  // "refused" event in `events`), InvalidArgument for bad uses/ttl_seconds. `events` receives the
  // steps to audit; `revision` (may be null) the decision's revision token.
  absl::StatusOr<store::ApprovalRecord> DecideApproval(const Snapshot& snapshot, const std::string& id,
                                                       const ApprovalDecisionRequest& decision,
                                                       std::vector<ApprovalEvent>* events,
                                                       uint64_t* revision = nullptr);

  // The context facts a check evaluates with: the request's context_facts, context(key, value),
  // acts_for(actor, principal) per link, the grants in effect, and the owner of each registered
  // agent named by the request.
  std::vector<Fact> RequestFacts(const CheckRequest& request) const;

 private:
  using AgentMap = std::map<std::string, store::AgentRecord>;
  using GrantList = std::vector<store::GrantRecord>;

  Agents(store::Store* store, Config config, Clock clock, Approvals::WallClock wall_clock);
  std::shared_ptr<const AgentMap> agents() const;
  std::shared_ptr<const GrantList> grants() const;
  void Install(std::vector<store::AgentRecord> agents, std::vector<store::GrantRecord> grants);
  // Counts an allowed `out` against `rules`; over a limit, turns it into a rate_limited deny.
  CheckResult TakeRate(const CheckRequest& req, const std::vector<RateRule>& rules, CheckResult out);
  void PurgeLoop();

  store::Store* const store_;
  const Config config_;
  const Clock clock_;
  RateLimiter limiter_;
  Approvals approvals_;

  std::mutex write_mu_;          // serializes writers: store write, then the swap in memory
  mutable std::mutex state_mu_;  // guards the two pointers (held only to copy or swap them)
  std::shared_ptr<const AgentMap> agents_;
  std::shared_ptr<const GrantList> grants_;

  std::mutex purge_mu_;
  std::condition_variable purge_cv_;
  bool stopping_ = false;
  std::thread purger_;
};

}  // namespace mandate::agents

#endif  // MANDATE_AGENTS_AGENTS_H_
