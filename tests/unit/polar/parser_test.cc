// Parser: every construct of the dialect, source spans, normalization of primitive instances, and
// error recovery that reports several syntax errors in one run.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "polar/polar.h"
#include "polar_test_util.h"

namespace mandate::polar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using polar_test::ParseText;

Policy ParseOk(const std::string& text) {
  std::vector<Diagnostic> diags;
  Policy p = ParseText(text, &diags);
  for (const Diagnostic& d : diags) ADD_FAILURE() << d.span.line << ":" << d.span.col << ": " << d.message;
  return p;
}

std::vector<std::string> SyntaxErrors(const std::string& text) {
  std::vector<Diagnostic> diags;
  ParseText(text, &diags);
  std::vector<std::string> out;
  for (const Diagnostic& d : diags) out.push_back(std::to_string(d.span.line) + ":" + std::to_string(d.span.col) + ": " + d.message);
  return out;
}

Expr BodyOf(const std::string& body) {
  Policy p = ParseOk("r(x, y, z) if " + body + ";");
  if (p.rules.size() != 1 || !p.rules[0].body) {
    ADD_FAILURE() << "no body parsed for " << body;
    return Expr{};
  }
  return *p.rules[0].body;
}

TEST(ParserTest, ResourceBlockWithEverything) {
  Policy p = ParseOk(R"(
resource Repo extends Base {
  roles = ["reader", "maintainer",];
  permissions = ["read", "push"];
  relations = { parent: Org, creator: User };
  "read" if "reader";
  "reader" if "member" on "parent";
  "maintainer" if global "admin";
  "push" if is_open(resource) and not banned(actor);
}
)");
  ASSERT_THAT(p.blocks, SizeIs(1));
  const Block& b = p.blocks[0];
  EXPECT_EQ(b.kind, Block::Kind::kResource);
  EXPECT_EQ(b.type_name, "Repo");
  EXPECT_EQ(b.extends, "Base");
  EXPECT_EQ(b.type_span.line, 2u);
  EXPECT_EQ(b.type_span.col, 10u);
  ASSERT_THAT(b.roles, SizeIs(2));
  EXPECT_EQ(b.roles[1].name, "maintainer");
  EXPECT_EQ(b.roles[1].span.line, 3u);
  EXPECT_EQ(b.roles[1].span.col, 22u);
  ASSERT_THAT(b.permissions, SizeIs(2));
  ASSERT_THAT(b.relations, SizeIs(2));
  EXPECT_EQ(b.relations[1].name, "creator");
  EXPECT_EQ(b.relations[1].type_name, "User");
  EXPECT_EQ(b.relations[1].type_span.col, 39u);
  ASSERT_THAT(b.shorthands, SizeIs(4));
  EXPECT_EQ(b.shorthands[0].kind, Shorthand::Kind::kImplier);
  EXPECT_EQ(b.shorthands[0].head, "read");
  EXPECT_EQ(b.shorthands[0].implier, "reader");
  EXPECT_EQ(b.shorthands[0].implier_span.col, 13u);
  EXPECT_EQ(b.shorthands[1].kind, Shorthand::Kind::kOn);
  EXPECT_EQ(b.shorthands[1].relation, "parent");
  EXPECT_EQ(b.shorthands[1].relation_span.col, 27u);
  EXPECT_EQ(b.shorthands[2].kind, Shorthand::Kind::kGlobal);
  EXPECT_EQ(b.shorthands[2].implier, "admin");
  EXPECT_EQ(b.shorthands[3].kind, Shorthand::Kind::kExpr);
  ASSERT_TRUE(b.shorthands[3].body.has_value());
  EXPECT_EQ(FormatExpr(*b.shorthands[3].body), "is_open(resource) and not banned(actor)");
  // The shorthand's span covers it up to and including ';'.
  EXPECT_EQ(b.shorthands[1].span.line, 7u);
  EXPECT_EQ(b.shorthands[1].span.col, 3u);
  EXPECT_EQ(b.shorthands[1].span.end_col, 36u);
}

