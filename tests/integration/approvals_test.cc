// Human approvals over real HTTP (docs/approvals.md): approval_required with one pending approval
// per request, listing and reading approvals, who may decide them (403, audited), unknown and
// decided ids (404, 409), single use, a long poll that times out while other requests are served,
// a long poll woken by an approval and by a denial, batches, console sessions that decide as their
// signed-in user, bad bodies, and pending approvals that survive a restart.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server_harness.h"

namespace mandate::testing {
namespace {

namespace json = boost::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Value(const std::string& type, const std::string& id) {
  return json::serialize(json::object{{"type", type}, {"id", id}});
}

class ApprovalsApiTest : public ServerTest {
 protected:
  std::vector<std::string> ExtraArgs() const override {
    const std::string path = dir_.Join("approvals.toml");
    std::ofstream(path) << "[server]\npublic_url = \"https://mandate.example.com/\"\n"
                           "[agents]\napproval_ttl_seconds = 600\nmax_pending_approvals = 50\n[console]\n"
                        << ConsoleUser("carol", "approver") << ConsoleUser("rita", "read");
    return {"--config", path};
  }
  void SetUp() override {
    ServerTest::SetUp();
    HttpResult r = server_->Post(
        "/api/policy",
        json::serialize(json::object{{"src", ReadFile(TestData("approvals_policy.polar"))}, {"filename", "p.polar"}}));
    ASSERT_EQ(r.status, 200) << r.body;
    Batch("[{\"inserts\":[" + FactJson("has_role", {{"User", "alice"}, {"String", "payer"}, {"Invoice", "1"}}) + "," +
          FactJson("has_role", {{"User", "carol"}, {"String", "approver"}, {"Invoice", "1"}}) + "]}]");
  }
  // A console user with `role` and the password "pw-<id>": its [[console.users]] entry.
  static std::string ConsoleUser(const std::string& id, const std::string& role) {
    const std::string cmd =
        std::string("echo pw-") + id + " | " + MANDATE_BIN + " console hash-password --iterations 10000";
    std::string hash;
    if (FILE* p = popen(cmd.c_str(), "r")) {
      char buf[512];
      while (fgets(buf, sizeof buf, p) != nullptr) hash += buf;
      pclose(p);
    }
    while (!hash.empty() && (hash.back() == '\n' || hash.back() == '\r')) hash.pop_back();
    return "[[console.users]]\nid = \"" + id + "\"\nrole = \"" + role + "\"\npassword_hash = \"" + hash + "\"\n";
  }
  static std::string PayBody(const std::string& arguments = R"({"amount": 10})", int wait_seconds = -1) {
    std::string body = R"({"actor":{"type":"Agent","id":"pay-bot"},"on_behalf_of":[{"type":"User","id":"alice"}],)"
                       R"("action":"pay","resource":{"type":"Invoice","id":"1"},"context":{"intent":"monthly"})";
    if (!arguments.empty()) body += ",\"arguments\":" + arguments;
    if (wait_seconds >= 0) body += ",\"wait_seconds\":" + std::to_string(wait_seconds);
    return body + "}";
  }
  json::object Check(const std::string& body) {
    HttpResult r = server_->Post("/v1/check", body);
    EXPECT_EQ(r.status, 200) << body << " -> " << r.body;
    return r.json.is_object() ? r.json.as_object() : json::object{};
  }
  static std::string Decision(const json::object& d) { return std::string(d.at("decision").as_string()); }
  static std::string ApprovalId(const json::object& d) {
    return d.contains("approval") ? std::string(d.at("approval").at("id").as_string()) : "";
  }
  HttpResult Decide(const std::string& id, const std::string& verb, const std::string& body,
                    const std::string& key = kAdminKey) {
    return server_->Post("/v1/approvals/" + id + "/" + verb, body, key);
  }
  static std::string By(const std::string& user, const std::string& extra = "") {
    return R"({"approver":{"type":"User","id":")" + user + R"("},"note":"looks right")" + extra + "}";
  }
  // A request that needs no approval is answered (while long polls wait).
  void CheckStillServed() {
    json::object read =
        Check(R"({"actor":{"type":"Agent","id":"pay-bot"},"on_behalf_of":[{"type":"User","id":"alice"}],)"
              R"("action":"read","resource":{"type":"Invoice","id":"1"}})");
    EXPECT_EQ(Decision(read), "allow");
    EXPECT_EQ(server_->Get("/healthz", "").status, 200);
  }
  // The events of audit records of kind "approval", oldest first.
  std::vector<std::string> AuditedEvents() {
    HttpResult r = server_->Get("/v1/audit?kind=approval&limit=100");
    EXPECT_EQ(r.status, 200) << r.body;
    std::vector<std::string> out;
    if (!r.json.is_object()) return out;
    for (const json::value& rec : r.json.at("records").as_array()) {
      out.insert(out.begin(), std::string(rec.at("action").as_string()));
    }
    return out;
  }
};

TEST_F(ApprovalsApiTest, ApproveThenUseOnce) {
  json::object first = Check(PayBody());
  EXPECT_EQ(Decision(first), "approval_required");
  EXPECT_EQ(first.at("allowed"), false);
  EXPECT_EQ(first.at("reasons").at(0).at("code"), "approval_required");
  const json::object& approval = first.at("approval").as_object();
  const std::string id(approval.at("id").as_string());
  EXPECT_EQ(approval.at("status"), "pending");
  EXPECT_TRUE(approval.contains("expires_at"));
  EXPECT_EQ(approval.at("url"), json::value("https://mandate.example.com/ui/#/approvals/" + id));
  // No flooding: the same request while pending gets the same approval.
  EXPECT_EQ(ApprovalId(Check(PayBody(R"({ "amount" : 10 })"))), id);

  HttpResult list = server_->Get("/v1/approvals?status=pending&actor=Agent:pay-bot", kReadKey);
  ASSERT_EQ(list.status, 200) << list.body;
  ASSERT_EQ(list.json.at("approvals").as_array().size(), 1u);
  EXPECT_EQ(server_->Get("/v1/approvals?actor_type=Agent&actor_id=other").json.at("approvals").as_array().size(), 0u);
  HttpResult got = server_->Get("/v1/approvals/" + id, kReadKey);
  ASSERT_EQ(got.status, 200) << got.body;
  const json::object& full = got.json.as_object();
  EXPECT_EQ(full.at("actor"), json::parse(Value("Agent", "pay-bot")));
  EXPECT_EQ(full.at("on_behalf_of").at(0), json::parse(Value("User", "alice")));
  EXPECT_EQ(full.at("action"), "pay");
  EXPECT_EQ(full.at("resource"), json::parse(Value("Invoice", "1")));
  EXPECT_EQ(full.at("context").at("intent"), "monthly");
  EXPECT_EQ(full.at("arguments_digest").as_string().size(), 64u);
  EXPECT_EQ(full.at("reasons").at(0).at("code"), "requires_approval");
  EXPECT_EQ(full.at("uses_left"), 0);
  EXPECT_FALSE(full.contains("approver"));

  // Who may decide: not a read key, not someone without can_approve, not the agent itself.
  EXPECT_EQ(Decide(id, "approve", By("carol"), kReadKey).status, 403);
  HttpResult dave = Decide(id, "approve", By("dave"));
  EXPECT_EQ(dave.status, 403);
  EXPECT_THAT(dave.Message(), HasSubstr("can_approve"));
  HttpResult self = Decide(id, "approve", R"({"approver":{"type":"Agent","id":"pay-bot"}})");
  EXPECT_EQ(self.status, 403);
  EXPECT_EQ(Decide("apr_unknown", "approve", By("carol")).status, 404);

  HttpResult ok = Decide(id, "approve", By("carol"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json.at("status"), "approved");
  EXPECT_EQ(ok.json.at("approver"), json::parse(Value("User", "carol")));
  EXPECT_EQ(ok.json.at("note"), "looks right");
  EXPECT_EQ(ok.json.at("uses_left"), 1);
  EXPECT_TRUE(ok.json.as_object().contains("decided_at"));
  EXPECT_EQ(Decide(id, "deny", By("carol")).status, 409);

  // Other arguments are another request; the approved one is allowed once.
  EXPECT_EQ(Decision(Check(PayBody(R"({"amount": 10000})"))), "approval_required");
  json::object used = Check(PayBody());
  EXPECT_EQ(Decision(used), "allow");
  EXPECT_EQ(ApprovalId(used), id);
  json::object again = Check(PayBody());
  EXPECT_EQ(Decision(again), "approval_required");
  EXPECT_NE(ApprovalId(again), id);
  EXPECT_EQ(server_->Get("/v1/approvals/" + id).json.at("status"), "used");

  std::vector<std::string> events;
  for (int i = 0; i < 50; ++i) {  // the audit log may be written just after the answers
    events = AuditedEvents();
    if (events.size() >= 7) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(events,
              ::testing::ElementsAre("approval.requested", "approval.refused", "approval.refused", "approval.approved",
                                     "approval.requested", "approval.used", "approval.requested"));
}

TEST_F(ApprovalsApiTest, LongPollTimesOutWithoutHoldingUpOtherRequests) {
  std::atomic<int> done{0};
  std::vector<std::thread> waiters;
  for (int i = 0; i < 4; ++i) {
    waiters.emplace_back([&, i] {
      json::object d = Check(PayBody("{\"n\":" + std::to_string(i) + "}", 3));
      EXPECT_EQ(Decision(d), "approval_required");
      EXPECT_EQ(d.at("approval").at("status"), "pending");
      ++done;
    });
  }
  // More waiters than the server has I/O threads: other requests are answered meanwhile.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CheckStillServed();
  EXPECT_EQ(done.load(), 0);
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(done.load(), 4);
}

TEST_F(ApprovalsApiTest, LongPollWakesOnADecision) {
  for (const std::string verb : {"approve", "deny"}) {
    const std::string args = "{\"verb\":\"" + verb + "\"}";
    json::object answer;
    std::thread waiter([&] { answer = Check(PayBody(args, 60)); });
    std::string id;
    for (int i = 0; i < 200 && id.empty(); ++i) {
      HttpResult list = server_->Get("/v1/approvals?status=pending");
      for (const json::value& a : list.json.at("approvals").as_array()) {
        if (a.at("arguments_digest").is_string()) id = std::string(a.at("id").as_string());
      }
      if (id.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_FALSE(id.empty());
    const auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(Decide(id, verb, By("carol")).status, 200);
    waiter.join();
    // Woken by the decision, not by the 60 s timeout (a generous bound, not a timing claim).
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
    if (verb == "approve") {
      EXPECT_EQ(Decision(answer), "allow");
    } else {
      EXPECT_EQ(Decision(answer), "deny");
      EXPECT_EQ(answer.at("reasons").at(0).at("code"), "approval_denied");
    }
    EXPECT_EQ(ApprovalId(answer), id);
  }
}

TEST_F(ApprovalsApiTest, BatchChecksAskForApprovalsToo) {
  const std::string read = R"({"actor":{"type":"Agent","id":"pay-bot"},"on_behalf_of":[{"type":"User","id":"alice"}],)"
                           R"("action":"read","resource":{"type":"Invoice","id":"1"}})";
  HttpResult r = server_->Post("/v1/check/batch", "{\"checks\":[" + read + "," + PayBody() + "," + PayBody() + "]}");
  ASSERT_EQ(r.status, 200) << r.body;
  const json::array& d = r.json.at("decisions").as_array();
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[0].at("decision"), "allow");
  EXPECT_EQ(d[1].at("decision"), "approval_required");
  EXPECT_EQ(d[2].at("approval").at("id"), d[1].at("approval").at("id"));
  EXPECT_EQ(server_->Post("/v1/check/batch", "{\"checks\":[" + PayBody("", 5) + "]}").status, 400);
}

TEST_F(ApprovalsApiTest, AConsoleSessionDecidesAsItsSignedInUser) {
  auto login = [&](const std::string& user) -> std::pair<std::string, std::string> {
    HttpResult r = server_->Post("/ui/api/login", R"({"user":")" + user + R"(","password":"pw-)" + user + R"("})", "",
                                 {{"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 200) << r.body;
    const std::string cookie = r.Header("set-cookie");
    return {cookie.substr(0, cookie.find(';')),
            r.json.is_object() ? std::string(r.json.at("csrf_token").as_string()) : ""};
  };
  auto decide = [&](const std::pair<std::string, std::string>& session, const std::string& id,
                    const std::string& body) {
    return server_->Post("/v1/approvals/" + id + "/approve", body, "",
                         {{"Cookie", session.first}, {"X-CSRF-Token", session.second}});
  };
  const std::string id = ApprovalId(Check(PayBody()));
  const auto carol = login("carol");
  const auto rita = login("rita");
  EXPECT_EQ(server_->Get("/v1/approvals/" + id, "", {{"Cookie", rita.first}}).status, 200);
  EXPECT_EQ(decide(rita, id, "{}").status, 403);         // the read role may not decide
  EXPECT_EQ(decide(carol, id, By("dave")).status, 400);  // not as someone else
  HttpResult ok = decide(carol, id, R"({"note":"from the console"})");
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(ok.json.at("approver"), json::parse(Value("User", "carol")));
  EXPECT_EQ(ok.json.at("note"), "from the console");
}

TEST_F(ApprovalsApiTest, BadBodiesAreRefusedAndChangeNothing) {
  const std::string id = ApprovalId(Check(PayBody()));
  for (const std::string& body :
       {std::string("{"), std::string(R"({"approver":{"type":"User","id":"carol"},"color":"red"})"),
        std::string(R"({"approver":{"type":"User"}})"), std::string(R"({"note":"no approver"})"),
        By("carol", R"(,"uses":0)"), By("carol", R"(,"ttl_seconds":"long")")}) {
    HttpResult r = Decide(id, "approve", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
  }
  EXPECT_EQ(Decide(id, "deny", By("carol", R"(,"uses":2)")).status, 400);
  EXPECT_EQ(server_->Post("/v1/check", PayBody("", 301)).status, 400);
  EXPECT_EQ(server_->Post("/v1/check", PayBody("", -1).substr(0, 20)).status, 400);
  EXPECT_EQ(server_->Get("/v1/approvals?status=maybe").status, 400);
  EXPECT_EQ(server_->Get("/v1/approvals?actor=nocolon").status, 400);
  EXPECT_EQ(server_->Get("/v1/approvals?actor_type=Agent").status, 400);
  EXPECT_EQ(server_->Get("/v1/approvals/" + id).json.at("status"), "pending");
}

TEST_F(ApprovalsApiTest, PendingApprovalsSurviveARestart) {
  const std::string id = ApprovalId(Check(PayBody()));
  ASSERT_FALSE(id.empty());
  ASSERT_EQ(server_->Stop(), 0);
  std::string err;
  ASSERT_TRUE(server_->Start(ExtraArgs(), &err)) << err;
  HttpResult got = server_->Get("/v1/approvals/" + id);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(got.json.at("status"), "pending");
  EXPECT_EQ(ApprovalId(Check(PayBody())), id);
  ASSERT_EQ(Decide(id, "approve", By("carol", R"(,"uses":2,"ttl_seconds":120)")).status, 200);
  EXPECT_EQ(Decision(Check(PayBody())), "allow");
  EXPECT_EQ(Decision(Check(PayBody())), "allow");
  EXPECT_EQ(Decision(Check(PayBody())), "approval_required");
}

}  // namespace
}  // namespace mandate::testing
