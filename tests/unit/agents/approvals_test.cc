// Human approvals through Agents::Check over a real SQLite store and a compiled policy: binding to
// the exact request (arguments, chain), dedup while pending, the pending cap, expiry on a fake
// clock, single use under concurrent retries, who may approve (never the actor itself; the chain
// only where can_approve_in_chain says so), unknown and decided ids, and a restart.
#include "agents/approvals.h"

#include <atomic>
#include <filesystem>
#include <thread>

#include <boost/json/parse.hpp>
#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "agents/agents.h"

namespace mandate::agents {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kPolicy[] = R"(
actor User {}
actor Agent {}
resource Invoice {
  permissions = ["pay", "read"];
  roles = ["payer", "approver", "self_approver"];
  "pay" if "payer";
  "read" if "payer";
}
# An agent may do what the user it acts for may do.
has_permission(agent: Agent, action: String, inv: Invoice) if
  acts_for(agent, user) and has_permission(user, action, inv);
# Paying needs a person's approval; reading does not.
requires_approval(_: Agent, "pay", _: Invoice);
can_approve(u: User, _: Agent, "pay", inv: Invoice) if has_role(u, "approver", inv);
# A user may approve what an agent pays on their own behalf only as a self-approver.
can_approve_in_chain(u: User, agent: Agent, "pay", inv: Invoice) if
  acts_for(agent, u) and has_role(u, "self_approver", inv);
# Urgent payments must be approved within two minutes (else Config::approval_ttl_seconds).
approval_ttl(_: Agent, "pay", _: Invoice, 120) if context("urgency", "high");
approval_ttl(_: Agent, "pay", _: Invoice, 0) if context("urgency", "broken");
)";

TypedValue V(std::string type, std::string id) { return TypedValue{std::move(type), std::move(id)}; }
Fact F(std::string predicate, std::vector<TypedValue> args) { return Fact{std::move(predicate), std::move(args)}; }
const TypedValue kInvoice = V("Invoice", "1");
const TypedValue kBot = V("Agent", "pay-bot");
const TypedValue kAlice = V("User", "alice");
const TypedValue kBob = V("User", "bob");
const TypedValue kCarol = V("User", "carol");
const TypedValue kDave = V("User", "dave");

std::vector<std::string> Codes(const CheckResult& r) {
  std::vector<std::string> out;
  for (const Reason& reason : r.reasons) out.push_back(reason.code);
  return out;
}
std::vector<std::string> Events(const std::vector<ApprovalEvent>& events) {
  std::vector<std::string> out;
  for (const ApprovalEvent& e : events) out.push_back(e.event);
  return out;
}

class ApprovalsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "mandate-approvals-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto policy = Policy::Compile({SourceFile{"approvals.polar", kPolicy}});
    ASSERT_TRUE(policy.ok()) << policy.status();
    db_ = std::make_unique<Database>(*policy);
    std::vector<Change> changes;
    for (Fact f : {F("has_role", {kAlice, V("String", "payer"), kInvoice}),
                   F("has_role", {kAlice, V("String", "approver"), kInvoice}),
                   F("has_role", {kBob, V("String", "payer"), kInvoice}),
                   F("has_role", {kBob, V("String", "approver"), kInvoice}),
                   F("has_role", {kBob, V("String", "self_approver"), kInvoice}),
                   F("has_role", {kCarol, V("String", "approver"), kInvoice})}) {
      Change c;
      c.fact = std::move(f);
      changes.push_back(std::move(c));
    }
    ASSERT_TRUE(db_->Apply(changes).ok());
    config_.approval_ttl_seconds = 600;
    config_.purge_interval_seconds = 0;  // no background thread: the tests drive expiry
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
    auto a = Agents::Open(store_.get(), config_, nullptr, [this] { return now_.load(); });
    ASSERT_TRUE(a.ok()) << a.status();
    agents_ = *std::move(a);
  }
  CheckRequest Pay(TypedValue principal = kAlice, std::string arguments = "") {
    CheckRequest r;
    r.actor = kBot;
    r.on_behalf_of = {std::move(principal)};
    r.action = "pay";
    r.resource = kInvoice;
    r.context = {{"intent", V("String", "monthly run")}};
    r.now_unix = now_;
    if (!arguments.empty()) r.arguments_digest = ArgumentsDigest(boost::json::parse(arguments));
    return r;
  }
  CheckResult Check(const CheckRequest& r) { return agents_->Check(*db_->snapshot(), r); }
  absl::StatusOr<store::ApprovalRecord> Decide(const std::string& id, TypedValue approver, bool approve = true,
                                               std::optional<int64_t> uses = std::nullopt,
                                               std::optional<int64_t> ttl = std::nullopt) {
    ApprovalDecisionRequest d;
    d.approve = approve;
    d.approver = std::move(approver);
    d.note = "checked the invoice";
    d.uses = uses;
    d.ttl_seconds = ttl;
    events_.clear();
    return agents_->DecideApproval(*db_->snapshot(), id, d, &events_);
  }
  // A pending approval for Pay(principal, arguments).
  std::string Pending(TypedValue principal = kAlice, std::string arguments = "") {
    CheckResult r = Check(Pay(std::move(principal), std::move(arguments)));
    EXPECT_TRUE(r.approval_required) << ::testing::PrintToString(Codes(r));
    return r.approval ? r.approval->id : "";
  }

  std::string dir_;
  Config config_;
  std::atomic<int64_t> now_{1'800'000'000};
  std::unique_ptr<Database> db_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Agents> agents_;
  std::vector<ApprovalEvent> events_;
};

