#include "server/api.h"

#include <charconv>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace mandate::server {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace net = boost::asio;
using http::verb;

namespace {

// A UUID v4, for requests that do not bring an X-Request-ID.
std::string NewRequestId() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    // Only uniqueness matters here; fall back to the clock if the RNG is unavailable.
    const auto t = std::chrono::steady_clock::now().time_since_epoch().count();
    for (size_t i = 0; i < sizeof b; ++i) b[i] = static_cast<unsigned char>(t >> (8 * (i % 8)));
  }
  b[6] = (b[6] & 0x0F) | 0x40;
  b[8] = (b[8] & 0x3F) | 0x80;
  return absl::StrFormat("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                         b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

// A client's request id is echoed only if it is short and plain (it ends up in logs and headers).
bool AcceptableRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == ':')) return false;
  }
  return true;
}

// Matches a route path against the request's decoded path segments, collecting "{name}" segments.
bool MatchPath(std::string_view pattern, const std::string& path, const std::vector<std::string>& segments,
               std::vector<std::pair<std::string, std::string>>* params) {
  if (pattern.find('{') == std::string_view::npos) return pattern == path;
  std::vector<std::pair<std::string, std::string>> found;
  size_t i = 0;
  for (absl::string_view part : absl::StrSplit(absl::string_view(pattern.data() + 1, pattern.size() - 1), '/')) {
    if (i >= segments.size()) return false;
    const std::string& seg = segments[i++];
    if (part.size() > 2 && part.front() == '{' && part.back() == '}') {
      if (seg.empty()) return false;
      found.emplace_back(std::string(part.substr(1, part.size() - 2)), seg);
    } else if (part != seg) {
      return false;
    }
  }
  if (i != segments.size()) return false;
  *params = std::move(found);
  return true;
}

}  // namespace

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kFailedPrecondition:
      return 422;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

std::optional<std::string> Call::Param(std::string_view name) const {
  for (const auto& [k, v] : params) {
    if (k == name) return v;
  }
  return std::nullopt;
}

std::optional<std::string> Call::PathParam(std::string_view name) const {
  for (const auto& [k, v] : path_params) {
    if (k == name) return v;
  }
  return std::nullopt;
}

Api::Api(Service& service, KeyRing keys, Metrics& metrics, net::io_context& io, ApiOptions options)
    : service_(service),
      keys_(std::move(keys)),
      metrics_(metrics),
      io_(io),
      options_(options),
      blocking_(static_cast<size_t>(std::max(1, options.blocking_threads))) {
  const Access R = Access::kRead;
  const Access A = Access::kAdmin;
  const Access P = Access::kPublic;
  routes_ = {
      // Oso Cloud API, 2.x clients.
      {verb::post, "/api/authorize", R, &Api::Authorize},
      {verb::post, "/api/list", R, &Api::List},
      {verb::post, "/api/actions", R, &Api::Actions},
      {verb::post, "/api/evaluate_query", R, &Api::EvaluateQuery},
      {verb::post, "/api/batch", A, &Api::Batch, true, true},
      {verb::get, "/api/facts", R, &Api::GetFacts},
      {verb::get, "/api/policy", R, &Api::GetPolicy, true},
      {verb::post, "/api/policy", A, &Api::PostPolicy, true, true},
      {verb::get, "/api/policy_metadata", R, &Api::PolicyMetadata, true},
      {verb::post, "/api/clear_data", A, &Api::ClearData, true, true},
      {verb::get, "/api/healthcheck", P, &Api::Healthcheck},
      // Oso Cloud API, legacy 1.x clients.
      {verb::post, "/api/facts", A, &Api::InsertFact, true, true},
      {verb::delete_, "/api/facts", A, &Api::DeleteFact, true, true},
      {verb::post, "/api/bulk_load", A, &Api::BulkLoad, true, true},
      {verb::post, "/api/bulk_delete", A, &Api::BulkDelete, true, true},
      {verb::post, "/api/bulk", A, &Api::Bulk, true, true},
      {verb::post, "/api/authorize_resources", R, &Api::AuthorizeResources},
      {verb::post, "/api/bulk_actions", R, &Api::BulkActions},
      {verb::post, "/api/query", R, &Api::QueryV1},
      {verb::get, "/api/stats", R, &Api::Stats, true},
      // Oso features Mandate does not have: a clear answer rather than a bare 404.
      {verb::post, "/api/authorize_query", R, &Api::NotSupported},
      {verb::post, "/api/list_query", R, &Api::NotSupported},
      {verb::post, "/api/actions_query", R, &Api::NotSupported},
      {verb::post, "/api/evaluate_query_local", R, &Api::NotSupported},
      {verb::post, "/api/expect", R, &Api::NotSupported},
      // OpenID AuthZEN 1.0.
      {verb::post, "/access/v1/evaluation", R, &Api::AuthzenEvaluation},
      {verb::post, "/access/v1/evaluations", R, &Api::AuthzenEvaluations},
      {verb::post, "/access/v1/search/subject", R, &Api::AuthzenSearchSubject},
      {verb::post, "/access/v1/search/resource", R, &Api::AuthzenSearchResource},
      {verb::post, "/access/v1/search/action", R, &Api::AuthzenSearchAction},
      {verb::get, "/.well-known/authzen-configuration", P, &Api::AuthzenConfiguration},
      // Native.
      {verb::get, "/v1/policy/versions", R, &Api::PolicyVersions, true},
      {verb::post, "/v1/check", R, &Api::V1Check},
      {verb::post, "/v1/check/batch", R, &Api::V1CheckBatch},
      {verb::post, "/v1/agents", A, &Api::V1CreateAgent, true, true},
      {verb::get, "/v1/agents", R, &Api::V1ListAgents},
      {verb::get, "/v1/agents/{id}", R, &Api::V1GetAgent},
      {verb::patch, "/v1/agents/{id}", A, &Api::V1PatchAgent, true, true},
      {verb::delete_, "/v1/agents/{id}", A, &Api::V1DeleteAgent, true, true},
      {verb::post, "/v1/grants", A, &Api::V1Grant, true, true},
      {verb::get, "/v1/tasks/{id}", R, &Api::V1GetTask, true},
      {verb::post, "/v1/tasks/{id}/complete", A, &Api::V1CompleteTask, true, true},
      {verb::get, "/v1/audit", A, &Api::AuditRecords, true},
      {verb::get, "/v1/audit/checkpoints", A, &Api::AuditCheckpoints, true},
      {verb::get, "/v1/audit/stream", A, &Api::AuditStream},
      {verb::get, "/v1/alerts", A, &Api::Alerts, true},
      {verb::get, "/healthz", P, &Api::Healthz},
      {verb::get, "/readyz", P, &Api::Readyz},
      {verb::get, "/metrics", P, &Api::MetricsText},
  };
}

