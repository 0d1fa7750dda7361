// Recursive-descent parser for policies, queries and fact lines. Errors are recorded as diagnostics and
// the parser resynchronizes at ';' and '}' so that one run reports many errors.
#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "polar/internal.h"
#include "polar/polar.h"
#include "polar/time_window.h"

namespace mandate::polar {
namespace internal {
namespace {

constexpr int kMaxErrors = 100;

bool IsReserved(std::string_view word) {
  static constexpr std::string_view kReserved[] = {"and", "or", "not", "if", "iff", "matches", "in"};
  return std::find(std::begin(kReserved), std::end(kReserved), word) != std::end(kReserved);
}

bool IsCompareTok(Tok k) {
  return k == Tok::kEq || k == Tok::kEqEq || k == Tok::kNe || k == Tok::kLt || k == Tok::kLe ||
         k == Tok::kGt || k == Tok::kGe;
}

CmpOp ToCmpOp(Tok k) {
  switch (k) {
    case Tok::kNe: return CmpOp::kNe;
    case Tok::kLt: return CmpOp::kLt;
    case Tok::kLe: return CmpOp::kLe;
    case Tok::kGt: return CmpOp::kGt;
    case Tok::kGe: return CmpOp::kGe;
    default: return CmpOp::kEq;  // `=` and `==`
  }
}

// Where a term appears decides what it may be.
enum class TermMode {
  kBody,      // variables, `_`, literals, instances, @current_unix_time
  kParam,     // as kBody, plus `x: Type` and `_: Type`
  kQuery,     // as kParam, plus CLI values `User:alice`
  kGround,    // literals and instances only (facts)
};

class Parser {
 public:
  // `diags` already holds the lexer's errors for these tokens (and maybe earlier ones).
  Parser(std::vector<Token> tokens, std::vector<Diagnostic>* diags, size_t lexer_diags_from)
      : toks_(std::move(tokens)), diags_(diags) {
    for (size_t i = lexer_diags_from; i < diags->size(); ++i) lex_error_lines_.insert((*diags)[i].span.line);
  }

  void ParsePolicy(Policy* out) {
    while (!At(Tok::kEof)) {
      size_t start = pos_;
      if (!ParseItem(out)) Sync(start, /*top_level=*/true);
    }
  }

  void ParseQueryCalls(std::vector<Expr>* out) {
    while (true) {
      Expr call;
      if (!At(Tok::kIdent) || Peek().kind != Tok::kLParen) {
        ErrorExpected("a call such as allow(User:alice, \"read\", Repo:anvil)");
        return;
      }
      if (!ParseCall(&call, TermMode::kQuery)) return;
      out->push_back(std::move(call));
      if (AtWord("and")) {
        Next();
        continue;
      }
      if (!At(Tok::kEof)) ErrorExpected("`and` or the end of the query");
      return;
    }
  }

  void ParseFactLines(std::vector<FactLiteral>* out) {
    while (!At(Tok::kEof)) {
      if (At(Tok::kSemi)) {
        Next();
        continue;
      }
      FactLiteral fact;
      if (ParseFact(&fact)) {
        uint32_t line = Prev().span.end_line;
        if (At(Tok::kSemi)) {
          Next();
          out->push_back(std::move(fact));
          continue;
        }
        if (At(Tok::kEof) || Cur().span.line > line) {
          out->push_back(std::move(fact));
          continue;
        }
        ErrorExpected("';' or the end of the line after the fact");
      }
      // Skip the rest of the broken line (or up to the next ';').
      uint32_t line = Cur().span.line;
      while (!At(Tok::kEof) && Cur().span.line == line && !At(Tok::kSemi)) Next();
      if (At(Tok::kSemi)) Next();
    }
  }

 private:
  // ---- token access ----
  const Token& Cur() const { return toks_[pos_]; }
  const Token& Peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  const Token& Prev() const { return toks_[pos_ > 0 ? pos_ - 1 : 0]; }
  bool At(Tok k) const { return Cur().kind == k; }
  bool AtWord(std::string_view w) const { return At(Tok::kIdent) && Cur().text == w; }
  const Token& Next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  // Span from `start` to the end of the last consumed token.
  Span SpanFrom(const Span& start) const {
    Span s = start;
    const Token& last = Prev();
    if (pos_ > 0 && (last.span.end_line > s.line || (last.span.end_line == s.line && last.span.end_col > s.col))) {
      s.end_line = last.span.end_line;
      s.end_col = last.span.end_col;
    }
    return s;
  }