TEST(CanonicalJsonTest, SortsKeysAndDropsWhitespace) {
  EXPECT_EQ(CanonicalJson(boost::json::parse(R"({"b": [1, {"z": null, "a": "x"}], "a": true})")),
            R"({"a":true,"b":[1,{"a":"x","z":null}]})");
  EXPECT_EQ(ArgumentsDigest(boost::json::parse(R"({"to": "acme", "amount": 10})")),
            ArgumentsDigest(boost::json::parse(R"({"amount":10,"to":"acme"})")));
  EXPECT_NE(ArgumentsDigest(boost::json::parse(R"({"amount": 10})")),
            ArgumentsDigest(boost::json::parse(R"({"amount": 10000})")));
}

TEST_F(ApprovalsTest, AnAllowedRequestThatRequiresApprovalGetsOnePendingApproval) {
  CheckResult r = Check(Pay());
  EXPECT_FALSE(r.allowed);
  EXPECT_TRUE(r.approval_required);
  EXPECT_THAT(Codes(r), ElementsAre(kApprovalRequired));
  ASSERT_TRUE(r.approval.has_value());
  EXPECT_EQ(r.approval->status, "pending");
  EXPECT_EQ(r.approval->expires_at, now_ + 600);
  EXPECT_EQ(r.approval->actor, kBot);
  EXPECT_THAT(r.approval->on_behalf_of, ElementsAre(kAlice));
  EXPECT_EQ(r.approval->context_json, R"({"intent":"monthly run"})");
  EXPECT_THAT(r.approval->reasons_json, HasSubstr("requires_approval"));
  EXPECT_THAT(Events(r.approval_events), ElementsAre("requested"));
  // The same request while pending: the same approval, no new event.
  now_ += 5;
  CheckResult again = Check(Pay());
  EXPECT_TRUE(again.approval_required);
  EXPECT_EQ(again.approval->id, r.approval->id);
  EXPECT_THAT(again.approval_events, IsEmpty());
  // A request without requires_approval is answered at once, and a denied one never asks.
  CheckRequest read = Pay();
  read.action = "read";
  EXPECT_TRUE(Check(read).allowed);
  CheckRequest stranger = Pay(kDave);
  EXPECT_FALSE(Check(stranger).allowed);
  EXPECT_FALSE(Check(stranger).approval_required);
}

