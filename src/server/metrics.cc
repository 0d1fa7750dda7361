#include "server/metrics.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mandate::server {
namespace {

// Label values are route patterns and names we define, but escape anyway as the format requires.
std::string Label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

// A latency histogram over upper bounds in seconds. Recording takes no lock; the counts are kept
// per bucket, the last one for values above every bound, so that their sum is the count however a
// scrape interleaves with the updates.
template <size_t N>
class Histogram {
 public:
  explicit Histogram(const std::array<double, N>& bounds) : bounds_(bounds) {}

  void Record(double seconds) {
    sum_ns_.fetch_add(static_cast<uint64_t>(std::max(0.0, seconds) * 1e9), std::memory_order_relaxed);
    size_t i = 0;
    while (i < N && seconds > bounds_[i]) ++i;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
  }

  // Appends the series of histogram `name` with `labels` (`key="value"` pairs, escaped); nothing
  // when it counted nothing yet.
  void Render(std::string* out, absl::string_view name, absl::string_view labels) const {
    std::array<uint64_t, N + 1> counts;
    uint64_t count = 0;
    for (size_t i = 0; i <= N; ++i) count += counts[i] = counts_[i].load(std::memory_order_relaxed);
    if (count == 0) return;
    uint64_t cumulative = 0;
    for (size_t i = 0; i < N; ++i) {
      cumulative += counts[i];
      absl::StrAppend(out, name, "_bucket{", labels, ",le=\"", absl::StrFormat("%g", bounds_[i]), "\"} ", cumulative,
                      "\n");
    }
    absl::StrAppend(out, name, "_bucket{", labels, ",le=\"+Inf\"} ", count, "\n", name, "_sum{", labels, "} ",
                    absl::StrFormat("%.9g", sum_ns_.load(std::memory_order_relaxed) / 1e9), "\n", name, "_count{",
                    labels, "} ", count, "\n");
  }

 private:
  const std::array<double, N>& bounds_;
  std::array<std::atomic<uint64_t>, N + 1> counts_{};
  std::atomic<uint64_t> sum_ns_{0};
};

// The methods of MCP (2025-11-25) that label mandate_mcp_messages_total; others count as "other",
// so that a client or an upstream cannot grow the label set.
constexpr std::string_view kMcpMethods[] = {"initialize",
                                            "ping",
                                            "tools/list",
                                            "tools/call",
                                            "resources/list",
                                            "resources/read",
                                            "resources/templates/list",
                                            "resources/subscribe",
                                            "resources/unsubscribe",
                                            "prompts/list",
                                            "prompts/get",
                                            "completion/complete",
                                            "logging/setLevel",
                                            "sampling/createMessage",
                                            "elicitation/create",
                                            "roots/list"};

}  // namespace

// One upstream of the MCP gateway.
struct Metrics::McpUpstream {
  Histogram<kBuckets.size()> upstream{kBuckets};
  Histogram<kGatewayBuckets.size()> gateway{kGatewayBuckets};
};

class Metrics::RouteCounters {
 public:
  void Record(int status, double seconds) {
    if (!CountInSlot(status)) {
      std::lock_guard<std::mutex> l(overflow_mu);
      ++overflow[status];
    }
    latency.Record(seconds);
  }

  // (status, count) pairs in status order.
  std::map<int, uint64_t> ByStatus() const {
    std::map<int, uint64_t> out;
    for (const Slot& s : slots) {
      if (const int code = s.status.load(std::memory_order_acquire); code != 0)
        out[code] += s.n.load(std::memory_order_relaxed);
    }
    std::lock_guard<std::mutex> l(overflow_mu);
    for (const auto& [code, n] : overflow) out[code] += n;
    return out;
  }

  Histogram<kBuckets.size()> latency{kBuckets};

 private:
  // A route answers with a handful of statuses: each gets a slot, claimed once with a CAS; more
  // than kSlots distinct statuses go to a locked map.
  static constexpr size_t kSlots = 16;
  struct Slot {
    std::atomic<int> status{0};
    std::atomic<uint64_t> n{0};
  };

  bool CountInSlot(int status) {
    for (Slot& s : slots) {
      int code = s.status.load(std::memory_order_acquire);
      if (code == 0) {
        // A failed CAS leaves in `expected` the status another thread claimed the slot for.
        int expected = 0;
        code = s.status.compare_exchange_strong(expected, status, std::memory_order_acq_rel) ? status : expected;
      }
      if (code == status) {
        s.n.fetch_add(1, std::memory_order_relaxed);
        return true;
      }
    }
    return false;
  }

  std::array<Slot, kSlots> slots;
  mutable std::mutex overflow_mu;
  std::map<int, uint64_t> overflow;
};

Metrics::Metrics() = default;
Metrics::~Metrics() = default;

Metrics::RouteCounters* Metrics::Route(const std::string& route) {
  std::lock_guard<std::mutex> l(mu_);
  std::unique_ptr<RouteCounters>& r = routes_[route];
  if (r == nullptr) r = std::make_unique<RouteCounters>();
  return r.get();
}

void Metrics::RecordRequest(RouteCounters* route, int status, double seconds) { route->Record(status, seconds); }

void Metrics::RecordDecision(bool allowed) { (allowed ? allowed_ : denied_).fetch_add(1, std::memory_order_relaxed); }

