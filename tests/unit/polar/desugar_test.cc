// Desugaring: the exact expansion of each shorthand form (Oso Cloud order: has_relation(child, rel,
// parent)), the implicit allow, type information and fact signatures.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "polar/polar.h"
#include "polar_test_util.h"

namespace mandate::polar {
namespace {

using polar_test::AnalyzeText;
using polar_test::Analyzed;
using polar_test::RuleTexts;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kOrgRepo[] = R"(actor User {}
global { roles = ["superadmin"]; }
resource Org {
  roles = ["member", "owner"];
  permissions = ["manage"];
}
resource Repo {
  roles = ["reader", "writer"];
  permissions = ["read", "write", "delete"];
  relations = { parent: Org, creator: User };
  "read" if "reader";
  "write" if "writer";
  "read" if "write";
  "delete" if "creator";
  "reader" if "member" on "parent";
  "delete" if "manage" on "parent";
  "writer" if global "superadmin";
  "read" if is_public(resource) and not is_banned(actor);
}
)";

DesugaredPolicy AnalyzeOk(const std::string& text) {
  Analyzed a = AnalyzeText(text);
  for (const std::string& e : a.Errors()) ADD_FAILURE() << e;
  if (!a.policy) return DesugaredPolicy{};
  return *a.policy;
}

TEST(DesugarTest, EachShorthandFormExpandsExactly) {
  DesugaredPolicy p = AnalyzeOk(kOrgRepo);
  EXPECT_THAT(RuleTexts(p),
              ElementsAre(
                  R"(has_permission(actor: Actor, "read", resource: Repo) if has_role(actor, "reader", resource))",
                  R"(has_permission(actor: Actor, "write", resource: Repo) if has_role(actor, "writer", resource))",
                  R"(has_permission(actor: Actor, "read", resource: Repo) if has_permission(actor, "write", resource))",
                  R"(has_permission(actor: Actor, "delete", resource: Repo) if has_relation(resource, "creator", actor))",
                  R"(has_role(actor: Actor, "reader", resource: Repo) if has_relation(resource, "parent", related) and related matches Org and has_role(actor, "member", related))",
                  R"(has_permission(actor: Actor, "delete", resource: Repo) if has_relation(resource, "parent", related) and related matches Org and has_permission(actor, "manage", related))",
                  R"(has_role(actor: Actor, "writer", resource: Repo) if has_role(actor, "superadmin"))",
                  R"(has_permission(actor: Actor, "read", resource: Repo) if is_public(resource) and not is_banned(actor))",
                  R"(allow(actor: Actor, action: String, resource: Resource) if has_permission(actor, action, resource))"));
  EXPECT_TRUE(p.implicit_allow);
}

TEST(DesugarTest, OriginIsTheShorthandTextAndSpansPointAtIt) {
  DesugaredPolicy p = AnalyzeOk(kOrgRepo);
  ASSERT_THAT(p.rules, SizeIs(9));
  EXPECT_EQ(p.rules[0].origin, R"(resource Repo: "read" if "reader")");
  EXPECT_EQ(p.rules[4].origin, R"(resource Repo: "reader" if "member" on "parent")");
  EXPECT_EQ(p.rules[6].origin, R"(resource Repo: "writer" if global "superadmin")");
  EXPECT_EQ(p.rules[7].origin, R"(resource Repo: "read" if is_public(resource) and not is_banned(actor))");
  EXPECT_EQ(p.rules[4].span.line, 15u);
  EXPECT_EQ(p.rules[4].span.col, 3u);
  EXPECT_EQ(p.rules[4].name_span.col, 3u);
  // The call built from `"member"` points at that string.
  const Expr& body = *p.rules[4].body;
  EXPECT_EQ(body.children[2].span.col, 15u);
  EXPECT_EQ(body.children[0].span.col, 27u);
  EXPECT_FALSE(p.rules[8].origin.empty());  // implicit allow says so
}

TEST(DesugarTest, GlobalBlockHeadsTakeTwoArguments) {
  DesugaredPolicy p = AnalyzeOk(R"(actor User {}
global {
  roles = ["admin", "viewer"];
  permissions = ["audit"];
  "viewer" if "admin";
  "audit" if "admin";
}
resource Doc { permissions = ["read"]; "read" if global "viewer"; }
)");
  EXPECT_THAT(RuleTexts(p), ElementsAre(R"(has_role(actor: Actor, "viewer") if has_role(actor, "admin"))",
                                        R"(has_permission(actor: Actor, "audit") if has_role(actor, "admin"))",
                                        R"(has_permission(actor: Actor, "read", resource: Doc) if has_role(actor, "viewer"))",
                                        R"(allow(actor: Actor, action: String, resource: Resource) if has_permission(actor, action, resource))"));
  EXPECT_EQ(p.rules[0].origin, R"(global: "viewer" if "admin")");
  EXPECT_THAT(p.global_roles, ElementsAre("admin", "viewer"));
  EXPECT_THAT(p.global_permissions, ElementsAre("audit"));
}

TEST(DesugarTest, ActorBlocksMayHoldShorthands) {
  DesugaredPolicy p = AnalyzeOk(R"(actor User {}
actor Team {
  roles = ["member", "lead"];
  relations = { parent: Team };
  "member" if "lead";
  "member" if "member" on "parent";
}
)");
  EXPECT_THAT(RuleTexts(p), ElementsAre(R"(has_role(actor: Actor, "member", resource: Team) if has_role(actor, "lead", resource))",
                                        R"(has_role(actor: Actor, "member", resource: Team) if has_relation(resource, "parent", related) and related matches Team and has_role(actor, "member", related))",
                                        R"(allow(actor: Actor, action: String, resource: Resource) if has_permission(actor, action, resource))"));
  EXPECT_EQ(p.rules[0].origin, R"(actor Team: "member" if "lead")");
  ASSERT_TRUE(p.types.count("Team"));
  EXPECT_TRUE(p.types.at("Team").is_actor);
  EXPECT_THAT(p.types.at("Team").roles, ElementsAre("member", "lead"));
  EXPECT_EQ(p.types.at("Team").relations.at("parent"), "Team");
}

TEST(DesugarTest, ImplicitAllowOnlyWithoutAnAllowRule) {
  DesugaredPolicy with = AnalyzeOk(R"(actor User {}
resource Repo { permissions = ["read"]; }
allow(actor: User, "read", repo: Repo) if has_permission(actor, "read", repo);
)");
  EXPECT_FALSE(with.implicit_allow);
  EXPECT_THAT(RuleTexts(with), ElementsAre(R"(allow(actor: User, "read", repo: Repo) if has_permission(actor, "read", repo))"));
  DesugaredPolicy without = AnalyzeOk("actor User {}\nresource Repo { permissions = [\"read\"]; }");
  EXPECT_TRUE(without.implicit_allow);
  ASSERT_THAT(without.rules, SizeIs(1));
  EXPECT_EQ(without.rules[0].name, "allow");
  EXPECT_EQ(without.rules[0].span.line, 0u);  // generated: no source position
  // A bodyless allow fact also counts as the policy's own allow.
  EXPECT_FALSE(AnalyzeOk("actor User {}\nresource Repo {}\nallow(User{\"a\"}, \"read\", Repo{\"r\"});").implicit_allow);
}

TEST(DesugarTest, TypesAndExtends) {
  DesugaredPolicy p = AnalyzeOk(R"(actor User {}
resource Base { roles = ["viewer"]; permissions = ["read"]; }
resource Doc extends Base {
  permissions = ["edit"];
  "edit" if "viewer";
}
)");
  ASSERT_THAT(p.types, SizeIs(3));
  EXPECT_FALSE(p.types.at("Doc").is_actor);
  EXPECT_EQ(p.types.at("Doc").extends, "Base");
  EXPECT_THAT(p.types.at("Doc").permissions, ElementsAre("edit"));  // own declarations only
  EXPECT_EQ(p.types.at("Doc").span.line, 3u);
  EXPECT_THAT(RuleTexts(p), Contains(R"(has_permission(actor: Actor, "edit", resource: Doc) if has_role(actor, "viewer", resource))"));
}

std::vector<std::string> SignatureTexts(const DesugaredPolicy& p, const std::string& predicate) {
  std::vector<std::string> out;
  auto it = p.signatures.find(predicate);
  if (it == p.signatures.end()) return out;
  for (const Signature& s : it->second) {
    std::string text = "(";
    for (size_t i = 0; i < s.arg_types.size(); ++i) text += (i ? ", " : "") + (s.arg_types[i].empty() ? std::string("*") : s.arg_types[i]);
    out.push_back(text + ")");
  }
  return out;
}

TEST(DesugarTest, Signatures) {
  DesugaredPolicy p = AnalyzeOk(std::string(kOrgRepo) + R"(
declare has_tag(Repo, String);
declare has_tag(Org, String);
declare is_banned(User);
allow(actor: User, "archive", repo: Repo) if
  owner_of(actor, repo) and archived_at(repo, t) and t matches Integer and t < @current_unix_time
  and flag(repo, "x", 3, true, Org{"o"}, unknown);
)");
  EXPECT_THAT(SignatureTexts(p, "has_role"), ElementsAre("(Actor, String, Resource)", "(Actor, String)"));
  EXPECT_THAT(SignatureTexts(p, "has_relation"), ElementsAre("(Resource, String, Resource)"));
  EXPECT_THAT(SignatureTexts(p, "has_tag"), ElementsAre("(Repo, String)", "(Org, String)"));
  EXPECT_THAT(SignatureTexts(p, "is_banned"), ElementsAre("(User)"));  // declared: call sites add nothing
  EXPECT_THAT(SignatureTexts(p, "is_public"), ElementsAre("(Repo)"));   // from the shorthand's `resource: Repo`
  EXPECT_THAT(SignatureTexts(p, "owner_of"), ElementsAre("(User, Repo)"));
  EXPECT_THAT(SignatureTexts(p, "archived_at"), ElementsAre("(Repo, Integer)"));  // `t matches Integer`
  EXPECT_THAT(SignatureTexts(p, "flag"), ElementsAre("(Repo, String, Integer, Boolean, Org, *)"));
  // Defined by rules with bodies: no signature of their own.
  EXPECT_THAT(SignatureTexts(p, "has_permission"), IsEmpty());
  EXPECT_THAT(SignatureTexts(p, "allow"), IsEmpty());
  EXPECT_EQ(p.signatures.at("has_tag")[0].span.line, 21u);
}

TEST(DesugarTest, NoGlobalRoleSignatureWithoutGlobalRoles) {
  DesugaredPolicy p = AnalyzeOk("actor User {}");
  EXPECT_THAT(SignatureTexts(p, "has_role"), ElementsAre("(Actor, String, Resource)"));
  // Only the implicit allow calls has_permission; it is not inferred as a stored predicate.
  EXPECT_THAT(SignatureTexts(p, "has_permission"), IsEmpty());
}

TEST(DesugarTest, TestsFixturesAndSourcesAreCarried) {
  DesugaredPolicy p = AnalyzeOk(R"(actor User {}
resource Repo { roles = ["r"]; permissions = ["read"]; "read" if "r"; }
test fixture f { has_role(User{"a"}, "r", Repo{"x"}); }
test "t" { setup { fixture f; } assert allow(User{"a"}, "read", Repo{"x"}); }
)");
  ASSERT_THAT(p.tests, SizeIs(1));
  ASSERT_THAT(p.fixtures, SizeIs(1));
  ASSERT_THAT(p.sources, SizeIs(1));
  EXPECT_EQ(p.sources[0].filename, "p.polar");
  EXPECT_THAT(p.warnings, IsEmpty());
}

TEST(DesugarTest, WarningsAreKeptInThePolicy) {
  Analyzed a = AnalyzeText("actor User {}\nhelper(x: User) if x = x;");
  ASSERT_TRUE(a.policy.has_value());
  ASSERT_THAT(a.policy->warnings, SizeIs(1));
  EXPECT_EQ(a.policy->warnings[0].message, "rule helper/1 is never used");
  EXPECT_THAT(a.Warnings(), ElementsAre("2:1: rule helper/1 is never used"));
  EXPECT_THAT(a.Errors(), Not(Contains("")));
}

}  // namespace
}  // namespace mandate::polar
