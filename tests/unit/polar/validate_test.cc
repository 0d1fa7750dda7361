// Validation: each error with its message, position and hint; several errors in one report;
// warnings for unused rules.
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
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr char kBase[] = R"(actor User {}
global { roles = ["admin"]; }
resource Org {
  roles = ["member", "owner"];
  permissions = ["read"];
  relations = { parent: Org };
}
)";  // 7 lines

// Analyzes kBase + `extra` (starting on line 8) and expects it to fail.
Analyzed Bad(const std::string& extra) {
  Analyzed a = AnalyzeText(std::string(kBase) + extra);
  EXPECT_FALSE(a.policy.has_value());
  return a;
}

std::string HintOf(const Analyzed& a, const std::string& message_part) {
  const Diagnostic* d = a.Find(message_part);
  return d ? d->hint : "<no diagnostic containing: " + message_part + ">";
}

TEST(ValidateTest, BaseIsValid) {
  Analyzed a = AnalyzeText(kBase);
  EXPECT_TRUE(a.policy.has_value());
  EXPECT_THAT(a.diags, IsEmpty());
}

TEST(ValidateTest, SyntaxErrorsStopBeforeSemanticChecks) {
  Analyzed a = Bad("f(x) if ;\nresource Repo { \"read\" if \"nope\"; }\ng(x) if h(x) h(x);");
  EXPECT_THAT(a.Errors(), ElementsAre("8:9: expected a term, found ';'", "10:14: expected ';' at the end of the rule, found 'h'"));
}

TEST(ValidateTest, ShorthandHeadMustBeARoleOrPermission) {
  Analyzed a = Bad("resource Repo {\n  roles = [\"reader\"];\n  relations = { parent: Org };\n  \"raeder\" if \"reader\";\n  \"parent\" if \"reader\";\n}");
  EXPECT_THAT(a.Errors(), ElementsAre("11:3: unknown role or permission \"raeder\" in resource Repo",
                                      "12:3: \"parent\" is a relation of resource Repo; the head of a shorthand rule must be a role or permission"));
  EXPECT_EQ(HintOf(a, "raeder"), "did you mean \"reader\"?");
}

TEST(ValidateTest, ImplierMustBeDeclared) {
  Analyzed a = Bad("resource Repo {\n  permissions = [\"read\"];\n  roles = [\"reader\"];\n  \"read\" if \"readr\";\n  \"read\" if \"zzz\";\n}");
  EXPECT_THAT(a.Errors(), ElementsAre("11:13: \"readr\" is not a role, permission or relation of resource Repo",
                                      "12:13: \"zzz\" is not a role, permission or relation of resource Repo"));
  EXPECT_EQ(HintOf(a, "readr"), "did you mean \"reader\"?");
  EXPECT_EQ(HintOf(a, "zzz"), "declare it in resource Repo");
}

TEST(ValidateTest, OnRelationChecks) {
  Analyzed a = Bad(R"(resource Repo {
  roles = ["reader"];
  relations = { parent: Org, owner: User, anyone: Actor };
  "reader" if "member" on "parnt";
  "reader" if "membr" on "parent";
  "reader" if "reader" on "reader";
  "reader" if "member" on "owner";
  "reader" if "member" on "anyone";
  "reader" if "parent" on "parent";
}
)");
  EXPECT_THAT(a.Errors(),
              ElementsAre("11:27: unknown relation \"parnt\" in resource Repo",
                          "12:15: \"membr\" is not a role or permission of resource Org (the type of relation \"parent\")",
                          "13:27: \"reader\" is a role of resource Repo, not a relation",
                          "14:15: \"member\" is not a role or permission of actor User (the type of relation \"owner\")",
                          "15:27: relation \"anyone\" points to Actor, which has no block declaring roles or permissions",
                          "16:15: \"parent\" is not a role or permission of resource Org (the type of relation \"parent\")"));
  EXPECT_EQ(HintOf(a, "parnt"), "did you mean \"parent\"?");
  EXPECT_EQ(HintOf(a, "membr"), "did you mean \"member\"?");
}