TEST(ParserTest, ActorAndGlobalBlocks) {
  Policy p = ParseOk("actor User {}\nactor Team { roles = [\"member\"]; }\nglobal { roles = [\"admin\"]; permissions = [\"x\"]; }");
  ASSERT_THAT(p.blocks, SizeIs(3));
  EXPECT_EQ(p.blocks[0].kind, Block::Kind::kActor);
  EXPECT_EQ(p.blocks[1].roles[0].name, "member");
  EXPECT_EQ(p.blocks[2].kind, Block::Kind::kGlobal);
  EXPECT_EQ(p.blocks[2].type_name, "");
  EXPECT_EQ(p.blocks[2].permissions[0].name, "x");
}

TEST(ParserTest, RulesParamsAndFacts) {
  Policy p = ParseOk(R"(allow(actor: User, "read", _: Repo::Issue) if true = true;
is_public(Repo{"anvil"});
limit(Integer{5}, String{"s"}, Boolean{false}, -3);
nothing();
)");
  ASSERT_THAT(p.rules, SizeIs(4));
  const Rule& r = p.rules[0];
  EXPECT_EQ(r.name, "allow");
  ASSERT_THAT(r.params, SizeIs(3));
  EXPECT_EQ(r.params[0].kind, Term::Kind::kVar);
  EXPECT_EQ(r.params[0].name, "actor");
  EXPECT_EQ(r.params[0].type_name, "User");
  EXPECT_EQ(r.params[0].span.col, 7u);
  EXPECT_EQ(r.params[0].span.end_col, 18u);
  EXPECT_EQ(r.params[1].kind, Term::Kind::kString);
  EXPECT_EQ(r.params[2].kind, Term::Kind::kWildcard);
  EXPECT_EQ(r.params[2].type_name, "Repo::Issue");
  EXPECT_EQ(r.span.line, 1u);
  EXPECT_EQ(r.span.col, 1u);
  EXPECT_EQ(r.span.end_col, 59u);
  EXPECT_EQ(r.name_span.end_col, 6u);
  EXPECT_FALSE(p.rules[1].body.has_value());
  EXPECT_EQ(p.rules[1].params[0].kind, Term::Kind::kInstance);
  EXPECT_EQ(p.rules[1].params[0].type_name, "Repo");
  EXPECT_EQ(p.rules[1].params[0].str, "anvil");
  // Primitive instance literals normalize to primitives.
  const Rule& lim = p.rules[2];
  EXPECT_EQ(lim.params[0].kind, Term::Kind::kInteger);
  EXPECT_EQ(lim.params[0].integer, 5);
  EXPECT_EQ(lim.params[1].kind, Term::Kind::kString);
  EXPECT_EQ(lim.params[1].str, "s");
  EXPECT_EQ(lim.params[2].kind, Term::Kind::kBoolean);
  EXPECT_FALSE(lim.params[2].boolean);
  EXPECT_EQ(lim.params[3].integer, -3);
  EXPECT_THAT(p.rules[3].params, IsEmpty());
}

TEST(ParserTest, PrecedenceNotAndOr) {
  // not > and > or
  Expr e = BodyOf("a(x) or b(x) and not c(x) or d(y)");
  ASSERT_EQ(e.kind, Expr::Kind::kOr);
  ASSERT_THAT(e.children, SizeIs(3));
  EXPECT_EQ(e.children[1].kind, Expr::Kind::kAnd);
  EXPECT_EQ(e.children[1].children[1].kind, Expr::Kind::kNot);
  EXPECT_EQ(FormatExpr(e), "a(x) or b(x) and not c(x) or d(y)");
  // Parentheses override, and same-kind junctions are flattened.
  Expr p = BodyOf("(a(x) or b(x)) and (c(x) and d(x))");
  ASSERT_EQ(p.kind, Expr::Kind::kAnd);
  ASSERT_THAT(p.children, SizeIs(3));
  EXPECT_EQ(p.children[0].kind, Expr::Kind::kOr);
  EXPECT_EQ(FormatExpr(p), "(a(x) or b(x)) and c(x) and d(x)");
  EXPECT_EQ(FormatExpr(BodyOf("not (a(x) and b(x))")), "not (a(x) and b(x))");
  EXPECT_EQ(FormatExpr(BodyOf("not not a(x)")), "not not a(x)");
}

