// The web console's routes (docs/console.md): /ui/ and its assets, sign-in with a session cookie
// (/ui/api/login, /logout, /session), the authentication of every non-public route by API key or
// session, and the two endpoints the console's pages need beyond the rest of the API:
// GET /v1/audit/verify and POST /v1/policy/validate.
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

#include "audit/log.h"
#include "audit/reader.h"
#include "server/api.h"
#include "server/status_macros.h"

namespace mandate::server {

namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

const JsonPointer kRoot;

int64_t Now() { return absl::ToUnixSeconds(absl::Now()); }

std::string Rfc3339(int64_t unix_seconds) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", absl::FromUnixSeconds(unix_seconds), absl::UTCTimeZone());
}

// Console answers are never cached and carry the console's security headers.
Reply ConsoleReply(int status, json::value body) {
  Reply r{status, std::move(body)};
  r.headers = Console::SecurityHeaders();
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

json::object SessionJson(const std::string& user_type, const SessionTable::Session& s) {
  return json::object{{"user", json::object{{"type", user_type}, {"id", s.user}}},
                      {"role", ConsoleRoleName(s.role)},
                      {"csrf_token", s.csrf_token},
                      {"expires_at", Rfc3339(s.expires_at)}};
}

// A state-changing console request from another site's page is refused even before its cookie is
// looked at: browsers send Origin on such requests, and it must name this server.
absl::Status CheckOrigin(const Request& request) {
  const auto origin = request.find(http::field::origin);
  if (origin == request.end()) return absl::OkStatus();
  std::string_view o(origin->value().data(), origin->value().size());
  const std::string_view host(request[http::field::host].data(), request[http::field::host].size());
  for (std::string_view scheme : {"http://", "https://"}) {
    if (o.substr(0, scheme.size()) == scheme && o.substr(scheme.size()) == host && !host.empty()) {
      return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError("cross-origin console request refused (Origin does not match Host)");
}

}  // namespace

absl::Status Api::Authenticate(Call& call, const Route& route) {
  const auto header = call.request.find(http::field::authorization);
  if (header == call.request.end() && options_.console != nullptr && Console::SessionCookie(call.request)) {
    const bool safe = call.request.method() == http::verb::get || call.request.method() == http::verb::head;
    if (!safe) MANDATE_RETURN_IF_ERROR(CheckOrigin(call.request));
    MANDATE_ASSIGN_OR_RETURN(SessionUser user, options_.console->Authenticate(call.request, Now()));
    const ConsoleRole role = ParseConsoleRole(user.console_role).value_or(ConsoleRole::kRead);
    call.role = role == ConsoleRole::kAdmin ? Role::kAdmin : Role::kRead;
    // Console users are people of the security team: every role may read everything, the audit
    // log included (admin-only for API keys, which applications hold). Changes need the admin role.
    call.user = std::move(user);  // before the access check, so that a refusal is audited as this user's
    if (route.access == Access::kAdmin && call.role != Role::kAdmin && !safe) {
      return absl::PermissionDeniedError(absl::StrCat("console user \"", call.user->id, "\" has the role ",
                                                      call.user->console_role, "; ", call.route_label,
                                                      " needs the admin role"));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<Role> role = keys_.Authenticate(
      header == call.request.end() ? std::nullopt : std::optional<std::string_view>(header->value()));
  if (!role.ok()) return role.status();
  call.role = *role;
  if (route.access == Access::kAdmin && *role != Role::kAdmin) {
    return absl::PermissionDeniedError(
        absl::StrCat("this API key is read-only; ", call.route_label, " needs an admin key"));
  }
  return absl::OkStatus();
}

absl::StatusOr<Reply> Api::ConsoleRedirect(Call& c) {
  if (options_.console == nullptr) return absl::NotFoundError("the console is disabled ([console] enabled = false)");
  Reply r{308, json::object{{"message", "the console is at /ui/"}}};
  r.headers.emplace_back("Location", "/ui/");
  return r;
}

absl::StatusOr<Reply> Api::ConsoleAsset(Call& c) {
  if (options_.console == nullptr) return absl::NotFoundError("the console is disabled ([console] enabled = false)");
  const std::string name = c.PathParam("asset").value_or("");
  const EmbeddedAsset* asset = Console::FindAsset(name);
  if (asset == nullptr) return absl::NotFoundError(absl::StrCat("no such console file: ", name));
  Reply r;
  r.headers = Console::SecurityHeaders();
  r.headers.emplace_back("ETag", std::string(asset->etag));
  // Asset names carry no version, so browsers revalidate each time; an unchanged file costs a 304.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.content_type = std::string(asset->content_type);
  if (c.request[http::field::if_none_match] == asset->etag) {
    r.status = 304;
    return r;
  }
  r.text = std::string(asset->data);
  return r;
}

absl::StatusOr<Reply> Api::ConsoleLogin(Call& c) {
  Console* console = options_.console;
  if (console == nullptr) return absl::NotFoundError("the console is disabled ([console] enabled = false)");
  MANDATE_RETURN_IF_ERROR(CheckOrigin(c.request));
  // A cross-site form cannot send JSON without a CORS preflight, which this server never grants.
  const auto content_type = c.request[http::field::content_type];
  if (content_type.substr(0, 16) != "application/json") {
    return absl::InvalidArgumentError("sign in with a JSON body and Content-Type: application/json");
  }
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::string user, RequiredString(*o, "user", kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::string password, RequiredString(*o, "password", kRoot));
  if (user.size() > 256) return absl::InvalidArgumentError("invalid request body at /user: longer than 256 bytes");

  audit::Entry& record = c.Audit(audit::Entry{});
  record.kind = "admin";
  record.action = "console.login";
  record.actor = absl::StrCat(console->config().user_type, ":", user);
  int64_t retry_after = 0;
  auto session = console->Login(user, password, std::string(PeerAddress(c.request)), Now(), &retry_after);
  if (!session.ok()) {
    Reply r = ConsoleReply(HttpStatusFor(session.status().code()),
                           json::object{{"message", std::string(session.status().message())}});
    if (retry_after > 0) r.headers.emplace_back("Retry-After", std::to_string(retry_after));
    return r;
  }
  Reply r = ConsoleReply(200, SessionJson(console->config().user_type, session->second));
  r.headers.emplace_back("Set-Cookie", console->CookieFor(session->first, c.request));
  return r;
}

absl::StatusOr<Reply> Api::ConsoleLogout(Call& c) {
  Console* console = options_.console;
  if (console == nullptr) return absl::NotFoundError("the console is disabled ([console] enabled = false)");
  MANDATE_RETURN_IF_ERROR(CheckOrigin(c.request));
  if (Console::SessionCookie(c.request)) {
    absl::StatusOr<SessionUser> user = console->Authenticate(c.request, Now());
    // A session that is already over needs no token; a live one does, or any page could sign a user out.
    if (!user.ok() && user.status().code() == absl::StatusCode::kPermissionDenied) return user.status();
    console->Logout(c.request);
  }
  Reply r = ConsoleReply(200, json::object{{"message", "signed out"}});
  r.headers.emplace_back("Set-Cookie", console->CookieFor("", c.request));
  return r;
}

absl::StatusOr<Reply> Api::ConsoleSession(Call& c) {
  Console* console = options_.console;
  if (console == nullptr) return absl::NotFoundError("the console is disabled ([console] enabled = false)");
  std::optional<SessionTable::Session> s = console->Find(c.request, Now());
  if (!s) return ConsoleReply(401, json::object{{"message", "not signed in"}});
  return ConsoleReply(200, SessionJson(console->config().user_type, *s));
}

absl::StatusOr<Reply> Api::AuditVerify(Call& c) {
  if (options_.audit_log == nullptr) return absl::NotFoundError("the audit log is off ([audit] enabled = false)");
  // Checked with the key the running server signs with, not the copy in the directory.
  MANDATE_ASSIGN_OR_RETURN(audit::VerifyReport report,
                           audit::Verify(options_.audit_log->dir(), &options_.audit_log->public_key()));
  json::value problem = nullptr;
  if (report.problem) {
    problem = json::object{{"segment", report.problem->segment},
                           {"offset", report.problem->offset},
                           {"seq", report.problem->seq},
                           {"what", report.problem->what},
                           {"message", report.problem->ToString()}};
  }
  return Reply{200, json::object{{"intact", !report.problem.has_value()},
                                 {"problem", std::move(problem)},
                                 {"records", report.records},
                                 {"checkpoints", report.checkpoints},
                                 {"last_seq", report.last_seq},
                                 {"sealed_seq", report.sealed_seq},
                                 {"segments", report.segments},
                                 {"key_id", report.key_id}}};
}

absl::StatusOr<Reply> Api::PolicyValidate(Call& c) {
  MANDATE_ASSIGN_OR_RETURN(json::value body, ParseJsonBody(c.request.body()));
  MANDATE_ASSIGN_OR_RETURN(const json::object* o, AsObject(body, kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::string src, RequiredString(*o, "src", kRoot));
  MANDATE_ASSIGN_OR_RETURN(std::optional<std::string> filename, OptionalString(*o, "filename", kRoot));
  PolicyRejection rejection;
  TestReport report;
  absl::StatusOr<std::shared_ptr<const Policy>> policy =
      service_.CheckPolicy(filename.value_or(""), src, &rejection, &report);
  if (!policy.ok()) {
    if (policy.status().code() != absl::StatusCode::kInvalidArgument) return policy.status();
    json::object error = SavePolicyError(rejection);
    error["valid"] = false;
    return Reply{400, std::move(error)};
  }
  json::array tests;
  for (const TestResult& t : report.tests) {
    tests.emplace_back(json::object{{"name", t.name}, {"passed", t.passed}, {"total", t.total}});
  }
  return Reply{200, json::object{{"valid", true},
                                 {"message", absl::StrCat("the policy compiles, its ", report.tests.size(),
                                                          " test(s) pass and the stored facts fit it")},
                                 {"tests", std::move(tests)}}};
}

}  // namespace mandate::server
