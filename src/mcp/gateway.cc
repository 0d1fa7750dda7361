#include "mcp/gateway.h"

#include <openssl/rand.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <time.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include "absl/functional/function_ref.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

#include "agents/approvals.h"
#include "mcp/approval_ask.h"
#include "mcp/authorizer.h"
#include "mcp/identity.h"
#include "mcp/jsonrpc.h"
#include "mcp/jwt.h"
#include "mcp/pins.h"
#include "mcp/sse.h"
#include "mcp/upstream.h"

namespace mandate::mcp {

namespace http = boost::beast::http;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

constexpr std::string_view kMcpPrefix = "/mcp/";
constexpr std::string_view kPrmPrefix = "/.well-known/oauth-protected-resource/mcp/";
// How long a tools/call that asked a person through elicitation/create waits for the answer (at
// most; the approval's own expiry may come first).
constexpr std::chrono::seconds kMaxApprovalAsk{120};
constexpr const char* kSupportedVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26"};

bool SupportedVersion(std::string_view v) {
  for (std::string_view s : kSupportedVersions) {
    if (s == v) return true;
  }
  return false;
}

std::string RandomSessionId() {
  unsigned char b[24];
  if (RAND_bytes(b, sizeof b) != 1) return "";
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(b), sizeof b));
}

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The host part of a Host header or URL authority, lower-cased, without port or brackets.
std::string HostOnly(std::string_view authority) {
  std::string h = absl::AsciiStrToLower(std::string(authority));
  if (!h.empty() && h.front() == '[') {
    const size_t close = h.find(']');
    return close == std::string::npos ? h : h.substr(1, close - 1);
  }
  const size_t colon = h.rfind(':');
  if (colon != std::string::npos && h.find(':') == colon) h.resize(colon);
  return h;
}

// Severity order of notifications/message levels (RFC 5424 names); -1 for an unknown name.
int LogLevelRank(std::string_view level) {
  constexpr std::string_view kLevels[] = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};
  for (int i = 0; i < 8; ++i) {
    if (kLevels[i] == level) return i;
  }
  return -1;
}

// The scopes a token grants: the `scope` claim (space-separated) or an `scp` array.
std::vector<std::string> GrantedScopes(const json::object& claims) {
  std::vector<std::string> out;
  if (const json::value* v = claims.if_contains("scope"); v != nullptr && v->is_string()) {
    for (absl::string_view s : absl::StrSplit(absl::string_view(v->as_string().data(), v->as_string().size()), ' ', absl::SkipEmpty())) {
      out.emplace_back(s);
    }
  } else if (const json::value* a = claims.if_contains("scp"); a != nullptr && a->is_array()) {
    for (const json::value& e : a->as_array()) {
      if (e.is_string()) out.emplace_back(e.as_string());
    }
  }
  return out;
}

bool IsLoopbackName(std::string_view host) { return host == "localhost" || host == "127.0.0.1" || host == "::1"; }

// A context value for a JSON scalar; nullopt for objects, arrays, null and non-integral numbers.
std::optional<TypedValue> Scalar(const json::value& v) {
  if (v.is_string()) return TypedValue{"String", std::string(v.as_string())};
  if (v.is_bool()) return TypedValue{"Boolean", v.as_bool() ? "true" : "false"};
  if (v.is_int64()) return TypedValue{"Integer", std::to_string(v.as_int64())};
  if (v.is_uint64() && v.as_uint64() <= static_cast<uint64_t>(INT64_MAX)) {
    return TypedValue{"Integer", std::to_string(v.as_uint64())};
  }
  return std::nullopt;
}

// Header-safe text for WWW-Authenticate quoted strings.
std::string Quoted(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

}  // namespace

// One server-sent event stream of a session: the answer to one POSTed request, or the standalone
// GET stream (number 0). Its events are kept (bounded) so that a client whose connection broke can
// resume with Last-Event-ID "<number>-<seq>" on a new connection.
struct EventStream {
  static constexpr size_t kMaxEvents = 256;
  static constexpr size_t kMaxBytes = size_t{4} << 20;

  uint64_t number = 0;
  std::mutex mu;  // guards everything below
  std::deque<std::pair<uint64_t, std::string>> events;  // (seq, wire text), for replay
  size_t bytes = 0;
  uint64_t next_seq = 1;
  std::shared_ptr<Gateway::EventSink> sink;  // the connection carrying the stream now, if any
  bool done = false;                         // the final response went out (request streams)

  // Sends one JSON-RPC message as an event.
  void Emit(const json::object& message) {
    std::lock_guard lock(mu);
    const uint64_t seq = next_seq++;
    std::string text = FormatEvent({number, seq}, json::serialize(message));
    if (sink != nullptr && !sink->Send(text)) sink = nullptr;
    bytes += text.size();
    events.emplace_back(seq, std::move(text));
    while (!events.empty() && (events.size() > kMaxEvents || bytes > kMaxBytes)) {
      bytes -= events.front().second.size();
      events.pop_front();
    }
  }
  // Hands the stream to `s` (a new connection): replays what came after `after`, then either
  // ends (a finished request stream) or carries on live there, closing the previous connection.
  void Attach(std::shared_ptr<Gateway::EventSink> s, uint64_t after, bool prime) {
    std::lock_guard lock(mu);
    // Priming event (2025-11-25): an id with empty data, so that the client can resume even
    // before the first message.
    if (prime) s->Send(absl::StrCat("id: ", number, "-", next_seq - 1, "\ndata: \n\n"));
    for (const auto& [seq, text] : events) {
      if (seq > after) s->Send(text);
    }
    if (done) return s->Close();
    if (sink != nullptr) sink->Close();
    sink = std::move(s);
  }
  void End() {
    std::lock_guard lock(mu);
    done = true;
    if (sink != nullptr) sink->Close();
    sink = nullptr;
  }
  // Keeps idle connections alive and notices clients that went away.
  void KeepAlive() {
    std::lock_guard lock(mu);
    if (sink != nullptr && !sink->Send(": keepalive\n\n")) sink = nullptr;
  }
};

struct Session {
  std::string id;
  std::string upstream;
  std::string principal_key;
  Principal principal;
  std::string protocol_version;
  json::object client_capabilities;
  // Guarded by Impl::mu:
  Clock::time_point last_used;
  std::map<std::string, int64_t> inflight;  // serialized client request id -> upstream id
  int log_level = -1;                       // logging/setLevel; -1: everything
  uint64_t next_stream = 1;
  std::shared_ptr<EventStream> standalone;           // the GET stream, once opened
  std::deque<std::shared_ptr<EventStream>> recent;   // request streams, for resumption
  // Requests of the upstream relayed to this client: the gateway's id -> (upstream, upstream's id).
  std::map<std::string, std::pair<std::string, json::value>> to_client;
  // The gateway's own requests to this client (approvals asked through elicitation/create): the
  // gateway's id -> what handles the answer.
  std::map<std::string, std::function<void(const json::object& answer)>> awaiting;
  std::string tools_view;  // the tool names this session was last shown (list_changed re-filtering)
  std::set<std::string> subscriptions;  // resource URIs subscribed to (resources/subscribe)

  bool Primes() const { return protocol_version >= "2025-11-25"; }
  void CloseStreams() {
    if (standalone != nullptr) standalone->End();
    for (auto& st : recent) st->End();
  }
};

// One request being answered.
struct Exchange {
  unsigned http_version = 11;
  Gateway::Respond respond;
  Gateway::StartStream start_stream;
  bool accepts_sse = false;  // the client's Accept header names text/event-stream
  Clock::time_point start = Clock::now();
  std::mutex mu;  // guards finished and stream
  bool finished = false;
  std::shared_ptr<EventStream> stream;  // once the answer became an SSE stream
};

// A request forwarded upstream and not answered yet: where the upstream's related messages go.
struct Call {
  std::weak_ptr<Session> session;
  std::shared_ptr<Exchange> exchange;
  json::value client_id;
  json::value progress_token;  // the client's; null when it asked for no progress
  std::string gateway_token;   // what the upstream was given instead ("" when none)
};

// An approval being asked through elicitation/create (Gateway::Impl::AskApproval).
struct Ask {
  std::mutex mu;
  bool done = false;  // guarded by mu
  uint64_t watch = 0;  // guarded by mu; 0 until watched
  std::string key;  // the elicitation's id, serialized
  std::unique_ptr<boost::asio::steady_timer> timer;
};

struct Gateway::Impl {
  Options options;
  std::string base_url;
  std::map<std::string, std::unique_ptr<Upstream>> upstreams;
  AgentKeyRing keys;
  JwtVerifier verifier;
  Authorizer authorizer;
  ToolPins pins;
  Limits limits;

  std::mutex mu;  // guards sessions (and their mutable fields), tools, calls, progress, counters
  std::map<std::string, std::shared_ptr<Session>> sessions;
  // A tool's latest definition and its pinning digest (computed once, not on every call).
  struct KnownTool {
    json::object def;
    std::string digest;  // ToolDigest(def)
  };
  std::map<std::string, std::shared_ptr<const KnownTool>> tools;  // "<upstream>/<tool>" -> latest
  Clock::time_point last_sweep = Clock::now();
  std::map<std::pair<std::string, int64_t>, std::shared_ptr<Call>> calls;  // (upstream, upstream id)
  std::map<std::string, std::shared_ptr<Call>> progress;                   // gateway progress token
  uint64_t next_token = 1;

  std::set<std::shared_ptr<Ask>> asks;  // approvals being asked (guarded by mu), ended at shutdown

  // Resource subscriptions towards the upstreams (guarded by mu), shared by the sessions: one
  // upstream connection serves every session, so the upstream is subscribed to a URI when the first
  // session subscribes and unsubscribed when the last one lets go (unsubscribes, ends or expires).
  struct SubscribeWaiter {
    std::shared_ptr<Exchange> exchange;
    std::shared_ptr<Session> session;
    json::value client_id;
  };
  struct UpstreamSubscription {
    int sessions = 0;   // sessions holding it, including those whose subscribe is in flight
    bool live = false;  // the upstream accepted it
    std::vector<SubscribeWaiter> waiting;  // subscribes waiting for the upstream's answer
  };
  using UpstreamUri = std::pair<std::string, std::string>;  // (upstream, resource URI)
  std::map<UpstreamUri, UpstreamSubscription> subscriptions;
  boost::asio::thread_pool blocking{1};  // decision steps that touch the store (approvals)
  std::thread keepalive;
  std::condition_variable keepalive_cv;
  bool stopping = false;  // guarded by mu

  Impl(Options o, std::string base)
      : options(std::move(o)),
        base_url(std::move(base)),
        keys(options.config.api_keys),
        verifier(options.config.jwt_issuers),
        authorizer(options.snapshot, options.agents),
        pins(options.config.pins_file) {}