TEST(ParserTest, ComparisonsMatchesAndTerms) {
  const char* ops[] = {"=", "!=", "<", "<=", ">", ">="};
  CmpOp expected[] = {CmpOp::kEq, CmpOp::kNe, CmpOp::kLt, CmpOp::kLe, CmpOp::kGt, CmpOp::kGe};
  for (int i = 0; i < 6; ++i) {
    Expr e = BodyOf(std::string("x ") + ops[i] + " 3");
    EXPECT_EQ(e.kind, Expr::Kind::kCompare);
    EXPECT_EQ(e.op, expected[i]) << ops[i];
    EXPECT_EQ(e.args[1].integer, 3);
  }
  EXPECT_EQ(BodyOf("x == y").op, CmpOp::kEq);  // `==` is accepted as `=`
  Expr m = BodyOf("x matches Repo::Issue");
  EXPECT_EQ(m.kind, Expr::Kind::kMatches);
  EXPECT_EQ(m.type_name, "Repo::Issue");
  EXPECT_EQ(m.args[0].name, "x");
  Expr t = BodyOf("y < @current_unix_time and f(_, \"s\\\"q\", User{\"a\"}, true, -9)");
  EXPECT_EQ(t.children[0].args[1].kind, Term::Kind::kCurrentUnixTime);
  const Expr& call = t.children[1];
  EXPECT_EQ(call.kind, Expr::Kind::kCall);
  EXPECT_EQ(call.name, "f");
  EXPECT_EQ(call.args[0].kind, Term::Kind::kWildcard);
  EXPECT_EQ(call.args[1].str, "s\"q");
  EXPECT_EQ(call.args[2].kind, Term::Kind::kInstance);
  EXPECT_EQ(call.args[3].kind, Term::Kind::kBoolean);
  EXPECT_EQ(call.args[4].integer, -9);
  EXPECT_EQ(call.name_span.col, 42u);
  EXPECT_EQ(call.span.col, 42u);
  EXPECT_EQ(FormatExpr(t), "y < @current_unix_time and f(_, \"s\\\"q\", User{\"a\"}, true, -9)");
}

TEST(ParserTest, InListBecomesADisjunctionOfUnifications) {
  Expr e = BodyOf(R"(x in ["a", y, 3] and f(x))");
  ASSERT_EQ(e.kind, Expr::Kind::kAnd);
  const Expr& in = e.children[0];
  ASSERT_EQ(in.kind, Expr::Kind::kOr);
  ASSERT_THAT(in.children, SizeIs(3));
  EXPECT_EQ(in.children[1].kind, Expr::Kind::kCompare);
  EXPECT_EQ(in.span.col, 15u);
  EXPECT_EQ(in.span.end_col, 31u);
  EXPECT_EQ(FormatExpr(e), R"((x = "a" or x = y or x = 3) and f(x))");
  EXPECT_EQ(FormatExpr(BodyOf(R"(x in ["only"])")), R"(x = "only")");
  EXPECT_THAT(SyntaxErrors("f(x) if x in [];"), ElementsAre("1:9: `in` needs at least one value in the list"));
  EXPECT_THAT(SyntaxErrors("f(x) if x in y;"), ElementsAre("1:14: expected '[' to start the list after `in`, found 'y'"));
}

