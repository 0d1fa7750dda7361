// Heap allocations on the steady-state check path. This binary replaces the global operator new with
// a counting one, so it lives apart from the timing suites. Each benchmark reports `allocs_per_check`:
// the heap allocations made by Snapshot::Check (inputs are built before timing), which the issue-5
// target wants at 0. Never asserted in tests.
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "scenario_fixture.h"

namespace {

std::atomic<uint64_t> g_allocs{0};

void* CountedAlloc(std::size_t n, std::size_t align) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (n == 0) n = 1;
  void* p = align > alignof(std::max_align_t) ? std::aligned_alloc(align, (n + align - 1) / align * align)
                                              : std::malloc(n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

void* operator new(std::size_t n) { return CountedAlloc(n, 0); }
void* operator new[](std::size_t n) { return CountedAlloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return CountedAlloc(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return CountedAlloc(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return CountedAlloc(n, 0);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return operator new(n, t); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

using mandate::bench::ScenarioQuery;

mandate::Database& Shared() {
  static mandate::Database* db = mandate::bench::ScenarioDatabase().release();
  return *db;
}

// Checks over the scenario's query mix; arg 0 = allowed queries only, 1 = denied only, 2 = allowed
// with an explanation (a control: explanations are built on the heap, so the counter must move).
void BM_CheckAllocations(benchmark::State& state) {
  auto snap = Shared().snapshot();
  const bool want = state.range(0) != 1;
  mandate::QueryOptions options;
  options.explain = state.range(0) == 2;
  std::vector<ScenarioQuery> qs;
  for (auto& q : mandate::bench::ScenarioQueries({}, 20000)) {
    if (snap->Check(q.actor, q.action, q.resource).allowed == want) qs.push_back(std::move(q));
  }
  // Warm every query once: the first check of a value may intern it or fill a cache.
  for (const auto& q : qs) benchmark::DoNotOptimize(snap->Check(q.actor, q.action, q.resource));
  size_t i = 0;
  const uint64_t before = g_allocs.load();
  for (auto _ : state) {
    const ScenarioQuery& q = qs[i];
    if (++i == qs.size()) i = 0;
    benchmark::DoNotOptimize(snap->Check(q.actor, q.action, q.resource, options).allowed);
  }
  const uint64_t allocs = g_allocs.load() - before;
  state.counters["allocs_per_check"] = static_cast<double>(allocs) / static_cast<double>(state.iterations());
  state.SetLabel(options.explain ? "allow, explain (control)" : want ? "allow" : "deny");
}
BENCHMARK(BM_CheckAllocations)->Arg(0)->Arg(1)->Arg(2);

}  // namespace

BENCHMARK_MAIN();