  // ---- errors ----
  bool Error(const Span& span, std::string message, std::string hint = "") {
    // A line with a lexical error has lost a token; what the parser says about it is noise.
    if (stopped_ || lex_error_lines_.count(span.line)) return false;
    if (++errors_ > kMaxErrors) {
      diags_->push_back(MakeError(span, "too many syntax errors; stopping here"));
      stopped_ = true;
      pos_ = toks_.size() - 1;  // jump to EOF so every loop ends
      return false;
    }
    diags_->push_back(MakeError(span, std::move(message), std::move(hint)));
    return false;
  }
  bool ErrorExpected(std::string_view what, std::string hint = "") {
    return Error(Cur().span, absl::StrCat("expected ", std::string(what), ", found ", Describe(Cur())), std::move(hint));
  }
  bool Expect(Tok k, std::string_view what) {
    if (At(k)) {
      Next();
      return true;
    }
    return ErrorExpected(what);
  }

  // True at a token that starts a top-level item on a fresh line (used to stop error recovery from
  // swallowing the next block when a '}' or ';' is missing).
  bool AtItemStart() const {
    if (!At(Tok::kIdent) || Cur().span.col != 1) return false;
    const std::string& w = Cur().text;
    const Token& n = Peek();
    if (w == "actor" || w == "resource" || w == "declare") return n.kind == Tok::kIdent;
    if (w == "global") return n.kind == Tok::kLBrace;
    if (w == "test") return n.kind == Tok::kString || (n.kind == Tok::kIdent && n.text == "fixture");
    return false;
  }

  // Skips the rest of a broken item that began at token `item_start`. Stops after a ';' that is not
  // inside braces, after the '}' that closes a brace the item opened, or before an unmatched '}'
  // (which closes the enclosing block). At top level an unmatched '}' is consumed, and a new item at
  // the start of a later line stops the skip.
  void Sync(size_t item_start, bool top_level) {
    std::vector<Tok> open;
    auto track = [&open](Tok k) {
      if (k == Tok::kLParen || k == Tok::kLBracket || k == Tok::kLBrace) {
        open.push_back(k);
      } else if ((k == Tok::kRParen || k == Tok::kRBracket) && !open.empty() && open.back() != Tok::kLBrace) {
        open.pop_back();
      }
    };
    for (size_t i = item_start; i < pos_; ++i) {
      if (toks_[i].kind == Tok::kRBrace) {
        while (!open.empty() && open.back() != Tok::kLBrace) open.pop_back();
        if (!open.empty()) open.pop_back();
      } else {
        track(toks_[i].kind);
      }
    }
    const uint32_t start_line = toks_[item_start].span.line;
    bool moved = pos_ > item_start;
    while (!At(Tok::kEof)) {
      Tok k = Cur().kind;
      if (moved && open.empty() && Cur().span.line > start_line &&
          (AtItemStart() || (top_level && Cur().span.col == 1 && k == Tok::kIdent && Peek().kind == Tok::kLParen))) {
        return;
      }
      if (k == Tok::kSemi && (open.empty() || open.back() != Tok::kLBrace)) {
        Next();
        return;
      }
      if (k == Tok::kRBrace) {
        while (!open.empty() && open.back() != Tok::kLBrace) open.pop_back();
        if (open.empty()) {
          if (top_level || !moved) Next();
          return;
        }
        open.pop_back();
        Next();
        if (open.empty()) return;
        moved = true;
        continue;
      }
      track(k);
      Next();
      moved = true;
    }
  }

  // ---- items ----
  bool ParseItem(Policy* out) {
    if (At(Tok::kSemi)) {  // a stray ';' between items is harmless
      Next();
      return true;
    }
    if (At(Tok::kIdent)) {
      const std::string& w = Cur().text;
      const Token& n = Peek();
      if ((w == "actor" || w == "resource") && n.kind == Tok::kIdent) return ParseBlock(out);
      if (w == "global" && n.kind == Tok::kLBrace) return ParseBlock(out);
      if (w == "declare" && n.kind == Tok::kIdent) return ParseDeclare(out);
      if (w == "test" && n.kind == Tok::kString) return ParseTest(out);
      if (w == "test" && n.kind == Tok::kIdent && n.text == "fixture") return ParseFixture(out);
      if (n.kind == Tok::kLParen) return ParseRule(out);
    }
    return ErrorExpected("a rule, a block (actor, resource, global), a declare or a test");
  }

  bool ParseTypeName(std::string* name, Span* span) {
    if (!At(Tok::kIdent) || IsReserved(Cur().text)) return ErrorExpected("a type name");
    *name = Cur().text;
    *span = Cur().span;
    Next();
    return true;
  }

