// The state behind the HTTP API: the durable Store and the in-memory Database that serves reads,
// kept in step. A write is validated, made durable in the Store, then applied to the Database (in
// the Store's on_durable hook, so in revision order); only then is it acknowledged. Reads use the
// current snapshot and never touch the Store.
//
// Invariant: every stored fact type-checks against the active policy. Fact writes are checked
// against it; a policy upload that would orphan stored facts is refused. This is what lets the
// server restart from the store at any time.
#ifndef MANDATE_SERVER_SERVICE_H_
#define MANDATE_SERVER_SERVICE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "agents/agents.h"
#include "mandate/mandate.h"
#include "store/store.h"

namespace mandate::server {

// A change with the label its errors should carry (a JSON pointer into the request body).
struct LabeledChange {
  Change change;
  std::string where;
};

// Raised by Service::UploadPolicy when the policy cannot become active; carries the shape of Oso's
// SavePolicyError so the API can answer with it.
struct PolicyRejection {
  enum class Kind { kGeneric, kValidation, kTestsFailed } kind = Kind::kGeneric;
  std::string message;
  std::vector<std::string> errors;  // kValidation: one message per problem
  TestReport tests;                 // kTestsFailed
};

class Service {
 public:
  // Loads the latest policy and every fact from `store`. Fails if the stored policy no longer
  // compiles or the stored facts do not type-check against it (serving a subset of the facts could
  // allow what a missing fact would deny, e.g. under `not`).
  // `agents_config` configures the agent registry, grants and /v1/check (src/agents/).
  // With a store shared by several nodes (PostgreSQL), the service also applies the writes other
  // nodes commit, in revision order, and reloads agents and grants they change.
  static absl::StatusOr<std::unique_ptr<Service>> Open(std::unique_ptr<store::Store> store,
                                                       agents::Config agents_config = {});
  ~Service();  // stops following the store before the members its callbacks use are destroyed

  // --- Reads: wait-free, from memory, any thread.
  std::shared_ptr<const Snapshot> snapshot() const { return database_->snapshot(); }
  uint64_t revision() const { return revision_.load(std::memory_order_acquire); }
  // The active policy version (with source), or null when no policy was ever uploaded.
  std::shared_ptr<const store::PolicyVersion> policy_version() const;
  // False after a write was stored but could not be applied in memory; the server then needs a
  // restart (which reloads from the store).
  bool healthy() const { return healthy_.load(); }
  store::Store& store() { return *store_; }
  // Agents, grants and tasks; they live beside the facts, not in them (docs/agents.md).
  agents::Agents& agents() { return *agents_; }

  // Checks a fact an insert or a request carries: the policy must know its predicate and types.
  static absl::Status CheckFact(const Policy& policy, const Fact& fact, const std::string& where);

  // --- Writes: block until durable and applied; call them off the I/O threads. Each returns the
  // new revision. Concurrent calls are committed together (group commit), each atomically.
  absl::StatusOr<uint64_t> ApplyChanges(std::vector<LabeledChange> changes);
  absl::StatusOr<uint64_t> ClearFacts();

  struct PolicyUpload {
    bool changed = false;  // false: identical to the active policy; nothing stored
    uint64_t revision = 0;
    std::optional<store::PolicyVersion> version;  // when changed
  };
  // Compiles `source`, runs its tests, checks the stored facts against it, stores it as a new
  // version and makes it active. On a rejection, `*rejection` says why (and the status is
  // InvalidArgument); other errors are storage failures.
  absl::StatusOr<PolicyUpload> UploadPolicy(const std::string& filename, const std::string& source,
                                            PolicyRejection* rejection);
  // What UploadPolicy checks, without storing anything (POST /v1/policy/validate): compiles
  // `source`, runs its tests (their results go to `*report` when given and all pass) and checks the
  // stored facts against it. A rejection is InvalidArgument with `*rejection` saying why.
  absl::StatusOr<std::shared_ptr<const Policy>> CheckPolicy(const std::string& filename, const std::string& source,
                                                            PolicyRejection* rejection,
                                                            TestReport* report = nullptr) const;

 private:
  Service(std::unique_ptr<store::Store> store, std::unique_ptr<Database> database, uint64_t revision,
          std::shared_ptr<const store::PolicyVersion> version);
  void Diverged(uint64_t revision, const absl::Status& status);
  // Applies a write another node committed (store::Follower::apply).
  void ApplyRemote(const store::Mutation& m, const store::Committed& c);
  static absl::Status CheckStoredFacts(const Policy& policy, const Snapshot& snap, PolicyRejection* rejection);

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Database> database_;
  std::atomic<uint64_t> revision_;
  std::atomic<bool> healthy_{true};
  mutable std::mutex version_mu_;
  std::shared_ptr<const store::PolicyVersion> version_;
  std::unique_ptr<agents::Agents> agents_;  // destroyed before store_ (declared after it)
};

}  // namespace mandate::server

#endif  // MANDATE_SERVER_SERVICE_H_
