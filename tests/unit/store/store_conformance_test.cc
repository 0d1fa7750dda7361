// The Store conformance suite (DESIGN §6): every backend runs these tests. A new backend adds a
// StoreBackend to kBackends at the bottom of this file.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include <stdlib.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "store/store.h"
#include "../../support/pg_test_env.h"

namespace mandate::store {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;

struct StoreBackend {
  std::string name;
  // Opens the backend's store for the test-private location `dir`; opening it again after the
  // previous instance is destroyed must see the same data.
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const std::string& dir)> open;
  // Non-empty: why this backend's tests are skipped on this machine (an explicit opt-out only).
  std::function<std::string()> skip_reason = [] { return std::string(); };
};
// Names the backend in test output (instead of a byte dump).
void PrintTo(const StoreBackend& backend, std::ostream* os) { *os << backend.name; }

Fact F(std::string predicate, std::vector<TypedValue> args) { return Fact{std::move(predicate), std::move(args)}; }
TypedValue V(std::string type, std::string id) { return TypedValue{std::move(type), std::move(id)}; }

Change Insert(Fact f) {
  Change c;
  c.kind = Change::Kind::kInsert;
  c.fact = std::move(f);
  return c;
}
// A delete pattern; "*" stands for a wildcard type or id.
Change Delete(std::string predicate, std::vector<std::pair<std::string, std::string>> args) {
  Change c;
  c.kind = Change::Kind::kDelete;
  c.pattern.predicate = std::move(predicate);
  for (auto& [t, id] : args) {
    c.pattern.arg_types.push_back(t == "*" ? std::nullopt : std::optional<std::string>(t));
    c.pattern.arg_ids.push_back(id == "*" ? std::nullopt : std::optional<std::string>(id));
  }
  return c;
}

const Fact kAliceAdmin = F("has_role", {V("User", "alice"), V("String", "admin"), V("Org", "acme")});
const Fact kBobMember = F("has_role", {V("User", "bob"), V("String", "member"), V("Org", "acme")});
const Fact kAliceGlobal = F("has_role", {V("User", "alice"), V("String", "superadmin")});
const Fact kRepoParent = F("has_relation", {V("Repo", "anvil"), V("String", "parent"), V("Org", "acme")});
const Fact kPublic = F("is_public", {V("Repo", "anvil"), V("Boolean", "true")});

class StoreConformanceTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "mandate-store-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    if (std::string why = GetParam().skip_reason(); !why.empty()) GTEST_SKIP() << why;
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto s = GetParam().open(dir_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  uint64_t Write(std::vector<Change> changes) {
    auto r = store_->Write(Mutation::Changes(std::move(changes)));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->revision : 0;
  }
  std::vector<Fact> Facts() {
    auto s = store_->Load();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? s->facts : std::vector<Fact>{};
  }
  uint64_t Revision() {
    auto r = store_->Revision();
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : 0;
  }

  std::string dir_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreConformanceTest, NewStoreIsEmpty) {
  auto s = store_->Load();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->revision, 0u);
  EXPECT_THAT(s->facts, IsEmpty());
  EXPECT_FALSE(s->policy.has_value());
}

TEST_P(StoreConformanceTest, InsertsAreStoredAndEachWriteTakesTheNextRevision) {
  EXPECT_EQ(Write({Insert(kAliceAdmin), Insert(kAliceGlobal)}), 1u);
  EXPECT_EQ(Write({Insert(kPublic)}), 2u);
  EXPECT_EQ(Revision(), 2u);
  EXPECT_THAT(Facts(), UnorderedElementsAre(kAliceAdmin, kAliceGlobal, kPublic));
}

TEST_P(StoreConformanceTest, CountsFactsByPredicate) {
  Write({Insert(kAliceAdmin), Insert(kBobMember), Insert(kAliceGlobal), Insert(kPublic)});
  auto counts = store_->CountFacts();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(*counts, (std::map<std::string, uint64_t>{{"has_role", 3}, {"is_public", 1}}));
}

TEST_P(StoreConformanceTest, FactsAreASet) {
  Write({Insert(kAliceAdmin), Insert(kAliceAdmin)});
  Write({Insert(kAliceAdmin)});  // a client retry
  EXPECT_THAT(Facts(), ElementsAre(kAliceAdmin));
}

