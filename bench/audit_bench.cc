// Audit log throughput: in-process appends with framing, SHA-256 chaining and checkpoints (async
// mode, so the disk's sync rate does not dominate; the sync cost is per group, not per record),
// verification of the whole log, and GET /v1/audit's query (a page of 50, newest first) on a
// 1M-record log. Targets (issue 6): append >= 200k records/s, verify >= 1M records/s.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "audit/log.h"
#include "audit/reader.h"
#include "scratch_dir.h"

namespace {

using namespace mandate::audit;

// A typical decision record body (about 330 bytes).
std::string Body(int64_t i) {
  return "{\"kind\":\"decision\",\"request_id\":\"5f0c2b8e-3c1d-4a7e-9b7e-" + std::to_string(100000000000 + i) +
         "\",\"api\":\"POST /api/authorize\",\"actor\":\"User:u" + std::to_string(i % 100) + "\",\"action\":\"read\",\"resource\":\"Repo:r" +
         std::to_string(i % 1000) +
         "\",\"decision\":\"allow\",\"status\":200,\"policy_version\":3,\"revision\":1234,\"latency_us\":41,"
         "\"client\":\"127.0.0.1:53412\",\"key_role\":\"read\"}";
}

std::string TempDir() {
  return ScratchDir("mandate-audit-bench") + "/audit";
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

// One record per commit, in sync mode: the write and fdatasync that a lone request waits for, and
// that bounds sync-mode throughput with few concurrent clients (docs/audit.md).
void BM_SyncCommit(benchmark::State& state) {
  const std::string dir = TempDir();
  LogOptions o;
  o.dir = dir;
  auto log = AuditLog::Open(o);
  if (!log.ok()) {
    state.SkipWithError("cannot open the log");
    return;
  }
  int64_t n = 0;
  for (auto _ : state) benchmark::DoNotOptimize((*log)->AppendAndWait({Body(n++)}));
  (*log)->Close();
  state.SetItemsProcessed(n);
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}
BENCHMARK(BM_SyncCommit)->UseRealTime()->Unit(benchmark::kMicrosecond)->MinTime(2);

// A log of `records` decision records in async mode, written once per process and shared by the
// benchmarks that read it.
const std::string& LogOf(int64_t records) {
  static std::map<int64_t, std::string> dirs;
  std::string& dir = dirs[records];
  if (!dir.empty()) return dir;
  dir = TempDir();
  std::atexit([] {
    for (const auto& [n, d] : dirs) std::filesystem::remove_all(std::filesystem::path(d).parent_path());
  });
  LogOptions o;
  o.dir = dir;
  o.durability = Durability::kAsync;
  o.async_max_pending = 1 << 20;
  auto log = AuditLog::Open(o);
  std::vector<std::string> batch;
  for (int64_t i = 0; i < records; ++i) {
    batch.push_back(Body(i));
    if (batch.size() == 1024) (*log)->Append(std::exchange(batch, {}), nullptr);
  }
  (*log)->Append(std::move(batch), nullptr);
  (*log)->Close();
  return dir;
}

void BM_Verify(benchmark::State& state) {
  const int64_t records = state.range(0);
  const std::string& dir = LogOf(records);
  for (auto _ : state) {
    absl::StatusOr<VerifyReport> r = Verify(dir, nullptr);
    if (!r.ok() || r->problem) state.SkipWithError("verification failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations() * records);
}
BENCHMARK(BM_Verify)->Arg(1'000'000)->UseRealTime()->Unit(benchmark::kMillisecond);

// One page of 50 records, newest first, as GET /v1/audit?limit=50 reads it, on a 1M-record log:
// 0 no filter; 1 resource=Repo:r7 (one record in 1,000 matches); 2 actor=User:u7 (one in 100) on
// the page before sequence 500,000 (a deep page); 3 the same resource filter with since= a time
// after the last record (nothing matches: how fast a query that finds nothing ends).
void BM_QueryPage(benchmark::State& state) {
  const std::string& dir = LogOf(1'000'000);
  Filter f;
  switch (state.range(0)) {
    case 1:
      f.resource = "Repo:r7";
      break;
    case 2:
      f.actor = "User:u7";
      f.before_seq = 500'000;
      break;
    case 3:
      f.resource = "Repo:r7";
      f.since_us = NowMicros() + 1;
      break;
  }
  for (auto _ : state) {
    absl::StatusOr<std::vector<Found>> page = QueryNewestFirst(dir, f, 50);
    if (!page.ok() || page->size() != (state.range(0) == 3 ? 0u : 50u)) state.SkipWithError("wrong page");
    benchmark::DoNotOptimize(page);
  }
}
BENCHMARK(BM_QueryPage)->DenseRange(0, 3)->ArgNames({"filter"})->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
