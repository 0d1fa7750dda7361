// The durable store behind `mandate serve`: facts, a changelog of revisions, and policy versions.
// One interface (DESIGN §6) with one implementation per backend (SQLite, PostgreSQL);
// tests/unit/store/ holds the conformance suite every backend must pass.
//
// Model: the store holds a set of facts and a revision counter. Every accepted Write (a fact change
// list, a clear, or a policy upload) takes the next revision and is durable when Write returns OK.
// The store does not type-check facts against a policy; the caller does that (see WriteHooks).
#ifndef MANDATE_STORE_STORE_H_
#define MANDATE_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "mandate/mandate.h"

namespace mandate::store {

// Facts have at most this many arguments; the schema stores each argument in its own columns.
inline constexpr size_t kMaxFactArgs = 5;

// One accepted policy upload.
struct PolicyVersion {
  int64_t version = 0;     // 1, 2, ... in upload order
  uint64_t revision = 0;   // the store revision the upload took
  std::string sha256;      // hex SHA-256 of `source`
  std::string filename;    // as uploaded; may be empty
  std::string source;      // the policy text (empty in ListPolicyVersions results)
  std::string created_at;  // RFC 3339, UTC
};

// One write. Build with the factory functions.
struct Mutation {
  enum class Kind { kChanges, kClear, kPolicy };
  Kind kind = Kind::kChanges;
  std::vector<Change> changes;  // kChanges: applied in order, all or none
  std::string policy_filename;  // kPolicy
  std::string policy_source;    // kPolicy

