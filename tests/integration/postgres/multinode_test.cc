// Several `mandate serve` nodes on one PostgreSQL database (issue 10, docs/operations.md):
// read-your-writes across nodes with the OsoOffset token, one total order of concurrent writes, a
// late node catching up, a database restart under load, and task completion seen by every node.
// The database server comes from the ctest fixture (tests/postgres.cmake); the restart test starts
// its own through scripts/pg-test-server so that it can stop it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <boost/json.hpp>
#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "../../support/pg_test_env.h"
#include "../server_harness.h"

namespace mandate::testing {
namespace {

namespace json = boost::json;

std::string OrgMember(const std::string& user, const std::string& org) {
  return FactJson("has_role", {{"User", user}, {"String", "member"}, {"Org", org}});
}

// POST /api/authorize on `node` (read key) with an optional OsoOffset; returns the HTTP result.
HttpResult Authorize(const ServerProcess& node, const std::string& user, const std::string& org,
                     const std::string& offset = "") {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!offset.empty()) headers.emplace_back("OsoOffset", offset);
  return node.Post("/api/authorize",
                   json::serialize(json::object{{"actor_type", "User"},
                                                {"actor_id", user},
                                                {"action", "read"},
                                                {"resource_type", "Org"},
                                                {"resource_id", org}}),
                   kReadKey, headers);
}

bool Allowed(const HttpResult& r) { return r.status == 200 && r.json.is_object() && r.json.at("allowed") == true; }

// Runs `shell` (a command line) and returns its exit status.
int Shell(const std::string& command) { return std::system(command.c_str()); }

std::string Script() { return std::string(MANDATE_SOURCE_DIR) + "/scripts/pg-test-server"; }

class MultiNodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (PgTestsOptedOut()) GTEST_SKIP() << "MANDATE_TEST_NO_POSTGRES=1: PostgreSQL tests skipped";
    std::string why;
    server_url_ = PgTestServerUrl(&why);
    ASSERT_FALSE(server_url_.empty()) << why;
    NewDatabase(server_url_);
  }

  void NewDatabase(const std::string& server_url) {
    std::string why;
    std::string db = std::string("multi_") + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::transform(db.begin(), db.end(), db.begin(),
                   [](unsigned char c) { return std::isalnum(c) ? std::tolower(c) : '_'; });
    url_ = PgCreateTestDatabase(server_url, db, &why);
    ASSERT_FALSE(url_.empty()) << why;
  }

  // Starts one more node on the test database.
  ServerProcess& StartNode() {
    dirs_.push_back(std::make_unique<TempDir>());
    nodes_.push_back(std::make_unique<ServerProcess>(dirs_.back()->Join("data")));
    std::string err;
    EXPECT_TRUE(nodes_.back()->Start({"--store", url_}, &err)) << err;
    return *nodes_.back();
  }

  void LoadPolicy(ServerProcess& node) {
    HttpResult r =
        node.Post("/api/policy",
                  json::serialize(json::object{{"src", ReadFile(TestData("policy.polar"))}, {"filename", "p.polar"}}));
    ASSERT_EQ(r.status, 200) << r.body;
  }

  // POST /api/facts of one fact on `node`; returns its revision (0 if not acknowledged).
  static uint64_t Insert(const ServerProcess& node, const std::string& fact) {
    HttpResult r = node.Post("/api/facts", fact);
    if (r.status != 201 && r.status != 200) return 0;
    return std::stoull(r.Header("osooffset"));
  }

  // Waits until every node serves at least `revision`.
  void AwaitAll(uint64_t revision, std::chrono::seconds bound = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    for (auto& n : nodes_) {
      while (n->Revision() < revision && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      EXPECT_GE(n->Revision(), revision) << "node on port " << n->port() << " did not catch up";
    }
  }

  std::string server_url_;
  std::string url_;
  std::vector<std::unique_ptr<TempDir>> dirs_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

TEST_F(MultiNodeTest, AFactWrittenOnANodeIsVisibleOnAnotherWithItsToken) {
  ServerProcess& a = StartNode();
  ServerProcess& b = StartNode();
  LoadPolicy(a);
  for (int i = 0; i < 20; ++i) {
    const std::string org = "org" + std::to_string(i);
    const uint64_t rev = Insert(a, OrgMember("alice", org));
    ASSERT_GT(rev, 0u);
    // The first request to B with A's token already sees the write.
    HttpResult r = Authorize(b, "alice", org, std::to_string(rev));
    EXPECT_TRUE(Allowed(r)) << "revision " << rev << ": " << r.status << " " << r.body;
  }
  // Policy uploads travel too: B serves A's policy version.
  EXPECT_EQ(b.Get("/v1/policy/versions", kReadKey).json.at("active_version"), 1);
  // A token no node has reached is refused after the bounded wait, with Retry-After.
  HttpResult ahead = Authorize(b, "alice", "org0", "999999");
  EXPECT_EQ(ahead.status, 409) << ahead.body;
  EXPECT_EQ(ahead.Header("retry-after"), "1");
  json::value ready = b.Get("/readyz", "").json;
  EXPECT_EQ(ready.at("store").at("backend"), "postgres") << json::serialize(ready);
  EXPECT_EQ(ready.at("store").at("connected"), true);
}

TEST_F(MultiNodeTest, ConcurrentWritersOnEveryNodeGetOneTotalOrder) {
  for (int i = 0; i < 3; ++i) StartNode();
  LoadPolicy(*nodes_[0]);
  constexpr int kWritersPerNode = 2, kWrites = 25;
  std::mutex mu;
  std::vector<uint64_t> revisions;
  std::vector<std::thread> writers;
  for (size_t n = 0; n < nodes_.size(); ++n) {
    for (int w = 0; w < kWritersPerNode; ++w) {
      writers.emplace_back([&, n, w] {
        for (int i = 0; i < kWrites; ++i) {
          // (Built with append: GCC 12 warns falsely about "literal" + std::string&&.)
          const std::string user = std::string("u")
                                       .append(std::to_string(n))
                                       .append("_")
                                       .append(std::to_string(w))
                                       .append("_")
                                       .append(std::to_string(i));
          const uint64_t rev = Insert(*nodes_[n], OrgMember(user, "acme"));
          std::lock_guard<std::mutex> l(mu);
          revisions.push_back(rev);
        }
      });
    }
  }
  for (auto& t : writers) t.join();
  std::sort(revisions.begin(), revisions.end());
  const size_t total = nodes_.size() * kWritersPerNode * kWrites;
  ASSERT_EQ(revisions.size(), total);
  // Revision 1 is the policy; the writes took 2..total+1, each exactly once.
  for (size_t i = 0; i < total; ++i) ASSERT_EQ(revisions[i], i + 2) << "revisions are not one dense total order";
  AwaitAll(total + 1);
  // Every node holds every write (no lost write), checked through its own snapshot.
  for (auto& node : nodes_) {
    HttpResult facts = node->Get("/api/facts?predicate=has_role", kReadKey);
    ASSERT_EQ(facts.status, 200);
    EXPECT_EQ(facts.json.as_array().size(), total) << "node on port " << node->port();
  }
}

TEST_F(MultiNodeTest, ANodeStartedLaterCatchesUpAndFollows) {
  ServerProcess& a = StartNode();
  LoadPolicy(a);
  uint64_t rev = 0;
  for (int i = 0; i < 30; ++i) rev = Insert(a, OrgMember("user" + std::to_string(i), "acme"));
  ASSERT_GT(rev, 0u);
  ASSERT_EQ(a.Delete("/api/facts", OrgMember("user0", "acme")).status, 200);
  ServerProcess& late = StartNode();
  EXPECT_FALSE(Allowed(Authorize(late, "user0", "acme")));
  EXPECT_TRUE(Allowed(Authorize(late, "user29", "acme")));
  // And follows new writes.
  const uint64_t next = Insert(a, OrgMember("newcomer", "acme"));
  EXPECT_TRUE(Allowed(Authorize(late, "newcomer", "acme", std::to_string(next))));
}

// Grants, agents, tasks and approval decisions take a revision like fact writes: the token a write
// on one node returns (OsoOffset and "revision") makes the first request carrying it on any other
// node see the write.

// The revision token of a write's answer: its OsoOffset header, which the body's "revision" repeats.
std::string Token(const HttpResult& r) {
  EXPECT_TRUE(r.json.is_object() && r.json.as_object().contains("revision")) << r.body;
  if (r.json.is_object() && r.json.as_object().contains("revision")) {
    EXPECT_EQ(r.json.at("revision"), json::value(r.Header("osooffset"))) << r.body;
  }
  EXPECT_FALSE(r.Header("osooffset").empty()) << r.status << " " << r.body;
  return r.Header("osooffset");
}

// The headers of a request carrying `token` ("" = none).
std::vector<std::pair<std::string, std::string>> Carrying(const std::string& token) {
  if (token.empty()) return {};
  return {{"OsoOffset", token}};
}

// POST /v1/check of pay-bot acting for alice on invoice 1, carrying `token`; returns the decision.
std::string AgentCheck(const ServerProcess& node, const std::string& action, const std::string& token) {
  HttpResult r = node.Post("/v1/check",
                           R"({"actor":{"type":"Agent","id":"pay-bot"},"on_behalf_of":[{"type":"User","id":"alice"}],)"
                           R"("action":")" +
                               action + R"(","resource":{"type":"Invoice","id":"1"}})",
                           kReadKey, Carrying(token));
  if (r.status != 200 || !r.json.is_object()) return std::to_string(r.status) + " " + r.body;
  std::string out(r.json.at("decision").as_string());
  if (!r.json.at("reasons").as_array().empty())
    out += " " + std::string(r.json.at("reasons").at(0).at("code").as_string());
  return out;
}