TEST(ValidateTest, GlobalShorthands) {
  Analyzed a = Bad(R"(resource Repo {
  roles = ["reader"];
  "reader" if global "admn";
}
global { roles = ["x"]; relations = { p: Org }; "x" if "y" on "p"; }
)");
  EXPECT_THAT(a.Errors(), ElementsAre("10:22: \"admn\" is not a global role", "12:1: more than one global block"));
  EXPECT_EQ(HintOf(a, "admn"), "did you mean \"admin\"?");
  EXPECT_THAT(HintOf(a, "more than one global"), HasSubstr("merge it into the global block at p.polar:2:1"));
  Analyzed none = AnalyzeText("actor User {}\nresource R { roles = [\"r\"]; \"r\" if global \"boss\"; }");
  EXPECT_THAT(none.Errors(), ElementsAre("2:43: \"boss\" is not a global role"));
  EXPECT_EQ(HintOf(none, "boss"), "declare it: global { roles = [\"boss\"]; }");
  Analyzed in_global = AnalyzeText("global { roles = [\"a\"]; relations = { p: G }; \"a\" if \"b\" on \"p\"; }\nresource G {}");
  EXPECT_THAT(in_global.Errors(), ElementsAre("1:39: the global block cannot declare relations (found \"p\")",
                                              "1:61: `on` cannot be used in the global block"));
}

TEST(ValidateTest, UnknownTypesEverywhere) {
  Analyzed a = Bad(R"(resource Repo extends Orgg {
  relations = { owner: Usr };
}
declare tag(Repo, Strng);
f(x: Repoo) if x matches Ogr and g(Usr{"a"});
test "t" { setup { h(Repo{"a"}, Tag{"b"}); } assert f(x: Rep); }
)");
  EXPECT_THAT(a.Errors(), ElementsAre("8:10: unknown type \"Orgg\" in `extends` of Repo",
                                      "9:24: unknown type \"Usr\" in relation \"owner\"",
                                      "11:19: unknown type \"Strng\" in declare tag",
                                      "12:3: unknown type \"Repoo\" in parameter of f",
                                      "12:16: unknown type \"Ogr\" in `matches`",
                                      "12:36: unknown type \"Usr\" in instance",
                                      "13:33: unknown type \"Tag\" in instance",
                                      "13:55: unknown type \"Rep\" in query argument"));
  EXPECT_EQ(HintOf(a, "\"Orgg\""), "did you mean \"Org\"?");
  EXPECT_EQ(HintOf(a, "\"Tag\""), "declare it with `resource Tag {}` or `actor Tag {}`");
}

TEST(ValidateTest, BlockDeclarationErrors) {
  Analyzed a = Bad(R"(resource Repo {
  roles = ["reader", "reader"];
  permissions = ["reader"];
  relations = { reader: Org, p: String };
}
resource Repo {}
resource String {}
resource A extends B {}
resource B extends A {}
resource C extends Integer {}
)");
  EXPECT_THAT(a.Errors(), ElementsAre("9:22: duplicate role \"reader\" in resource Repo",
                                      "10:18: \"reader\" is declared as both a role and a permission in resource Repo",
                                      "11:17: \"reader\" is declared as both a role and a relation in resource Repo",
                                      "11:33: relation \"p\" must point to an actor or resource type, not String",
                                      "13:10: duplicate block for type Repo",
                                      "14:10: cannot declare a block for the built-in type String",
                                      "15:10: type A extends itself: A extends B extends A",
                                      "16:10: type B extends itself: B extends A extends B",
                                      "17:10: C cannot extend the primitive type Integer"));
  EXPECT_EQ(HintOf(a, "duplicate role"), "first declared as a role at p.polar:9:12");
}