  std::string ResourceUrl(const std::string& name) const { return absl::StrCat(base_url, std::string(kMcpPrefix), name); }
  std::string MetadataUrl(const std::string& name) const { return absl::StrCat(base_url, std::string(kPrmPrefix), name); }

  // ---- HTTP replies ----
  static void Reply(Exchange& x, int status, std::string body, std::string_view content_type = "application/json",
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    HttpServerResponse res{static_cast<http::status>(status), x.http_version};
    res.set(http::field::server, "mandate");
    if (!body.empty()) res.set(http::field::content_type, content_type);
    for (auto& [k, v] : headers) res.set(k, v);
    res.body() = std::move(body);
    res.prepare_payload();
    x.respond(std::move(res));
  }
  static void ReplyJson(Exchange& x, int status, const json::object& body,
                        std::vector<std::pair<std::string, std::string>> headers = {}) {
    Reply(x, status, json::serialize(body), "application/json", std::move(headers));
  }
  static void ReplyMessage(Exchange& x, int status, std::string_view message) {
    ReplyJson(x, status, json::object{{"message", message}});
  }

  // Writes one audit entry in the shape of the server's decision records (docs/audit.md), with the
  // MCP specifics under "detail". Arguments are recorded by digest only: `args_digest` is the
  // approval binding's (agents::ArgumentsDigest), "" when the message has no arguments. `kept`
  // (may be null) runs once the log keeps the entry (Options::audit), at once without a log.
  void Audit(const Session* s, const Principal* p, std::string_view upstream, std::string_view method,
             std::string_view action, std::string_view resource, std::string_view args_digest, std::string_view decision,
             const std::vector<std::string>& reasons, Clock::time_point start, json::object detail = {},
             Options::Kept kept = nullptr) {
    Record(upstream, method, decision, std::move(kept), [&] {
      return AuditEntry(s, p, upstream, method, action, resource, args_digest, decision, reasons, start,
                        Clock::now(), detail);
    });
  }

  // Counts a checked message for the metrics and hands its entry (built only when there is a log)
  // to the log; `kept` as in Audit.
  void Record(std::string_view upstream, std::string_view method, std::string_view decision, Options::Kept kept,
              absl::FunctionRef<std::string()> entry) {
    if (options.on_checked) options.on_checked(upstream, method, decision);
    if (!options.audit) {
      if (kept) kept(absl::OkStatus());
      return;
    }
    options.audit(entry(), std::move(kept));
  }

  // The audit entry of a checked message; latency_us is the time from `start` to `end`.
  static std::string AuditEntry(const Session* s, const Principal* p, std::string_view upstream,
                                std::string_view method, std::string_view action, std::string_view resource,
                                std::string_view args_digest, std::string_view decision,
                                const std::vector<std::string>& reasons, Clock::time_point start,
                                Clock::time_point end, const json::object& detail) {
    // Written straight into the record's text (the same fields and order as a json::object would
    // give): in sync mode the record is on the call's way upstream, and building it as an object
    // first cost about 10k instructions and 24 allocations more per call.
    const auto str = [](std::string* out, std::string_view v) { out->append(json::serialize(v)); };
    std::string e;
    e.reserve(512);
    e.append(R"({"kind":"decision","api":)");
    str(&e, absl::StrCat("MCP ", std::string(method)));
    e.append(R"(,"decision":)");
    str(&e, decision);
    if (p != nullptr) {
      e.append(R"(,"actor":)");
      str(&e, ToString(p->actor));
      e.append(!p->on_behalf_of.empty() || p->actor.type == "Agent" ? R"(,"agent":true,"chain":[)"
                                                                     : R"(,"agent":false,"chain":[)");
      for (size_t i = 0; i < p->on_behalf_of.size(); ++i) {
        if (i > 0) e.push_back(',');
        str(&e, ToString(p->on_behalf_of[i]));
      }
      e.push_back(']');
    }
    if (!action.empty()) e.append(R"(,"action":)"), str(&e, action);
    if (!resource.empty()) e.append(R"(,"resource":)"), str(&e, resource);
    e.append(R"(,"reasons":[)");
    for (size_t i = 0; i < reasons.size(); ++i) {
      if (i > 0) e.push_back(',');
      str(&e, reasons[i]);
    }
    absl::StrAppend(&e, R"(],"latency_us":)",
                    std::chrono::duration_cast<std::chrono::microseconds>(end - start).count(),
                    R"(,"detail":{)");
    auto field = [&, first = true](std::string_view key) mutable {
      if (!first) e.push_back(',');
      first = false;
      str(&e, key);
      e.push_back(':');
    };
    for (const auto& [k, v] : detail) field(std::string_view(k.data(), k.size())), e.append(json::serialize(v));
    if (p != nullptr) field("via"), str(&e, p->via);
    field("upstream"), str(&e, upstream);
    field("method"), str(&e, method);
    if (s != nullptr) field("session"), str(&e, std::string_view(s->id).substr(0, 12));
    if (!args_digest.empty()) field("args_sha256"), str(&e, args_digest);
    e.append("}}");
    return e;
  }

  // Sends an allowed use upstream once its audit record is kept (Audit's `kept`); refuses it, fail
  // closed, when the log cannot keep the record.
  Options::Kept ForwardWhenKept(std::shared_ptr<Exchange> x, std::shared_ptr<Session> s, Upstream& up,
                                const Message& m) {
    return [this, x = std::move(x), s = std::move(s), &up, m](absl::Status kept) {
      if (kept.ok()) return Forward(x, s, up, m);
      spdlog::error("MCP gateway: {} of session {} not sent upstream: audit log: {}", m.method, s->id.substr(0, 12),
                    kept.ToString());
      Finish(*x, MakeError(m.id, kInternalError,
                           absl::StrCat("Mandate gateway: the audit log cannot record this ", m.method,
                                        ", so it was not sent: ", kept.message())));
    };
  }

  // ---- Authentication ----
  absl::StatusOr<Principal> Authenticate(const HttpServerRequest& req, const std::string& name, bool* token_given) {
    *token_given = false;
    auto h = req.find(http::field::authorization);
    if (h == req.end()) return absl::UnauthenticatedError("");
    std::string_view v = h->value();
    if (v.size() < 7 || !absl::EqualsIgnoreCase(std::string(v.substr(0, 7)), "bearer ")) {
      return absl::UnauthenticatedError("the Authorization header must be a Bearer token");
    }
    *token_given = true;
    const std::string token(absl::StripAsciiWhitespace(std::string(v.substr(7))));
    if (std::optional<Principal> p = keys.Find(token)) return *p;
    if (verifier.empty() || std::count(token.begin(), token.end(), '.') != 2) {
      return absl::UnauthenticatedError("the token is neither a known API key nor a JWT of a trusted issuer");
    }
    absl::StatusOr<JwtVerifier::Verified> verified = verifier.Verify(token, ResourceUrl(name), NowUnix());
    if (!verified.ok()) return verified.status();
    const std::vector<std::string> granted = GrantedScopes(verified->claims);
    std::vector<std::string> missing;
    for (const std::string& want : RequiredScopes(name)) {
      if (std::find(granted.begin(), granted.end(), want) == granted.end()) missing.push_back(want);
    }
    if (!missing.empty()) {
      return absl::PermissionDeniedError(absl::StrCat("the token lacks the scope ", absl::StrJoin(missing, " ")));
    }
    return PrincipalFromClaims(verified->claims, *verified->issuer);
  }

  const std::vector<std::string>& RequiredScopes(const std::string& name) const {
    return upstreams.at(name)->config().required_scopes;
  }

  void Unauthorized(Exchange& x, const std::string& name, const absl::Status& why, bool token_given) {
    std::string challenge = absl::StrCat("Bearer resource_metadata=\"", MetadataUrl(name), "\"");
    const std::vector<std::string>& scopes = RequiredScopes(name);
    if (absl::IsPermissionDenied(why)) {
      // Step-up (RFC 6750 §3.1): a valid token without the scopes this resource needs.
      absl::StrAppend(&challenge, ", error=\"insufficient_scope\", scope=\"", Quoted(absl::StrJoin(scopes, " ")),
                      "\", error_description=\"", Quoted(std::string(why.message())), "\"");
      return ReplyJson(x, 403,
                       json::object{{"error", "insufficient_scope"},
                                    {"error_description", std::string(why.message())},
                                    {"scope", absl::StrJoin(scopes, " ")}},
                       {{"WWW-Authenticate", challenge}});
    }
    if (!scopes.empty()) absl::StrAppend(&challenge, ", scope=\"", Quoted(absl::StrJoin(scopes, " ")), "\"");
    json::object body{{"error", token_given ? "invalid_token" : "invalid_request"}};
    if (token_given) {
      absl::StrAppend(&challenge, ", error=\"invalid_token\", error_description=\"", Quoted(std::string(why.message())), "\"");
      body["error_description"] = std::string(why.message());
    } else {
      body["error_description"] = why.message().empty() ? "an access token is required" : std::string(why.message());
    }
    ReplyJson(x, 401, body, {{"WWW-Authenticate", challenge}});
  }

  // ---- DNS rebinding ----
  bool HostAllowed(const HttpServerRequest& req) const {
    auto h = req.find(http::field::host);
    if (h == req.end()) return true;
    const std::string host = HostOnly(h->value());
    if (IsLoopbackName(host)) return true;
    auto base = boost::urls::parse_uri(base_url);
    if (base && HostOnly(base->encoded_host_and_port()) == host) return true;
    for (const std::string& a : options.config.allowed_hosts) {
      if (HostOnly(a) == host) return true;
    }
    return false;
  }
  bool OriginAllowed(const HttpServerRequest& req) const {
    auto h = req.find(http::field::origin);
    if (h == req.end()) return true;
    const std::string origin = absl::AsciiStrToLower(std::string(h->value()));
    for (const std::string& a : options.config.allowed_origins) {
      if (absl::AsciiStrToLower(a) == origin) return true;
    }
    auto o = boost::urls::parse_uri(origin);
    if (!o || (o->scheme() != "http" && o->scheme() != "https")) return false;
    auto base = boost::urls::parse_uri(base_url);
    if (base && absl::AsciiStrToLower(absl::StrCat(std::string(base->scheme()), "://", std::string(base->encoded_host_and_port()))) ==
                    origin) {
      return true;
    }
    return IsLoopbackName(HostOnly(o->encoded_host_and_port()));
  }