TEST_F(MultiNodeTest, AgentGrantTaskAndApprovalWritesCarryARevisionToken) {
  ServerProcess& a = StartNode();
  ServerProcess& b = StartNode();
  HttpResult p = a.Post(
      "/api/policy",
      json::serialize(json::object{{"src", ReadFile(TestData("approvals_policy.polar"))}, {"filename", "a.polar"}}));
  ASSERT_EQ(p.status, 200) << p.body;
  const uint64_t policy = std::stoull(p.Header("osooffset"));

  // An agent registered on A is known to B with A's token.
  HttpResult reg = a.Post("/v1/agents", R"({"id":"pay-bot","owner":{"type":"User","id":"alice"}})");
  ASSERT_EQ(reg.status, 201) << reg.body;
  EXPECT_GT(std::stoull(Token(reg)), policy);
  HttpResult known = b.Get("/v1/agents/pay-bot", kReadKey, Carrying(Token(reg)));
  EXPECT_EQ(known.status, 200) << known.body;

  // Grants for a task: B allows with the grant's token.
  HttpResult grant = a.Post(
      "/v1/grants", "{\"facts\":[" + FactJson("has_role", {{"User", "alice"}, {"String", "payer"}, {"Invoice", "1"}}) +
                        "," + FactJson("has_role", {{"User", "carol"}, {"String", "approver"}, {"Invoice", "1"}}) +
                        "],\"task\":\"t-1\"}");
  ASSERT_EQ(grant.status, 201) << grant.body;
  EXPECT_EQ(AgentCheck(b, "read", Token(grant)), "allow");

  // An approval decided on A lets the retry on B through with the decision's token.
  HttpResult ask = a.Post("/v1/check",
                          R"({"actor":{"type":"Agent","id":"pay-bot"},"on_behalf_of":[{"type":"User","id":"alice"}],)"
                          R"("action":"pay","resource":{"type":"Invoice","id":"1"}})",
                          kReadKey);
  ASSERT_EQ(ask.status, 200) << ask.body;
  ASSERT_EQ(ask.json.at("decision"), "approval_required") << ask.body;
  const std::string id(ask.json.at("approval").at("id").as_string());
  HttpResult approved = a.Post("/v1/approvals/" + id + "/approve", R"({"approver":{"type":"User","id":"carol"}})");
  ASSERT_EQ(approved.status, 200) << approved.body;
  EXPECT_EQ(AgentCheck(b, "pay", Token(approved)), "allow");

  // Suspended on A: denied on B from A's token on; active again: allowed again.
  auto patch = [&](const std::string& status) {
    return Http(a.port(), "PATCH", "/v1/agents/pay-bot", R"({"status":")" + status + R"("})",
                {{"Authorization", std::string("Bearer ") + kAdminKey}});
  };
  HttpResult suspended = patch("suspended");
  ASSERT_EQ(suspended.status, 200) << suspended.body;
  EXPECT_EQ(AgentCheck(b, "read", Token(suspended)), "deny agent_suspended");
  HttpResult active = patch("active");
  ASSERT_EQ(active.status, 200) << active.body;
  EXPECT_EQ(AgentCheck(b, "read", Token(active)), "allow");

  // The task completed on A: the first check on B with A's token denies.
  HttpResult done = a.Post("/v1/tasks/t-1/complete", "");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_THAT(AgentCheck(b, "read", Token(done)), ::testing::StartsWith("deny "));
  // Deleting the agent travels the same way.
  HttpResult deleted = a.Delete("/v1/agents/pay-bot", "");
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(b.Get("/v1/agents/pay-bot", kReadKey, Carrying(Token(deleted))).status, 404);
  // Tokens and fact revisions are one order: a fact write after them takes a later revision.
  const uint64_t fact = Insert(b, FactJson("has_role", {{"User", "x"}, {"String", "payer"}, {"Invoice", "2"}}));
  EXPECT_GT(fact, std::stoull(Token(deleted)));
}

