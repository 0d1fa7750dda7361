// The peer harness's scenario (../shared/bench/README.md, "The scenario") rebuilt in memory, so that
// the micro-benchmarks measure the same policy and fact shapes as `mandate bench` and the peers,
// without reading files: users u<i>, orgs o<i>, repos r<i> with the harness's role formulas.
#ifndef MANDATE_BENCH_SCENARIO_FIXTURE_H_
#define MANDATE_BENCH_SCENARIO_FIXTURE_H_

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "mandate/mandate.h"

namespace mandate::bench {

inline constexpr char kScenarioPolicy[] = R"(
actor User {}
resource Org { roles = ["member", "admin"]; }
resource Repo {
  roles = ["reader", "maintainer"];
  permissions = ["read", "write", "delete"];
  relations = { parent: Org };
  "read" if "reader";
  "write" if "maintainer";
  "reader" if "maintainer";
  "reader" if "member" on "parent";
  "reader" if "admin" on "parent";
  "maintainer" if "admin" on "parent";
  "delete" if "admin" on "parent";
}
)";

struct ScenarioScale {
  int users = 1000;
  int orgs = 100;
  int repos = 10000;
};

inline TypedValue Entity(const char* type, char prefix, long i) { return {type, prefix + std::to_string(i)}; }

// The scenario's facts at `scale` (duplicates, which the harness drops, are harmless here).
inline std::vector<Change> ScenarioChanges(const ScenarioScale& s) {
  std::vector<Change> out;
  auto add = [&](const char* pred, TypedValue a, const char* b, TypedValue c) {
    Change change;  // kind defaults to kInsert
    change.fact = {pred, {std::move(a), {"String", b}, std::move(c)}};
    out.push_back(std::move(change));
  };
  for (long r = 0; r < s.repos; ++r) add("has_relation", Entity("Repo", 'r', r), "parent", Entity("Org", 'o', r % s.orgs));
  for (long u = 0; u < s.users; ++u) {
    add("has_role", Entity("User", 'u', u), "admin", Entity("Org", 'o', u % s.orgs));
    add("has_role", Entity("User", 'u', u), "member", Entity("Org", 'o', (7 * u + 3) % s.orgs));
    add("has_role", Entity("User", 'u', u), "member", Entity("Org", 'o', (13 * u + 5) % s.orgs));
    add("has_role", Entity("User", 'u', u), "maintainer", Entity("Repo", 'r', (37 * u) % s.repos));
    add("has_role", Entity("User", 'u', u), "reader", Entity("Repo", 'r', (101 * u + 17) % s.repos));
  }
  return out;
}

inline std::unique_ptr<Database> ScenarioDatabase(const ScenarioScale& s = {}) {
  auto policy = Policy::Compile({{"scenario.polar", kScenarioPolicy}});
  if (!policy.ok()) std::abort();
  auto db = std::make_unique<Database>(*policy);
  if (!db->Apply(ScenarioChanges(s)).ok()) std::abort();
  return db;
}

struct ScenarioQuery {
  TypedValue actor;
  std::string action;
  TypedValue resource;
};

// Queries in the harness's four modes (any repo, the maintained repo, a repo of the admin org, a repo
// of a member org), cycling through the actions: about half allow.
inline std::vector<ScenarioQuery> ScenarioQueries(const ScenarioScale& s, int n) {
  static const char* const kActions[] = {"read", "write", "delete"};
  std::vector<ScenarioQuery> out;
  out.reserve(n);
  for (long k = 0; k < n; ++k) {
    const long u = (k * 7919) % s.users;
    long repo = 0;
    switch (k % 4) {
      case 0: repo = (k * 104729) % s.repos; break;
      case 1: repo = (37 * u) % s.repos; break;
      case 2: repo = (u % s.orgs + s.orgs * (k % 50)) % s.repos; break;
      default: repo = ((7 * u + 3) % s.orgs + s.orgs * (k % 50)) % s.repos; break;
    }
    out.push_back({Entity("User", 'u', u), kActions[k % 3], Entity("Repo", 'r', repo)});
  }
  return out;
}

}  // namespace mandate::bench

#endif  // MANDATE_BENCH_SCENARIO_FIXTURE_H_