TEST(ValidateTest, ArityErrors) {
  Analyzed a = Bad(R"(f(x: User, y) if g(x) and y = 1;
g(_x: User);
h(x: User) if f(x) and g(x, x) and has_role(x, "a", x, x) and has_relation(x, "r") and
  time_within("UTC", "mon-fri", "09:00") and context("k") and acts_for(x) and tag(x, x);
declare tag(User);
test "t" { assert f(User{"a"}); assert nothing(User{"a"}); }
)");
  EXPECT_THAT(a.Errors(), ElementsAre("10:15: f called with 1 argument, but f takes 2",
                                      "10:24: g called with 2 arguments, but g takes 1",
                                      "10:36: has_role called with 4 arguments, but has_role takes 2 or 3",
                                      "10:63: has_relation called with 2 arguments, but has_relation takes 3",
                                      "11:3: time_within called with 3 arguments, but time_within takes 4",
                                      "11:46: context called with 1 argument, but context takes 2",
                                      "11:63: acts_for called with 1 argument, but acts_for takes 2",
                                      "11:79: tag called with 2 arguments, but tag takes 1",
                                      "13:12: f called with 1 argument, but f takes 2",
                                      "13:33: unknown predicate nothing"));
  EXPECT_EQ(HintOf(a, "g called"), "g is defined at p.polar:9:1");
}

TEST(ValidateTest, AssertionsMayQueryFactPredicatesThatRulesRead) {
  Analyzed ok = AnalyzeText(std::string(kBase) + R"(allow(u: User, "read", o: Org) if expires(u, o, t) and t > 0;
test "t" { setup { expires(User{"a"}, Org{"o"}, 5); } assert expires(User{"a"}, Org{"o"}, 5); }
)");
  EXPECT_TRUE(ok.policy.has_value());
  EXPECT_THAT(ok.Errors(), IsEmpty());
  Analyzed bad = Bad(R"(allow(u: User, "read", o: Org) if expires(u, o, t) and t > 0;
test "t" { assert expires(User{"a"}, Org{"o"}); }
)");
  EXPECT_THAT(bad.Errors(), ElementsAre("9:12: expires called with 2 arguments, but expires takes 3"));
}

TEST(ValidateTest, BuiltinsCannotBeRedefined) {
  Analyzed a = Bad("time_within(a, b, c, d) if a = b;");
  EXPECT_THAT(a.Errors(), ElementsAre("8:1: time_within is built in and cannot be defined by a rule"));
}

TEST(ValidateTest, NegationNeedsBoundVariables) {
  Analyzed a = Bad(R"(allow(actor: User, "read", org: Org) if not banned(actr) and not has_role(actor, _, org);
p(x: User) if (q(x, y) or r(x)) and not s(y);
p2(x: User) if q(x, y) and (not s(y) or not s(z));
p3(x: User) if y = x and z = y and not s(z) and not s(w);
p4(x: User) if not (q(x, y) and s(z));
p5(x: User) if q(x, y) or not s(y);
)");
  EXPECT_THAT(a.Errors(), ElementsAre("8:52: variable actr is not bound before `not`",
                                      "9:43: variable y is not bound before `not`",
                                      "10:47: variable z is not bound before `not`",
                                      "11:55: variable w is not bound before `not`",
                                      "12:26: variable y is not bound before `not`",
                                      "12:35: variable z is not bound before `not`",
                                      "13:33: variable y is not bound before `not`"));
  EXPECT_THAT(HintOf(a, "actr"), HasSubstr("bind actr with a rule parameter or a positive condition"));
}

TEST(ValidateTest, ComparisonsAndMatchesNeedBoundVariables) {
  Analyzed a = Bad(R"(f(u: User) if t < @current_unix_time and g(u);
f2(u: User) if x matches Integer;
f3(u: User) if x = y;
f4(u: User) if t matches Integer and expires(u, t) and t > 0 and n = t and n != 3 and u = v and v = w;
f5(u: User) if not (t < 3);
)");
  EXPECT_THAT(a.Errors(), ElementsAre("8:15: variable t is not bound in the comparison",
                                      "9:16: variable x is not bound in `matches`",
                                      "10:16: variable x is not bound in the comparison",
                                      "10:20: variable y is not bound in the comparison",
                                      "12:21: variable t is not bound before `not`"));
  EXPECT_EQ(HintOf(a, "variable x is not bound in `matches`"), "give x a value first: a rule parameter, a call such as f(x), or x = value");
}