  // ---- Sessions ----
  // Ends sessions idle longer than session_idle_seconds; what they held upstream goes to `released`.
  void SweepLocked(std::vector<UpstreamUri>* released) {
    const auto now = Clock::now();
    if (now - last_sweep < std::chrono::seconds(10) && sessions.size() < options.config.max_sessions) return;
    last_sweep = now;
    const auto idle = std::chrono::duration<double>(options.config.session_idle_seconds);
    for (auto it = sessions.begin(); it != sessions.end();) {
      if (now - it->second->last_used > idle) {
        it->second->CloseStreams();
        ReleaseSubscriptionsLocked(*it->second, released);
        sessions.erase(it++);
      } else {
        ++it;
      }
    }
  }

  // The session named by the request, if it belongs to `principal` and `name`.
  std::shared_ptr<Session> FindSession(std::string_view id, const std::string& name, const Principal& principal) {
    std::lock_guard lock(mu);
    auto it = sessions.find(std::string(id));
    if (it == sessions.end() || it->second->upstream != name || it->second->principal_key != principal.Key()) {
      return nullptr;
    }
    it->second->last_used = Clock::now();
    return it->second;
  }

  // ---- Requests ----
  void Handle(HttpServerRequest req, Respond respond, StartStream start_stream) {
    auto x = std::make_shared<Exchange>();
    x->http_version = req.version();
    x->respond = std::move(respond);
    x->start_stream = std::move(start_stream);
    x->accepts_sse = x->start_stream != nullptr &&
                     absl::StrContains(absl::AsciiStrToLower(std::string(req[http::field::accept])), "text/event-stream");
    auto url = boost::urls::parse_origin_form(req.target());
    if (!url) return ReplyMessage(*x, 400, "malformed request target");
    const std::string path = std::string(url->path());

    if (path.rfind(kPrmPrefix, 0) == 0) return ProtectedResourceMetadata(*x, req, path.substr(kPrmPrefix.size()));
    std::string rest = path.substr(kMcpPrefix.size());
    std::string sub;
    if (size_t slash = rest.find('/'); slash != std::string::npos) {
      sub = rest.substr(slash + 1);
      rest.resize(slash);
    }
    const std::string name = rest;
    auto up = upstreams.find(name);
    if (up == upstreams.end()) return ReplyMessage(*x, 404, absl::StrCat("no MCP upstream named \"", name, "\""));
    if (!HostAllowed(req)) return ReplyMessage(*x, 403, "Host header not allowed (DNS rebinding protection)");
    if (!OriginAllowed(req)) return ReplyMessage(*x, 403, "Origin not allowed (DNS rebinding protection)");
    if (!sub.empty()) return Pins(*x, req, name, sub);

    if (req.method() != http::verb::post && req.method() != http::verb::delete_ &&
        (req.method() != http::verb::get || x->start_stream == nullptr)) {
      return ReplyMessage(*x, 405, absl::StrCat(std::string(req.method_string()), " is not supported on ", path,
                                                "; use POST, GET (a server-sent event stream) or DELETE"));
    }
    bool token_given = false;
    absl::StatusOr<Principal> principal = Authenticate(req, name, &token_given);
    if (!principal.ok()) {
      Audit(nullptr, nullptr, name, absl::StrCat(std::string(req.method_string()), " ", path), "", "", "", "deny",
            {absl::StrCat(absl::IsPermissionDenied(principal.status()) ? "insufficient_scope: " : "unauthenticated: ",
                          token_given ? std::string(principal.status().message()) : "no token")},
            x->start);
      return Unauthorized(*x, name, principal.status(), token_given);
    }
    const std::string session_id(req["Mcp-Session-Id"]);

    if (req.method() == http::verb::delete_) {
      if (session_id.empty()) return ReplyMessage(*x, 400, "DELETE needs the Mcp-Session-Id header");
      std::shared_ptr<Session> s = FindSession(session_id, name, *principal);
      if (s == nullptr) return ReplyMessage(*x, 404, "no such session");
      std::map<std::string, int64_t> inflight;
      std::vector<UpstreamUri> released;
      {
        std::lock_guard lock(mu);
        sessions.erase(s->id);
        inflight.swap(s->inflight);
        s->CloseStreams();
        ReleaseSubscriptionsLocked(*s, &released);
      }
      UnsubscribeUpstream(released);
      for (const auto& [cid, uid] : inflight) {
        up->second->Cancel(uid, "session ended");
        if (std::shared_ptr<Call> c = ForgetCall(name, uid)) {
          Finish(*c->exchange, MakeError(c->client_id, kInvalidRequest, "the session ended"));
        }
      }
      return Reply(*x, 200, "");
    }
    if (req.method() == http::verb::get) return OpenStandalone(x, req, name, *principal, session_id);

    const std::string content_type(req[http::field::content_type]);
    if (!absl::StartsWithIgnoreCase(content_type, "application/json")) {
      return ReplyMessage(*x, 415, "the body must be a JSON-RPC message with Content-Type: application/json");
    }
    const std::string accept(req[http::field::accept]);
    if (!accept.empty() && !absl::StrContains(accept, "application/json") && !absl::StrContains(accept, "*/*")) {
      return ReplyMessage(*x, 406, "the gateway answers with application/json; the Accept header must allow it");
    }
    Decoded d = Decode(req.body(), limits);
    if (d.error) return ReplyJson(*x, 400, MakeError(*d.error));
    Message& m = *d.message;

    if (m.kind == Message::Kind::kRequest && m.method == "initialize") {
      return Initialize(x, *up->second, *principal, std::move(m));
    }
    if (session_id.empty()) {
      return ReplyJson(*x, 400, MakeError(m.id, kInvalidRequest, "missing Mcp-Session-Id header; send initialize first"));
    }
    std::shared_ptr<Session> s = FindSession(session_id, name, *principal);
    if (s == nullptr) return ReplyJson(*x, 404, MakeError(m.id, kInvalidRequest, "session not found; initialize again"));
    const std::string_view version = req["MCP-Protocol-Version"];
    if (!version.empty() && !SupportedVersion(version)) {
      return ReplyJson(*x, 400, MakeError(m.id, kInvalidRequest,
                                          absl::StrCat("unsupported MCP-Protocol-Version \"", std::string(version),
                                                       "\"; supported: ", absl::StrJoin(kSupportedVersions, ", "))));
    }
    switch (m.kind) {
      case Message::Kind::kResponse:
        ClientResponse(*s, m);
        return Reply(*x, 202, "");
      case Message::Kind::kNotification:
        ClientNotification(*s, *up->second, m);
        return Reply(*x, 202, "");
      case Message::Kind::kRequest:
        return Request(x, s, *up->second, std::move(m));
    }
  }

  void ProtectedResourceMetadata(Exchange& x, const HttpServerRequest& req, const std::string& name) {
    if (upstreams.find(name) == upstreams.end()) {
      return ReplyMessage(x, 404, absl::StrCat("no MCP upstream named \"", name, "\""));
    }
    if (req.method() != http::verb::get) return ReplyMessage(x, 405, "use GET");
    json::array servers;
    for (const JwtIssuerConfig& i : options.config.jwt_issuers) {
      if (i.audience != ResourceUrl(name)) continue;
      bool seen = false;
      for (const json::value& s : servers) seen = seen || s.as_string() == i.issuer;
      if (!seen) servers.push_back(json::string(i.issuer));
    }
    ReplyJson(x, 200,
              json::object{{"resource", ResourceUrl(name)},
                           {"authorization_servers", std::move(servers)},
                           {"bearer_methods_supported", json::array{"header"}},
                           {"scopes_supported", json::value_from(RequiredScopes(name))},
                           {"resource_name", absl::StrCat("Mandate MCP gateway: ", name)}},
              {{"Access-Control-Allow-Origin", "*"}});
  }

  void Pins(Exchange& x, const HttpServerRequest& req, const std::string& name, const std::string& sub) {
    auto h = req.find(http::field::authorization);
    const bool admin = options.is_admin && options.is_admin(h == req.end() ? std::nullopt
                                                                            : std::optional<std::string_view>(h->value()));
    if (!admin) return ReplyMessage(x, 401, "tool pins need an admin API key of the server");
    const std::string prefix = absl::StrCat(name, "/");
    if (sub == "pins" && req.method() == http::verb::get) {
      return ReplyJson(x, 200, json::object{{"upstream", name}, {"pins", pins.List(prefix)}});
    }
    if (sub == "pins/approve" && req.method() == http::verb::post) {
      boost::system::error_code ec;
      json::value body = json::parse(req.body(), ec);
      const json::value* tool = body.is_object() ? body.as_object().if_contains("tool") : nullptr;
      if (ec || tool == nullptr || !tool->is_string()) {
        return ReplyMessage(x, 400, "invalid request body at /tool: expected the tool's name as a string");
      }
      absl::Status s = pins.Approve(absl::StrCat(prefix, std::string(tool->as_string())));
      if (!s.ok()) return ReplyMessage(x, 404, std::string(s.message()));
      return ReplyJson(x, 200, json::object{{"upstream", name}, {"pins", pins.List(prefix)}});
    }
    return ReplyMessage(x, 404, absl::StrCat("no such endpoint: ", std::string(req.method_string()), " ",
                                             std::string(req.target())));
  }

  void Initialize(std::shared_ptr<Exchange> x, Upstream& up, const Principal& principal, Message m) {
    std::string requested;
    if (const json::value* v = m.params.if_contains("protocolVersion"); v && v->is_string()) {
      requested = std::string(v->as_string());
    }
    if (requested.empty()) {
      return ReplyJson(*x, 400, MakeError(m.id, kInvalidParams, "initialize needs params.protocolVersion"));
    }
    // A revision the gateway does not speak is answered with the latest one (the client decides).
    const std::string version = SupportedVersion(requested) ? requested : std::string(kSupportedVersions[0]);
    auto session = std::make_shared<Session>();
    session->id = RandomSessionId();
    if (session->id.empty()) return ReplyJson(*x, 503, MakeError(m.id, kInternalError, "no randomness for a session id"));
    session->upstream = up.name();
    session->principal = principal;
    session->principal_key = principal.Key();
    session->protocol_version = version;
    if (const json::value* c = m.params.if_contains("capabilities"); c != nullptr && c->is_object()) {
      session->client_capabilities = c->as_object();
    }
    session->last_used = Clock::now();
    std::vector<UpstreamUri> released;
    bool full;
    {
      std::lock_guard lock(mu);
      SweepLocked(&released);
      full = sessions.size() >= options.config.max_sessions;
    }
    UnsubscribeUpstream(released);
    if (full) {
      return ReplyJson(*x, 503, MakeError(m.id, kInternalError, "too many MCP sessions; retry later"),
                       {{"Retry-After", "5"}});
    }
    up.WhenReady([this, x, session, id = m.id](absl::StatusOr<json::object> init) {
      if (!init.ok()) return ReplyJson(*x, 503, MakeError(id, kUpstreamUnavailable, std::string(init.status().message())));
      const json::object* uc = init->contains("capabilities") && init->at("capabilities").is_object()
                                   ? &init->at("capabilities").as_object()
                                   : nullptr;
      // Only what the gateway relays is offered: list_changed and resource subscriptions as the
      // upstream has them (relayed on the standalone stream; subscriptions kept per session by the
      // gateway), logging levels kept per session by the gateway.
      json::object caps;
      for (const char* c : {"tools", "resources", "prompts", "completions", "logging"}) {
        if (uc == nullptr || !uc->contains(c)) continue;
        json::object cap;
        const json::value& theirs = uc->at(c);
        for (const char* flag : {"listChanged", "subscribe"}) {
          if (theirs.is_object() && theirs.as_object().contains(flag) && theirs.at(flag) == true) cap[flag] = true;
        }
        caps[c] = std::move(cap);
      }
      json::object result{{"protocolVersion", session->protocol_version}, {"capabilities", std::move(caps)}};
      result["serverInfo"] = init->contains("serverInfo") ? init->at("serverInfo")
                                                          : json::object{{"name", session->upstream}, {"version", "0"}};
      if (const json::value* i = init->if_contains("instructions")) result["instructions"] = *i;
      {
        std::lock_guard lock(mu);
        sessions[session->id] = session;
      }
      ReplyJson(*x, 200, MakeResult(id, std::move(result)), {{"Mcp-Session-Id", session->id}});
    });
  }

