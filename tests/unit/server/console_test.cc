// The console's security pieces: password hashes, sessions (expiry, idle timeout, capacity),
// CSRF checks on state-changing requests, the sign-in rate limit, the cookie, the embedded assets
// and the [console] configuration.
#include "server/console.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include <boost/beast/http.hpp>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

#include "server/config.h"

namespace mandate::server {
namespace {

namespace http = boost::beast::http;
using ::testing::HasSubstr;
using ::testing::StartsWith;

constexpr int kFast = kMinPasswordIterations;  // the tests need no real work factor

TEST(PasswordTest, HashesVerifyAndAreSalted) {
  absl::StatusOr<std::string> a = HashPassword("correct horse", kFast);
  absl::StatusOr<std::string> b = HashPassword("correct horse", kFast);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_THAT(*a, StartsWith("pbkdf2-sha256$10000$"));
  EXPECT_NE(*a, *b);  // a fresh salt each time
  EXPECT_TRUE(CheckPasswordHash(*a).ok());
  EXPECT_TRUE(VerifyPassword("correct horse", *a));
  EXPECT_TRUE(VerifyPassword("correct horse", *b));
  EXPECT_FALSE(VerifyPassword("correct horsE", *a));
  EXPECT_FALSE(VerifyPassword("", *a));
}

TEST(PasswordTest, MatchesAnIndependentPbkdf2Implementation) {
  // Computed with Python: base64.urlsafe_b64encode(hashlib.pbkdf2_hmac('sha256', b'password',
  // b'saltsaltsaltsalt', 10000)), padding removed; the salt is b'saltsaltsaltsalt' encoded the same way.
  const std::string encoded = "pbkdf2-sha256$10000$c2FsdHNhbHRzYWx0c2FsdA$_HBtt7Z_7p0CzRvSN1B-KXrKNskvRts1UWw61zKTFUo";
  EXPECT_TRUE(CheckPasswordHash(encoded).ok());
  EXPECT_TRUE(VerifyPassword("password", encoded));
  EXPECT_FALSE(VerifyPassword("passwore", encoded));
}

TEST(PasswordTest, RejectsMalformedHashesAndWeakSettings) {
  for (const char* bad : {"", "plain", "pbkdf2-sha256$10000$c2FsdHNhbHQ", "md5$10000$c2FsdHNhbHQ$AAAA",
                          "pbkdf2-sha256$10$c2FsdHNhbHRzYWx0$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                          "pbkdf2-sha256$10000$!!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                          "pbkdf2-sha256$10000$c2FsdHNhbHRzYWx0$AAAA"}) {
    EXPECT_FALSE(CheckPasswordHash(bad).ok()) << bad;
    EXPECT_FALSE(VerifyPassword("x", bad)) << bad;
  }
  EXPECT_FALSE(HashPassword("pw", 100).ok());
  EXPECT_FALSE(HashPassword("", kFast).ok());
}

TEST(TokenTest, RandomTokensAre256BitsAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    absl::StatusOr<std::string> t = RandomToken();
    ASSERT_TRUE(t.ok());
    EXPECT_EQ(t->size(), 64u);
    EXPECT_TRUE(seen.insert(*t).second);
  }
  EXPECT_TRUE(TokensEqual("abc", "abc"));
  EXPECT_FALSE(TokensEqual("abc", "abd"));
  EXPECT_FALSE(TokensEqual("abc", "abcd"));
}

TEST(SessionTableTest, SessionsExpireAbsolutelyAndWhenIdle) {
  SessionTable table(/*ttl=*/100, /*idle=*/30, /*max=*/10);
  auto [id, s] = *table.Create("alice", ConsoleRole::kApprover, 1000);
  EXPECT_EQ(s.expires_at, 1100);
  EXPECT_EQ(s.csrf_token.size(), 64u);
  ASSERT_TRUE(table.Find(id, 1020).has_value());
  EXPECT_EQ(table.Find(id, 1020)->user, "alice");
  EXPECT_TRUE(table.Find(id, 1049).has_value());   // each use resets the idle clock
  EXPECT_TRUE(table.Find(id, 1078).has_value());
  EXPECT_FALSE(table.Find(id, 1100).has_value());  // absolute end, however active
  EXPECT_EQ(table.size(), 0u);

  auto [idle_id, idle] = *table.Create("bob", ConsoleRole::kRead, 2000);
  EXPECT_FALSE(table.Find(idle_id, 2030).has_value());
  EXPECT_FALSE(table.Find("not-a-session", 2000).has_value());
}

TEST(SessionTableTest, RemoveEndsASessionAndTheTableIsBounded) {
  SessionTable table(1000, 1000, 3);
  std::vector<std::string> ids;
  for (const char* user : {"u0", "u1", "u2", "u3", "u4"}) {
    ids.push_back(table.Create(user, ConsoleRole::kRead, 10 + static_cast<int64_t>(ids.size()))->first);
  }
  EXPECT_EQ(table.size(), 3u);
  EXPECT_FALSE(table.Find(ids[0], 20).has_value());  // the oldest made room
  EXPECT_TRUE(table.Find(ids[4], 20).has_value());
  table.Remove(ids[4]);
  EXPECT_FALSE(table.Find(ids[4], 20).has_value());
}

TEST(LoginLimiterTest, BlocksAfterTooManyFailuresForTheWindow) {
  LoginLimiter limiter(3, 60);
  EXPECT_EQ(limiter.RetryAfter("k", 100), 0);
  limiter.Failed("k", 100);
  limiter.Failed("k", 110);
  EXPECT_EQ(limiter.RetryAfter("k", 111), 0);
  limiter.Failed("k", 120);
  EXPECT_EQ(limiter.RetryAfter("k", 121), 39);  // until the first failure leaves the window
  EXPECT_EQ(limiter.RetryAfter("other", 121), 0);
  EXPECT_EQ(limiter.RetryAfter("k", 160), 0);
  limiter.Succeeded("k");
  EXPECT_EQ(limiter.RetryAfter("k", 161), 0);
}

Request MakeRequest(http::verb method, const std::string& cookie, const std::string& csrf = "") {
  Request r{method, "/v1/approvals/x/approve", 11};
  if (!cookie.empty()) r.set(http::field::cookie, cookie);
  if (!csrf.empty()) r.set(kCsrfHeader, csrf);
  return r;
}

ConsoleConfig TestConfig() {
  ConsoleConfig c;
  c.users.push_back(ConsoleUser{"alice", *HashPassword("s3cret", kFast), ConsoleRole::kApprover});
  c.login_max_failures = 2;
  return c;
}

TEST(ConsoleTest, LoginCreatesASessionThatAuthenticatesWithCsrfOnChanges) {
  Console console(TestConfig());
  int64_t retry = 0;
  auto session = console.Login("alice", "s3cret", "127.0.0.1:5000", 1000, &retry);
  ASSERT_TRUE(session.ok()) << session.status();
  const std::string cookie = std::string(kSessionCookie) + "=" + session->first;

  // Reads need only the cookie.
  absl::StatusOr<SessionUser> user = console.Authenticate(MakeRequest(http::verb::get, "theme=dark; " + cookie), 1001);
  ASSERT_TRUE(user.ok()) << user.status();
  EXPECT_EQ(user->id, "alice");
  EXPECT_EQ(user->type, "User");
  EXPECT_EQ(user->console_role, "approver");

  // Changes need the session's CSRF token.
  EXPECT_EQ(console.Authenticate(MakeRequest(http::verb::post, cookie), 1001).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(console.Authenticate(MakeRequest(http::verb::post, cookie, std::string(64, 'a')), 1001).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(console.Authenticate(MakeRequest(http::verb::post, cookie, session->second.csrf_token), 1001).ok());
  EXPECT_TRUE(console.Authenticate(MakeRequest(http::verb::patch, cookie, session->second.csrf_token), 1001).ok());

  // An unknown cookie, or one after logout, is unauthenticated.
  EXPECT_EQ(console.Authenticate(MakeRequest(http::verb::get, std::string(kSessionCookie) + "=nope"), 1001)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  console.Logout(MakeRequest(http::verb::post, cookie));
  EXPECT_EQ(console.Authenticate(MakeRequest(http::verb::get, cookie), 1002).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(ConsoleTest, WrongPasswordsAndUnknownUsersLookTheSameAndAreRateLimited) {
  Console console(TestConfig());
  int64_t retry = 0;
  auto wrong = console.Login("alice", "guess", "10.0.0.1:1", 1000, &retry);
  auto unknown = console.Login("mallory", "guess", "10.0.0.1:2", 1000, &retry);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.status().message(), unknown.status().message());
  EXPECT_FALSE(console.Login("alice", "guess2", "10.0.0.1:3", 1001, &retry).ok());
  // Two failures for (address, alice): the right password is now refused until the window passes.
  auto limited = console.Login("alice", "s3cret", "10.0.0.1:4", 1002, &retry);
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_GT(retry, 0);
  EXPECT_TRUE(console.Login("alice", "s3cret", "10.0.0.2:4", 1002, &retry).ok());  // another client
  EXPECT_TRUE(console.Login("alice", "s3cret", "10.0.0.1:5", 1000 + 301, &retry).ok());
}

TEST(ConsoleTest, CookieIsHttpOnlyStrictAndSecureWhenConfiguredOrBehindTls) {
  ConsoleConfig config = TestConfig();
  Console plain(config);
  Request r{http::verb::post, "/ui/api/login", 11};
  const std::string c = plain.CookieFor("abc", r);
  EXPECT_THAT(c, StartsWith("mandate_session=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=28800"));
  EXPECT_THAT(c, ::testing::Not(HasSubstr("Secure")));
  EXPECT_THAT(plain.CookieFor("", r), HasSubstr("Max-Age=0"));
  r.set("X-Forwarded-Proto", "https");
  EXPECT_THAT(plain.CookieFor("abc", r), HasSubstr("; Secure"));
  config.secure_cookie = true;
  EXPECT_THAT(Console(config).CookieFor("abc", Request{}), HasSubstr("; Secure"));
}

TEST(ConsoleTest, AssetsAreEmbeddedWithTypesAndStrongEtags) {
  const EmbeddedAsset* index = Console::FindAsset("");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->name, "index.html");
  EXPECT_EQ(index->content_type, "text/html; charset=utf-8");
  EXPECT_THAT(std::string(index->data), HasSubstr("<script type=\"module\" src=\"app.js\"></script>"));
  // No inline script anywhere (the CSP forbids it).
  EXPECT_THAT(std::string(index->data), ::testing::Not(HasSubstr("<script>")));
  const EmbeddedAsset* app = Console::FindAsset("app.js");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(app->etag.size(), 34u);
  EXPECT_EQ(app->etag.front(), '"');
  EXPECT_NE(app->etag, index->etag);
  EXPECT_EQ(Console::FindAsset("nope.js"), nullptr);
  bool csp = false;
  for (const auto& [name, value] : Console::SecurityHeaders()) {
    if (name == "Content-Security-Policy") {
      csp = true;
      EXPECT_THAT(value, HasSubstr("default-src 'self'"));
      EXPECT_THAT(value, ::testing::Not(HasSubstr("unsafe-inline")));
    }
  }
  EXPECT_TRUE(csp);
}

TEST(ConsoleConfigTest, ReadsUsersAndSettings) {
  const std::string path = (std::filesystem::path(::testing::TempDir()) /
                            ("mandate-console-test-" + std::to_string(getpid()) + ".toml"))
                               .string();
  const std::string hash = *HashPassword("pw", kFast);
  std::ofstream(path) << "[console]\nsession_ttl_seconds = 600\nsecure_cookie = true\n"
                      << "[[console.users]]\nid = \"alice\"\npassword_hash = \"" << hash << "\"\nrole = \"admin\"\n"
                      << "[[console.users]]\nid = \"bob\"\npassword_hash = \"" << hash << "\"\n";
  ServerConfig c;
  ASSERT_TRUE(LoadConfigFile(path, &c).ok());
  ASSERT_EQ(c.console.users.size(), 2u);
  EXPECT_EQ(c.console.users[0].role, ConsoleRole::kAdmin);
  EXPECT_EQ(c.console.users[1].role, ConsoleRole::kRead);
  EXPECT_EQ(c.console.session_ttl_seconds, 600);
  EXPECT_TRUE(c.console.secure_cookie);

  auto error = [&](const std::string& text) {
    std::ofstream(path) << text;
    ServerConfig fresh;
    return std::string(LoadConfigFile(path, &fresh).message());
  };
  EXPECT_THAT(error("[[console.users]]\nid = \"a\"\npassword_hash = \"plain\"\n"),
              HasSubstr(":3:17: not a password hash"));
  EXPECT_THAT(error("[[console.users]]\nid = \"a\"\npassword_hash = \"" + hash + "\"\nrole = \"root\"\n"),
              HasSubstr("unknown console role \"root\""));
  EXPECT_THAT(error("[[console.users]]\nid = \"a\"\n"), HasSubstr("needs `id` and `password_hash`"));
  EXPECT_THAT(error("[console]\nsession_ttl_seconds = 0\n"), HasSubstr("console.session_ttl_seconds must be"));
  EXPECT_THAT(error("[console]\ncolour = \"blue\"\n"), HasSubstr("unknown setting console.colour"));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace mandate::server
