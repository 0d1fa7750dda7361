// PostgreSQL store benchmarks (issue 10 targets, docs/performance.md):
//   write throughput  facts/s committed in Writes of 1,000 facts, from 1 and from 4 concurrent writers
//   propagation       from an acknowledged Write on node A until node B's follower has applied that
//                     revision (two stores in this process, each with its own connections: the same
//                     path as two `mandate serve` processes, LISTEN/NOTIFY plus changelog read)
//   check latency     p50/p99/p999 of in-process checks (snapshot + Check) on a node B that follows
//                     the database, with no writes and while node A writes 1,000-fact batches
//                     without pause; and the same on a SQLite node writing the batches itself
// The database: MANDATE_BENCH_PG_URL, else a throwaway server started with scripts/pg-test-server
// (fsync on). Usage: postgres_bench [--batches N] [--samples N] [--check-seconds S]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_cat.h"

#include "scratch_dir.h"
#include "store/store.h"

namespace {

using mandate::Change;
using mandate::Fact;
using mandate::TypedValue;
using Clock = std::chrono::steady_clock;
namespace store = mandate::store;

std::string Run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[512];
  while (fgets(buf, sizeof buf, p) != nullptr) out += buf;
  pclose(p);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "postgres_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<store::Store> Open(const std::string& url) {
  auto s = store::OpenPostgresStore(url);
  if (!s.ok()) Die(std::string(s.status().message()));
  return *std::move(s);
}

std::vector<Change> Batch(const std::string& tag, int n) {
  std::vector<Change> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Change c;
    c.kind = Change::Kind::kInsert;
    c.fact = Fact{"has_role", {TypedValue{"User", absl::StrCat(tag, "_", i)}, TypedValue{"String", "member"},
                               TypedValue{"Org", absl::StrCat("org", i % 97)}}};
    out.push_back(std::move(c));
  }
  return out;
}

double Throughput(const std::string& url, int writers, int batches) {
  std::vector<std::unique_ptr<store::Store>> stores;
  for (int w = 0; w < writers; ++w) stores.push_back(Open(url));  // one node per writer
  std::vector<std::vector<std::vector<Change>>> work(static_cast<size_t>(writers));
  static std::atomic<int> run{0};
  const int r = run++;
  for (int w = 0; w < writers; ++w) {
    for (int b = 0; b < batches; ++b) {
      work[w].push_back(Batch(absl::StrCat("r", r, "w", w, "b", b), 1000));
    }
  }
  const auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (auto& batch : work[w]) {
        auto c = stores[w]->Write(store::Mutation::Changes(std::move(batch)));
        if (!c.ok()) Die(std::string(c.status().message()));
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return writers * batches * 1000.0 / seconds;
}

void Propagation(const std::string& url, int samples) {
  auto a = Open(url);
  auto b = Open(url);
  std::mutex mu;
  std::condition_variable cv;
  uint64_t b_applied = 0;
  Clock::time_point b_applied_at;
  if (!b->Load().ok()) Die("node B: load failed");
  b->Follow(store::Follower{[&](const store::Mutation&, const store::Committed& c) {
                              std::lock_guard<std::mutex> l(mu);
                              b_applied = c.revision;
                              b_applied_at = Clock::now();
                              cv.notify_all();
                            },
                            nullptr});
  std::vector<double> ms;
  for (int i = 0; i < samples; ++i) {
    auto batch = Batch(absl::StrCat("p", i), 1);
    auto c = a->Write(store::Mutation::Changes(std::move(batch)));
    const auto acked = Clock::now();
    if (!c.ok()) Die(std::string(c.status().message()));
    std::unique_lock<std::mutex> l(mu);
    if (!cv.wait_for(l, std::chrono::seconds(5), [&] { return b_applied >= c->revision; })) {
      Die("node B did not apply a write within 5 s");
    }
    // Applied before A's Write returned (B polled at the right moment) counts as 0.
    ms.push_back(std::max(0.0, std::chrono::duration<double, std::milli>(b_applied_at - acked).count()));
    l.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  std::printf("propagation A->B, %d single-fact writes: p50 %.2f ms  p99 %.2f ms  max %.2f ms\n", samples, pct(0.5),
              pct(0.99), ms.back());
}

constexpr char kCheckPolicy[] = R"(
actor User {}
resource Org {
  roles = ["member"];
  permissions = ["read"];
  "read" if "member";
}
)";

struct Percentiles {
  size_t n = 0;
  double p50 = 0, p99 = 0, p999 = 0;  // microseconds
};

// Checks `db` in a loop for `seconds` (users "pre_<i>" for i < `users`, members of org<i % 97>);
// `during` runs on another thread meanwhile and must return soon after `stop` is set.
Percentiles TimeChecks(const mandate::Database& db, int users, double seconds,
                       const std::function<void(const std::atomic<bool>& stop)>& during) {
  std::atomic<bool> stop{false};
  std::thread load;
  if (during) load = std::thread([&] { during(stop); });
  std::vector<double> us;
  us.reserve(1 << 20);
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  uint64_t allowed = 0;
  for (int i = 0; Clock::now() < end; ++i) {
    const int u = static_cast<int>((static_cast<uint64_t>(i) * 2654435761u) % static_cast<uint64_t>(users));
    const TypedValue actor{"User", absl::StrCat("pre_", u)};
    const TypedValue org{"Org", absl::StrCat("org", u % 97)};
    const auto t0 = Clock::now();
    allowed += db.snapshot()->Check(actor, "read", org).allowed ? 1 : 0;
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
  }
  stop = true;
  if (load.joinable()) load.join();
  if (allowed != us.size()) Die(absl::StrCat("check latency: ", us.size() - allowed, " checks denied"));
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) { return us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))]; };
  return Percentiles{us.size(), pct(0.5), pct(0.99), pct(0.999)};
}