  bool ParseBlock(Policy* out) {
    Block block;
    block.span = Cur().span;
    const std::string kind = Next().text;
    block.kind = kind == "actor" ? Block::Kind::kActor : kind == "resource" ? Block::Kind::kResource : Block::Kind::kGlobal;
    if (block.kind != Block::Kind::kGlobal) {
      if (!ParseTypeName(&block.type_name, &block.type_span)) return false;
      if (AtWord("extends")) {
        Next();
        Span ignored;
        if (!ParseTypeName(&block.extends, &ignored)) return false;
      }
    }
    if (!At(Tok::kLBrace)) return ErrorExpected(absl::StrCat("'{' to open the ", kind, " block"));
    Span open = Cur().span;
    Next();
    block_lists_.clear();
    while (!At(Tok::kRBrace) && !At(Tok::kEof) && !AtItemStart()) {
      size_t start = pos_;
      if (!ParseBlockItem(&block)) Sync(start, /*top_level=*/false);
    }
    if (!At(Tok::kRBrace)) {
      Error(open, absl::StrCat("unclosed ", kind, " block: expected '}' before ", Describe(Cur())));
    } else {
      Next();
    }
    block.span = SpanFrom(block.span);
    out->blocks.push_back(std::move(block));
    return true;
  }

  bool ParseBlockItem(Block* block) {
    if (At(Tok::kSemi)) {
      Next();
      return true;
    }
    if (At(Tok::kString)) return ParseShorthand(block);
    if (At(Tok::kIdent) && Peek().kind == Tok::kEq) {
      const std::string& w = Cur().text;
      if (w == "roles" || w == "permissions" || w == "relations") {
        // Oso allows each list once per block; a second one is almost always a merge accident.
        auto [first, inserted] = block_lists_.emplace(w, Cur().span);
        if (!inserted) {
          const Span where = Cur().span;
          Error(where, absl::StrCat("`", w, " = ...` appears twice in this block"),
                absl::StrCat("merge it into the one at line ", first->second.line));
          // Parsed anyway (and kept) so that the names in it do not cause more errors.
        }
      }
      if (w == "roles" || w == "permissions") {
        Next();
        Next();
        return ParseNameList(w == "roles" ? &block->roles : &block->permissions);
      }
      if (w == "relations") {
        Next();
        Next();
        return ParseRelations(&block->relations);
      }
    }
    return ErrorExpected("roles = [...], permissions = [...], relations = {...} or a shorthand rule like \"read\" if \"reader\"");
  }

  bool ParseNameList(std::vector<NameDecl>* out) {
    if (!Expect(Tok::kLBracket, "'['")) return false;
    while (!At(Tok::kRBracket)) {
      if (!At(Tok::kString)) return ErrorExpected("a quoted name or ']'");
      out->push_back(NameDecl{Cur().text, Cur().span});
      Next();
      if (At(Tok::kComma)) {
        Next();
      } else if (!At(Tok::kRBracket)) {
        return ErrorExpected("',' or ']'");
      }
    }
    Next();
    return Expect(Tok::kSemi, "';'");
  }

  bool ParseRelations(std::vector<RelationDecl>* out) {
    if (!Expect(Tok::kLBrace, "'{'")) return false;
    while (!At(Tok::kRBrace)) {
      RelationDecl rel;
      if (!At(Tok::kIdent) || IsReserved(Cur().text)) return ErrorExpected("a relation name or '}'");
      rel.name = Cur().text;
      rel.span = Cur().span;
      Next();
      if (!Expect(Tok::kColon, "':' after the relation name")) return false;
      if (!ParseTypeName(&rel.type_name, &rel.type_span)) return false;
      rel.span = SpanFrom(rel.span);
      out->push_back(std::move(rel));
      if (At(Tok::kComma)) {
        Next();
      } else if (!At(Tok::kRBrace)) {
        return ErrorExpected("',' or '}'");
      }
    }
    Next();
    return Expect(Tok::kSemi, "';'");
  }

