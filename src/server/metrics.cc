#include "server/metrics.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mandate::server {
namespace {

// Label values are route patterns we define, but escape anyway as the format requires.
std::string Label(const std::string& v) {
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

}  // namespace

class Metrics::RouteCounters {
 public:
  void Record(int status, double seconds) {
    if (!CountInSlot(status)) {
      std::lock_guard<std::mutex> l(overflow_mu);
      ++overflow[status];
    }
    sum_ns.fetch_add(static_cast<uint64_t>(seconds * 1e9), std::memory_order_relaxed);
    size_t i = 0;
    while (i < kBuckets.size() && seconds > kBuckets[i]) ++i;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
  }

  // (status, count) pairs in status order.
  std::map<int, uint64_t> ByStatus() const {
    std::map<int, uint64_t> out;
    for (const Slot& s : slots) {
      if (const int code = s.status.load(std::memory_order_acquire); code != 0) out[code] += s.n.load(std::memory_order_relaxed);
    }
    std::lock_guard<std::mutex> l(overflow_mu);
    for (const auto& [code, n] : overflow) out[code] += n;
    return out;
  }

  // Non-cumulative counts; the last one is for requests slower than every bound (+Inf only), so
  // that their sum is the request count, consistent however the updates interleave with a scrape.
  std::array<std::atomic<uint64_t>, kBuckets.size() + 1> buckets{};
  std::atomic<uint64_t> sum_ns{0};

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
    std::array<uint64_t, kBuckets.size() + 1> counts;
    uint64_t count = 0;
    for (size_t i = 0; i < counts.size(); ++i) count += counts[i] = r->buckets[i].load(std::memory_order_relaxed);
    if (count == 0) continue;  // registered, never requested
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += counts[i];
      absl::StrAppend(&out, "mandate_http_request_duration_seconds_bucket{route=\"", Label(route), "\",le=\"",
                      absl::StrFormat("%g", kBuckets[i]), "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "mandate_http_request_duration_seconds_bucket{route=\"", Label(route), "\",le=\"+Inf\"} ",
                    count, "\n");
    absl::StrAppend(&out, "mandate_http_request_duration_seconds_sum{route=\"", Label(route), "\"} ",
                    absl::StrFormat("%.9g", r->sum_ns.load(std::memory_order_relaxed) / 1e9), "\n");
    absl::StrAppend(&out, "mandate_http_request_duration_seconds_count{route=\"", Label(route), "\"} ", count, "\n");
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
  return out;
}

}  // namespace mandate::server