void PrintLatency(const char* what, const Percentiles& p, uint64_t facts_written, double seconds) {
  std::printf("check latency, %-44s p50 %.2f us  p99 %.2f us  p999 %.1f us  (%zu checks; %.0f facts/s written)\n", what,
              p.p50, p.p99, p.p999, p.n, facts_written / seconds);
}

std::shared_ptr<const mandate::Policy> CheckPolicy() {
  auto policy = mandate::Policy::Compile({mandate::SourceFile{"bench.polar", kCheckPolicy}});
  if (!policy.ok()) Die(std::string(policy.status().message()));
  return *policy;
}

// Loads `users` members through node A, then times checks on node B (which loads them and follows
// the database) without and with node A writing; then the same on a SQLite node.
void CheckLatency(const std::string& url, int users, double seconds) {
  // PostgreSQL: node A writes, node B follows and answers checks.
  auto a = Open(url);
  for (int b = 0; b * 1000 < users; ++b) {
    std::vector<Change> batch;
    for (int i = b * 1000; i < std::min(users, (b + 1) * 1000); ++i) {
      Change c;
      c.fact = Fact{"has_role",
                    {TypedValue{"User", absl::StrCat("pre_", i)}, TypedValue{"String", "member"},
                     TypedValue{"Org", absl::StrCat("org", i % 97)}}};
      batch.push_back(std::move(c));
    }
    if (auto c = a->Write(store::Mutation::Changes(batch)); !c.ok()) Die(std::string(c.status().message()));
  }
  auto node_b = Open(url);
  auto loaded = node_b->Load();
  if (!loaded.ok()) Die(std::string(loaded.status().message()));
  mandate::Database db(CheckPolicy());
  std::vector<Change> inserts;
  for (Fact& f : loaded->facts) {
    Change c;
    c.fact = std::move(f);
    inserts.push_back(std::move(c));
  }
  if (auto r = db.Apply(inserts); !r.ok()) Die(std::string(r.status().message()));
  node_b->Follow(store::Follower{[&](const store::Mutation& m, const store::Committed&) {
                                   if (m.kind == store::Mutation::Kind::kChanges) db.Apply(m.changes).IgnoreError();
                                 },
                                 nullptr});
  std::atomic<uint64_t> written{0};
  auto node_a_writer = [&](const std::atomic<bool>& stop) {
    for (int b = 0; !stop; ++b) {
      auto c = a->Write(store::Mutation::Changes(Batch(absl::StrCat("load", b), 1000)));
      if (!c.ok()) Die(std::string(c.status().message()));
      written += 1000;
    }
  };
  PrintLatency("PostgreSQL node B, no writes:", TimeChecks(db, users, seconds, nullptr), 0, seconds);
  const Percentiles pg = TimeChecks(db, users, seconds, node_a_writer);
  PrintLatency("PostgreSQL node B, node A writing batches:", pg, written, seconds);
  node_b->StopFollowing();

  // SQLite: the node writes the batches itself and applies them in on_durable.
  const std::string lite_dir = ScratchDir("mandate-sqlitebench");
  {
    auto lite = store::OpenSqliteStore(lite_dir);
    if (!lite.ok()) Die(std::string(lite.status().message()));
    mandate::Database ldb(CheckPolicy());
    if (auto r = ldb.Apply(inserts); !r.ok()) Die(std::string(r.status().message()));
    PrintLatency("SQLite node, no writes:", TimeChecks(ldb, users, seconds, nullptr), 0, seconds);
    written = 0;
    // As `mandate serve` does: each write's on_durable hook applies its batch to memory.
    auto sqlite_writer = [&](const std::atomic<bool>& stop) {
      for (int b = 0; !stop; ++b) {
        const store::Mutation m = store::Mutation::Changes(Batch(absl::StrCat("lite", b), 1000));
        store::WriteHooks h;
        h.on_durable = [&](const store::Committed&) { ldb.Apply(m.changes).IgnoreError(); };
        if (auto c = (*lite)->Write(m, h); !c.ok()) Die(std::string(c.status().message()));
        written += 1000;
      }
    };
    const Percentiles lp = TimeChecks(ldb, users, seconds, sqlite_writer);
    PrintLatency("SQLite node, writing batches itself:", lp, written, seconds);
  }
  Run(absl::StrCat("rm -rf ", lite_dir));
}

}  // namespace

