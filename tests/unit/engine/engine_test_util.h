// Helpers shared by the engine tests: a policy + facts loaded into a Database, and short ways to ask.
#ifndef MANDATE_TESTS_UNIT_ENGINE_ENGINE_TEST_UTIL_H_
#define MANDATE_TESTS_UNIT_ENGINE_ENGINE_TEST_UTIL_H_

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "mandate/mandate.h"

namespace mandate::testing {

inline TypedValue V(std::string_view cli) { return *ParseTypedValue(cli); }

// A policy and a database holding `facts_polar` (Polar fact lines).
class World {
 public:
  World(const std::string& policy, const std::string& facts_polar = "") {
    absl::StatusOr<std::shared_ptr<const Policy>> p = Policy::Compile({{"policy.polar", policy}}, &diagnostics);
    if (!p.ok()) {
      ADD_FAILURE() << "policy does not compile:\n" << p.status().message();
      return;
    }
    policy_ = *p;
    db_ = std::make_unique<Database>(policy_);
    if (!facts_polar.empty()) Insert(facts_polar);
  }
  bool ok() const { return db_ != nullptr; }

  void Insert(const std::string& facts_polar) {
    absl::StatusOr<std::vector<Fact>> facts = ParseFactsPolar(facts_polar, "facts.polar");
    ASSERT_TRUE(facts.ok()) << facts.status().message();
    std::vector<Change> changes;
    for (Fact& f : *facts) changes.push_back({Change::Kind::kInsert, std::move(f), {}});
    absl::StatusOr<uint64_t> r = db_->Apply(changes);
    ASSERT_TRUE(r.ok()) << r.status().message();
  }

  std::shared_ptr<const Snapshot> snap() const { return db_->snapshot(); }
  Database& db() { return *db_; }
  const Policy& policy() const { return *policy_; }

  Decision Check(std::string_view actor, std::string_view action, std::string_view resource,
                 const QueryOptions& options = {}) const {
    return snap()->Check(V(actor), action, V(resource), options);
  }
  bool Allowed(std::string_view actor, std::string_view action, std::string_view resource,
               const QueryOptions& options = {}) const {
    Decision d = Check(actor, action, resource, options);
    EXPECT_TRUE(d.reasons.empty()) << d.reasons[0];
    return d.allowed;
  }
  std::vector<std::string> List(std::string_view actor, std::string_view action, std::string_view type,
                                bool* wildcard = nullptr, const QueryOptions& options = {}) const {
    absl::StatusOr<std::vector<std::string>> r = snap()->List(V(actor), action, type, options, wildcard);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::vector<std::string>{};
  }
  std::vector<std::string> Actions(std::string_view actor, std::string_view resource, bool* wildcard = nullptr) const {
    absl::StatusOr<std::vector<std::string>> r = snap()->Actions(V(actor), V(resource), {}, wildcard);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : std::vector<std::string>{};
  }
  // Query rows rendered as "var=Type:id" joined by ' ' ("var=*" for a wildcard), sorted.
  std::vector<std::string> Query(std::string_view text, const QueryOptions& options = {}) const {
    absl::StatusOr<ConjunctiveQuery> q = ParseQuery(text);
    EXPECT_TRUE(q.ok()) << q.status().message();
    if (!q.ok()) return {};
    absl::StatusOr<QueryResult> r = snap()->Query(*q, options);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return {};
    EXPECT_TRUE(r->reasons.empty()) << r->reasons[0];
    std::vector<std::string> rows;
    for (const auto& row : r->rows) {
      std::string s;
      for (size_t i = 0; i < row.size(); ++i) {
        if (i > 0) s += ' ';
        s += r->vars[i] + "=" + (row[i] ? ToString(*row[i]) : "*");
      }
      rows.push_back(s);
    }
    std::sort(rows.begin(), rows.end());
    return rows;
  }

  std::vector<Diagnostic> diagnostics;

 private:
  std::shared_ptr<const Policy> policy_;
  std::unique_ptr<Database> db_;
};

}  // namespace mandate::testing

#endif  // MANDATE_TESTS_UNIT_ENGINE_ENGINE_TEST_UTIL_H_
