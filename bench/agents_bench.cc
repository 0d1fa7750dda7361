// One agent decision (agents::Agents::Evaluate, the work of /v1/check and of every MCP tools/call)
// on the MCP example policy: Agent{"claude"} on behalf of User{"alice"} calls Tool{"web/greet"} with
// a few scalar arguments and annotations as context, over a SQLite store in a temp dir.
// Instruction counts: valgrind --tool=callgrind --toggle-collect='*BM_AgentCheck*' agents_bench
//   --benchmark_filter=BM_AgentCheck --benchmark_min_time=2000x (divide by the iterations).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "agents/agents.h"
#include "scratch_dir.h"
#include "mandate/mandate.h"
#include "store/store.h"

namespace {

using mandate::TypedValue;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Fixture {
  std::string dir;
  std::unique_ptr<mandate::store::Store> store;
  std::unique_ptr<mandate::agents::Agents> agents;
  std::shared_ptr<const mandate::Snapshot> snapshot;
  mandate::agents::CheckRequest req;

  Fixture() {
    dir = ScratchDir("mandate-agents-bench");
    const std::string root = MANDATE_SOURCE_DIR "/examples/mcp/";
    auto policy = mandate::Policy::Compile({{"policy.polar", ReadFile(root + "policy.polar")}});
    if (!policy.ok()) std::abort();
    mandate::Database db(*policy);
    auto facts = mandate::LoadFactsFile(root + "facts.polar", **policy);
    if (!facts.ok()) std::abort();
    std::vector<mandate::Change> changes;
    for (mandate::Fact& f : *facts) changes.push_back(mandate::Change{mandate::Change::Kind::kInsert, f, {}});
    if (!db.Apply(changes).ok()) std::abort();
    snapshot = db.snapshot();
    auto s = mandate::store::OpenSqliteStore(dir);
    if (!s.ok()) std::abort();
    store = *std::move(s);
    mandate::agents::Config config;
    config.purge_interval_seconds = 0;
    auto a = mandate::agents::Agents::Open(store.get(), config);
    if (!a.ok()) std::abort();
    agents = *std::move(a);
    req.actor = {"Agent", "claude"};
    req.on_behalf_of = {{"User", "alice"}};
    req.action = "call";
    req.resource = {"Tool", "web/greet"};
    req.context = {{"name", {"String", "Ada Lovelace"}},
                   {"count", {"Integer", "3"}},
                   {"loud", {"Boolean", "false"}},
                   {"annotations.title", {"String", "Greet someone"}},
                   {"annotations.readOnlyHint", {"Boolean", "true"}},
                   {"annotations.destructiveHint", {"Boolean", "false"}}};
    req.now_unix = 1'800'000'000;
  }
  ~Fixture() {
    agents.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

void BM_AgentCheck(benchmark::State& state) {
  Fixture f;
  if (!f.agents->Evaluate(*f.snapshot, f.req).allowed) std::abort();
  for (auto _ : state) {
    mandate::agents::CheckResult r = f.agents->Evaluate(*f.snapshot, f.req);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_AgentCheck);

// A denied call (a destructive tool for a principal that is only a caller): the deny path's strings.
void BM_AgentCheckDeny(benchmark::State& state) {
  Fixture f;
  f.req.on_behalf_of = {{"User", "bob"}};
  f.req.context.back().second = {"Boolean", "true"};
  if (f.agents->Evaluate(*f.snapshot, f.req).allowed) std::abort();
  for (auto _ : state) {
    mandate::agents::CheckResult r = f.agents->Evaluate(*f.snapshot, f.req);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_AgentCheckDeny);

// The allowed check again, with the caches emptied before each one by touching other memory (the
// argument, in KiB): 1 MiB empties the core's own caches, 32 MiB the shared last-level cache too.
// That is what a server meets when other processes run between its calls, as the MCP gateway does
// between an agent's tool calls (docs/performance.md, "MCP gateway").
void BM_AgentCheckColdCache(benchmark::State& state) {
  Fixture f;
  std::vector<char> other(static_cast<size_t>(state.range(0)) << 10);
  for (auto _ : state) {
    state.PauseTiming();
    for (size_t i = 0; i < other.size(); i += 64) ++other[i];
    benchmark::ClobberMemory();
    state.ResumeTiming();
    mandate::agents::CheckResult r = f.agents->Evaluate(*f.snapshot, f.req);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK(BM_AgentCheckColdCache)->Arg(1024)->Arg(32768);

}  // namespace

BENCHMARK_MAIN();
