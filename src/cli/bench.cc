// `mandate bench SCENARIO_DIR`: the in-process contender for the shared peer harness
// (../shared/bench/peers/inproc.sh). Loads the scenario's policy.polar and facts.jsonl untimed, checks
// every query's `expected` during a warm-up, then times Snapshot::Check over the queries and prints the
// harness's result line plus latency, load time and memory on comment lines.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <malloc.h>
#include <time.h>

#include "absl/container/flat_hash_map.h"
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

// A "Vm...:" field of /proc/self/status, in kB.
long StatusKb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const size_t len = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, len, field) == 0) return std::strtol(line.c_str() + len, nullptr, 10);
  }
  return 0;
}
long RssKb() { return StatusKb("VmRSS:"); }
long PeakRssKb() { return StatusKb("VmHWM:"); }

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
  int list_users = 0;     // list(user, "read", <resource type>) over this many users of the queries
  int write_batches = 0;  // 1,000-fact write batches applied while a reader thread checks
};

// Percentile `p` (0..1) of sorted samples.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()))];
}

// list(user, "read", T) for the first `users` distinct actors of the queries, T being the queries'
// resource type. Each list is compared with every "read" query of that user: a resource is listed
// iff its query expects an allow. Prints p50/p99/max latency and the mean result size.
size_t MeasureList(const Snapshot& snap, const std::vector<BenchQuery>& queries, int users) {
  absl::flat_hash_map<std::string, std::vector<size_t>> by_user;  // actor id -> its read queries
  std::vector<const TypedValue*> order;
  for (size_t i = 0; i < queries.size(); ++i) {
    auto [it, fresh] = by_user.try_emplace(queries[i].actor.id);
    if (fresh) order.push_back(&queries[i].actor);
    if (queries[i].action == "read") it->second.push_back(i);
  }
  if (order.size() > static_cast<size_t>(users)) order.resize(users);
  const std::string type = queries[0].resource.type;
  std::vector<double> lat;
  size_t listed = 0, mismatches = 0;
  for (const TypedValue* actor : order) {
    auto a = Clock::now();
    absl::StatusOr<std::vector<std::string>> ids = snap.List(*actor, "read", type);
    lat.push_back(std::chrono::duration<double, std::milli>(Clock::now() - a).count());
    if (!ids.ok()) Fail(ids.status());
    listed += ids->size();
    for (size_t q : by_user[actor->id]) {
      const bool in = std::binary_search(ids->begin(), ids->end(), queries[q].resource.id);
      if (in != queries[q].expected && ++mismatches <= 3) {
        std::printf("# list mismatch: %s read %s listed=%d expected %d\n", ToString(*actor).c_str(),
                    ToString(queries[q].resource).c_str(), in, queries[q].expected);
      }
    }
  }
  std::sort(lat.begin(), lat.end());
  std::printf("# mandate: list(user, \"read\", %s) over %zu users: p50=%.3f ms p99=%.3f ms max=%.3f ms, "
              "%.1f ids per list, %zu mismatches against the read queries\n",
              type.c_str(), order.size(), Percentile(lat, 0.5), Percentile(lat, 0.99), lat.empty() ? 0.0 : lat.back(),
              order.empty() ? 0.0 : static_cast<double>(listed) / order.size(), mismatches);
  return mismatches;
}

// Applies `batches` write batches of 1,000 new facts (has_role of fresh users on existing resources)
// while a reader thread takes a snapshot and checks a query per iteration, as a server's request
// threads do. Prints per batch the time Apply took and when the reader first saw the new revision,
// and the reader's check latency during the writes against the same reader with no writes.
void MeasureWrites(Database& db, const std::vector<BenchQuery>& queries, int batches) {
  const size_t n = queries.size();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> wanted{0};                   // revision the writer waits to see
  std::atomic<int64_t> seen_ns{-1};                  // when the reader first saw it
  auto reader = [&](std::vector<double>* lat) {
    size_t k = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      auto a = Clock::now();
      std::shared_ptr<const Snapshot> s = db.snapshot();
      const BenchQuery& q = queries[k];
      bool got = s->Check(q.actor, q.action, q.resource).allowed;
      auto b = Clock::now();
      (void)got;
      if (s->revision() >= wanted.load(std::memory_order_relaxed) && seen_ns.load(std::memory_order_relaxed) < 0) {
        seen_ns.store(b.time_since_epoch().count(), std::memory_order_relaxed);
      }
      if (lat->size() < 2'000'000) lat->push_back(std::chrono::duration<double, std::micro>(b - a).count());
      if (++k == n) k = 0;
    }
  };
  auto run_reader = [&](double seconds, auto&& during) {
    std::vector<double> lat;
    stop.store(false);
    std::thread th(reader, &lat);
    during();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop.store(true);
    th.join();
    std::sort(lat.begin(), lat.end());
    return lat;
  };
  // Baseline: the same reader, no writer.
  wanted.store(UINT64_MAX);
  std::vector<double> idle = run_reader(1.0, [] {});
  std::vector<double> apply_ms, visible_ms;
  std::vector<double> busy = run_reader(0.2, [&] {
    for (int b = 0; b < batches; ++b) {
      std::vector<Change> changes(1000);
      for (int j = 0; j < 1000; ++j) {
        const BenchQuery& q = queries[(static_cast<size_t>(b) * 1000 + j) % n];
        changes[j].fact = Fact{"has_role",
                               {{q.actor.type, "bench-w" + std::to_string(b) + "-" + std::to_string(j)},
                                {"String", "reader"},
                                q.resource}};
      }
      seen_ns.store(-1);
      wanted.store(db.snapshot()->revision() + 1);
      auto t0 = Clock::now();
      absl::StatusOr<uint64_t> rev = db.Apply(changes);
      auto t1 = Clock::now();
      if (!rev.ok()) Fail(rev.status());
      while (seen_ns.load() < 0) std::this_thread::yield();
      apply_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      visible_ms.push_back((seen_ns.load() - t0.time_since_epoch().count()) * 1e-6);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the reader run between batches
    }
  });
  std::sort(apply_ms.begin(), apply_ms.end());
  std::sort(visible_ms.begin(), visible_ms.end());
  std::printf("# mandate: %d write batches of 1000 facts: Apply p50=%.1f ms max=%.1f ms; visible to the reader "
              "p50=%.1f ms max=%.1f ms after the write began\n",
              batches, Percentile(apply_ms, 0.5), apply_ms.back(), Percentile(visible_ms, 0.5), visible_ms.back());
  std::printf("# mandate: reader check (snapshot + check) without writes p50=%.2f us p99=%.2f us (%zu checks); "
              "during the writes p50=%.2f us p99=%.2f us p999=%.2f us (%zu checks)\n",
              Percentile(idle, 0.5), Percentile(idle, 0.99), idle.size(), Percentile(busy, 0.5),
              Percentile(busy, 0.99), Percentile(busy, 0.999), busy.size());
}

