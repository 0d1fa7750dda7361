#include "server/console.h"

#include <algorithm>
#include <array>

#include <boost/beast/http.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace mandate::server {

namespace http = boost::beast::http;

namespace {

constexpr char kHashScheme[] = "pbkdf2-sha256";
constexpr int kMaxPasswordIterations = 100'000'000;
constexpr size_t kSaltBytes = 16;
constexpr size_t kKeyBytes = 32;

std::string Sha256(std::string_view s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return std::string(reinterpret_cast<const char*>(d), sizeof d);
}

absl::StatusOr<std::string> Pbkdf2(std::string_view password, std::string_view salt, int iterations) {
  std::string key(kKeyBytes, '\0');
  if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                        reinterpret_cast<const unsigned char*>(salt.data()), static_cast<int>(salt.size()), iterations,
                        EVP_sha256(), static_cast<int>(key.size()), reinterpret_cast<unsigned char*>(key.data())) != 1) {
    return absl::InternalError("PBKDF2 failed");
  }
  return key;
}

struct ParsedHash {
  int iterations = 0;
  std::string salt;
  std::string key;
};

absl::StatusOr<ParsedHash> ParseHash(std::string_view encoded) {
  const std::vector<absl::string_view> parts = absl::StrSplit(absl::string_view(encoded.data(), encoded.size()), '$');
  auto bad = [](const std::string& why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "not a password hash of `mandate console hash-password` (pbkdf2-sha256$ITERATIONS$SALT$HASH): ", why));
  };
  if (parts.size() != 4 || std::string_view(parts[0].data(), parts[0].size()) != kHashScheme) return bad("wrong scheme or number of fields");
  ParsedHash h;
  if (!absl::SimpleAtoi(parts[1], &h.iterations) || h.iterations < kMinPasswordIterations ||
      h.iterations > kMaxPasswordIterations) {
    return bad(absl::StrCat("iterations must be a number from ", kMinPasswordIterations, " to ",
                            kMaxPasswordIterations));
  }
  if (!absl::WebSafeBase64Unescape(parts[2], &h.salt) || h.salt.size() < 8) return bad("bad salt");
  if (!absl::WebSafeBase64Unescape(parts[3], &h.key) || h.key.size() != kKeyBytes) return bad("bad hash");
  return h;
}

}  // namespace

absl::StatusOr<ConsoleRole> ParseConsoleRole(std::string_view text) {
  if (text == "read") return ConsoleRole::kRead;
  if (text == "approver") return ConsoleRole::kApprover;
  if (text == "admin") return ConsoleRole::kAdmin;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown console role \"", std::string(text), "\"; use \"read\", \"approver\" or \"admin\""));
}

const char* ConsoleRoleName(ConsoleRole role) {
  switch (role) {
    case ConsoleRole::kAdmin:
      return "admin";
    case ConsoleRole::kApprover:
      return "approver";
    case ConsoleRole::kRead:
      break;
  }
  return "read";
}

absl::StatusOr<std::string> HashPassword(std::string_view password, int iterations) {
  if (iterations < kMinPasswordIterations || iterations > kMaxPasswordIterations) {
    return absl::InvalidArgumentError(
        absl::StrCat("iterations must be from ", kMinPasswordIterations, " to ", kMaxPasswordIterations));
  }
  if (password.empty()) return absl::InvalidArgumentError("the password is empty");
  std::string salt(kSaltBytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(salt.data()), static_cast<int>(salt.size())) != 1) {
    return absl::InternalError("the random number generator failed");
  }
  absl::StatusOr<std::string> key = Pbkdf2(password, salt, iterations);
  if (!key.ok()) return key.status();
  return absl::StrCat(kHashScheme, "$", iterations, "$", absl::WebSafeBase64Escape(salt), "$",
                      absl::WebSafeBase64Escape(*key));
}

absl::Status CheckPasswordHash(std::string_view encoded) { return ParseHash(encoded).status(); }

