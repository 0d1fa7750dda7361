// A small blocking HTTP/1.1 client (Boost.Beast, TLS through OpenSSL with peer verification) for
// the gateway's outbound calls: Streamable HTTP upstreams, JWKS documents and OAuth token
// endpoints. Call it from worker threads, never from the server's I/O threads.
#ifndef MANDATE_MCP_HTTP_CLIENT_H_
#define MANDATE_MCP_HTTP_CLIENT_H_

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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
  std::chrono::milliseconds timeout{30'000};  // the whole exchange
  size_t body_limit = size_t{16} << 20;
  // Called with the body received so far whenever more arrives; returning true ends the exchange
  // early (used to stop reading an SSE stream once the awaited response arrived).
  std::function<bool(std::string_view body)> on_progress;
};

// Performs one exchange. Errors (Unavailable) for DNS, connect, TLS, timeout or a malformed
// response; any HTTP status is a successful result.
absl::StatusOr<HttpResult> HttpFetch(const HttpRequest& request);

// Percent-encodes for application/x-www-form-urlencoded.
std::string FormEncode(std::string_view text);

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_HTTP_CLIENT_H_