TEST(ParserTest, DeclareTestsAndFixtures) {
  Policy p = ParseOk(R"(
declare has_tag(Repo, String);
test fixture base {
  has_role(User{"alice"}, "reader", Repo{"anvil"});
  is_public(Repo{"pub"});
}
test "readers read" {
  setup {
    fixture base;
    has_role(User{"bob"}, "reader", Repo{"other"});
  }
  assert allow(User{"alice"}, "read", Repo{"anvil"});
  assert_not allow(User{"bob"}, "read", Repo{"anvil"});
  assert allow(User{"alice"}, action: String, Repo{"anvil"}) iff action in ["read", "write"];
  assert has_permission(User{"alice"}, "read", _);
}
)");
  ASSERT_THAT(p.declares, SizeIs(1));
  EXPECT_THAT(p.declares[0].types, ElementsAre("Repo", "String"));
  EXPECT_EQ(p.declares[0].type_spans[1].col, 23u);
  ASSERT_THAT(p.fixtures, SizeIs(1));
  EXPECT_EQ(p.fixtures[0].name, "base");
  ASSERT_THAT(p.fixtures[0].facts, SizeIs(2));
  EXPECT_EQ(FormatFact(p.fixtures[0].facts[0]), "has_role(User{\"alice\"}, \"reader\", Repo{\"anvil\"})");
  ASSERT_THAT(p.tests, SizeIs(1));
  const polar::Test& t = p.tests[0];
  EXPECT_EQ(t.name, "readers read");
  ASSERT_THAT(t.fixtures, SizeIs(1));
  EXPECT_EQ(t.fixtures[0].name, "base");
  EXPECT_EQ(t.fixtures[0].span.line, 9u);
  ASSERT_THAT(t.setup_facts, SizeIs(1));
  ASSERT_THAT(t.assertions, SizeIs(4));
  EXPECT_FALSE(t.assertions[0].negated);
  EXPECT_TRUE(t.assertions[1].negated);
  EXPECT_EQ(t.assertions[1].span.line, 13u);
  EXPECT_EQ(t.assertions[1].span.col, 3u);
  EXPECT_EQ(t.assertions[2].iff_var, "action");
  ASSERT_THAT(t.assertions[2].iff_values, SizeIs(2));
  EXPECT_EQ(t.assertions[2].iff_values[1].str, "write");
  EXPECT_EQ(t.assertions[2].args[1].type_name, "String");
  EXPECT_EQ(t.assertions[3].args[2].kind, Term::Kind::kWildcard);
}

TEST(ParserTest, MultiFileSpansNameTheirFile) {
  std::vector<Diagnostic> diags;
  Policy p = Parse({Source{"a.polar", "actor User {}"}, Source{"b.polar", "f(x) if g(x);\nbad bad;"}}, &diags);
  ASSERT_THAT(p.rules, SizeIs(1));
  EXPECT_EQ(p.rules[0].span.file, 1u);
  ASSERT_THAT(diags, SizeIs(1));
  EXPECT_EQ(diags[0].span.file, 1u);
  EXPECT_EQ(FormatDiagnostic(diags[0], {Source{"a.polar", ""}, Source{"b.polar", ""}}),
            "b.polar:2:1: error: expected a rule, a block (actor, resource, global), a declare or a test, found 'bad'");
}

TEST(ParserTest, SeveralErrorsAreReportedWithRecovery) {
  EXPECT_THAT(SyntaxErrors(R"(resource Repo {
  roles = ["a" "b"];
  permissions = ["read"];
  "read" if "a" in "parent";
  relations = { parent Org };
}
allow(x, y, z) if f(x) g(y);
ok(x) if f(x);
broken(x if;
)"),
              ElementsAre("2:16: expected ',' or ']', found a string",
                          "4:17: expected `on` between the implying name and the relation, found 'in'",
                          "5:24: expected ':' after the relation name, found 'Org'",
                          "7:24: expected ';' at the end of the rule, found 'g'",
                          "9:10: expected ',' or ')', found 'if'"));
}

TEST(ParserTest, RecoveryKeepsTheGoodItems) {
  std::vector<Diagnostic> diags;
  Policy p = ParseText("a(x) if ;\nb(x) if c(x);\nresource R { roles = [1]; permissions = [\"p\"]; }\nd(1);", &diags);
  EXPECT_THAT(diags, SizeIs(2));
  ASSERT_THAT(p.rules, SizeIs(2));
  EXPECT_EQ(p.rules[0].name, "b");
  EXPECT_EQ(p.rules[1].name, "d");
  ASSERT_THAT(p.blocks, SizeIs(1));
  EXPECT_THAT(p.blocks[0].permissions, SizeIs(1));
}