  bool ParseShorthand(Block* block) {
    Shorthand sh;
    sh.span = Cur().span;
    sh.head = Cur().text;
    sh.head_span = Cur().span;
    Next();
    if (!AtWord("if")) return ErrorExpected("`if` after the shorthand's role or permission");
    Next();
    if (At(Tok::kString) && (Peek().kind == Tok::kSemi || (Peek().kind == Tok::kIdent && Peek().text == "on"))) {
      sh.implier = Cur().text;
      sh.implier_span = Cur().span;
      Next();
      sh.kind = Shorthand::Kind::kImplier;
      if (AtWord("on")) {
        Next();
        if (!At(Tok::kString)) return ErrorExpected("a quoted relation name after `on`");
        sh.kind = Shorthand::Kind::kOn;
        sh.relation = Cur().text;
        sh.relation_span = Cur().span;
        Next();
      }
    } else if (At(Tok::kString) && Peek().kind == Tok::kIdent && Peek(2).kind == Tok::kString &&
               Peek().text != "and" && Peek().text != "or") {
      Next();
      return Error(Cur().span, absl::StrCat("expected `on` between the implying name and the relation, found ", Describe(Cur())),
                   "write \"role\" if \"other_role\" on \"relation\";");
    } else if (AtWord("global") && Peek().kind == Tok::kString) {
      Next();
      sh.kind = Shorthand::Kind::kGlobal;
      sh.implier = Cur().text;
      sh.implier_span = Cur().span;
      Next();
    } else {
      Expr body;
      if (!ParseOr(&body)) return false;
      sh.kind = Shorthand::Kind::kExpr;
      sh.body = std::move(body);
    }
    if (!Expect(Tok::kSemi, "';' after the shorthand rule")) return false;
    sh.span = SpanFrom(sh.span);
    block->shorthands.push_back(std::move(sh));
    return true;
  }

  bool ParseRule(Policy* out) {
    Rule rule;
    rule.span = Cur().span;
    rule.name = Cur().text;
    rule.name_span = Cur().span;
    if (IsReserved(rule.name)) return ErrorExpected("a rule name");
    Next();
    Next();  // '('
    if (!ParseArgs(&rule.params, TermMode::kParam)) return false;
    if (AtWord("if")) {
      Next();
      Expr body;
      if (!ParseOr(&body)) return false;
      rule.body = std::move(body);
    }
    if (!Expect(Tok::kSemi, rule.body ? "';' at the end of the rule" : "`if` or ';' after the rule head")) return false;
    rule.span = SpanFrom(rule.span);
    out->rules.push_back(std::move(rule));
    return true;
  }

  bool ParseDeclare(Policy* out) {
    Declare decl;
    decl.span = Cur().span;
    Next();  // declare
    decl.name = Cur().text;
    Next();
    if (!Expect(Tok::kLParen, "'(' after the declared predicate's name")) return false;
    while (!At(Tok::kRParen)) {
      std::string type;
      Span span;
      if (!ParseTypeName(&type, &span)) return false;
      decl.types.push_back(std::move(type));
      decl.type_spans.push_back(span);
      if (At(Tok::kComma)) {
        Next();
      } else if (!At(Tok::kRParen)) {
        return ErrorExpected("',' or ')'");
      }
    }
    Next();
    if (decl.types.empty()) {
      return Error(SpanFrom(decl.span), absl::StrCat("declare ", decl.name, "() needs at least one argument type"));
    }
    if (!Expect(Tok::kSemi, "';' after the declare")) return false;
    decl.span = SpanFrom(decl.span);
    out->declares.push_back(std::move(decl));
    return true;
  }

  bool ParseTest(Policy* out) {
    Test test;
    test.span = Cur().span;
    Next();  // test
    test.name = Cur().text;
    Next();
    if (!Expect(Tok::kLBrace, "'{' to open the test")) return false;
    Span open = Prev().span;
    clock_.reset();
    while (!At(Tok::kRBrace) && !At(Tok::kEof) && !AtItemStart()) {
      size_t start = pos_;
      if (!ParseTestItem(&test)) Sync(start, /*top_level=*/false);
    }
    if (!At(Tok::kRBrace)) {
      Error(open, absl::StrCat("unclosed test \"", test.name, "\": expected '}' before ", Describe(Cur())));
    } else {
      Next();
    }
    test.span = SpanFrom(test.span);
    out->tests.push_back(std::move(test));
    return true;
  }

