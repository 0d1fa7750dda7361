// Engine micro-benchmarks: check (allow and deny, role/relation chains of depth 1-4), list, actions,
// explain on/off, policy compile, and snapshot builds after writes of 1, 1,000 and 100,000 facts.
// Numbers are medians of repetitions (run with --benchmark_repetitions); never asserted in tests.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "mandate/mandate.h"

namespace {

using mandate::Change;
using mandate::Database;
using mandate::Fact;
using mandate::Policy;
using mandate::TypedValue;

// A chain policy: permission "read" on L1 comes from "viewer" on L1, which comes from "viewer" on its
// parent L2, ... up to L4, so a check at depth d proves through d-1 relation hops.
constexpr char kChainPolicy[] = R"(
actor User {}
resource L4 { roles = ["viewer"]; }
resource L3 { roles = ["viewer"]; relations = { parent: L4 }; "viewer" if "viewer" on "parent"; }
resource L2 { roles = ["viewer"]; relations = { parent: L3 }; "viewer" if "viewer" on "parent"; }
resource L1 {
  roles = ["viewer", "editor"];
  permissions = ["read", "write", "delete"];
  relations = { parent: L2 };
  "viewer" if "viewer" on "parent";
  "viewer" if "editor";
  "read" if "viewer";
  "write" if "editor";
}
)";

constexpr int kUsers = 1000;
constexpr int kItems = 10000;  // L1 resources; parents fan in 10:1 per level

TypedValue V(const char* type, const std::string& id) { return {type, id}; }
TypedValue S(const std::string& s) { return {"String", s}; }

std::shared_ptr<const Policy> Compile(const char* text) {
  auto p = Policy::Compile({{"bench.polar", text}});
  if (!p.ok()) std::abort();
  return *p;
}

Change Insert(Fact f) {
  Change c;  // kind defaults to kInsert
  c.fact = std::move(f);
  return c;
}

Fact Rel(const char* type, int i, const char* ptype, int p) {
  return {"has_relation", {V(type, std::to_string(i)), S("parent"), V(ptype, std::to_string(p))}};
}

// Users u<i> are viewers at level (i % 4) + 1 of the chain above item i, and editors of item i+1.
std::unique_ptr<Database> ChainDatabase() {
  auto db = std::make_unique<Database>(Compile(kChainPolicy));
  std::vector<Change> changes;
  for (int i = 0; i < kItems; ++i) {
    changes.push_back(Insert(Rel("L1", i, "L2", i / 10)));
    if (i < kItems / 10) changes.push_back(Insert(Rel("L2", i, "L3", i / 10)));
    if (i < kItems / 100) changes.push_back(Insert(Rel("L3", i, "L4", i / 10)));
  }
  for (int u = 0; u < kUsers; ++u) {
    int item = (u * 10) % kItems;
    int level = u % 4 + 1;
    int id = item;
    for (int l = 1; l < level; ++l) id /= 10;
    const std::string type = "L" + std::to_string(level);
    changes.push_back(Insert({"has_role", {V("User", "u" + std::to_string(u)), S("viewer"), {type, std::to_string(id)}}}));
    changes.push_back(
        Insert({"has_role", {V("User", "u" + std::to_string(u)), S("editor"), V("L1", std::to_string(item + 1))}}));
  }
  if (!db->Apply(changes).ok()) std::abort();
  return db;
}

Database& SharedChain() {
  static Database* db = ChainDatabase().release();
  return *db;
}

// Users whose viewer grant sits at `depth` (1..4): u with u % 4 == depth - 1.
void BM_CheckAllow(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  auto snap = SharedChain().snapshot();
  std::vector<std::pair<TypedValue, TypedValue>> qs;
  for (int u = depth - 1; u < kUsers; u += 4) qs.emplace_back(V("User", "u" + std::to_string(u)), V("L1", std::to_string((u * 10) % kItems)));
  size_t i = 0, allowed = 0;
  for (auto _ : state) {
    const auto& q = qs[i++ % qs.size()];
    allowed += snap->Check(q.first, "read", q.second).allowed;
  }
  if (allowed != static_cast<size_t>(state.iterations())) state.SkipWithError("expected every check to allow");
}
BENCHMARK(BM_CheckAllow)->DenseRange(1, 4);

void BM_CheckDeny(benchmark::State& state) {
  const int depth = static_cast<int>(state.range(0));
  auto snap = SharedChain().snapshot();
  std::vector<std::pair<TypedValue, TypedValue>> qs;
  // The same users on an item outside their subtree: every rule is tried to the top of the chain.
  for (int u = depth - 1; u < kUsers; u += 4) qs.emplace_back(V("User", "u" + std::to_string(u)), V("L1", std::to_string((u * 10 + 5003) % kItems)));
  size_t i = 0, allowed = 0;
  for (auto _ : state) {
    const auto& q = qs[i++ % qs.size()];
    allowed += snap->Check(q.first, "read", q.second).allowed;
  }
  if (allowed != 0) state.SkipWithError("expected every check to deny");
}
BENCHMARK(BM_CheckDeny)->DenseRange(1, 4);

void BM_CheckExplain(benchmark::State& state) {
  auto snap = SharedChain().snapshot();
  mandate::QueryOptions opt;
  opt.explain = state.range(0) != 0;
  size_t i = 0;
  for (auto _ : state) {
    int u = static_cast<int>(i++ % kUsers);
    auto d = snap->Check(V("User", "u" + std::to_string(u)), "read", V("L1", std::to_string((u * 10) % kItems)), opt);
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_CheckExplain)->Arg(0)->Arg(1);

void BM_List(benchmark::State& state) {
  auto snap = SharedChain().snapshot();
  size_t i = 0, results = 0;
  for (auto _ : state) {
    int u = static_cast<int>(i++ % kUsers);
    auto r = snap->List(V("User", "u" + std::to_string(u)), "read", "L1");
    if (r.ok()) results += r->size();
  }
  state.counters["results_per_list"] = benchmark::Counter(static_cast<double>(results) / state.iterations());
}
BENCHMARK(BM_List);

void BM_Actions(benchmark::State& state) {
  auto snap = SharedChain().snapshot();
  size_t i = 0;
  for (auto _ : state) {
    int u = static_cast<int>(i++ % kUsers);
    auto r = snap->Actions(V("User", "u" + std::to_string(u)), V("L1", std::to_string((u * 10 + 1) % kItems)));
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_Actions);

void BM_PolicyCompile(benchmark::State& state) {
  for (auto _ : state) {
    auto p = Policy::Compile({{"bench.polar", kChainPolicy}});
    benchmark::DoNotOptimize(p);
  }
}
BENCHMARK(BM_PolicyCompile);

// Cost of one write of N new facts into a database that already holds the chain data: the time until
// the new snapshot is visible to readers.
void BM_WriteSnapshot(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  auto db = ChainDatabase();
  int round = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Change> changes;
    changes.reserve(n);
    for (int k = 0; k < n; ++k) {
      changes.push_back(
          Insert({"has_role", {V("User", "w" + std::to_string(round)), S("viewer"), V("L1", std::to_string(k))}}));
    }
    ++round;
    state.ResumeTiming();
    if (!db->Apply(changes).ok()) state.SkipWithError("apply failed");
    benchmark::DoNotOptimize(db->snapshot());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_WriteSnapshot)->Arg(1)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