bool VerifyPassword(std::string_view password, std::string_view encoded) {
  absl::StatusOr<ParsedHash> h = ParseHash(encoded);
  if (!h.ok()) return false;
  absl::StatusOr<std::string> key = Pbkdf2(password, h->salt, h->iterations);
  return key.ok() && CRYPTO_memcmp(key->data(), h->key.data(), kKeyBytes) == 0;
}

absl::StatusOr<std::string> RandomToken() {
  unsigned char b[32];
  if (RAND_bytes(b, sizeof b) != 1) return absl::InternalError("the random number generator failed");
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(b), sizeof b));
}

bool TokensEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// --- Sessions.

absl::StatusOr<std::pair<std::string, SessionTable::Session>> SessionTable::Create(const std::string& user,
                                                                                   ConsoleRole role, int64_t now) {
  absl::StatusOr<std::string> id = RandomToken();
  if (!id.ok()) return id.status();
  absl::StatusOr<std::string> csrf = RandomToken();
  if (!csrf.ok()) return csrf.status();
  Session s{user, role, *csrf, now, now + ttl_, now};
  std::lock_guard<std::mutex> l(mu_);
  if (sessions_.size() >= max_) {
    // Drop what is over first; if the table is still full, the session that started first.
    absl::erase_if(sessions_, [&](const auto& kv) {
      return kv.second.expires_at <= now || kv.second.last_seen + idle_ <= now;
    });
    if (sessions_.size() >= max_) {
      auto oldest = std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
        return a.second.created_at < b.second.created_at;
      });
      sessions_.erase(oldest);
    }
  }
  sessions_[Sha256(*id)] = s;
  return std::make_pair(*id, s);
}

std::optional<SessionTable::Session> SessionTable::Find(std::string_view id, int64_t now) {
  const std::string key = Sha256(id);
  std::lock_guard<std::mutex> l(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return std::nullopt;
  if (it->second.expires_at <= now || it->second.last_seen + idle_ <= now) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_seen = now;
  return it->second;
}

void SessionTable::Remove(std::string_view id) {
  const std::string key = Sha256(id);
  std::lock_guard<std::mutex> l(mu_);
  sessions_.erase(key);
}

size_t SessionTable::size() const {
  std::lock_guard<std::mutex> l(mu_);
  return sessions_.size();
}

// --- Sign-in rate limit.

int64_t LoginLimiter::RetryAfter(const std::string& key, int64_t now) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = failures_.find(key);
  if (it == failures_.end()) return 0;
  std::deque<int64_t>& times = it->second;
  while (!times.empty() && times.front() + window_ <= now) times.pop_front();
  if (times.empty()) {
    failures_.erase(it);
    return 0;
  }
  if (static_cast<int>(times.size()) < max_) return 0;
  return std::max<int64_t>(1, times.front() + window_ - now);
}

void LoginLimiter::Failed(const std::string& key, int64_t now) {
  std::lock_guard<std::mutex> l(mu_);
  // Bounded memory: a flood of distinct keys cannot grow the table without limit.
  if (failures_.size() > 100'000) {
    absl::erase_if(failures_, [&](const auto& kv) { return kv.second.empty() || kv.second.back() + window_ <= now; });
  }
  std::deque<int64_t>& times = failures_[key];
  times.push_back(now);
  while (static_cast<int>(times.size()) > max_) times.pop_front();
}

void LoginLimiter::Succeeded(const std::string& key) {
  std::lock_guard<std::mutex> l(mu_);
  failures_.erase(key);
}

// --- Console.

Console::Console(ConsoleConfig config)
    : config_(std::move(config)),
      sessions_(config_.session_ttl_seconds, config_.idle_timeout_seconds, config_.max_sessions),
      limiter_(config_.login_max_failures, config_.login_window_seconds),
      address_limiter_(4 * config_.login_max_failures, config_.login_window_seconds) {
  // The hash an unknown user name is checked against: as costly as the first user's.
  if (!config_.users.empty()) {
    absl::StatusOr<ParsedHash> first = ParseHash(config_.users.front().password_hash);
    dummy_hash_ = HashPassword("unknown user", first.ok() ? first->iterations : kDefaultPasswordIterations).value_or("");
  }
}

