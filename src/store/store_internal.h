// What the SQLite and PostgreSQL stores share, so that each backend keeps only its SQL and driver
// calls: the group-commit writer queue, the checks on what the schema can hold, the approvals row
// layout and the approval state transitions. Private to src/store/.
#ifndef MANDATE_STORE_STORE_INTERNAL_H_
#define MANDATE_STORE_STORE_INTERNAL_H_

#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "store/store.h"
#include "store/wire_json.h"

namespace mandate::store::internal {

// Now as RFC 3339 with milliseconds, UTC (the stores' created_at/changelog times).
std::string NowRfc3339();

// InvalidArgument for a mutation the schema cannot hold (see Store::Write), checked before queueing.
absl::Status CheckShape(const Mutation& m);
// InvalidArgument for a grant whose fact the schema cannot hold (see Store::AddGrants).
absl::Status CheckGrantFacts(const std::vector<GrantRecord>& grants);

// The new policy version `version` that mutation `m` (kPolicy) stores at `revision`.
PolicyVersion NewPolicyVersion(const Mutation& m, int64_t version, uint64_t revision, const std::string& now);

// --- Row decoders. `Row` reads the current row of a result: Text(col), Int(col), IsNull(col).

// A facts row: predicate, arity, t0, i0, ..., t4, i4.
template <typename Row>
Fact DecodeFactRow(const Row& r) {
  Fact f;
  f.predicate = r.Text(0);
  const int64_t arity = std::clamp<int64_t>(r.Int(1), 0, kMaxFactArgs);
  for (int i = 0; i < arity; ++i) f.args.push_back(TypedValue{r.Text(2 + 2 * i), r.Text(3 + 2 * i)});
  return f;
}

// A policy_versions row from column `first`: version, revision, sha256, filename, source (read only
// `with_source`), created_at.
template <typename Row>
PolicyVersion DecodePolicyRow(const Row& r, int first, bool with_source) {
  PolicyVersion v;
  v.version = r.Int(first);
  v.revision = static_cast<uint64_t>(r.Int(first + 1));
  v.sha256 = r.Text(first + 2);
  v.filename = r.Text(first + 3);
  if (with_source) v.source = r.Text(first + 4);
  v.created_at = r.Text(first + 5);
  return v;
}

// An agents row: id, owner_type, owner_id, description, status, created_at, updated_at.
template <typename Row>
AgentRecord DecodeAgentRow(const Row& r) {
  return AgentRecord{r.Text(0), TypedValue{r.Text(1), r.Text(2)}, r.Text(3), r.Text(4), r.Text(5), r.Text(6)};
}

// A grants row: id, fact (Oso wire JSON), task, expires_at, created_at. DataLoss for a bad fact.
template <typename Row>
absl::StatusOr<GrantRecord> DecodeGrantRow(const Row& r) {
  absl::StatusOr<Fact> fact = DecodeStoredFact(r.Text(1));
  if (!fact.ok()) return fact.status();
  GrantRecord g;
  g.id = r.Int(0);
  g.fact = *std::move(fact);
  g.task = r.Text(2);
  if (!r.IsNull(3)) g.expires_at = r.Int(3);
  g.created_at = r.Text(4);
  return g;
}

// --- Grants and tasks.

// FailedPrecondition for a grant naming completed task `task`.
absl::Status TaskCompletedError(const std::string& task);
// After AddGrants committed: the ids the store assigned (in order) and the creation time.
void AssignGrants(const std::vector<int64_t>& ids, const std::string& now, std::vector<GrantRecord>* grants);
// CompleteTask on the stored task `t` (active): marks it completed now, with no grants left.
void MarkCompleted(TaskRecord* t);

// --- Approvals. Both schemas store them in these columns, in this order.
inline constexpr char kApprovalColumns[] =
    "id, request_key, status, actor_type, actor_id, on_behalf_of, action, resource_type, resource_id, context, "
    "arguments_digest, reasons, created_at, expires_at, decided_at, approver_type, approver_id, note, uses_left";

// on_behalf_of as stored: a JSON array of {"type","id"}. DataLoss for stored text that is not one.
std::string EncodeChain(const std::vector<TypedValue>& chain);
absl::StatusOr<std::vector<TypedValue>> DecodeChain(const std::string& text);

// One approvals row in kApprovalColumns order. `Row` reads the current row: Text(col), Int(col),
// IsNull(col).
template <typename Row>
absl::StatusOr<ApprovalRecord> DecodeApprovalRow(const Row& r) {
  ApprovalRecord a;
  a.id = r.Text(0);
  a.request_key = r.Text(1);
  a.status = r.Text(2);
  a.actor = TypedValue{r.Text(3), r.Text(4)};
  absl::StatusOr<std::vector<TypedValue>> chain = DecodeChain(r.Text(5));
  if (!chain.ok()) return chain.status();
  a.on_behalf_of = *std::move(chain);
  a.action = r.Text(6);
  a.resource = TypedValue{r.Text(7), r.Text(8)};
  a.context_json = r.Text(9);
  a.arguments_digest = r.Text(10);
  a.reasons_json = r.Text(11);
  a.created_at = r.Int(12);
  a.expires_at = r.Int(13);
  if (!r.IsNull(14)) a.decided_at = r.Int(14);
  a.approver = TypedValue{r.Text(15), r.Text(16)};
  a.note = r.Text(17);
  a.uses_left = r.Int(18);
  return a;
}

// The one approval a query by id found, status as seen at `now_unix`; NotFound if none.
absl::StatusOr<ApprovalRecord> FoundApproval(std::vector<ApprovalRecord> found, const std::string& id,
                                             int64_t now_unix);
// The backend's statements for ResolveApproval, each run inside the caller's transaction; the
// queries return at most one record (see Store::ResolveApproval for which).
struct ResolveApprovalOps {
  std::function<absl::StatusOr<std::vector<ApprovalRecord>>()> find_approved;  // step 1
  std::function<absl::Status(const ApprovalRecord&)> store_use;               // its uses_left and status
  std::function<absl::StatusOr<std::vector<ApprovalRecord>>()> find_open;      // step 2
  std::function<absl::StatusOr<int64_t>()> count_pending;                      // the actor's, unexpired
  std::function<absl::Status()> insert_fresh;                                  // step 3
};
// Store::ResolveApproval's steps (statuses as stored; the caller reports them as seen at now).
absl::Status ResolveApprovalSteps(const ApprovalRecord& fresh, int64_t max_pending, const ResolveApprovalOps& ops,
                                  ApprovalResolution* out);
// DecideApproval on the stored record `a` (id `id`): FailedPrecondition unless it is pending at
// decision.decided_at; else records the decision in `a`, which the caller then stores.
absl::Status ApplyDecision(const std::string& id, const ApprovalDecision& decision, ApprovalRecord* a);

// The group-commit writer queue (the LevelDB idea): every Write joins the queue; the writer at the
// front commits itself and the writers queued behind it (up to a policy upload, which goes alone,
// or max_group_changes changes) through the backend's CommitGroup, then wakes them.
class GroupCommitQueue {
 public:
  // A queued Write, owned by the waiting caller's stack frame.
  struct Writer {
    const Mutation* mutation = nullptr;
    const WriteHooks* hooks = nullptr;
    absl::StatusOr<Committed> result = absl::InternalError("write not committed");
    bool done = false;
    std::condition_variable cv;
  };
  // Commits a group in one transaction and sets every writer's result; never called concurrently.
  using CommitGroupFn = std::function<void(const std::vector<Writer*>&)>;
  // Stages one mutation at `revision` inside the open transaction, in its own savepoint (nothing of
  // it is left staged on error).
  using StageFn = std::function<absl::Status(const Mutation&, uint64_t revision, Committed*)>;

  explicit GroupCommitQueue(size_t max_group_changes) : max_group_changes_(max_group_changes) {}

  // Store::Write: checks the shape, queues, and returns once the group holding it has committed.
  absl::StatusOr<Committed> Write(const Mutation& mutation, const WriteHooks& hooks, const CommitGroupFn& commit);

  // For CommitGroup, inside its open transaction: runs each writer's validate hook, then `stage` at
  // the next revision after `revision`. Rejected writers get their error as result; the staged ones
  // get their Committed and are appended to `committed`. Returns the last revision staged.
  static uint64_t StageEach(const std::vector<Writer*>& group, uint64_t revision, const StageFn& stage,
                            std::vector<Writer*>* committed);
  // After the commit is durable: runs the on_durable hooks, in revision order.
  static void NotifyDurable(const std::vector<Writer*>& committed);

 private:
  const size_t max_group_changes_;
  std::mutex mu_;  // guards queue_ and Writer::done/result handoff
  std::deque<Writer*> queue_;
};

}  // namespace mandate::store::internal

#endif  // MANDATE_STORE_STORE_INTERNAL_H_
