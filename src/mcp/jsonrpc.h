// JSON-RPC 2.0 as MCP uses it: decoding one untrusted message with size and nesting limits into a
// request, notification or response, and building replies and error objects. Decoding never
// throws and never asserts; every failure becomes the JSON-RPC error object the peer should get
// (-32700 parse error, -32600 invalid request), with the request id when it could be read.
#ifndef MANDATE_MCP_JSONRPC_H_
#define MANDATE_MCP_JSONRPC_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace mandate::mcp {

// Standard JSON-RPC error codes, and the implementation-defined ones the gateway uses
// (-32000..-32019 are free for implementations in every MCP revision).
inline constexpr int kParseError = -32700;
inline constexpr int kInvalidRequest = -32600;
inline constexpr int kMethodNotFound = -32601;
inline constexpr int kInvalidParams = -32602;
inline constexpr int kInternalError = -32603;
inline constexpr int kUpstreamUnavailable = -32000;  // the upstream server is down, restarting or timed out
inline constexpr int kPolicyDenied = -32001;         // Mandate's policy refused the message
inline constexpr int kToolChanged = -32002;          // a pinned tool definition changed; needs re-approval

struct Limits {
  size_t max_bytes = size_t{4} << 20;  // one message
  size_t max_depth = 64;               // nesting of arrays and objects
};

struct RpcError {
  int code = kInternalError;
  std::string message;
  boost::json::value data;  // null = absent
  boost::json::value id;    // the request's id when known, else null
};

struct Message {
  enum class Kind { kRequest, kNotification, kResponse };
  Kind kind = Kind::kRequest;
  boost::json::value id;       // string or integer for requests and responses; null for notifications
  std::string method;          // requests and notifications
  boost::json::object params;  // requests and notifications; empty when absent
  bool has_params = false;
  boost::json::object raw;  // the whole message object as received
};

// The result of decoding: exactly one of `message` and `error` is set.
struct Decoded {
  std::optional<Message> message;
  std::optional<RpcError> error;
};

// Decodes one JSON-RPC message. Arrays (batches) are refused with -32600: MCP removed batching in
// 2025-06-18 and the gateway speaks one message per HTTP request for every revision.
Decoded Decode(std::string_view text, const Limits& limits = {});

// Builders of wire messages.
boost::json::object MakeRequest(const boost::json::value& id, std::string_view method, boost::json::object params);
boost::json::object MakeNotification(std::string_view method, boost::json::object params);
boost::json::object MakeResult(const boost::json::value& id, boost::json::value result);
boost::json::object MakeError(const RpcError& error);
boost::json::object MakeError(const boost::json::value& id, int code, std::string_view message,
                              boost::json::value data = nullptr);

// True for a valid JSON-RPC id as MCP allows it: a string or an integer (never null).
bool IsValidId(const boost::json::value& id);

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_JSONRPC_H_
