// API keys and their roles. Keys arrive as `Authorization: Bearer <key>` and are compared in
// constant time (agents::KeyMap) so that response timing reveals nothing about a key's content or length.
#ifndef MANDATE_SERVER_AUTH_H_
#define MANDATE_SERVER_AUTH_H_

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "agents/key_map.h"

namespace mandate::server {

// The key the Oso Dev Server accepts; `mandate serve --dev` accepts it as an admin key.
inline constexpr std::string_view kOsoDevKey = "e_0123456789_12345_osotesttoken01xiIn";

// What a key may do. kRead: check, list, actions, queries and reading facts and policies.
// kAdmin: everything, including writes and policy uploads.
enum class Role { kRead, kAdmin };

absl::StatusOr<Role> ParseRole(std::string_view text);  // "read" | "admin"
const char* RoleName(Role role);

// The console user behind a request authenticated by a session cookie instead of an API key
// (console.h): handlers that act for a person (approvals) take the person from here, never from
// the request body.
struct SessionUser {
  std::string type = "User";  // [console] user_type
  std::string id;
  std::string console_role;  // read | approver | admin
};

struct ApiKey {
  std::string key;
  Role role = Role::kAdmin;
  std::string name;  // label for logs; never the key itself
};

class KeyRing {
 public:
  // Keys must be non-empty. A key listed twice keeps the stronger role.
  explicit KeyRing(const std::vector<ApiKey>& keys);

  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }

  // Checks an `Authorization` header value. Unauthenticated when it is absent, not a Bearer token,
  // or names no known key. Every key is compared, whatever matches.
  absl::StatusOr<Role> Authenticate(std::optional<std::string_view> authorization) const;

 private:
  agents::KeyMap<Role> keys_;
};

}  // namespace mandate::server

#endif  // MANDATE_SERVER_AUTH_H_
