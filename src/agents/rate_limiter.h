// Sliding-window rate limits per (actor, bucket), as `rate_limit(actor, action, resource, bucket,
// max, window_seconds)` rules ask for (docs/agents.md). Counters live in this process only: with
// several server nodes each node counts its own requests.
//
// Thread safety: Acquire may be called from any number of threads. Counters are kept in shards,
// each under its own mutex; a request that touches several buckets locks their shards in a fixed
// order, so the check-and-record of all its rules is atomic.
#ifndef MANDATE_AGENTS_RATE_LIMITER_H_
#define MANDATE_AGENTS_RATE_LIMITER_H_

#include <array>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "absl/container/node_hash_map.h"

namespace mandate::agents {

struct RateRule {
  std::string bucket;
  int64_t max = 0;             // allowed requests per window; 0 allows none
  int64_t window_seconds = 0;  // > 0
};

struct RateVerdict {
  bool allowed = true;
  // When allowed: the time the request was counted at (see Acquire).
  int64_t at_ms = 0;
  // When refused: the rule that is full and the whole seconds until it has room again (>= 1).
  RateRule rule;
  int64_t retry_after_seconds = 0;
};

class RateLimiter {
 public:
  // If every rule has room in the window ending at `now_ms` (a monotonic clock in milliseconds),
  // records one request in each rule's (actor, bucket) log and returns allowed; otherwise records
  // nothing and names the first full rule. A window holds the requests at times t with
  // now_ms - window < t <= now_ms, so no window of that length ever holds more than `max` of the
  // times counted. A caller reads its clock before it gets here, so it may arrive after requests
  // with later times were counted: it is then taken to arrive at the latest of those times.
  RateVerdict Acquire(const std::string& actor, const std::vector<RateRule>& rules, int64_t now_ms);

  // Number of (actor, bucket) logs held (for tests and metrics).
  size_t size() const;

 private:
  struct Log {
    std::deque<int64_t> times;  // ascending
    int64_t longest_window_ms = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    absl::node_hash_map<std::string, Log> logs;  // node map: Log pointers stay valid across inserts
  };
  static constexpr size_t kShards = 16;
  std::array<Shard, kShards> shards_;
};

}  // namespace mandate::agents

#endif  // MANDATE_AGENTS_RATE_LIMITER_H_