  void ClientNotification(Session& s, Upstream& up, const Message& m) {
    if (m.method != "notifications/cancelled") return;  // initialized, roots/list_changed: nothing to relay
    const json::value* rid = m.params.if_contains("requestId");
    if (rid == nullptr) return;
    std::optional<int64_t> upstream_id;
    {
      std::lock_guard lock(mu);
      auto it = s.inflight.find(json::serialize(*rid));
      if (it != s.inflight.end()) {
        upstream_id = it->second;
        s.inflight.erase(it);
      }
    }
    if (upstream_id) {
      const json::value* reason = m.params.if_contains("reason");
      up.Cancel(*upstream_id, reason && reason->is_string() ? std::string_view(reason->as_string()) : "cancelled");
      // The cancelled request's HTTP exchange still needs an end (the client ignores the answer).
      if (std::shared_ptr<Call> c = ForgetCall(up.name(), *upstream_id)) {
        Finish(*c->exchange, MakeError(c->client_id, kInvalidRequest, "cancelled by the client"));
      }
    }
  }

  // Sends the request upstream and relays the response (id restored); `filter` may rewrite it.
  // What the upstream sends about the request meanwhile (progress, log messages, its own requests)
  // reaches the client on an SSE stream (see SendForCall).
  using Filter = std::function<void(json::object& result)>;
  void Forward(std::shared_ptr<Exchange> x, std::shared_ptr<Session> s, Upstream& up, const Message& m,
               Filter filter = nullptr) {
    const std::string key = json::serialize(m.id);
    auto call = std::make_shared<Call>();
    call->session = s;
    call->exchange = x;
    call->client_id = m.id;
    json::object params = m.params;
    // Progress tokens are the client's own: the upstream, shared by every session, gets one of the
    // gateway's instead, mapped back on the way out.
    if (json::value* meta = params.if_contains("_meta"); meta != nullptr && meta->is_object()) {
      if (json::value* t = meta->as_object().if_contains("progressToken"); t != nullptr && IsValidId(*t)) {
        call->progress_token = *t;
      }
    }
    const int64_t uid = up.ReserveId();
    {
      std::lock_guard lock(mu);
      s->inflight[key] = uid;
      calls[{up.name(), uid}] = call;
      if (!call->progress_token.is_null()) {
        call->gateway_token = absl::StrCat("mandate-", next_token++);
        progress[call->gateway_token] = call;
      }
    }
    if (!call->gateway_token.empty()) params["_meta"].as_object()["progressToken"] = call->gateway_token;
    const Clock::time_point sent = Clock::now();
    up.Request(uid, m.method, std::move(params),
               [this, x, s, key, call, filter, upstream = up.name(), uid, sent](json::object resp) {
                 const Clock::time_point answered = Clock::now();
                 {
                   std::lock_guard lock(mu);
                   s->inflight.erase(key);
                 }
                 ForgetCall(upstream, uid);
                 resp["id"] = call->client_id;
                 if (filter && resp.contains("result") && resp.at("result").is_object()) {
                   filter(resp.at("result").as_object());
                 }
                 const Clock::time_point replied = Clock::now();
                 Finish(*x, resp);
                 if (options.on_forwarded) {
                   options.on_forwarded(upstream, Seconds(answered - sent),
                                        Seconds((sent - x->start) + (replied - answered)));
                 }
               });
  }

  // Drops the bookkeeping of a forwarded request; returns it (null when already gone).
  std::shared_ptr<Call> ForgetCall(const std::string& upstream, int64_t uid) {
    std::lock_guard lock(mu);
    auto it = calls.find({upstream, uid});
    if (it == calls.end()) return nullptr;
    std::shared_ptr<Call> c = std::move(it->second);
    calls.erase(it);
    if (!c->gateway_token.empty()) progress.erase(c->gateway_token);
    return c;
  }

  std::shared_ptr<Call> FindCall(const std::string& upstream, std::optional<int64_t> uid) {
    if (!uid) return nullptr;
    std::lock_guard lock(mu);
    auto it = calls.find({upstream, *uid});
    return it == calls.end() ? nullptr : it->second;
  }

  // ---- Server-sent events ----
  static HttpServerResponse SseHeader(unsigned version) {
    HttpServerResponse h{http::status::ok, version};
    h.set(http::field::server, "mandate");
    h.set(http::field::content_type, "text/event-stream");
    h.set(http::field::cache_control, "no-cache");
    h.set("X-Accel-Buffering", "no");
    return h;
  }

  // The final answer to a request: the last event of its stream, or a JSON response.
  void Finish(Exchange& x, const json::object& response) {
    std::unique_lock lock(x.mu);
    if (x.finished) return;
    x.finished = true;
    if (x.stream != nullptr) {
      x.stream->Emit(response);
      x.stream->End();
      return;
    }
    lock.unlock();
    ReplyJson(x, 200, response);
  }

  // Sends `message` to the client ahead of the answer to the call's request, turning that answer
  // into an SSE stream on first use. False when it cannot reach the client: the client does not
  // accept text/event-stream, or the request was answered already.
  bool SendForCall(const Call& c, const json::object& message) {
    std::shared_ptr<Session> s = c.session.lock();
    if (s == nullptr) return false;
    Exchange& x = *c.exchange;
    std::lock_guard lock(x.mu);
    if (x.finished) return false;
    if (x.stream == nullptr) {
      if (!x.accepts_sse) return false;
      std::shared_ptr<Gateway::EventSink> sink = x.start_stream(SseHeader(x.http_version));
      if (sink == nullptr) {
        x.accepts_sse = false;
        return false;
      }
      {
        std::lock_guard g(mu);
        x.stream = std::make_shared<EventStream>();
        x.stream->number = s->next_stream++;
        s->recent.push_back(x.stream);
        if (s->recent.size() > 16) s->recent.pop_front();
      }
      x.stream->Attach(std::move(sink), 0, s->Primes());
    }
    x.stream->Emit(message);
    return true;
  }

  // Sends `message` on the session's standalone (GET) stream, if the client opened one.
  void SendStandalone(Session& s, const json::object& message) {
    std::shared_ptr<EventStream> st;
    {
      std::lock_guard lock(mu);
      st = s.standalone;
    }
    if (st != nullptr) st->Emit(message);
  }

  // GET: the standalone stream for messages not tied to a request (list_changed), or, with
  // Last-Event-ID, the resumption of a stream whose connection broke.
  void OpenStandalone(std::shared_ptr<Exchange> x, const HttpServerRequest& req, const std::string& name,
                      const Principal& principal, const std::string& session_id) {
    if (!x->accepts_sse) return ReplyMessage(*x, 406, "GET opens a server-sent event stream; Accept must allow text/event-stream");
    if (session_id.empty()) return ReplyMessage(*x, 400, "GET needs the Mcp-Session-Id header");
    std::shared_ptr<Session> s = FindSession(session_id, name, principal);
    if (s == nullptr) return ReplyMessage(*x, 404, "no such session");
    std::shared_ptr<EventStream> st;
    uint64_t after = UINT64_MAX;  // a new GET stream replays nothing
    const std::string last(req["Last-Event-ID"]);
    if (!last.empty()) {
      std::optional<EventId> id = ParseEventId(last);
      if (!id) return ReplyMessage(*x, 400, "malformed Last-Event-ID");
      const uint64_t number = id->stream;
      after = id->seq;
      std::lock_guard lock(mu);
      if (number == 0) {
        st = s->standalone;
      } else {
        for (const auto& r : s->recent) {
          if (r->number == number) st = r;
        }
      }
      if (st == nullptr) return ReplyMessage(*x, 400, "Last-Event-ID names no stream of this session that can be resumed");
    } else {
      std::lock_guard lock(mu);
      if (s->standalone == nullptr) s->standalone = std::make_shared<EventStream>();
      st = s->standalone;
    }
    std::shared_ptr<Gateway::EventSink> sink = x->start_stream(SseHeader(x->http_version));
    if (sink == nullptr) return;
    st->Attach(std::move(sink), after, last.empty() && s->Primes());
  }

  // A client's answer to a request the gateway relayed from the upstream.
  void ClientResponse(Session& s, const Message& m) {
    std::optional<std::pair<std::string, json::value>> target;
    std::function<void(const json::object&)> local;
    {
      std::lock_guard lock(mu);
      if (auto a = s.awaiting.find(json::serialize(m.id)); a != s.awaiting.end()) {
        local = std::move(a->second);
        s.awaiting.erase(a);
      }
    }
    if (local) return local(m.raw);
    {
      std::lock_guard lock(mu);
      auto it = s.to_client.find(json::serialize(m.id));
      if (it == s.to_client.end()) return;
      target = std::move(it->second);
      s.to_client.erase(it);
    }
    json::object r{{"jsonrpc", "2.0"}, {"id", target->second}};
    if (const json::value* v = m.raw.if_contains("result")) r["result"] = *v;
    if (const json::value* v = m.raw.if_contains("error")) r["error"] = *v;
    upstreams.at(target->first)->SendResponse(std::move(r));
  }

