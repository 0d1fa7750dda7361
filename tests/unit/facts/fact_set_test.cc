// FactSet: index lookups, delta apply and fold, deletes with wildcards, revisions.
#include "facts/fact_set.h"

#include <algorithm>
#include <set>

#include "gtest/gtest.h"

namespace mandate::facts {
namespace {

SymbolId S(std::string_view s) { return SymbolTable::Global().Intern(s); }
Value Str(std::string_view s) { return Value::String(S(s)); }
Value Inst(std::string_view type, std::string_view id) { return Value::Instance(S(type), S(id)); }

const PredicateKey kRole{S("has_role"), 3};

FactChange Insert(std::vector<Value> t) { return {FactChange::Kind::kInsert, kRole, std::move(t), {}}; }
FactChange Delete(std::vector<ArgPattern> p) { return {FactChange::Kind::kDelete, kRole, {}, std::move(p)}; }

std::vector<Value> Role(int user, std::string_view role, int org) {
  return {Inst("User", "u" + std::to_string(user)), Str(role), Inst("Org", "o" + std::to_string(org))};
}

// All rows matching `pattern`, as a sorted set of user ids (for comparisons).
std::multiset<std::string> Users(const FactSet& fs, std::vector<Value> pattern) {
  std::multiset<std::string> out;
  fs.Relation(kRole).ForEach(pattern.data(), [&](const Value* row) {
    out.insert(std::string(SymbolTable::Global().Name(row[0].symbol())));
    return true;
  });
  return out;
}

TEST(FactSetTest, EmptySetHasNothing) {
  FactSet fs;
  EXPECT_EQ(fs.size(), 0u);
  EXPECT_EQ(fs.revision(), 0u);
  std::vector<Value> t = Role(1, "admin", 1);
  EXPECT_FALSE(fs.Relation(kRole).Contains(t.data()));
  EXPECT_TRUE(Users(fs, {Value{}, Value{}, Value{}}).empty());
}

TEST(FactSetTest, FullAndPartialLookups) {
  std::vector<std::pair<PredicateKey, std::vector<Value>>> facts;
  for (int u = 0; u < 100; ++u) {
    facts.push_back({kRole, Role(u, u % 2 ? "member" : "admin", u % 10)});
  }
  facts.push_back({kRole, Role(0, "admin", 0)});  // duplicate, dropped
  FactSet fs = FactSet::FromFacts(facts, 7);
  EXPECT_EQ(fs.size(), 100u);
  EXPECT_EQ(fs.revision(), 7u);
  std::vector<Value> present = Role(3, "member", 3), absent = Role(3, "admin", 3);
  EXPECT_TRUE(fs.Relation(kRole).Contains(present.data()));
  EXPECT_FALSE(fs.Relation(kRole).Contains(absent.data()));
  // By org (position 2): users u with u % 10 == 4.
  EXPECT_EQ(Users(fs, {Value{}, Value{}, Inst("Org", "o4")}),
            (std::multiset<std::string>{"u14", "u24", "u34", "u4", "u44", "u54", "u64", "u74", "u84", "u94"}));
  // Two bound positions: the most selective index is used and the other filters.
  EXPECT_EQ(Users(fs, {Value{}, Str("admin"), Inst("Org", "o4")}),
            (std::multiset<std::string>{"u14", "u24", "u34", "u4", "u44", "u54", "u64", "u74", "u84", "u94"}));
  EXPECT_TRUE(Users(fs, {Value{}, Str("member"), Inst("Org", "o4")}).empty());
  // A value held by exactly one row.
  EXPECT_EQ(Users(fs, {Inst("User", "u42"), Value{}, Value{}}), (std::multiset<std::string>{"u42"}));
  EXPECT_TRUE(Users(fs, {Inst("User", "nobody"), Value{}, Value{}}).empty());
  EXPECT_EQ(Users(fs, {Value{}, Value{}, Value{}}).size(), 100u);
  // Stopping early.
  int seen = 0;
  std::vector<Value> any(3);
  EXPECT_FALSE(fs.Relation(kRole).ForEach(any.data(), [&](const Value*) { return ++seen < 5; }));
  EXPECT_EQ(seen, 5);
}

TEST(FactSetTest, ApplyBuildsDeltaSharingTheBase) {
  std::vector<std::pair<PredicateKey, std::vector<Value>>> facts;
  for (int u = 0; u < 20000; ++u) facts.push_back({kRole, Role(u, "member", u % 100)});
  FactSet base = FactSet::FromFacts(facts);
  bool changed = false;
  FactSet next = base.Apply({Insert(Role(1, "admin", 1)), Insert(Role(2, "member", 2))}, &changed);
  EXPECT_TRUE(changed);
  EXPECT_EQ(next.revision(), 1u);
  EXPECT_EQ(next.size(), 20001u);  // Role(2, member, 2) was already there
  EXPECT_EQ(next.delta_size(), 1u);
  std::vector<Value> added = Role(1, "admin", 1);
  EXPECT_TRUE(next.Relation(kRole).Contains(added.data()));
  EXPECT_FALSE(base.Relation(kRole).Contains(added.data()));  // the old set is untouched
  EXPECT_EQ(next.Relation(kRole).base, base.Relation(kRole).base);  // the base is shared, not copied
  EXPECT_EQ(Users(next, {Value{}, Value{}, Inst("Org", "o1")}).size(), 201u);
}

TEST(FactSetTest, NoOpWriteKeepsRevision) {
  FactSet fs = FactSet::FromFacts({{kRole, Role(1, "admin", 1)}}, 3);
  bool changed = true;
  FactSet next = fs.Apply({Insert(Role(1, "admin", 1)), Delete({{}, {kStringType, true, S("nope")}, {}})}, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(next.revision(), 3u);
}

TEST(FactSetTest, DeletesWithWildcards) {
  std::vector<std::pair<PredicateKey, std::vector<Value>>> facts;
  for (int u = 0; u < 10; ++u) {
    facts.push_back({kRole, Role(u, "member", 1)});
    facts.push_back({kRole, Role(u, "admin", 2)});
  }
  FactSet fs = FactSet::FromFacts(facts);
  // Delete every role of u3 (any role, any org), and every admin role in o2 for users other than u3.
  FactSet a = fs.Apply({Delete({{S("User"), true, S("u3")}, {}, {}})});
  EXPECT_EQ(a.size(), 18u);
  EXPECT_EQ(Users(a, {Inst("User", "u3"), Value{}, Value{}}).size(), 0u);
  // Type-only pattern: any Org in position 2 with role admin.
  FactSet b = a.Apply({Delete({{}, {kStringType, true, S("admin")}, {S("Org"), false, 0}})});
  EXPECT_EQ(b.size(), 9u);
  EXPECT_TRUE(Users(b, {Value{}, Str("admin"), Value{}}).empty());
  // A pattern of the wrong type matches nothing.
  bool changed = true;
  b.Apply({Delete({{S("Team"), false, 0}, {}, {}})}, &changed);
  EXPECT_FALSE(changed);
}

TEST(FactSetTest, InsertThenDeleteAndDeleteThenInsertInOneWrite) {
  FactSet fs = FactSet::FromFacts({{kRole, Role(1, "admin", 1)}});
  FactSet a = fs.Apply({Insert(Role(2, "admin", 1)), Delete({{S("User"), true, S("u2")}, {}, {}})});
  EXPECT_EQ(a.size(), 1u);
  std::vector<Value> t = Role(1, "admin", 1);
  FactSet b = fs.Apply({Delete({{}, {}, {}}), Insert(Role(1, "admin", 1))});
  EXPECT_EQ(b.size(), 1u);
  EXPECT_TRUE(b.Relation(kRole).Contains(t.data()));
  FactSet c = fs.Apply({Delete({{}, {}, {}})});
  EXPECT_EQ(c.size(), 0u);
  EXPECT_FALSE(c.Relation(kRole).Contains(t.data()));
  EXPECT_TRUE(Users(c, {Value{}, Value{}, Value{}}).empty());
  // Re-inserting a deleted base fact only cancels the delete.
  FactSet d = c.Apply({Insert(Role(1, "admin", 1))});
  EXPECT_TRUE(d.Relation(kRole).Contains(t.data()));
  EXPECT_EQ(d.delta_size(), 0u);
  EXPECT_EQ(Users(d, {Value{}, Value{}, Value{}}).size(), 1u);
}

TEST(FactSetTest, LargeDeltaFoldsIntoNewBase) {
  FactSet fs;
  std::vector<FactChange> changes;
  for (int u = 0; u < 3000; ++u) changes.push_back(Insert(Role(u, "member", u % 7)));
  FactSet a = fs.Apply(changes);
  EXPECT_EQ(a.size(), 3000u);
  EXPECT_EQ(a.delta_size(), 0u);  // past the threshold: folded
  // Small writes stay in the delta; many small writes eventually fold.
  FactSet b = a;
  for (int u = 3000; u < 4200; ++u) b = b.Apply({Insert(Role(u, "member", u % 7)), Delete({{S("User"), true, S("u" + std::to_string(u - 3000))}, {}, {}})});
  EXPECT_EQ(b.size(), 3000u);
  EXPECT_EQ(b.revision(), a.revision() + 1200);
  EXPECT_LT(b.delta_size(), 2100u);
  EXPECT_EQ(Users(b, {Value{}, Value{}, Inst("Org", "o3")}).size(), 3000u / 7 + (3000 % 7 > 3 ? 1 : 0));
  std::vector<Value> gone = Role(5, "member", 5), kept = Role(4100, "member", 4100 % 7);
  EXPECT_FALSE(b.Relation(kRole).Contains(gone.data()));
  EXPECT_TRUE(b.Relation(kRole).Contains(kept.data()));
}

TEST(FactSetTest, MatchesAReferenceModelUnderRandomWrites) {
  // Random inserts/deletes against a std::set model; lookups must agree after every write.
  std::set<std::vector<uint64_t>> model;
  FactSet fs;
  uint64_t x = 88172645463325252ull;
  auto rnd = [&](int n) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<int>(x % n);
  };
  auto key = [](const std::vector<Value>& t) {
    std::vector<uint64_t> k;
    for (const Value& v : t) k.push_back(uint64_t{v.type} << 32 | v.bits);
    return k;
  };
  for (int step = 0; step < 300; ++step) {
    std::vector<FactChange> batch;
    const int n = rnd(40) + 1;
    for (int i = 0; i < n; ++i) {
      std::vector<Value> t = Role(rnd(50), rnd(2) ? "admin" : "member", rnd(5));
      if (rnd(3) == 0) {
        batch.push_back(Delete({{S("User"), true, t[0].bits}, {}, {}}));
        for (auto it = model.begin(); it != model.end();) {
          it = ((*it)[0] & 0xffffffff) == t[0].bits ? model.erase(it) : std::next(it);
        }
      } else {
        batch.push_back(Insert(t));
        model.insert(key(t));
      }
    }
    fs = fs.Apply(batch);
    ASSERT_EQ(fs.size(), model.size()) << "step " << step;
  }
  std::set<std::vector<uint64_t>> all;
  std::vector<Value> any(3);
  fs.Relation(kRole).ForEach(any.data(), [&](const Value* row) {
    all.insert(key({row[0], row[1], row[2]}));
    return true;
  });
  EXPECT_EQ(all, model);
}

FactChange InsertUntil(std::vector<Value> t, int64_t at) {
  FactChange c = Insert(std::move(t));
  c.expires_at = at;
  return c;
}

bool LiveAt(const FactSet& fs, const std::vector<Value>& t, int64_t now) {
  const RelationView v = fs.Relation(kRole);
  return v.Contains(t.data()) && v.Live(t.data(), now);
}

TEST(FactSetExpiryTest, SetsWithoutExpiryHaveNoExpiryTable) {
  FactSet fs = FactSet().Apply({Insert(Role(1, "admin", 1))});
  EXPECT_FALSE(fs.has_expiry());
  EXPECT_EQ(fs.Relation(kRole).expiry, nullptr);
  EXPECT_EQ(fs.ExpiresAt(kRole, Role(1, "admin", 1).data()), std::nullopt);
}

TEST(FactSetExpiryTest, AnExpiredFactIsNotLiveFromItsExpiryOn) {
  FactSet fs = FactSet().Apply({InsertUntil(Role(1, "admin", 1), 1000), Insert(Role(2, "admin", 1))});
  ASSERT_TRUE(fs.has_expiry());
  EXPECT_TRUE(LiveAt(fs, Role(1, "admin", 1), 999));
  EXPECT_FALSE(LiveAt(fs, Role(1, "admin", 1), 1000));
  EXPECT_TRUE(LiveAt(fs, Role(2, "admin", 1), 5000));  // no expiry
  EXPECT_EQ(fs.ExpiresAt(kRole, Role(1, "admin", 1).data()), 1000);
  EXPECT_EQ(fs.size(), 2u);  // still stored until deleted
}

TEST(FactSetExpiryTest, ReinsertingKeepsTheLaterExpiry) {
  FactSet fs = FactSet().Apply({InsertUntil(Role(1, "admin", 1), 1000)});
  bool changed = false;
  FactSet shorter = fs.Apply({InsertUntil(Role(1, "admin", 1), 500)}, &changed);
  EXPECT_FALSE(changed);
  EXPECT_EQ(shorter.ExpiresAt(kRole, Role(1, "admin", 1).data()), 1000);
  FactSet longer = fs.Apply({InsertUntil(Role(1, "admin", 1), 2000)}, &changed);
  EXPECT_TRUE(changed);
  EXPECT_EQ(longer.ExpiresAt(kRole, Role(1, "admin", 1).data()), 2000);
  FactSet forever = fs.Apply({Insert(Role(1, "admin", 1))}, &changed);
  EXPECT_TRUE(changed);
  EXPECT_FALSE(forever.has_expiry());
  EXPECT_TRUE(LiveAt(forever, Role(1, "admin", 1), 1'000'000));
  // A permanent fact stays permanent when a grant with an expiry is inserted over it.
  FactSet permanent = FactSet().Apply({Insert(Role(3, "admin", 1))}).Apply({InsertUntil(Role(3, "admin", 1), 10)}, &changed);
  EXPECT_FALSE(changed);
  EXPECT_TRUE(LiveAt(permanent, Role(3, "admin", 1), 100));
}

TEST(FactSetExpiryTest, DeletesDropTheExpiryAndReinsertsStartAfresh) {
  FactSet fs = FactSet().Apply({InsertUntil(Role(1, "admin", 1), 1000), InsertUntil(Role(2, "admin", 1), 1000)});
  ArgPattern any;
  ArgPattern user1{S("User"), true, S("u1")};
  FactSet deleted = fs.Apply({Delete({user1, any, any})});
  EXPECT_FALSE(deleted.Relation(kRole).Contains(Role(1, "admin", 1).data()));
  EXPECT_EQ(deleted.ExpiresAt(kRole, Role(1, "admin", 1).data()), std::nullopt);
  EXPECT_EQ(deleted.ExpiresAt(kRole, Role(2, "admin", 1).data()), 1000);
  FactSet again = deleted.Apply({Insert(Role(1, "admin", 1))});
  EXPECT_TRUE(LiveAt(again, Role(1, "admin", 1), 5000));
  FactSet none = again.Apply({Delete({any, any, any})});
  EXPECT_FALSE(none.has_expiry());
}

TEST(FactSetExpiryTest, ExpirySurvivesFoldingTheDeltaIntoTheBase) {
  std::vector<FactChange> many;
  for (int i = 0; i < 3000; ++i) many.push_back(Insert(Role(i, "member", 7)));
  FactSet fs = FactSet().Apply({InsertUntil(Role(1, "admin", 1), 1000)});
  fs = fs.Apply(many);  // large enough to fold
  EXPECT_EQ(fs.delta_size(), 0u);
  EXPECT_FALSE(LiveAt(fs, Role(1, "admin", 1), 1000));
  EXPECT_TRUE(LiveAt(fs, Role(1, "admin", 1), 999));
}

}  // namespace
}  // namespace mandate::facts
