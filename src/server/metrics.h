// Prometheus metrics of the server: requests by route and status, a latency histogram per route,
// decisions by outcome, and gauges the caller supplies at scrape time (facts, revision, policy).
#ifndef MANDATE_SERVER_METRICS_H_
#define MANDATE_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace mandate::server {

class Metrics {
 public:
  // Latency histogram bucket upper bounds, in seconds.
  static constexpr std::array<double, 14> kBuckets = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                      0.025,  0.05,    0.1,    0.25,  0.5,    1,     5};

  // Buckets of the MCP gateway's own time per request (finer: it is tens to hundreds of µs).
  static constexpr std::array<double, 12> kGatewayBuckets = {0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                                             0.0025,   0.005,   0.01,   0.025,   0.1,    1};

  Metrics();
  ~Metrics();  // defined where RouteCounters is complete

  // The counters of one route. Recording on them takes no lock (relaxed atomics), so the request
  // path does not serialize on the metrics; a scrape may see a request counted in one series a
  // moment before another.
  class RouteCounters;
  // The counters of `route` (the route pattern, "POST /api/authorize", never the raw path, so labels
  // stay few), created on first use; the pointer stays valid as long as the Metrics. Thread-safe.
  RouteCounters* Route(const std::string& route);
  void RecordRequest(RouteCounters* route, int status, double seconds);
  void RecordRequest(const std::string& route, int status, double seconds) {
    RecordRequest(Route(route), status, seconds);
  }
  void RecordDecision(bool allowed);
  // The decisions of a batch, counted once per request rather than once per item.
  void RecordDecisions(uint64_t allowed, uint64_t denied);

  struct Gauges {
    uint64_t facts = 0;
    uint64_t revision = 0;
    int64_t policy_version = 0;
    bool ready = false;
  };
  // The exposition text (format 0.0.4).
  std::string Render(const Gauges& gauges) const;

  // The MCP gateway (docs/mcp-gateway.md, "Metrics"): a message it checked, by upstream, method and
  // decision (a method outside MCP's own counts as "other"), and a request it forwarded: the
  // upstream's round trip and the gateway's own time on the request.
  void RecordMcpMessage(std::string_view upstream, std::string_view method, std::string_view decision);
  void RecordMcpForwarded(std::string_view upstream, double upstream_seconds, double gateway_seconds);

 private:
  struct McpUpstream;
  void RenderMcp(std::string* out) const;

  mutable std::mutex mu_;  // guards routes_ (the map, not the counters)
  std::map<std::string, std::unique_ptr<RouteCounters>> routes_;
  std::atomic<uint64_t> allowed_{0};
  std::atomic<uint64_t> denied_{0};
  mutable std::mutex mcp_mu_;  // guards the two maps (not the histograms' counts)
  // (upstream, method, decision), ordered as string_views: a series is found from string_views
  // without building its strings.
  using McpKey = std::tuple<std::string, std::string, std::string>;
  struct McpKeyLess {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return View(a) < View(b);
    }
    template <class T>
    static std::tuple<std::string_view, std::string_view, std::string_view> View(const T& t) {
      return {std::get<0>(t), std::get<1>(t), std::get<2>(t)};
    }
  };
  std::map<McpKey, uint64_t, McpKeyLess> mcp_messages_;
  std::map<std::string, std::unique_ptr<McpUpstream>, std::less<>> mcp_upstreams_;
};

}  // namespace mandate::server

#endif  // MANDATE_SERVER_METRICS_H_
