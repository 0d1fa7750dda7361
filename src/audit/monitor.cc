#include "audit/monitor.h"

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"

#include "audit/fields.h"
#include "audit/reader.h"

namespace mandate::audit {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;

namespace {

// Sends `req` on a connected stream and reads the answer; all within the stream's deadline.
template <typename Stream>
void Exchange(Stream& stream, http::request<http::string_body>& req, http::response<http::string_body>& res,
              beast::flat_buffer& buf, beast::error_code& result) {
  http::async_write(stream, req, [&](beast::error_code ec, size_t) {
    if (ec) {
      result = ec;
      return;
    }
    http::async_read(stream, buf, res, [&](beast::error_code ec2, size_t) { result = ec2; });
  });
}

}  // namespace

absl::Status PostJson(const std::string& url, const std::string& body, double timeout_seconds) {
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return absl::InvalidArgumentError(absl::StrCat("not a URL: ", url));
  const bool tls = parsed->scheme() == "https";
  const std::string host(parsed->host());
  const std::string port = parsed->has_port() ? std::string(parsed->port()) : (tls ? "443" : "80");
  std::string target(parsed->encoded_target());
  if (target.empty()) target = "/";

  net::io_context ioc;
  beast::error_code result = net::error::timed_out;
  http::request<http::string_body> req{http::verb::post, target, 11};
  req.set(http::field::host, host);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::user_agent, "mandate-audit");
  req.body() = body;
  req.prepare_payload();
  http::response<http::string_body> res;
  beast::flat_buffer buf;
  const auto deadline = std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));

  tcp::resolver resolver(ioc);
  beast::error_code ec;
  const auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return absl::UnavailableError(absl::StrCat("cannot resolve ", host, ": ", ec.message()));
  net::ssl::context ctx(net::ssl::context::tls_client);
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls_stream;
  std::optional<beast::tcp_stream> plain;
  if (tls) {
    ctx.set_default_verify_paths();
    ctx.set_verify_mode(net::ssl::verify_peer);
    tls_stream.emplace(ioc, ctx);
    SSL_set_tlsext_host_name(tls_stream->native_handle(), host.c_str());
    tls_stream->set_verify_callback(net::ssl::host_name_verification(host));
    beast::get_lowest_layer(*tls_stream).expires_after(deadline);
    beast::get_lowest_layer(*tls_stream).async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
      if (e) {
        result = e;
        return;
      }
      tls_stream->async_handshake(net::ssl::stream_base::client, [&](beast::error_code e2) {
        if (e2) {
          result = e2;
          return;
        }
        Exchange(*tls_stream, req, res, buf, result);
      });
    });
  } else {
    plain.emplace(ioc);
    plain->expires_after(deadline);
    plain->async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) {
      if (e) {
        result = e;
        return;
      }
      Exchange(*plain, req, res, buf, result);
    });
  }
  ioc.run();
  if (result) return absl::UnavailableError(absl::StrCat("POST ", url, ": ", result.message()));
  if (res.result_int() < 200 || res.result_int() >= 300) {
    return absl::UnavailableError(absl::StrCat("POST ", url, ": HTTP ", res.result_int()));
  }
  return absl::OkStatus();
}

namespace {

// One destination: a bounded queue drained by its own thread in batches, each delivery retried
// with exponential backoff; what cannot be queued or delivered is dropped and counted.
class Sink {
 public:
  using Deliver = std::function<absl::Status(const std::vector<std::string>&)>;
  using OnFailure = std::function<void(const std::string& sink, const std::string& error)>;

  Sink(std::string name, std::vector<std::string> kinds, WebhookConfig limits, Deliver deliver, OnFailure on_failure)
      : name_(std::move(name)),
        kinds_(std::move(kinds)),
        limits_(std::move(limits)),
        deliver_(std::move(deliver)),
        on_failure_(std::move(on_failure)),
        thread_([this] { Run(); }) {}

