// Lexer: token kinds, spans, strings and escapes, integers and their limits, bad bytes.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "polar/internal.h"

namespace mandate::polar::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<Token> LexOk(std::string_view text, LexOptions options = {}) {
  std::vector<Diagnostic> diags;
  std::vector<Token> toks = Lex(text, 0, options, &diags);
  EXPECT_THAT(diags, IsEmpty()) << (diags.empty() ? "" : diags[0].message);
  return toks;
}

std::vector<Tok> Kinds(const std::vector<Token>& toks) {
  std::vector<Tok> out;
  for (const Token& t : toks) out.push_back(t.kind);
  return out;
}

std::vector<std::string> LexErrors(std::string_view text) {
  std::vector<Diagnostic> diags;
  Lex(text, 0, LexOptions{}, &diags);
  std::vector<std::string> out;
  for (const Diagnostic& d : diags) out.push_back(std::to_string(d.span.line) + ":" + std::to_string(d.span.col) + ": " + d.message);
  return out;
}

TEST(LexerTest, PunctuationAndOperators) {
  EXPECT_THAT(Kinds(LexOk("( ) { } [ ] , ; : = == != < <= > >=")),
              ElementsAre(Tok::kLParen, Tok::kRParen, Tok::kLBrace, Tok::kRBrace, Tok::kLBracket, Tok::kRBracket,
                          Tok::kComma, Tok::kSemi, Tok::kColon, Tok::kEq, Tok::kEqEq, Tok::kNe, Tok::kLt, Tok::kLe,
                          Tok::kGt, Tok::kGe, Tok::kEof));
}

TEST(LexerTest, IdentifiersIncludeQualifiedTypeNames) {
  std::vector<Token> toks = LexOk("has_role Repo::Issue _ x1 a::b: c");
  ASSERT_EQ(toks.size(), 8u);
  EXPECT_EQ(toks[0].text, "has_role");
  EXPECT_EQ(toks[1].text, "Repo::Issue");
  EXPECT_EQ(toks[2].text, "_");
  EXPECT_EQ(toks[3].text, "x1");
  EXPECT_EQ(toks[4].text, "a::b");
  EXPECT_EQ(toks[5].kind, Tok::kColon);
  EXPECT_EQ(toks[6].text, "c");
}

TEST(LexerTest, SpansAreOneBasedLinesAndByteColumns) {
  std::vector<Token> toks = LexOk("a\n  bc \"d\"\n");
  EXPECT_EQ(toks[0].span.line, 1u);
  EXPECT_EQ(toks[0].span.col, 1u);
  EXPECT_EQ(toks[0].span.end_col, 2u);
  EXPECT_EQ(toks[1].span.line, 2u);
  EXPECT_EQ(toks[1].span.col, 3u);
  EXPECT_EQ(toks[1].span.end_col, 5u);
  EXPECT_EQ(toks[2].span.col, 6u);
  EXPECT_EQ(toks[2].span.end_col, 9u);
  EXPECT_EQ(toks[3].kind, Tok::kEof);
  EXPECT_EQ(toks[3].span.line, 3u);
}

TEST(LexerTest, CommentsAreSkipped) {
  EXPECT_THAT(Kinds(LexOk("# a comment ( \"\nx # more\n# end")), ElementsAre(Tok::kIdent, Tok::kEof));
  // A comment may hold any bytes, including invalid UTF-8.
  EXPECT_THAT(Kinds(LexOk("# \xff\xfe\x80\nx")), ElementsAre(Tok::kIdent, Tok::kEof));
}

TEST(LexerTest, StringEscapes) {
  std::vector<Token> toks = LexOk(R"("a\"b\\c\n\t\r\/\u{48}\u{1F600}")");
  ASSERT_EQ(toks[0].kind, Tok::kString);
  EXPECT_EQ(toks[0].text, "a\"b\\c\n\t\r/H\xF0\x9F\x98\x80");
  EXPECT_EQ(LexOk("\"caf\xC3\xA9\"")[0].text, "caf\xC3\xA9");  // UTF-8 passes through
}

