#include "server/auth.h"

#include "gtest/gtest.h"

namespace mandate::server {
namespace {

TEST(KeyRingTest, AuthenticatesBearerKeysWithTheirRoles) {
  KeyRing ring({ApiKey{"admin-secret", Role::kAdmin, "a"}, ApiKey{"reader-secret", Role::kRead, "r"}});
  EXPECT_EQ(ring.size(), 2u);
  EXPECT_EQ(*ring.Authenticate("Bearer admin-secret"), Role::kAdmin);
  EXPECT_EQ(*ring.Authenticate("Bearer reader-secret"), Role::kRead);
  // The scheme is case-insensitive and the key is trimmed, as the clients trim it.
  EXPECT_EQ(*ring.Authenticate("bearer   admin-secret "), Role::kAdmin);
}

TEST(KeyRingTest, RejectsMissingMalformedAndUnknownKeys) {
  KeyRing ring({ApiKey{"admin-secret", Role::kAdmin, ""}});
  for (std::optional<std::string_view> h :
       {std::optional<std::string_view>(), std::optional<std::string_view>("admin-secret"),
        std::optional<std::string_view>("Basic admin-secret"), std::optional<std::string_view>("Bearer"),
        std::optional<std::string_view>("Bearer admin-secre"), std::optional<std::string_view>("Bearer admin-secret2"),
        std::optional<std::string_view>("Bearer ")}) {
    auto r = ring.Authenticate(h);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << (h ? *h : "<none>");
  }
}

TEST(KeyRingTest, ADuplicateKeyKeepsTheStrongerRoleAndEmptyKeysAreIgnored) {
  KeyRing ring({ApiKey{"k", Role::kRead, ""}, ApiKey{"k", Role::kAdmin, ""}, ApiKey{"", Role::kAdmin, ""}});
  EXPECT_EQ(ring.size(), 1u);
  EXPECT_EQ(*ring.Authenticate("Bearer k"), Role::kAdmin);
  EXPECT_TRUE(KeyRing({}).empty());
}

TEST(RoleTest, ParsesRoleNames) {
  EXPECT_EQ(*ParseRole("admin"), Role::kAdmin);
  EXPECT_EQ(*ParseRole("read"), Role::kRead);
  EXPECT_FALSE(ParseRole("write").ok());
  EXPECT_STREQ(RoleName(Role::kRead), "read");
}

}  // namespace
}  // namespace mandate::server
