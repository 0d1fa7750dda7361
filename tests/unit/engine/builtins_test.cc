// Agent built-ins and fact rules of the engine: time_within (windows from facts, fail closed), fact
// expiry through the public API, context/acts_for, CheckFact on roles and relations, exact query
// types, wildcards in list, and facts-file errors.
#include <fstream>

#include "absl/strings/str_split.h"
#include "engine_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mandate::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int64_t kMonday0930NewYork = 1796049000;  // 2026-11-30T09:30:00-05:00

QueryOptions At(int64_t now) {
  QueryOptions o;
  o.now_unix = now;
  return o;
}

TEST(TimeWithinTest, WindowsFromFactsAndFailClosedOnBadOnes) {
  World w(R"(actor User {}
resource Doc {
  permissions = ["read"];
  "read" if working_hours(actor, tz, days, from, to) and time_within(tz, days, from, to);
}
declare working_hours(User, String, String, String, String);
)",
          R"(working_hours(User{"ny"}, "America/New_York", "mon-fri", "09:00", "17:00");
working_hours(User{"typo"}, "America/New_Yrok", "mon-fri", "09:00", "17:00");
)");
  EXPECT_TRUE(w.Allowed("User:ny", "read", "Doc:d", At(kMonday0930NewYork)));
  EXPECT_FALSE(w.Allowed("User:ny", "read", "Doc:d", At(kMonday0930NewYork - 3600)));
  Decision bad = w.Check("User:typo", "read", "Doc:d", At(kMonday0930NewYork));
  EXPECT_FALSE(bad.allowed);
  ASSERT_EQ(bad.reasons.size(), 1u);
  EXPECT_THAT(bad.reasons[0], HasSubstr("time_within at policy.polar:4:"));
  EXPECT_THAT(bad.reasons[0], HasSubstr("\"America/New_Yrok\" is not a known IANA time zone"));
}

TEST(TimeWithinTest, ExplanationsShowTheLocalTime) {
  World w(R"(actor User {}
resource Doc {
  permissions = ["email"];
  "email" if time_within("America/New_York", "mon-fri", "08:00", "17:00");
}
)");
  QueryOptions o = At(kMonday0930NewYork - 2 * 3600);
  o.explain = true;
  Decision d = w.Check("User:a", "email", "Doc:d", o);
  ASSERT_FALSE(d.allowed);
  EXPECT_THAT(d.explanation->ToText(),
              HasSubstr("failed: time_within(\"America/New_York\", \"mon-fri\", \"08:00\", \"17:00\") at Mon 2026-11-30 "
                        "07:30:00 EST"));
}

constexpr char kRbac[] = R"(actor User {}
global { roles = ["admin"]; }
resource Org { roles = ["member"]; }
resource Repo {
  roles = ["reader"];
  permissions = ["read"];
  relations = { parent: Org };
  "reader" if "member" on "parent";
  "read" if "reader";
  "read" if global "admin";
}
)";

Change InsertFact(const std::string& polar, std::optional<int64_t> expires_at = std::nullopt) {
  absl::StatusOr<std::vector<Fact>> f = ParseFactsPolar(polar, "t");
  EXPECT_TRUE(f.ok() && f->size() == 1) << polar;
  Change c{Change::Kind::kInsert, f->front(), {}};
  c.expires_at = expires_at;
  return c;
}

