#include "server/api.h"

#include <charconv>
#include <cstring>
#include <functional>
#include <thread>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mandate::server {

namespace http = boost::beast::http;
namespace json = boost::json;
namespace net = boost::asio;
using http::verb;

namespace {

// A UUID v4, for requests that do not bring an X-Request-ID. Ids need to be unique, not secret:
// each thread draws a random 128-bit base once and then numbers its requests (a bijective mix of a
// counter, so ids look random and never repeat within a thread; threads differ by their base).
// RAND_bytes per request cost ~2 µs (OpenSSL 3 DRBG: a lock and getpid each call).
std::string NewRequestId() {
  struct Generator {
    uint64_t hi = 0, lo = 0, n = 0;
    Generator() {
      unsigned char seed[16];
      if (RAND_bytes(seed, sizeof seed) != 1) {
        // Only uniqueness matters; fall back to the clock and the thread if the RNG is unavailable.
        const auto t = static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
        const auto tid = static_cast<uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
        std::memcpy(seed, &t, 8);
        std::memcpy(seed + 8, &tid, 8);
      }
      std::memcpy(&hi, seed, 8);
      std::memcpy(&lo, seed + 8, 8);
    }
  };
  thread_local Generator g;
  // splitmix64's finalizer: a bijection on 64 bits.
  uint64_t x = g.lo + ++g.n * 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  // All 64 bits of x stay in the id (so ids of a thread never collide); the version and variant
  // bits overwrite bits of the thread's base.
  unsigned char h[8];
  unsigned char c[8];
  std::memcpy(h, &g.hi, 8);
  std::memcpy(c, &x, 8);
  const unsigned char b[16] = {c[0], c[1], c[2], c[3], c[4], c[5], static_cast<unsigned char>(0x40 | (h[0] & 0x0F)), c[6],
                               static_cast<unsigned char>(0x80 | (h[1] & 0x3F)), c[7], h[2], h[3], h[4], h[5], h[6], h[7]};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(36, '-');
  size_t o = 0;
  for (size_t i = 0; i < sizeof b; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) ++o;  // the dashes
    id[o++] = kHex[b[i] >> 4];
    id[o++] = kHex[b[i] & 0xF];
  }
  return id;
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

// The MCP gateway's view of a streamed response.
class McpEventSink : public mcp::Gateway::EventSink {
 public:
  explicit McpEventSink(std::shared_ptr<ResponseStream> stream) : stream_(std::move(stream)) {}
  bool Send(std::string data) override { return stream_->Send(std::move(data)); }
  void Close() override { stream_->Close(); }

 private:
  std::shared_ptr<ResponseStream> stream_;
};

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
      {verb::post, "/v1/policy/validate", R, &Api::PolicyValidate, true},
      {verb::post, "/v1/check", R, &Api::V1Check},
      {verb::post, "/v1/check/batch", R, &Api::V1CheckBatch},
      {verb::post, "/v1/agents", A, &Api::V1CreateAgent, true, true},
      {verb::get, "/v1/agents", R, &Api::V1ListAgents},
      {verb::get, "/v1/agents/{id}", R, &Api::V1GetAgent},
      {verb::patch, "/v1/agents/{id}", A, &Api::V1PatchAgent, true, true},
      {verb::delete_, "/v1/agents/{id}", A, &Api::V1DeleteAgent, true, true},
      {verb::post, "/v1/grants", A, &Api::V1Grant, true, true},
      {verb::get, "/v1/grants", R, &Api::V1ListGrants},
      {verb::get, "/v1/tasks/{id}", R, &Api::V1GetTask, true},
      {verb::post, "/v1/tasks/{id}/complete", A, &Api::V1CompleteTask, true, true},
      // Approvals: deciding needs an admin key or a console session (the handler checks).
      {verb::get, "/v1/approvals", R, &Api::V1ListApprovals, true},
      {verb::get, "/v1/approvals/{id}", R, &Api::V1GetApproval, true},
      {verb::post, "/v1/approvals/{id}/approve", R, &Api::V1ApproveApproval, true, true},
      {verb::post, "/v1/approvals/{id}/deny", R, &Api::V1DenyApproval, true, true},
      {verb::get, "/v1/audit", A, &Api::AuditRecords, true},
      {verb::get, "/v1/audit/checkpoints", A, &Api::AuditCheckpoints, true},
      {verb::get, "/v1/audit/verify", A, &Api::AuditVerify, true},
      {verb::get, "/v1/audit/stream", A, &Api::AuditStream},
      {verb::get, "/v1/alerts", A, &Api::Alerts, true},
      // The web console (console_handlers.cc); its API routes check the session themselves.
      {verb::get, "/ui", P, &Api::ConsoleRedirect},
      {verb::get, "/ui/", P, &Api::ConsoleAsset},
      {verb::get, "/ui/{asset}", P, &Api::ConsoleAsset},
      {verb::post, "/ui/api/login", P, &Api::ConsoleLogin, true},
      {verb::post, "/ui/api/logout", P, &Api::ConsoleLogout},
      {verb::get, "/ui/api/session", P, &Api::ConsoleSession},
      {verb::get, "/healthz", P, &Api::Healthz},
      {verb::get, "/readyz", P, &Api::Readyz},
      {verb::get, "/metrics", P, &Api::MetricsText},
  };
  IndexRoutes();
  WireApprovalExpiry();
}

void Api::IndexRoutes() {
  route_labels_.clear();
  route_metrics_.clear();
  literal_routes_.clear();
  pattern_routes_.clear();
  for (size_t i = 0; i < routes_.size(); ++i) {
    const Route& r = routes_[i];
    route_labels_.push_back(absl::StrCat(std::string(http::to_string(r.method)), " ", r.path));
    route_metrics_.push_back(metrics_.Route(route_labels_.back()));
    if (r.path.find('{') == std::string::npos) {
      literal_routes_[r.path].push_back(i);
    } else {
      pattern_routes_.push_back(i);
    }
  }
}

