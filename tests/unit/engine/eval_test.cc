// Evaluation semantics through the public API: shorthands, recursion, negation, comparisons,
// wildcards, context facts, limits and queries.
#include <algorithm>

#include "engine_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mandate::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr char kOrgRepo[] = R"(
actor User {}
resource Org {
  roles = ["member", "admin"];
  permissions = ["read_org"];
  "read_org" if "member";
  "member" if "admin";
}
resource Repo {
  roles = ["reader", "maintainer"];
  permissions = ["read", "write", "delete"];
  relations = { parent: Org, creator: User };
  "read" if "reader";
  "write" if "maintainer";
  "reader" if "maintainer";
  "reader" if "member" on "parent";
  "maintainer" if "admin" on "parent";
  "delete" if "creator";
  "delete" if "admin" on "parent";
}
)";

constexpr char kOrgRepoFacts[] = R"(
has_role(User{"alice"}, "admin", Org{"acme"});
has_role(User{"bob"}, "member", Org{"acme"});
has_role(User{"carol"}, "reader", Repo{"tools"});
has_relation(Repo{"anvil"}, "parent", Org{"acme"});
has_relation(Repo{"tools"}, "parent", Org{"other"});
has_relation(Repo{"tools"}, "creator", User{"dave"});
)";

TEST(EvalTest, ShorthandRolesPermissionsAndRelations) {
  World w(kOrgRepo, kOrgRepoFacts);
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w.Allowed("User:alice", "read", "Repo:anvil"));    // admin -> maintainer -> reader
  EXPECT_TRUE(w.Allowed("User:alice", "write", "Repo:anvil"));   // admin on parent -> maintainer
  EXPECT_TRUE(w.Allowed("User:alice", "delete", "Repo:anvil"));  // admin on parent
  EXPECT_TRUE(w.Allowed("User:bob", "read", "Repo:anvil"));      // member on parent
  EXPECT_FALSE(w.Allowed("User:bob", "write", "Repo:anvil"));
  EXPECT_TRUE(w.Allowed("User:bob", "read_org", "Org:acme"));
  EXPECT_TRUE(w.Allowed("User:alice", "read_org", "Org:acme"));  // admin -> member
  EXPECT_TRUE(w.Allowed("User:carol", "read", "Repo:tools"));
  EXPECT_FALSE(w.Allowed("User:carol", "read", "Repo:anvil"));
  EXPECT_TRUE(w.Allowed("User:dave", "delete", "Repo:tools"));  // relation used as the implier
  EXPECT_FALSE(w.Allowed("User:dave", "read", "Repo:tools"));
  // Unknown strings never match and never error.
  EXPECT_FALSE(w.Allowed("User:zed", "read", "Repo:anvil"));
  EXPECT_FALSE(w.Allowed("User:alice", "fly", "Repo:anvil"));
  EXPECT_FALSE(w.Allowed("Ghost:alice", "read", "Repo:anvil"));
  // Wrong types fail the typed parameters.
  EXPECT_FALSE(w.Allowed("User:alice", "read", "Org:acme"));
}

TEST(EvalTest, ListAndActions) {
  World w(kOrgRepo, kOrgRepoFacts);
  EXPECT_THAT(w.List("User:alice", "read", "Repo"), ElementsAre("anvil"));
  EXPECT_THAT(w.List("User:carol", "read", "Repo"), ElementsAre("tools"));
  EXPECT_THAT(w.List("User:nobody", "read", "Repo"), IsEmpty());
  EXPECT_THAT(w.Actions("User:alice", "Repo:anvil"), ElementsAre("delete", "read", "write"));
  EXPECT_THAT(w.Actions("User:bob", "Repo:anvil"), ElementsAre("read"));
  EXPECT_THAT(w.Actions("User:bob", "Org:acme"), ElementsAre("read_org"));
}