TEST_P(StoreConformanceTest, FactsWithDifferentAritiesAreDistinct) {
  const Fact one = F("p", {V("String", "")});
  const Fact two = F("p", {V("String", ""), V("String", "")});
  Write({Insert(one), Insert(two)});
  EXPECT_THAT(Facts(), UnorderedElementsAre(one, two));
  Write({Delete("p", {{"String", ""}})});
  EXPECT_THAT(Facts(), ElementsAre(two));
}

TEST_P(StoreConformanceTest, DeletePatternsMatchWildcardsAndArity) {
  Write({Insert(kAliceAdmin), Insert(kBobMember), Insert(kAliceGlobal), Insert(kRepoParent)});
  // Any role of alice on any Org: leaves her global (2-argument) role alone.
  Write({Delete("has_role", {{"User", "alice"}, {"*", "*"}, {"Org", "*"}})});
  EXPECT_THAT(Facts(), UnorderedElementsAre(kBobMember, kAliceGlobal, kRepoParent));
  // Nothing matches: not an error.
  Write({Delete("has_role", {{"User", "carol"}, {"*", "*"}, {"*", "*"}})});
  EXPECT_THAT(Facts(), UnorderedElementsAre(kBobMember, kAliceGlobal, kRepoParent));
  // Fully wildcarded 3-argument has_role.
  Write({Delete("has_role", {{"*", "*"}, {"*", "*"}, {"*", "*"}})});
  EXPECT_THAT(Facts(), UnorderedElementsAre(kAliceGlobal, kRepoParent));
  // Exact match.
  Write({Delete("has_relation", {{"Repo", "anvil"}, {"String", "parent"}, {"Org", "acme"}})});
  EXPECT_THAT(Facts(), ElementsAre(kAliceGlobal));
}

TEST_P(StoreConformanceTest, ChangesApplyInOrderWithinAWrite) {
  Write({Insert(kAliceAdmin), Delete("has_role", {{"User", "alice"}, {"*", "*"}, {"*", "*"}}), Insert(kBobMember)});
  EXPECT_THAT(Facts(), ElementsAre(kBobMember));
  Write({Delete("has_role", {{"*", "*"}, {"*", "*"}, {"*", "*"}}), Insert(kBobMember)});
  EXPECT_THAT(Facts(), ElementsAre(kBobMember));
}

TEST_P(StoreConformanceTest, AWriteTheSchemaCannotHoldChangesNothing) {
  Write({Insert(kAliceAdmin)});
  Fact six = F("p", {V("A", "1"), V("A", "2"), V("A", "3"), V("A", "4"), V("A", "5"), V("A", "6")});
  auto r = store_->Write(Mutation::Changes({Insert(kBobMember), Insert(six)}));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << r.status();
  auto empty = store_->Write(Mutation::Changes({Insert(F("", {V("A", "1")}))}));
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument) << empty.status();
  EXPECT_EQ(Revision(), 1u);
  EXPECT_THAT(Facts(), ElementsAre(kAliceAdmin));
}

TEST_P(StoreConformanceTest, FiveArgumentsAndLongValuesRoundTrip) {
  const std::string big(384, 'x');
  const std::string unicode = "caf\xc3\xa9 \xe2\x9c\x93 \"quoted\" 'single' \\ ;--";
  Fact five = F("p5", {V("A", big), V("String", unicode), V("Integer", "-9223372036854775808"), V("Boolean", "false"),
                       V("B", "")});
  Write({Insert(five)});
  Reopen();
  EXPECT_THAT(Facts(), ElementsAre(five));
}

TEST_P(StoreConformanceTest, DataAndRevisionSurviveReopen) {
  Write({Insert(kAliceAdmin), Insert(kRepoParent)});
  Write({Delete("has_relation", {{"*", "*"}, {"*", "*"}, {"*", "*"}})});
  auto policy = store_->Write(Mutation::Policy("main.polar", "actor User {}"));
  ASSERT_TRUE(policy.ok()) << policy.status();
  Reopen();
  auto s = store_->Load();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->revision, 3u);
  EXPECT_THAT(s->facts, ElementsAre(kAliceAdmin));
  ASSERT_TRUE(s->policy.has_value());
  EXPECT_EQ(s->policy->source, "actor User {}");
  EXPECT_EQ(Write({Insert(kBobMember)}), 4u);
}

TEST_P(StoreConformanceTest, ClearDeletesFactsAndKeepsPolicies) {
  ASSERT_TRUE(store_->Write(Mutation::Policy("", "actor User {}")).ok());
  Write({Insert(kAliceAdmin), Insert(kPublic)});
  auto r = store_->Write(Mutation::Clear());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revision, 3u);
  auto s = store_->Load();
  ASSERT_TRUE(s.ok());
  EXPECT_THAT(s->facts, IsEmpty());
  EXPECT_TRUE(s->policy.has_value());
  EXPECT_EQ(s->revision, 3u);
}

