// The shared benchmark scenario (../shared/bench/scenario): every query's expected decision must
// match. Generated at test time with node; skipped when node or the generator is missing.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "boost/json.hpp"
#include "engine_test_util.h"
#include "gtest/gtest.h"

namespace mandate::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Generates the small scenario once per test binary run.
const fs::path* Scenario() {
  static const fs::path* dir = []() -> const fs::path* {
    const char* env = std::getenv("MANDATE_SHARED_DIR");
    const fs::path gen = fs::path(env != nullptr ? env : MANDATE_SOURCE_DIR "/../shared") / "bench/scenario/gen.js";
    if (!fs::exists(gen) || std::system("node --version > /dev/null 2>&1") != 0) return nullptr;
    auto* out = new fs::path(fs::temp_directory_path() / ("mandate-engine-scenario-" + std::to_string(::getpid())));
    const std::string cmd = "node '" + gen.string() + "' --scale small --out '" + out->string() + "' > /dev/null";
    if (std::system(cmd.c_str()) != 0) return nullptr;
    return out;
  }();
  return dir;
}

TEST(ScenarioTest, AllExpectedDecisionsMatch) {
  const fs::path* dir = Scenario();
  if (dir == nullptr) GTEST_SKIP() << "node or ../shared/bench/scenario/gen.js not available";
  absl::StatusOr<std::shared_ptr<const Policy>> policy =
      Policy::Compile({{"policy.polar", ReadFile(*dir / "policy.polar")}});
  ASSERT_TRUE(policy.ok()) << policy.status().message();
  absl::StatusOr<std::vector<Fact>> facts = LoadFactsFile((*dir / "facts.jsonl").string());
  ASSERT_TRUE(facts.ok()) << facts.status().message();
  ASSERT_EQ(facts->size(), 14980u);
  Database db(*policy);
  std::vector<Change> changes;
  for (Fact& f : *facts) changes.push_back({Change::Kind::kInsert, std::move(f), {}});
  ASSERT_TRUE(db.Apply(changes).ok());
  std::shared_ptr<const Snapshot> snap = db.snapshot();
  EXPECT_EQ(snap->fact_count(), 14980u);

  std::ifstream queries(*dir / "queries.jsonl");
  std::string line;
  int n = 0, mismatches = 0, allows = 0;
  while (std::getline(queries, line)) {
    const boost::json::object q = boost::json::parse(line).as_object();
    auto value = [&](const char* key) {
      const boost::json::object& o = q.at(key).as_object();
      return TypedValue{std::string(o.at("type").as_string()), std::string(o.at("id").as_string())};
    };
    const bool expected = q.at("expected").as_bool();
    Decision d = snap->Check(value("actor"), std::string(q.at("action").as_string()), value("resource"));
    EXPECT_TRUE(d.reasons.empty()) << line;
    if (d.allowed != expected && ++mismatches <= 5) ADD_FAILURE() << "mismatch: " << line;
    allows += d.allowed;
    ++n;
  }
  EXPECT_EQ(n, 20000);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(allows, 10190);
  std::error_code ec;
  fs::remove_all(*dir, ec);
}

}  // namespace
}  // namespace mandate::testing