TEST_F(ApprovalsTest, AnApprovalIsUsedOnceAndBindsToTheExactRequest) {
  const std::string id = Pending(kAlice, R"({"amount": 10, "to": "acme"})");
  auto d = Decide(id, kCarol);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->status, "approved");
  EXPECT_EQ(d->uses_left, 1);
  EXPECT_EQ(d->approver, kCarol);
  EXPECT_THAT(Events(events_), ElementsAre("approved"));
  // Changed arguments, another chain or no arguments at all are other requests.
  CheckResult changed = Check(Pay(kAlice, R"({"amount": 10000, "to": "acme"})"));
  EXPECT_TRUE(changed.approval_required);
  EXPECT_NE(changed.approval->id, id);
  EXPECT_TRUE(Check(Pay(kBob, R"({"amount": 10, "to": "acme"})")).approval_required);
  EXPECT_TRUE(Check(Pay()).approval_required);
  // The same arguments, in another key order: allowed, once.
  CheckResult used = Check(Pay(kAlice, R"({"to": "acme", "amount": 10})"));
  EXPECT_TRUE(used.allowed);
  EXPECT_THAT(Codes(used), IsEmpty());
  EXPECT_EQ(used.approval->id, id);
  EXPECT_EQ(used.approval->status, "used");
  EXPECT_THAT(Events(used.approval_events), ElementsAre("used"));
  CheckResult next = Check(Pay(kAlice, R"({"amount": 10, "to": "acme"})"));
  EXPECT_TRUE(next.approval_required);
  EXPECT_NE(next.approval->id, id);
}

TEST_F(ApprovalsTest, UsesAndTtlSecondsWidenAnApproval) {
  const std::string id = Pending();
  EXPECT_EQ(Decide(id, kCarol, true, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decide(id, kCarol, true, 1, kMaxApprovalTtlSeconds + 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Decide(id, kCarol, false, 2).status().code(), absl::StatusCode::kInvalidArgument);
  auto d = Decide(id, kCarol, true, 3, 60);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->expires_at, now_ + 60);
  EXPECT_TRUE(Check(Pay()).allowed);
  EXPECT_TRUE(Check(Pay()).allowed);
  now_ += 60;  // lapsed with one use left
  EXPECT_TRUE(Check(Pay()).approval_required);
  EXPECT_EQ(agents_->approvals().Get(id)->status, "expired");
}

TEST_F(ApprovalsTest, ApprovalTtlRulesSetHowLongAnApprovalStaysValid) {
  CheckRequest urgent = Pay();
  urgent.context.push_back({"urgency", V("String", "high")});
  CheckResult r = Check(urgent);
  ASSERT_TRUE(r.approval_required);
  EXPECT_EQ(r.approval->expires_at, now_ + 120);  // not the config's 600
  now_ += 10;
  auto d = Decide(r.approval->id, kCarol);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->expires_at, now_ + 120);  // usable as long as it waited, unless the approver says
  // A rule that binds seconds out of range fails closed.
  CheckRequest broken = Pay();
  broken.context.push_back({"urgency", V("String", "broken")});
  CheckResult b = Check(broken);
  EXPECT_FALSE(b.allowed);
  EXPECT_FALSE(b.approval_required);
  EXPECT_THAT(Codes(b), ElementsAre(kEvaluationError));
}

TEST_F(ApprovalsTest, PendingApprovalsExpireOnTheClock) {
  const std::string id = Pending();
  std::vector<std::string> expired;
  agents_->approvals().SetExpiryListener([&](const ApprovalEvent& e) { expired.push_back(e.approval.id); });
  now_ += 599;
  ASSERT_TRUE(agents_->approvals().ExpireDue().ok());
  EXPECT_THAT(expired, IsEmpty());
  EXPECT_EQ(agents_->approvals().Get(id)->status, "pending");
  now_ += 1;
  EXPECT_EQ(agents_->approvals().Get(id)->status, "expired");
  EXPECT_EQ(Decide(id, kCarol).status().code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(agents_->approvals().ExpireDue().ok());
  ASSERT_TRUE(agents_->approvals().ExpireDue().ok());
  EXPECT_THAT(expired, ElementsAre(id));  // reported once
  // The same request now opens a new approval.
  CheckResult r = Check(Pay());
  EXPECT_TRUE(r.approval_required);
  EXPECT_NE(r.approval->id, id);
}

TEST_F(ApprovalsTest, ExactlyOneOfConcurrentRetriesUsesAnApproval) {
  for (int round = 0; round < 5; ++round) {
    const std::string args = absl::StrCat(R"({"round": )", round, "}");
    const std::string id = Pending(kAlice, args);
    ASSERT_TRUE(Decide(id, kCarol).ok());
    std::atomic<int> allowed{0}, asked{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        CheckResult r = Check(Pay(kAlice, args));
        if (r.allowed) ++allowed;
        if (r.approval_required) ++asked;
      });
    }
    for (std::thread& t : threads) t.join();
    EXPECT_EQ(allowed.load(), 1);
    EXPECT_EQ(asked.load(), 7);  // the others get one new pending approval
  }
}

