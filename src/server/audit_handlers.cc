// The audit side of the API: writing each request's audit records (RecordAndRespond, called by
// Finish) and the endpoints that read the log: GET /v1/audit, /v1/audit/checkpoints,
// /v1/audit/stream (server-sent events) and /v1/alerts. docs/audit.md describes them.
#include <mutex>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "audit/log.h"
#include "audit/reader.h"
#include "server/api.h"
#include "server/status_macros.h"

namespace mandate::server {

namespace http = boost::beast::http;
namespace json = boost::json;

std::shared_ptr<const std::string> DecisionContext(const json::object* request) {
  if (request == nullptr) return nullptr;
  const json::value* ctx = request->if_contains("context_facts");
  if (ctx == nullptr || ctx->is_null()) return nullptr;
  return std::make_shared<const std::string>(absl::StrCat("{\"context_facts\":", json::serialize(*ctx), "}"));
}

audit::Entry DecisionRecord(const TypedValue& actor, std::string action, std::string resource, bool allowed,
                            std::shared_ptr<const std::string> context) {
  audit::Entry e = audit::DecisionEntry(actor, std::move(action), std::move(resource), allowed);
  e.context_json = std::move(context);
  return e;
}

audit::Entry DecisionRecord(const TypedValue& actor, std::string action, std::string resource, bool allowed,
                            const json::object* request) {
  return DecisionRecord(actor, std::move(action), std::move(resource), allowed, DecisionContext(request));
}

audit::Entry ChangesRecord(std::string action, const std::vector<LabeledChange>& changes) {
  constexpr size_t kListed = 100;  // the rest is counted; the whole request is in the store's changelog
  audit::Entry e;
  e.kind = "admin";
  e.action = std::move(action);
  size_t inserts = 0;
  size_t deletes = 0;
  json::array listed;
  for (const LabeledChange& c : changes) {
    const bool insert = c.change.kind == Change::Kind::kInsert;
    (insert ? inserts : deletes)++;
    if (listed.size() >= kListed) continue;
    if (insert) {
      listed.emplace_back(absl::StrCat("insert ", ToString(c.change.fact)));
      continue;
    }
    std::string pattern = absl::StrCat("delete ", c.change.pattern.predicate, "(");
    for (size_t i = 0; i < c.change.pattern.arg_types.size(); ++i) {
      const auto& type = c.change.pattern.arg_types[i];
      const auto& id = i < c.change.pattern.arg_ids.size() ? c.change.pattern.arg_ids[i] : std::nullopt;
      absl::StrAppend(&pattern, i ? ", " : "", type.value_or("_"), ":", id.value_or("_"));
    }
    listed.emplace_back(pattern + ")");
  }
  e.detail = json::object{{"inserts", inserts}, {"deletes", deletes}, {"changes", std::move(listed)}};
  return e;
}

void Api::RecordAndRespond(Call& call, int status, const json::value& body, double seconds, Response res) {
  audit::RequestInfo info;
  info.request_id = call.request_id;
  info.api = call.route_label;
  info.client = std::string(PeerAddress(call.request));
  info.role = call.admin || call.role == Role::kAdmin ? RoleName(call.role) : "";
  info.status = status;
  if (status >= 400 && body.is_object()) {
    if (const json::value* m = body.as_object().if_contains("message"); m != nullptr && m->is_string()) {
      info.error = std::string(m->as_string());
    }
  }
  info.latency_us = static_cast<int64_t>(seconds * 1e6);
  if (auto v = service_.policy_version()) info.policy_version = v->version;
  info.revision = service_.revision();
  if (call.audit.empty()) {
    // An admin route whose handler recorded nothing itself (or that failed before it could).
    audit::Entry e;
    e.kind = "admin";
    e.action = call.route_label;
    call.audit.push_back(std::move(e));
  }
  const audit::RecordWriter writer(info, options_.audit_context_bytes);
  std::vector<std::string> bodies;
  bodies.reserve(call.audit.size());
  for (audit::Entry& e : call.audit) {
    if (e.kind == "admin" && e.actor.empty()) {
      e.actor =
          call.user ? absl::StrCat(call.user->type, ":", call.user->id) : absl::StrCat("ApiKey:", RoleName(call.role));
    }
    bodies.push_back(writer.Serialize(e));
  }
  // The call ends here: its responder and answer move into the callback (one allocation).
  options_.audit_log->Append(
      std::move(bodies), [respond = std::move(call.respond), res = std::move(res)](absl::Status s) mutable {
        if (!s.ok()) {
          // Fail closed: an answer whose record cannot be kept is not given.
          const std::string rid(res["X-Request-ID"]);
          spdlog::error("request {}: audit log: {}", rid, s.ToString());
          Response err{http::status::service_unavailable, res.version()};
          err.set(http::field::content_type, "application/json");
          err.set("X-Request-ID", rid);
          err.set("Retry-After", "1");
          err.body() = json::serialize(
              json::object{{"message", absl::StrCat("the audit log cannot record this request: ", s.message())}});
          return respond(std::move(err));
        }
        respond(std::move(res));
      });
}

namespace {

absl::Status BadParam(const std::string& name, std::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat("query parameter `", name, "`: ", std::string(problem)));
}

// The filters of GET /v1/audit and /v1/audit/stream, from the query string.
absl::StatusOr<audit::Filter> FilterOf(const Call& c) {
  audit::Filter f;
  for (const auto& [k, v] : c.params) {
    if (k == "actor") {
      f.actor = v;
    } else if (k == "agent") {
      if (v != "true" && v != "false") return BadParam(k, "must be true or false");
      f.agent_only = v == "true";
    } else if (k == "decision") {
      f.decision = v;
    } else if (k == "action") {
      f.action = v;
    } else if (k == "resource") {
      f.resource = v;
    } else if (k == "kind") {
      f.kind = v;
    } else if (k == "since" || k == "until") {
      absl::StatusOr<int64_t> t = audit::ParseTimeArg(v);
      if (!t.ok()) return BadParam(k, std::string(t.status().message()));
      (k == "since" ? f.since_us : f.until_us) = *t;
    } else if (k == "before" || k == "after") {
      uint64_t n = 0;
      if (!absl::SimpleAtoi(v, &n)) return BadParam(k, "must be a sequence number");
      (k == "before" ? f.before_seq : f.after_seq) = n;
    } else if (k != "limit") {
      return BadParam(k,
                      "unknown; filters are actor, agent, decision, action, resource, kind, since, until, "
                      "before, after and limit");
    }
  }
  return f;
}

absl::StatusOr<size_t> LimitOf(const Call& c) {
  std::optional<std::string> v = c.Param("limit");
  if (!v) return 100;
  size_t n = 0;
  if (!absl::SimpleAtoi(*v, &n) || n == 0 || n > 10'000) return BadParam("limit", "must be from 1 to 10000");
  return n;
}

json::array ParsedRecords(const std::vector<audit::Found>& found) {
  json::array out;
  out.reserve(found.size());
  for (const audit::Found& f : found) {
    boost::system::error_code ec;
    json::value v = json::parse(f.json, ec);
    out.emplace_back(ec ? json::value(f.json) : std::move(v));
  }
  return out;
}

absl::Status NoAuditLog() { return absl::FailedPreconditionError("the audit log is off ([audit] enabled = false)"); }

}  // namespace

absl::StatusOr<Reply> Api::AuditRecords(Call& c) {
  if (options_.audit_log == nullptr) return NoAuditLog();
  MANDATE_ASSIGN_OR_RETURN(audit::Filter filter, FilterOf(c));
  MANDATE_ASSIGN_OR_RETURN(size_t limit, LimitOf(c));
  MANDATE_ASSIGN_OR_RETURN(std::vector<audit::Found> found,
                           audit::QueryNewestFirst(options_.audit_log->dir(), filter, limit + 1));
  json::value next = nullptr;
  if (found.size() > limit) {
    found.resize(limit);
    next = found.back().seq;  // pass as ?before= for the next (older) page
  }
  return Reply{200, json::object{{"records", ParsedRecords(found)}, {"next_before", std::move(next)}}};
}

absl::StatusOr<Reply> Api::Alerts(Call& c) {
  if (options_.audit_log == nullptr) return NoAuditLog();
  MANDATE_ASSIGN_OR_RETURN(audit::Filter filter, FilterOf(c));
  filter.kind = "alert";
  MANDATE_ASSIGN_OR_RETURN(size_t limit, LimitOf(c));
  MANDATE_ASSIGN_OR_RETURN(std::vector<audit::Found> found,
                           audit::QueryNewestFirst(options_.audit_log->dir(), filter, limit));
  return Reply{200, json::object{{"alerts", ParsedRecords(found)}}};
}

absl::StatusOr<Reply> Api::AuditCheckpoints(Call& c) {
  if (options_.audit_log == nullptr) return NoAuditLog();
  absl::StatusOr<std::vector<audit::Checkpoint>> cps = audit::ReadCheckpoints(options_.audit_log->dir());
  if (!cps.ok() && cps.status().code() != absl::StatusCode::kNotFound) return cps.status();
  json::array out;
  if (cps.ok()) {
    for (auto it = cps->rbegin(); it != cps->rend(); ++it) {
      out.emplace_back(json::object{{"record_seq", it->record_seq},
                                    {"seals_through", it->seq},
                                    {"hash", audit::HexHash(it->hash)},
                                    {"time", audit::FormatTime(it->time_us)},
                                    {"key_id", it->key_id},
                                    {"signature", it->signature}});
    }
  }
  return Reply{200, json::object{{"checkpoints", std::move(out)},
                                 {"key_id", options_.audit_log->public_key().key_id()},
                                 {"public_key", options_.audit_log->public_key().Pem()}}};
}

namespace {

// One server-sent-events subscriber: records are sent in sequence order, without gaps or repeats
// between the backlog (after Last-Event-ID) and the live ones.
struct SseState {
  std::mutex mu;
  std::shared_ptr<ResponseStream> stream;
  audit::Filter filter;
  uint64_t last_sent = 0;
  bool open = true;
  int subscription = 0;