TEST(ValidateTest, NegatedConjunctionsMayBindTheirOwnVariables) {
  // The Oso pattern "every role the document requires": `role` is local to the negation.
  Analyzed a = AnalyzeText(std::string(kBase) + R"(resource Doc { permissions = ["read"]; "read" if can_read(actor, resource); }
can_read(user: User, doc: Doc) if
    not (role matches String and
        requires_role(doc, role) and
        not has_role(user, role, doc));
)");
  EXPECT_TRUE(a.policy.has_value());
  EXPECT_THAT(a.Errors(), IsEmpty());
  // Inside the negation, a nested `not` still needs its variables bound there.
  Analyzed b = Bad("g(u: User) if not (q(u, r) and not s(r, t));");
  EXPECT_THAT(b.Errors(), ElementsAre("8:41: variable t is not bound before `not`"));
}

TEST(ValidateTest, RecursionThroughNot) {
  Analyzed a = Bad(R"(allow(a: User, "x", o: Org) if p(a) and not p(a);
p(a: User) if q(a);
q(a: User) if not r(a);
r(a: User) if p(a);
s(a: User) if not s(a);
t(a: User) if not p(a);
resource Repo { roles = ["r"]; "r" if not has_role(actor, "r", resource); }
)");
  EXPECT_THAT(a.Errors(), ElementsAre("10:19: recursion through `not`: q calls not r, and r -> p -> q",
                                      "12:19: recursion through `not`: s calls not s",
                                      "14:43: recursion through `not`: has_role calls not has_role"));
}

TEST(ValidateTest, FactsMustMatchDeclares) {
  Analyzed a = Bad(R"(declare tag(Org, String);
declare tag(User, String);
tag(Org{"o"}, "ok");
tag(User{"u"}, 3);
has_role(User{"u"}, "member", "org");
test fixture f { tag("x", "y"); }
test "t" { setup { tag(Org{"o"}, true); has_role(User{"a"}, "admin"); has_relation(Org{"a"}, "parent", Org{"b"}); } }
)");
  EXPECT_THAT(a.Errors(),
              ElementsAre("11:1: fact tag(User{\"u\"}, 3) does not match any of: declare tag(Org, String) at p.polar:8:1; declare tag(User, String) at p.polar:9:1",
                          "12:1: fact has_role(User{\"u\"}, \"member\", \"org\") does not match any of: built-in has_role(Actor, String, Resource); built-in has_role(Actor, String)",
                          "13:18: fact tag(\"x\", \"y\") does not match any of: declare tag(Org, String) at p.polar:8:1; declare tag(User, String) at p.polar:9:1",
                          "14:20: fact tag(Org{\"o\"}, true) does not match any of: declare tag(Org, String) at p.polar:8:1; declare tag(User, String) at p.polar:9:1"));
  // Global roles exist in kBase, so has_role/2 is fine; subtypes match their supertypes.
  EXPECT_EQ(a.Find("has_role(User{\"a\"}, \"admin\")"), nullptr);
  Analyzed sub = AnalyzeText("actor User {}\nresource Doc {}\ndeclare owns(Actor, Resource);\nowns(User{\"a\"}, Doc{\"d\"});\nowns(User{\"a\"}, User{\"b\"});");
  EXPECT_TRUE(sub.policy.has_value());
}

TEST(ValidateTest, FactsNamingUndeclaredRolesOrRelationsWarn) {
  Analyzed a = AnalyzeText(std::string(kBase) + R"(resource Repo { relations = { org: Org }; }
has_role(User{"a"}, "membr", Org{"o"});
test fixture f { has_role(User{"a"}, "admn"); has_relation(Repo{"r"}, "orgg", Org{"o"}); }
test "t" { setup { has_relation(Repo{"r"}, "org", Repo{"x"}); has_role(User{"a"}, "owner", Org{"o"}); } }
)");
  ASSERT_TRUE(a.policy.has_value());
  EXPECT_THAT(a.Warnings(), ElementsAre("9:21: role \"membr\" is not declared in resource Org",
                                        "10:38: role \"admn\" is not declared in the global block",
                                        "10:71: relation \"orgg\" is not declared in resource Repo",
                                        "11:51: relation \"org\" of resource Repo points to Org, not Repo"));
  EXPECT_EQ(HintOf(a, "\"membr\""), "did you mean \"member\"?");
  EXPECT_EQ(HintOf(a, "\"admn\""), "did you mean \"admin\"?");
}