TEST(LexerTest, BadStrings) {
  EXPECT_THAT(LexErrors("\"abc"), ElementsAre("1:1: unterminated string"));
  EXPECT_THAT(LexErrors("x \"abc\ny"), ElementsAre("1:3: unterminated string"));
  EXPECT_THAT(LexErrors(R"("a\qb")"), ElementsAre("1:3: unknown escape sequence '\\q' in string"));
  EXPECT_THAT(LexErrors(R"("\u{D800}")"), ElementsAre("1:2: invalid unicode escape"));
  EXPECT_THAT(LexErrors(R"("\u41")"), ElementsAre("1:2: invalid unicode escape"));
  EXPECT_THAT(LexErrors("\"a\xff\""), ElementsAre("1:3: invalid UTF-8 byte 0xFF in string"));
  EXPECT_THAT(LexErrors("\"\xC0\xAF\""), ElementsAre("1:2: invalid UTF-8 byte 0xC0 in string",
                                                      "1:3: invalid UTF-8 byte 0xAF in string"));  // overlong
  EXPECT_THAT(LexErrors("\"\x01\""), ElementsAre("1:2: control character 0x01 in string"));
}

TEST(LexerTest, Integers) {
  std::vector<Token> toks = LexOk("0 42 -7 +3 9223372036854775807 -9223372036854775808");
  EXPECT_EQ(toks[0].integer, 0);
  EXPECT_EQ(toks[1].integer, 42);
  EXPECT_EQ(toks[2].integer, -7);
  EXPECT_EQ(toks[3].integer, 3);
  EXPECT_EQ(toks[4].integer, INT64_MAX);
  EXPECT_EQ(toks[5].integer, INT64_MIN);
}

TEST(LexerTest, IntegerOverflowIsAnError) {
  EXPECT_THAT(LexErrors("9223372036854775808"), ElementsAre("1:1: integer 9223372036854775808 does not fit in 64 bits"));
  EXPECT_THAT(LexErrors("x -9223372036854775809"), ElementsAre("1:3: integer -9223372036854775809 does not fit in 64 bits"));
  EXPECT_THAT(LexErrors("123456789012345678901234567890"), ElementsAre(HasSubstr("does not fit in 64 bits")));
  EXPECT_THAT(LexErrors("12ab"), ElementsAre("1:1: invalid number \"12ab\""));
}

TEST(LexerTest, ConstantsAndUnexpectedCharacters) {
  std::vector<Token> toks = LexOk("@current_unix_time");
  EXPECT_EQ(toks[0].kind, Tok::kConstant);
  EXPECT_EQ(toks[0].text, "current_unix_time");
  EXPECT_THAT(LexErrors("a $%^ b"), ElementsAre("1:3: unexpected character '$'"));
  EXPECT_THAT(LexErrors("\xff\xfe\xfd x"), ElementsAre("1:1: unexpected byte 0xFF (not valid UTF-8)"));
  EXPECT_THAT(LexErrors("\xC3\xA9"), ElementsAre("1:1: unexpected character '\xC3\xA9'"));
  EXPECT_THAT(LexErrors("@"), ElementsAre("1:1: expected a constant name after '@'"));
}

TEST(LexerTest, CliValuesOnlyWhenEnabled) {
  LexOptions cli;
  cli.cli_values = true;
  std::vector<Token> toks = LexOk("User:alice@example.com, Repo:_ repo: Repo Org:\"a b\" Integer:-3", cli);
  ASSERT_EQ(toks[0].kind, Tok::kCliValue);
  EXPECT_EQ(toks[0].type, "User");
  EXPECT_EQ(toks[0].text, "alice@example.com");
  EXPECT_EQ(toks[2].kind, Tok::kCliValue);
  EXPECT_EQ(toks[2].text, "_");
  EXPECT_EQ(toks[3].kind, Tok::kIdent);  // `repo: Repo` is a typed variable
  EXPECT_EQ(toks[4].kind, Tok::kColon);
  EXPECT_EQ(toks[6].kind, Tok::kCliValue);
  EXPECT_EQ(toks[6].text, "a b");
  EXPECT_EQ(toks[7].text, "-3");
  EXPECT_THAT(Kinds(LexOk("User:alice")), ElementsAre(Tok::kIdent, Tok::kColon, Tok::kIdent, Tok::kEof));
}

}  // namespace
}  // namespace mandate::polar::internal
