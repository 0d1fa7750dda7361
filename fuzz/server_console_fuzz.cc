// Fuzzes what the console reads from untrusted requests (src/server/console.h): the Cookie header
// (session ids), the X-CSRF-Token header against a live session, and password hashes (from the
// config file, checked at start). The input is split at the first two newlines into a Cookie value,
// a CSRF token and a hash. Nothing may crash, and nothing but the real session and token may
// authenticate.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <boost/beast/http.hpp>

#include "server/console.h"

namespace {

namespace http = boost::beast::http;
using namespace mandate::server;

struct Fixture {
  Fixture() : console(Config()) {
    int64_t retry = 0;
    auto s = console.Login("alice", "pw", "127.0.0.1:1", 1000, &retry);
    if (!s.ok()) std::abort();
    id = s->first;
    csrf = s->second.csrf_token;
  }
  static ConsoleConfig Config() {
    ConsoleConfig c;
    c.users.push_back(ConsoleUser{"alice", HashPassword("pw", kMinPasswordIterations).value(), ConsoleRole::kAdmin});
    return c;
  }
  Console console;
  std::string id;
  std::string csrf;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* f = new Fixture();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t a = in.find('\n');
  const std::string_view cookie = in.substr(0, a);
  const std::string_view rest = a == std::string_view::npos ? std::string_view() : in.substr(a + 1);
  const size_t b = rest.find('\n');
  const std::string_view csrf = rest.substr(0, b);
  const std::string_view hash = b == std::string_view::npos ? std::string_view() : rest.substr(b + 1);

  (void)CheckPasswordHash(hash);
  (void)VerifyPassword("pw", hash);

  Request r{http::verb::post, "/v1/agents/x", 11};
  r.set(http::field::cookie, std::string(cookie));
  r.set(kCsrfHeader, std::string(csrf));
  absl::StatusOr<SessionUser> user = f->console.Authenticate(r, 1001);
  if (user.ok()) {
    // Only the real session with its real token gets in.
    if (Console::SessionCookie(r) != f->id || csrf != f->csrf) std::abort();
  }
  return 0;
}