TEST_P(StoreConformanceTest, PolicyVersionsAreNumberedHashedAndListed) {
  auto v1 = store_->Write(Mutation::Policy("a.polar", "actor User {}"));
  auto v2 = store_->Write(Mutation::Policy("b.polar", "actor User {}\nresource Repo {}"));
  ASSERT_TRUE(v1.ok() && v2.ok());
  ASSERT_TRUE(v1->policy && v2->policy);
  EXPECT_EQ(v1->policy->version, 1);
  EXPECT_EQ(v2->policy->version, 2);
  EXPECT_EQ(v2->policy->revision, v2->revision);
  // sha256("actor User {}")
  EXPECT_EQ(v1->policy->sha256, Sha256Hex("actor User {}"));
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_FALSE(v1->policy->created_at.empty());

  auto list = store_->ListPolicyVersions();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].version, 1);
  EXPECT_EQ((*list)[0].filename, "a.polar");
  EXPECT_TRUE((*list)[0].source.empty());
  EXPECT_EQ((*list)[1].sha256, v2->policy->sha256);

  auto got = store_->GetPolicyVersion(1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->source, "actor User {}");
  EXPECT_EQ(store_->GetPolicyVersion(3).status().code(), absl::StatusCode::kNotFound);

  auto s = store_->Load();
  ASSERT_TRUE(s.ok() && s->policy);
  EXPECT_EQ(s->policy->version, 2);
  EXPECT_EQ(s->policy->filename, "b.polar");
}

TEST_P(StoreConformanceTest, ChangelogRecordsEveryWrite) {
  Write({Insert(kAliceGlobal), Delete("has_role", {{"User", "alice"}, {"*", "*"}})});
  ASSERT_TRUE(store_->Write(Mutation::Clear()).ok());
  ASSERT_TRUE(store_->Write(Mutation::Policy("", "actor User {}")).ok());
  auto log = store_->ChangesSince(0, 100);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->size(), 4u);
  EXPECT_EQ((*log)[0].revision, 1u);
  EXPECT_EQ((*log)[0].op, "insert");
  EXPECT_EQ((*log)[0].data,
            R"({"predicate":"has_role","args":[{"type":"User","id":"alice"},{"type":"String","id":"superadmin"}]})");
  EXPECT_EQ((*log)[1].op, "delete");
  EXPECT_EQ((*log)[1].data,
            R"({"predicate":"has_role","args":[{"type":"User","id":"alice"},{"type":null,"id":null}]})");
  EXPECT_EQ((*log)[2].op, "clear");
  EXPECT_EQ((*log)[2].revision, 2u);
  EXPECT_EQ((*log)[3].op, "policy");
  EXPECT_EQ((*log)[3].data, "1");
  auto tail = store_->ChangesSince(2, 100);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0].revision, 3u);
}

TEST_P(StoreConformanceTest, AFailingValidateHookRejectsThatWriteAlone) {
  WriteHooks reject;
  reject.validate = [] { return absl::InvalidArgumentError("nope"); };
  bool durable_called = false;
  reject.on_durable = [&](const Committed&) { durable_called = true; };
  auto r = store_->Write(Mutation::Changes({Insert(kAliceAdmin)}), reject);
  EXPECT_EQ(r.status(), absl::InvalidArgumentError("nope"));
  EXPECT_FALSE(durable_called);
  EXPECT_EQ(Revision(), 0u);
  EXPECT_THAT(Facts(), IsEmpty());
}

