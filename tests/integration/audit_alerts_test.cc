// Alert rules against a webhook receiver started by the test: each rule fires exactly when its
// condition is met, the alert is an audit record (GET /v1/alerts) and reaches the rule's webhook;
// a failing audit sink drops (counted in /metrics) and raises the sink_failure rule.
#include <time.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server_harness.h"

namespace mandate::testing {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using ::testing::HasSubstr;

// Accepts POSTs on a loopback port and keeps their bodies.
class WebhookReceiver {
 public:
  WebhookReceiver() : acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] {
      for (;;) {
        tcp::socket socket(io_);
        beast::error_code ec;
        acceptor_.accept(socket, ec);
        if (ec || stop_) return;
        beast::flat_buffer buf;
        http::request<http::string_body> req;
        http::read(socket, buf, req, ec);
        if (ec) continue;
        {
          std::lock_guard<std::mutex> l(mu_);
          bodies_.push_back(req.body());
        }
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::connection, "close");
        res.body() = "{}";
        res.prepare_payload();
        http::write(socket, res, ec);
      }
    });
  }
  ~WebhookReceiver() {
    // Wakes the blocking accept() with a connection of our own; the thread then sees stop_.
    stop_ = true;
    beast::error_code ec;
    net::io_context io;
    tcp::socket s(io);
    s.connect(acceptor_.local_endpoint(), ec);
    thread_.join();
  }
  std::string Url(const std::string& path) {
    port_saved_ = acceptor_.local_endpoint().port();
    return "http://127.0.0.1:" + std::to_string(port_saved_) + path;
  }
  // Alerts received for `rule` (each body is a JSON array of records).
  int Count(const std::string& rule) {
    std::lock_guard<std::mutex> l(mu_);
    int n = 0;
    for (const std::string& b : bodies_) {
      boost::system::error_code ec;
      json::value v = json::parse(b, ec);
      if (ec || !v.is_array()) continue;
      for (const json::value& r : v.as_array()) {
        const json::object& o = r.as_object();
        n += o.contains("rule") && o.at("rule").as_string() == rule;
      }
    }
    return n;
  }

 private:
  net::io_context io_;
  tcp::acceptor acceptor_;
  uint16_t port_saved_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> bodies_;
  std::thread thread_;
};

std::string Authorize(const std::string& actor_type, const std::string& actor, const std::string& action,
                      const std::string& repo) {
  return json::serialize(json::object{{"actor_type", actor_type},
                                      {"actor_id", actor},
                                      {"action", action},
                                      {"resource_type", "Repo"},
                                      {"resource_id", repo}});
}

// "HH:MM" (UTC) `hours` from now.
std::string Clock(int hours) {
  const time_t t = time(nullptr) + hours * 3600;
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[8];
  strftime(buf, sizeof buf, "%H:%M", &tm);
  return buf;
}

