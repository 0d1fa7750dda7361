// JSON decode and encode of a POST /api/authorize body with the server's own decoder
// (src/server/json_decode.h): the per-request JSON work of the HTTP path, apart from the transport
// and the engine. Never asserted in tests.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "server/json_decode.h"

namespace {

namespace json = boost::json;
using mandate::server::JsonPointer;

// Bodies as the harness sends them (oso_authorize.jsonl), over a few users and repos.
std::vector<std::string> AuthorizeBodies() {
  std::vector<std::string> out;
  for (int k = 0; k < 64; ++k) {
    out.push_back("{\"actor_type\":\"User\",\"actor_id\":\"u" + std::to_string(k * 37 % 1000) +
                  "\",\"action\":\"read\",\"resource_type\":\"Repo\",\"resource_id\":\"r" +
                  std::to_string(k * 7919 % 10000) + "\",\"context_facts\":[]}");
  }
  return out;
}

// Arg 0: the DOM on the heap; arg 1: in a monotonic_resource over a stack buffer, as the
// /api/authorize handler does.
void BM_AuthorizeDecode(benchmark::State& state) {
  const std::vector<std::string> bodies = AuthorizeBodies();
  const JsonPointer root;
  const bool arena_on = state.range(0) != 0;
  size_t i = 0, bytes = 0;
  for (auto _ : state) {
    const std::string& b = bodies[i++ % bodies.size()];
    bytes += b.size();
    unsigned char buffer[4096];
    json::monotonic_resource arena(buffer, sizeof buffer);
    auto v = mandate::server::ParseJsonBody(b, arena_on ? json::storage_ptr(&arena) : json::storage_ptr());
    if (!v.ok()) return state.SkipWithError("parse failed");
    auto o = mandate::server::AsObject(*v, root);
    auto actor = mandate::server::DecodeTypedField(**o, "actor", root);
    auto action = mandate::server::RequiredString(**o, "action", root);
    auto resource = mandate::server::DecodeTypedField(**o, "resource", root);
    auto facts = mandate::server::DecodeFactList(**o, "context_facts", root);
    if (!actor.ok() || !action.ok() || !resource.ok() || !facts.ok()) return state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(actor->id.data());
    benchmark::DoNotOptimize(resource->id.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_AuthorizeDecode)->Arg(0)->Arg(1);

void BM_AuthorizeEncode(benchmark::State& state) {
  bool allowed = false;
  for (auto _ : state) {
    allowed = !allowed;
    std::string out = json::serialize(json::object{{"allowed", allowed}});
    benchmark::DoNotOptimize(out.data());
  }
}
BENCHMARK(BM_AuthorizeEncode);

}  // namespace

BENCHMARK_MAIN();