// Many concurrent writers, some rejected by their hook: every accepted write is stored, revisions
// are dense and unique, and on_durable runs in revision order.
TEST_P(StoreConformanceTest, ConcurrentWritersCommitInRevisionOrder) {
  constexpr int kThreads = 8, kPerThread = 40;
  std::mutex mu;
  std::vector<uint64_t> durable_order;
  std::vector<uint64_t> returned;
  std::vector<Fact> expected;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const bool rejected = i % 5 == 4;
        Fact f = F("has_role", {V("User", absl::StrCat("u", t)), V("String", "r"), V("Org", std::to_string(i))});
        WriteHooks hooks;
        hooks.validate = [rejected] { return rejected ? absl::InvalidArgumentError("rejected") : absl::OkStatus(); };
        hooks.on_durable = [&](const Committed& c) {
          std::lock_guard<std::mutex> l(mu);
          durable_order.push_back(c.revision);
        };
        auto r = store_->Write(Mutation::Changes({Insert(f)}), hooks);
        std::lock_guard<std::mutex> l(mu);
        if (rejected) {
          EXPECT_FALSE(r.ok());
        } else {
          EXPECT_TRUE(r.ok()) << r.status();
          if (r.ok()) returned.push_back(r->revision);
          expected.push_back(f);
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  const size_t accepted = expected.size();
  ASSERT_EQ(accepted, static_cast<size_t>(kThreads * kPerThread * 4 / 5));
  ASSERT_EQ(durable_order.size(), accepted);
  for (size_t i = 0; i < accepted; ++i) EXPECT_EQ(durable_order[i], i + 1);
  std::sort(returned.begin(), returned.end());
  EXPECT_EQ(returned, durable_order);
  EXPECT_EQ(Revision(), accepted);
  EXPECT_THAT(Facts(), UnorderedElementsAreArray(expected));
}

// A fact write committed after a policy upload must have been validated after that upload's
// on_durable ran (the server checks facts against the policy it installs there).
TEST_P(StoreConformanceTest, ValidateSeesEveryEarlierPolicyApplied) {
  constexpr int kRounds = 20;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<uint64_t> policy_applied_at{0};
    std::atomic<uint64_t> seen_by_validate{0};
    WriteHooks policy_hooks;
    policy_hooks.on_durable = [&](const Committed& c) { policy_applied_at = c.revision; };
    WriteHooks fact_hooks;
    fact_hooks.validate = [&] {
      seen_by_validate = policy_applied_at.load();
      return absl::OkStatus();
    };
    uint64_t policy_rev = 0, fact_rev = 0;
    std::thread a([&] {
      auto r = store_->Write(Mutation::Policy("", "actor User {} # " + std::to_string(round)), policy_hooks);
      ASSERT_TRUE(r.ok());
      policy_rev = r->revision;
    });
    std::thread b([&] {
      auto r = store_->Write(Mutation::Changes({Insert(kAliceAdmin)}), fact_hooks);
      ASSERT_TRUE(r.ok());
      fact_rev = r->revision;
    });
    a.join();
    b.join();
    if (fact_rev > policy_rev) {
      EXPECT_EQ(seen_by_validate.load(), policy_rev);
    }
  }
}

TEST_P(StoreConformanceTest, AgentsArePutListedDeletedAndDurable) {
  AgentRecord bot{"churn-bot", V("User", "alice"), "reviews churn", "active", "", ""};
  auto put = store_->PutAgent(bot);
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_FALSE(put->created_at.empty());
  bot.status = "suspended";
  bot.owner = TypedValue{};
  auto again = store_->PutAgent(bot);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->created_at, put->created_at);
  ASSERT_TRUE(store_->PutAgent(AgentRecord{"a-first", V("User", "bob"), "", "active", "", ""}).ok());
  Reopen();
  auto agents = store_->ListAgents();
  ASSERT_TRUE(agents.ok());
  ASSERT_EQ(agents->size(), 2u);
  EXPECT_EQ((*agents)[0].id, "a-first");
  EXPECT_EQ((*agents)[1].status, "suspended");
  EXPECT_TRUE((*agents)[1].owner.type.empty());
  EXPECT_TRUE(store_->DeleteAgent("churn-bot").ok());
  EXPECT_EQ(store_->DeleteAgent("churn-bot").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ListAgents()->size(), 1u);
}