  bool ParseTestItem(Test* test) {
    if (AtWord("setup") && Peek().kind == Tok::kLBrace) {
      Next();
      Next();
      while (!At(Tok::kRBrace) && !At(Tok::kEof) && !AtItemStart()) {
        size_t start = pos_;
        if (!ParseSetupItem(test)) Sync(start, /*top_level=*/false);
      }
      return Expect(Tok::kRBrace, "'}' to close setup");
    }
    if (AtWord("assert") || AtWord("assert_not")) {
      Assertion a;
      a.span = Cur().span;
      a.negated = Next().text == "assert_not";
      if (!At(Tok::kIdent) || Peek().kind != Tok::kLParen || IsReserved(Cur().text)) {
        return ErrorExpected("a query such as allow(User{\"alice\"}, \"read\", Repo{\"anvil\"})");
      }
      a.predicate = Next().text;
      Next();  // '('
      if (!ParseArgs(&a.args, TermMode::kParam)) return false;
      if (AtWord("iff")) {
        Next();
        if (!At(Tok::kIdent) || IsReserved(Cur().text) || Cur().text == "_") return ErrorExpected("a variable after `iff`");
        a.iff_var = Next().text;
        if (!AtWord("in")) return ErrorExpected("`in` after the `iff` variable");
        Next();
        if (!Expect(Tok::kLBracket, "'[' to start the list of values")) return false;
        while (!At(Tok::kRBracket)) {
          Term t;
          if (!ParseTerm(&t, TermMode::kGround)) return false;
          a.iff_values.push_back(std::move(t));
          if (At(Tok::kComma)) {
            Next();
          } else if (!At(Tok::kRBracket)) {
            return ErrorExpected("',' or ']'");
          }
        }
        Next();
      }
      a.span = SpanFrom(a.span);
      if (!Expect(Tok::kSemi, "';' after the assertion")) return false;
      a.now_unix = clock_;
      test->assertions.push_back(std::move(a));
      return true;
    }
    if (AtClock()) {
      // `at TIME;` between assertions: the clock of the assertions that follow.
      std::optional<int64_t> t = ParseClock();
      if (!t) return false;
      clock_ = t;
      return true;
    }
    if (At(Tok::kSemi)) {
      Next();
      return true;
    }
    return ErrorExpected("setup { ... }, assert, assert_not or at \"TIME\"");
  }

  // `at "2026-11-30T09:30:00-05:00";` (RFC 3339) or `at 1796049000;` (Unix seconds): fixes the
  // request time in a test. Not a fact: a fact needs parentheses.
  bool AtClock() const {
    return AtWord("at") && (Peek().kind == Tok::kString || Peek().kind == Tok::kInteger);
  }
  std::optional<int64_t> ParseClock() {
    Next();  // at
    const Token& t = Next();
    int64_t value = t.integer;
    if (t.kind == Tok::kString) {
      absl::StatusOr<int64_t> parsed = ParseRfc3339(t.text);
      if (!parsed.ok()) {
        Error(t.span, absl::StrCat("`at`: ", parsed.status().message()), "or write Unix seconds: at 1796049000;");
        return std::nullopt;
      }
      value = *parsed;
    }
    if (!Expect(Tok::kSemi, "';' after the time")) return std::nullopt;
    return value;
  }

  bool ParseSetupItem(Test* test) {
    if (At(Tok::kSemi)) {
      Next();
      return true;
    }
    if (AtClock()) {
      const Span where = Cur().span;
      std::optional<int64_t> t = ParseClock();
      if (!t) return false;
      if (test->now_unix) return Error(where, "the test clock is set twice in this setup", "keep one `at` line");
      test->now_unix = t;
      return true;
    }
    if (AtWord("fixture") && Peek().kind == Tok::kIdent) {
      Next();
      test->fixtures.push_back(NameDecl{Cur().text, Cur().span});
      Next();
      return Expect(Tok::kSemi, "';' after the fixture name");
    }
    FactLiteral fact;
    if (!ParseFact(&fact)) return false;
    test->setup_facts.push_back(std::move(fact));
    return Expect(Tok::kSemi, "';' after the fact");
  }

  bool ParseFixture(Policy* out) {
    Fixture fixture;
    fixture.span = Cur().span;
    Next();  // test
    Next();  // fixture
    if (!At(Tok::kIdent) || IsReserved(Cur().text)) return ErrorExpected("the fixture's name");
    fixture.name = Next().text;
    if (!Expect(Tok::kLBrace, "'{' to open the fixture")) return false;
    Span open = Prev().span;
    while (!At(Tok::kRBrace) && !At(Tok::kEof) && !AtItemStart()) {
      size_t start = pos_;
      if (At(Tok::kSemi)) {
        Next();
        continue;
      }
      FactLiteral fact;
      if (ParseFact(&fact) && Expect(Tok::kSemi, "';' after the fact")) {
        fixture.facts.push_back(std::move(fact));
      } else {
        Sync(start, /*top_level=*/false);
      }
    }
    if (!At(Tok::kRBrace)) {
      Error(open, absl::StrCat("unclosed fixture ", fixture.name, ": expected '}' before ", Describe(Cur())));
    } else {
      Next();
    }
    fixture.span = SpanFrom(fixture.span);
    out->fixtures.push_back(std::move(fixture));
    return true;
  }

  bool ParseFact(FactLiteral* fact) {
    if (!At(Tok::kIdent) || Peek().kind != Tok::kLParen || IsReserved(Cur().text)) {
      return ErrorExpected("a fact such as has_role(User{\"alice\"}, \"admin\", Org{\"acme\"})");
    }
    fact->span = Cur().span;
    fact->predicate = Next().text;
    Next();  // '('
    if (!ParseArgs(&fact->args, TermMode::kGround)) return false;
    fact->span = SpanFrom(fact->span);
    return true;
  }