TEST(ExpiryTest, AnExpiredFactIsInvisibleToEveryQuestion) {
  World w(kRbac);
  ASSERT_TRUE(w.db().Apply({InsertFact(R"(has_role(User{"tmp"}, "reader", Repo{"anvil"}))", 1000),
                            InsertFact(R"(has_role(User{"tmp"}, "admin"))", 2000)})
                  .ok());
  EXPECT_TRUE(w.Allowed("User:tmp", "read", "Repo:anvil", At(999)));
  bool wildcard = false;
  EXPECT_THAT(w.List("User:tmp", "read", "Repo", &wildcard, At(999)), ElementsAre("anvil"));
  EXPECT_TRUE(wildcard);
  // At 1000 the reader role is gone; the global admin role still holds until 2000.
  EXPECT_THAT(w.List("User:tmp", "read", "Repo", &wildcard, At(1000)), IsEmpty());
  EXPECT_TRUE(wildcard);
  EXPECT_TRUE(w.Allowed("User:tmp", "read", "Repo:anvil", At(1999)));
  EXPECT_FALSE(w.Allowed("User:tmp", "read", "Repo:anvil", At(2000)));
  EXPECT_THAT(w.Query("has_role(User:tmp, role, r: Repo)", At(999)), ElementsAre("role=String:reader r=Repo:anvil"));
  EXPECT_THAT(w.Query("has_role(User:tmp, role, r: Repo)", At(1000)), IsEmpty());
  FactPattern all{"has_role", {}, {}};
  EXPECT_EQ(w.snap()->Facts(all, SIZE_MAX, 999).size(), 2u);
  EXPECT_EQ(w.snap()->Facts(all, SIZE_MAX, 1500).size(), 1u);
  EXPECT_EQ(w.snap()->Facts(all, SIZE_MAX, 2000).size(), 0u);
  EXPECT_EQ(w.snap()->fact_count(), 2u);  // stored until deleted
  EXPECT_EQ(w.snap()->ExpiresAt(Fact{"has_role", {V("User:tmp"), V("admin")}}), 2000);
  EXPECT_EQ(w.snap()->ExpiresAt(Fact{"has_role", {V("User:nobody"), V("admin")}}), std::nullopt);
}

TEST(ExpiryTest, AGrantNeverShortensAPermanentFact) {
  World w(kRbac, R"(has_role(User{"alice"}, "admin");)");
  ASSERT_TRUE(w.db().Apply({InsertFact(R"(has_role(User{"alice"}, "admin"))", 10)}).ok());
  EXPECT_TRUE(w.Allowed("User:alice", "read", "Repo:x", At(100)));
  EXPECT_EQ(w.snap()->ExpiresAt(Fact{"has_role", {V("User:alice"), V("admin")}}), std::nullopt);
}

TEST(ExpiryTest, ExpiresAtIsForInsertsOnly) {
  World w(kRbac);
  Change del{Change::Kind::kDelete, {}, FactPattern{"has_role", {std::nullopt}, {std::nullopt}}};
  del.expires_at = 5;
  EXPECT_THAT(w.db().Apply({del}).status().message(), HasSubstr("expires_at applies to inserts only"));
}

TEST(CheckFactTest, RolesAndRelationsMustBeDeclaredOrRead) {
  World w(R"(actor User {}
global { roles = ["admin"]; }
resource Org { roles = ["member"]; }
resource Repo {
  roles = ["reader"];
  permissions = ["read"];
  relations = { parent: Org };
  "reader" if "member" on "parent";
  "read" if "reader";
}
resource Team {}
has_permission(user: User, "read", repo: Repo) if has_role(user, "owner", repo);
has_permission(user: User, "read", repo: Repo) if team matches Team and has_relation(repo, "team", team);
)");
  const Policy& p = w.policy();
  auto check = [&](std::string_view text) {
    absl::StatusOr<std::vector<Fact>> f = ParseFactsPolar(text, "t");
    EXPECT_TRUE(f.ok()) << text;
    return std::string(p.CheckFact(f->front()).message());
  };
  EXPECT_EQ(check(R"(has_relation(Repo{"anvil"}, "parent", Org{"acme"}))"), "");
  EXPECT_EQ(check(R"(has_relation(Repo{"anvil"}, "parent", User{"alice"}))"),
            "fact has_relation(Repo{\"anvil\"}, \"parent\", User{\"alice\"}): has_relation argument 3: it has type "
            "User, but relation \"parent\" of Repo points to Org");
  EXPECT_EQ(check(R"(has_relation(Repo{"anvil"}, "team", Team{"core"}))"), "");  // read by a rule
  EXPECT_EQ(check(R"(has_relation(Repo{"anvil"}, "prent", Org{"acme"}))"),
            "fact has_relation(Repo{\"anvil\"}, \"prent\", Org{\"acme\"}): has_relation argument 2: \"prent\" is not a "
            "relation of Repo (its relations: parent: Org)");
  EXPECT_EQ(check(R"(has_role(User{"a"}, "reader", Repo{"anvil"}))"), "");
  EXPECT_EQ(check(R"(has_role(User{"a"}, "owner", Repo{"anvil"}))"), "");  // read by a rule
  EXPECT_EQ(check(R"(has_role(User{"a"}, "member", Repo{"anvil"}))"),
            "fact has_role(User{\"a\"}, \"member\", Repo{\"anvil\"}): has_role argument 2: \"member\" is not a role "
            "of Repo (its roles: reader)");
  EXPECT_EQ(check(R"(has_role(User{"a"}, "admin"))"), "");
  EXPECT_THAT(check(R"(has_role(User{"a"}, "root"))"), HasSubstr("\"root\" is not a global role (global roles: admin)"));
  EXPECT_EQ(check(R"(context("device", "managed"))"), "");
  EXPECT_EQ(check(R"(acts_for(User{"bot"}, User{"alice"}))"), "");
  EXPECT_THAT(check(R"(p(1, 2, 3, 4, 5, 6))"), HasSubstr("has 6 arguments; facts have 1 to 5"));
  // Request-provided facts are not stored.
  EXPECT_THAT(w.db().Apply({InsertFact(R"(acts_for(User{"bot"}, User{"alice"}))")}).status().message(),
              HasSubstr("acts_for facts come with each request"));
}