TEST_P(StoreConformanceTest, GrantsTasksCompletionAndPurge) {
  std::vector<GrantRecord> grants(3);
  grants[0].fact = kAliceAdmin;
  grants[0].task = "t-1";
  grants[1].fact = kBobMember;
  grants[1].task = "t-1";
  grants[1].expires_at = 100;
  grants[2].fact = kPublic;
  grants[2].expires_at = 200;
  ASSERT_TRUE(store_->AddGrants(&grants).ok());
  EXPECT_LT(grants[0].id, grants[1].id);
  EXPECT_EQ(store_->GetTask("t-1")->grants, 2);
  EXPECT_EQ(store_->GetTask("t-1")->status, "active");
  EXPECT_EQ(store_->GetTask("t-2").status().code(), absl::StatusCode::kNotFound);
  Reopen();
  auto listed = store_->ListGrants();
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].fact, kAliceAdmin);
  EXPECT_FALSE((*listed)[0].expires_at.has_value());
  EXPECT_EQ((*listed)[1].expires_at, 100);
  // Purging deletes what expired at `now`, whatever its task.
  EXPECT_EQ(*store_->PurgeExpiredGrants(100), 1);
  EXPECT_EQ(store_->ListGrants()->size(), 2u);
  // Completing revokes the task's grants for good.
  auto done = store_->CompleteTask("t-1");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status, "completed");
  EXPECT_FALSE(done->completed_at.empty());
  ASSERT_EQ(store_->ListGrants()->size(), 1u);
  EXPECT_EQ((*store_->ListGrants())[0].fact, kPublic);
  EXPECT_EQ(store_->CompleteTask("t-1")->completed_at, done->completed_at);
  EXPECT_EQ(store_->CompleteTask("t-9").status().code(), absl::StatusCode::kNotFound);
  // A grant for a completed task is refused, with the others of its call.
  std::vector<GrantRecord> late(2);
  late[0].fact = kRepoParent;
  late[0].expires_at = 300;
  late[1].fact = kAliceAdmin;
  late[1].task = "t-1";
  EXPECT_EQ(store_->AddGrants(&late).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->ListGrants()->size(), 1u);
  Reopen();
  EXPECT_EQ(store_->GetTask("t-1")->status, "completed");
}

ApprovalRecord Approval(std::string id, std::string key, std::string actor_id = "bot", int64_t created = 1000) {
  ApprovalRecord a;
  a.id = std::move(id);
  a.request_key = std::move(key);
  a.actor = V("Agent", std::move(actor_id));
  a.on_behalf_of = {V("User", "alice"), V("User", "bob \"q\"")};
  a.action = "pay";
  a.resource = V("Invoice", "42");
  a.context_json = R"({"intent":"monthly"})";
  a.arguments_digest = "ab12";
  a.reasons_json = R"([{"code":"approval_required"}])";
  a.created_at = created;
  a.expires_at = created + 100;
  return a;
}

ApprovalDecision Decide(bool approve, int64_t at, int64_t uses = 1, int64_t expires_at = 5000) {
  ApprovalDecision d;
  d.approve = approve;
  d.approver = V("User", "carol");
  d.note = "ok";
  d.decided_at = at;
  d.uses = uses;
  d.expires_at = expires_at;
  return d;
}

TEST_P(StoreConformanceTest, ApprovalsResolveDeduplicateAndRoundTrip) {
  auto r = store_->ResolveApproval(Approval("a1", "k1"), 1000, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, ApprovalResolution::Kind::kCreated);
  EXPECT_EQ(r->record.status, "pending");
  // The same request while pending gets the same approval; `fresh` is not stored.
  r = store_->ResolveApproval(Approval("a2", "k1"), 1050, 10);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->kind, ApprovalResolution::Kind::kPending);
  EXPECT_EQ(r->record.id, "a1");
  EXPECT_EQ(store_->GetApproval("a2", 1050).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->ResolveApproval(Approval("a1", "k-other"), 1050, 10).status().code(),
            absl::StatusCode::kAlreadyExists);
  Reopen();
  auto got = store_->GetApproval("a1", 1050);
  ASSERT_TRUE(got.ok()) << got.status();
  const ApprovalRecord want = Approval("a1", "k1");
  EXPECT_EQ(got->request_key, "k1");
  EXPECT_EQ(got->actor, want.actor);
  EXPECT_EQ(got->on_behalf_of, want.on_behalf_of);
  EXPECT_EQ(got->action, "pay");
  EXPECT_EQ(got->resource, want.resource);
  EXPECT_EQ(got->context_json, want.context_json);
  EXPECT_EQ(got->arguments_digest, "ab12");
  EXPECT_EQ(got->reasons_json, want.reasons_json);
  EXPECT_EQ(got->created_at, 1000);
  EXPECT_EQ(got->expires_at, 1100);
  EXPECT_FALSE(got->decided_at.has_value());
  EXPECT_TRUE(got->approver.type.empty());
  EXPECT_EQ(got->uses_left, 0);
  // Reads report expiry as of their `now`; once expired, the same request opens a new approval.
  EXPECT_EQ(store_->GetApproval("a1", 1100)->status, "expired");
  r = store_->ResolveApproval(Approval("a3", "k1", "bot", 1100), 1100, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ApprovalResolution::Kind::kCreated);
  EXPECT_EQ(*store_->Revision(), 0u);  // approvals are not facts
}