  static Mutation Changes(std::vector<Change> changes);
  static Mutation Clear();  // deletes every fact; policy versions are kept
  static Mutation Policy(std::string filename, std::string source);
};

struct Committed {
  uint64_t revision = 0;
  std::optional<PolicyVersion> policy;  // for kPolicy: the new version (with source)
};

// Callbacks that let the caller keep an in-memory copy exactly in step with the store. Both run on
// the thread that commits the write, one write at a time, in revision order, and must not call the
// Store. Writes are committed in groups; a kPolicy mutation always forms a group of its own.
struct WriteHooks {
  // Runs just before the mutation is staged, after on_durable of every write in earlier groups (so
  // it sees every earlier policy upload applied). A non-OK status rejects this mutation alone
  // (nothing of it is stored) and Write returns it.
  std::function<absl::Status()> validate;
  // Runs after the transaction holding the mutation is durable, before Write returns.
  std::function<void(const Committed&)> on_durable;
};

// What the store holds, as loaded at startup.
struct LoadedState {
  uint64_t revision = 0;
  std::vector<Fact> facts;
  std::optional<PolicyVersion> policy;  // the latest version, with source; nullopt if none
};

struct ChangelogEntry {
  uint64_t revision = 0;
  std::string time;  // RFC 3339, UTC
  // "insert", "delete", "clear" or "policy"; with a shared store also "agent", "grants", "task",
  // "approval" and "purge" (agents, grants, tasks, approvals: see PutAgent and the following)
  std::string op;
  // insert/delete: the fact or pattern as Oso wire JSON; policy: the version number; agent, task,
  // approval: its id; grants: their ids, comma-separated; purge: the number of grants deleted
  std::string data;
};

// --- Agents, grants and tasks (docs/agents.md). These are not facts: they are kept apart from the
// fact set (the agents module feeds them to each request). Each method is atomic and durable when
// it returns OK. A write that a client may want to read back on another node (an agent stored or
// deleted, grants added, a task completed, an approval decided) reports a *revision token*: a
// reader carrying it is served only once its node has applied that write (see Follower). With a
// store shared by several nodes (PostgreSQL) such a write takes the next revision of the one
// counter that orders fact writes; in a single-process store (SQLite) it is visible at once and
// reports the revision current at its commit.

// A registered agent. The owner's type is "" when the agent has no owner.
struct AgentRecord {
  std::string id;
  TypedValue owner;
  std::string description;
  std::string status = "active";  // "active" or "suspended"
  std::string created_at;         // RFC 3339, UTC; set by the store
  std::string updated_at;         // RFC 3339, UTC; set by the store
};

// A fact granted for a while or for a task. At least one of `task` and `expires_at` is set.
struct GrantRecord {
  int64_t id = 0;  // assigned by the store, increasing
  Fact fact;
  std::string task;                   // "" = no task
  std::optional<int64_t> expires_at;  // unix seconds; the grant is gone from this second on
  std::string created_at;             // RFC 3339, UTC; set by the store
};

struct TaskRecord {
  std::string id;
  std::string status = "active";  // "active" or "completed"
  std::string created_at;
  std::string completed_at;  // "" while active
  int64_t grants = 0;        // grants still stored for the task (0 once completed)
};

// --- Human approvals (docs/approvals.md). Not facts; only a decision reports a revision token. Times are unix
// seconds chosen by the caller (so tests can drive the clock). An approval's stored `status` is
// "pending", "approved", "denied", "used" or "expired"; every read reports a stored "pending" or
// "approved" whose expires_at <= now as "expired" (ApprovalStatusAt), so expiry needs no writer.
struct ApprovalRecord {
  std::string id;           // chosen by the caller (random, unguessable); unique
  std::string request_key;  // hex digest binding the request (actor, chain, action, resource, arguments)
  std::string status = "pending";
  TypedValue actor;
  std::vector<TypedValue> on_behalf_of;
  std::string action;
  TypedValue resource;
  std::string context_json;      // the request's context object, JSON text (opaque to the store)
  std::string arguments_digest;  // hex SHA-256 of the canonical arguments; "" if none were sent
  std::string reasons_json;      // why approval is needed, JSON text (opaque to the store)
  int64_t created_at = 0;
  int64_t expires_at = 0;  // pending: the request lapses; approved: the approval lapses
  std::optional<int64_t> decided_at;
  TypedValue approver;  // type "" until decided
  std::string note;
  int64_t uses_left = 0;  // 0 until approved; an approved approval at 0 uses left is "used"
};

// The status of `a` as seen at `now_unix`: "expired" for a stored pending/approved one that has
// expired, else the stored status.
std::string ApprovalStatusAt(const ApprovalRecord& a, int64_t now_unix);

struct ApprovalFilter {
  std::string status;  // "" = any; else as ApprovalStatusAt reports it
  std::optional<TypedValue> actor;
  int64_t now_unix = 0;
  size_t limit = 100;
};

// What ResolveApproval did.
struct ApprovalResolution {
  enum class Kind {
    kUsed,     // an approved one took one use: the request may proceed
    kPending,  // an existing pending one (no new record)
    kDenied,   // an existing denied one, not expired
    kCreated,  // `fresh` was stored
  };
  Kind kind = Kind::kCreated;
  ApprovalRecord record;  // as stored after the call, status as seen at now
};

struct ApprovalDecision {
  bool approve = false;
  TypedValue approver;
  std::string note;
  int64_t decided_at = 0;
  int64_t uses = 1;        // approve only: uses granted (>= 1)
  int64_t expires_at = 0;  // approve only: when the approval lapses
};

// --- Several nodes on one database (PostgreSQL; docs/operations.md). Each node keeps an in-memory
// copy; the store tells it about writes other nodes committed.
struct Follower {
  // A write another node committed, with `committed.policy` (with source) for a kPolicy mutation.
  // Called on a store thread, one write at a time, in revision order and in step with this node's
  // own on_durable hooks (never concurrently with them; never twice for one revision). Must not
  // call the Store.
  std::function<void(const Mutation&, const Committed&)> apply;
  // Agents, grants, tasks or approvals changed at `revision` (a write of this node or another; a
  // run of consecutive such revisions comes as one call with the last). Called like `apply`, in
  // revision order, before any later revision is applied; it may call the Store's read methods
  // (e.g. to reload them) but no write. A non-OK status stops following at the revision before;
  // the same revisions are offered again at the next poll.
  std::function<absl::Status(uint64_t revision)> side_changed;
};

// How far a following node is behind the database.
struct SyncStatus {
  bool shared = false;     // false: a single-process store (SQLite); the other fields are unused
  bool connected = true;   // the last contact with the database succeeded
  uint64_t applied = 0;    // the revision this node has applied
  uint64_t latest = 0;     // the newest revision seen in the database
  int64_t last_sync_unix_ms = 0;  // when the follower last confirmed it was current (0: never)
  bool stale = false;             // that confirmation is older than the configured staleness bound
  std::string last_error;         // of the last failed contact, if any
};

// Thread safety: every method may be called from any thread concurrently. Writes from concurrent
// callers are committed in groups (one transaction, one sync) but each stays atomic on its own.
class Store {
 public:
  virtual ~Store() = default;

