// ParseQuery (Polar and CLI forms) and ParseFacts (fact lines), including hostile input.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "polar/polar.h"

namespace mandate::polar {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

std::vector<std::string> QueryTexts(const std::string& text) {
  absl::StatusOr<std::vector<Expr>> q = ParseQuery(text);
  EXPECT_TRUE(q.ok()) << q.status();
  std::vector<std::string> out;
  if (q.ok()) {
    for (const Expr& e : *q) out.push_back(FormatExpr(e));
  }
  return out;
}

std::string QueryError(const std::string& text) {
  absl::StatusOr<std::vector<Expr>> q = ParseQuery(text);
  EXPECT_FALSE(q.ok()) << text;
  return std::string(q.status().message());
}

std::string FactsError(const std::string& text) {
  absl::StatusOr<std::vector<FactLiteral>> f = ParseFacts(text, "facts.polar");
  EXPECT_FALSE(f.ok()) << text;
  return std::string(f.status().message());
}

TEST(ParseQueryTest, PolarForm) {
  EXPECT_THAT(QueryTexts(R"(allow(User{"alice"}, action, repo: Repo))"),
              ElementsAre(R"(allow(User{"alice"}, action, repo: Repo))"));
  absl::StatusOr<std::vector<Expr>> q = ParseQuery(R"(allow(User{"alice"}, "read", _) and has_relation(r, "parent", Org{"acme"}))");
  ASSERT_TRUE(q.ok());
  ASSERT_THAT(*q, SizeIs(2));
  EXPECT_EQ((*q)[0].kind, Expr::Kind::kCall);
  EXPECT_EQ((*q)[0].args[0].kind, Term::Kind::kInstance);
  EXPECT_EQ((*q)[0].args[2].kind, Term::Kind::kWildcard);
  EXPECT_EQ((*q)[1].name, "has_relation");
  EXPECT_EQ((*q)[1].args[0].kind, Term::Kind::kVar);
}

TEST(ParseQueryTest, CliForms) {
  absl::StatusOr<std::vector<Expr>> q =
      ParseQuery("allow(User:alice, action, Repo:_) and f(String:read, Integer:-42, Boolean:true, Org:\"a b\", Team::Sub:x-1)");
  ASSERT_TRUE(q.ok()) << q.status();
  const Expr& allow = (*q)[0];
  EXPECT_EQ(allow.args[0].kind, Term::Kind::kInstance);
  EXPECT_EQ(allow.args[0].type_name, "User");
  EXPECT_EQ(allow.args[0].str, "alice");
  EXPECT_EQ(allow.args[1].kind, Term::Kind::kVar);
  EXPECT_EQ(allow.args[1].name, "action");
  EXPECT_EQ(allow.args[2].kind, Term::Kind::kWildcard);
  EXPECT_EQ(allow.args[2].type_name, "Repo");
  EXPECT_EQ(FormatExpr((*q)[1]), R"(f("read", -42, true, Org{"a b"}, Team::Sub{"x-1"}))");
  EXPECT_EQ(allow.args[0].span.col, 7u);
}

TEST(ParseQueryTest, ErrorsGiveTheColumn) {
  EXPECT_EQ(QueryError(""), "column 1: expected a call such as allow(User:alice, \"read\", Repo:anvil), found end of input");
  EXPECT_EQ(QueryError("allow(User:alice, \"read\""), "column 25: expected ',' or ')', found end of input");
  EXPECT_EQ(QueryError("allow(x) or f(y)"), "column 10: expected `and` or the end of the query, found 'or'");
  EXPECT_EQ(QueryError("allow(x, \"unterminated)"), "column 10: unterminated string (hint: close the string with '\"' on the same line)");
  EXPECT_EQ(QueryError("f(Integer:abc)"), "column 3: \"abc\" is not a 64-bit integer");
  EXPECT_EQ(QueryError("f(Integer:99999999999999999999)"), "column 3: \"99999999999999999999\" is not a 64-bit integer");
  EXPECT_THAT(QueryError("f(Boolean:maybe)"), HasSubstr("Boolean{...} takes true or false"));
  EXPECT_THAT(QueryError("f(\xff)"), HasSubstr("column 3: unexpected byte 0xFF"));
  EXPECT_THAT(QueryError("f(x) and"), HasSubstr("column 9: expected a call"));
  EXPECT_EQ(QueryError("f(User:a\xff b)"), "column 9: invalid byte 0xFF in User value (hint: values must be UTF-8 text without control characters)");
}

TEST(ParseFactsTest, Lines) {
  absl::StatusOr<std::vector<FactLiteral>> facts = ParseFacts(R"(# roles
has_role(User{"alice"}, "admin", Org{"acme"});
has_relation(Repo{"anvil"}, "parent", Org{"acme"})   # no semicolon at the end of a line
is_public(Repo{"anvil"}, true); limit(Org{"acme"}, -5, Integer{7}, String{"s"})

)",
                                                              "f.polar");
  ASSERT_TRUE(facts.ok()) << facts.status();
  ASSERT_THAT(*facts, SizeIs(4));
  EXPECT_EQ(FormatFact((*facts)[0]), R"(has_role(User{"alice"}, "admin", Org{"acme"}))");
  EXPECT_EQ((*facts)[1].span.line, 3u);
  EXPECT_EQ(FormatFact((*facts)[2]), R"(is_public(Repo{"anvil"}, true))");
  EXPECT_EQ(FormatFact((*facts)[3]), R"(limit(Org{"acme"}, -5, 7, "s"))");
  EXPECT_EQ((*facts)[3].span.col, 33u);
  absl::StatusOr<std::vector<FactLiteral>> empty = ParseFacts("# nothing\n\n", "e.polar");
  ASSERT_TRUE(empty.ok());
  EXPECT_THAT(*empty, IsEmpty());
}