TEST_F(ApprovalsTest, OnlyApproversForWhomCanApproveHoldsMayDecide) {
  const std::string id = Pending();
  auto refused = Decide(id, kDave);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("can_approve(User:dave"));
  ASSERT_THAT(Events(events_), ElementsAre("refused"));
  EXPECT_EQ(events_[0].by, kDave);
  // The agent itself never may, even though nothing in the policy is consulted for it.
  auto self = Decide(id, kBot);
  EXPECT_EQ(self.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(self.status().message(), HasSubstr("may not approve"));
  // alice is an approver of the invoice but the agent acts for her: no can_approve_in_chain.
  auto own = Decide(id, kAlice);
  EXPECT_EQ(own.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(own.status().message(), HasSubstr("on_behalf_of chain"));
  EXPECT_EQ(agents_->approvals().Get(id)->status, "pending");
  // bob is a self-approver: he may approve what the agent pays for him.
  const std::string bobs = Pending(kBob);
  auto by_bob = Decide(bobs, kBob);
  EXPECT_TRUE(by_bob.ok()) << by_bob.status();
}

TEST_F(ApprovalsTest, UnknownAndDecidedApprovalsAreRefused) {
  EXPECT_EQ(Decide("apr_nope", kCarol).status().code(), absl::StatusCode::kNotFound);
  const std::string id = Pending();
  auto denied = Decide(id, kCarol, false);
  ASSERT_TRUE(denied.ok());
  EXPECT_EQ(denied->status, "denied");
  EXPECT_THAT(Events(events_), ElementsAre("denied"));
  EXPECT_EQ(Decide(id, kCarol).status().code(), absl::StatusCode::kAborted);
  // The request it was for is denied (not asked again) while the denial stands.
  CheckResult r = Check(Pay());
  EXPECT_FALSE(r.allowed);
  EXPECT_FALSE(r.approval_required);
  EXPECT_THAT(Codes(r), ElementsAre(kApprovalDenied));
  EXPECT_THAT(r.reasons[0].message, HasSubstr("checked the invoice"));
}

TEST_F(ApprovalsTest, PendingApprovalsPerActorAreCapped) {
  config_.max_pending_approvals = 2;
  Reopen();
  Pending(kAlice, R"({"n": 1})");
  Pending(kAlice, R"({"n": 2})");
  CheckResult r = Check(Pay(kAlice, R"({"n": 3})"));
  EXPECT_FALSE(r.allowed);
  EXPECT_FALSE(r.approval_required);
  EXPECT_THAT(Codes(r), ElementsAre(kTooManyPendingApprovals));
  // An identical request still finds its pending approval.
  EXPECT_TRUE(Check(Pay(kAlice, R"({"n": 2})")).approval_required);
}

TEST_F(ApprovalsTest, PendingApprovalsSurviveARestart) {
  const std::string id = Pending();
  Reopen();
  auto a = agents_->approvals().Get(id);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->status, "pending");
  EXPECT_EQ(Check(Pay()).approval->id, id);
  ASSERT_TRUE(Decide(id, kCarol).ok());
  Reopen();
  EXPECT_TRUE(Check(Pay()).allowed);
}

TEST_F(ApprovalsTest, WatchersWakeOnADecision) {
  const std::string id = Pending();
  std::atomic<int> woken{0};
  const uint64_t token = agents_->approvals().Watch(id, [&] { ++woken; });
  const uint64_t other = agents_->approvals().Watch("apr_other", [&] { woken += 100; });
  ASSERT_TRUE(Decide(id, kCarol).ok());
  EXPECT_EQ(woken.load(), 1);
  agents_->approvals().Unwatch(token);
  agents_->approvals().Unwatch(other);
}

}  // namespace
}  // namespace mandate::agents