// Agent, grant, task and approval-decision writes report a revision token that covers them and
// every earlier write, and that later fact writes come after. A shared store gives each its own
// revision in the changelog, so that another node can tell when it has applied them.
TEST_P(StoreConformanceTest, AgentGrantTaskAndDecisionWritesReportARevisionToken) {
  const uint64_t fact = Write({Insert(kAliceAdmin)});
  uint64_t put = 0, granted = 0, completed = 0, again = 0, decided = 0, deleted = 0;
  ASSERT_TRUE(store_->PutAgent(AgentRecord{"bot", V("User", "alice"), "", "active", "", ""}, &put).ok());
  std::vector<GrantRecord> grants(1);
  grants[0].fact = kBobMember;
  grants[0].task = "t-1";
  ASSERT_TRUE(store_->AddGrants(&grants, &granted).ok());
  ASSERT_TRUE(store_->CompleteTask("t-1", &completed).ok());
  ASSERT_TRUE(store_->CompleteTask("t-1", &again).ok());  // changes nothing
  ASSERT_TRUE(store_->ResolveApproval(Approval("a1", "k1"), 1000, 10).ok());
  ASSERT_TRUE(store_->DecideApproval("a1", Decide(true, 1001), &decided).ok());
  ASSERT_TRUE(store_->DeleteAgent("bot", &deleted).ok());
  const std::vector<uint64_t> tokens{fact, put, granted, completed, again, decided, deleted};
  EXPECT_TRUE(std::is_sorted(tokens.begin(), tokens.end())) << ::testing::PrintToString(tokens);
  EXPECT_EQ(again, completed);
  EXPECT_GE(Revision(), deleted);
  EXPECT_GT(Write({Insert(kPublic)}), deleted);
  if (!store_->sync_status().shared) return;
  EXPECT_EQ(deleted, fact + 5) << ::testing::PrintToString(tokens);  // one revision each
  auto log = store_->ChangesSince(fact, 100);
  ASSERT_TRUE(log.ok()) << log.status();
  std::vector<std::string> ops;
  for (const ChangelogEntry& e : *log) ops.push_back(e.op + " " + e.data);
  EXPECT_THAT(ops, ElementsAre("agent bot", absl::StrCat("grants ", grants[0].id), "task t-1", "approval a1",
                               "agent bot", ::testing::StartsWith("insert ")));
}