TEST(EvalTest, GlobalRolesAndExpressionShorthands) {
  World w(R"(
actor User {}
global { roles = ["superadmin"]; }
resource Doc {
  permissions = ["read", "edit"];
  "edit" if global "superadmin";
  "read" if is_public(resource);
  "read" if "edit";
}
)",
          R"(
has_role(User{"root"}, "superadmin");
is_public(Doc{"readme"});
)");
  ASSERT_TRUE(w.ok());
  EXPECT_TRUE(w.Allowed("User:root", "edit", "Doc:any"));
  EXPECT_TRUE(w.Allowed("User:root", "read", "Doc:any"));
  EXPECT_TRUE(w.Allowed("User:joe", "read", "Doc:readme"));
  EXPECT_FALSE(w.Allowed("User:joe", "read", "Doc:secret"));
}

TEST(EvalTest, NestedFoldersRecursion) {
  World w(R"(
actor User {}
resource Folder {
  roles = ["viewer"];
  permissions = ["view"];
  relations = { parent: Folder };
  "view" if "viewer";
  "viewer" if "viewer" on "parent";
}
)");
  std::string facts = "has_role(User{\"ann\"}, \"viewer\", Folder{\"f0\"});\n";
  for (int i = 1; i <= 60; ++i) {
    facts += "has_relation(Folder{\"f" + std::to_string(i) + "\"}, \"parent\", Folder{\"f" + std::to_string(i - 1) +
             "\"});\n";
  }
  w.Insert(facts);
  EXPECT_TRUE(w.Allowed("User:ann", "view", "Folder:f60"));
  EXPECT_TRUE(w.Allowed("User:ann", "view", "Folder:f0"));
  EXPECT_FALSE(w.Allowed("User:bob", "view", "Folder:f60"));
  EXPECT_EQ(w.List("User:ann", "view", "Folder").size(), 61u);
}

TEST(EvalTest, CyclesInDataTerminateWithCompleteAnswers) {
  World w(R"(
actor User {}
resource Folder {
  roles = ["viewer"];
  permissions = ["view"];
  relations = { parent: Folder };
  "view" if "viewer";
  "viewer" if "viewer" on "parent";
}
)",
          R"(
has_relation(Folder{"a"}, "parent", Folder{"b"});
has_relation(Folder{"b"}, "parent", Folder{"c"});
has_relation(Folder{"c"}, "parent", Folder{"a"});
has_relation(Folder{"d"}, "parent", Folder{"c"});
has_role(User{"ann"}, "viewer", Folder{"b"});
)");
  EXPECT_TRUE(w.Allowed("User:ann", "view", "Folder:a"));
  EXPECT_TRUE(w.Allowed("User:ann", "view", "Folder:d"));
  EXPECT_FALSE(w.Allowed("User:bob", "view", "Folder:a"));  // a deny must also terminate
  EXPECT_THAT(w.List("User:ann", "view", "Folder"), ElementsAre("a", "b", "c", "d"));
}

constexpr char kGroups[] = R"(
actor User {}
actor Group {}
resource Repo {
  roles = ["reader"];
  permissions = ["read"];
  "read" if "reader";
}
# Left-recursive transitive membership.
in_group(u: User, g: Group) if member_of(u, g);
in_group(u: User, g: Group) if in_group(u, mid) and sub_group(mid, g);
has_role(u: User, role: String, r: Repo) if in_group(u, g) and has_role(g, role, r);
declare member_of(User, Group);
declare sub_group(Group, Group);
)";

TEST(EvalTest, GroupsOfGroupsLeftRecursionIsComplete) {
  World w(kGroups, R"(
member_of(User{"ann"}, Group{"g1"});
sub_group(Group{"g1"}, Group{"g2"});
sub_group(Group{"g2"}, Group{"g3"});
sub_group(Group{"g3"}, Group{"g1"});
sub_group(Group{"g3"}, Group{"g4"});
has_role(Group{"g4"}, "reader", Repo{"deep"});
has_role(Group{"g2"}, "reader", Repo{"mid"});
)");
  EXPECT_TRUE(w.Allowed("User:ann", "read", "Repo:deep"));
  EXPECT_TRUE(w.Allowed("User:ann", "read", "Repo:mid"));
  EXPECT_FALSE(w.Allowed("User:bob", "read", "Repo:deep"));
  EXPECT_FALSE(w.Allowed("User:ann", "read", "Repo:none"));
  EXPECT_THAT(w.List("User:ann", "read", "Repo"), ElementsAre("deep", "mid"));
  EXPECT_THAT(w.Query("in_group(User:ann, g)"),
              ElementsAre("g=Group:g1", "g=Group:g2", "g=Group:g3", "g=Group:g4"));
}