  // Starts following the writes of other nodes from the revision of the last Load(). Call once,
  // after Load() and before the first Write(). Single-process stores ignore it.
  virtual void Follow(Follower follower) { (void)follower; }
  // Stops following and waits until no Follower callback runs; call before what the callbacks
  // touch is destroyed. Idempotent.
  virtual void StopFollowing() {}
  virtual SyncStatus sync_status() const { return SyncStatus{}; }
  // Asks the follower to look for new writes now instead of at its next poll (e.g. a request
  // carries a revision this node has not applied yet).
  virtual void Poke() {}

  // Every fact, the current revision and the latest policy version.
  virtual absl::StatusOr<LoadedState> Load() = 0;

  // Applies `mutation` atomically and durably and returns its revision. Errors: InvalidArgument for a
  // change the schema cannot hold (more than kMaxFactArgs arguments, an empty predicate, an argument
  // count that differs between a pattern's types and ids), whatever `hooks.validate` returns, and
  // Internal/Unavailable for storage failures. On any error nothing of the mutation is stored.
  virtual absl::StatusOr<Committed> Write(const Mutation& mutation, const WriteHooks& hooks) = 0;
  absl::StatusOr<Committed> Write(const Mutation& mutation) { return Write(mutation, WriteHooks{}); }

  virtual absl::StatusOr<uint64_t> Revision() = 0;

  // Number of stored facts per predicate name.
  virtual absl::StatusOr<std::map<std::string, uint64_t>> CountFacts() = 0;

  // Policy versions, oldest first, without their source.
  virtual absl::StatusOr<std::vector<PolicyVersion>> ListPolicyVersions() = 0;
  // One version with its source; NotFound if there is no such version.
  virtual absl::StatusOr<PolicyVersion> GetPolicyVersion(int64_t version) = 0;

  // Changelog entries with revision > `after`, oldest first, at most `limit` of them.
  virtual absl::StatusOr<std::vector<ChangelogEntry>> ChangesSince(uint64_t after, size_t limit) = 0;

  // Agents. PutAgent inserts or replaces by id (keeping created_at of an existing record) and
  // returns the stored record; DeleteAgent returns NotFound for an unknown id.
  // In the methods below, `revision` (may be null) receives the write's revision token (see above).
  virtual absl::StatusOr<std::vector<AgentRecord>> ListAgents() = 0;
  virtual absl::StatusOr<AgentRecord> PutAgent(const AgentRecord& agent, uint64_t* revision) = 0;
  virtual absl::Status DeleteAgent(const std::string& id, uint64_t* revision) = 0;
  absl::StatusOr<AgentRecord> PutAgent(const AgentRecord& agent) { return PutAgent(agent, nullptr); }
  absl::Status DeleteAgent(const std::string& id) { return DeleteAgent(id, nullptr); }

  // Stores `grants` (all or none), assigning ids and created_at, and creates the tasks they name
  // that do not exist yet. FailedPrecondition if one names a completed task: a task's grants are
  // revoked for good when it completes. InvalidArgument for a fact the schema cannot hold.
  virtual absl::Status AddGrants(std::vector<GrantRecord>* grants, uint64_t* revision) = 0;
  absl::Status AddGrants(std::vector<GrantRecord>* grants) { return AddGrants(grants, nullptr); }
  // Every stored grant, by id.
  virtual absl::StatusOr<std::vector<GrantRecord>> ListGrants() = 0;
  // Marks the task completed and deletes its grants, atomically; completing a completed task
  // changes nothing (and reports the current revision). NotFound for an unknown task.
  virtual absl::StatusOr<TaskRecord> CompleteTask(const std::string& id, uint64_t* revision) = 0;
  absl::StatusOr<TaskRecord> CompleteTask(const std::string& id) { return CompleteTask(id, nullptr); }
  virtual absl::StatusOr<TaskRecord> GetTask(const std::string& id) = 0;
  // Deletes the grants with expires_at <= `now_unix`; returns how many.
  virtual absl::StatusOr<int64_t> PurgeExpiredGrants(int64_t now_unix) = 0;

