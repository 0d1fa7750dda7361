// The web console at /ui/ (docs/console.md): the static assets embedded into the binary at build
// time (ui/*, turned into a generated .cc by embed_assets.cmake), console users with salted
// PBKDF2-SHA256 password hashes, the server-side session table behind the HttpOnly session cookie,
// the CSRF tokens every state-changing cookie request must carry, and the rate limit on sign-ins.
//
// Threading: Console and its parts are safe to call from any thread.
#ifndef MANDATE_SERVER_CONSOLE_H_
#define MANDATE_SERVER_CONSOLE_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

#include "server/auth.h"
#include "server/http_server.h"

namespace mandate::server {

// One file of ui/, as embedded by the build (ui_assets.cc, generated).
struct EmbeddedAsset {
  std::string_view name;          // "index.html", "app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view etag;          // strong ETag, quoted: "\"<sha256 prefix>\""
  std::string_view data;
};
// Every embedded asset, by name. Defined in the generated ui_assets.cc.
const std::vector<EmbeddedAsset>& EmbeddedAssets();

// What a console user may do. kRead: every GET endpoint (the audit log included) and the read-only
// checks; kApprover: that, and deciding approvals; kAdmin: everything an admin API key may do.
enum class ConsoleRole { kRead, kApprover, kAdmin };
absl::StatusOr<ConsoleRole> ParseConsoleRole(std::string_view text);  // "read" | "approver" | "admin"
const char* ConsoleRoleName(ConsoleRole role);

struct ConsoleUser {
  std::string id;
  std::string password_hash;  // pbkdf2-sha256$<iterations>$<salt>$<hash> (HashPassword)
  ConsoleRole role = ConsoleRole::kRead;
};

// [console] and [[console.users]] in mandate.toml.
struct ConsoleConfig {
  bool enabled = true;              // serve /ui/ at all
  std::string user_type = "User";   // the policy type of console users (approvers)
  std::vector<ConsoleUser> users;
  int64_t session_ttl_seconds = 8 * 3600;   // a session ends this long after sign-in
  int64_t idle_timeout_seconds = 30 * 60;   // ... or after this long without a request
  bool secure_cookie = false;               // mark the cookie Secure (set it behind a TLS proxy)
  int login_max_failures = 5;  // failed sign-ins per (client address, user) per window; 4x per address
  int64_t login_window_seconds = 300;
  size_t max_sessions = 10000;              // beyond this the oldest session is ended
};
// Reads the [console] table (with its [[console.users]] array) over `config`; errors name file:line:col.
absl::Status ReadConsoleTable(const std::string& path, const toml::table& table, ConsoleConfig* config);

// --- Passwords: PBKDF2-HMAC-SHA256 (OpenSSL), a random 16-byte salt, a 32-byte key, encoded as
// pbkdf2-sha256$<iterations>$<salt, base64url>$<key, base64url>.
inline constexpr int kDefaultPasswordIterations = 600'000;  // OWASP's 2023 figure for PBKDF2-SHA256
inline constexpr int kMinPasswordIterations = 10'000;
absl::StatusOr<std::string> HashPassword(std::string_view password, int iterations = kDefaultPasswordIterations);
// InvalidArgument when `encoded` is not a hash HashPassword could have made.
absl::Status CheckPasswordHash(std::string_view encoded);
// True when `password` matches; the comparison is constant-time. A malformed hash never matches.
bool VerifyPassword(std::string_view password, std::string_view encoded);

// 256 random bits as 64 hex digits (session ids, CSRF tokens). Internal on RNG failure.
absl::StatusOr<std::string> RandomToken();
// Constant-time equality (the length is not secret).
bool TokensEqual(std::string_view a, std::string_view b);

// The server-side session table. Ids are kept only as their SHA-256, so that the table's hash
// lookups reveal nothing about a valid id through timing, and a memory dump holds no usable cookie.
class SessionTable {
 public:
  struct Session {
    std::string user;
    ConsoleRole role = ConsoleRole::kRead;
    std::string csrf_token;
    int64_t created_at = 0;  // unix seconds
    int64_t expires_at = 0;  // absolute end (created_at + ttl)
    int64_t last_seen = 0;
  };
  SessionTable(int64_t ttl_seconds, int64_t idle_seconds, size_t max_sessions)
      : ttl_(ttl_seconds), idle_(idle_seconds), max_(max_sessions) {}

  // Starts a session; returns its id (the cookie value) and the session.
  absl::StatusOr<std::pair<std::string, Session>> Create(const std::string& user, ConsoleRole role, int64_t now);
  // The live session with this id, its idle clock reset; nullopt when unknown, expired or idle too long.
  std::optional<Session> Find(std::string_view id, int64_t now);
  void Remove(std::string_view id);
  size_t size() const;

 private:
  const int64_t ttl_;
  const int64_t idle_;
  const size_t max_;
  mutable std::mutex mu_;
  absl::flat_hash_map<std::string, Session> sessions_;  // by SHA-256 of the id
};

// Failed sign-ins per key over a sliding window.
class LoginLimiter {
 public:
  LoginLimiter(int max_failures, int64_t window_seconds) : max_(max_failures), window_(window_seconds) {}
  // 0 when another attempt is allowed, else the seconds until one is.
  int64_t RetryAfter(const std::string& key, int64_t now);
  void Failed(const std::string& key, int64_t now);
  void Succeeded(const std::string& key);

 private:
  const int max_;
  const int64_t window_;
  std::mutex mu_;
  absl::flat_hash_map<std::string, std::deque<int64_t>> failures_;
};

inline constexpr char kSessionCookie[] = "mandate_session";
inline constexpr char kCsrfHeader[] = "X-CSRF-Token";

class Console {
 public:
  explicit Console(ConsoleConfig config);

  const ConsoleConfig& config() const { return config_; }
  // The asset named `name` ("" is index.html); null when there is none.
  static const EmbeddedAsset* FindAsset(std::string_view name);
  // The headers every /ui/ response carries (CSP and friends).
  static const std::vector<std::pair<std::string, std::string>>& SecurityHeaders();

  // The session id of the request's cookie, if it sends one.
  static std::optional<std::string> SessionCookie(const Request& request);
  // Authenticates a request that sends the session cookie: Unauthenticated when the session is
  // unknown or over; PermissionDenied when the method changes state (not GET/HEAD) and the
  // X-CSRF-Token header does not match the session's token.
  absl::StatusOr<SessionUser> Authenticate(const Request& request, int64_t now);
  // The session behind the cookie, for GET /ui/api/session and logout.
  std::optional<SessionTable::Session> Find(const Request& request, int64_t now);

  // Checks a sign-in. ResourceExhausted (with the seconds to wait in *retry_after) when the client
  // failed too often; Unauthenticated for an unknown user or a wrong password (the same message and
  // the same work either way).
  absl::StatusOr<std::pair<std::string, SessionTable::Session>> Login(const std::string& user,
                                                                      const std::string& password,
                                                                      const std::string& client, int64_t now,
                                                                      int64_t* retry_after);
  void Logout(const Request& request);
  // The Set-Cookie value for a new session (`id`), or, with an empty id, one that clears it.
  std::string CookieFor(const std::string& id, const Request& request) const;

 private:
  const ConsoleConfig config_;
  SessionTable sessions_;
  LoginLimiter limiter_;          // per (client address, user)
  LoginLimiter address_limiter_;  // per client address, across user names: 4x the limit
  std::string dummy_hash_;        // checked for unknown user names (Login)
};

}  // namespace mandate::server

#endif  // MANDATE_SERVER_CONSOLE_H_