TEST(ParserTest, MissingSemicolonBeforeNextItem) {
  EXPECT_THAT(SyntaxErrors("a(x) if b(x)\nc(x) if d(x);\nresource R {\n  roles = [\"x\"]\nactor U {}"),
              ElementsAre("2:1: expected ';' at the end of the rule, found 'c'",
                          "5:1: expected ';', found 'actor'", "3:12: unclosed resource block: expected '}' before 'actor'"));
}

TEST(ParserTest, InstanceLiteralErrors) {
  EXPECT_THAT(SyntaxErrors("f(Integer{\"3\"});"), ElementsAre(HasSubstr("Integer{...} takes an integer, found a string")));
  EXPECT_THAT(SyntaxErrors("f(Boolean{1});"), ElementsAre(HasSubstr("Boolean{...} takes true or false")));
  EXPECT_THAT(SyntaxErrors("f(Org{3});"), ElementsAre("1:3: the id of a Org instance must be a string, found integer 3"));
  EXPECT_THAT(SyntaxErrors("f(Actor{\"a\"});"), ElementsAre("1:3: cannot create an instance of the abstract type Actor"));
  EXPECT_THAT(SyntaxErrors("f(x) if g(x: User);"), ElementsAre("1:12: type annotations are only allowed on rule parameters"));
  EXPECT_THAT(SyntaxErrors("f(x) if x;"), ElementsAre("1:10: expected a comparison (=, !=, <, <=, >, >=), `matches` or `in` after x, found ';'"));
  EXPECT_THAT(SyntaxErrors("f(x) if x < @now;"), ElementsAre("1:13: unknown constant @now"));
}

TEST(ParserTest, DeepNestingIsLimited) {
  std::string ok = "f(x) if " + std::string(200, '(') + "g(x)" + std::string(200, ')') + ";";
  EXPECT_THAT(SyntaxErrors(ok), IsEmpty());
  std::string deep = "f(x) if " + std::string(100000, '(') + "g(x)" + std::string(100000, ')') + ";\nh(y) if g(y) or;";
  std::vector<std::string> errors = SyntaxErrors(deep);
  ASSERT_THAT(errors, SizeIs(2));
  EXPECT_THAT(errors[0], HasSubstr("expression nested too deeply (more than 256 levels)"));
  EXPECT_THAT(errors[1], HasSubstr("2:16"));  // recovery continues on the next line
  std::string nots = "f(x) if ";
  for (int i = 0; i < 5000; ++i) nots += "not ";
  EXPECT_THAT(SyntaxErrors(nots + "g(x);"), ElementsAre(HasSubstr("nested too deeply")));
}

TEST(ParserTest, ManyErrorsStop) {
  std::string junk;
  for (int i = 0; i < 500; ++i) junk += "} ";
  std::vector<std::string> errors = SyntaxErrors(junk);
  ASSERT_THAT(errors, SizeIs(101));
  EXPECT_THAT(errors.back(), HasSubstr("too many syntax errors"));
}

TEST(ParserTest, KeywordsAsRuleNamesAreDisambiguated) {
  Policy p = ParseOk("resource(x) if test(x);\ntest(y) if global(y);\nglobal(z);");
  EXPECT_THAT(p.rules, SizeIs(3));
  EXPECT_THAT(p.blocks, IsEmpty());
}

TEST(ParserTest, FormatDiagnosticWithHint) {
  Diagnostic d{Diagnostic::Severity::kWarning, Span{0, 3, 7, 3, 9}, "rule x/1 is never used", "remove it"};
  EXPECT_EQ(FormatDiagnostic(d, polar_test::One("")), "p.polar:3:7: warning: rule x/1 is never used\n  hint: remove it");
  EXPECT_EQ(FormatDiagnostic(Diagnostic{Diagnostic::Severity::kError, Span{}, "m", ""}, polar_test::One("")),
            "<builtin>: error: m");
  EXPECT_EQ(FormatSpan(Span{7, 1, 2, 1, 3}, polar_test::One("")), "<unknown>:1:2");
}

}  // namespace
}  // namespace mandate::polar
