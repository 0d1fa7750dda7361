#include "agents/rate_limiter.h"

#include <algorithm>

#include "absl/hash/hash.h"

namespace mandate::agents {

RateVerdict RateLimiter::Acquire(const std::string& actor, const std::vector<RateRule>& rules, int64_t now_ms) {
  RateVerdict allowed;
  allowed.at_ms = now_ms;
  if (rules.empty()) return allowed;
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

  // A caller preempted between its clock read and these locks brings a time older than requests
  // already counted. Counted at its own time, it could sit in a window whose earlier requests a
  // later caller has pruned already, and that window would then hold max + 1. So it is counted at
  // the latest time its logs hold: every log stays in time order and no window exceeds max.
  std::vector<Log*> log_of;
  log_of.reserve(rules.size());
  for (size_t i = 0; i < rules.size(); ++i) {
    log_of.push_back(&shards_[shard_of[i]].logs[keys[i]]);
    if (!log_of.back()->times.empty()) now_ms = std::max(now_ms, log_of.back()->times.back());
  }
  // First prune and check every rule, then record in each distinct log once.
  std::vector<Log*> logs;
  for (size_t i = 0; i < rules.size(); ++i) {
    const RateRule& r = rules[i];
    Log& log = *log_of[i];
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
      for (size_t j = 0; j < rules.size(); ++j) {
        auto& m = shards_[shard_of[j]].logs;
        if (auto it = m.find(keys[j]); it != m.end() && it->second.times.empty()) m.erase(it);
      }
      return v;
    }
    if (std::find(logs.begin(), logs.end(), &log) == logs.end()) logs.push_back(&log);
  }
  for (Log* log : logs) log->times.push_back(now_ms);  // now_ms >= every time in the log
  allowed.at_ms = now_ms;
  return allowed;
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
