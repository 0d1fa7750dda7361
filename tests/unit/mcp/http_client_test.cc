// HttpConnectionPool and AsyncHttpPool against a small in-process HTTP/1.1 server that counts the
// connections it accepts and the requests it reads: reuse, `Connection: close`, idle connections the
// server closed, no resend of a request that may have reached the server, SSE responses stopped
// early, the deadline and cancellation of an exchange with a server that stalls mid-response (also
// a shorter deadline on a reused connection), and a header value that would split the request.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "mcp/http_client.h"

namespace mandate::mcp {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

enum class Mode {
  kKeepAlive,           // answers every request, keeps the connection
  kConnectionClose,     // answers with `Connection: close` and closes
  kCloseAfterResponse,  // answers (keep-alive) and then closes the connection silently
  kDropSecondRequest,   // answers the first request of a connection, reads the second and closes
  kSse,                 // answers with a chunked SSE stream of two events
  kStallMidBody,        // sends the header and part of an SSE body, then nothing until shut down
  kStallSecond,         // answers the first request of a connection; stalls on the second as above
};

class TestServer {
 public:
  explicit TestServer(Mode mode) : mode_(mode), acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~TestServer() {
    stopping_ = true;
    beast::error_code ec;
    {
      tcp::socket wake(io_);  // a blocking accept does not notice close(); a connection wakes it
      wake.connect(acceptor_.local_endpoint(), ec);
    }
    accept_thread_.join();
    acceptor_.close(ec);
    {
      std::lock_guard lock(mu_);
      for (auto& s : sockets_) s->shutdown(tcp::socket::shutdown_both, ec);
    }
    for (auto& t : threads_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/mcp"; }
  int connections() const { return connections_; }
  int requests() const { return requests_; }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      auto socket = std::make_shared<tcp::socket>(io_);
      beast::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec || stopping_) return;
      ++connections_;
      socket->set_option(tcp::no_delay(true), ec);  // as Node's HTTP server does
      std::lock_guard lock(mu_);
      sockets_.push_back(socket);
      threads_.emplace_back([this, socket] { Serve(*socket); });
    }
  }
  void Serve(tcp::socket& socket) {
    beast::flat_buffer buffer;
    beast::error_code ec;
    for (int n = 0;; ++n) {
      http::request<http::string_body> req;
      http::read(socket, buffer, req, ec);
      if (ec) return;
      ++requests_;
      if (mode_ == Mode::kDropSecondRequest && n == 1) break;
      if (mode_ == Mode::kStallMidBody || (mode_ == Mode::kStallSecond && n == 1)) {
        net::write(socket, net::buffer(std::string("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                                   "Transfer-Encoding: chunked\r\n\r\n6\r\ndata: ")), ec);
        while (!stopping_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        return;
      }
      if (mode_ == Mode::kSse) {
        http::response<http::empty_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "text/event-stream");
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        http::write_header(socket, sr, ec);
        const std::string events = "data: {\"n\":1}\n\ndata: {\"n\":2}\n\n";
        net::write(socket, http::make_chunk(net::buffer(events)), ec);
        net::write(socket, http::make_chunk_last(), ec);
        if (ec) return;
        continue;
      }
      http::response<http::string_body> res{http::status::ok, 11};
      res.set(http::field::content_type, "application/json");
      res.body() = "{\"echo\":" + req.body() + "}";
      res.keep_alive(mode_ != Mode::kConnectionClose);
      res.prepare_payload();
      http::write(socket, res, ec);
      if (ec || mode_ == Mode::kConnectionClose || mode_ == Mode::kCloseAfterResponse) break;
    }
    socket.shutdown(tcp::socket::shutdown_both, ec);
    socket.close(ec);
  }

  const Mode mode_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  std::mutex mu_;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
  std::thread accept_thread_;
};

HttpRequest Post(const std::string& url, const std::string& body) {
  HttpRequest r;
  r.method = "POST";
  r.url = url;
  r.body = body;
  r.timeout = std::chrono::milliseconds(5'000);
  return r;
}

TEST(HttpConnectionPoolTest, ReusesAKeepAliveConnection) {
  TestServer server(Mode::kKeepAlive);
  HttpConnectionPool pool(4);
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<HttpResult> r = pool.Fetch(Post(server.url(), std::to_string(i)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->body, "{\"echo\":" + std::to_string(i) + "}");
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(pool.connections_opened(), 1u);
  EXPECT_EQ(server.requests(), 5);
}

TEST(HttpConnectionPoolTest, HttpFetchUsesEachConnectionOnce) {
  TestServer server(Mode::kKeepAlive);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(HttpFetch(Post(server.url(), "1")).ok());
  EXPECT_EQ(server.connections(), 3);
}

TEST(HttpConnectionPoolTest, ConnectionCloseIsNotReused) {
  TestServer server(Mode::kConnectionClose);
  HttpConnectionPool pool(4);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.Fetch(Post(server.url(), "1")).ok());
  EXPECT_EQ(server.connections(), 3);
}

TEST(HttpConnectionPoolTest, AnIdleConnectionTheServerClosedIsReplaced) {
  TestServer server(Mode::kCloseAfterResponse);
  HttpConnectionPool pool(4);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.Fetch(Post(server.url(), "1")).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the server's FIN arrives
  }
  EXPECT_EQ(server.connections(), 3);
  EXPECT_EQ(server.requests(), 3);  // each request was sent once
}

TEST(HttpConnectionPoolTest, AnIdleConnectionPastTheIdleTimeoutIsNotReused) {
  TestServer server(Mode::kKeepAlive);
  HttpConnectionPool pool(4, std::chrono::milliseconds(1));
  ASSERT_TRUE(pool.Fetch(Post(server.url(), "1")).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(pool.Fetch(Post(server.url(), "2")).ok());
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpConnectionPoolTest, APostThatMayHaveReachedTheServerIsNotSentAgain) {
  TestServer server(Mode::kDropSecondRequest);
  HttpConnectionPool pool(4);
  ASSERT_TRUE(pool.Fetch(Post(server.url(), "1")).ok());
  // The server reads this one and closes without an answer: it may have acted on it.
  absl::StatusOr<HttpResult> r = pool.Fetch(Post(server.url(), "2"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(server.requests(), 2);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpConnectionPoolTest, ASseResponseStoppedEarlyIsDrainedAndReused) {
  TestServer server(Mode::kSse);
  HttpConnectionPool pool(4);
  for (int i = 0; i < 3; ++i) {
    HttpRequest r = Post(server.url(), "1");
    int calls = 0;
    r.on_progress = [&](std::string_view body) {
      ++calls;
      return body.find("\"n\":1") != std::string_view::npos;  // the awaited message
    };
    absl::StatusOr<HttpResult> res = pool.Fetch(r);
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_GE(calls, 1);
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpConnectionPoolTest, AServerThatStallsMidResponseCostsAtMostTheTimeout) {
  TestServer server(Mode::kStallMidBody);
  HttpConnectionPool pool(4);
  HttpRequest r = Post(server.url(), "1");
  r.timeout = std::chrono::milliseconds(300);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<HttpResult> res = pool.Fetch(r);
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(res.status().code(), absl::StatusCode::kDeadlineExceeded) << res.status();
  EXPECT_GE(took, std::chrono::milliseconds(250));
  EXPECT_LT(took, std::chrono::milliseconds(3'000));
  // HttpFetch (a connection of its own) honours the deadline as well.
  EXPECT_EQ(HttpFetch(r).status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST(HttpConnectionPoolTest, ACancelledExchangeEndsSoon) {
  TestServer server(Mode::kStallMidBody);
  std::atomic<bool> cancel{false};
  HttpRequest r = Post(server.url(), "1");
  r.timeout = std::chrono::milliseconds(60'000);
  r.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<HttpResult> res = HttpFetch(r);
  const auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  EXPECT_EQ(res.status().code(), absl::StatusCode::kUnavailable) << res.status();
  EXPECT_LT(took, std::chrono::milliseconds(5'000));
}

TEST(HttpConnectionPoolTest, UnreachableAndBadUrlsAreErrors) {
  HttpConnectionPool pool(1);
  EXPECT_EQ(pool.Fetch(Post("ftp://x/", "")).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(pool.Fetch(Post("http://127.0.0.1:1/mcp", "")).status().code(), absl::StatusCode::kUnavailable);
}

// An AsyncHttpPool on an io_context run by a thread of its own (as the server's I/O threads run it).
class AsyncPoolTest : public ::testing::Test {
 protected:
  AsyncPoolTest() : work_(net::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
  ~AsyncPoolTest() override {
    pool_.reset();
    work_.reset();
    thread_.join();
  }
  // Runs one exchange and waits for its `done`.
  absl::StatusOr<HttpResult> Fetch(HttpRequest r) {
    std::promise<absl::StatusOr<HttpResult>> p;
    pool_->Fetch(std::move(r), [&p](absl::StatusOr<HttpResult> res) { p.set_value(std::move(res)); });
    return p.get_future().get();
  }
  // Runs an exchange with a 300 ms timeout against a server that stalls: it must fail with
  // DeadlineExceeded, not before the timeout and long before anything else would end it.
  void ExpectDeadlineAfter300Ms(HttpRequest r) {
    r.timeout = std::chrono::milliseconds(300);
    const auto start = std::chrono::steady_clock::now();
    absl::StatusOr<HttpResult> res = Fetch(std::move(r));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(res.status().code(), absl::StatusCode::kDeadlineExceeded) << res.status();
    EXPECT_GE(took, std::chrono::milliseconds(250));
    EXPECT_LT(took, std::chrono::milliseconds(3'000));
  }

  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<AsyncHttpPool> pool_ = std::make_unique<AsyncHttpPool>(io_.get_executor(), 4);
};

TEST_F(AsyncPoolTest, ReusesAKeepAliveConnection) {
  TestServer server(Mode::kKeepAlive);
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<HttpResult> r = Fetch(Post(server.url(), std::to_string(i)));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->body, "{\"echo\":" + std::to_string(i) + "}");
  }
  EXPECT_EQ(server.connections(), 1);
  EXPECT_EQ(pool_->connections_opened(), 1u);
}

TEST_F(AsyncPoolTest, ConnectionCloseAndConnectionsTheServerClosedAreNotReused) {
  TestServer closing(Mode::kConnectionClose);
  TestServer silent(Mode::kCloseAfterResponse);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Fetch(Post(closing.url(), "1")).ok());
    ASSERT_TRUE(Fetch(Post(silent.url(), "1")).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the server's FIN arrives
  }
  EXPECT_EQ(closing.connections(), 3);
  EXPECT_EQ(silent.connections(), 3);
  EXPECT_EQ(silent.requests(), 3);  // each request was sent once
}

TEST_F(AsyncPoolTest, APostThatMayHaveReachedTheServerIsNotSentAgain) {
  TestServer server(Mode::kDropSecondRequest);
  ASSERT_TRUE(Fetch(Post(server.url(), "1")).ok());
  EXPECT_FALSE(Fetch(Post(server.url(), "2")).ok());
  EXPECT_EQ(server.requests(), 2);
}

TEST_F(AsyncPoolTest, ASseResponseStoppedEarlyAnswersAtOnceThenIsDrainedAndReused) {
  TestServer server(Mode::kSse);
  for (int i = 0; i < 3; ++i) {
    HttpRequest r = Post(server.url(), "1");
    r.on_progress = [](std::string_view body) { return body.find("\"n\":1") != std::string_view::npos; };
    absl::StatusOr<HttpResult> res = Fetch(r);
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_NE(res->body.find("\"n\":1"), std::string::npos);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the drain ends
  }
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(AsyncPoolTest, AServerThatStallsMidResponseCostsAtMostTheTimeout) {
  TestServer server(Mode::kStallMidBody);
  ExpectDeadlineAfter300Ms(Post(server.url(), "1"));
}

// The deadline is kept by one timer per connection, armed for the first exchange's (later)
// deadline: a later exchange with an earlier deadline on the reused connection must still end by it.
TEST_F(AsyncPoolTest, AShorterDeadlineOnAReusedConnectionIsKept) {
  TestServer server(Mode::kStallSecond);
  HttpRequest first = Post(server.url(), "1");
  first.timeout = std::chrono::milliseconds(60'000);
  ASSERT_TRUE(Fetch(first).ok());
  ExpectDeadlineAfter300Ms(Post(server.url(), "2"));
  EXPECT_EQ(server.connections(), 1);  // the second went out on the first's connection
}

// Header fields are written by hand: one that would split the request is refused, not sent.
TEST_F(AsyncPoolTest, AHeaderWithALineBreakIsRefused) {
  TestServer server(Mode::kKeepAlive);
  HttpRequest r = Post(server.url(), "1");
  r.headers.emplace_back("Mcp-Session-Id", "abc\r\nX-Injected: 1");
  absl::StatusOr<HttpResult> res = Fetch(r);
  EXPECT_FALSE(res.ok());
  EXPECT_EQ(server.requests(), 0);
  ASSERT_TRUE(Fetch(Post(server.url(), "2")).ok());  // the pool still works
}

TEST_F(AsyncPoolTest, OnlyPlainHttpAndReachableServers) {
  EXPECT_TRUE(AsyncHttpPool::Supports("http://127.0.0.1:1/mcp"));
  EXPECT_FALSE(AsyncHttpPool::Supports("https://example.com/mcp"));
  EXPECT_EQ(Fetch(Post("https://127.0.0.1:1/mcp", "")).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Fetch(Post("http://127.0.0.1:1/mcp", "")).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace mandate::mcp
