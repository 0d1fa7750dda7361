// Base64 (RFC 4648 §4) and base64url without padding (§5, as JWTs use it).
#ifndef MANDATE_MCP_BASE64_H_
#define MANDATE_MCP_BASE64_H_

#include <optional>
#include <string>
#include <string_view>

namespace mandate::mcp {

std::string Base64Encode(std::string_view data);
std::string Base64UrlEncode(std::string_view data);  // no padding
// Decodes base64url with or without padding; nullopt on any character outside the alphabet.
std::optional<std::string> Base64UrlDecode(std::string_view text);

}  // namespace mandate::mcp

#endif  // MANDATE_MCP_BASE64_H_
