// The Store conformance suite (DESIGN §6): every backend runs these tests. A new backend adds a
// StoreBackend to kBackends at the bottom of this file.
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <mutex>
#include <thread>

#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "store/store.h"

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
};

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
        Fact f = F("has_role", {V("User", "u" + std::to_string(t)), V("String", "r"), V("Org", std::to_string(i))});
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
  EXPECT_EQ(*store_->Revision(), 0u);  // agents are not facts: no revision
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

absl::StatusOr<std::unique_ptr<Store>> OpenSqlite(const std::string& dir) { return OpenSqliteStore(dir); }

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformanceTest, ::testing::Values(StoreBackend{"sqlite", OpenSqlite}),
                         [](const ::testing::TestParamInfo<StoreBackend>& info) { return info.param.name; });

}  // namespace
}  // namespace mandate::store