  // ---- Messages of the upstreams ----
  void OnUpstreamNotification(Upstream& up, const std::string& method, const json::object& params,
                              std::optional<int64_t> related) {
    if (method == "notifications/progress") {
      const json::value* t = params.if_contains("progressToken");
      if (t == nullptr || !t->is_string()) return;
      std::shared_ptr<Call> c;
      {
        std::lock_guard lock(mu);
        auto it = progress.find(std::string(t->as_string()));
        if (it != progress.end()) c = it->second;
      }
      if (c == nullptr) return;
      json::object p = params;
      p["progressToken"] = c->progress_token;
      SendForCall(*c, MakeNotification(method, std::move(p)));
    } else if (method == "notifications/message") {
      std::shared_ptr<Call> c = FindCall(up.name(), related);
      if (c == nullptr) return;  // not tied to a request of a client: nobody may see it
      if (std::shared_ptr<Session> s = c->session.lock()) {
        const json::value* level = params.if_contains("level");
        std::lock_guard lock(mu);
        if (s->log_level >= 0 && level != nullptr && level->is_string() &&
            LogLevelRank(level->as_string()) < s->log_level) {
          return;
        }
      }
      SendForCall(*c, MakeNotification(method, params));
    } else if (method == "notifications/tools/list_changed") {
      RefreshTools(up);
    } else if (method == "notifications/resources/list_changed" || method == "notifications/prompts/list_changed") {
      for (const std::shared_ptr<Session>& s : SessionsOf(up.name())) SendStandalone(*s, MakeNotification(method, {}));
    } else if (method == "notifications/resources/updated") {
      // Only to the sessions subscribed to the URI that may still read it.
      const json::value* uri = params.if_contains("uri");
      if (uri == nullptr || !uri->is_string()) return;
      const std::string u(uri->as_string());
      std::vector<std::shared_ptr<Session>> subscribed;
      {
        std::lock_guard lock(mu);
        for (const auto& [id, s] : sessions) {
          if (s->upstream == up.name() && s->subscriptions.count(u) != 0) subscribed.push_back(s);
        }
      }
      for (const std::shared_ptr<Session>& s : subscribed) {
        if (authorizer.Visible(ResourceAuthz(*s, u, method))) SendStandalone(*s, MakeNotification(method, params));
      }
    }
  }

  // ---- Resource subscriptions ----
  // resources/subscribe, allowed by the policy: the session holds the URI; the upstream is asked
  // only when no session held it, and the answer waits for the upstream's.
  void Subscribe(const std::shared_ptr<Exchange>& x, const std::shared_ptr<Session>& s, Upstream& up,
                 const Message& m, const std::string& uri) {
    bool ask = false;
    {
      std::unique_lock lock(mu);
      if (sessions.count(s->id) == 0) {  // deleted meanwhile: it must not hold anything
        lock.unlock();
        return Finish(*x, MakeError(m.id, kInvalidRequest, "the session ended"));
      }
      bool held = !s->subscriptions.insert(uri).second;
      if (!held) {
        UpstreamSubscription& sub = subscriptions[{up.name(), uri}];
        ++sub.sessions;
        held = sub.live;
        if (!held) {
          // Answered with the upstream's answer: this one asks, or another session's ask is in flight.
          sub.waiting.push_back(SubscribeWaiter{x, s, m.id});
          ask = sub.waiting.size() == 1;
        }
      }
      if (held) {
        lock.unlock();
        return Finish(*x, MakeResult(m.id, json::object{}));
      }
    }
    if (!ask) return;
    up.Request("resources/subscribe", json::object{{"uri", uri}}, [this, &up, uri](json::object resp) {
      const bool ok = resp.contains("result");
      std::vector<SubscribeWaiter> waiters;
      bool drop = false;
      {
        std::lock_guard lock(mu);
        auto it = subscriptions.find({up.name(), uri});
        if (it == subscriptions.end()) return;
        waiters.swap(it->second.waiting);
        if (ok) {
          it->second.live = true;
        } else {
          for (const SubscribeWaiter& w : waiters) {
            if (w.session->subscriptions.erase(uri) != 0) --it->second.sessions;
          }
        }
        // Everyone let go while the upstream answered.
        drop = it->second.sessions <= 0;
        if (drop) subscriptions.erase(it);
      }
      if (ok && drop) up.Request("resources/unsubscribe", json::object{{"uri", uri}}, [](json::object) {});
      for (const SubscribeWaiter& w : waiters) {
        json::object answer = resp;
        answer["id"] = w.client_id;
        Finish(*w.exchange, answer);
      }
    });
  }

  // resources/unsubscribe: the session lets go of the URI (not a use: no policy check); the
  // upstream is unsubscribed when no session holds it any more.
  void Unsubscribe(Exchange& x, Session& s, const Message& m, const std::string& uri) {
    std::vector<UpstreamUri> released;
    {
      std::lock_guard lock(mu);
      if (s.subscriptions.erase(uri) != 0) ReleaseLocked({s.upstream, uri}, &released);
    }
    UnsubscribeUpstream(released);
    Finish(x, MakeResult(m.id, json::object{}));
  }

  // One session fewer holds `key`; when none does and the upstream holds it, it goes to `released`.
  void ReleaseLocked(const UpstreamUri& key, std::vector<UpstreamUri>* released) {
    auto it = subscriptions.find(key);
    if (it == subscriptions.end() || --it->second.sessions > 0) return;
    // A subscribe still in flight is settled when the upstream answers it (see Subscribe).
    if (!it->second.live) return;
    released->push_back(key);
    subscriptions.erase(it);
  }

  void ReleaseSubscriptionsLocked(Session& s, std::vector<UpstreamUri>* released) {
    for (const std::string& uri : s.subscriptions) ReleaseLocked({s.upstream, uri}, released);
    s.subscriptions.clear();
  }

  // Tells the upstreams to drop subscriptions no session holds any more (call without mu held).
  void UnsubscribeUpstream(const std::vector<UpstreamUri>& released) {
    for (const auto& [upstream, uri] : released) {
      upstreams.at(upstream)->Request("resources/unsubscribe", json::object{{"uri", uri}}, [](json::object) {});
    }
  }

  // After a handshake with the upstream (a restart or a new upstream session): the subscriptions
  // sessions hold are made again, since the upstream forgot them.
  void OnUpstreamReady(Upstream& up) {
    std::vector<std::string> uris;
    {
      std::lock_guard lock(mu);
      for (const auto& [key, sub] : subscriptions) {
        if (key.first == up.name() && sub.live) uris.push_back(key.second);
      }
    }
    for (const std::string& uri : uris) {
      up.Request("resources/subscribe", json::object{{"uri", uri}}, [name = up.name(), uri](json::object resp) {
        if (!resp.contains("result")) {
          spdlog::warn("MCP upstream \"{}\" refused the renewed subscription to {}: {}", name, uri, json::serialize(resp));
        }
      });
    }
  }

  // Whether the session's client declared the capability for a request `method` with `params`
  // (sampling/createMessage, elicitation/create in the mode params names).
  static bool Declares(const Session& s, const std::string& method, const json::object& params) {
    if (method == "sampling/createMessage") return s.client_capabilities.contains("sampling");
    if (method != "elicitation/create") return false;
    const json::value* cap = s.client_capabilities.if_contains("elicitation");
    if (cap == nullptr) return false;
    const json::value* mode = params.if_contains("mode");
    const std::string want = mode != nullptr && mode->is_string() ? std::string(mode->as_string()) : "form";
    // An empty elicitation capability means form mode only.
    return !cap->is_object() || (want == "form" && cap->as_object().empty()) || cap->as_object().contains(want);
  }

  // sampling/createMessage and elicitation/create of an upstream go to the client whose request
  // the upstream is working on, if that client declared the capability; anything else is refused.
  void OnUpstreamRequest(Upstream& up, const json::value& id, const std::string& method, const json::object& params,
                         std::optional<int64_t> related) {
    const auto start = Clock::now();
    std::shared_ptr<Call> c = FindCall(up.name(), related);
    std::shared_ptr<Session> s = c != nullptr ? c->session.lock() : nullptr;
    auto refuse = [&](const std::string& why) {
      if (s != nullptr) Audit(s.get(), &s->principal, up.name(), method, "", "", "", "deny", {why}, start);
      up.SendResponse(MakeError(id, kMethodNotFound, absl::StrCat("Mandate gateway: ", why)));
    };
    if (s == nullptr) return refuse(absl::StrCat(method, " is not tied to a client request the gateway can relay it to"));
    if (!Declares(*s, method, params)) return refuse(absl::StrCat("the client did not declare the capability for ", method));
    const std::string gid = absl::StrCat("mandate-", [&] {
      std::lock_guard lock(mu);
      return next_token++;
    }());
    const std::string key = json::serialize(json::value(gid));
    {
      std::lock_guard lock(mu);
      if (s->to_client.size() >= 64) return refuse("too many requests are waiting for this client's answer");
      s->to_client[key] = {up.name(), id};
    }
    if (!SendForCall(*c, MakeRequest(json::value(gid), method, params))) {
      {
        std::lock_guard lock(mu);
        s->to_client.erase(key);
      }
      return refuse("the client's request is not answered with an event stream (Accept lacks text/event-stream)");
    }
    Audit(s.get(), &s->principal, up.name(), method, "", "", "", "allow", {}, start,
          json::object{{"relayed_to_client", true}});
  }

  std::vector<std::shared_ptr<Session>> SessionsOf(const std::string& upstream) {
    std::vector<std::shared_ptr<Session>> out;
    std::lock_guard lock(mu);
    for (const auto& [id, s] : sessions) {
      if (s->upstream == upstream) out.push_back(s);
    }
    return out;
  }

  // After the upstream's tools/list_changed: lists its tools again (pinning new definitions) and
  // tells each session whose filtered view changed, on its standalone stream.
  void RefreshTools(Upstream& up) {
    {
      std::lock_guard lock(mu);
      const std::string prefix = absl::StrCat(up.name(), "/");
      for (auto it = tools.lower_bound(prefix); it != tools.end() && absl::StartsWith(it->first, prefix);) {
        tools.erase(it++);
      }
    }
    ListAllTools(up, json::object{}, 0, [this, &up] {
      std::vector<std::shared_ptr<const KnownTool>> defs;
      {
        std::lock_guard lock(mu);
        const std::string prefix = absl::StrCat(up.name(), "/");
        for (auto it = tools.lower_bound(prefix); it != tools.end() && absl::StartsWith(it->first, prefix); ++it) {
          defs.push_back(it->second);
        }
      }
      for (const std::shared_ptr<Session>& s : SessionsOf(up.name())) {
        std::vector<std::string> shown;
        for (const auto& t : defs) {
          if (ToolVisible(*s, *t)) shown.emplace_back(t->def.at("name").as_string());
        }
        const std::string view = absl::StrJoin(shown, "\n");
        bool changed;
        {
          std::lock_guard lock(mu);
          changed = view != s->tools_view;
          s->tools_view = view;
        }
        if (changed) SendStandalone(*s, MakeNotification("notifications/tools/list_changed", {}));
      }
    });
  }