class AlertsTest : public ServerTest {
 protected:
  std::vector<std::string> ExtraArgs() const override {
    const std::string alerts = receiver_->Url("/alerts");
    // A port nothing listens on: the audit webhook there fails.
    net::io_context io;
    tcp::acceptor probe(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    const uint16_t dead = probe.local_endpoint().port();
    probe.close();
    const std::string path = dir_.Join("alerts.toml");
    std::ofstream(path) << "[audit]\n"
                           "[[audit.webhooks]]\nname = \"dead\"\nurl = \"http://127.0.0.1:"
                        << dead
                        << "/x\"\nkinds = [\"admin\"]\nmax_attempts = 2\nbackoff_seconds = 0.05\nflush_seconds = 0.05\n"
                           "[[alerts.owners]]\nowner = \"User:olga\"\nwebhook = \""
                        << owner_receiver_->Url("/olga") << "\"\n"
                           "[[alerts.rules]]\nname = \"denies\"\ntype = \"deny_burst\"\nthreshold = 3\nwindow_seconds = 60\n"
                           "webhook = \"" << alerts << "\"\n"
                           "[[alerts.rules]]\nname = \"deletes\"\ntype = \"destructive\"\nactions = [\"delete\"]\n"
                           "threshold = 2\nwindow_seconds = 60\nwebhook = \"" << alerts << "\"\n"
                           "[[alerts.rules]]\nname = \"new-tool\"\ntype = \"first_use\"\nwebhook = \"" << alerts << "\"\n"
                           "[[alerts.rules]]\nname = \"sinks\"\ntype = \"sink_failure\"\nwebhook = \"" << alerts << "\"\n"
                           "[[alerts.rules]]\nname = \"day\"\ntype = \"off_hours\"\nhours = \""
                        << Clock(-1) << "-" << Clock(1) << "\"\nwebhook = \"" << alerts << "\"\n"
                           "[[alerts.rules]]\nname = \"night\"\ntype = \"off_hours\"\nhours = \""
                        << Clock(2) << "-" << Clock(3) << "\"\ncooldown_seconds = 3600\n"
                        << "webhook = \"" << alerts << "\"\n";
    return {"--config", path, "--policy", TestData("audit_policy.polar")};
  }
  void SetUp() override {
    receiver_ = std::make_unique<WebhookReceiver>();
    owner_receiver_ = std::make_unique<WebhookReceiver>();
    ServerTest::SetUp();
  }
  // Alerts of `rule` listed by GET /v1/alerts, once `n` are there or after a few seconds.
  int Alerts(const std::string& rule, int n) {
    int found = 0;
    for (int i = 0; i < 100; ++i) {
      HttpResult r = server_->Get("/v1/alerts?limit=1000");
      found = 0;
      for (const json::value& a : r.json.at("alerts").as_array()) found += a.at("rule").as_string() == rule;
      if (found >= n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return found;
  }
  int Delivered(const std::string& rule, int n) {
    for (int i = 0; i < 100 && receiver_->Count(rule) < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return receiver_->Count(rule);
  }
  void Decide(const std::string& type, const std::string& actor, const std::string& action, const std::string& repo) {
    ASSERT_EQ(server_->Post("/api/authorize", Authorize(type, actor, action, repo), kReadKey).status, 200);
  }

  std::unique_ptr<WebhookReceiver> receiver_;
  std::unique_ptr<WebhookReceiver> owner_receiver_;  // [[alerts.owners]] User:olga
};

TEST_F(AlertsTest, EachRuleFiresExactlyWhenItShould) {
  Batch(R"([{"inserts":[{"predicate":"has_role","args":[{"type":"Agent","id":"bot"},{"type":"String","id":"owner"},{"type":"Repo","id":"a"}]}]}])");

  // deny_burst: the third denial within the window fires; another actor's does not count.
  Decide("User", "mallory", "read", "a");
  Decide("User", "mallory", "read", "a");
  Decide("User", "eve", "read", "a");
  EXPECT_EQ(Alerts("denies", 1), 0);
  Decide("User", "mallory", "read", "a");
  EXPECT_EQ(Alerts("denies", 1), 1);
  EXPECT_EQ(Delivered("denies", 1), 1);

  // first_use: an agent's first delete (and first Repo) fires; a second delete does not; a first
  // read fires once more.
  Decide("Agent", "bot", "delete", "a");
  EXPECT_EQ(Alerts("new-tool", 2), 2);
  // destructive: the second delete within the window fires.
  EXPECT_EQ(Alerts("deletes", 1), 0);
  Decide("Agent", "bot", "delete", "a");
  EXPECT_EQ(Alerts("deletes", 1), 1);
  EXPECT_EQ(Alerts("new-tool", 3), 2);
  Decide("Agent", "bot", "read", "a");
  EXPECT_EQ(Alerts("new-tool", 3), 3);
  EXPECT_EQ(Delivered("new-tool", 3), 3);

  // off_hours: "night" (hours that exclude now) fired once (cooldown) for each actor; "day" never.
  EXPECT_EQ(Alerts("night", 3), 3);  // mallory, eve and Agent:bot (the admin write is not a decision)
  EXPECT_EQ(Alerts("day", 1), 0);

  // sink_failure: the dead audit webhook gave up on the admin write's batch.
  EXPECT_GE(Alerts("sinks", 1), 1);
  EXPECT_GE(Delivered("sinks", 1), 1);
  const std::string metrics = server_->Get("/metrics", "").body;
  const std::string dropped = "mandate_audit_sink_dropped_total{sink=\"dead\"} ";
  const size_t at = metrics.find(dropped);
  ASSERT_NE(at, std::string::npos);
  EXPECT_GE(std::stoi(metrics.substr(at + dropped.size())), 1);
  EXPECT_THAT(metrics, HasSubstr("mandate_alerts_fired_total{rule=\"denies\"} 1"));

  // An alert is an audit record.
  HttpResult r = server_->Get("/v1/audit?kind=alert&limit=1000");
  EXPECT_GE(r.json.at("records").as_array().size(), 8u);
}

TEST_F(AlertsTest, AlertsAboutAnAgentReachItsOwner) {
  ASSERT_EQ(server_->Post("/v1/agents", R"({"id":"bot","owner":{"type":"User","id":"olga"}})").status, 201);
  Batch(R"([{"inserts":[{"predicate":"has_role","args":[{"type":"Agent","id":"bot"},{"type":"String","id":"owner"},{"type":"Repo","id":"a"}]}]}])");
  Decide("Agent", "bot", "delete", "a");
  Decide("Agent", "bot", "delete", "a");
  EXPECT_EQ(Alerts("deletes", 1), 1);
  // The rule's webhook and the owner's both get it, and the record names the owner.
  EXPECT_EQ(Delivered("deletes", 1), 1);
  for (int i = 0; i < 100 && owner_receiver_->Count("deletes") < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(owner_receiver_->Count("deletes"), 1);
  HttpResult r = server_->Get("/v1/alerts?limit=1000");
  bool named = false;
  for (const json::value& a : r.json.at("alerts").as_array()) {
    if (a.at("rule").as_string() == "deletes") named = a.as_object().contains("owner") && a.at("owner").as_string() == "User:olga";
  }
  EXPECT_TRUE(named) << r.body;
  // Alerts about actors olga does not own stay away from her webhook.
  Decide("User", "mallory", "read", "a");
  Decide("User", "mallory", "read", "a");
  Decide("User", "mallory", "read", "a");
  EXPECT_EQ(Delivered("denies", 1), 1);
  EXPECT_EQ(owner_receiver_->Count("denies"), 0);
}

}  // namespace
}  // namespace mandate::testing
