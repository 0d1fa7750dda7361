// Connections from the gateway to the MCP servers it fronts. The gateway is one MCP client per
// upstream: it performs the initialize handshake itself, keeps the upstream's InitializeResult, and
// multiplexes every client session's requests over that one connection with its own request ids.
//
// StdioUpstream runs the configured command (never anything a client sends) and supervises it: when
// the process exits, every request in flight fails with a clear error and the process is restarted
// with exponential backoff. HttpUpstream speaks Streamable HTTP (JSON or SSE responses, its own
// Mcp-Session-Id, re-initializing when the upstream forgets the session) with the configured
// credential; the client's token is never sent. It keeps a standalone GET stream open towards the
// upstream (for notifications outside requests), resumes a request's SSE stream that ends before
// its answer (GET with Last-Event-ID), and bounds every exchange by the request timeout.
//
// Thread safety: every public method may be called from any thread. Callbacks run on the
// upstream's own threads and must not block for long.
#ifndef MANDATE_MCP_UPSTREAM_H_
#define MANDATE_MCP_UPSTREAM_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/json/object.hpp>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"

#include "mcp/config.h"

namespace mandate::mcp {

// Gets the upstream's response message (an object with "result" or "error"), exactly once.
using ResponseCallback = std::function<void(boost::json::object response)>;
// Gets the upstream's InitializeResult, or why there is none (Unavailable).
using ReadyCallback = std::function<void(absl::StatusOr<boost::json::object> initialize_result)>;
// Gets each notification the upstream sends (method, params) and the id of the gateway's request it
// belongs to, when known: for HTTP upstreams the request whose SSE response carried it; for stdio
// the only request in flight at the time (the stdio transport carries no such relation).
using NotificationHandler = std::function<void(const std::string& method, const boost::json::object& params,
                                               std::optional<int64_t> related)>;
// Gets each request the upstream sends the gateway (sampling, elicitation; ping is answered by the
// upstream object itself), with the related request as above. The handler must eventually answer
// with SendResponse() using `id`.
using ServerRequestHandler = std::function<void(const boost::json::value& id, const std::string& method,
                                                const boost::json::object& params, std::optional<int64_t> related)>;
// Runs each time a handshake with the upstream completed (at start and after every reconnection or
// re-initialization): what the gateway had established with the previous connection (resource
// subscriptions) must be established again.
using ReadyHandler = std::function<void()>;

class Upstream {
 public:
  explicit Upstream(UpstreamConfig config);
  virtual ~Upstream();
  Upstream(const Upstream&) = delete;
  Upstream& operator=(const Upstream&) = delete;

  // Creates the upstream for `config` (stdio or HTTP). With `io` (the server's I/O threads, which
  // must outlive the upstream or have stopped before it is destroyed), a plain http upstream's
  // requests run there without blocking, and their callbacks run there too.
  static std::unique_ptr<Upstream> Create(UpstreamConfig config, boost::asio::io_context* io = nullptr);

  const UpstreamConfig& config() const { return config_; }
  const std::string& name() const { return config_.name; }

  // Connects (spawns, handshakes) in the background. Call once.
  void Start();
  // Fails everything pending and disconnects; no callback runs after Stop() returns.
  void Stop();

  // Sends a request with a fresh upstream id and returns that id. Requests made before the
  // handshake completed wait for it (bounded by the timeout). A timeout or disconnect answers with
  // a JSON-RPC error (kUpstreamUnavailable).
  int64_t Request(std::string_view method, boost::json::object params, ResponseCallback done);
  // The same in two steps, for callers that must record the id before anything about the request
  // can arrive: ReserveId() then Request(id, ...).
  int64_t ReserveId();
  void Request(int64_t id, std::string_view method, boost::json::object params, ResponseCallback done);
  // Answers a request of the upstream (see ServerRequestHandler).
  void SendResponse(boost::json::object response);
  // Forgets a pending request and tells the upstream (notifications/cancelled). Its callback does
  // not run.
  void Cancel(int64_t id, std::string_view reason);
  void Notify(std::string_view method, boost::json::object params);
  // The upstream's InitializeResult once the handshake is done (waits up to the timeout).
  void WhenReady(ReadyCallback done);
  void SetNotificationHandler(NotificationHandler handler);
  // Without a handler, the upstream's requests other than ping are refused (-32601).
  void SetServerRequestHandler(ServerRequestHandler handler);
  void SetReadyHandler(ReadyHandler handler);

 protected:
  // Transport hooks. Connect() (re)starts the connection and must end in OnConnected() or
  // OnDisconnected(); Send() delivers one message; Disconnect() tears the connection down.
  virtual void Connect() = 0;
  virtual void Send(boost::json::object message) = 0;
  virtual void Disconnect() = 0;
  // Runs after each completed handshake, once notifications/initialized is on its way.
  virtual void OnReady() {}

  // Called by the transport.
  void OnConnected();                       // the transport is up: the handshake starts
  void OnMessage(boost::json::object message, std::optional<int64_t> related = std::nullopt);
  // The one request in flight (sent and unanswered, the handshake aside), if there is exactly one.
  std::optional<int64_t> SoleRequestInFlight() const;
  void OnDisconnected(const std::string& why);  // fails requests in flight; marks not ready
  bool stopping() const;
  std::chrono::milliseconds timeout() const;
  // The bound on the handshake and on waiting for it: a process start (node loading its modules on a
  // busy machine) can take longer than a call should, so at least 15 s.
  std::chrono::milliseconds startup_timeout() const;

 private:
  struct Pending {
    ResponseCallback done;
    std::chrono::steady_clock::time_point deadline;
    bool sent = false;
    boost::json::object message;  // kept until sent
  };
  void Fail(std::vector<ResponseCallback> callbacks, int64_t ids_for_error, const std::string& why);
  void TimerLoop();

  const UpstreamConfig config_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool ready_ = false;
  int64_t next_id_ = 1;
  int64_t handshake_id_ = 0;  // the current initialize request
  absl::flat_hash_map<int64_t, Pending> pending_;
  std::optional<boost::json::object> init_result_;
  std::string last_error_;
  std::deque<std::pair<ReadyCallback, std::chrono::steady_clock::time_point>> waiters_;
  NotificationHandler on_notification_;
  ServerRequestHandler on_request_;
  ReadyHandler on_ready_;
  std::thread timer_;
};

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_UPSTREAM_H_