TEST(EvalTest, DiamondShapedGroupsStayCheapOnDeny) {
  // 2^30 paths through a ladder of diamonds: SLD alone would explore all of them on a deny.
  World w(kGroups);
  std::string facts = "member_of(User{\"ann\"}, Group{\"l0\"});\n";
  for (int i = 0; i < 30; ++i) {
    const std::string from = "l" + std::to_string(i), to = "l" + std::to_string(i + 1);
    for (const char* side : {"a", "b"}) {
      const std::string mid = from + side;
      facts += "sub_group(Group{\"" + from + "\"}, Group{\"" + mid + "\"});\n";
      facts += "sub_group(Group{\"" + mid + "\"}, Group{\"" + to + "\"});\n";
    }
  }
  facts += "has_role(Group{\"l30\"}, \"reader\", Repo{\"top\"});\n";
  w.Insert(facts);
  EXPECT_TRUE(w.Allowed("User:ann", "read", "Repo:top"));
  EXPECT_FALSE(w.Allowed("User:ann", "read", "Repo:other"));
}

TEST(EvalTest, NegationAndComparisons) {
  World w(R"(
actor User {}
resource Repo {
  permissions = ["read", "write"];
  "read" if is_public(resource) and not is_banned(actor);
  "write" if has_grant(actor, resource, expires) and expires > @current_unix_time and not is_archived(resource);
}
declare is_public(Repo);
declare is_banned(User);
declare is_archived(Repo);
declare has_grant(User, Repo, Integer);
)",
          R"(
is_public(Repo{"pub"});
is_banned(User{"eve"});
has_grant(User{"ann"}, Repo{"pub"}, 2000);
has_grant(User{"ann"}, Repo{"old"}, 900);
has_grant(User{"ann"}, Repo{"arch"}, 5000);
is_archived(Repo{"arch"});
)");
  QueryOptions at1000;
  at1000.now_unix = 1000;
  EXPECT_TRUE(w.Allowed("User:ann", "read", "Repo:pub"));
  EXPECT_FALSE(w.Allowed("User:eve", "read", "Repo:pub"));
  EXPECT_TRUE(w.Allowed("User:ann", "write", "Repo:pub", at1000));
  EXPECT_FALSE(w.Allowed("User:ann", "write", "Repo:old", at1000));   // expired
  EXPECT_FALSE(w.Allowed("User:ann", "write", "Repo:arch", at1000));  // archived
  QueryOptions at3000;
  at3000.now_unix = 3000;
  EXPECT_FALSE(w.Allowed("User:ann", "write", "Repo:pub", at3000));
  EXPECT_THAT(w.List("User:ann", "write", "Repo", nullptr, at1000), ElementsAre("pub"));
}

TEST(EvalTest, StringComparisonsAndEquality) {
  World w(R"(
actor User {}
resource Doc { permissions = ["read"]; }
has_permission(u: User, "read", d: Doc) if level(u, l) and l >= "m" and d = Doc{"x"};
declare level(User, String);
)",
          R"(
level(User{"a"}, "z");
level(User{"b"}, "c");
)");
  EXPECT_TRUE(w.Allowed("User:a", "read", "Doc:x"));
  EXPECT_FALSE(w.Allowed("User:a", "read", "Doc:y"));
  EXPECT_FALSE(w.Allowed("User:b", "read", "Doc:x"));
  EXPECT_THAT(w.List("User:a", "read", "Doc"), ElementsAre("x"));
}

