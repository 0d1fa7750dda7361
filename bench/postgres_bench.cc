// PostgreSQL store benchmarks (issue 10 targets, docs/performance.md):
//   write throughput  facts/s committed in Writes of 1,000 facts, from 1 and from 4 concurrent writers
//   propagation       from an acknowledged Write on node A until node B's follower has applied that
//                     revision (two stores in this process, each with its own connections: the same
//                     path as two `mandate serve` processes, LISTEN/NOTIFY plus changelog read)
// The database: MANDATE_BENCH_PG_URL, else a throwaway server started with scripts/pg-test-server
// (fsync on). Usage: postgres_bench [--batches N] [--samples N]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "absl/strings/str_cat.h"

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

}  // namespace

int main(int argc, char** argv) {
  int batches = 20, samples = 500;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--batches") batches = std::atoi(argv[i + 1]);
    else if (flag == "--samples") samples = std::atoi(argv[i + 1]);
    else Die("usage: postgres_bench [--batches N] [--samples N]");
  }
  std::string url;
  std::string dir;
  if (const char* env = std::getenv("MANDATE_BENCH_PG_URL"); env != nullptr && *env != '\0') {
    url = env;
  } else {
    char tmpl[] = "/tmp/mandate-pgbench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) Die("mkdtemp failed");
    dir = tmpl;
    url = Run(absl::StrCat(MANDATE_SOURCE_DIR, "/scripts/pg-test-server start ", dir));
    if (url.rfind("postgres", 0) != 0) Die(absl::StrCat("could not start PostgreSQL: ", url));
  }
  std::printf("PostgreSQL store, %s\n", url.c_str());
  for (int writers : {1, 4}) {
    std::printf("write throughput, %d writer(s), %d batches of 1,000 facts each: %.0f facts/s\n", writers, batches,
                Throughput(url, writers, batches));
  }
  Propagation(url, samples);
  if (!dir.empty()) Run(absl::StrCat(MANDATE_SOURCE_DIR, "/scripts/pg-test-server destroy ", dir, "; rm -rf ", dir));
  return 0;
}