void Metrics::RecordDecisions(uint64_t allowed, uint64_t denied) {
  if (allowed > 0) allowed_.fetch_add(allowed, std::memory_order_relaxed);
  if (denied > 0) denied_.fetch_add(denied, std::memory_order_relaxed);
}

std::string Metrics::Render(const Gauges& g) const {
  std::string out;
  absl::StrAppend(&out,
                  "# HELP mandate_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE mandate_http_requests_total counter\n");
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [route, r] : routes_) {
    for (const auto& [status, n] : r->ByStatus()) {
      absl::StrAppend(&out, "mandate_http_requests_total{route=\"", Label(route), "\",status=\"", status, "\"} ", n,
                      "\n");
    }
  }
  absl::StrAppend(&out,
                  "# HELP mandate_http_request_duration_seconds Time from a complete request to its response.\n"
                  "# TYPE mandate_http_request_duration_seconds histogram\n");
  for (const auto& [route, r] : routes_) {
    r->latency.Render(&out, "mandate_http_request_duration_seconds", absl::StrCat("route=\"", Label(route), "\""));
  }
  absl::StrAppend(&out,
                  "# HELP mandate_decisions_total Authorization decisions by outcome.\n"
                  "# TYPE mandate_decisions_total counter\n"
                  "mandate_decisions_total{outcome=\"allow\"} ",
                  allowed_.load(), "\nmandate_decisions_total{outcome=\"deny\"} ", denied_.load(), "\n");
  absl::StrAppend(
      &out, "# HELP mandate_facts Stored facts in the serving snapshot.\n# TYPE mandate_facts gauge\nmandate_facts ",
      g.facts,
      "\n# HELP mandate_revision Revision of the serving snapshot.\n# TYPE mandate_revision gauge\n"
      "mandate_revision ",
      g.revision,
      "\n# HELP mandate_policy_version Version number of the active policy (0 = none).\n"
      "# TYPE mandate_policy_version gauge\nmandate_policy_version ",
      g.policy_version, "\n# HELP mandate_ready 1 when the server serves requests.\n",
      "# TYPE mandate_ready gauge\nmandate_ready ", g.ready ? 1 : 0, "\n");
  RenderMcp(&out);
  return out;
}

void Metrics::RecordMcpMessage(std::string_view upstream, std::string_view method, std::string_view decision) {
  const bool known = std::find(std::begin(kMcpMethods), std::end(kMcpMethods), method) != std::end(kMcpMethods);
  const std::tuple<std::string_view, std::string_view, std::string_view> key(upstream, known ? method : "other",
                                                                             decision);
  std::lock_guard<std::mutex> l(mcp_mu_);
  auto it = mcp_messages_.find(key);  // no strings built for a series that exists
  if (it == mcp_messages_.end()) {
    it = mcp_messages_
             .emplace(std::make_tuple(std::string(upstream), std::string(std::get<1>(key)), std::string(decision)), 0)
             .first;
  }
  ++it->second;
}

void Metrics::RecordMcpForwarded(std::string_view upstream, double upstream_seconds, double gateway_seconds) {
  McpUpstream* u;
  {
    std::lock_guard<std::mutex> l(mcp_mu_);
    auto it = mcp_upstreams_.find(upstream);
    if (it == mcp_upstreams_.end())
      it = mcp_upstreams_.emplace(std::string(upstream), std::make_unique<McpUpstream>()).first;
    u = it->second.get();
  }
  u->upstream.Record(upstream_seconds);
  u->gateway.Record(gateway_seconds);
}

void Metrics::RenderMcp(std::string* out) const {
  std::lock_guard<std::mutex> l(mcp_mu_);
  if (mcp_messages_.empty() && mcp_upstreams_.empty()) return;  // no MCP gateway, or not used yet
  absl::StrAppend(out,
                  "# HELP mandate_mcp_messages_total MCP messages the gateway checked, by upstream, method and "
                  "decision.\n# TYPE mandate_mcp_messages_total counter\n");
  for (const auto& [key, n] : mcp_messages_) {
    const auto& [upstream, method, decision] = key;
    absl::StrAppend(out, "mandate_mcp_messages_total{upstream=\"", Label(upstream), "\",method=\"", Label(method),
                    "\",decision=\"", Label(decision), "\"} ", n, "\n");
  }
  absl::StrAppend(out,
                  "# HELP mandate_mcp_upstream_seconds Forwarded requests, from their hand-over to the upstream "
                  "client to the decoded answer.\n# TYPE mandate_mcp_upstream_seconds histogram\n");
  for (const auto& [upstream, u] : mcp_upstreams_) {
    u->upstream.Render(out, "mandate_mcp_upstream_seconds", absl::StrCat("upstream=\"", Label(upstream), "\""));
  }
  absl::StrAppend(out,
                  "# HELP mandate_mcp_gateway_seconds The gateway's own time on a forwarded request: from the "
                  "request at its handler to the upstream client, plus from the decoded answer to the reply.\n"
                  "# TYPE mandate_mcp_gateway_seconds histogram\n");
  for (const auto& [upstream, u] : mcp_upstreams_) {
    u->gateway.Render(out, "mandate_mcp_gateway_seconds", absl::StrCat("upstream=\"", Label(upstream), "\""));
  }
}

}  // namespace mandate::server