TEST(EvalTest, WildcardsInListActionsAndQuery) {
  World w(R"(
actor User {}
resource Org { permissions = ["read", "audit"]; }
global { roles = ["auditor"]; }
has_permission(u: User, "read", _: Org) if is_staff(u);
has_permission(u: User, action: String, _: Org) if has_role(u, "auditor") and action = "audit";
declare is_staff(User);
)",
          R"(
is_staff(User{"sam"});
has_role(User{"aud"}, "auditor");
)");
  bool wildcard = false;
  EXPECT_THAT(w.List("User:sam", "read", "Org", &wildcard), IsEmpty());
  EXPECT_TRUE(wildcard);
  EXPECT_TRUE(w.Allowed("User:sam", "read", "Org:anything"));
  w.List("User:joe", "read", "Org", &wildcard);
  EXPECT_FALSE(wildcard);
  EXPECT_THAT(w.Query("allow(User:sam, action, org: Org)"), ElementsAre("action=String:read org=*"));
  EXPECT_THAT(w.Actions("User:aud", "Org:o"), ElementsAre("audit"));
}

TEST(EvalTest, ContextFactsAreVisibleOnlyToTheirRequest) {
  World w(kOrgRepo, kOrgRepoFacts);
  QueryOptions ctx;
  ctx.context_facts.push_back(
      {"has_relation", {V("Repo:new"), V("String:parent"), V("Org:acme")}});
  EXPECT_TRUE(w.Allowed("User:bob", "read", "Repo:new", ctx));
  EXPECT_FALSE(w.Allowed("User:bob", "read", "Repo:new"));
  // Context facts may name strings never stored anywhere.
  QueryOptions fresh;
  fresh.context_facts.push_back({"has_role", {V("User:zoe-unseen"), V("String:reader"), V("Repo:unseen-repo")}});
  EXPECT_TRUE(w.Allowed("User:zoe-unseen", "read", "Repo:unseen-repo", fresh));
  EXPECT_THAT(w.List("User:zoe-unseen", "read", "Repo", nullptr, fresh), ElementsAre("unseen-repo"));
}

TEST(EvalTest, LimitsDenyWithReason) {
  World w(R"(
actor User {}
resource Folder {
  roles = ["viewer"];
  permissions = ["view"];
  relations = { parent: Folder };
  "view" if "viewer";
  "viewer" if "viewer" on "parent";
}
)");
  std::string facts = "has_role(User{\"ann\"}, \"viewer\", Folder{\"f0\"});\n";
  for (int i = 1; i <= 40; ++i) {
    facts += "has_relation(Folder{\"f" + std::to_string(i) + "\"}, \"parent\", Folder{\"f" + std::to_string(i - 1) +
             "\"});\n";
  }
  w.Insert(facts);
  QueryOptions shallow;
  shallow.limits.max_depth = 10;
  Decision d = w.Check("User:ann", "view", "Folder:f40", shallow);
  EXPECT_FALSE(d.allowed);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_EQ(d.reasons[0], "evaluation depth limit (10) exceeded");
  QueryOptions few;
  few.limits.max_steps = 20;
  d = w.Check("User:ann", "view", "Folder:f40", few);
  EXPECT_FALSE(d.allowed);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_EQ(d.reasons[0], "evaluation step limit (20) exceeded");
  EXPECT_TRUE(w.Allowed("User:ann", "view", "Folder:f40"));  // default limits suffice
  // List and query report the limit instead of returning partial answers silently.
  EXPECT_FALSE(w.snap()->List(V("User:ann"), "view", "Folder", few).ok());
  absl::StatusOr<QueryResult> q = w.snap()->Query(*ParseQuery("allow(User:ann, \"view\", f: Folder)"), few);
  ASSERT_TRUE(q.ok());
  EXPECT_THAT(q->reasons, ElementsAre("evaluation step limit (20) exceeded"));
}