const EmbeddedAsset* Console::FindAsset(std::string_view name) {
  if (name.empty()) name = "index.html";
  for (const EmbeddedAsset& a : EmbeddedAssets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

const std::vector<std::pair<std::string, std::string>>& Console::SecurityHeaders() {
  static const auto* headers = new std::vector<std::pair<std::string, std::string>>{
      {"Content-Security-Policy",
       "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"},
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Cross-Origin-Opener-Policy", "same-origin"},
      {"Cross-Origin-Resource-Policy", "same-origin"},
  };
  return *headers;
}

std::optional<std::string> Console::SessionCookie(const Request& request) {
  for (auto it = request.find(http::field::cookie); it != request.end() && it->name() == http::field::cookie; ++it) {
    for (absl::string_view part : absl::StrSplit(absl::string_view(it->value().data(), it->value().size()), ';')) {
      part = absl::StripAsciiWhitespace(part);
      if (absl::ConsumePrefix(&part, kSessionCookie) && absl::ConsumePrefix(&part, "=") && !part.empty()) {
        return std::string(part);
      }
    }
  }
  return std::nullopt;
}

std::optional<SessionTable::Session> Console::Find(const Request& request, int64_t now) {
  std::optional<std::string> id = SessionCookie(request);
  if (!id) return std::nullopt;
  return sessions_.Find(*id, now);
}

absl::StatusOr<SessionUser> Console::Authenticate(const Request& request, int64_t now) {
  std::optional<SessionTable::Session> s = Find(request, now);
  if (!s) return absl::UnauthenticatedError("the console session is over or unknown; sign in again");
  const bool safe = request.method() == http::verb::get || request.method() == http::verb::head;
  if (!safe) {
    const auto token = request.find(kCsrfHeader);
    if (token == request.end() || !TokensEqual(std::string_view(token->value().data(), token->value().size()),
                                               s->csrf_token)) {
      return absl::PermissionDeniedError(
          "missing or wrong X-CSRF-Token header: a request with the console session cookie that changes state "
          "must carry the session's CSRF token (GET /ui/api/session)");
    }
  }
  return SessionUser{config_.user_type, s->user, ConsoleRoleName(s->role)};
}

absl::StatusOr<std::pair<std::string, SessionTable::Session>> Console::Login(const std::string& user,
                                                                             const std::string& password,
                                                                             const std::string& client, int64_t now,
                                                                             int64_t* retry_after) {
  // The port changes with every connection; the limit is per client address.
  const std::string address = client.substr(0, client.rfind(':'));
  const std::string key = absl::StrCat(address, "\n", user);
  *retry_after = std::max(limiter_.RetryAfter(key, now), address_limiter_.RetryAfter(address, now));
  if (*retry_after > 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many failed sign-ins; try again in ", *retry_after, " second(s)"));
  }
  const ConsoleUser* found = nullptr;
  for (const ConsoleUser& u : config_.users) {
    if (TokensEqual(u.id, user)) found = &u;
  }
  // An unknown user costs the same PBKDF2 work as a known one, so timing does not reveal user names.
  const bool ok = VerifyPassword(password, found != nullptr ? found->password_hash : dummy_hash_) && found != nullptr;
  if (!ok) {
    limiter_.Failed(key, now);
    address_limiter_.Failed(address, now);
    return absl::UnauthenticatedError("unknown user or wrong password");
  }
  limiter_.Succeeded(key);
  return sessions_.Create(found->id, found->role, now);
}

void Console::Logout(const Request& request) {
  if (std::optional<std::string> id = SessionCookie(request)) sessions_.Remove(*id);
}

std::string Console::CookieFor(const std::string& id, const Request& request) const {
  const bool secure = config_.secure_cookie || request["X-Forwarded-Proto"] == "https";
  return absl::StrCat(kSessionCookie, "=", id, "; Path=/; HttpOnly; SameSite=Strict",
                      id.empty() ? "; Max-Age=0" : absl::StrCat("; Max-Age=", config_.session_ttl_seconds),
                      secure ? "; Secure" : "");
}

// --- Configuration.

namespace {

absl::Status Bad(const std::string& path, const toml::node& node, const std::string& problem) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ":", node.source().begin.line, ":", node.source().begin.column, ": ", problem));
}

