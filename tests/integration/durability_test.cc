// Durability over real processes: state survives a clean restart, --policy/--facts load and
// persist, every acknowledged write survives SIGKILL, and SIGTERM finishes requests in flight.
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server_harness.h"

namespace mandate::testing {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

class DurabilityTest : public ServerTest {
 protected:
  // Stops (or kills) the running server and starts a new one on the same data directory.
  void Restart(bool kill, const std::vector<std::string>& args = {}) {
    if (kill) {
      server_->Kill();
    } else {
      EXPECT_EQ(server_->Stop(), 0) << server_->stderr_text();
    }
    server_ = std::make_unique<ServerProcess>(dir_.Join("data"));
    std::string err;
    ASSERT_TRUE(server_->Start(args, &err)) << err;
  }
};

TEST_F(DurabilityTest, StateSurvivesARestart) {
  LoadPolicy();
  Batch("[{\"inserts\":[" + FactJson("has_role", {{"User", "alice"}, {"String", "member"}, {"Org", "acme"}}) + "," +
        FactJson("audit_tag", {{"Repo", "anvil"}, {"String", "pci"}}) + "]}]");
  Batch(R"([{"deletes":[{"predicate":"audit_tag","args":[{"type":null,"id":null},{"type":null,"id":null}]}]}])");
  const std::string v2 = json::serialize(json::object{{"src", ReadFile(TestData("policy.polar")) + "\n# v2\n"}});
  ASSERT_EQ(server_->Post("/api/policy", v2).status, 200);
  const State before = Observe();
  ASSERT_EQ(before.facts.size(), 1u);
  Restart(/*kill=*/false);
  EXPECT_EQ(Observe(), before);
  // Writes continue from the stored revision.
  EXPECT_EQ(Batch("[{\"inserts\":[" + FactJson("audit_tag", {{"Repo", "x"}, {"String", "y"}}) + "]}]"),
            before.revision + 1);
}

// The "revision" a decision reports is the store revision its snapshot has applied: the number
// space of the OsoOffset tokens writes return, so it is comparable with them and never goes back
// when the server restarts on the same data.
TEST_F(DurabilityTest, DecisionsReportTheStoreRevision) {
  LoadPolicy();
  uint64_t token = 0;
  for (const char* org : {"acme", "globex", "initech"}) {
    token = Batch("[{\"inserts\":[" + FactJson("has_role", {{"User", "alice"}, {"String", "member"}, {"Org", org}}) +
                  "]}]");
  }
  const std::string check = R"({"actor":{"type":"User","id":"alice"},"action":"read","resource":{"type":"Org","id":"initech"}})";
  auto decided_at = [&](const HttpResult& r, const json::value& decision) -> uint64_t {
    EXPECT_EQ(r.status, 200) << r.body;
    if (!decision.is_object() || !decision.as_object().contains("revision")) {
      ADD_FAILURE() << "no revision in " << r.body;
      return 0;
    }
    EXPECT_EQ(decision.at("allowed"), json::value(true)) << r.body;
    return std::stoull(std::string(decision.at("revision").as_string()));
  };
  const HttpResult single = server_->Post("/v1/check", check, kReadKey);
  EXPECT_GE(decided_at(single, single.json), token);
  const HttpResult batch = server_->Post("/v1/check/batch", "{\"checks\":[" + check + "]}", kReadKey);
  ASSERT_TRUE(batch.json.is_object()) << batch.body;
  EXPECT_GE(decided_at(batch, batch.json.at("decisions").at(0)), token);

  Restart(/*kill=*/false);
  const HttpResult after = server_->Post("/v1/check", check, kReadKey);
  EXPECT_GE(decided_at(after, after.json), token);
  EXPECT_EQ(decided_at(after, after.json), server_->Revision());
  // A later write's token is again covered by the next decision.
  const uint64_t next = Batch("[{\"inserts\":[" + FactJson("audit_tag", {{"Repo", "x"}, {"String", "y"}}) + "]}]");
  EXPECT_GT(next, token);
  const HttpResult later = server_->Post("/v1/check", check, kReadKey);
  EXPECT_GE(decided_at(later, later.json), next);
}

TEST_F(DurabilityTest, PolicyAndFactsFilesAreLoadedAndStored) {
  Restart(false, {"--policy", TestData("policy.polar"), "--facts", TestData("facts.jsonl")});
  const State loaded = Observe();
  EXPECT_EQ(loaded.facts.size(), 3u);
  EXPECT_THAT(loaded.versions, HasSubstr("\"filename\":\"policy.polar\""));
  HttpResult allowed = server_->Post(
      "/api/authorize",
      R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":"Repo","resource_id":"anvil"})");
  EXPECT_EQ(allowed.body, R"({"allowed":true})");
  // Without the flags, the stored state is served.
  Restart(false);
  EXPECT_EQ(Observe(), loaded);
  // With them again: the policy is unchanged (no new version) and the facts are a set.
  Restart(false, {"--policy", TestData("policy.polar"), "--facts", TestData("facts.jsonl")});
  const State again = Observe();
  EXPECT_EQ(again.facts, loaded.facts);
  EXPECT_EQ(again.versions, loaded.versions);
}

TEST_F(DurabilityTest, InvalidStartupFilesStopTheServerWithTheReason) {
  EXPECT_EQ(server_->Stop(), 0);
  ServerProcess bad(dir_.Join("data"));
  auto [status, err] = bad.StartExpectingFailure({"--policy", TestData("policy_failing_test.polar")});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(err, HasSubstr("readers can push (wrong on purpose)"));
  auto [status2, err2] =
      bad.StartExpectingFailure({"--policy", TestData("policy.polar"), "--facts", TestData("bad_facts.jsonl")});
  EXPECT_EQ(status2, 2);
  EXPECT_THAT(err2, HasSubstr("bad_facts.jsonl"));
  EXPECT_THAT(err2, HasSubstr("no_such_predicate"));
  // Nothing of the rejected facts file was stored (it is one atomic write).
  server_ = std::make_unique<ServerProcess>(dir_.Join("data"));
  ASSERT_TRUE(server_->Start());
  EXPECT_TRUE(AllFacts().empty());
}

TEST_F(DurabilityTest, ASecondServerCannotUseTheSameDataDirectory) {
  ServerProcess second(dir_.Join("data"));
  auto [status, err] = second.StartExpectingFailure({});
  EXPECT_EQ(status, 2);
  EXPECT_THAT(err, HasSubstr("in use by another mandate process"));
}

// Writers stream acknowledged inserts (several at once, so group commit is exercised) while the
// server is killed with SIGKILL; after a restart every acknowledged write is present.
TEST_F(DurabilityTest, EveryAcknowledgedWriteSurvivesSigkill) {
  LoadPolicy();
  std::set<std::string> acknowledged;
  uint64_t max_offset = 0;
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(round);
    std::mutex mu;
    std::atomic<bool> stop{false};
    std::atomic<int> acks{0};
    std::vector<std::thread> writers;
    const uint16_t port = server_->port();  // the writers never touch server_, which Restart replaces
    for (int t = 0; t < 4; ++t) {
      writers.emplace_back([&, t] {
        for (int n = 0; !stop; ++n) {
          const std::string id = "r" + std::to_string(round) + "-w" + std::to_string(t) + "-" + std::to_string(n);
          const std::string fact = FactJson("audit_tag", {{"Repo", id}, {"String", "t"}});
          HttpResult r = Http(port, "POST", "/api/batch", "[{\"inserts\":[" + fact + "]}]",
                              {{"Authorization", std::string("Bearer ") + kAdminKey}});
          if (r.status != 200) break;  // the server is gone
          std::lock_guard<std::mutex> l(mu);
          acknowledged.insert(fact);
          max_offset = std::max<uint64_t>(max_offset, std::stoull(r.Header("osooffset")));
          ++acks;
        }
      });
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (acks < 150 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    Restart(/*kill=*/true);  // SIGKILL while the writers are still sending
    stop = true;
    for (auto& w : writers) w.join();
    ASSERT_GE(acks.load(), 150);

    std::set<std::string> stored;
    HttpResult r = server_->Get("/api/facts?predicate=audit_tag");
    ASSERT_EQ(r.status, 200);
    for (const json::value& f : r.json.as_array()) stored.insert(json::serialize(f));
    for (const std::string& fact : acknowledged) EXPECT_TRUE(stored.count(fact)) << "lost acknowledged write " << fact;
    EXPECT_GE(server_->Revision(), max_offset);
  }
}

TEST_F(DurabilityTest, SigtermFinishesRequestsInFlight) {
  LoadPolicy();
  std::string body = "[{\"inserts\":[";
  for (int i = 0; i < 20000; ++i) {
    body += FactJson("audit_tag", {{"Repo", "bulk" + std::to_string(i)}, {"String", "t"}}) + ",";
  }
  body.back() = ']';
  body += "}]";
  const std::string request =
      "POST /api/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Authorization: Bearer " +
      std::string(kAdminKey) + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  std::string response;
  std::thread client([&] { response = RawExchange(server_->port(), request, std::chrono::seconds(30)); });
  // An idle keep-alive connection must not hold up the shutdown.
  std::thread idle([&] { RawExchange(server_->port(), "", std::chrono::seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(server_->Stop(), 0) << server_->stderr_text();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
  client.join();
  idle.join();
  EXPECT_THAT(response, HasSubstr("HTTP/1.1 200"));
  EXPECT_THAT(response, HasSubstr("Connection: close"));

  server_ = std::make_unique<ServerProcess>(dir_.Join("data"));
  ASSERT_TRUE(server_->Start());
  HttpResult r = server_->Get("/api/facts?predicate=audit_tag");
  EXPECT_EQ(r.json.as_array().size(), 20000u);
}

}  // namespace
}  // namespace mandate::testing
