// Asking a person for an approval through MCP elicitation (docs/mcp-gateway.md, "Asking through
// elicitation"): the elicitation/create params the gateway sends, and the reading of the client's
// answer. The gateway does the waiting and deciding; these are the pure parts.
#ifndef MANDATE_MCP_APPROVAL_ASK_H_
#define MANDATE_MCP_APPROVAL_ASK_H_

#include <string>

#include <boost/json/object.hpp>

namespace mandate::mcp {

// The params of an elicitation/create request in form mode showing `message` and asking for
// {decision: "approve" | "deny", note?: string}.
boost::json::object ApprovalElicitationParams(std::string message);

struct ApprovalAnswer {
  enum class Kind { kApprove, kDeny, kNone };
  Kind kind = Kind::kNone;  // kNone: declined, cancelled, an error, or no decision in the content
  std::string action;       // the client's action ("accept", "decline", "cancel"); "" when absent
  std::string note;         // at most 4096 bytes
};

// Reads the client's JSON-RPC response to ApprovalElicitationParams. Any shape is accepted: what
// is not an accepted, well-formed decision is Kind::kNone.
ApprovalAnswer ReadApprovalAnswer(const boost::json::object& response);

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_APPROVAL_ASK_H_
