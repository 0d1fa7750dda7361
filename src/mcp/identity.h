// Who is calling the gateway: the principal a request acts as (an agent, or a user) and the chain
// of principals it acts for, nearest first, taken from a validated JWT's claims or from the
// configuration of a Mandate API key.
#ifndef MANDATE_MCP_IDENTITY_H_
#define MANDATE_MCP_IDENTITY_H_

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "absl/status/statusor.h"

#include "mandate/mandate.h"
#include "agents/key_map.h"
#include "mcp/config.h"

namespace mandate::mcp {

struct Principal {
  TypedValue actor;
  std::vector<TypedValue> on_behalf_of;  // nearest first
  std::string via;                       // "jwt" or "api_key:<name>"
  // Everything above, for binding sessions to the identity that opened them.
  std::string Key() const;
  // "Agent{"claude"} for User{"alice"}" for messages to the caller.
  std::string Describe() const;
};

// Maps validated claims (see docs/mcp-gateway.md):
//   act (RFC 8693) present: actor = Agent{act.sub}; each nested act.sub follows in the chain;
//   else client_id (or azp) present and different from the user: actor = Agent{client_id};
//   else: actor = User{sub};
// the user (the `user_claim`, "sub" by default) ends the chain. Chains deeper than 8 are refused.
absl::StatusOr<Principal> PrincipalFromClaims(const boost::json::object& claims, const JwtIssuerConfig& issuer);

// Mandate API keys for local agents, compared in constant time.
class AgentKeyRing {
 public:
  explicit AgentKeyRing(const std::vector<AgentKey>& keys);
  bool empty() const { return keys_.empty(); }
  // The principal of `key`, or nullopt when it is not one of the configured keys.
  std::optional<Principal> Find(std::string_view key) const;

 private:
  agents::KeyMap<Principal> keys_;
};

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_IDENTITY_H_