int main(int argc, char** argv) {
  int batches = 20, samples = 500;
  double check_seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--batches") batches = std::atoi(argv[i + 1]);
    else if (flag == "--samples") samples = std::atoi(argv[i + 1]);
    else if (flag == "--check-seconds") check_seconds = std::atof(argv[i + 1]);
    else Die("usage: postgres_bench [--batches N] [--samples N] [--check-seconds S]");
  }
  std::string url;
  std::string dir;
  if (const char* env = std::getenv("MANDATE_BENCH_PG_URL"); env != nullptr && *env != '\0') {
    url = env;
  } else {
    dir = ScratchDir("mandate-pgbench");
    url = Run(absl::StrCat(MANDATE_SOURCE_DIR, "/scripts/pg-test-server start ", dir));
    if (url.rfind("postgres", 0) != 0) Die(absl::StrCat("could not start PostgreSQL: ", url));
  }
  std::printf("PostgreSQL store, %s\n", url.c_str());
  for (int writers : {1, 4}) {
    std::printf("write throughput, %d writer(s), %d batches of 1,000 facts each: %.0f facts/s\n", writers, batches,
                Throughput(url, writers, batches));
  }
  Propagation(url, samples);
  if (check_seconds > 0) CheckLatency(url, 100'000, check_seconds);
  if (!dir.empty()) Run(absl::StrCat(MANDATE_SOURCE_DIR, "/scripts/pg-test-server destroy ", dir, "; rm -rf ", dir));
  return 0;
}