TEST(ValidateTest, Fixtures) {
  Analyzed a = Bad(R"(test fixture base { has_role(User{"a"}, "member", Org{"o"}); }
test fixture base { }
test "t" { setup { fixture bsae; fixture other; } assert has_role(User{"a"}, "member", Org{"o"}); }
)");
  EXPECT_THAT(a.Errors(), ElementsAre("9:1: duplicate fixture \"base\"", "10:28: unknown fixture \"bsae\" in test \"t\"",
                                      "10:42: unknown fixture \"other\" in test \"t\""));
  EXPECT_EQ(HintOf(a, "bsae"), "did you mean \"base\"?");
}

TEST(ValidateTest, IffVariableMustBeInTheQuery) {
  Analyzed a = Bad("test \"t\" { assert has_role(User{\"a\"}, r: String, Org{\"o\"}) iff role in [\"member\"]; }");
  EXPECT_THAT(a.Errors(), ElementsAre("8:12: `iff` variable role does not appear in the query"));
}

TEST(ValidateTest, ManyErrorsAreReportedTogetherInSourceOrder) {
  Analyzed a = Bad(R"(resource Repo {
  roles = ["reader"];
  "read" if "reader";
}
f(x: Nope) if g(x, 1) and not h(y);
g(a, b) if a = b;
)");
  EXPECT_THAT(a.Errors(), ElementsAre("10:3: unknown role or permission \"read\" in resource Repo",
                                      "12:3: unknown type \"Nope\" in parameter of f",
                                      "12:33: variable y is not bound before `not`"));
  EXPECT_THAT(a.Warnings(), ElementsAre("12:1: rule f/1 is never used"));
}

TEST(ValidateTest, UnusedRuleWarnings) {
  Analyzed a = AnalyzeText(std::string(kBase) + R"(helper(x: User) if x = x;
used(x: User) if x = x;
allow(a: User, "read", o: Org) if used(a);
allow(a: User, o: Org) if used(a);
has_permission(a: User, "x", o: Org) if used(a);
requires_approval(a: User, "x", o: Org) if used(a);
can_approve(b: User, a: User, "x", o: Org) if used(a);
rate_limit(a: User, "x", o: Org, "bucket", 10, 60) if used(a);
declare stored(User);
stored(User{"a"});
tested(x: User) if x = x;
test "t" { assert tested(User{"a"}); }
)");
  ASSERT_TRUE(a.policy.has_value());
  EXPECT_THAT(a.Warnings(), ElementsAre("8:1: rule helper/1 is never used", "11:1: rule allow/2 is never used"));
  EXPECT_EQ(HintOf(a, "allow/2"), "the engine calls allow with 3 arguments");
}

TEST(ValidateTest, CallsToUndefinedLookalikesWarn) {
  Analyzed a = AnalyzeText(std::string(kBase) + "allow(a: User, \"read\", o: Org) if has_rol(a, \"member\", o) and is_public(o);\n");
  ASSERT_TRUE(a.policy.has_value());
  EXPECT_THAT(a.Warnings(), ElementsAre("8:35: has_rol is not defined by any rule or declare; it will only match stored facts"));
  EXPECT_EQ(HintOf(a, "has_rol"), "did you mean \"has_role\"?");
}

TEST(ValidateTest, SingletonHeadVariablesAreFine) {
  Analyzed a = AnalyzeText(std::string(kBase) + "allow(actor: User, action: String, org: Org) if has_role(actor, \"member\", org);\n");
  EXPECT_TRUE(a.policy.has_value());
  EXPECT_THAT(a.diags, IsEmpty());
}

TEST(ValidateTest, TimeWithinLiteralsAreCheckedWhereWritten) {
  Analyzed a = Bad(R"(resource Doc { permissions = ["a", "b"];
  "a" if time_within("Mars/Olympus", "mon-fry", "9:00", "24:00");
  "b" if time_within("UTC", "*", "10:00", "10:00");
}
)");
  EXPECT_THAT(a.Errors(),
              ElementsAre("9:22: time_within: time zone \"Mars/Olympus\" is not a known IANA time zone (e.g. "
                          "\"America/New_York\", \"UTC\")",
                          HasSubstr("9:38: time_within: days \"mon-fry\": unknown day \"fry\""),
                          "9:49: time_within: time \"9:00\" is not HH:MM between 00:00 and 23:59",
                          "10:43: time_within: the window is empty (from equals to)"));
}

