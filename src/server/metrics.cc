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

void Metrics::RecordRequest(const std::string& route, int status, double seconds) {
  std::lock_guard<std::mutex> l(mu_);
  RouteStats& r = routes_[route];
  ++r.by_status[status];
  ++r.count;
  r.sum += seconds;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    if (seconds <= kBuckets[i]) {
      ++r.buckets[i];
      break;
    }
  }
}

void Metrics::RecordDecision(bool allowed) { (allowed ? allowed_ : denied_).fetch_add(1, std::memory_order_relaxed); }

std::string Metrics::Render(const Gauges& g) const {
  std::string out;
  absl::StrAppend(&out,
                  "# HELP mandate_http_requests_total HTTP requests by route and status.\n"
                  "# TYPE mandate_http_requests_total counter\n");
  std::lock_guard<std::mutex> l(mu_);
  for (const auto& [route, r] : routes_) {
    for (const auto& [status, n] : r.by_status) {
      absl::StrAppend(&out, "mandate_http_requests_total{route=\"", Label(route), "\",status=\"", status, "\"} ", n,
                      "\n");
    }
  }
  absl::StrAppend(&out,
                  "# HELP mandate_http_request_duration_seconds Time from a complete request to its response.\n"
                  "# TYPE mandate_http_request_duration_seconds histogram\n");
  for (const auto& [route, r] : routes_) {
    uint64_t cumulative = 0;
    for (size_t i = 0; i < kBuckets.size(); ++i) {
      cumulative += r.buckets[i];
      absl::StrAppend(&out, "mandate_http_request_duration_seconds_bucket{route=\"", Label(route), "\",le=\"",
                      absl::StrFormat("%g", kBuckets[i]), "\"} ", cumulative, "\n");
    }
    absl::StrAppend(&out, "mandate_http_request_duration_seconds_bucket{route=\"", Label(route), "\",le=\"+Inf\"} ",
                    r.count, "\n");
    absl::StrAppend(&out, "mandate_http_request_duration_seconds_sum{route=\"", Label(route), "\"} ",
                    absl::StrFormat("%.9g", r.sum), "\n");
    absl::StrAppend(&out, "mandate_http_request_duration_seconds_count{route=\"", Label(route), "\"} ", r.count, "\n");
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
