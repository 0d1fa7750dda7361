// `mandate bench SCENARIO_DIR`: the in-process contender for the shared peer harness
// (../shared/bench/peers/inproc.sh). Loads the scenario's policy.polar and facts.jsonl untimed, checks
// every query's `expected` during a warm-up, then times Snapshot::Check over the queries and prints the
// harness's result line plus latency, load time and memory on comment lines.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <time.h>

#include "boost/json.hpp"
#include "cli/commands.h"

namespace mandate::cli {
namespace {

struct BenchQuery {
  TypedValue actor;
  std::string action;
  TypedValue resource;
  bool expected = false;
};

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// CPU seconds used by this process (every thread). On a shared, loaded machine the wall-clock rate
// also counts the time other processes held the cores; decisions per CPU second does not.
double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double EnvSeconds(const char* name, double fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  double d = std::strtod(v, &end);
  return (end != v && d > 0) ? d : fallback;
}

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::string ReadFileOrFail(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) Fail("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TypedValue ValueOf(const boost::json::value& v, const std::string& where) {
  const auto* o = v.if_object();
  const boost::json::value* type = o ? o->if_contains("type") : nullptr;
  const boost::json::value* id = o ? o->if_contains("id") : nullptr;
  if (!type || !id || !type->is_string() || !id->is_string()) Fail(where + ": expected {\"type\":..,\"id\":..}");
  return {std::string(type->as_string()), std::string(id->as_string())};
}

std::vector<BenchQuery> LoadQueries(const std::string& path) {
  std::vector<BenchQuery> out;
  std::istringstream in(ReadFileOrFail(path));
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(n);
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(line, ec);
    if (ec || !v.is_object()) Fail(where + ": not a JSON object");
    const auto& o = v.as_object();
    const auto* action = o.if_contains("action");
    const auto* expected = o.if_contains("expected");
    if (!o.contains("actor") || !o.contains("resource") || !action || !action->is_string() || !expected ||
        !expected->is_bool()) {
      Fail(where + ": expected actor, action, resource and expected");
    }
    out.push_back({ValueOf(o.at("actor"), where + " actor"), std::string(action->as_string()),
                   ValueOf(o.at("resource"), where + " resource"), expected->as_bool()});
  }
  if (out.empty()) Fail(path + ": no queries");
  return out;
}

struct BenchOptions {
  std::string dir;
  int threads = 1;
  double seconds = 0;  // 0 = INPROC_SECONDS or 20
};

int RunBench(const BenchOptions& opt) {
  const double budget = opt.seconds > 0 ? opt.seconds : EnvSeconds("INPROC_SECONDS", 20);
  const double min_s = std::min(EnvSeconds("INPROC_MIN_SECONDS", 5), budget);
  const double warm_s = std::min(1.0, budget / 4);

  const long rss0 = RssKb();
  auto t_load = Clock::now();
  std::vector<Diagnostic> diags;
  auto policy = CompilePolicyFiles({opt.dir + "/policy.polar"}, diags);
  if (!policy) {
    for (const auto& d : diags) std::fprintf(stderr, "%s\n", d.ToString().c_str());
    Fail("policy.polar has errors");
  }
  auto facts = LoadFactsFile(opt.dir + "/facts.jsonl");
  if (!facts.ok()) Fail(facts.status());
  Database db(policy);
  std::vector<Change> changes;
  changes.reserve(facts->size());
  for (auto& f : *facts) {
    changes.emplace_back();  // kind defaults to kInsert
    changes.back().fact = std::move(f);
  }
  if (auto rev = db.Apply(changes); !rev.ok()) Fail(rev.status());
  changes.clear();
  changes.shrink_to_fit();
  auto snap = db.snapshot();
  const double load_s = SecondsSince(t_load);
  const long rss1 = RssKb();
  const std::vector<BenchQuery> queries = LoadQueries(opt.dir + "/queries.jsonl");
  const size_t n = queries.size();

  // Warm-up: answers are checked; every query is checked at least once below as well.
  size_t mismatches = 0;
  std::vector<bool> checked(n, false);
  auto note = [&](size_t i, bool got) {
    if (++mismatches <= 3) {
      std::printf("# mismatch query %zu: %s %s %s got %s expected %s\n", i + 1, ToString(queries[i].actor).c_str(),
                  queries[i].action.c_str(), ToString(queries[i].resource).c_str(), got ? "true" : "false",
                  queries[i].expected ? "true" : "false");
    }
  };
  auto t_warm = Clock::now();
  size_t i = 0;
  size_t checked_count = 0;
  while (i < n && SecondsSince(t_warm) < warm_s) {
    for (int c = 0; c < 64 && i < n; ++c, ++i) {
      bool got = snap->Check(queries[i].actor, queries[i].action, queries[i].resource).allowed;
      if (got != queries[i].expected) note(i, got);
      checked[i] = true;
      ++checked_count;
    }
  }

  // Timed: each thread cycles through the queries until at least min_s have passed (hard stop at
  // budget); answers past the warm-up are checked the first time each query is seen.
  const int threads = std::max(1, opt.threads);
  std::atomic<uint64_t> total{0};
  std::atomic<bool> stop{false};
  auto t0 = Clock::now();
  const double cpu0 = ProcessCpuSeconds();
  auto worker = [&](int t) {
    uint64_t done = 0;
    size_t q = (i + static_cast<size_t>(t) * 7919) % n;
    while (!stop.load(std::memory_order_relaxed)) {
      for (int c = 0; c < 256; ++c) {
        const BenchQuery& bq = queries[q];
        bool got = snap->Check(bq.actor, bq.action, bq.resource).allowed;
        if (t == 0 && !checked[q]) {
          checked[q] = true;
          ++checked_count;
          if (got != bq.expected) {
            note(q, got);
          }
        }
        if (++q == n) q = 0;
      }
      done += 256;
      if (t == 0) {
        double s = SecondsSince(t0);
        if ((s >= min_s && checked_count == n) || s >= budget) stop.store(true);
      }
    }
    total.fetch_add(done);
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& th : pool) th.join();
  const double elapsed = SecondsSince(t0);
  const double cpu = ProcessCpuSeconds() - cpu0;
  const size_t queries_checked = checked_count;

  // Latency: time single checks one by one over the query stream (separate pass, 1 s or 200k checks).
  std::vector<double> lat;
  lat.reserve(200000);
  auto t_lat = Clock::now();
  for (size_t k = 0; lat.size() < 200000 && SecondsSince(t_lat) < 1.0; k = (k + 1) % n) {
    auto a = Clock::now();
    bool got = snap->Check(queries[k].actor, queries[k].action, queries[k].resource).allowed;
    auto b = Clock::now();
    (void)got;
    lat.push_back(std::chrono::duration<double, std::micro>(b - a).count());
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, size_t(p * lat.size()))]; };

  std::printf("# mandate: %zu facts loaded in %.0f ms, rss +%.1f MB (%.0f bytes/fact), %d thread(s)\n", facts->size(),
              load_s * 1e3, (rss1 - rss0) / 1024.0, facts->empty() ? 0.0 : (rss1 - rss0) * 1024.0 / facts->size(),
              threads);
  std::printf("# mandate: %llu decisions timed in %.2f s (%.2f CPU s: %.0f decisions per CPU second); latency per check "
              "p50=%.2f us p99=%.2f us p999=%.2f us\n",
              static_cast<unsigned long long>(total.load()), elapsed, cpu, cpu > 0 ? total.load() / cpu : 0.0,
              pct(0.50), pct(0.99), pct(0.999));
  std::printf("inproc mandate decisions_per_s=%.0f mismatches=%zu queries=%zu\n", total.load() / elapsed, mismatches,
              queries_checked);
  std::fflush(stdout);
  return mismatches == 0 ? kExitOk : kExitNo;
}

}  // namespace

void AddBenchCommand(CLI::App& app) {
  auto opt = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Measure check throughput on a scenario from ../shared/bench (policy.polar, facts.jsonl, queries.jsonl).\n"
      "Every query's answer is compared with its `expected` value; prints the harness line\n"
      "`inproc mandate decisions_per_s=N mismatches=N queries=N`. Exit 1 on any mismatch.\n"
      "Env: INPROC_SECONDS (bound, default 20), INPROC_MIN_SECONDS (default 5).");
  cmd->add_option("SCENARIO_DIR", opt->dir, "Scenario directory written by gen.js")->required();
  cmd->add_option("--threads", opt->threads, "Threads checking concurrently (default 1)")->check(CLI::Range(1, 256));
  cmd->add_option("--seconds", opt->seconds, "Time bound in seconds (default INPROC_SECONDS or 20)");
  cmd->callback([opt] { ExitWith(RunBench(*opt)); });
}

}  // namespace mandate::cli