TEST_F(MultiNodeTest, TaskCompletionOnOneNodeDeniesOnEveryNode) {
  ServerProcess& a = StartNode();
  ServerProcess& b = StartNode();
  ServerProcess& c = StartNode();
  LoadPolicy(a);
  HttpResult g = a.Post("/v1/grants", "{\"facts\":[" + OrgMember("bot", "acme") + "],\"task\":\"t-1\"}");
  ASSERT_EQ(g.status, 201) << g.body;
  const std::string check =
      R"({"actor":{"type":"User","id":"bot"},"action":"read","resource":{"type":"Org","id":"acme"}})";
  auto allowed = [&](const ServerProcess& n, const std::string& token) {
    HttpResult r = n.Post("/v1/check", check, kReadKey, Carrying(token));
    return r.status == 200 && r.json.at("allowed") == true;
  };
  // Every node allows from the grant's token on, and denies from the completion's token on.
  EXPECT_TRUE(allowed(b, Token(g)));
  EXPECT_TRUE(allowed(c, Token(g)));
  HttpResult done = a.Post("/v1/tasks/t-1/complete", "");
  ASSERT_EQ(done.status, 200) << done.body;
  EXPECT_FALSE(allowed(a, Token(done)));
  EXPECT_FALSE(allowed(b, Token(done)));
  EXPECT_FALSE(allowed(c, Token(done)));
  // A completed task stays revoked everywhere, including for grants sent to another node.
  HttpResult late = c.Post("/v1/grants", "{\"facts\":[" + OrgMember("bot", "acme") + "],\"task\":\"t-1\"}");
  EXPECT_EQ(late.status, 422) << late.body;
  EXPECT_NE(late.body.find("is completed"), std::string::npos) << late.body;
  EXPECT_FALSE(allowed(a, ""));
  EXPECT_FALSE(allowed(b, Token(done)));
}