  // After '(': terms separated by ',' up to and including ')'.
  bool ParseArgs(std::vector<Term>* out, TermMode mode) {
    while (!At(Tok::kRParen)) {
      Term t;
      if (!ParseTerm(&t, mode)) return false;
      out->push_back(std::move(t));
      if (At(Tok::kComma)) {
        Next();
      } else if (!At(Tok::kRParen)) {
        if (At(Tok::kColon) && mode == TermMode::kBody) {
          return Error(Cur().span, "type annotations are only allowed on rule parameters",
                       absl::StrCat("constrain the variable with `", out->back().name, " matches Type` instead"));
        }
        return ErrorExpected("',' or ')'");
      }
    }
    Next();
    return true;
  }

  // ---- expressions ----
  bool ParseOr(Expr* out) { return ParseJunction(out, "or", Expr::Kind::kOr); }
  bool ParseAnd(Expr* out) { return ParseJunction(out, "and", Expr::Kind::kAnd); }

  // `or` over `and`-junctions, `and` over unary expressions; same-kind children are flattened.
  bool ParseJunction(Expr* out, std::string_view word, Expr::Kind kind) {
    auto parse_child = [&](Expr* e) { return kind == Expr::Kind::kOr ? ParseAnd(e) : ParseUnary(e); };
    Expr first;
    if (!parse_child(&first)) return false;
    if (!AtWord(word)) {
      *out = std::move(first);
      return true;
    }
    Expr j;
    j.kind = kind;
    j.span = first.span;
    auto add = [&j, kind](Expr e) {
      if (e.kind == kind) {
        for (Expr& c : e.children) j.children.push_back(std::move(c));
      } else {
        j.children.push_back(std::move(e));
      }
    };
    add(std::move(first));
    while (AtWord(word)) {
      Next();
      Expr next;
      if (!parse_child(&next)) return false;
      add(std::move(next));
    }
    j.span = SpanFrom(j.span);
    *out = std::move(j);
    return true;
  }

  bool ParseUnary(Expr* out) {
    if (depth_ >= kMaxExprNesting) {
      return Error(Cur().span, absl::StrCat("expression nested too deeply (more than ", kMaxExprNesting, " levels)"),
                   "split the condition into several rules");
    }
    ++depth_;
    bool ok = ParseUnaryInner(out);
    --depth_;
    return ok;
  }

  bool ParseUnaryInner(Expr* out) {
    if (AtWord("not")) {
      Expr n;
      n.kind = Expr::Kind::kNot;
      n.span = Cur().span;
      Next();
      Expr child;
      if (!ParseUnary(&child)) return false;
      n.children.push_back(std::move(child));
      n.span = SpanFrom(n.span);
      *out = std::move(n);
      return true;
    }
    if (At(Tok::kLParen)) {
      Span start = Cur().span;
      Next();
      if (!ParseOr(out)) return false;
      if (!Expect(Tok::kRParen, "')'")) return false;
      out->span = SpanFrom(start);
      return true;
    }
    if (At(Tok::kIdent) && Peek().kind == Tok::kLParen && !IsReserved(Cur().text)) return ParseCall(out, TermMode::kBody);
    Term lhs;
    if (!ParseTerm(&lhs, TermMode::kBody)) return false;
    if (AtWord("in")) return ParseIn(std::move(lhs), out);
    Expr e;
    e.span = lhs.span;
    if (AtWord("matches")) {
      Next();
      e.kind = Expr::Kind::kMatches;
      Span type_span;
      if (!ParseTypeName(&e.type_name, &type_span)) return false;
    } else if (IsCompareTok(Cur().kind)) {
      e.kind = Expr::Kind::kCompare;
      e.op = ToCmpOp(Next().kind);
      Term rhs;
      if (!ParseTerm(&rhs, TermMode::kBody)) return false;
      e.args.push_back(std::move(lhs));
      lhs = std::move(rhs);
    } else {
      return ErrorExpected(absl::StrCat("a comparison (=, !=, <, <=, >, >=), `matches` or `in` after ", FormatTerm(lhs)));
    }
    e.args.push_back(std::move(lhs));
    e.span = SpanFrom(e.span);
    *out = std::move(e);
    return true;
  }