TEST(EvalTest, LongBodiesInDeepRecursionHitALimitNotTheStack) {
  std::string checks;
  for (int i = 0; i < 20; ++i) checks += " and ok(y)";
  World w(R"p(actor User {}
resource Node { permissions = ["reach"]; }
declare edge(Node, Node);
declare ok(Node);
declare start(User, Node);
step(x: Node, y: Node) if edge(x, y))p" + checks + R"p(;
reaches(x: Node, z: Node) if x = z;
reaches(x: Node, z: Node) if step(x, y) and reaches(y, z);
has_permission(u: User, "reach", n: Node) if start(u, s) and reaches(s, n);
)p");
  std::string facts = "start(User{\"u\"}, Node{\"n0\"});\n";
  for (int i = 0; i < 240; ++i) {
    facts += "edge(Node{\"n" + std::to_string(i) + "\"}, Node{\"n" + std::to_string(i + 1) + "\"});\n";
    facts += "ok(Node{\"n" + std::to_string(i + 1) + "\"});\n";
  }
  w.Insert(facts);
  EXPECT_TRUE(w.Allowed("User:u", "reach", "Node:n10"));
  Decision d = w.Check("User:u", "reach", "Node:n240");
  EXPECT_FALSE(d.allowed);
  ASSERT_EQ(d.reasons.size(), 1u);
  EXPECT_THAT(d.reasons[0], ::testing::HasSubstr("limit"));
}

TEST(EvalTest, QueriesWithConstraintsAndJoins) {
  World w(kOrgRepo, kOrgRepoFacts);
  EXPECT_THAT(w.Query("has_relation(repo, \"parent\", Org:acme)"), ElementsAre("repo=Repo:anvil"));
  EXPECT_THAT(w.Query("has_role(u, \"admin\", org) and has_relation(repo, \"parent\", org)"),
              ElementsAre("u=User:alice org=Org:acme repo=Repo:anvil"));
  ConjunctiveQuery q = *ParseQuery("allow(user, \"read\", repo)");
  q.constraints["user"] = {"User", std::vector<std::string>{"alice", "carol", "unknown"}};
  q.constraints["repo"] = {"Repo", std::vector<std::string>{"anvil", "tools"}};
  absl::StatusOr<QueryResult> r = w.snap()->Query(q);
  ASSERT_TRUE(r.ok()) << r.status().message();
  std::vector<std::string> rows;
  for (const auto& row : r->rows) rows.push_back(row[0]->id + "/" + row[1]->id);
  std::sort(rows.begin(), rows.end());
  EXPECT_THAT(rows, ElementsAre("alice/anvil", "carol/tools"));
  EXPECT_FALSE(w.snap()->Query(*ParseQuery("nonexistent(x)")).ok());
}

TEST(EvalTest, PolicyFactsAndUserAllowRules) {
  World w(R"(
actor User {}
resource Page { permissions = ["view"]; }
allow(_: User, "view", Page{"home"});
allow(u: User, "view", p: Page) if owner(p, u);
owner(Page{"blog"}, User{"ann"});
)");
  EXPECT_TRUE(w.Allowed("User:anyone", "view", "Page:home"));
  EXPECT_TRUE(w.Allowed("User:ann", "view", "Page:blog"));
  EXPECT_FALSE(w.Allowed("User:bob", "view", "Page:blog"));
  EXPECT_THAT(w.List("User:ann", "view", "Page"), ElementsAre("blog", "home"));
}

TEST(EvalTest, OrAndParenthesesInBodies) {
  World w(R"(
actor User {}
resource Doc { permissions = ["read"]; }
has_permission(u: User, "read", d: Doc) if (tag(d, "a") or tag(d, "b")) and not (tag(d, "x") and flagged(u));
declare tag(Doc, String);
declare flagged(User);
)",
          R"(
tag(Doc{"1"}, "a");
tag(Doc{"2"}, "b");
tag(Doc{"2"}, "x");
tag(Doc{"3"}, "c");
flagged(User{"f"});
)");
  EXPECT_TRUE(w.Allowed("User:u", "read", "Doc:1"));
  EXPECT_TRUE(w.Allowed("User:u", "read", "Doc:2"));
  EXPECT_FALSE(w.Allowed("User:f", "read", "Doc:2"));
  EXPECT_TRUE(w.Allowed("User:f", "read", "Doc:1"));
  EXPECT_FALSE(w.Allowed("User:u", "read", "Doc:3"));
}

}  // namespace
}  // namespace mandate::testing