// Rate-limit counters are kept per node (docs/operations.md): each node allows `max` per window.
TEST_F(MultiNodeTest, RateLimitsAreCountedPerNode) {
  ServerProcess& a = StartNode();
  ServerProcess& b = StartNode();
  HttpResult p = a.Post(
      "/api/policy", json::serialize(json::object{{"src",
                                                   "actor User {}\n"
                                                   "resource Account { permissions = [\"read\"]; }\n"
                                                   "has_permission(_: User, \"read\", _: Account);\n"
                                                   "rate_limit(_: User, \"read\", _: Account, \"reads\", 2, 3600);\n"},
                                                  {"filename", "limits.polar"}}));
  ASSERT_EQ(p.status, 200) << p.body;
  AwaitAll(1);  // the policy is revision 1
  const std::string check =
      R"({"actor":{"type":"User","id":"u"},"action":"read","resource":{"type":"Account","id":"1"}})";
  auto decision = [&](const ServerProcess& n) {
    HttpResult r = n.Post("/v1/check", check, kReadKey);
    return r.json.is_object() ? std::string(r.json.at("decision").as_string()) : r.body;
  };
  for (ServerProcess* n : {&a, &b}) {
    EXPECT_EQ(decision(*n), "allow");
    EXPECT_EQ(decision(*n), "allow");
    EXPECT_EQ(decision(*n), "deny") << "the third check on one node is over the limit";
  }
}