TEST(ValidateTest, TimeWithinNeedsBoundArgumentsAndIsNotAFact) {
  Analyzed a = Bad(R"(resource Doc { permissions = ["a"];
  "a" if time_within(tz, "*", "08:00", "17:00");
}
)");
  EXPECT_THAT(a.Errors(), ElementsAre("9:22: variable tz is not bound in time_within"));
  Analyzed ok = AnalyzeText(std::string(kBase) + R"(resource Doc { permissions = ["a"];
  "a" if hours(tz) and time_within(tz, "*", "08:00", "17:00");
}
)");
  ASSERT_TRUE(ok.policy.has_value());
  EXPECT_FALSE(ok.policy->signatures.contains("time_within"));
  EXPECT_TRUE(ok.policy->signatures.contains("hours"));
  EXPECT_TRUE(ok.policy->signatures.contains("context"));
  EXPECT_TRUE(ok.policy->signatures.contains("acts_for"));
}

TEST(ValidateTest, ListsAppearOncePerBlock) {
  Analyzed a = AnalyzeText(R"(resource Doc {
  roles = ["a"];
  permissions = ["p"];
  roles = ["b"];
}
)");
  EXPECT_FALSE(a.policy.has_value());
  EXPECT_THAT(a.Errors(), ElementsAre("4:3: `roles = ...` appears twice in this block"));
  EXPECT_EQ(HintOf(a, "appears twice"), "merge it into the one at line 2");
}

TEST(ValidateTest, FactsHaveAtMostFiveArguments) {
  Analyzed a = Bad(R"(declare big(Org, Org, Org, Org, Org, Org);
test "t" { setup { p(1, 2, 3, 4, 5, 6); } }
)");
  EXPECT_THAT(a.Errors(), ElementsAre(HasSubstr("8:1: declare big has 6 argument types; facts have 1 to 5"),
                                      HasSubstr("9:20: fact p(1, 2, 3, 4, 5, 6) has 6 arguments; facts have 1 to 5")));
}

TEST(ValidateTest, UndefinedCallsSuggestOnlyNearNamesOfTheSameArity) {
  Analyzed a = AnalyzeText(R"(actor User {}
resource Group {}
allow(u: User, "r", g: Group) if has_group(u, g);
allow(u: User, "w", g: Group) if has_rol(u, "x", g);
allow(u: User, "x", g: Group) if has_rol(u, g, "y", "z");
)");
  ASSERT_TRUE(a.policy.has_value());
  EXPECT_THAT(a.Warnings(), ElementsAre(HasSubstr("4:34: has_rol is not defined")));
  EXPECT_EQ(HintOf(a, "has_rol is not defined"), "did you mean \"has_role\"?");
}

TEST(ParseTest, TestClocks) {
  Analyzed a = AnalyzeText(R"(actor User {}
test "t" {
  setup { at "2026-11-30T09:30:00-05:00"; }
  assert has_role(User{"a"}, "r");
  at 100;
  assert has_role(User{"a"}, "r");
}
test "bad" { setup { at "30/11/2026"; } }
)");
  EXPECT_THAT(a.Errors(), ElementsAre(HasSubstr("8:25: `at`: \"30/11/2026\" is not an RFC 3339 time")));
  Analyzed ok = AnalyzeText(R"(actor User {}
global { roles = ["r"]; }
test "t" {
  setup { at "2026-11-30T09:30:00-05:00"; }
  assert has_role(User{"a"}, "r");
  at 100;
  assert has_role(User{"a"}, "r");
}
)");
  ASSERT_TRUE(ok.policy.has_value()) << ok.Errors()[0];
  const polar::Test& t = ok.policy->tests[0];
  EXPECT_EQ(t.now_unix, 1796049000);
  EXPECT_EQ(t.assertions[0].now_unix, std::nullopt);
  EXPECT_EQ(t.assertions[1].now_unix, 100);
}

}  // namespace
}  // namespace mandate::polar
