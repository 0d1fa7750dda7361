#include "agents/rate_limiter.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace mandate::agents {

RateVerdict RateLimiter::Acquire(const std::string& actor, const std::vector<RateRule>& rules, int64_t now_ms) {
  if (rules.empty()) return RateVerdict{};
  std::vector<std::string> keys;
  std::vector<size_t> shard_of;
  keys.reserve(rules.size());
  for (const RateRule& r : rules) {
    keys.push_back(actor + '\0' + r.bucket);
    shard_of.push_back(absl::HashOf(keys.back()) % kShards);
  }
  std::vector<size_t> order = shard_of;
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  std::vector<std::unique_lock<std::mutex>> locks;
  locks.reserve(order.size());
  for (size_t s : order) locks.emplace_back(shards_[s].mu);

  // First prune and check every rule, then record in each distinct log once.
  std::vector<Log*> logs;
  for (size_t i = 0; i < rules.size(); ++i) {
    const RateRule& r = rules[i];
    Log& log = shards_[shard_of[i]].logs[keys[i]];
    const int64_t window_ms = r.window_seconds * 1000;
    log.longest_window_ms = std::max(log.longest_window_ms, window_ms);
    while (!log.times.empty() && log.times.front() <= now_ms - log.longest_window_ms) log.times.pop_front();
    const auto first_in_window = std::upper_bound(log.times.begin(), log.times.end(), now_ms - window_ms);
    const int64_t in_window = log.times.end() - first_in_window;
    if (in_window >= r.max) {
      RateVerdict v;
      v.allowed = false;
      v.rule = r;
      // Room opens when enough of the oldest requests in the window have left it.
      int64_t wait_ms = window_ms;
      if (r.max > 0) wait_ms = *(first_in_window + (in_window - r.max)) + window_ms - now_ms;
      v.retry_after_seconds = std::max<int64_t>(1, (wait_ms + 999) / 1000);
      for (size_t j = 0; j <= i; ++j) {
        auto& m = shards_[shard_of[j]].logs;
        if (auto it = m.find(keys[j]); it != m.end() && it->second.times.empty()) m.erase(it);
      }
      return v;
    }
    if (std::find(logs.begin(), logs.end(), &log) == logs.end()) logs.push_back(&log);
  }
  for (Log* log : logs) {
    // The clock is monotonic, but keep the log sorted even if a caller's is not.
    log->times.insert(std::upper_bound(log->times.begin(), log->times.end(), now_ms), now_ms);
  }
  return RateVerdict{};
}

size_t RateLimiter::size() const {
  size_t n = 0;
  for (const Shard& s : shards_) {
    std::lock_guard<std::mutex> l(s.mu);
    n += s.logs.size();
  }
  return n;
}

}  // namespace mandate::agents