absl::Status ReadUser(const std::string& path, const toml::table& t, ConsoleConfig* c) {
  ConsoleUser user;
  bool have_hash = false;
  for (const auto& [name, node] : t) {
    const std::string k(name.str());
    if (!node.is_string()) return Bad(path, node, absl::StrCat("console.users.", k, " must be a string"));
    const std::string v = node.as_string()->get();
    if (k == "id") {
      if (v.empty() || v.size() > 256) return Bad(path, node, "console.users.id must be 1 to 256 bytes");
      user.id = v;
    } else if (k == "password_hash") {
      if (absl::Status s = CheckPasswordHash(v); !s.ok()) return Bad(path, node, std::string(s.message()));
      user.password_hash = v;
      have_hash = true;
    } else if (k == "role") {
      absl::StatusOr<ConsoleRole> role = ParseConsoleRole(v);
      if (!role.ok()) return Bad(path, node, std::string(role.status().message()));
      user.role = *role;
    } else {
      return Bad(path, node, absl::StrCat("unknown setting console.users.", k));
    }
  }
  if (user.id.empty() || !have_hash) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", t.source().begin.line, ":", t.source().begin.column,
                                                   ": a [[console.users]] entry needs `id` and `password_hash`"));
  }
  for (const ConsoleUser& u : c->users) {
    if (u.id == user.id) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", t.source().begin.line, ": console user \"", user.id,
                                                     "\" is listed twice"));
    }
  }
  c->users.push_back(std::move(user));
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadConsoleTable(const std::string& path, const toml::table& table, ConsoleConfig* c) {
  for (const auto& [key, value] : table) {
    const toml::node& node = value;
    const std::string k(key.str());
    auto positive = [&](int64_t* out, int64_t max) -> absl::Status {
      std::optional<int64_t> v = node.value<int64_t>();
      if (!node.is_integer() || !v || *v < 1 || *v > max) {
        return Bad(path, node, absl::StrCat("console.", k, " must be an integer from 1 to ", max));
      }
      *out = *v;
      return absl::OkStatus();
    };
    absl::Status s;
    if (k == "enabled" || k == "secure_cookie") {
      if (!node.is_boolean()) return Bad(path, node, absl::StrCat("console.", k, " must be true or false"));
      (k == "enabled" ? c->enabled : c->secure_cookie) = node.as_boolean()->get();
    } else if (k == "user_type") {
      if (!node.is_string() || node.as_string()->get().empty()) {
        return Bad(path, node, "console.user_type must be a non-empty string");
      }
      c->user_type = node.as_string()->get();
    } else if (k == "session_ttl_seconds") {
      s = positive(&c->session_ttl_seconds, 30LL * 86400);
    } else if (k == "idle_timeout_seconds") {
      s = positive(&c->idle_timeout_seconds, 30LL * 86400);
    } else if (k == "login_window_seconds") {
      s = positive(&c->login_window_seconds, 86400);
    } else if (k == "login_max_failures") {
      int64_t v = 0;
      s = positive(&v, 1000);
      c->login_max_failures = static_cast<int>(v);
    } else if (k == "max_sessions") {
      int64_t v = 0;
      s = positive(&v, 10'000'000);
      c->max_sessions = static_cast<size_t>(v);
    } else if (k == "users") {
      if (!node.is_array_of_tables()) return Bad(path, node, "console users must be written as [[console.users]]");
      for (const toml::node& entry : *node.as_array()) {
        if (absl::Status u = ReadUser(path, *entry.as_table(), c); !u.ok()) return u;
      }
    } else {
      return Bad(path, node, absl::StrCat("unknown setting console.", k));
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace mandate::server