  // Approvals. Each method is one atomic step with respect to every other approval method on the
  // same database, across threads and across processes sharing it (single use must hold when
  // several nodes serve retries of one request).
  //
  // ResolveApproval: what a check bound to `fresh.request_key` gets at `now_unix`, in this order:
  //  1. an approved, unexpired approval with that key and uses left (the oldest): one use is taken
  //     (uses_left - 1; status "used" at 0) -> kUsed. Exactly one of concurrent callers takes a
  //     last use.
  //  2. else a pending or denied, unexpired approval with that key (the newest) -> kPending/kDenied.
  //  3. else, if `fresh.actor` has fewer than `max_pending` pending unexpired approvals, `fresh` is
  //     stored as given -> kCreated; otherwise ResourceExhausted and nothing is stored.
  // AlreadyExists if `fresh.id` is taken.
  virtual absl::StatusOr<ApprovalResolution> ResolveApproval(const ApprovalRecord& fresh, int64_t now_unix,
                                                             int64_t max_pending) = 0;
  // One approval, status as seen at `now_unix`; NotFound for an unknown id.
  virtual absl::StatusOr<ApprovalRecord> GetApproval(const std::string& id, int64_t now_unix) = 0;
  // Approvals matching `filter`, newest first (created_at, then id), at most filter.limit.
  virtual absl::StatusOr<std::vector<ApprovalRecord>> ListApprovals(const ApprovalFilter& filter) = 0;
  // Compare-and-set from pending (unexpired at decision.decided_at) to "approved" (with
  // uses_left = decision.uses and expires_at = decision.expires_at) or "denied" (expires_at kept),
  // recording approver, note and decided_at. Returns the updated record. NotFound for an unknown
  // id; FailedPrecondition if it is not pending at that time (already decided, used or expired).
  // `revision` (may be null) receives the decision's revision token.
  virtual absl::StatusOr<ApprovalRecord> DecideApproval(const std::string& id, const ApprovalDecision& decision,
                                                        uint64_t* revision) = 0;
  absl::StatusOr<ApprovalRecord> DecideApproval(const std::string& id, const ApprovalDecision& decision) {
    return DecideApproval(id, decision, nullptr);
  }
  // Stores status "expired" on every pending or approved approval with expires_at <= `now_unix` and
  // returns them (each at most once, across processes), so that expiry can be audited.
  virtual absl::StatusOr<std::vector<ApprovalRecord>> ExpireApprovals(int64_t now_unix) = 0;
};

struct SqliteOptions {
  // Most writes committed in one transaction (group commit); counted in changes.
  size_t max_group_changes = 100'000;
};

// Opens (creating if needed) `<data_dir>/mandate.db`, creating `data_dir` if it does not exist, and
// applies pending schema migrations. Fails if the file's schema is newer than this binary knows.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& data_dir, const SqliteOptions& options = {});

struct PostgresOptions {
  // Apply pending schema migrations when opening (else fail if the schema is behind).
  bool migrate = true;
  // Most changes committed in one transaction (group commit).
  size_t max_group_changes = 100'000;
  // The follower polls the changelog this often even without a notification.
  double poll_interval_seconds = 0.5;
  // SyncStatus::stale once the follower has not confirmed it is current for this long.
  double max_staleness_seconds = 5;
};

// Connects to the PostgreSQL database at `url` (postgres://user@host:port/db?...; libpq syntax) and
// checks (or, with options.migrate, brings up to date) its schema. Several processes may open the
// same database: revisions are totally ordered across them, and each follows the others' writes
// once Follow() is called. Unavailable if the database cannot be reached.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url, const PostgresOptions& options = {});

// Applies the pending numbered schema migrations to the database at `url`, under an advisory lock
// (safe while other nodes start). Returns {version before, version after}.
absl::StatusOr<std::pair<int, int>> MigratePostgres(const std::string& url);

// True for the URLs OpenPostgresStore takes (postgres:// or postgresql://).
bool IsPostgresUrl(std::string_view url);

// Hex SHA-256 of `text`.
std::string Sha256Hex(std::string_view text);

}  // namespace mandate::store

#endif  // MANDATE_STORE_STORE_H_
