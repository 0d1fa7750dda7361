// The audit log of a running server: every decision and admin change is recorded (and no secret),
// GET /v1/audit, /v1/audit/stream and /v1/audit/checkpoints, `mandate audit verify|query` on what the
// server wrote, and SIGKILL under load in sync and async modes (docs/audit.md).
#include <stdio.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio.hpp>
#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server_harness.h"

namespace mandate::testing {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;

// Runs a command and returns its exit status and stdout.
std::pair<int, std::string> RunCommand(const std::string& command) {
  FILE* p = popen(command.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string Authorize(const std::string& actor_type, const std::string& actor, const std::string& action,
                      const std::string& repo) {
  return json::serialize(json::object{{"actor_type", actor_type},
                                      {"actor_id", actor},
                                      {"action", action},
                                      {"resource_type", "Repo"},
                                      {"resource_id", repo}});
}

class AuditTest : public ServerTest {
 protected:
  virtual std::string AuditConfig() const { return "[audit]\ndurability = \"sync\"\ncheckpoint_records = 20\n"; }
  std::vector<std::string> ExtraArgs() const override {
    const std::string path = dir_.Join("audit.toml");
    std::ofstream(path) << AuditConfig();
    return {"--config", path, "--policy", TestData("audit_policy.polar")};
  }
  std::string DataDir() const { return dir_.Join("data"); }
  void Restart(bool kill) {
    if (kill) {
      server_->Kill();
    } else {
      EXPECT_EQ(server_->Stop(), 0) << server_->stderr_text();
    }
    server_ = std::make_unique<ServerProcess>(DataDir());
    std::string err;
    ASSERT_TRUE(server_->Start(ExtraArgs(), &err)) << err;
  }
  std::pair<int, std::string> Verify() const {
    return RunCommand(std::string(MANDATE_BIN) + " audit verify --data-dir " + DataDir() + " 2>&1");
  }
  json::array Records(const std::string& query = "") const {
    HttpResult r = server_->Get("/v1/audit?limit=1000" + query);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.json.is_object() ? r.json.at("records").as_array() : json::array();
  }
  // Clients send authorize requests (with their own request ids) while the server is killed; counts
  // the answered ones and those of them missing from the log.
  void CrashUnderLoad(size_t* answered_count, size_t* missing_count);
  void Grant(const std::string& actor_type, const std::string& actor, const std::string& role, const std::string& repo) {
    Batch(json::serialize(json::array{json::object{
        {"inserts", json::array{json::object{{"predicate", "has_role"},
                                             {"args", json::array{json::object{{"type", actor_type}, {"id", actor}},
                                                                  json::object{{"type", "String"}, {"id", role}},
                                                                  json::object{{"type", "Repo"}, {"id", repo}}}}}}}}}));
  }
};

TEST_F(AuditTest, DecisionsAndAdminChangesAreRecordedWithoutSecrets) {
  Grant("User", "alice", "reader", "anvil");
  EXPECT_EQ(server_->Post("/api/authorize", Authorize("User", "alice", "read", "anvil"), kReadKey,
                          {{"X-Request-ID", "rid-allow-1"}, {"Mandate-Peer-Address", "203.0.113.9:1"}})
                .body,
            R"({"allowed":true})");
  EXPECT_EQ(server_->Post("/api/authorize", Authorize("User", "bob", "read", "anvil"), kReadKey).body,
            R"({"allowed":false})");
  ASSERT_EQ(server_->Post("/api/list",
                          R"({"actor_type":"User","actor_id":"alice","action":"read","resource_type":"Repo"})", kReadKey)
                .status,
            200);
  ASSERT_EQ(server_->Post("/api/authorize_resources",
                          R"({"actor_type":"User","actor_id":"alice","action":"read","resources":[{"type":"Repo","id":"anvil"},{"type":"Repo","id":"x"}]})",
                          kReadKey)
                .status,
            200);
  // An admin call with a read key is refused, and recorded.
  EXPECT_EQ(server_->Post("/api/clear_data", "{}", kReadKey).status, 403);

  json::array all = Records();
  auto find = [&](auto pred) {
    std::vector<json::object> out;
    for (const json::value& v : all) {
      if (pred(v.as_object())) out.push_back(v.as_object());
    }
    return out;
  };
  auto str = [](const json::object& o, const char* k) {
    return o.contains(k) && o.at(k).is_string() ? std::string(o.at(k).as_string()) : std::string();
  };
  auto allow = find([&](const json::object& o) { return str(o, "request_id") == "rid-allow-1"; });
  ASSERT_EQ(allow.size(), 1u);
  EXPECT_EQ(str(allow[0], "kind"), "decision");
  EXPECT_EQ(str(allow[0], "api"), "POST /api/authorize");
  EXPECT_EQ(str(allow[0], "actor"), "User:alice");
  EXPECT_EQ(str(allow[0], "action"), "read");
  EXPECT_EQ(str(allow[0], "resource"), "Repo:anvil");
  EXPECT_EQ(str(allow[0], "decision"), "allow");
  EXPECT_EQ(allow[0].at("policy_version").as_int64(), 1);
  EXPECT_GE(allow[0].at("revision").as_int64(), 1);
  EXPECT_TRUE(allow[0].contains("latency_us"));
  EXPECT_THAT(str(allow[0], "client"), HasSubstr("127.0.0.1:"));  // not the address the client claimed
  EXPECT_EQ(find([&](const json::object& o) { return str(o, "actor") == "User:bob" && str(o, "decision") == "deny"; })
                .size(),
            1u);
  EXPECT_EQ(find([&](const json::object& o) { return str(o, "api") == "POST /api/list"; }).size(), 1u);
  // Each item of a batch is a decision of its own.
  EXPECT_EQ(find([&](const json::object& o) { return str(o, "api") == "POST /api/authorize_resources"; }).size(), 2u);
  auto writes = find([&](const json::object& o) { return str(o, "action") == "facts.write"; });
  ASSERT_EQ(writes.size(), 1u);
  EXPECT_THAT(json::serialize(writes[0]), HasSubstr(R"(insert has_role(User{\"alice\"}, \"reader\", Repo{\"anvil\"}))"));
  auto refused = find([&](const json::object& o) { return str(o, "api") == "POST /api/clear_data"; });
  ASSERT_EQ(refused.size(), 1u);
  EXPECT_EQ(refused[0].at("status").as_int64(), 403);
  EXPECT_EQ(str(refused[0], "decision"), "error");
  // The policy loaded with --policy, and the start of the server.
  EXPECT_EQ(find([&](const json::object& o) { return str(o, "action") == "server.start"; }).size(), 1u);

  // Filters, newest first, paging.
  json::array denies = Records("&decision=deny&actor=User:bob");
  ASSERT_EQ(denies.size(), 1u);
  HttpResult page = server_->Get("/v1/audit?limit=2");
  ASSERT_EQ(page.json.at("records").as_array().size(), 2u);
  const int64_t first = page.json.at("records").as_array()[0].at("seq").as_int64();
  EXPECT_GT(first, page.json.at("records").as_array()[1].at("seq").as_int64());
  HttpResult next = server_->Get("/v1/audit?limit=2&before=" + std::to_string(page.json.at("next_before").as_int64()));
  EXPECT_LT(next.json.at("records").as_array()[0].at("seq").as_int64(),
            page.json.at("records").as_array()[1].at("seq").as_int64());
  EXPECT_EQ(server_->Get("/v1/audit", kReadKey).status, 403);
  EXPECT_EQ(server_->Get("/v1/audit?bogus=1").status, 400);

  ASSERT_EQ(server_->Stop(), 0);
  // No API key anywhere in the log.
  for (const auto& e : std::filesystem::directory_iterator(DataDir() + "/audit")) {
    const std::string bytes = ReadFile(e.path().string());
    EXPECT_EQ(bytes.find(kAdminKey), std::string::npos) << e.path();
    EXPECT_EQ(bytes.find(kReadKey), std::string::npos) << e.path();
  }
  auto [status, out] = Verify();
  EXPECT_EQ(status, 0) << out;
  EXPECT_THAT(out, HasSubstr("audit log intact"));
  auto [qs, table] = RunCommand(std::string(MANDATE_BIN) + " audit query --data-dir " + DataDir() +
                         " --actor User:alice --decision allow --format table");
  EXPECT_EQ(qs, 0);
  EXPECT_THAT(table, HasSubstr("POST /api/authorize"));
  server_ = std::make_unique<ServerProcess>(DataDir());  // for TearDown
}

TEST_F(AuditTest, CheckpointsAndStream) {
  for (int i = 0; i < 25; ++i) server_->Post("/api/authorize", Authorize("User", "u", "read", "r" + std::to_string(i)));
  HttpResult cps = server_->Get("/v1/audit/checkpoints");
  ASSERT_EQ(cps.status, 200);
  ASSERT_FALSE(cps.json.at("checkpoints").as_array().empty());
  EXPECT_THAT(std::string(cps.json.at("public_key").as_string()), HasSubstr("BEGIN PUBLIC KEY"));

  // Server-sent events: the stream sends records as they are written.
  const uint16_t port = server_->port();
  std::string got;
  std::thread reader([&] {
    got = RawExchange(port,
                      std::string("GET /v1/audit/stream?actor=User:streamed HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") +
                          kAdminKey + "\r\n\r\n",
                      std::chrono::milliseconds(1500));
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  server_->Post("/api/authorize", Authorize("User", "streamed", "read", "anvil"));
  reader.join();
  EXPECT_THAT(got, HasSubstr("Content-Type: text/event-stream"));
  EXPECT_THAT(got, HasSubstr("event: audit\ndata: {\"seq\":"));
  EXPECT_THAT(got, HasSubstr("\"actor\":\"User:streamed\""));
}

TEST_F(AuditTest, VerifyNamesATamperedRecordOfAServerLog) {
  server_->Post("/api/authorize", Authorize("User", "alice", "read", "anvil"));
  ASSERT_EQ(server_->Stop(), 0);
  std::string seg;
  for (const auto& e : std::filesystem::directory_iterator(DataDir() + "/audit")) {
    if (e.path().filename().string().rfind("seg-", 0) == 0 && e.path().extension() == ".log") seg = e.path().string();
  }
  std::string bytes = ReadFile(seg);
  const size_t at = bytes.find("User:alice");
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] = 'e';  // alice -> elice
  std::ofstream(seg, std::ios::binary | std::ios::trunc) << bytes;
  auto [status, out] = Verify();
  EXPECT_EQ(status, 1) << out;
  EXPECT_THAT(out, HasSubstr(std::filesystem::path(seg).filename().string()));
  EXPECT_THAT(out, HasSubstr("checksum mismatch"));
  // The server refuses to append to it.
  ServerProcess again(DataDir());
  auto [code, err] = again.StartExpectingFailure(ExtraArgs());
  EXPECT_NE(code, 0);
  EXPECT_THAT(err, HasSubstr("mandate audit verify"));
  server_ = std::make_unique<ServerProcess>(dir_.Join("other"));  // for TearDown
}

// After a SIGKILL the log verifies (once a restart cut a torn tail) and holds every answered
// decision (sync) or all but at most the async window.
void AuditTest::CrashUnderLoad(size_t* answered_count, size_t* missing_count) {
  std::unique_ptr<ServerProcess>& server = server_;
  std::mutex mu;
  std::set<std::string> answered;
  std::atomic<bool> stop{false};
  std::atomic<int> acks{0};
  const uint16_t port = server->port();
  std::vector<std::thread> clients;
  for (int c = 0; c < 4; ++c) {
    clients.emplace_back([&, c] {
      for (int n = 0; !stop; ++n) {
        const std::string rid = "crash-" + std::to_string(c) + "-" + std::to_string(n);
        HttpResult r = Http(port, "POST", "/api/authorize", Authorize("User", "alice", "read", "anvil"),
                            {{"Authorization", std::string("Bearer ") + kReadKey}, {"X-Request-ID", rid}});
        if (r.status != 200) break;
        std::lock_guard<std::mutex> l(mu);
        answered.insert(rid);
        ++acks;
      }
    });
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (acks < 300 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  server->Kill();
  stop = true;
  for (auto& c : clients) c.join();
  auto [status, out] = RunCommand(std::string(MANDATE_BIN) + " audit query --data-dir " + DataDir() +
                           " --kind decision --limit 1000000");
  std::set<std::string> recorded;
  for (size_t p = out.find("\"request_id\":\""); p != std::string::npos; p = out.find("\"request_id\":\"", p + 1)) {
    const size_t start = p + 14;
    recorded.insert(out.substr(start, out.find('"', start) - start));
  }
  size_t missing = 0;
  for (const std::string& rid : answered) missing += recorded.count(rid) == 0;
  *answered_count = answered.size();
  *missing_count = missing;
}

TEST_F(AuditTest, SyncModeLosesNoAnsweredDecisionOnSigkill) {
  size_t answered = 0, missing = 0;
  CrashUnderLoad(&answered, &missing);
  EXPECT_GE(answered, 300u);
  EXPECT_EQ(missing, 0u);
  Restart(/*kill=*/true);  // (already dead) starts again, which cuts a torn tail, if any
  ASSERT_EQ(server_->Stop(), 0);
  auto [status, out] = Verify();
  EXPECT_EQ(status, 0) << out;
  server_ = std::make_unique<ServerProcess>(dir_.Join("other"));
}

class AsyncAuditTest : public AuditTest {
 protected:
  std::string AuditConfig() const override {
    return "[audit]\ndurability = \"async\"\ncheckpoint_records = 50\nasync_max_pending = 64\n";
  }
};

TEST_F(AsyncAuditTest, AsyncModeLosesAtMostItsWindowAndStillVerifies) {
  size_t answered = 0, missing = 0;
  CrashUnderLoad(&answered, &missing);
  EXPECT_GE(answered, 300u);
  EXPECT_LE(missing, 64u);
  Restart(/*kill=*/true);
  ASSERT_EQ(server_->Stop(), 0);
  auto [status, out] = Verify();
  EXPECT_EQ(status, 0) << out;
  server_ = std::make_unique<ServerProcess>(dir_.Join("other"));
}

}  // namespace
}  // namespace mandate::testing
