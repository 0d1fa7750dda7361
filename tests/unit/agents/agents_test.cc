// The agents module over a real SQLite store and a compiled policy: the delegation ceiling with
// chains of 1 to 4, chain validation, suspension, context, owners, grants that expire or end with
// their task (also across a restart), and rate limits as rules ask for them.
#include "agents/agents.h"

#include <atomic>
#include <filesystem>
#include <thread>

#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mandate::agents {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPolicy[] = R"(
actor User {}
actor Agent {}
resource Account {
  permissions = ["read", "email", "delete"];
  roles = ["viewer", "manager"];
  "read" if "viewer";
  "email" if "manager";
  "viewer" if "manager";
}
# An agent reads what the people it acts for manage, on a managed device.
has_permission(agent: Agent, "read", account: Account) if
  acts_for(agent, user) and has_role(user, "manager", account) and context("device", "managed");
# An agent may email for its owner.
has_permission(agent: Agent, "email", account: Account) if
  has_relation(agent, "owner", user) and has_role(user, "manager", account);
rate_limit(_: Agent, "email", _: Account, "email", 3, 60);
rate_limit(_: Agent, "email", _: Account, "burst", 2, 1);
declare delegates(User, Agent);
declare delegates(Agent, Agent);
declare has_relation(Agent, String, User);
)";

TypedValue V(std::string type, std::string id) { return TypedValue{std::move(type), std::move(id)}; }
Fact F(std::string predicate, std::vector<TypedValue> args) { return Fact{std::move(predicate), std::move(args)}; }
const TypedValue kAccount = V("Account", "42");
const TypedValue kBot = V("Agent", "churn-bot");

std::vector<std::string> Codes(const CheckResult& r) {
  std::vector<std::string> out;
  for (const Reason& reason : r.reasons) out.push_back(reason.code);
  return out;
}

class AgentsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "mandate-agents-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto policy = Policy::Compile({SourceFile{"agents.polar", kPolicy}});
    ASSERT_TRUE(policy.ok()) << policy.status();
    db_ = std::make_unique<Database>(*policy);
    Reopen();
  }
  void TearDown() override {
    agents_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    agents_.reset();
    store_.reset();
    auto s = store::OpenSqliteStore(dir_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
    auto a = Agents::Open(store_.get(), config_, [this] { return clock_ms_.load(); });
    ASSERT_TRUE(a.ok()) << a.status();
    agents_ = *std::move(a);
  }
  void Insert(std::vector<Fact> facts) {
    std::vector<Change> changes;
    for (Fact& f : facts) {
      Change c;
      c.fact = std::move(f);
      changes.push_back(std::move(c));
    }
    auto r = db_->Apply(changes);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  CheckResult Check(CheckRequest req) { return agents_->Check(*db_->snapshot(), req); }
  CheckRequest Request(TypedValue actor, std::vector<TypedValue> chain, std::string action = "read") {
    CheckRequest req;
    req.actor = std::move(actor);
    req.on_behalf_of = std::move(chain);
    req.action = std::move(action);
    req.resource = kAccount;
    req.context = {{"device", V("String", "managed")}};
    req.now_unix = 1'800'000'000;
    return req;
  }

  std::string dir_;
  Config config_;
  std::atomic<int64_t> clock_ms_{1'000'000};
  std::unique_ptr<Database> db_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Agents> agents_;
};

// Chains of 1 to 4 users; each user in turn lacks the permission and must be the one named.
class CeilingTest : public AgentsTest, public ::testing::WithParamInterface<int> {};

TEST_P(CeilingTest, AllowOnlyIfEveryPrincipalIsAllowedAndNameTheOneThatIsNot) {
  const int n = GetParam();
  std::vector<TypedValue> chain;
  for (int i = 0; i < n; ++i) chain.push_back(V("User", "u" + std::to_string(i)));
  for (int missing = -1; missing < n; ++missing) {
    db_ = std::make_unique<Database>(db_->snapshot()->policy());
    std::vector<Fact> roles{F("has_role", {kBot, V("String", "viewer"), kAccount})};
    for (int i = 0; i < n; ++i) {
      if (i != missing) roles.push_back(F("has_role", {chain[i], V("String", "viewer"), kAccount}));
    }
    Insert(roles);
    const CheckResult r = Check(Request(kBot, chain));
    if (missing < 0) {
      EXPECT_TRUE(r.allowed) << "chain of " << n;
      EXPECT_THAT(r.reasons, IsEmpty());
    } else {
      EXPECT_FALSE(r.allowed) << "chain of " << n << ", u" << missing << " lacks the role";
      ASSERT_THAT(Codes(r), ElementsAre(kDelegatorDenied));
      EXPECT_THAT(r.reasons[0].message, HasSubstr("User:u" + std::to_string(missing) + " (on_behalf_of[" +
                                                  std::to_string(missing) + "]) may not read Account:42"));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Chains, CeilingTest, ::testing::Values(1, 2, 3, 4));

TEST_F(AgentsTest, TheActorItselfMustBeAllowed) {
  Insert({F("has_role", {V("User", "alice"), V("String", "viewer"), kAccount})});
  const CheckResult r = Check(Request(V("Agent", "other"), {V("User", "alice")}, "delete"));
  EXPECT_FALSE(r.allowed);
  EXPECT_THAT(Codes(r), ElementsAre(kActorDenied, kDelegatorDenied));
}

TEST_F(AgentsTest, LinksAreVisibleAsActsForAndContextIsVisible) {
  // The agent has no role of its own: it reads through acts_for + its principal's manager role.
  Insert({F("has_role", {V("User", "alice"), V("String", "manager"), kAccount})});
  EXPECT_TRUE(Check(Request(kBot, {V("User", "alice")})).allowed);
  CheckRequest unmanaged = Request(kBot, {V("User", "alice")});
  unmanaged.context = {{"device", V("String", "personal")}};
  EXPECT_THAT(Codes(Check(unmanaged)), ElementsAre(kActorDenied));
  // Without a chain there is no acts_for link.
  EXPECT_THAT(Codes(Check(Request(kBot, {}))), ElementsAre(kActorDenied));
}

TEST_F(AgentsTest, ChainsLongerThanTheMaximumAreRejected) {
  std::vector<TypedValue> chain;
  for (int i = 0; i < 5; ++i) chain.push_back(V("User", "u" + std::to_string(i)));
  const CheckResult r = Check(Request(kBot, chain));
  EXPECT_FALSE(r.allowed);
  EXPECT_THAT(Codes(r), ElementsAre(kChainTooLong));
}

TEST_F(AgentsTest, RequiredDelegationFactsBackEveryLink) {
  config_.require_delegation_fact = true;
  Reopen();
  const TypedValue sub = V("Agent", "drafter");
  Insert({F("has_role", {V("User", "alice"), V("String", "viewer"), kAccount}),
          F("has_role", {kBot, V("String", "viewer"), kAccount}), F("has_role", {sub, V("String", "viewer"), kAccount}),
          F("delegates", {V("User", "alice"), kBot})});
  EXPECT_TRUE(Check(Request(kBot, {V("User", "alice")})).allowed);
  // The sub-agent link drafter -> churn-bot is not backed.
  CheckResult r = Check(Request(sub, {kBot, V("User", "alice")}));
  EXPECT_THAT(Codes(r), ElementsAre(kDelegationNotBacked));
  EXPECT_THAT(r.reasons[0].message, HasSubstr("delegates(Agent:churn-bot, Agent:drafter)"));
  // A context fact backs it for one request.
  CheckRequest backed = Request(sub, {kBot, V("User", "alice")});
  backed.context_facts.push_back(F("delegates", {kBot, sub}));
  EXPECT_TRUE(Check(backed).allowed);
  // And without the requirement, an unbacked link is fine.
  config_.require_delegation_fact = false;
  Reopen();
  EXPECT_TRUE(Check(Request(sub, {kBot, V("User", "alice")})).allowed);
}

TEST_F(AgentsTest, SuspendedAgentsAreDeniedFromTheNextRequestAndOwnersAreFacts) {
  Insert({F("has_role", {V("User", "alice"), V("String", "manager"), kAccount})});
  store::AgentRecord bot;
  bot.id = "churn-bot";
  bot.owner = V("User", "alice");
  ASSERT_TRUE(agents_->CreateAgent(bot).ok());
  EXPECT_EQ(agents_->CreateAgent(bot).status().code(), absl::StatusCode::kAlreadyExists);
  // email is allowed through the owner fact; alice may email herself.
  EXPECT_TRUE(Check(Request(kBot, {V("User", "alice")}, "email")).allowed);
  AgentPatch suspend;
  suspend.status = "suspended";
  ASSERT_TRUE(agents_->UpdateAgent("churn-bot", suspend).ok());
  EXPECT_THAT(Codes(Check(Request(kBot, {V("User", "alice")}, "email"))), ElementsAre(kAgentSuspended));
  // A suspended agent anywhere in the chain denies too.
  EXPECT_THAT(Codes(Check(Request(V("Agent", "drafter"), {kBot, V("User", "alice")}))), ElementsAre(kAgentSuspended));
  // The registry survives a restart.
  Reopen();
  ASSERT_TRUE(agents_->GetAgent("churn-bot").has_value());
  EXPECT_EQ(agents_->GetAgent("churn-bot")->status, "suspended");
  AgentPatch bad;
  bad.status = "paused";
  EXPECT_EQ(agents_->UpdateAgent("churn-bot", bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(agents_->UpdateAgent("nobody", suspend).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(agents_->DeleteAgent("churn-bot").ok());
  EXPECT_EQ(agents_->DeleteAgent("churn-bot").code(), absl::StatusCode::kNotFound);
  // Without the registry entry there is no owner fact any more.
  EXPECT_THAT(Codes(Check(Request(kBot, {V("User", "alice")}, "email"))), ElementsAre(kActorDenied));
}

TEST_F(AgentsTest, GrantsExpireBetweenTwoChecks) {
  Insert({F("has_role", {V("User", "alice"), V("String", "viewer"), kAccount})});
  CheckRequest req = Request(kBot, {V("User", "alice")});
  EXPECT_THAT(Codes(Check(req)), ElementsAre(kActorDenied));
  ASSERT_TRUE(agents_->Grant({F("has_role", {kBot, V("String", "viewer"), kAccount})}, "", req.now_unix + 10).ok());
  req.now_unix += 9;
  EXPECT_TRUE(Check(req).allowed);
  req.now_unix += 1;  // the expiry second itself
  EXPECT_THAT(Codes(Check(req)), ElementsAre(kActorDenied));
  // Purging deletes it from storage; it was invisible before already.
  auto purged = agents_->PurgeExpiredGrants(req.now_unix);
  ASSERT_TRUE(purged.ok());
  EXPECT_EQ(*purged, 1);
  EXPECT_THAT(*store_->ListGrants(), IsEmpty());
}

TEST_F(AgentsTest, CompletingATaskRevokesAllItsGrantsAtOnceAndForGood) {
  Insert({F("has_role", {V("User", "alice"), V("String", "viewer"), kAccount})});
  const CheckRequest req = Request(kBot, {V("User", "alice")});
  EXPECT_TRUE(agents_
                  ->Grant({F("has_role", {kBot, V("String", "viewer"), kAccount}),
                           F("has_role", {kBot, V("String", "viewer"), V("Account", "43")})},
                          "t-77", std::nullopt)
                  .ok());
  EXPECT_EQ(agents_->Grant({}, "", std::nullopt).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Check(req).allowed);
  EXPECT_EQ(agents_->TaskGrants("t-77", req.now_unix).size(), 2u);
  Reopen();  // grants are durable
  EXPECT_TRUE(Check(req).allowed);
  auto done = agents_->CompleteTask("t-77");
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->status, "completed");
  EXPECT_THAT(Codes(Check(req)), ElementsAre(kActorDenied));
  EXPECT_TRUE(agents_->CompleteTask("t-77").ok());  // idempotent
  EXPECT_EQ(agents_->CompleteTask("t-78").status().code(), absl::StatusCode::kNotFound);
  // A completed task takes no new grants, and stays completed across a restart.
  EXPECT_EQ(
      agents_->Grant({F("has_role", {kBot, V("String", "viewer"), kAccount})}, "t-77", std::nullopt).status().code(),
      absl::StatusCode::kFailedPrecondition);
  Reopen();
  EXPECT_EQ(agents_->GetTask("t-77")->status, "completed");
  EXPECT_THAT(Codes(Check(req)), ElementsAre(kActorDenied));
}

TEST_F(AgentsTest, TaskCompletionRacingWithChecksNeverAllowsAfterItReturns) {
  Insert({F("has_role", {V("User", "alice"), V("String", "viewer"), kAccount})});
  ASSERT_TRUE(agents_->Grant({F("has_role", {kBot, V("String", "viewer"), kAccount})}, "race", std::nullopt).ok());
  // `completed` is set (seq_cst) only after CompleteTask returned, so a check that read it as true
  // before it started began after CompleteTask returned: it must not be allowed.
  std::atomic<bool> completed{false};
  std::atomic<int> allowed_before{0};
  std::atomic<int> allowed_after{0};
  std::atomic<int> checks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 300; ++i) {
        const bool done_before = completed.load();
        const CheckResult r = Check(Request(kBot, {V("User", "alice")}));
        ++checks;
        if (r.allowed) ++(done_before ? allowed_after : allowed_before);
      }
    });
  }
  while (checks.load() < 200) std::this_thread::yield();
  const absl::Status done = agents_->CompleteTask("race").status();
  completed = true;
  for (auto& t : threads) t.join();  // before any ASSERT: a running std::thread must not be destroyed
  ASSERT_TRUE(done.ok()) << done;
  // The 200 checks that ended before CompleteTask began were allowed: checks did race the grant.
  EXPECT_GE(allowed_before.load(), 200);
  EXPECT_EQ(allowed_after.load(), 0);
}

TEST_F(AgentsTest, RateLimitsCountAllowedDecisionsPerActorAndBucket) {
  Insert({F("has_role", {V("User", "alice"), V("String", "manager"), kAccount})});
  store::AgentRecord bot;
  bot.id = "churn-bot";
  bot.owner = V("User", "alice");
  ASSERT_TRUE(agents_->CreateAgent(bot).ok());
  const CheckRequest email = Request(kBot, {V("User", "alice")}, "email");
  // "burst": 2 per second; "email": 3 per minute.
  EXPECT_TRUE(Check(email).allowed);
  EXPECT_TRUE(Check(email).allowed);
  CheckResult r = Check(email);
  EXPECT_THAT(Codes(r), ElementsAre(kRateLimited));
  EXPECT_EQ(r.retry_after_seconds, 1);
  EXPECT_THAT(r.reasons[0].message, HasSubstr("bucket \"burst\""));
  clock_ms_ += 1000;
  EXPECT_TRUE(Check(email).allowed);
  clock_ms_ += 1000;
  r = Check(email);
  EXPECT_THAT(Codes(r), ElementsAre(kRateLimited));
  EXPECT_THAT(r.reasons[0].message, HasSubstr("bucket \"email\""));
  EXPECT_EQ(r.retry_after_seconds, 58);
  // Denied decisions are not counted, and other actions are not limited.
  EXPECT_TRUE(Check(Request(kBot, {V("User", "alice")})).allowed);
  clock_ms_ += 58'000;
  EXPECT_TRUE(Check(email).allowed);
}

TEST(RateLimiterTest, NeverMoreThanMaxInAnyWindowUnderConcurrency) {
  RateLimiter limiter;
  const std::vector<RateRule> rules{{"b", 5, 1}};
  std::atomic<int64_t> now{0};
  std::mutex mu;
  std::vector<int64_t> allowed_at;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 400; ++i) {
        // A shared, advancing clock (ms). A thread may be preempted between reading it and
        // Acquire, so the limiter can see times out of order; it reports the time it counted.
        const RateVerdict v = limiter.Acquire("Agent:x", rules, now.fetch_add(1 + (i + t) % 3));
        if (v.allowed) {
          std::lock_guard<std::mutex> l(mu);
          allowed_at.push_back(v.at_ms);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::sort(allowed_at.begin(), allowed_at.end());
  ASSERT_GT(allowed_at.size(), 5u);
  for (size_t i = 5; i < allowed_at.size(); ++i) {
    // The 6th allowed request after any allowed one is at least a full window later.
    EXPECT_GE(allowed_at[i] - allowed_at[i - 5], 1000) << "window starting at " << allowed_at[i - 5];
  }
  // Other actors have their own counters.
  EXPECT_TRUE(limiter.Acquire("Agent:y", rules, now.load()).allowed);
}

TEST(RateLimiterTest, ZeroMaxAllowsNothingAndAllRulesMustHaveRoom) {
  RateLimiter limiter;
  RateVerdict v = limiter.Acquire("a", {{"none", 0, 10}}, 0);
  EXPECT_FALSE(v.allowed);
  EXPECT_EQ(v.retry_after_seconds, 10);
  // "wide" has room but "narrow" is full: nothing is recorded in "wide".
  ASSERT_TRUE(limiter.Acquire("a", {{"narrow", 1, 10}}, 0).allowed);
  EXPECT_FALSE(limiter.Acquire("a", {{"wide", 1, 10}, {"narrow", 1, 10}}, 1).allowed);
  EXPECT_TRUE(limiter.Acquire("a", {{"wide", 1, 10}}, 2).allowed);
}

}  // namespace
}  // namespace mandate::agents
