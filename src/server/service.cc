#include "server/service.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mandate::server {
namespace {

// The name policy text is compiled under when an upload gives none (diagnostics cite it).
std::string PolicyFileName(const std::string& filename) { return filename.empty() ? "policy.polar" : filename; }

// At most this many problems are listed when stored facts do not fit a new policy.
constexpr size_t kMaxListedProblems = 10;

}  // namespace

Service::Service(std::unique_ptr<store::Store> store, std::unique_ptr<Database> database, uint64_t revision,
                 std::shared_ptr<const store::PolicyVersion> version)
    : store_(std::move(store)), database_(std::move(database)), revision_(revision), version_(std::move(version)) {}

absl::StatusOr<std::unique_ptr<Service>> Service::Open(std::unique_ptr<store::Store> store,
                                                       agents::Config agents_config) {
  absl::StatusOr<store::LoadedState> state = store->Load();
  if (!state.ok()) return state.status();
  std::shared_ptr<const store::PolicyVersion> version;
  std::shared_ptr<const Policy> policy;  // null: no policy yet, nothing is allowed
  if (state->policy) {
    version = std::make_shared<const store::PolicyVersion>(*state->policy);
    absl::StatusOr<std::shared_ptr<const Policy>> compiled =
        Policy::Compile({SourceFile{PolicyFileName(version->filename), version->source}});
    if (!compiled.ok()) {
      return absl::FailedPreconditionError(absl::StrCat("the stored policy (version ", version->version,
                                                        ") does not compile: ", compiled.status().message()));
    }
    policy = *std::move(compiled);
  }
  auto database = std::make_unique<Database>(policy);
  if (!state->facts.empty()) {
    std::vector<Change> inserts;
    inserts.reserve(state->facts.size());
    for (Fact& f : state->facts) {
      Change c;
      c.kind = Change::Kind::kInsert;
      c.fact = std::move(f);
      inserts.push_back(std::move(c));
    }
    state->facts.clear();
    if (absl::StatusOr<uint64_t> r = database->Apply(inserts); !r.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the stored facts do not type-check against the stored policy: ", r.status().message()));
    }
  }
  absl::StatusOr<std::unique_ptr<agents::Agents>> agents = agents::Agents::Open(store.get(), std::move(agents_config));
  if (!agents.ok()) return agents.status();
  auto service = std::unique_ptr<Service>(new Service(std::move(store), std::move(database), state->revision, version));
  service->agents_ = *std::move(agents);
  // Several nodes on one database: apply the others' writes as they commit (docs/operations.md).
  Service* self = service.get();
  service->store_->Follow(store::Follower{
      [self](const store::Mutation& m, const store::Committed& c) { self->ApplyRemote(m, c); },
      [self](uint64_t revision) {
        absl::Status s = self->agents_->Reload();
        if (!s.ok()) {
          spdlog::warn("reloading agents and grants changed at revision {} failed (retried at the next poll): {}",
                       revision, s.ToString());
          return s;
        }
        self->revision_.store(revision, std::memory_order_release);
        return s;
      }});
  return service;
}

Service::~Service() { store_->StopFollowing(); }

void Service::ApplyRemote(const store::Mutation& m, const store::Committed& c) {
  absl::Status s = absl::OkStatus();
  switch (m.kind) {
    case store::Mutation::Kind::kChanges:
      s = database_->Apply(m.changes).status();
      break;
    case store::Mutation::Kind::kClear:
      s = database_->Clear().status();
      break;
    case store::Mutation::Kind::kPolicy: {
      absl::StatusOr<std::shared_ptr<const Policy>> policy =
          Policy::Compile({SourceFile{PolicyFileName(c.policy->filename), c.policy->source}});
      s = policy.ok() ? database_->SetPolicy(*policy) : policy.status();
      if (s.ok()) {
        std::lock_guard<std::mutex> l(version_mu_);
        version_ = std::make_shared<const store::PolicyVersion>(*c.policy);
      }
      break;
    }
  }
  if (!s.ok()) Diverged(c.revision, s);
  revision_.store(c.revision, std::memory_order_release);
}