  ~Sink() {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  const std::string& name() const { return name_; }
  bool Wants(std::string_view kind) const {
    return kinds_.empty() || std::find(kinds_.begin(), kinds_.end(), kind) != kinds_.end();
  }

  void Offer(std::string record) {
    {
      std::lock_guard<std::mutex> l(mu_);
      if (queue_.size() >= limits_.max_queue) {
        ++dropped_;
        return;
      }
      queue_.push_back(std::move(record));
    }
    cv_.notify_one();
  }

  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> dropped_{0};
  std::atomic<uint64_t> failures_{0};

 private:
  void Run() {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      // Wait for a full batch, or a partial one for up to flush_seconds.
      const auto flush = std::chrono::milliseconds(static_cast<int64_t>(limits_.flush_seconds * 1000));
      cv_.wait(l, [&] { return !queue_.empty() || stop_; });
      if (queue_.empty() && stop_) return;
      cv_.wait_for(l, flush, [&] { return queue_.size() >= limits_.batch_size || stop_; });
      std::vector<std::string> batch;
      while (!queue_.empty() && batch.size() < limits_.batch_size) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      const bool stopping = stop_;
      l.unlock();
      absl::Status s;
      double backoff = limits_.backoff_seconds;
      const int attempts = stopping ? 1 : limits_.max_attempts;
      for (int attempt = 1; attempt <= attempts; ++attempt) {
        s = deliver_(batch);
        if (s.ok()) break;
        if (attempt < attempts) {
          std::unique_lock<std::mutex> w(mu_);
          if (cv_.wait_for(w, std::chrono::milliseconds(static_cast<int64_t>(backoff * 1000)), [&] { return stop_; })) {
            break;
          }
          backoff *= 2;
        }
      }
      if (s.ok()) {
        delivered_ += batch.size();
      } else {
        dropped_ += batch.size();
        ++failures_;
        if (on_failure_) on_failure_(name_, std::string(s.message()));
      }
      l.lock();
    }
  }

  const std::string name_;
  const std::vector<std::string> kinds_;
  const WebhookConfig limits_;
  const Deliver deliver_;
  const OnFailure on_failure_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: started once the rest is ready
};

std::string TypeOf(std::string_view resource) { return std::string(resource.substr(0, resource.find(':'))); }

}  // namespace

struct Monitor::State {
  AuditLog* log = nullptr;
  Config config;
  int subscription = 0;
  std::vector<std::unique_ptr<Sink>> record_sinks;           // stdout, [[audit.webhooks]]
  std::map<std::string, std::unique_ptr<Sink>> alert_sinks;  // by URL
  std::map<std::string, std::vector<Sink*>> sinks_of_rule;   // rule name -> its alert sinks
  std::map<std::string, std::vector<Sink*>> sinks_of_owner;  // "Type:id" -> its alert sinks
  OwnerOf owner_of;

  // The rule thread's queue: written records, and sink failures to turn into alerts.
  struct Event {
    std::shared_ptr<const std::vector<Written>> records;  // null for a sink failure
    std::string failed_sink, failure;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Event> events;
  size_t queued_records = 0;
  bool stop = false;
  std::thread thread;
  std::atomic<uint64_t> dropped{0};  // records the rule thread had no room for

  // Rule state (rule thread only).
  std::map<std::pair<std::string, std::string>, std::deque<int64_t>> windows;  // (rule, actor) -> times
  std::map<std::pair<std::string, std::string>, int64_t> last_fired;
  std::set<std::string> seen;  // first_use: "actor\naction:x" / "actor\ntype:T"
  mutable std::mutex counts_mu;
  std::map<std::string, uint64_t> fired;  // by rule