  void SendLocked(uint64_t seq, const std::string& json) {
    if (!open || seq <= last_sent) return;
    last_sent = seq;
    open = stream->Send(absl::StrCat("id: ", seq, "\nevent: audit\ndata: ", json, "\n\n"));
  }
};

void Heartbeat(boost::asio::io_context& io, audit::AuditLog* log, std::shared_ptr<SseState> state) {
  auto timer = std::make_shared<boost::asio::steady_timer>(io, std::chrono::seconds(15));
  timer->async_wait([&io, log, state, timer](boost::system::error_code ec) {
    bool open = false;
    {
      std::lock_guard<std::mutex> l(state->mu);
      if (!ec && state->open) state->open = state->stream->Send(": keep-alive\n\n");
      open = !ec && state->open;
    }
    if (!open) {
      // The client went away (or the server is stopping). Not under state->mu: the log holds its
      // subscriber lock while it calls the subscriber, which takes state->mu.
      log->Unsubscribe(state->subscription);
      state->stream->Close();
      return;
    }
    Heartbeat(io, log, state);
  });
}

}  // namespace

absl::StatusOr<Reply> Api::AuditStream(Call& c) {
  if (options_.audit_log == nullptr) return NoAuditLog();
  MANDATE_ASSIGN_OR_RETURN(audit::Filter filter, FilterOf(c));
  uint64_t resume = filter.after_seq;
  if (const auto last = c.request.find("Last-Event-ID"); last != c.request.end()) {
    if (!absl::SimpleAtoi(std::string(last->value()), &resume)) resume = 0;
  }
  Response header{http::status::ok, c.request.version()};
  header.set(http::field::server, "mandate");
  header.set(http::field::content_type, "text/event-stream");
  header.set(http::field::cache_control, "no-cache");
  header.set("X-Request-ID", c.request_id);
  auto state = std::make_shared<SseState>();
  state->stream = StartStream(c.respond, std::move(header));
  if (state->stream == nullptr) return absl::InternalError("this connection cannot stream");
  state->filter = filter;
  audit::AuditLog* log = options_.audit_log;
  std::lock_guard<std::mutex> l(state->mu);  // live records wait until the backlog is out
  state->subscription = log->Subscribe([state](const std::shared_ptr<const std::vector<audit::Written>>& written) {
    std::lock_guard<std::mutex> g(state->mu);
    for (const audit::Written& w : *written) {
      audit::RecordView r;
      r.type = w.type;
      r.seq = w.seq;
      r.time_us = w.time_us;
      r.body = w.body;
      if (audit::Matches(state->filter, r)) state->SendLocked(w.seq, audit::RenderRecord(r));
    }
  });
  state->stream->Send("retry: 1000\n\n");
  if (resume > 0) {
    audit::Filter backlog = filter;
    backlog.after_seq = std::max(backlog.after_seq, resume);
    absl::StatusOr<std::vector<audit::Found>> found = audit::QueryNewestFirst(log->dir(), backlog, 10'000);
    if (found.ok()) {
      for (auto it = found->rbegin(); it != found->rend(); ++it) state->SendLocked(it->seq, it->json);
    }
  }
  state->last_sent = std::max(state->last_sent, resume);
  Heartbeat(io_, log, state);
  // StartStream took over the answer; the Reply below only feeds the request metrics.
  return Reply{200, json::object{}};
}

}  // namespace mandate::server