  // `x in [a, b, ...]` (at `in`): the AST has no lists, so it becomes `x = a or x = b or ...`, which
  // means the same for the flat values Polar facts hold.
  bool ParseIn(Term lhs, Expr* out) {
    Next();  // in
    if (!Expect(Tok::kLBracket, "'[' to start the list after `in`")) return false;
    Expr any;
    any.kind = Expr::Kind::kOr;
    while (!At(Tok::kRBracket)) {
      Expr eq;
      eq.kind = Expr::Kind::kCompare;
      eq.op = CmpOp::kEq;
      eq.args.push_back(lhs);
      Term value;
      if (!ParseTerm(&value, TermMode::kBody)) return false;
      eq.span = value.span;
      eq.args.push_back(std::move(value));
      any.children.push_back(std::move(eq));
      if (At(Tok::kComma)) {
        Next();
      } else if (!At(Tok::kRBracket)) {
        return ErrorExpected("',' or ']'");
      }
    }
    Next();
    Span span = SpanFrom(lhs.span);
    if (any.children.empty()) return Error(span, "`in` needs at least one value in the list");
    if (any.children.size() == 1) {
      *out = std::move(any.children[0]);
    } else {
      *out = std::move(any);
    }
    out->span = span;
    return true;
  }

  // At IDENT '(' : a call with terms of the given mode.
  bool ParseCall(Expr* out, TermMode mode) {
    out->kind = Expr::Kind::kCall;
    out->span = Cur().span;
    out->name_span = Cur().span;
    out->name = Next().text;
    Next();  // '('
    if (!ParseArgs(&out->args, mode)) return false;
    out->span = SpanFrom(out->span);
    return true;
  }

  bool ParseTerm(Term* t, TermMode mode) {
    t->span = Cur().span;
    switch (Cur().kind) {
      case Tok::kString:
        t->kind = Term::Kind::kString;
        t->str = Next().text;
        return true;
      case Tok::kInteger:
        t->kind = Term::Kind::kInteger;
        t->integer = Next().integer;
        return true;
      case Tok::kConstant:
        if (Cur().text != "current_unix_time") {
          return Error(Cur().span, absl::StrCat("unknown constant @", Cur().text), "the only constant is @current_unix_time");
        }
        if (mode == TermMode::kGround) return ErrorExpected("a literal or an instance such as User{\"alice\"}");
        Next();
        t->kind = Term::Kind::kCurrentUnixTime;
        return true;
      case Tok::kCliValue:
        return CliValue(t);
      case Tok::kIdent:
        break;
      default:
        return ErrorExpected(mode == TermMode::kGround ? "a literal or an instance such as User{\"alice\"}" : "a term");
    }
    const std::string& w = Cur().text;
    if (w == "true" || w == "false") {
      t->kind = Term::Kind::kBoolean;
      t->boolean = Next().text == "true";
      return true;
    }
    if (Peek().kind == Tok::kLBrace) return ParseInstance(t);
    if (IsReserved(w)) return ErrorExpected("a term");
    if (mode == TermMode::kGround) {
      return Error(Cur().span, absl::StrCat("facts must be ground, but ", w, " is a variable"),
                   Peek().kind == Tok::kColon ? absl::StrCat("write an instance as ", w, "{\"id\"}")
                                              : "use a literal or an instance such as User{\"alice\"}");
    }
    t->kind = w == "_" ? Term::Kind::kWildcard : Term::Kind::kVar;
    if (t->kind == Term::Kind::kVar) t->name = w;
    Next();
    if ((mode == TermMode::kParam || mode == TermMode::kQuery) && At(Tok::kColon)) {
      Next();
      Span type_span;
      if (!ParseTypeName(&t->type_name, &type_span)) return false;
      t->span = SpanFrom(t->span);
    }
    return true;
  }

  // Builds a term from a type and a literal, normalizing String/Integer/Boolean to primitives.
  bool MakeTyped(Term* t, const std::string& type, const Token& lit, const Span& span) {
    auto mismatch = [&](std::string_view expected, std::string example) {
      return Error(span, absl::StrCat(type, "{...} takes ", std::string(expected), ", found ", Describe(lit)),
                   absl::StrCat("write ", example));
    };
    if (type == "Actor" || type == "Resource") {
      return Error(span, absl::StrCat("cannot create an instance of the abstract type ", type),
                   "use a concrete type such as User{\"alice\"}");
    }
    if (type == "String") {
      if (lit.kind != Tok::kString) return mismatch("a string", "String{\"text\"}");
      t->kind = Term::Kind::kString;
      t->str = lit.text;
      return true;
    }
    if (type == "Integer") {
      if (lit.kind != Tok::kInteger) return mismatch("an integer", "Integer{42}");
      t->kind = Term::Kind::kInteger;
      t->integer = lit.integer;
      return true;
    }
    if (type == "Boolean") {
      if (lit.kind != Tok::kIdent || (lit.text != "true" && lit.text != "false")) {
        return mismatch("true or false", "Boolean{true}");
      }
      t->kind = Term::Kind::kBoolean;
      t->boolean = lit.text == "true";
      return true;
    }
    if (lit.kind != Tok::kString) {
      return Error(span, absl::StrCat("the id of a ", type, " instance must be a string, found ", Describe(lit)),
                   absl::StrCat("write ", type, "{\"", lit.kind == Tok::kInteger ? std::to_string(lit.integer) : lit.text, "\"}"));
    }
    t->kind = Term::Kind::kInstance;
    t->type_name = type;
    t->str = lit.text;
    return true;
  }