  void Run();
  void Evaluate(const Written& w, const RecordFields& f);
  bool Count(const AlertRule& r, const std::string& actor, int64_t t);
  bool Cooled(const AlertRule& r, const std::string& key, int64_t t);
  void Fire(const AlertRule& r, json::object alert);
  void Seed();
  void Route(const std::vector<Written>& written);
};

bool Monitor::State::Cooled(const AlertRule& r, const std::string& key, int64_t t) {
  auto& last = last_fired[{r.name, key}];
  if (last != 0 && t - last < static_cast<int64_t>(r.cooldown_seconds * 1e6)) return false;
  last = t;
  return true;
}

bool Monitor::State::Count(const AlertRule& r, const std::string& actor, int64_t t) {
  std::deque<int64_t>& times = windows[{r.name, actor}];
  times.push_back(t);
  const int64_t window = static_cast<int64_t>(r.window_seconds * 1e6);
  while (!times.empty() && times.front() <= t - window) times.pop_front();
  return times.size() >= static_cast<size_t>(r.threshold);
}

void Monitor::State::Fire(const AlertRule& r, json::object alert) {
  alert["kind"] = "alert";
  alert["rule"] = r.name;
  alert["type"] = RuleTypeName(r.type);
  if (const json::value* actor = alert.if_contains("actor");
      owner_of != nullptr && actor != nullptr && actor->is_string()) {
    if (std::string owner = owner_of(std::string(actor->as_string())); !owner.empty()) alert["owner"] = owner;
  }
  {
    std::lock_guard<std::mutex> l(counts_mu);
    ++fired[r.name];
  }
  // Appended like any record; delivered to the webhooks once written (Route).
  log->Append({json::serialize(alert)}, nullptr);
}

void Monitor::State::Evaluate(const Written& w, const RecordFields& f) {
  const std::string_view kind = f.kind();
  if (kind != "decision" && kind != "admin") return;
  const std::string actor(f.actor());
  const std::string action(f.action());
  const std::string resource(f.resource());
  const std::string_view decision = f.decision();
  const bool is_agent = f.agent;
  const int64_t t = w.time_us;
  auto base = [&](std::string message) {
    json::object a{{"message", std::move(message)}, {"trigger_seq", w.seq}};
    if (!actor.empty()) a["actor"] = actor;
    if (is_agent) a["agent"] = true;
    if (!action.empty()) a["action"] = action;
    if (!resource.empty()) a["resource"] = resource;
    return a;
  };
  for (const AlertRule& r : config.rules) {
    switch (r.type) {
      case AlertRule::Type::kDenyBurst:
      case AlertRule::Type::kRateLimit:
      case AlertRule::Type::kDestructive: {
        bool counts = false;
        std::string what;
        if (r.type == AlertRule::Type::kDenyBurst) {
          counts = kind == "decision" && decision == "deny";
          what = "denied request(s)";
        } else if (r.type == AlertRule::Type::kRateLimit) {
          counts = decision == "rate_limited" || f.status == 429;
          what = "rate-limited request(s)";
        } else {
          counts = decision != "deny" && std::find(r.actions.begin(), r.actions.end(), action) != r.actions.end();
          what = absl::StrCat("destructive action(s) (", absl::StrJoin(r.actions, ", "), ")");
        }
        if (!counts || !Count(r, actor, t) || !Cooled(r, actor, t)) break;
        const size_t n = windows[{r.name, actor}].size();
        json::object a = base(absl::StrCat(actor.empty() ? "a caller" : actor, ": ", n, " ", what, " within ",
                                           r.window_seconds, "s (threshold ", r.threshold, ")"));
        a["detail"] = json::object{{"count", n}, {"window_seconds", r.window_seconds}, {"threshold", r.threshold}};
        Fire(r, std::move(a));
        break;
      }
      case AlertRule::Type::kOffHours: {
        if (kind != "decision") break;
        const absl::CivilSecond c = absl::ToCivilSecond(absl::FromUnixMicros(t), absl::UTCTimeZone());
        const int minute = c.hour() * 60 + c.minute();
        const bool in_hours = r.start_minute <= r.end_minute ? minute >= r.start_minute && minute < r.end_minute
                                                             : minute >= r.start_minute || minute < r.end_minute;
        const int day = static_cast<int>(absl::GetWeekday(absl::CivilDay(c)));  // Monday = 0
        const int sunday_based = (day + 1) % 7;
        const bool in_days = r.days.empty() || std::find(r.days.begin(), r.days.end(), sunday_based) != r.days.end();
        if ((in_hours && in_days) || !Cooled(r, actor, t)) break;
        Fire(r,
             base(absl::StrCat(actor.empty() ? "a caller" : actor, " acted outside the allowed hours (",
                               absl::FormatTime("%a %H:%M UTC", absl::FromUnixMicros(t), absl::UTCTimeZone()), ")")));
        break;
      }
      case AlertRule::Type::kFirstUse: {
        if (kind != "decision" || !is_agent) break;
        for (const std::string& key : {absl::StrCat("action:", action), absl::StrCat("type:", TypeOf(resource))}) {
          if (key.size() <= 5 || !seen.insert(absl::StrCat(actor, "\n", key)).second) continue;
          Fire(r, base(absl::StrCat("agent ", actor, " used ",
                                    key[0] == 'a' ? absl::StrCat("action \"", action, "\"")
                                                  : absl::StrCat("resource type ", TypeOf(resource)),
                                    " for the first time")));
        }
        break;
      }
      case AlertRule::Type::kSinkFailure:
        break;  // from Run()
    }
  }
}

void Monitor::State::Seed() {
  // first_use must not fire again for what agents did before this start.
  bool wanted = false;
  for (const AlertRule& r : config.rules) wanted |= r.type == AlertRule::Type::kFirstUse;
  if (!wanted) return;
  Filter f;
  f.kind = "decision";
  f.agent_only = true;
  absl::StatusOr<std::vector<Found>> found = QueryNewestFirst(log->dir(), f, SIZE_MAX);
  if (!found.ok()) return;
  RecordFields fields;
  for (const Found& r : *found) {
    if (!ReadRecordFields(r.json, &fields)) continue;
    const std::string actor(fields.actor());
    seen.insert(absl::StrCat(actor, "\naction:", std::string(fields.action())));
    seen.insert(absl::StrCat(actor, "\ntype:", TypeOf(fields.resource())));
  }
}

void Monitor::State::Route(const std::vector<Written>& written) {
  RecordFields f;
  for (const Written& w : written) {
    if (w.type != RecordType::kEntry || !ReadRecordFields(w.body, &f)) continue;
    RecordView r;
    r.seq = w.seq;
    r.time_us = w.time_us;
    r.body = w.body;
    std::string rendered;
    const std::string_view kind = f.kind();
    for (auto& sink : record_sinks) {
      if (!sink->Wants(kind)) continue;
      if (rendered.empty()) rendered = RenderRecord(r);
      sink->Offer(rendered);
    }
    if (kind == "alert") {
      if (rendered.empty()) rendered = RenderRecord(r);
      // The rule's webhooks and the owner's, each URL once.
      std::set<Sink*> to;
      if (auto it = sinks_of_rule.find(std::string(f.rule())); it != sinks_of_rule.end())
        to.insert(it->second.begin(), it->second.end());
      if (auto it = sinks_of_owner.find(std::string(f.owner())); it != sinks_of_owner.end())
        to.insert(it->second.begin(), it->second.end());
      for (Sink* s : to) s->Offer(rendered);
      continue;
    }
    if (!config.rules.empty()) Evaluate(w, f);
  }
}

void Monitor::State::Run() {
  Seed();
  std::unique_lock<std::mutex> l(mu);
  for (;;) {
    cv.wait(l, [&] { return !events.empty() || stop; });
    if (events.empty() && stop) return;
    Event e = std::move(events.front());
    events.pop_front();
    if (e.records != nullptr) queued_records -= e.records->size();
    l.unlock();
    if (!e.failed_sink.empty()) {
      const int64_t t = NowMicros();
      for (const AlertRule& r : config.rules) {
        if (r.type != AlertRule::Type::kSinkFailure || !Cooled(r, e.failed_sink, t)) continue;
        Fire(r, json::object{{"message", absl::StrCat("audit sink ", e.failed_sink, " failed: ", e.failure)},
                             {"sink", e.failed_sink}});
      }
    }
    if (e.records != nullptr) Route(*e.records);
    l.lock();
  }
}

absl::StatusOr<std::unique_ptr<Monitor>> Monitor::Start(AuditLog* log, const Config& config, OwnerOf owner_of) {
  auto state = std::make_shared<State>();
  state->log = log;
  state->config = config;
  state->owner_of = std::move(owner_of);
  std::weak_ptr<State> weak = state;
  auto on_failure = [weak](const std::string& sink, const std::string& error) {
    auto s = weak.lock();
    if (s == nullptr) return;
    {
      std::lock_guard<std::mutex> l(s->mu);
      s->events.push_back(State::Event{nullptr, sink, error});
    }
    s->cv.notify_one();
  };
  if (config.stdout_sink) {
    WebhookConfig limits;
    limits.name = "stdout";
    limits.flush_seconds = 0.05;
    state->record_sinks.push_back(std::make_unique<Sink>(
        "stdout", std::vector<std::string>{}, limits,
        [](const std::vector<std::string>& batch) {
          for (const std::string& line : batch) std::fprintf(stdout, "%s\n", line.c_str());
          return std::fflush(stdout) == 0 ? absl::OkStatus() : absl::UnavailableError("cannot write to stdout");
        },
        on_failure));
  }
  auto webhook = [](const WebhookConfig& w) {
    return [url = w.url, timeout = w.timeout_seconds](const std::vector<std::string>& batch) {
      return PostJson(url, absl::StrCat("[", absl::StrJoin(batch, ","), "]"), timeout);
    };
  };
  for (const WebhookConfig& w : config.webhooks) {
    state->record_sinks.push_back(std::make_unique<Sink>(w.name, w.kinds, w, webhook(w), on_failure));
  }
  // One sink per alert URL, shared by the rules and owners that name it.
  auto alert_sink = [&](const std::string& url) {
    auto& sink = state->alert_sinks[url];
    if (sink == nullptr) {
      WebhookConfig w;
      w.name = absl::StrCat("alerts:", url);
      w.url = url;
      w.flush_seconds = 0.05;  // alerts go out at once
      // A failing alert webhook must not raise alerts about itself without end.
      sink = std::make_unique<Sink>(w.name, std::vector<std::string>{"alert"}, w, webhook(w), on_failure);
    }
    return sink.get();
  };
  for (const AlertRule& r : config.rules) {
    std::vector<std::string> urls = r.webhooks;
    urls.insert(urls.end(), config.alert_webhooks.begin(), config.alert_webhooks.end());
    for (const std::string& url : urls) state->sinks_of_rule[r.name].push_back(alert_sink(url));
  }
  for (const OwnerWebhooks& o : config.owner_webhooks) {
    for (const std::string& url : o.webhooks) state->sinks_of_owner[o.owner].push_back(alert_sink(url));
  }
  state->thread = std::thread([s = state.get()] { s->Run(); });
  // With no sink and no rule there is nothing to watch: the records are not even handed over.
  if (config.rules.empty() && state->record_sinks.empty()) {
    state->subscription = 0;
  } else {
    state->subscription = log->Subscribe([weak](const std::shared_ptr<const std::vector<Written>>& written) {
      auto s = weak.lock();
      if (s == nullptr) return;
      {
        std::lock_guard<std::mutex> l(s->mu);
        if (s->queued_records + written->size() > 1'000'000) {
          s->dropped += written->size();
          return;
        }
        s->queued_records += written->size();
        s->events.push_back(State::Event{written, "", ""});
      }
      s->cv.notify_one();
    });
  }
  auto m = std::unique_ptr<Monitor>(new Monitor());
  m->state_ = std::move(state);
  return m;
}

Monitor::~Monitor() {
  state_->log->Unsubscribe(state_->subscription);
  {
    std::lock_guard<std::mutex> l(state_->mu);
    state_->stop = true;
  }
  state_->cv.notify_all();
  state_->thread.join();
  state_->record_sinks.clear();  // each delivers what it holds, once
  state_->alert_sinks.clear();
}

std::string Monitor::MetricsText() const {
  const LogStats st = state_->log->stats();
  std::string out = absl::StrCat(
      "# HELP mandate_audit_records_total Audit records written to the log.\n"
      "# TYPE mandate_audit_records_total counter\nmandate_audit_records_total ",
      st.appended,
      "\n# HELP mandate_audit_write_failures_total Audit records that could not be written (their requests got 503).\n"
      "# TYPE mandate_audit_write_failures_total counter\nmandate_audit_write_failures_total ",
      st.failed,
      "\n# HELP mandate_audit_checkpoints_total Signed checkpoints written.\n"
      "# TYPE mandate_audit_checkpoints_total counter\nmandate_audit_checkpoints_total ",
      st.checkpoints,
      "\n# HELP mandate_audit_syncs_total fdatasync calls of the audit log (group commits).\n"
      "# TYPE mandate_audit_syncs_total counter\nmandate_audit_syncs_total ",
      st.syncs, "\n# HELP mandate_audit_last_seq Sequence number of the last audit record.\n",
      "# TYPE mandate_audit_last_seq gauge\nmandate_audit_last_seq ", st.last_seq,
      "\n# HELP mandate_audit_monitor_dropped_total Records the alert rules and sinks had no room for.\n"
      "# TYPE mandate_audit_monitor_dropped_total counter\nmandate_audit_monitor_dropped_total ",
      state_->dropped.load(), "\n");
  absl::StrAppend(&out,
                  "# HELP mandate_audit_sink_delivered_total Records delivered by each sink.\n"
                  "# TYPE mandate_audit_sink_delivered_total counter\n"
                  "# HELP mandate_audit_sink_dropped_total Records a sink dropped (queue full or delivery gave up).\n"
                  "# TYPE mandate_audit_sink_dropped_total counter\n"
                  "# HELP mandate_audit_sink_failures_total Batches a sink gave up on after its retries.\n"
                  "# TYPE mandate_audit_sink_failures_total counter\n");
  auto sink_lines = [&](const Sink& s) {
    std::string label = s.name();
    for (char& c : label) {
      if (c == '"' || c == '\\' || c == '\n') c = '_';
    }
    absl::StrAppend(&out, "mandate_audit_sink_delivered_total{sink=\"", label, "\"} ", s.delivered_.load(), "\n",
                    "mandate_audit_sink_dropped_total{sink=\"", label, "\"} ", s.dropped_.load(), "\n",
                    "mandate_audit_sink_failures_total{sink=\"", label, "\"} ", s.failures_.load(), "\n");
  };
  for (const auto& s : state_->record_sinks) sink_lines(*s);
  for (const auto& [url, s] : state_->alert_sinks) sink_lines(*s);
  absl::StrAppend(&out,
                  "# HELP mandate_alerts_fired_total Alerts fired, by rule.\n"
                  "# TYPE mandate_alerts_fired_total counter\n");
  std::lock_guard<std::mutex> l(state_->counts_mu);
  for (const AlertRule& r : state_->config.rules) {
    absl::StrAppend(&out, "mandate_alerts_fired_total{rule=\"", r.name, "\"} ",
                    state_->fired.count(r.name) ? state_->fired.at(r.name) : 0, "\n");
  }
  return out;
}

}  // namespace mandate::audit
