// Routing, authentication and the common response headers of Api, called in-process (no sockets).
#include "server/api.h"

#include <filesystem>
#include <future>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "store/store.h"

namespace mandate::server {
namespace {

namespace http = boost::beast::http;
using ::testing::HasSubstr;

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::path(::testing::TempDir()) / "mandate-api-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto store = store::OpenSqliteStore(dir_);
    ASSERT_TRUE(store.ok()) << store.status();
    auto service = Service::Open(std::move(*store));
    ASSERT_TRUE(service.ok()) << service.status();
    service_ = std::move(*service);
    api_ = std::make_unique<Api>(
        *service_, KeyRing({ApiKey{"admin", Role::kAdmin, ""}, ApiKey{"reader", Role::kRead, ""}}), metrics_, io_);
  }
  void TearDown() override {
    api_.reset();
    service_.reset();
    std::filesystem::remove_all(dir_);
  }

  Response Call(http::verb method, const std::string& target, const std::string& key = "admin",
                const std::string& body = "", const std::vector<std::pair<std::string, std::string>>& headers = {}) {
    Request req{method, target, 11};
    if (!key.empty()) req.set(http::field::authorization, "Bearer " + key);
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    auto promise = std::make_shared<std::promise<Response>>();
    std::future<Response> done = promise->get_future();
    api_->Handle(std::move(req), [promise](Response res) { promise->set_value(std::move(res)); });
    return done.get();
  }
  static std::string Message(const Response& r) {
    auto v = boost::json::parse(r.body());
    return std::string(v.at("message").as_string());
  }

  std::string dir_;
  boost::asio::io_context io_;
  Metrics metrics_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<Api> api_;
};

TEST_F(ApiTest, UnknownPathsAre404AndWrongMethods405) {
  Response r = Call(http::verb::get, "/api/nothing");
  EXPECT_EQ(r.result_int(), 404);
  EXPECT_EQ(Message(r), "no such endpoint: GET /api/nothing");
  Response m = Call(http::verb::put, "/api/batch");
  EXPECT_EQ(m.result_int(), 405);
  EXPECT_EQ(m["Allow"], "POST");
  EXPECT_EQ(Call(http::verb::get, "/api/facts/").result_int(), 404);  // no trailing-slash aliases
}

TEST_F(ApiTest, KeysAndRolesGateTheRoutes) {
  EXPECT_EQ(Call(http::verb::get, "/healthz", "").result_int(), 200);
  EXPECT_EQ(Call(http::verb::get, "/api/healthcheck", "").result_int(), 200);
  Response none = Call(http::verb::get, "/api/policy", "");
  EXPECT_EQ(none.result_int(), 401);
  EXPECT_EQ(none["WWW-Authenticate"], "Bearer");
  EXPECT_EQ(Call(http::verb::get, "/api/policy", "wrong").result_int(), 401);
  EXPECT_EQ(Call(http::verb::get, "/api/policy", "reader").result_int(), 200);
  Response forbidden = Call(http::verb::post, "/api/clear_data", "reader");
  EXPECT_EQ(forbidden.result_int(), 403);
  EXPECT_THAT(Message(forbidden), HasSubstr("POST /api/clear_data needs an admin key"));
  EXPECT_EQ(service_->revision(), 0u);
}

TEST_F(ApiTest, EveryResponseCarriesRequestIdAndTiming) {
  Response echoed = Call(http::verb::get, "/api/policy", "admin", "", {{"X-Request-ID", "abc-123"}});
  EXPECT_EQ(echoed["X-Request-ID"], "abc-123");
  EXPECT_THAT(std::string(echoed["Server-Timing"]), HasSubstr("oso;dur="));
  Response replaced = Call(http::verb::get, "/api/policy", "admin", "", {{"X-Request-ID", "bad id\x01"}});
  EXPECT_EQ(replaced["X-Request-ID"].size(), 36u);
  EXPECT_EQ(Call(http::verb::get, "/nope", "")["X-Request-ID"].size(), 36u);
}

TEST_F(ApiTest, WritesReturnTheirRevisionAsOsoOffset) {
  Response cleared = Call(http::verb::post, "/api/clear_data");
  ASSERT_EQ(cleared.result_int(), 200) << cleared.body();
  EXPECT_EQ(cleared["OsoOffset"], "1");
  EXPECT_EQ(service_->revision(), 1u);
  // An empty batch changes nothing and stores nothing.
  Response empty = Call(http::verb::post, "/api/batch", "admin", "[]");
  ASSERT_EQ(empty.result_int(), 200) << empty.body();
  EXPECT_EQ(empty["OsoOffset"], "1");
}

TEST_F(ApiTest, BodyErrorsAre400WithPointers) {
  Response r =
      Call(http::verb::post, "/api/batch", "admin", R"([{"inserts":[{"predicate":"p","args":[{"type":1}]}]}])");
  EXPECT_EQ(r.result_int(), 400);
  EXPECT_EQ(Message(r), "invalid request body at /0/inserts/0/args/0/type: expected a string, got a number");
  EXPECT_EQ(service_->revision(), 0u);
}

TEST_F(ApiTest, MetricsCountRequestsByRoute) {
  Call(http::verb::get, "/healthz", "");
  Call(http::verb::get, "/api/nothing", "");
  Response m = Call(http::verb::get, "/metrics", "");
  EXPECT_EQ(m[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_THAT(m.body(), HasSubstr("mandate_http_requests_total{route=\"GET /healthz\",status=\"200\"} 1"));
  EXPECT_THAT(m.body(), HasSubstr("mandate_http_requests_total{route=\"unmatched\",status=\"404\"} 1"));
  EXPECT_THAT(m.body(), HasSubstr("\nmandate_policy_version 0\n"));
}

}  // namespace
}  // namespace mandate::server
