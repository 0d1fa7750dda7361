#include "server/auth.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace mandate::server {

absl::StatusOr<Role> ParseRole(std::string_view text) {
  if (text == "admin") return Role::kAdmin;
  if (text == "read") return Role::kRead;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown role \"", std::string(text), "\"; use \"admin\" or \"read\""));
}

const char* RoleName(Role role) { return role == Role::kAdmin ? "admin" : "read"; }

KeyRing::KeyRing(const std::vector<ApiKey>& keys) {
  for (const ApiKey& k : keys) {
    if (k.key.empty()) continue;
    if (Role* role = keys_.Existing(k.key)) {
      if (k.role == Role::kAdmin) *role = Role::kAdmin;
    } else {
      keys_.Add(k.key, k.role);
    }
  }
}

absl::StatusOr<Role> KeyRing::Authenticate(std::optional<std::string_view> authorization) const {
  if (!authorization) {
    return absl::UnauthenticatedError("missing API key: send the header `Authorization: Bearer <key>`");
  }
  std::string_view h = *authorization;
  constexpr std::string_view kBearer = "bearer ";
  if (h.size() < kBearer.size() || !absl::EqualsIgnoreCase(absl::string_view(h.data(), kBearer.size()),
                                                           absl::string_view(kBearer.data(), kBearer.size()))) {
    return absl::UnauthenticatedError("the Authorization header must be `Bearer <key>`");
  }
  h.remove_prefix(kBearer.size());
  while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
  while (!h.empty() && (h.back() == ' ' || h.back() == '\t')) h.remove_suffix(1);
  const Role* found = keys_.Find(h);
  if (found == nullptr) return absl::UnauthenticatedError("invalid API key");
  return *found;
}

}  // namespace mandate::server