std::shared_ptr<const store::PolicyVersion> Service::policy_version() const {
  std::lock_guard<std::mutex> l(version_mu_);
  return version_;
}

absl::Status Service::CheckFact(const Policy& policy, const Fact& fact, const std::string& where) {
  absl::Status s = policy.CheckFact(fact);
  if (s.ok()) return s;
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", s.message()));
}

void Service::Diverged(uint64_t revision, const absl::Status& status) {
  healthy_ = false;
  spdlog::error("revision {} is stored but could not be applied in memory ({}); restart the server to reload it",
                revision, status.ToString());
}

absl::StatusOr<uint64_t> Service::ApplyChanges(std::vector<LabeledChange> changes) {
  if (changes.empty()) return revision();
  std::vector<std::string> where;
  std::vector<Change> plain;
  where.reserve(changes.size());
  plain.reserve(changes.size());
  for (LabeledChange& c : changes) {
    where.push_back(std::move(c.where));
    plain.push_back(std::move(c.change));
  }
  const store::Mutation mutation = store::Mutation::Changes(std::move(plain));
  auto check_all = [&](const Policy& policy) -> absl::Status {
    for (size_t i = 0; i < mutation.changes.size(); ++i) {
      const Change& c = mutation.changes[i];
      if (c.kind != Change::Kind::kInsert) continue;
      if (absl::Status s = CheckFact(policy, c.fact, where[i]); !s.ok()) return s;
    }
    return absl::OkStatus();
  };
  // Checked here for a quick answer, and again at commit time if a policy upload came in between.
  // With a shared store this node may not have applied another node's policy upload yet: a write
  // the local policy rejects is decided at commit time, after the store caught this node up.
  std::shared_ptr<const Policy> checked_against = snapshot()->policy();
  absl::Status prechecked = check_all(*checked_against);
  if (!prechecked.ok() && !store_->sync_status().shared) return prechecked;

  absl::Status applied = absl::OkStatus();
  store::WriteHooks hooks;
  hooks.validate = [&]() -> absl::Status {
    std::shared_ptr<const Policy> current = snapshot()->policy();
    return current == checked_against && prechecked.ok() ? absl::OkStatus() : check_all(*current);
  };
  hooks.on_durable = [&](const store::Committed& c) {
    absl::StatusOr<uint64_t> r = database_->Apply(mutation.changes);
    if (!r.ok()) {
      applied = r.status();
      Diverged(c.revision, applied);
    }
    revision_.store(c.revision, std::memory_order_release);
  };
  absl::StatusOr<store::Committed> committed = store_->Write(mutation, hooks);
  if (!committed.ok()) return committed.status();
  if (!applied.ok()) {
    return absl::InternalError(absl::StrCat("the write was stored (revision ", committed->revision,
                                            ") but could not be applied: ", applied.message()));
  }
  return committed->revision;
}

absl::StatusOr<uint64_t> Service::ClearFacts() {
  absl::Status applied = absl::OkStatus();
  store::WriteHooks hooks;
  hooks.on_durable = [&](const store::Committed& c) {
    absl::StatusOr<uint64_t> r = database_->Clear();
    if (!r.ok()) {
      applied = r.status();
      Diverged(c.revision, applied);
    }
    revision_.store(c.revision, std::memory_order_release);
  };
  absl::StatusOr<store::Committed> committed = store_->Write(store::Mutation::Clear(), hooks);
  if (!committed.ok()) return committed.status();
  if (!applied.ok()) {
    return absl::InternalError(absl::StrCat("clearing was stored but not applied: ", applied.message()));
  }
  return committed->revision;
}

absl::Status Service::CheckStoredFacts(const Policy& policy, const Snapshot& snap, PolicyRejection* rejection) {
  std::vector<std::string> problems;
  size_t bad = 0;
  for (const Fact& f : snap.Facts(FactPattern{})) {
    if (absl::Status s = policy.CheckFact(f); !s.ok()) {
      if (++bad <= kMaxListedProblems) problems.push_back(std::string(s.message()));
    }
  }
  if (bad == 0) return absl::OkStatus();
  rejection->kind = PolicyRejection::Kind::kValidation;
  rejection->message = absl::StrCat(bad, " stored fact(s) do not match the new policy; delete them first or ",
                                    "`declare` their predicates");
  rejection->errors = std::move(problems);
  if (bad > kMaxListedProblems) {
    rejection->errors.push_back(absl::StrCat("... and ", bad - kMaxListedProblems, " more"));
  }
  return absl::InvalidArgumentError(rejection->message);
}