TEST(ParseFactsTest, ErrorsNameFileLineAndColumnAndAllAreReported) {
  EXPECT_EQ(FactsError("has_role(User{\"a\"}, role, Org{\"o\"});\nok(1);\nf(1) g(2);\nh(\"open"),
            "facts.polar:1:21: facts must be ground, but role is a variable (hint: use a literal or an instance such as User{\"alice\"})\n"
            "facts.polar:3:6: expected ';' or the end of the line after the fact, found 'g'\n"
            "facts.polar:4:3: unterminated string (hint: close the string with '\"' on the same line)");
  EXPECT_THAT(FactsError("f(_);"), HasSubstr("facts.polar:1:3: facts must be ground, but _ is a variable"));
  EXPECT_THAT(FactsError("f(@current_unix_time);"), HasSubstr("facts.polar:1:3: expected a literal or an instance"));
  EXPECT_THAT(FactsError("f(99999999999999999999);"), HasSubstr("facts.polar:1:3: integer 99999999999999999999 does not fit in 64 bits"));
  EXPECT_EQ(FactsError("f(User:alice);"), "facts.polar:1:3: facts must be ground, but User is a variable (hint: write an instance as User{\"id\"})");
  EXPECT_THAT(FactsError("f(x) if g(x);"), HasSubstr("facts.polar:1:3: facts must be ground"));
  EXPECT_THAT(FactsError("f(\"\xc3\x28\");"), HasSubstr("facts.polar:1:4: invalid UTF-8 byte 0xC3 in string"));
}

TEST(ParseFactsTest, HostileInputDoesNotCrash) {
  std::string deep(100000, '(');
  EXPECT_FALSE(ParseFacts(deep, "x").ok());
  EXPECT_FALSE(ParseQuery(deep).ok());
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  EXPECT_FALSE(ParseFacts(bytes + bytes, "x").ok());
  EXPECT_FALSE(ParseQuery(bytes).ok());
  EXPECT_FALSE(ParseFacts(std::string("f(\"a\0b\");", 9), "x").ok());  // NUL byte in a string
}

}  // namespace
}  // namespace mandate::polar