TEST_P(StoreConformanceTest, ApprovalsPendingCapCountsUnexpiredPendingPerActor) {
  ASSERT_TRUE(store_->ResolveApproval(Approval("a1", "k1"), 1000, 2).ok());
  ASSERT_TRUE(store_->ResolveApproval(Approval("a2", "k2"), 1000, 2).ok());
  EXPECT_EQ(store_->ResolveApproval(Approval("a3", "k3"), 1000, 2).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(store_->GetApproval("a3", 1000).status().code(), absl::StatusCode::kNotFound);
  // Another actor has its own cap; a decided or expired approval no longer counts.
  EXPECT_TRUE(store_->ResolveApproval(Approval("b1", "kb", "other"), 1000, 2).ok());
  ASSERT_TRUE(store_->DecideApproval("a1", Decide(false, 1010)).ok());
  EXPECT_TRUE(store_->ResolveApproval(Approval("a3", "k3", "bot", 1010), 1010, 2).ok());
  EXPECT_EQ(store_->ResolveApproval(Approval("a4", "k4", "bot", 1050), 1050, 2).status().code(),
            absl::StatusCode::kResourceExhausted);  // a2 and a3 pending
  EXPECT_TRUE(store_->ResolveApproval(Approval("a5", "k5", "bot", 1100), 1100, 2).ok());  // a2 expired at 1100
}

TEST_P(StoreConformanceTest, ApprovalsDecideIsACompareAndSet) {
  ASSERT_TRUE(store_->ResolveApproval(Approval("a1", "k1"), 1000, 10).ok());
  ASSERT_TRUE(store_->ResolveApproval(Approval("a2", "k2"), 1000, 10).ok());
  EXPECT_EQ(store_->DecideApproval("nope", Decide(true, 1010)).status().code(), absl::StatusCode::kNotFound);
  auto d = store_->DecideApproval("a1", Decide(true, 1010, 2, 2000));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->status, "approved");
  EXPECT_EQ(d->uses_left, 2);
  EXPECT_EQ(d->expires_at, 2000);
  EXPECT_EQ(d->decided_at, 1010);
  EXPECT_EQ(d->approver, V("User", "carol"));
  EXPECT_EQ(d->note, "ok");
  EXPECT_EQ(store_->DecideApproval("a1", Decide(false, 1011)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Deciding an expired approval is refused, and a denial keeps the request's expiry.
  EXPECT_EQ(store_->DecideApproval("a2", Decide(true, 1100)).status().code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->ResolveApproval(Approval("a3", "k3"), 1000, 10).ok());
  auto denied = store_->DecideApproval("a3", Decide(false, 1020));
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, "denied");
  EXPECT_EQ(denied->expires_at, 1100);
  EXPECT_EQ(denied->uses_left, 0);
  Reopen();
  EXPECT_EQ(store_->GetApproval("a1", 1500)->status, "approved");
  EXPECT_EQ(store_->GetApproval("a3", 1500)->status, "denied");
}

TEST_P(StoreConformanceTest, ApprovalsAreUsedUpAndDeniedOnesAnswerTheirRequest) {
  ASSERT_TRUE(store_->ResolveApproval(Approval("a1", "k1"), 1000, 10).ok());
  ASSERT_TRUE(store_->DecideApproval("a1", Decide(true, 1010, 2, 2000)).ok());
  auto r = store_->ResolveApproval(Approval("x1", "k1"), 1020, 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->kind, ApprovalResolution::Kind::kUsed);
  EXPECT_EQ(r->record.id, "a1");
  EXPECT_EQ(r->record.uses_left, 1);
  EXPECT_EQ(r->record.status, "approved");
  r = store_->ResolveApproval(Approval("x2", "k1"), 1030, 10);
  EXPECT_EQ(r->kind, ApprovalResolution::Kind::kUsed);
  EXPECT_EQ(r->record.status, "used");
  EXPECT_EQ(store_->GetApproval("a1", 1030)->status, "used");
  // Used up: the next identical request opens a new approval.
  r = store_->ResolveApproval(Approval("x3", "k1", "bot", 1040), 1040, 10);
  EXPECT_EQ(r->kind, ApprovalResolution::Kind::kCreated);
  // A denial answers its request until it expires.
  ASSERT_TRUE(store_->DecideApproval("x3", Decide(false, 1050)).ok());
  r = store_->ResolveApproval(Approval("x4", "k1", "bot", 1060), 1060, 10);
  EXPECT_EQ(r->kind, ApprovalResolution::Kind::kDenied);
  EXPECT_EQ(r->record.id, "x3");
  // An approval for another request is not used.
  ASSERT_TRUE(store_->ResolveApproval(Approval("b1", "k2"), 1000, 10).ok());
  ASSERT_TRUE(store_->DecideApproval("b1", Decide(true, 1010, 1, 1500)).ok());
  EXPECT_EQ(store_->ResolveApproval(Approval("y1", "k3"), 1020, 10)->kind, ApprovalResolution::Kind::kCreated);
  // Nor an expired one.
  EXPECT_EQ(store_->ResolveApproval(Approval("y2", "k2", "bot", 1500), 1500, 10)->kind,
            ApprovalResolution::Kind::kCreated);
}

TEST_P(StoreConformanceTest, ApprovalsLastUseIsTakenOnceUnderConcurrency) {
  for (int round = 0; round < 5; ++round) {
    const std::string key = "k" + std::to_string(round), id = "a" + std::to_string(round);
    ASSERT_TRUE(store_->ResolveApproval(Approval(id, key), 1000, 100).ok());
    ASSERT_TRUE(store_->DecideApproval(id, Decide(true, 1010, 3, 2000)).ok());
    std::atomic<int> used{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        auto r = store_->ResolveApproval(Approval(id + "-" + std::to_string(t), key), 1020, 100);
        ASSERT_TRUE(r.ok()) << r.status();
        if (r->kind == ApprovalResolution::Kind::kUsed) ++used;
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(used.load(), 3);
    EXPECT_EQ(store_->GetApproval(id, 1020)->status, "used");
  }
}

TEST_P(StoreConformanceTest, ApprovalsListFiltersByStatusAsSeenNowAndActor) {
  ASSERT_TRUE(store_->ResolveApproval(Approval("a1", "k1", "bot", 1000), 1000, 10).ok());
  ASSERT_TRUE(store_->ResolveApproval(Approval("a2", "k2", "bot", 1001), 1001, 10).ok());
  ASSERT_TRUE(store_->ResolveApproval(Approval("a3", "k3", "other", 1002), 1002, 10).ok());
  ASSERT_TRUE(store_->ResolveApproval(Approval("a4", "k4", "bot", 1003), 1003, 10).ok());
  ASSERT_TRUE(store_->DecideApproval("a2", Decide(true, 1010, 1, 1050)).ok());
  ASSERT_TRUE(store_->DecideApproval("a4", Decide(false, 1010)).ok());
  auto ids = [&](ApprovalFilter f) {
    std::vector<std::string> out;
    auto l = store_->ListApprovals(f);
    EXPECT_TRUE(l.ok()) << l.status();
    if (l.ok()) {
      for (const ApprovalRecord& a : *l) out.push_back(a.id + ":" + a.status);
    }
    return out;
  };
  ApprovalFilter f;
  f.now_unix = 1020;
  EXPECT_THAT(ids(f), ElementsAre("a4:denied", "a3:pending", "a2:approved", "a1:pending"));
  f.status = "pending";
  EXPECT_THAT(ids(f), ElementsAre("a3:pending", "a1:pending"));
  f.actor = V("Agent", "bot");
  EXPECT_THAT(ids(f), ElementsAre("a1:pending"));
  f.now_unix = 1060;  // a2's approval lapsed at 1050
  f.status = "expired";
  EXPECT_THAT(ids(f), ElementsAre("a2:expired"));
  f.actor = V("Agent", "other");
  EXPECT_THAT(ids(f), IsEmpty());
  f.actor.reset();
  f.status = "approved";
  EXPECT_THAT(ids(f), IsEmpty());
  f.now_unix = 1200;
  f.status = "expired";
  EXPECT_THAT(ids(f), ElementsAre("a3:expired", "a2:expired", "a1:expired"));
  f.status = "";
  f.limit = 2;
  EXPECT_THAT(ids(f), ElementsAre("a4:denied", "a3:expired"));
}

TEST_P(StoreConformanceTest, ApprovalsExpireOnceEach) {
  ASSERT_TRUE(store_->ResolveApproval(Approval("a1", "k1", "bot", 1000), 1000, 10).ok());
  ASSERT_TRUE(store_->ResolveApproval(Approval("a2", "k2", "bot", 1050), 1050, 10).ok());
  ASSERT_TRUE(store_->ResolveApproval(Approval("a3", "k3", "bot", 1000), 1000, 10).ok());
  ASSERT_TRUE(store_->DecideApproval("a3", Decide(true, 1010, 1, 1120)).ok());
  auto e = store_->ExpireApprovals(1100);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->size(), 1u);
  EXPECT_EQ((*e)[0].id, "a1");
  EXPECT_EQ((*e)[0].status, "expired");
  EXPECT_THAT(*store_->ExpireApprovals(1100), IsEmpty());
  e = store_->ExpireApprovals(1200);
  ASSERT_EQ(e->size(), 2u);
  Reopen();
  EXPECT_EQ(store_->GetApproval("a3", 0)->status, "expired");  // stored, whatever the time
  EXPECT_EQ(store_->DecideApproval("a2", Decide(true, 1060)).status().code(), absl::StatusCode::kFailedPrecondition);
}

absl::StatusOr<std::unique_ptr<Store>> OpenSqlite(const std::string& dir) { return OpenSqliteStore(dir); }

// A database per test on the test server (tests/support/pg_test_env.h), named after `dir` and
// created on the first open.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgres(const std::string& dir) {
  const std::string marker = (std::filesystem::path(dir) / "pg-url").string();
  std::string url;
  if (std::ifstream in(marker); in) std::getline(in, url);
  if (url.empty()) {
    std::string why;
    const std::string server = mandate::testing::PgTestServerUrl(&why);
    if (server.empty()) return absl::FailedPreconditionError(why);
    std::string db = "conf_" + std::filesystem::path(dir).filename().string();
    std::transform(db.begin(), db.end(), db.begin(), [](unsigned char c) { return std::isalnum(c) ? std::tolower(c) : '_'; });
    url = mandate::testing::PgCreateTestDatabase(server, db, &why);
    if (url.empty()) return absl::UnavailableError(why);
    std::ofstream(marker) << url << "\n";
  }
  return OpenPostgresStore(url);
}

std::string PostgresSkipReason() {
  return mandate::testing::PgTestsOptedOut() ? "MANDATE_TEST_NO_POSTGRES=1: PostgreSQL tests skipped" : "";
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest,
                         ::testing::Values(StoreBackend{"sqlite", OpenSqlite},
                                           StoreBackend{"postgres", OpenPostgres, PostgresSkipReason}),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) { return info.param.name; });

}  // namespace
}  // namespace mandate::store