int RunBench(const BenchOptions& opt) {
  const double budget = opt.seconds > 0 ? opt.seconds : EnvSeconds("INPROC_SECONDS", 20);
  const double min_s = std::min(EnvSeconds("INPROC_MIN_SECONDS", 5), budget);
  const double warm_s = std::min(1.0, budget / 4);

  const long rss0 = RssKb();
  auto t_load = Clock::now();
  const double cpu_load0 = ProcessCpuSeconds();
  double parse_s = 0, parse_cpu = 0;
  std::vector<Diagnostic> diags;
  auto policy = CompilePolicyFiles({opt.dir + "/policy.polar"}, diags);
  if (!policy) {
    for (const auto& d : diags) std::fprintf(stderr, "%s\n", d.ToString().c_str());
    Fail("policy.polar has errors");
  }
  auto facts = LoadFactsFile(opt.dir + "/facts.jsonl");
  if (!facts.ok()) Fail(facts.status());
  parse_s = SecondsSince(t_load);
  parse_cpu = ProcessCpuSeconds() - cpu_load0;
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
  facts->clear();
  facts->shrink_to_fit();
  auto snap = db.snapshot();
  const double load_s = SecondsSince(t_load);
  const double load_cpu = ProcessCpuSeconds() - cpu_load0;
  const long rss_peak = PeakRssKb();
  const long rss1 = RssKb();
  // The parsed facts are gone; hand their freed heap back to the kernel so that the growth counts
  // what the database holds (glibc keeps freed small blocks otherwise).
  malloc_trim(0);
  const long rss2 = RssKb();
  const size_t fact_count = snap->fact_count();
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
  auto pct = [&](double p) { return Percentile(lat, p); };

  std::printf("# mandate: %zu facts loaded in %.0f ms (%.0f CPU ms; JSONL decode %.0f ms, %.0f CPU ms; "
              "Database::Apply %.0f ms, %.0f CPU ms), %d thread(s)\n",
              fact_count, load_s * 1e3, load_cpu * 1e3, parse_s * 1e3, parse_cpu * 1e3, (load_s - parse_s) * 1e3,
              (load_cpu - parse_cpu) * 1e3, threads);
  std::printf("# mandate: memory: rss +%.1f MB after load (%.0f bytes/fact), +%.1f MB after malloc_trim (%.0f "
              "bytes/fact), peak rss %.1f MB\n",
              (rss1 - rss0) / 1024.0, fact_count == 0 ? 0.0 : (rss1 - rss0) * 1024.0 / fact_count, (rss2 - rss0) / 1024.0,
              fact_count == 0 ? 0.0 : (rss2 - rss0) * 1024.0 / fact_count, rss_peak / 1024.0);
  std::printf("# mandate: %llu decisions timed in %.2f s (%.2f CPU s: %.0f decisions per CPU second); latency per check "
              "p50=%.2f us p99=%.2f us p999=%.2f us\n",
              static_cast<unsigned long long>(total.load()), elapsed, cpu, cpu > 0 ? total.load() / cpu : 0.0,
              pct(0.50), pct(0.99), pct(0.999));
  if (opt.list_users > 0) mismatches += MeasureList(*snap, queries, opt.list_users);
  if (opt.write_batches > 0) MeasureWrites(db, queries, opt.write_batches);
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
  cmd->add_option("--list-users", opt->list_users,
                  "Also time list(user, \"read\", <type>) for this many users of the queries, each list checked "
                  "against the user's read queries")
      ->check(CLI::Range(0, 1'000'000));
  cmd->add_option("--write-batches", opt->write_batches,
                  "Also apply this many batches of 1,000 new facts while a reader thread checks: time to "
                  "visibility and the reader's latency")
      ->check(CLI::Range(0, 1000));
  cmd->callback([opt] { ExitWith(RunBench(*opt)); });
}

}  // namespace mandate::cli
