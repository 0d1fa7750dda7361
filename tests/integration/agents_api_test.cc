// The native agent endpoints over real HTTP (docs/agents.md): the registry and suspension, the
// delegation ceiling, trusted request time, grants that expire between two checks, task
// completion racing with checks, rate limits under concurrent requests (also across a policy
// reload), the /api/batch grant extension, and bad input to every endpoint.
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server_harness.h"

namespace mandate::testing {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

constexpr char kPolicy[] = R"(
actor User {}
actor Agent {}
resource Account {
  permissions = ["read", "email", "delete", "archive"];
  roles = ["viewer", "manager"];
  "read" if "viewer";
  "viewer" if "manager";
  "email" if "manager";
}
has_permission(agent: Agent, "email", account: Account) if
  has_relation(agent, "owner", user) and has_role(user, "manager", account);
# Archiving was possible only before 2023-11-14 (@current_unix_time 1700000000).
has_permission(_: User, "archive", _: Account) if @current_unix_time < 1700000000;
rate_limit(_: Agent, "email", _: Account, "email", 5, 3600);
declare has_relation(Agent, String, User);
)";

std::string Value(const std::string& type, const std::string& id) {
  return json::serialize(json::object{{"type", type}, {"id", id}});
}

class AgentsApiTest : public ServerTest {
 protected:
  void SetUp() override {
    ServerTest::SetUp();
    UploadPolicy(kPolicy);
    Batch("[{\"inserts\":[" + FactJson("has_role", {{"User", "alice"}, {"String", "manager"}, {"Account", "42"}}) +
          "," + FactJson("has_role", {{"User", "bob"}, {"String", "viewer"}, {"Account", "42"}}) + "]}]");
  }
  void UploadPolicy(const std::string& text) {
    HttpResult r = server_->Post("/api/policy", json::serialize(json::object{{"src", text}, {"filename", "a.polar"}}));
    ASSERT_EQ(r.status, 200) << r.body;
  }
  // POST /v1/check; returns the parsed response (asserting 200).
  json::object Check(const std::string& actor, const std::vector<std::string>& chain, const std::string& action,
                     const std::string& resource, const std::string& extra = "", const std::string& key = kAdminKey) {
    std::string body = "{\"actor\":" + actor + ",\"action\":\"" + action + "\",\"resource\":" + resource;
    if (!chain.empty()) {
      body += ",\"on_behalf_of\":[";
      for (size_t i = 0; i < chain.size(); ++i) body += (i ? "," : "") + chain[i];
      body += "]";
    }
    body += extra + "}";
    HttpResult r = server_->Post("/v1/check", body, key);
    EXPECT_EQ(r.status, 200) << body << " -> " << r.body;
    return r.json.is_object() ? r.json.as_object() : json::object{};
  }
  static std::string Code(const json::object& d) {
    const json::array& reasons = d.at("reasons").as_array();
    return reasons.empty() ? "" : std::string(reasons[0].at("code").as_string());
  }
  HttpResult Patch(const std::string& target, const std::string& body) const {
    return Http(server_->port(), "PATCH", target, body, {{"Authorization", std::string("Bearer ") + kAdminKey}});
  }

  const std::string bot_ = Value("Agent", "churn-bot");
  const std::string alice_ = Value("User", "alice");
  const std::string bob_ = Value("User", "bob");
  const std::string account_ = Value("Account", "42");
};