size_t Api::FindRoute(Call& call, const boost::urls::segments_view& url_segments, std::string* allowed) const {
  const verb method = call.request.method();
  std::vector<size_t> matched;  // routes whose path matches, for the Allow list of a 405
  if (auto it = literal_routes_.find(call.path); it != literal_routes_.end()) {
    for (size_t i : it->second) {
      if (routes_[i].method == method) return i;
    }
    matched = it->second;
  }
  if (!pattern_routes_.empty()) {
    std::vector<std::string> segments;
    for (auto seg : url_segments) segments.push_back(seg);
    for (size_t i : pattern_routes_) {
      std::vector<std::pair<std::string, std::string>> path_params;
      if (!MatchPath(routes_[i].path, call.path, segments, &path_params)) continue;
      if (routes_[i].method == method) {
        call.path_params = std::move(path_params);
        return i;
      }
      matched.push_back(i);
    }
  }
  for (size_t i : matched) {
    absl::StrAppend(allowed, allowed->empty() ? "" : ", ", std::string(http::to_string(routes_[i].method)));
  }
  return std::string::npos;
}

Api::~Api() {
  stopping_ = true;
  service_.agents().approvals().SetExpiryListener(nullptr);
  blocking_.join();
}

void Api::Stop() { stopping_ = true; }

void Api::Handle(Request request, Respond respond) {
  auto call = std::make_shared<Call>();
  call->start = std::chrono::steady_clock::now();
  call->respond = std::move(respond);
  call->route_label = "unmatched";
  call->auditing = options_.audit_log != nullptr;
  const auto given_id = request["X-Request-ID"];
  call->request_id = AcceptableRequestId(given_id) ? std::string(given_id) : NewRequestId();
  call->request = std::move(request);

  auto url = boost::urls::parse_origin_form(call->request.target());
  if (!url) return Fail(*call, absl::InvalidArgumentError("malformed request target"));
  call->path = std::string(url->path());
  for (auto param : url->params()) call->params.emplace_back(std::string(param.key), std::string(param.value));
  if (options_.mcp_gateway != nullptr && mcp::Gateway::Owns(call->path)) {
    call->route_label = absl::StrCat(std::string(call->request.method_string()), " /mcp/*");
    auto record = [this, call](Response& res) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - call->start).count();
      res.set("X-Request-ID", call->request_id);
      metrics_.RecordRequest(call->route_label, static_cast<int>(res.result_int()), seconds);
    };
    // SSE answers (docs/mcp-gateway.md) go out through the transport's streamed responses.
    auto stream = [call, record](Response header) -> std::shared_ptr<mcp::Gateway::EventSink> {
      record(header);
      std::shared_ptr<ResponseStream> s = StartStream(call->respond, std::move(header));
      return s == nullptr ? nullptr : std::make_shared<McpEventSink>(std::move(s));
    };
    return options_.mcp_gateway->Handle(
        std::move(call->request),
        [call, record](Response res) {
          record(res);
          call->respond(std::move(res));
        },
        std::move(stream));
  }
  std::string allowed;
  const size_t index = FindRoute(*call, url->segments(), &allowed);
  if (index == std::string::npos) {
    const std::string what = absl::StrCat(std::string(call->request.method_string()), " ", call->path);
    if (allowed.empty()) return Fail(*call, absl::NotFoundError(absl::StrCat("no such endpoint: ", what)));
    Reply reply{405, json::object{{"message", absl::StrCat(what, " is not allowed; use ", allowed)}}};
    reply.headers.emplace_back("Allow", allowed);
    return Finish(*call, std::move(reply));
  }
  const Route* route = &routes_[index];
  call->route_label = route_labels_[index];
  call->route_metrics = route_metrics_[index];
  call->admin = route->access == Access::kAdmin;

  if (route->access != Access::kPublic) {
    if (absl::Status s = Authenticate(*call, *route); !s.ok()) return Fail(*call, s);
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
        service_.store().Poke();  // another node's write: look for it now rather than at the next poll
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
  if (reply->later) return reply->later(std::move(call));
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
  char timing[48] = "oso;dur=";
  const auto [end, ec] = std::to_chars(timing + 8, timing + sizeof timing, seconds * 1000, std::chars_format::fixed, 3);
  res.set("Server-Timing", std::string_view(timing, ec == std::errc() ? end - timing : 8));
  if (reply.offset) res.set("OsoOffset", std::to_string(*reply.offset));
  for (auto& [name, value] : reply.headers) res.set(name, value);
  if (reply.content_type != "application/json") {
    res.body() = std::move(reply.text);
  } else if (!reply.json_text.empty()) {
    res.body() = std::move(reply.json_text);
  } else {
    res.body() = json::serialize(reply.body);
  }
  if (call.route_metrics != nullptr) {
    metrics_.RecordRequest(call.route_metrics, reply.status, seconds);
  } else {
    metrics_.RecordRequest(call.route_label, reply.status, seconds);
  }
  // Guarded: the arguments (string copies) would be built even when debug logging is off.
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("{} {} {} {:.3f}ms {}", std::string(call.request.method_string()), call.path, reply.status,
                  seconds * 1000, call.request_id);
  }
  if (options_.audit_log != nullptr && (!call.audit.empty() || call.admin)) {
    return RecordAndRespond(call, reply.status, reply.body, seconds, std::move(res));
  }
  call.respond(std::move(res));
}

}  // namespace mandate::server
