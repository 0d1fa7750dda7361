// The durable store behind `mandate serve`: facts, a changelog of revisions, and policy versions.
// One interface (DESIGN §6) with one implementation per backend (SQLite now, PostgreSQL later);
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
  std::string op;    // "insert", "delete", "clear" or "policy"
  std::string data;  // insert/delete: the fact or pattern as Oso wire JSON; policy: the version number
};

// --- Agents, grants and tasks (docs/agents.md). These are not facts: they are kept apart from the
// revisioned fact set (the agents module feeds them to each request), so writing them does not
// take a revision. Each method is atomic and durable when it returns OK.

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

// Thread safety: every method may be called from any thread concurrently. Writes from concurrent
// callers are committed in groups (one transaction, one sync) but each stays atomic on its own.
class Store {
 public:
  virtual ~Store() = default;

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
  virtual absl::StatusOr<std::vector<AgentRecord>> ListAgents() = 0;
  virtual absl::StatusOr<AgentRecord> PutAgent(const AgentRecord& agent) = 0;
  virtual absl::Status DeleteAgent(const std::string& id) = 0;

  // Stores `grants` (all or none), assigning ids and created_at, and creates the tasks they name
  // that do not exist yet. FailedPrecondition if one names a completed task: a task's grants are
  // revoked for good when it completes. InvalidArgument for a fact the schema cannot hold.
  virtual absl::Status AddGrants(std::vector<GrantRecord>* grants) = 0;
  // Every stored grant, by id.
  virtual absl::StatusOr<std::vector<GrantRecord>> ListGrants() = 0;
  // Marks the task completed and deletes its grants, atomically; completing a completed task
  // changes nothing. NotFound for an unknown task.
  virtual absl::StatusOr<TaskRecord> CompleteTask(const std::string& id) = 0;
  virtual absl::StatusOr<TaskRecord> GetTask(const std::string& id) = 0;
  // Deletes the grants with expires_at <= `now_unix`; returns how many.
  virtual absl::StatusOr<int64_t> PurgeExpiredGrants(int64_t now_unix) = 0;
};

struct SqliteOptions {
  // Most writes committed in one transaction (group commit); counted in changes.
  size_t max_group_changes = 100'000;
};

// Opens (creating if needed) `<data_dir>/mandate.db`, creating `data_dir` if it does not exist, and
// applies pending schema migrations. Fails if the file's schema is newer than this binary knows.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& data_dir, const SqliteOptions& options = {});

// Hex SHA-256 of `text`.
std::string Sha256Hex(std::string_view text);

}  // namespace mandate::store

#endif  // MANDATE_STORE_STORE_H_