TEST_F(AgentsApiTest, RegistryOwnersAndSuspension) {
  HttpResult r = server_->Post("/v1/agents", R"({"id":"churn-bot","owner":{"type":"User","id":"alice"},
                                                "description":"reviews churn"})");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(r.json.at("status"), "active");
  EXPECT_EQ(r.json.at("type"), "Agent");
  EXPECT_EQ(server_->Post("/v1/agents", R"({"id":"churn-bot"})").status, 409);
  EXPECT_EQ(server_->Get("/v1/agents/churn-bot", kReadKey).json.at("owner").at("id"), "alice");
  EXPECT_EQ(server_->Get("/v1/agents", kReadKey).json.at("agents").as_array().size(), 1u);
  EXPECT_EQ(server_->Get("/v1/agents/nobody").status, 404);

  // The owner fact lets the agent email alice's customers, within the ceiling.
  json::object d = Check(bot_, {alice_}, "email", account_);
  EXPECT_EQ(d.at("decision"), "allow");
  EXPECT_EQ(d.at("allowed"), true);
  EXPECT_FALSE(d.at("request_id").as_string().empty());
  EXPECT_FALSE(d.at("revision").as_string().empty());

  r = Patch("/v1/agents/churn-bot", R"({"status":"suspended"})");
  ASSERT_EQ(r.status, 200) << r.body;
  d = Check(bot_, {alice_}, "email", account_);
  EXPECT_EQ(d.at("decision"), "deny");
  EXPECT_EQ(Code(d), "agent_suspended");

  ASSERT_EQ(Patch("/v1/agents/churn-bot", R"({"status":"active"})").status, 200);
  EXPECT_EQ(Check(bot_, {alice_}, "email", account_).at("decision"), "allow");
  // The registry is durable.
  ASSERT_EQ(server_->Stop(), 0);
  ASSERT_TRUE(server_->Start());
  EXPECT_EQ(server_->Get("/v1/agents/churn-bot").json.at("description"), "reviews churn");
  EXPECT_EQ(Http(server_->port(), "DELETE", "/v1/agents/churn-bot", "",
                 {{"Authorization", std::string("Bearer ") + kAdminKey}})
                .status,
            200);
  EXPECT_EQ(server_->Get("/v1/agents/churn-bot").status, 404);
  EXPECT_EQ(Code(Check(bot_, {alice_}, "email", account_)), "actor_denied");
}

TEST_F(AgentsApiTest, CeilingOverChainsOfOneToFour) {
  Batch("[{\"inserts\":[" + FactJson("has_role", {{"Agent", "churn-bot"}, {"String", "viewer"}, {"Account", "42"}}) +
        "]}]");
  std::vector<std::string> chain;
  for (int n = 1; n <= 4; ++n) {
    chain.push_back(n == 3 ? Value("User", "carol") : (n % 2 ? alice_ : bob_));
    json::object d = Check(bot_, chain, "read", account_, ",\"explain\":true");
    if (n < 3) {
      EXPECT_EQ(d.at("decision"), "allow") << n;
      EXPECT_EQ(d.at("explanation").at("evaluations").as_array().size(), static_cast<size_t>(n + 1));
    } else {
      // carol (on_behalf_of[2]) has no role on the account.
      EXPECT_EQ(d.at("decision"), "deny") << n;
      EXPECT_EQ(Code(d), "delegator_denied");
      EXPECT_THAT(std::string(d.at("reasons").at(0).at("message").as_string()),
                  HasSubstr("User:carol (on_behalf_of[2])"));
    }
  }
  chain.push_back(alice_);
  EXPECT_EQ(Code(Check(bot_, chain, "read", account_)), "chain_too_long");
}

TEST_F(AgentsApiTest, RequestTimeIsHonouredOnlyForAdminKeys) {
  const std::string past = ",\"time\":\"2020-01-01T09:00:00-05:00\"";
  EXPECT_EQ(Check(bob_, {}, "archive", account_, past).at("decision"), "allow");
  EXPECT_EQ(Check(bob_, {}, "archive", account_, past, kReadKey).at("decision"), "deny");
  EXPECT_EQ(Check(bob_, {}, "archive", account_).at("decision"), "deny");
}

TEST_F(AgentsApiTest, GrantsExpireBetweenTwoChecks) {
  EXPECT_EQ(Code(Check(bot_, {bob_}, "read", account_)), "actor_denied");
  HttpResult r = server_->Post(
      "/v1/grants", "{\"facts\":[" +
                        FactJson("has_role", {{"Agent", "churn-bot"}, {"String", "viewer"}, {"Account", "42"}}) +
                        "],\"ttl_seconds\":2}");
  ASSERT_EQ(r.status, 201) << r.body;
  const auto granted = std::chrono::system_clock::now();
  EXPECT_EQ(Check(bot_, {bob_}, "read", account_).at("decision"), "allow");
  // The grant ends at a whole second at most 2 s after it was made.
  std::this_thread::sleep_until(granted + std::chrono::milliseconds(2100));
  EXPECT_EQ(Code(Check(bot_, {bob_}, "read", account_)), "actor_denied");
}