  void KeepAliveLoop() {
    std::unique_lock lock(mu);
    while (!stopping) {
      keepalive_cv.wait_for(lock, std::chrono::seconds(15));
      if (stopping) break;
      std::vector<std::shared_ptr<EventStream>> streams;
      for (const auto& [id, s] : sessions) {
        if (s->standalone != nullptr) streams.push_back(s->standalone);
        for (const auto& r : s->recent) streams.push_back(r);
      }
      lock.unlock();
      for (auto& st : streams) st->KeepAlive();
      lock.lock();
    }
  }

  AuthzRequest MakeAuthz(const Session& s, std::string action, std::string type, const std::string& id,
                         std::string_view method) {
    AuthzRequest a;
    a.principal = &s.principal;
    a.action = std::move(action);
    a.resource = TypedValue{std::move(type), absl::StrCat(s.upstream, "/", id)};
    a.context.emplace_back("upstream", TypedValue{"String", s.upstream});
    a.context.emplace_back("method", TypedValue{"String", std::string(method)});
    a.now_unix = NowUnix();
    return a;
  }

  // "read" on McpResource{"<upstream>/<uri>"}, with the URI as context.
  AuthzRequest ResourceAuthz(const Session& s, const std::string& uri, std::string_view method) {
    AuthzRequest a = MakeAuthz(s, "read", options.config.resource_type, uri, method);
    a.context.emplace_back("uri", TypedValue{"String", uri});
    return a;
  }

  // Shown in a list when the caller may use the entry or is granted "list" on it.
  bool Visible(AuthzRequest a) {
    if (authorizer.Visible(a)) return true;
    a.action = "list";
    return authorizer.Visible(a);
  }

  static void AddAnnotations(const json::object& tool, AuthzRequest& a) {
    const json::value* ann = tool.if_contains("annotations");
    if (ann == nullptr || !ann->is_object()) return;
    for (const auto& [k, v] : ann->as_object()) {
      if (std::optional<TypedValue> t = Scalar(v)) a.context.emplace_back(absl::StrCat("annotations.", std::string(k)), *t);
    }
  }

  // Refuses `m` for the reasons of `r`, as a JSON-RPC error naming what was refused.
  void Deny(Exchange& x, const Message& m, const std::string& what, const AuthzResult& r) {
    std::vector<std::string> msgs;
    json::array reasons;
    for (const agents::Reason& reason : r.reasons) {
      msgs.push_back(reason.message);
      reasons.push_back(json::object{{"code", reason.code}, {"message", reason.message}});
    }
    json::object data{{"decision", "deny"}, {"reasons", std::move(reasons)}};
    if (r.retry_after_seconds) data["retry_after_seconds"] = *r.retry_after_seconds;
    const std::string message = absl::StrCat("Mandate denied ", m.method, " of ", what,
                                             msgs.empty() ? "" : absl::StrCat(": ", absl::StrJoin(msgs, "; ")));
    Finish(x, MakeError(m.id, kPolicyDenied, message, std::move(data)));
  }

  // Checks a use and forwards it when allowed. The decision's store step (approvals) runs on the
  // gateway's blocking thread, never on the server's I/O threads.
  // The arguments' digest (approvals bind to it, audit records carry it) is not needed by the
  // evaluation itself: it is taken after it, and for a call that goes straight through only once
  // the call is on its way (Decided).
  void Enforce(std::shared_ptr<Exchange> x, std::shared_ptr<Session> s, Upstream& up, const Message& m, AuthzRequest a,
               const std::string& target, const json::value* args, bool may_ask = true) {
    bool needs_store = false;
    agents::CheckResult evaluated = authorizer.Evaluate(a, &needs_store);
    if (!needs_store) {
      AuthzResult r = authorizer.Finish(a, std::move(evaluated));
      return Decided(x, s, up, m, std::move(a), target, args, std::move(r), may_ask);
    }
    if (args != nullptr && a.arguments_digest.empty()) a.arguments_digest = agents::ArgumentsDigest(*args);
    std::optional<json::value> kept_args;
    if (args != nullptr) kept_args = *args;
    boost::asio::post(
        blocking, [this, x, s, &up, m, a, target, kept_args, may_ask, evaluated = std::move(evaluated)]() mutable {
          AuthzResult r = authorizer.Finish(a, std::move(evaluated));
          Decided(x, s, up, m, std::move(a), target, kept_args ? &*kept_args : nullptr, std::move(r), may_ask);
        });
  }

  // `may_ask`: an approval_required tools/call may be put to the person behind the session through
  // elicitation/create (false once it was).
  void Decided(const std::shared_ptr<Exchange>& x, const std::shared_ptr<Session>& s, Upstream& up, const Message& m,
               AuthzRequest a, const std::string& target, const json::value* args, AuthzResult r, bool may_ask) {
    const std::string_view decision = r.allowed ? "allow" : r.approval_required ? "approval_required" : "deny";
    const auto entry = [&](Clock::time_point end) {
      if (args != nullptr && a.arguments_digest.empty()) a.arguments_digest = agents::ArgumentsDigest(*args);
      std::vector<std::string> reasons;
      for (const agents::Reason& reason : r.reasons) reasons.push_back(absl::StrCat(reason.code, ": ", reason.message));
      json::object detail;
      if (r.approval) detail["approval"] = r.approval->id;
      return AuditEntry(s.get(), &s->principal, s->upstream, m.method, a.action, ToString(a.resource),
                        a.arguments_digest, decision, reasons, x->start, end, detail);
    };
    const auto audit = [&](Options::Kept kept = nullptr) {
      Record(s->upstream, m.method, decision, std::move(kept), [&] { return entry(Clock::now()); });
    };
    // An allowed use reaches the upstream only once the log keeps its record: in sync mode once it
    // is on disk, so that an agent never acts on a decision the log could lose (docs/audit.md). In
    // async mode the log promises room first, and the record is built once the call is on its way.
    if (r.allowed && m.method != "resources/subscribe") {
      if (options.audit && options.audit_reserve && options.audit_reserve()) {
        const Clock::time_point decided = Clock::now();
        Forward(x, s, up, m);
        if (options.on_checked) options.on_checked(s->upstream, m.method, decision);
        return options.audit_reserved(entry(decided));
      }
      return audit(ForwardWhenKept(x, s, up, m));
    }
    audit();
    if (r.approval_required && r.approval) {
      if (may_ask && Askable(m.method) && x->accepts_sse && x->start_stream &&
          Declares(*s, "elicitation/create", json::object{})) {
        return AskApproval(x, s, up, m, a, target, args, *r.approval);
      }
      return NeedsApproval(*x, m, target, *r.approval);
    }
    if (!r.allowed) return Deny(*x, m, absl::StrCat("\"", target, "\""), r);
    Subscribe(x, s, up, m, std::string(m.params.at("uri").as_string()));
  }

