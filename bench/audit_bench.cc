// Audit log throughput: in-process appends with framing, SHA-256 chaining and checkpoints (async
// mode, so the disk's sync rate does not dominate; the sync cost is per group, not per record), and
// verification of the whole log. Targets (issue 6): append >= 200k records/s, verify >= 1M records/s.
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "audit/log.h"
#include "audit/reader.h"

namespace {

using namespace mandate::audit;

// A typical decision record body (about 330 bytes).
std::string Body(int64_t i) {
  return "{\"kind\":\"decision\",\"request_id\":\"5f0c2b8e-3c1d-4a7e-9b7e-" + std::to_string(100000000000 + i) +
         "\",\"api\":\"POST /api/authorize\",\"actor\":\"User:alice\",\"action\":\"read\",\"resource\":\"Repo:r" +
         std::to_string(i % 1000) +
         "\",\"decision\":\"allow\",\"status\":200,\"policy_version\":3,\"revision\":1234,\"latency_us\":41,"
         "\"client\":\"127.0.0.1:53412\",\"key_role\":\"read\"}";
}

std::string TempDir() {
  char tmpl[] = "/tmp/mandate-audit-bench-XXXXXX";
  return std::string(mkdtemp(tmpl)) + "/audit";
}

// Appends in batches of 64 (what group commit sees under load), through the writer thread.
void BM_Append(benchmark::State& state) {
  const std::string dir = TempDir();
  LogOptions o;
  o.dir = dir;
  o.durability = state.range(0) ? Durability::kSync : Durability::kAsync;
  o.async_max_pending = 1 << 20;
  auto log = AuditLog::Open(o);
  if (!log.ok()) {
    state.SkipWithError("cannot open the log");
    return;
  }
  int64_t n = 0;
  std::vector<std::string> batch;
  for (auto _ : state) {
    batch.clear();
    for (int i = 0; i < 64; ++i) batch.push_back(Body(n++));
    if (state.range(0)) {
      benchmark::DoNotOptimize((*log)->AppendAndWait(std::move(batch)));
    } else {
      (*log)->Append(std::move(batch), nullptr);
    }
  }
  (*log)->Close();  // the time includes writing everything queued
  state.SetItemsProcessed(n);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}
BENCHMARK(BM_Append)->Arg(0)->Arg(1)->ArgNames({"sync"})->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_Verify(benchmark::State& state) {
  const std::string dir = TempDir();
  LogOptions o;
  o.dir = dir;
  o.durability = Durability::kAsync;
  o.async_max_pending = 1 << 20;
  const int64_t records = state.range(0);
  {
    auto log = AuditLog::Open(o);
    std::vector<std::string> batch;
    for (int64_t i = 0; i < records; ++i) {
      batch.push_back(Body(i));
      if (batch.size() == 1024) (*log)->Append(std::exchange(batch, {}), nullptr);
    }
    (*log)->Append(std::move(batch), nullptr);
    (*log)->Close();
  }
  for (auto _ : state) {
    absl::StatusOr<VerifyReport> r = Verify(dir, nullptr);
    if (!r.ok() || r->problem) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * records);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}
BENCHMARK(BM_Verify)->Arg(1'000'000)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