TEST_F(AgentsApiTest, TaskCompletionRacingWithChecksNeverAllowsAfterTheAcknowledgement) {
  HttpResult r = server_->Post(
      "/v1/grants", "{\"facts\":[" +
                        FactJson("has_role", {{"Agent", "churn-bot"}, {"String", "viewer"}, {"Account", "42"}}) +
                        "],\"task\":\"t-77\"}");
  ASSERT_EQ(r.status, 201) << r.body;
  EXPECT_EQ(server_->Get("/v1/tasks/t-77", kReadKey).json.at("grants").as_array().size(), 1u);
  std::atomic<bool> acknowledged{false};
  std::atomic<int> allowed_after{0}, allowed_before{0}, sent_after{0};
  const std::string body =
      "{\"actor\":" + bot_ + ",\"on_behalf_of\":[" + bob_ + "],\"action\":\"read\",\"resource\":" + account_ + "}";
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&] {
      while (sent_after.load() < 40) {
        const bool after = acknowledged.load();
        HttpResult c = server_->Post("/v1/check", body, kReadKey);
        const bool allowed = c.json.is_object() && c.json.at("allowed") == true;
        if (after) {
          ++sent_after;
          if (allowed) ++allowed_after;
        } else if (allowed) {
          ++allowed_before;
        }
      }
    });
  }
  while (allowed_before.load() < 20) std::this_thread::yield();
  r = server_->Post("/v1/tasks/t-77/complete", "");
  ASSERT_EQ(r.status, 200) << r.body;
  acknowledged = true;
  for (auto& c : clients) c.join();
  EXPECT_EQ(allowed_after.load(), 0);
  json::value task = server_->Get("/v1/tasks/t-77").json;
  EXPECT_EQ(task.at("status"), "completed");
  EXPECT_TRUE(task.at("grants").as_array().empty());
}