  // At TYPE '{'.
  bool ParseInstance(Term* t) {
    std::string type = Next().text;
    Next();  // '{'
    if (At(Tok::kRBrace) || At(Tok::kEof)) return ErrorExpected(absl::StrCat("the id of the ", type, " instance"));
    Token lit = Next();
    if (!Expect(Tok::kRBrace, absl::StrCat("'}' to close the ", type, " instance"))) return false;
    return MakeTyped(t, type, lit, SpanFrom(t->span));
  }

  // `Type:id` from the CLI: `Repo:_` is a typed wildcard, primitives become literals.
  bool CliValue(Term* t) {
    Token tok = Next();
    if (tok.text == "_") {
      t->kind = Term::Kind::kWildcard;
      t->type_name = tok.type;
      return true;
    }
    Token lit = tok;
    if (tok.type == "Integer") {
      lit.kind = Tok::kInteger;
      if (!absl::SimpleAtoi(tok.text, &lit.integer)) {
        return Error(tok.span, absl::StrCat("\"", tok.text, "\" is not a 64-bit integer"));
      }
    } else if (tok.type == "Boolean") {
      lit.kind = Tok::kIdent;
    } else {
      lit.kind = Tok::kString;
    }
    return MakeTyped(t, tok.type, lit, tok.span);
  }

  std::vector<Token> toks_;
  std::vector<Diagnostic>* diags_;
  size_t pos_ = 0;
  int depth_ = 0;
  int errors_ = 0;
  bool stopped_ = false;
  std::set<uint32_t> lex_error_lines_;
  std::optional<int64_t> clock_;  // the test clock set by the last `at` in the test being parsed
  // `roles`, `permissions` and `relations` seen in the block being parsed, with where.
  std::map<std::string, Span> block_lists_;
};

std::string JoinErrors(const std::vector<Diagnostic>& diags, std::string_view prefix_file) {
  std::vector<std::string> lines;
  for (const Diagnostic& d : diags) {
    std::string line = prefix_file.empty() ? absl::StrCat("column ", d.span.col, ": ", d.message)
                                           : absl::StrCat(std::string(prefix_file), ":", d.span.line, ":", d.span.col, ": ", d.message);
    if (!d.hint.empty()) absl::StrAppend(&line, " (hint: ", d.hint, ")");
    lines.push_back(std::move(line));
  }
  return absl::StrJoin(lines, "\n");
}

}  // namespace

void ParseSourceInto(std::string_view text, uint32_t file, Policy* out, std::vector<Diagnostic>* diags) {
  size_t from = diags->size();
  Parser(Lex(text, file, LexOptions{}, diags), diags, from).ParsePolicy(out);
}

}  // namespace internal

Policy Parse(const SourceSet& sources, std::vector<Diagnostic>* diags) {
  Policy policy;
  for (size_t i = 0; i < sources.size(); ++i) {
    internal::ParseSourceInto(sources[i].text, static_cast<uint32_t>(i), &policy, diags);
  }
  return policy;
}

absl::StatusOr<std::vector<Expr>> ParseQuery(std::string_view text) {
  std::vector<Diagnostic> diags;
  internal::LexOptions options;
  options.cli_values = true;
  std::vector<Expr> calls;
  internal::Parser(internal::Lex(text, 0, options, &diags), &diags, 0).ParseQueryCalls(&calls);
  if (!diags.empty()) return absl::InvalidArgumentError(internal::JoinErrors(diags, ""));
  return calls;
}

absl::StatusOr<std::vector<FactLiteral>> ParseFacts(std::string_view text, std::string_view filename) {
  std::vector<Diagnostic> diags;
  std::vector<FactLiteral> facts;
  internal::Parser(internal::Lex(text, 0, internal::LexOptions{}, &diags), &diags, 0).ParseFactLines(&facts);
  if (!diags.empty()) {
    // Lexer and parser errors interleave by position.
    std::stable_sort(diags.begin(), diags.end(), [](const Diagnostic& a, const Diagnostic& b) {
      return std::pair(a.span.line, a.span.col) < std::pair(b.span.line, b.span.col);
    });
    return absl::InvalidArgumentError(internal::JoinErrors(diags, filename.empty() ? "<facts>" : filename));
  }
  return facts;
}

}  // namespace mandate::polar