TEST(CheckFactTest, DeclaresAcceptUndeclaredRoleNames) {
  World w(R"(actor User {}
resource Repo { roles = ["reader"]; }
declare has_role(User, String, Repo);
)");
  EXPECT_TRUE(w.policy().CheckFact(Fact{"has_role", {V("User:a"), V("anything"), V("Repo:r")}}).ok());
}

TEST(ContextTest, ContextAndActsForComeFromTheRequest) {
  World w(R"(actor User {}
actor Agent {}
resource Doc {
  permissions = ["read"];
  "read" if context("device", "managed") and acts_for(actor, principal) and principal matches User and
            has_role(principal, "reader", resource);
  roles = ["reader"];
}
)",
          R"(has_role(User{"alice"}, "reader", Doc{"d"});)");
  QueryOptions o;
  o.context_facts = {Fact{"context", {V("device"), V("managed")}},
                     Fact{"acts_for", {V("Agent:bot"), V("User:alice")}}};
  EXPECT_TRUE(w.Allowed("Agent:bot", "read", "Doc:d", o));
  o.context_facts[0].args[1] = V("byod");
  EXPECT_FALSE(w.Allowed("Agent:bot", "read", "Doc:d", o));
}

TEST(ListTest, WildcardsFromGlobalRolesAndExactTypes) {
  World w(R"(actor User {}
global { roles = ["admin"]; }
resource Item {
  roles = ["viewer"];
  permissions = ["view"];
  "view" if "viewer";
  "view" if global "admin";
}
resource Document extends Item {}
)",
          R"(has_role(User{"root"}, "admin");
has_role(User{"ann"}, "viewer", Item{"i1"});
has_role(User{"ann"}, "viewer", Document{"d1"});
)");
  bool wildcard = false;
  EXPECT_THAT(w.List("User:root", "view", "Document", &wildcard), IsEmpty());
  EXPECT_TRUE(wildcard);
  EXPECT_THAT(w.List("User:ann", "view", "Item", &wildcard), ElementsAre("i1"));
  EXPECT_FALSE(wildcard);
  EXPECT_THAT(w.List("User:ann", "view", "Document", &wildcard), ElementsAre("d1"));
  EXPECT_THAT(w.Query("allow(User:ann, \"view\", x: Item)"), ElementsAre("x=Item:i1"));
  EXPECT_THAT(w.Query("allow(User:ann, \"view\", x: Resource)"), ElementsAre("x=Document:d1", "x=Item:i1"));
}

TEST(FactsFileTest, EveryBadFactIsReportedWithItsLine) {
  World w(kRbac);
  const std::string path = ::testing::TempDir() + "/bad_facts.polar";
  {
    std::ofstream out(path);
    out << "has_role(User{\"a\"}, \"reader\", Repo{\"x\"});\n";
    for (int i = 0; i < 25; ++i) out << "has_role(User{\"a\"}, \"rdr\", Repo{\"x" << i << "\"});\n";
  }
  absl::StatusOr<std::vector<Fact>> facts = LoadFactsFile(path, w.policy());
  ASSERT_FALSE(facts.ok());
  const std::vector<std::string> lines = absl::StrSplit(std::string(facts.status().message()), '\n');
  ASSERT_EQ(lines.size(), 21u);
  EXPECT_THAT(lines[0], HasSubstr(path + ":2: fact has_role(User{\"a\"}, \"rdr\", Repo{\"x0\"})"));
  EXPECT_THAT(lines[19], HasSubstr(path + ":21: "));
  EXPECT_EQ(lines[20], "... and 5 more");
}

}  // namespace
}  // namespace mandate::testing