TEST_F(AgentsApiTest, RateLimitsUnderConcurrentRequestsAndAcrossPolicyReloads) {
  ASSERT_EQ(server_->Post("/v1/agents", R"({"id":"churn-bot","owner":{"type":"User","id":"alice"}})").status, 201);
  const std::string body =
      "{\"actor\":" + bot_ + ",\"on_behalf_of\":[" + alice_ + "],\"action\":\"email\",\"resource\":" + account_ + "}";
  std::atomic<int> allowed{0}, limited{0};
  std::mutex mu;
  std::vector<int64_t> retry_after;
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&] {
      for (int i = 0; i < 4; ++i) {
        HttpResult c = server_->Post("/v1/check", body, kReadKey);
        if (c.json.at("allowed") == true) {
          ++allowed;
        } else if (c.json.at("reasons").at(0).at("code") == "rate_limited") {
          ++limited;
          std::lock_guard<std::mutex> l(mu);
          retry_after.push_back(c.json.at("retry_after_seconds").as_int64());
        }
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(allowed.load(), 5);
  EXPECT_EQ(limited.load(), 27);
  for (int64_t s : retry_after) {
    EXPECT_GT(s, 3500);
    EXPECT_LE(s, 3600);
  }
  // Counters survive a policy reload.
  UploadPolicy(std::string(kPolicy) + "\n# reloaded\n");
  EXPECT_EQ(Code(Check(bot_, {alice_}, "email", account_)), "rate_limited");
}

TEST_F(AgentsApiTest, BatchInsertsMayCarryGrantMetadata) {
  const std::string authorize =
      R"({"actor_type":"Agent","actor_id":"churn-bot","action":"read","resource_type":"Account","resource_id":"42"})";
  EXPECT_EQ(server_->Post("/api/authorize", authorize).json.at("allowed"), false);
  Batch("[{\"inserts\":[" + FactJson("has_role", {{"Agent", "churn-bot"}, {"String", "viewer"}, {"Account", "42"}}) +
        "],\"mandate\":{\"task\":\"t-9\",\"ttl_seconds\":600}}]");
  // AuthZEN decisions see grants too.
  const std::string evaluation =
      R"({"subject":{"type":"Agent","id":"churn-bot"},"action":{"name":"read"},"resource":{"type":"Account","id":"42"}})";
  EXPECT_EQ(server_->Post("/api/authorize", authorize).json.at("allowed"), true);
  EXPECT_EQ(server_->Post("/access/v1/evaluation", evaluation).json.at("decision"), true);
  EXPECT_EQ(Check(bot_, {bob_}, "read", account_).at("decision"), "allow");
  ASSERT_EQ(server_->Post("/v1/tasks/t-9/complete", "").status, 200);
  EXPECT_EQ(server_->Post("/api/authorize", authorize).json.at("allowed"), false);
  EXPECT_EQ(server_->Post("/access/v1/evaluation", evaluation).json.at("decision"), false);
  // A completed task takes no more grants.
  HttpResult r = server_->Post(
      "/v1/grants", "{\"facts\":[" +
                        FactJson("has_role", {{"Agent", "churn-bot"}, {"String", "viewer"}, {"Account", "42"}}) +
                        "],\"task\":\"t-9\"}");
  EXPECT_EQ(r.status, 422) << r.body;
  EXPECT_THAT(r.Message(), HasSubstr("task \"t-9\" is completed"));
}

struct BadRequest {
  std::string name;
  std::string method;
  std::string target;
  std::string body;
  int status;
  std::string message;
};

TEST_F(AgentsApiTest, BadInputToEveryEndpointIsA4xxThatChangesNothing) {
  ASSERT_EQ(server_->Post("/v1/agents", R"({"id":"churn-bot"})").status, 201);
  const std::string fact = FactJson("has_role", {{"Agent", "churn-bot"}, {"String", "viewer"}, {"Account", "42"}});
  ASSERT_EQ(server_->Post("/v1/grants", "{\"facts\":[" + fact + "],\"task\":\"t-1\"}").status, 201);
  const std::string check_ok = "\"actor\":" + bot_ + ",\"action\":\"read\",\"resource\":" + account_;
  const std::vector<BadRequest> cases = {
      {"check_malformed", "POST", "/v1/check", "{\"actor\":", 400, "malformed JSON"},
      {"check_not_object", "POST", "/v1/check", "[]", 400, "expected an object"},
      {"check_missing_actor", "POST", "/v1/check", R"({"action":"read","resource":{"type":"A","id":"1"}})", 400,
       "at /actor: required field is missing"},
      {"check_bad_actor", "POST", "/v1/check", "{\"actor\":\"bot\",\"action\":\"read\",\"resource\":" + account_ + "}",
       400, "at /actor: expected an object"},
      {"check_bad_chain", "POST", "/v1/check", "{" + check_ok + ",\"on_behalf_of\":[{\"type\":\"User\"}]}", 400,
       "at /on_behalf_of/0/id: required field is missing"},
      {"check_bad_context", "POST", "/v1/check", "{" + check_ok + ",\"context\":{\"device\":1.5}}", 400,
       "at /context/device: a context value must be a string, an integer or a boolean"},
      {"check_bad_time", "POST", "/v1/check", "{" + check_ok + ",\"time\":\"yesterday\"}", 400,
       "at /time: not an RFC 3339 time"},
      {"check_bad_explain", "POST", "/v1/check", "{" + check_ok + ",\"explain\":\"yes\"}", 400,
       "at /explain: expected true or false"},
      {"check_unknown_field", "POST", "/v1/check", "{" + check_ok + ",\"on_behalf\":[]}", 400,
       "at /on_behalf: unknown field"},
      {"check_bad_context_fact", "POST", "/v1/check",
       "{" + check_ok + ",\"context_facts\":[" + FactJson("no_such", {{"User", "a"}}) + "]}", 400,
       "at /context_facts/0"},
      {"batch_no_checks", "POST", "/v1/check/batch", "{}", 400, "at /checks: required field is missing"},
      {"batch_bad_item", "POST", "/v1/check/batch", "{\"checks\":[{" + check_ok + "},{\"actor\":1}]}", 400,
       "at /checks/1/actor"},
      {"agent_no_id", "POST", "/v1/agents", R"({"owner":{"type":"User","id":"a"}})", 400,
       "at /id: required field is missing"},
      {"agent_slash_id", "POST", "/v1/agents", R"({"id":"a/b"})", 400, "at /id: an agent id must not contain"},
      {"agent_bad_status", "POST", "/v1/agents", R"({"id":"x","status":"paused"})", 400,
       "at /status: status must be \"active\" or \"suspended\""},
      {"agent_bad_owner", "POST", "/v1/agents", R"({"id":"x","owner":{"type":"","id":"a"}})", 400, "at /owner"},
      {"agent_wrong_type", "POST", "/v1/agents", R"({"id":"x","type":"Robot"})", 400,
       "at /type: agents have type \"Agent\""},
      {"agent_exists", "POST", "/v1/agents", R"({"id":"churn-bot"})", 409, "already exists"},
      {"patch_unknown", "PATCH", "/v1/agents/nobody", R"({"status":"suspended"})", 404, "no agent \"nobody\""},
      {"patch_bad_field", "PATCH", "/v1/agents/churn-bot", R"({"id":"other"})", 400, "at /id: unknown field"},
      {"patch_bad_status", "PATCH", "/v1/agents/churn-bot", R"({"status":1})", 400, "at /status"},
      {"delete_unknown", "DELETE", "/v1/agents/nobody", "", 404, "no agent \"nobody\""},
      {"grant_no_facts", "POST", "/v1/grants", R"({"task":"t-2"})", 400, "at /facts: required field is missing"},
      {"grant_empty", "POST", "/v1/grants", R"({"facts":[],"task":"t-2"})", 400, "at /facts: no facts to grant"},
      {"grant_forever", "POST", "/v1/grants", "{\"facts\":[" + fact + "]}", 400, "it would never end"},
      {"grant_both_expiries", "POST", "/v1/grants",
       "{\"facts\":[" + fact + "],\"ttl_seconds\":5,\"expires_at\":\"2099-01-01T00:00:00Z\"}", 400,
       "give ttl_seconds or expires_at, not both"},
      {"grant_bad_ttl", "POST", "/v1/grants", "{\"facts\":[" + fact + "],\"ttl_seconds\":0}", 400,
       "at /ttl_seconds: expected an integer from 1"},
      {"grant_past", "POST", "/v1/grants", "{\"facts\":[" + fact + "],\"expires_at\":\"2001-01-01T00:00:00Z\"}", 400,
       "at /expires_at: the time is not in the future"},
      {"grant_unknown_predicate", "POST", "/v1/grants",
       "{\"facts\":[" + FactJson("no_such", {{"User", "a"}}) + "],\"task\":\"t-2\"}", 400, "at /facts/0"},
      {"grant_bad_task", "POST", "/v1/grants", "{\"facts\":[" + fact + "],\"task\":\"\"}", 400,
       "at /task: a task id must be 1 to"},
      {"batch_ext_on_deletes", "POST", "/api/batch", "[{\"deletes\":[" + fact + "],\"mandate\":{\"task\":\"t\"}}]", 400,
       "at /0/mandate: grant metadata applies to \"inserts\" only"},
      {"batch_ext_bad_ttl", "POST", "/api/batch", "[{\"inserts\":[" + fact + "],\"mandate\":{\"ttl_seconds\":\"x\"}}]",
       400, "at /0/mandate/ttl_seconds"},
      {"task_unknown", "GET", "/v1/tasks/t-404", "", 404, "no task \"t-404\""},
      {"complete_unknown", "POST", "/v1/tasks/t-404/complete", "", 404, "no task \"t-404\""},
      {"complete_with_body", "POST", "/v1/tasks/t-1/complete", R"({"force":true})", 400, "at /force: unknown field"},
      {"check_read_key_writes", "POST", "/v1/agents", R"({"id":"y"})", 403, "needs an admin key"},
  };
  auto observe = [&] {
    return std::make_tuple(Observe(), server_->Get("/v1/agents").body, server_->Get("/v1/tasks/t-1").body);
  };
  const auto before = observe();
  for (const BadRequest& c : cases) {
    const std::string key = c.name == "check_read_key_writes" ? kReadKey : kAdminKey;
    HttpResult r = Http(server_->port(), c.method, c.target, c.body, {{"Authorization", "Bearer " + key}});
    EXPECT_EQ(r.status, c.status) << c.name << ": " << r.body;
    EXPECT_THAT(r.Message(), HasSubstr(c.message)) << c.name;
  }
  EXPECT_EQ(observe(), before);
}

}  // namespace
}  // namespace mandate::testing
