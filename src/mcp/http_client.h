// A small HTTP/1.1 client (Boost.Beast, TLS through OpenSSL with peer verification) for the
// gateway's outbound calls: Streamable HTTP upstreams, JWKS documents and OAuth token endpoints.
// HttpFetch() uses a connection once; HttpConnectionPool keeps connections alive between exchanges
// (an upstream's calls cost no TCP/TLS set-up each). Both block the calling thread (call them from
// worker threads, never from the server's I/O threads), but never past the request's deadline: a
// server that stalls mid-exchange (while connecting, or mid-response) costs at most `timeout`.
// AsyncHttpPool is the non-blocking variant for plain http, run on the server's I/O threads: the
// gateway's calls to an upstream then cost no hand-over to another thread and back.
#ifndef MANDATE_MCP_HTTP_CLIENT_H_
#define MANDATE_MCP_HTTP_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "absl/status/statusor.h"

namespace mandate::mcp {

struct HttpResult {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  std::string Header(std::string_view name) const;  // "" when absent; `name` lower-case
};

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // http:// or https://
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The whole exchange (connect, TLS, write, read) ends by then, with DeadlineExceeded; name
  // resolution excepted (the system resolver cannot be interrupted; loopback and IP upstreams do
  // not use it).
  std::chrono::milliseconds timeout{30'000};
  size_t body_limit = size_t{16} << 20;
  // Called with the body received so far whenever more arrives; returning true ends the exchange
  // early (used to stop reading an SSE stream once the awaited response arrived).
  std::function<bool(std::string_view body)> on_progress;
  // When set, the exchange ends (Unavailable, "Operation canceled") within about 100 ms after it
  // turns true: how a long-lived stream is stopped from another thread.
  const std::atomic<bool>* cancel = nullptr;
};

// Performs one exchange. Errors (Unavailable) for DNS, connect, TLS, timeout or a malformed
// response; any HTTP status is a successful result.
absl::StatusOr<HttpResult> HttpFetch(const HttpRequest& request);

// Keeps idle keep-alive connections per origin (scheme, host, port) for reuse. A connection goes
// back to the pool only when its response was read to the end and allowed keep-alive (no
// `Connection: close`, HTTP/1.1); an SSE response the caller stopped early is drained for a short
// while (the server usually ends it right after the awaited message) and dropped if it does not end.
// A pooled connection is dropped when idle longer than `idle_timeout`, or when the server closed it
// or sent something unasked (checked before each reuse). Since requests need not be idempotent (an
// MCP tools/call is not), an exchange on a reused connection is retried once, on a new connection,
// only when the request provably did not reach the server: writing it failed; or, for GET/HEAD
// only, the connection ended before any byte of a response. Thread-safe.
class HttpConnectionPool {
 public:
  // `max_idle_per_origin` bounds the idle connections kept per origin (more may be open while busy).
  explicit HttpConnectionPool(size_t max_idle_per_origin,
                              std::chrono::milliseconds idle_timeout = std::chrono::milliseconds(4'000));
  ~HttpConnectionPool();
  HttpConnectionPool(const HttpConnectionPool&) = delete;
  HttpConnectionPool& operator=(const HttpConnectionPool&) = delete;

  // As HttpFetch, reusing a pooled connection to the same origin when there is one.
  absl::StatusOr<HttpResult> Fetch(const HttpRequest& request);
  // Connections opened so far (tests and diagnostics).
  uint64_t connections_opened() const;

  struct Connection;  // defined in http_client.cc
  struct Idle;

 private:
  std::unique_ptr<Idle> idle_;
};

// HttpConnectionPool's exchanges without a blocking thread: each runs as asynchronous operations on
// `executor`, whose threads also run the request's on_progress and `done` (neither may block). Only
// plain http:// URLs (Supports()); `cancel` is not supported. Reuse, the idle timeout, the drain of
// a response stopped early and the single retry of a request that provably did not reach the
// server are as in HttpConnectionPool, except that `done` gets a response stopped early at once,
// before the drain (the connection returns to the pool once that ends). Thread-safe. Exchanges in
// flight keep what they need alive: the pool may be destroyed before they end (their `done` still
// runs, on the executor, unless it is stopped).
class AsyncHttpPool {
 public:
  using Done = std::function<void(absl::StatusOr<HttpResult> result)>;
  AsyncHttpPool(boost::asio::any_io_executor executor, size_t max_idle_per_origin,
                std::chrono::milliseconds idle_timeout = std::chrono::milliseconds(4'000));
  ~AsyncHttpPool();
  AsyncHttpPool(const AsyncHttpPool&) = delete;
  AsyncHttpPool& operator=(const AsyncHttpPool&) = delete;

  static bool Supports(std::string_view url);
  // Starts an exchange; `done` runs exactly once, on the executor (or at once, before Fetch returns,
  // for a URL it does not support).
  void Fetch(HttpRequest request, Done done);
  uint64_t connections_opened() const;

  struct Connection;  // defined in http_client.cc
  struct State;

 private:
  std::shared_ptr<State> state_;
};

// Percent-encodes for application/x-www-form-urlencoded.
std::string FormEncode(std::string_view text);

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_HTTP_CLIENT_H_
