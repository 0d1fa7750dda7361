// The MCP gateway: serves each configured upstream at /mcp/<name> over Streamable HTTP (the
// legacy-era revisions 2025-03-26, 2025-06-18 and 2025-11-25 with sessions; JSON responses, and
// server-sent event streams for what the upstream sends while a request runs and for the standalone
// GET stream, resumable with Last-Event-ID) and its OAuth Protected Resource Metadata at
// /.well-known/oauth-protected-resource/mcp/<name>.
//
// Every request is authenticated (a JWT from a trusted issuer for this resource, or a Mandate
// agent API key), bound to the session it opened, and checked before it reaches the upstream:
// lists are filtered to what the caller may use, tools/call, resources/read, prompts/get and
// completion/complete are decided by the policy (docs/mcp-gateway.md has the mapping), and tool
// definitions are pinned. The caller's token never leaves the gateway.
//
// Thread safety: Handle() may be called from any thread and answers through `respond`, possibly
// later and from an upstream's thread.
#ifndef MANDATE_MCP_GATEWAY_H_
#define MANDATE_MCP_GATEWAY_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "absl/status/statusor.h"

#include "agents/agents.h"
#include "mandate/mandate.h"
#include "mcp/config.h"

namespace mandate::mcp {

using HttpServerRequest = boost::beast::http::request<boost::beast::http::string_body>;
using HttpServerResponse = boost::beast::http::response<boost::beast::http::string_body>;

class Gateway {
 public:
  struct Options {
    GatewayConfig config;
    // Where clients reach this server ("http://127.0.0.1:8080"); config.public_url overrides it.
    std::string base_url;
    std::string data_dir;  // for the tool pins file
    std::function<std::shared_ptr<const Snapshot>()> snapshot;
    agents::Agents* agents = nullptr;  // must outlive the gateway
    // Whether an Authorization header carries an admin key of the server (tool pin approval).
    std::function<bool(std::optional<std::string_view> authorization)> is_admin;
    // The server's I/O threads, if any: plain http upstreams are called from there without a thread
    // hand-over (docs/mcp-gateway.md). They must have stopped, or outlive the gateway.
    boost::asio::io_context* io = nullptr;
    // Receives one JSON audit entry per checked message (and per refused token); may be unset.
    // `kept`, when not null, runs once the log keeps the entry as `[audit] durability` says (in
    // sync mode once it is on disk), or with an error when the log cannot keep it: an allowed use
    // goes upstream only from there (docs/mcp-gateway.md, "Audit").
    using Kept = std::function<void(absl::Status)>;
    std::function<void(std::string entry, Kept kept)> audit;
    // Optional, with `audit`: true when the log has made room for one entry that the gateway passes
    // to audit_reserved next, as the log does in async durability. An allowed use then goes
    // upstream first and its record is built and appended while the upstream works, off the call's
    // path; false (sync mode, or a log that is full or failing) means `audit` with `kept`.
    std::function<bool()> audit_reserve;
    std::function<void(std::string entry)> audit_reserved;
    // Optional observers for the server's metrics (docs/mcp-gateway.md, "Metrics"): each checked
    // message, and each request forwarded upstream with the upstream's round trip (from the
    // hand-over to the upstream client to the decoded answer) and the gateway's own time on it
    // (from the request's arrival at the gateway to that hand-over, plus from the answer to the
    // reply's hand-over to the HTTP transport).
    std::function<void(std::string_view upstream, std::string_view method, std::string_view decision)> on_checked;
    std::function<void(std::string_view upstream, double upstream_seconds, double gateway_seconds)> on_forwarded;
    // Receives the approval steps the gateway takes (a person deciding through elicitation), to be
    // audited like POST /v1/approvals/{id}/approve; may be unset.
    std::function<void(const std::vector<agents::ApprovalEvent>& events)> approval_audit;
  };

  // Validates the options and loads key files and pins. Call Start() to connect the upstreams.
  static absl::StatusOr<std::unique_ptr<Gateway>> Create(Options options);
  ~Gateway();  // stops the upstreams (their children exit)

  // The URL clients reach this server at, once the port is known; call before Start(). Ignored
  // when the configuration sets public_url.
  void SetBaseUrl(std::string base_url);
  void Start();

  // Whether `path` is served by the gateway.
  static bool Owns(std::string_view path);

  using Respond = std::function<void(HttpServerResponse)>;
  // A response body sent in pieces as they come (server-sent events). Thread-safe, non-blocking.
  class EventSink {
   public:
    virtual ~EventSink() = default;
    // Queues `data`; false once the client has gone.
    virtual bool Send(std::string data) = 0;
    // Ends the response once what is queued is sent.
    virtual void Close() = 0;
  };
  // Answers the request with `header` and a streamed body instead of calling Respond; null when
  // the connection cannot stream. Called at most once per request.
  using StartStream = std::function<std::shared_ptr<EventSink>(HttpServerResponse header)>;
  // Answers through `respond`, or through `start_stream` (when given and the client accepts
  // text/event-stream) with an SSE stream.
  void Handle(HttpServerRequest request, Respond respond, StartStream start_stream = nullptr);

  struct Impl;

 private:
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_GATEWAY_H_