Api::~Api() {
  stopping_ = true;
  blocking_.join();
}

void Api::Stop() { stopping_ = true; }

void Api::Handle(Request request, Respond respond) {
  auto call = std::make_shared<Call>();
  call->start = std::chrono::steady_clock::now();
  call->respond = std::move(respond);
  call->route_label = "unmatched";
  const auto given_id = request["X-Request-ID"];
  call->request_id = AcceptableRequestId(given_id) ? std::string(given_id) : NewRequestId();
  call->request = std::move(request);

  auto url = boost::urls::parse_origin_form(call->request.target());
  if (!url) return Fail(*call, absl::InvalidArgumentError("malformed request target"));
  call->path = std::string(url->path());
  for (auto param : url->params()) call->params.emplace_back(std::string(param.key), std::string(param.value));
  if (options_.mcp_gateway != nullptr && mcp::Gateway::Owns(call->path)) {
    call->route_label = absl::StrCat(std::string(call->request.method_string()), " /mcp/*");
    return options_.mcp_gateway->Handle(std::move(call->request), [this, call](Response res) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - call->start).count();
      res.set("X-Request-ID", call->request_id);
      metrics_.RecordRequest(call->route_label, static_cast<int>(res.result_int()), seconds);
      call->respond(std::move(res));
    });
  }
  std::vector<std::string> segments;
  for (auto seg : url->segments()) segments.push_back(seg);

  const Route* route = nullptr;
  std::string allowed;
  for (const Route& r : routes_) {
    std::vector<std::pair<std::string, std::string>> path_params;
    if (!MatchPath(r.path, call->path, segments, &path_params)) continue;
    if (r.method == call->request.method()) {
      route = &r;
      call->path_params = std::move(path_params);
    }
    absl::StrAppend(&allowed, allowed.empty() ? "" : ", ", std::string(http::to_string(r.method)));
  }
  if (route == nullptr) {
    const std::string what = absl::StrCat(std::string(call->request.method_string()), " ", call->path);
    if (allowed.empty()) return Fail(*call, absl::NotFoundError(absl::StrCat("no such endpoint: ", what)));
    Reply reply{405, json::object{{"message", absl::StrCat(what, " is not allowed; use ", allowed)}}};
    reply.headers.emplace_back("Allow", allowed);
    return Finish(*call, std::move(reply));
  }
  call->route_label = absl::StrCat(std::string(http::to_string(route->method)), " ", route->path);
  call->admin = route->access == Access::kAdmin;

  if (route->access != Access::kPublic) {
    const auto header = call->request.find(http::field::authorization);
    absl::StatusOr<Role> role = keys_.Authenticate(
        header == call->request.end() ? std::nullopt : std::optional<std::string_view>(header->value()));
    if (!role.ok()) return Fail(*call, role.status());
    call->role = *role;
    if (route->access == Access::kAdmin && *role != Role::kAdmin) {
      return Fail(*call, absl::PermissionDeniedError(
                             absl::StrCat("this API key is read-only; ", call->route_label, " needs an admin key")));
    }
    // Read-your-writes: a read waits until the revision the client last wrote is being served.
    if (!route->is_write) {
      const auto offset = call->request.find("OsoOffset");
      uint64_t wanted = 0;
      if (offset != call->request.end()) {
        const std::string_view v = offset->value();
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), wanted);
        // An offset this server did not issue (e.g. from Oso Cloud) is not a revision; ignore it.
        if (ec != std::errc() || p != v.data() + v.size()) wanted = 0;
      }
      if (wanted > service_.revision()) {
        return AwaitOffset(call, route, wanted, std::chrono::steady_clock::now() + options_.offset_wait);
      }
    }
  }
  Dispatch(std::move(call), route);
}