absl::StatusOr<std::shared_ptr<const Policy>> Service::CheckPolicy(const std::string& filename,
                                                                   const std::string& source,
                                                                   PolicyRejection* rejection,
                                                                   TestReport* report) const {
  std::vector<Diagnostic> diagnostics;
  absl::StatusOr<std::shared_ptr<const Policy>> policy =
      Policy::Compile({SourceFile{PolicyFileName(filename), source}}, &diagnostics);
  if (!policy.ok()) {
    rejection->kind = PolicyRejection::Kind::kValidation;
    rejection->message = "the policy is invalid";
    for (const Diagnostic& d : diagnostics) {
      if (d.is_error) rejection->errors.push_back(d.ToString());
    }
    if (rejection->errors.empty()) rejection->errors.push_back(std::string(policy.status().message()));
    return absl::InvalidArgumentError(absl::StrCat(rejection->message, ": ", absl::StrJoin(rejection->errors, "; ")));
  }
  TestReport tests = RunPolicyTests(**policy);
  if (tests.failed() > 0) {
    rejection->kind = PolicyRejection::Kind::kTestsFailed;
    rejection->message = absl::StrCat(tests.failed(), " of ", tests.tests.size(), " policy test(s) failed");
    rejection->tests = std::move(tests);
    return absl::InvalidArgumentError(rejection->message);
  }
  // The stored facts must fit the new policy. They are checked against the current snapshot here;
  // UploadPolicy checks again at commit time if a write landed in between.
  if (absl::Status s = CheckStoredFacts(**policy, *snapshot(), rejection); !s.ok()) return s;
  if (report != nullptr) *report = std::move(tests);
  return policy;
}

absl::StatusOr<Service::PolicyUpload> Service::UploadPolicy(const std::string& filename, const std::string& source,
                                                            PolicyRejection* rejection) {
  const std::string sha = store::Sha256Hex(source);
  auto unchanged = [&] {
    std::shared_ptr<const store::PolicyVersion> current = policy_version();
    return current != nullptr && current->sha256 == sha;
  };
  if (unchanged()) return PolicyUpload{false, revision(), std::nullopt};

  const uint64_t checked_at = revision();  // read before the snapshot: the snapshot is at least this new
  absl::StatusOr<std::shared_ptr<const Policy>> policy = CheckPolicy(filename, source, rejection);
  if (!policy.ok()) return policy.status();

  absl::Status applied = absl::OkStatus();
  store::WriteHooks hooks;
  hooks.validate = [&]() -> absl::Status {
    // A policy upload commits alone, after every earlier write is applied: the snapshot is current.
    if (unchanged()) return absl::AlreadyExistsError("policy unchanged");
    return revision() == checked_at ? absl::OkStatus() : CheckStoredFacts(**policy, *snapshot(), rejection);
  };
  hooks.on_durable = [&](const store::Committed& c) {
    if (absl::Status s = database_->SetPolicy(*policy); !s.ok()) {
      applied = s;
      Diverged(c.revision, s);
    }
    {
      std::lock_guard<std::mutex> l(version_mu_);
      version_ = std::make_shared<const store::PolicyVersion>(*c.policy);
    }
    revision_.store(c.revision, std::memory_order_release);
  };
  absl::StatusOr<store::Committed> committed = store_->Write(store::Mutation::Policy(filename, source), hooks);
  if (committed.status().code() == absl::StatusCode::kAlreadyExists) {
    return PolicyUpload{false, revision(), std::nullopt};
  }
  if (!committed.ok()) return committed.status();
  if (!applied.ok()) {
    return absl::InternalError(absl::StrCat("the policy was stored but could not be activated: ", applied.message()));
  }
  return PolicyUpload{true, committed->revision, committed->policy};
}

}  // namespace mandate::server
