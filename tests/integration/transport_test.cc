// The HTTP transport: keep-alive and pipelining, Expect: 100-continue, and deadlines that stop
// slow clients from holding connections.
#include <chrono>

#include <boost/asio.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server_harness.h"

namespace mandate::testing {
namespace {

using ::testing::HasSubstr;
namespace net = boost::asio;

size_t Count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

TEST_F(ServerTest, KeepAliveServesPipelinedRequestsOnOneConnection) {
  const std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  const std::string out = RawExchange(server_->port(), req + req + req, std::chrono::milliseconds(500));
  EXPECT_EQ(Count(out, "HTTP/1.1 200 OK"), 3u) << out;
}

TEST_F(ServerTest, ExpectContinueIsHonoured) {
  net::io_context ioc;
  net::ip::tcp::socket s(ioc);
  s.connect({net::ip::make_address("127.0.0.1"), server_->port()});
  const std::string body = "[]";
  net::write(s, net::buffer("POST /api/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + std::string(kAdminKey) +
                            "\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n"));
  std::string got(256, '\0');
  size_t n = s.read_some(net::buffer(got));
  EXPECT_THAT(got.substr(0, n), HasSubstr("HTTP/1.1 100 Continue"));
  net::write(s, net::buffer(body));
  std::string rest;
  boost::system::error_code ec;
  char buf[4096];
  while (rest.find("\r\n\r\n") == std::string::npos || rest.find("}") == std::string::npos) {
    n = s.read_some(net::buffer(buf), ec);
    if (ec) break;
    rest.append(buf, n);
  }
  EXPECT_THAT(rest, HasSubstr("HTTP/1.1 200"));
}

TEST_F(ServerTest, SlowHeadersAreCutOff) {
  const auto start = std::chrono::steady_clock::now();
  // Half a request line and never the rest: the 1 s header deadline closes the connection.
  const std::string out = RawExchange(server_->port(), "GET /healthz HTTP/1.1\r\nHost:", std::chrono::seconds(10));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_EQ(out.find("200 OK"), std::string::npos);
}

TEST_F(ServerTest, SlowBodiesAreCutOff) {
  const auto start = std::chrono::steady_clock::now();
  const std::string out = RawExchange(server_->port(),
                                      "POST /api/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                          std::string(kAdminKey) + "\r\nContent-Length: 100\r\n\r\n[{",
                                      std::chrono::seconds(15));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(8));
  EXPECT_EQ(out.find("200 OK"), std::string::npos);
  // The server is still fine.
  EXPECT_EQ(server_->Get("/healthz", "").status, 200);
}

}  // namespace
}  // namespace mandate::testing