void Api::AwaitOffset(std::shared_ptr<Call> call, const Route* route, uint64_t offset,
                      std::chrono::steady_clock::time_point deadline) {
  if (service_.revision() >= offset) return Dispatch(std::move(call), route);
  if (std::chrono::steady_clock::now() >= deadline) {
    Reply reply{409, json::object{{"message", absl::StrCat("OsoOffset ", offset, " is ahead of this server's revision ",
                                                           service_.revision(), "; retry later")}}};
    reply.headers.emplace_back("Retry-After", "1");
    return Finish(*call, std::move(reply));
  }
  auto timer = std::make_shared<net::steady_timer>(io_, std::chrono::milliseconds(5));
  timer->async_wait([this, call = std::move(call), route, offset, deadline, timer](boost::system::error_code) mutable {
    AwaitOffset(std::move(call), route, offset, deadline);
  });
}

void Api::Dispatch(std::shared_ptr<Call> call, const Route* route) {
  if (!route->blocking) return Run(std::move(call), route);
  if (route->is_write) {
    if (pending_writes_.fetch_add(1) >= options_.max_pending_writes) {
      --pending_writes_;
      Reply reply{429, json::object{{"message", "too many writes in progress; retry shortly"}}};
      reply.headers.emplace_back("Retry-After", "1");
      return Finish(*call, std::move(reply));
    }
  }
  net::post(blocking_, [this, call = std::move(call), route]() mutable {
    Run(call, route);
    if (route->is_write) --pending_writes_;
  });
}

void Api::Run(std::shared_ptr<Call> call, const Route* route) {
  absl::StatusOr<Reply> reply = absl::InternalError("no reply");
  try {
    reply = (this->*(route->fn))(*call);
  } catch (const std::exception& e) {
    // Handlers report errors as statuses; an exception here is a bug, but it must not take the
    // server down or leave the client without an answer.
    spdlog::error("request {} ({}): unexpected exception: {}", call->request_id, call->route_label, e.what());
    reply = absl::InternalError("internal error");
  }
  if (!reply.ok()) return Fail(*call, reply.status());
  Finish(*call, std::move(*reply));
}

void Api::Fail(Call& call, const absl::Status& status) {
  Reply reply{HttpStatusFor(status.code()), json::object{{"message", std::string(status.message())}}};
  if (reply.status == 401) reply.headers.emplace_back("WWW-Authenticate", "Bearer");
  if (reply.status == 429 || reply.status == 503) reply.headers.emplace_back("Retry-After", "1");
  if (reply.status >= 500) spdlog::error("request {} ({}): {}", call.request_id, call.route_label, status.ToString());
  Finish(call, std::move(reply));
}

void Api::Finish(Call& call, Reply reply) {
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - call.start).count();
  Response res{static_cast<http::status>(reply.status), call.request.version()};
  res.set(http::field::server, "mandate");
  res.set(http::field::content_type, reply.content_type);
  res.set("X-Request-ID", call.request_id);
  res.set("Server-Timing", absl::StrFormat("oso;dur=%.3f", seconds * 1000));
  if (reply.offset) res.set("OsoOffset", std::to_string(*reply.offset));
  for (auto& [name, value] : reply.headers) res.set(name, value);
  res.body() = reply.content_type == "application/json" ? json::serialize(reply.body) : std::move(reply.text);
  metrics_.RecordRequest(call.route_label, reply.status, seconds);
  spdlog::debug("{} {} {} {:.3f}ms {}", std::string(call.request.method_string()), call.path, reply.status,
                seconds * 1000, call.request_id);
  if (options_.audit_log != nullptr && (!call.audit.empty() || call.admin)) {
    return RecordAndRespond(call, reply.status, reply.body, seconds, std::move(res));
  }
  call.respond(std::move(res));
}

}  // namespace mandate::server