// The database stops in the middle of writes and comes back: every acknowledged write survives and
// is served by every node; writes during the outage fail fast with 503; checks keep being answered
// from the snapshot; the nodes recover without a restart.
TEST_F(MultiNodeTest, DatabaseRestartUnderLoad) {
  TempDir pg;
  ASSERT_EQ(Shell(Script() + " start " + pg.path() + " >/dev/null"), 0);
  struct Cleanup {
    std::string cmd;
    ~Cleanup() { std::system(cmd.c_str()); }
  } cleanup{Script() + " destroy " + pg.path() + " >/dev/null"};
  NewDatabase(ReadFile(pg.Join("url")).substr(0, ReadFile(pg.Join("url")).find('\n')));
  if (HasFatalFailure()) return;
  ServerProcess& a = StartNode();
  ServerProcess& b = StartNode();
  LoadPolicy(a);
  ASSERT_TRUE(Allowed(Authorize(b, "nobody", "acme")) == false);
  Insert(a, OrgMember("before", "acme"));

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<std::string> acknowledged;
  std::atomic<int> unavailable{0}, other{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      ServerProcess& node = w == 0 ? a : b;
      for (int i = 0; !stop; ++i) {
        const std::string user = std::string("w").append(std::to_string(w)).append("_").append(std::to_string(i));
        HttpResult r = node.Post("/api/facts", OrgMember(user, "acme"));
        if (r.status == 201 || r.status == 200) {
          std::lock_guard<std::mutex> l(mu);
          acknowledged.push_back(user);
        } else if (r.status == 503) {
          ++unavailable;
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        } else {
          ++other;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_EQ(Shell(Script() + " stop " + pg.path()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  // Down: checks are answered from the snapshot; /readyz says the node lost the database.
  EXPECT_TRUE(Allowed(Authorize(b, "before", "acme")));
  const auto down_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (b.Get("/readyz", "").json.at("store").at("connected") == true &&
         std::chrono::steady_clock::now() < down_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(b.Get("/readyz", "").json.at("store").at("connected"), false);
  ASSERT_EQ(Shell(Script() + " start " + pg.path() + " >/dev/null"), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  stop = true;
  for (auto& t : writers) t.join();
  EXPECT_GT(unavailable.load(), 0) << "the outage was not noticed by the writers";
  EXPECT_EQ(other.load(), 0) << "writes failed with something other than 503 during the outage";
  // Recovered: a new write on each node is acknowledged and seen on the other with its token.
  const uint64_t ra = Insert(a, OrgMember("after_a", "acme"));
  const uint64_t rb = Insert(b, OrgMember("after_b", "acme"));
  ASSERT_GT(ra, 0u);
  ASSERT_GT(rb, 0u);
  EXPECT_TRUE(Allowed(Authorize(b, "after_a", "acme", std::to_string(ra))));
  EXPECT_TRUE(Allowed(Authorize(a, "after_b", "acme", std::to_string(rb))));
  AwaitAll(std::max(ra, rb));
  // No acknowledged write lost, on either node.
  for (auto& node : nodes_) {
    HttpResult facts = node->Get("/api/facts?predicate=has_role", kReadKey);
    ASSERT_EQ(facts.status, 200);
    std::set<std::string> users;
    for (const json::value& f : facts.json.as_array()) {
      users.insert(std::string(f.at("args").at(0).at("id").as_string()));
    }
    for (const std::string& u : acknowledged) EXPECT_TRUE(users.contains(u)) << u << " lost on port " << node->port();
  }
  EXPECT_TRUE(b.Get("/readyz", "").json.at("store").at("connected") == true);
}

}  // namespace
}  // namespace mandate::testing