  // An approval_required decision: a tool call gets a tool error result the agent can read (what to
  // ask for, where, and that the same call may be retried once approved); other uses a JSON-RPC
  // error. Both carry the approval {id, status, expires_at, url}.
  // {id, status, expires_at, url} of an approval.
  json::object ApprovalInfo(const store::ApprovalRecord& ap) const {
    char expires[32] = "";
    const time_t t = static_cast<time_t>(ap.expires_at);
    struct tm utc;
    if (gmtime_r(&t, &utc) != nullptr) strftime(expires, sizeof expires, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return json::object{{"id", ap.id},
                        {"status", ap.status},
                        {"expires_at", expires},
                        {"url", absl::StrCat(base_url, "/ui/#/approvals/", ap.id)}};
  }

  // A use that waits for, or was refused, a person's approval: a tool call gets a tool error result
  // saying `text`, with the approval under _meta["mandate/approval"]; other uses a JSON-RPC error
  // with the decision and the approval as its data.
  void ApprovalRefused(Exchange& x, const Message& m, const std::string& text, json::object approval,
                       std::string_view decision) {
    if (m.method != "tools/call") {
      return Finish(x, MakeError(m.id, kPolicyDenied, text,
                                 json::object{{"decision", decision}, {"approval", std::move(approval)}}));
    }
    json::object result{{"content", json::array{json::object{{"type", "text"}, {"text", text}}}},
                        {"isError", true},
                        {"_meta", json::object{{"mandate/approval", std::move(approval)}}}};
    Finish(x, MakeResult(m.id, std::move(result)));
  }

  // The uses a person can be asked to approve through elicitation/create, and how they are named.
  static bool Askable(std::string_view method) {
    return method == "tools/call" || method == "resources/read" || method == "prompts/get";
  }
  static std::string UseOf(const Message& m, const std::string& target) {
    if (m.method == "tools/call") return absl::StrCat("the call of \"", target, "\"");
    if (m.method == "resources/read") return absl::StrCat("the read of \"", target, "\"");
    return absl::StrCat("the ", m.method, " of \"", target, "\"");
  }

  void NeedsApproval(Exchange& x, const Message& m, const std::string& target, const store::ApprovalRecord& ap) {
    json::object approval = ApprovalInfo(ap);
    const std::string text = absl::StrCat(
        "Mandate: ", m.method, " of \"", target, "\" needs a person's approval (approval ", ap.id, ", ", ap.status,
        ", until ", std::string(approval.at("expires_at").as_string()), "). Ask them to approve it at ",
        std::string(approval.at("url").as_string()), ", then retry the same call with the same arguments.");
    ApprovalRefused(x, m, text, std::move(approval), "approval_required");
  }

  // A request of the client's that is not forwarded (what SendForCall needs to reach its stream).
  static Call RequestOf(const std::shared_ptr<Session>& s, const std::shared_ptr<Exchange>& x) {
    Call c;
    c.session = s;
    c.exchange = x;
    return c;
  }

  // An approval_required tools/call, resources/read or prompts/get of a client that declared
  // elicitation: the answer becomes an SSE stream, on which the person behind the session (the
  // last principal of the chain: the token's user or the API key's) is asked through
  // elicitation/create. Their answer decides the approval as that person, through the same path
  // as POST /v1/approvals/{id}/approve (so can_approve must hold for them; the actor never
  // approves itself); an approval the person may not decide stays pending for someone else. The
  // wait holds no thread: it ends at the answer, a decision recorded meanwhile (the console), the
  // approval's expiry or kMaxApprovalAsk.
  void AskApproval(const std::shared_ptr<Exchange>& x, const std::shared_ptr<Session>& s, Upstream& up,
                   const Message& m, AuthzRequest a, const std::string& target, const json::value* args,
                   const store::ApprovalRecord& ap) {
    const TypedValue human = s->principal.on_behalf_of.empty() ? s->principal.actor : s->principal.on_behalf_of.back();
    json::object info = ApprovalInfo(ap);
    std::string shown_args = args != nullptr ? json::serialize(*args) : "{}";
    if (shown_args.size() > 2000) shown_args = absl::StrCat(shown_args.substr(0, 2000), "…");
    std::string who = ToString(s->principal.actor);
    if (!s->principal.on_behalf_of.empty()) {
      absl::StrAppend(&who, ", acting for ",
                      absl::StrJoin(s->principal.on_behalf_of, " for ",
                                    [](std::string* out, const TypedValue& v) { out->append(ToString(v)); }),
                      ",");
    }
    const std::string wants =
        m.method == "tools/call"    ? absl::StrCat("call the tool \"", target, "\" with the arguments ", shown_args)
        : m.method == "prompts/get" ? absl::StrCat("get the prompt \"", target, "\" with the arguments ", shown_args)
                                    : absl::StrCat("read the resource \"", target, "\"");
    const std::string message = absl::StrCat(
        who, " wants to ", wants, ". Approve it as ", ToString(human), "? (Approval ", ap.id,
        "; it can also be decided at ", std::string(info.at("url").as_string()), " until ",
        std::string(info.at("expires_at").as_string()), ".)");
    auto ask = std::make_shared<Ask>();
    ask->timer = std::make_unique<boost::asio::steady_timer>(blocking);  // set before anyone may claim
    const std::string gid = absl::StrCat("mandate-", [&] {
      std::lock_guard lock(mu);
      return next_token++;
    }());
    ask->key = json::serialize(json::value(gid));
    std::optional<json::value> kept_args;
    if (args != nullptr) kept_args = *args;
    // Ends the wait once, whichever comes first; true for the one that ends it.
    auto claim = [this, ask, s] {
      uint64_t watch;
      {
        std::lock_guard lock(ask->mu);
        if (ask->done) return false;
        ask->done = true;
        watch = ask->watch;
      }
      {
        std::lock_guard lock(mu);
        s->awaiting.erase(ask->key);
        asks.erase(ask);
      }
      if (watch != 0) options.agents->approvals().Unwatch(watch);
      boost::asio::post(blocking, [ask] { ask->timer->cancel(); });
      return true;
    };
    // No answer (a decision elsewhere, expiry, out of time): the request is decided again.
    auto recheck = [this, x, s, &up, m, a, target, kept_args, gid, claim]() mutable {
      if (!claim()) return;
      SendForCall(RequestOf(s, x), MakeNotification("notifications/cancelled",
                                               json::object{{"requestId", gid}, {"reason", "no longer needed"}}));
      a.now_unix = NowUnix();
      Enforce(x, s, up, m, a, target, kept_args ? &*kept_args : nullptr, false);
    };
    auto answered = [this, x, s, &up, m, a, target, kept_args, human, ap, info, claim](const json::object& raw) mutable {
      if (!claim()) return;
      boost::asio::post(blocking, [this, x, s, &up, m, a, target, kept_args, human, ap, info, raw]() mutable {
        const ApprovalAnswer answer = ReadApprovalAnswer(raw);
        const std::string& action = answer.action;
        const std::string& note = answer.note;
        const std::string pending =
            absl::StrCat("; approval ", ap.id, " stays pending: another person may approve it at ",
                         std::string(info.at("url").as_string()), ", then the same request may be retried.");
        if (answer.kind == ApprovalAnswer::Kind::kNone) {
          return ApprovalRefused(*x, m,
                                 absl::StrCat("Mandate: ", ToString(human), " did not approve ", UseOf(m, target), " (",
                                              action.empty() ? "no answer" : action, ")", pending),
                                 info, "approval_required");
        }
        agents::ApprovalDecisionRequest d;
        d.approve = answer.kind == ApprovalAnswer::Kind::kApprove;
        d.approver = human;
        d.note = note;
        std::vector<agents::ApprovalEvent> events;
        absl::StatusOr<store::ApprovalRecord> decided =
            options.agents->DecideApproval(*options.snapshot(), ap.id, d, &events);
        if (options.approval_audit) options.approval_audit(events);
        if (absl::IsPermissionDenied(decided.status())) {
          return ApprovalRefused(*x, m,
                                 absl::StrCat("Mandate: the approver was refused: ", decided.status().message(), pending),
                                 info, "approval_required");
        }
        if (decided.ok() && !d.approve) {
          return ApprovalRefused(*x, m,
                                 absl::StrCat("Mandate: ", ToString(human), " denied ", UseOf(m, target),
                                              note.empty() ? "" : absl::StrCat(" (", note, ")"),
                                              "; the same request stays refused until the approval expires."),
                                 ApprovalInfo(*decided), "deny");
        }
        // Approved now (or decided meanwhile by someone else): the request is decided again, and
        // goes through with the approval, or is refused.
        a.now_unix = NowUnix();
        Enforce(x, s, up, m, a, target, kept_args ? &*kept_args : nullptr, false);
      });
    };
    {
      std::lock_guard lock(mu);
      s->awaiting[ask->key] = answered;
      asks.insert(ask);
    }
    if (!SendForCall(RequestOf(s, x), MakeRequest(json::value(gid), "elicitation/create",
                                                  ApprovalElicitationParams(message)))) {
      {
        std::lock_guard lock(mu);
        s->awaiting.erase(ask->key);
        asks.erase(ask);
      }
      return NeedsApproval(*x, m, target, ap);
    }
    // Watched once the question is out; an answer that came first ends the watch at once.
    const uint64_t watch = options.agents->approvals().Watch(ap.id, recheck);
    bool ended;
    {
      std::lock_guard lock(ask->mu);
      ask->watch = watch;
      ended = ask->done;
    }
    if (ended) options.agents->approvals().Unwatch(watch);
    const int64_t left = std::max<int64_t>(1, ap.expires_at - NowUnix());
    boost::asio::post(blocking, [ask, recheck, left]() mutable {
      ask->timer->expires_after(std::min<std::chrono::seconds>(kMaxApprovalAsk, std::chrono::seconds(left)));
      ask->timer->async_wait([recheck](boost::system::error_code) mutable { recheck(); });
    });
  }

  void Request(std::shared_ptr<Exchange> x, std::shared_ptr<Session> s, Upstream& up, Message m) {
    const std::string& method = m.method;
    auto bad_params = [&](std::string_view what) {
      ReplyJson(*x, 200, MakeError(m.id, kInvalidParams, what));
    };
    auto string_param = [&](const char* key) -> std::optional<std::string> {
      const json::value* v = m.params.if_contains(key);
      if (v == nullptr || !v->is_string()) return std::nullopt;
      return std::string(v->as_string());
    };

    if (method == "ping") return ReplyJson(*x, 200, MakeResult(m.id, json::object{}));
    if (method == "logging/setLevel") {
      // Kept per session: one upstream connection serves every session, so the gateway filters
      // the log messages it relays instead of asking the upstream.
      const json::value* level = m.params.if_contains("level");
      const int rank = level != nullptr && level->is_string() ? LogLevelRank(level->as_string()) : -1;
      if (rank < 0) return bad_params("logging/setLevel needs params.level (debug, info, notice, warning, error, ...)");
      {
        std::lock_guard lock(mu);
        s->log_level = rank;
      }
      return ReplyJson(*x, 200, MakeResult(m.id, json::object{}));
    }
    if (method == "tools/list") {
      return Forward(x, s, up, m, [this, s](json::object& result) { FilterTools(*s, result); });
    }
    if (method == "resources/list" || method == "resources/templates/list") {
      const bool templates = method == "resources/templates/list";
      return Forward(x, s, up, m, [this, s, templates](json::object& result) {
        FilterList(*s, result, templates ? "resourceTemplates" : "resources", templates ? "uriTemplate" : "uri",
                   "read", options.config.resource_type, templates ? "resources/templates/list" : "resources/list");
      });
    }
    if (method == "prompts/list") {
      return Forward(x, s, up, m, [this, s](json::object& result) {
        FilterList(*s, result, "prompts", "name", "get", options.config.prompt_type, "prompts/list");
      });
    }
    if (method == "tools/call") {
      std::optional<std::string> name = string_param("name");
      if (!name) return bad_params("tools/call needs params.name (a string)");
      const json::value* args = m.params.if_contains("arguments");
      if (args != nullptr && !args->is_object()) return bad_params("tools/call params.arguments must be an object");
      return WithTool(up, *name, [this, x, s, &up, m = std::move(m), name = *name](std::shared_ptr<const KnownTool> tool) {
        const std::string key = absl::StrCat(s->upstream, "/", name);
        if (tool && !pins.Allow(key, tool->digest)) {
          Audit(s.get(), &s->principal, s->upstream, m.method, "call",
                ToString(TypedValue{options.config.tool_type, key}), "", "deny", {"tool_definition_changed"},
                x->start);
          return ReplyJson(*x, 200,
                           MakeError(m.id, kToolChanged,
                                     absl::StrCat("tool \"", key,
                                                  "\" changed its definition since it was approved; an administrator "
                                                  "must approve the new definition before it can be used")));
        }
        AuthzRequest a = MakeAuthz(*s, "call", options.config.tool_type, name, m.method);
        a.context.emplace_back("tool", TypedValue{"String", name});
        if (tool) AddAnnotations(tool->def, a);
        const json::value* args = m.params.if_contains("arguments");
        if (args != nullptr) {
          for (const auto& [k, v] : args->as_object()) {
            if (std::optional<TypedValue> t = Scalar(v)) a.context.emplace_back(std::string(k), *t);
          }
        }
        json::value empty_args = json::object{};
        Enforce(x, s, up, m, a, key, args != nullptr ? args : &empty_args);
      });
    }
    if (method == "resources/read" || method == "resources/subscribe" || method == "resources/unsubscribe") {
      std::optional<std::string> uri = string_param("uri");
      if (!uri) return bad_params(absl::StrCat(method, " needs params.uri (a string)"));
      if (method == "resources/unsubscribe") return Unsubscribe(*x, *s, m, *uri);
      // A subscription reveals what a read would (that the resource changed): both are "read".
      return Enforce(x, s, up, m, ResourceAuthz(*s, *uri, method), absl::StrCat(s->upstream, "/", *uri), nullptr);
    }
    if (method == "prompts/get") {
      std::optional<std::string> name = string_param("name");
      if (!name) return bad_params("prompts/get needs params.name (a string)");
      AuthzRequest a = MakeAuthz(*s, "get", options.config.prompt_type, *name, method);
      const json::value* args = m.params.if_contains("arguments");
      if (args != nullptr && args->is_object()) {
        for (const auto& [k, v] : args->as_object()) {
          if (std::optional<TypedValue> t = Scalar(v)) a.context.emplace_back(std::string(k), *t);
        }
      }
      return Enforce(x, s, up, m, a, absl::StrCat(s->upstream, "/", *name), args);
    }
    if (method == "completion/complete") {
      // Completions reveal names and values: allowed only where the referenced prompt or resource
      // template is visible to the caller.
      const json::value* ref = m.params.if_contains("ref");
      const json::object* r = ref != nullptr ? ref->if_object() : nullptr;
      const json::value* type = r != nullptr ? r->if_contains("type") : nullptr;
      AuthzRequest a;
      std::string target;
      if (type != nullptr && *type == "ref/prompt" && r->contains("name") && r->at("name").is_string()) {
        target = std::string(r->at("name").as_string());
        a = MakeAuthz(*s, "get", options.config.prompt_type, target, method);
      } else if (type != nullptr && *type == "ref/resource" && r->contains("uri") && r->at("uri").is_string()) {
        target = std::string(r->at("uri").as_string());
        a = MakeAuthz(*s, "read", options.config.resource_type, target, method);
      } else {
        return bad_params("completion/complete needs params.ref of type ref/prompt (name) or ref/resource (uri)");
      }
      const bool visible = Visible(a);
      if (!visible) {
        Audit(s.get(), &s->principal, s->upstream, method, a.action, ToString(a.resource), "", "deny", {}, x->start);
        return Deny(*x, m, absl::StrCat("\"", s->upstream, "/", target, "\""), AuthzResult{});
      }
      return Audit(s.get(), &s->principal, s->upstream, method, a.action, ToString(a.resource), "", "allow", {},
                   x->start, {}, ForwardWhenKept(x, s, up, m));
    }
    ReplyJson(*x, 200, MakeError(m.id, kMethodNotFound, absl::StrCat("method not found: ", method)));
  }

  // Calls `then` with the upstream's current definition of tool `name` (null when the upstream
  // does not list it), listing the upstream's tools first when the gateway has not seen it.
  void WithTool(Upstream& up, const std::string& name, std::function<void(std::shared_ptr<const KnownTool>)> then) {
    const std::string key = absl::StrCat(up.name(), "/", name);
    std::shared_ptr<const KnownTool> known;
    {
      std::lock_guard lock(mu);
      auto it = tools.find(key);
      if (it != tools.end()) known = it->second;
    }
    if (known) return then(std::move(known));
    ListAllTools(up, json::object{}, 0, [this, key, then = std::move(then)]() {
      std::shared_ptr<const KnownTool> tool;
      {
        std::lock_guard lock(mu);
        auto it = tools.find(key);
        if (it != tools.end()) tool = it->second;
      }
      then(std::move(tool));
    });
  }

  void ListAllTools(Upstream& up, json::object params, int page, std::function<void()> done) {
    up.Request("tools/list", std::move(params), [this, &up, page, done = std::move(done)](json::object resp) {
      const json::value* result = resp.if_contains("result");
      if (result == nullptr || !result->is_object()) return done();
      RememberTools(up.name(), result->as_object());
      const json::value* cursor = result->as_object().if_contains("nextCursor");
      if (cursor == nullptr || !cursor->is_string() || page >= 50) return done();
      ListAllTools(up, json::object{{"cursor", *cursor}}, page + 1, done);
    });
  }

  // Records the tools of a tools/list result; returns them in the list's order (null for entries
  // that are not tools).
  std::vector<std::shared_ptr<const KnownTool>> RememberTools(const std::string& upstream, const json::object& result) {
    std::vector<std::shared_ptr<const KnownTool>> known;
    const json::value* list = result.if_contains("tools");
    if (list == nullptr || !list->is_array()) return known;
    for (const json::value& t : list->as_array()) {
      if (!t.is_object() || !t.as_object().contains("name") || !t.at("name").is_string()) {
        known.push_back(nullptr);
        continue;
      }
      known.push_back(std::make_shared<const KnownTool>(KnownTool{t.as_object(), ToolDigest(t.as_object())}));
    }
    std::lock_guard lock(mu);
    for (const auto& k : known) {
      if (k != nullptr) tools[absl::StrCat(upstream, "/", std::string(k->def.at("name").as_string()))] = k;
    }
    return known;
  }

  // Whether `s` is shown the tool `t`: its pinned definition is approved and the policy lets the
  // caller use it (or list it).
  bool ToolVisible(const Session& s, const KnownTool& t) {
    const std::string name(t.def.at("name").as_string());
    if (!pins.Allow(absl::StrCat(s.upstream, "/", name), t.digest)) return false;
    AuthzRequest a = MakeAuthz(s, "call", options.config.tool_type, name, "tools/list");
    a.context.emplace_back("tool", TypedValue{"String", name});
    AddAnnotations(t.def, a);
    return Visible(std::move(a));
  }

  void FilterTools(Session& s, json::object& result) {
    const auto start = Clock::now();
    const std::vector<std::shared_ptr<const KnownTool>> known = RememberTools(s.upstream, result);
    json::value* list = result.if_contains("tools");
    if (list == nullptr || !list->is_array()) return;
    json::array kept;
    std::vector<std::string> shown;
    for (size_t i = 0; i < list->as_array().size(); ++i) {
      json::value& t = list->as_array()[i];
      if (known[i] == nullptr || !ToolVisible(s, *known[i])) continue;
      shown.emplace_back(t.at("name").as_string());
      kept.push_back(std::move(t));
    }
    const size_t hidden = list->as_array().size() - kept.size();
    Audit(&s, &s.principal, s.upstream, "tools/list", "call", options.config.tool_type, "", "allow", {}, start,
          json::object{{"shown", kept.size()}, {"hidden", hidden}});
    *list = std::move(kept);
    if (!result.contains("nextCursor")) {  // a whole list: what list_changed re-filtering compares to
      std::sort(shown.begin(), shown.end());
      std::lock_guard lock(mu);
      s.tools_view = absl::StrJoin(shown, "\n");
    }
  }

  void FilterList(const Session& s, json::object& result, const char* list_key, const char* id_key,
                  const char* action, const std::string& type, std::string_view method) {
    const auto start = Clock::now();
    json::value* list = result.if_contains(list_key);
    if (list == nullptr || !list->is_array()) return;
    json::array kept;
    for (json::value& e : list->as_array()) {
      if (!e.is_object() || !e.as_object().contains(id_key) || !e.at(id_key).is_string()) continue;
      const std::string id(e.at(id_key).as_string());
      AuthzRequest a = MakeAuthz(s, action, type, id, method);
      if (Visible(std::move(a))) kept.push_back(std::move(e));
    }
    const size_t hidden = list->as_array().size() - kept.size();
    Audit(&s, &s.principal, s.upstream, method, action, type, "", "allow", {}, start,
          json::object{{"shown", kept.size()}, {"hidden", hidden}});
    *list = std::move(kept);
  }
};

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Gateway::~Gateway() {
  std::set<std::shared_ptr<Ask>> asks;
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
    for (auto& [id, s] : impl_->sessions) {
      s->CloseStreams();
      s->awaiting.clear();
    }
    asks.swap(impl_->asks);
  }
  // Approvals being asked end unanswered: their watchers go, and their timers before the pool
  // they run on.
  for (const std::shared_ptr<Ask>& ask : asks) {
    uint64_t watch;
    {
      std::lock_guard lock(ask->mu);
      ask->done = true;
      watch = ask->watch;
    }
    if (watch != 0) impl_->options.agents->approvals().Unwatch(watch);
  }
  impl_->blocking.stop();
  impl_->blocking.join();
  for (const std::shared_ptr<Ask>& ask : asks) ask->timer.reset();
  impl_->keepalive_cv.notify_all();
  if (impl_->keepalive.joinable()) impl_->keepalive.join();
  for (auto& [name, up] : impl_->upstreams) up->Stop();
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Create(Options options) {
  if (options.config.upstreams.empty()) return absl::InvalidArgumentError("no [[mcp.upstreams]] configured");
  if (options.config.api_keys.empty() && options.config.jwt_issuers.empty()) {
    return absl::InvalidArgumentError(
        "the MCP gateway needs a way to authenticate agents: add [[auth.jwt_issuers]] or [[mcp.api_keys]]");
  }
  if (options.agents == nullptr || !options.snapshot) return absl::InvalidArgumentError("gateway needs a policy source");
  std::string base = options.config.public_url.empty() ? options.base_url : options.config.public_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (options.config.pins_file.empty() && !options.data_dir.empty()) {
    options.config.pins_file = options.data_dir + "/mcp-tool-pins.json";
  }
  auto impl = std::make_unique<Impl>(std::move(options), std::move(base));
  if (absl::Status s = impl->verifier.Start(); !s.ok()) return s;
  if (absl::Status s = impl->pins.Load(); !s.ok()) return s;
  for (const UpstreamConfig& u : impl->options.config.upstreams) {
    impl->upstreams[u.name] = Upstream::Create(u, impl->options.io);
  }
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

void Gateway::SetBaseUrl(std::string base_url) {
  if (!impl_->options.config.public_url.empty()) return;
  while (!base_url.empty() && base_url.back() == '/') base_url.pop_back();
  impl_->base_url = std::move(base_url);
}

void Gateway::Start() {
  Impl* impl = impl_.get();
  impl->keepalive = std::thread([impl] { impl->KeepAliveLoop(); });
  for (auto& [name, up] : impl_->upstreams) {
    Upstream* u = up.get();
    up->SetNotificationHandler([impl, u](const std::string& method, const json::object& params,
                                         std::optional<int64_t> related) {
      impl->OnUpstreamNotification(*u, method, params, related);
    });
    up->SetServerRequestHandler([impl, u](const json::value& id, const std::string& method, const json::object& params,
                                          std::optional<int64_t> related) {
      impl->OnUpstreamRequest(*u, id, method, params, related);
    });
    up->SetReadyHandler([impl, u] { impl->OnUpstreamReady(*u); });
    up->Start();
    spdlog::info("MCP gateway: upstream \"{}\" at {}", name, impl_->ResourceUrl(name));
  }
}

bool Gateway::Owns(std::string_view path) {
  return (path.rfind(kMcpPrefix, 0) == 0 && path.size() > kMcpPrefix.size()) ||
         (path.rfind(kPrmPrefix, 0) == 0 && path.size() > kPrmPrefix.size());
}

void Gateway::Handle(HttpServerRequest request, Respond respond, StartStream start_stream) {
  impl_->Handle(std::move(request), std::move(respond), std::move(start_stream));
}

}  // namespace mandate::mcp
