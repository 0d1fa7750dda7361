// Internals of the Polar front end shared between its .cc files: tokens and the lexer, the type
// environment built from blocks, name suggestions, and the validation/desugaring passes that Analyze
// strings together. Not for use outside src/polar/.
#ifndef MANDATE_POLAR_INTERNAL_H_
#define MANDATE_POLAR_INTERNAL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "polar/ast.h"

namespace mandate::polar::internal {

// ---- Lexer -------------------------------------------------------------------------------------

enum class Tok {
  kEof,
  kIdent,     // identifiers and keywords; `A::B` is one identifier
  kString,    // text = decoded value
  kInteger,   // integer = value (sign included)
  kConstant,  // `@name`; text = name
  kCliValue,  // CLI form `Type:id` (LexOptions::cli_values); type = Type, text = id
  kLParen, kRParen, kLBrace, kRBrace, kLBracket, kRBracket,
  kComma, kSemi, kColon,
  kEq, kEqEq, kNe, kLt, kLe, kGt, kGe,
};

struct Token {
  Tok kind = Tok::kEof;
  std::string text;
  std::string type;  // kCliValue only
  int64_t integer = 0;
  Span span;
};

struct LexOptions {
  // Recognize `User:alice` (capitalized identifier, ':' and no space) as one kCliValue token.
  bool cli_values = false;
};

// Splits text into tokens, always ending with kEof. Lexical errors (bad characters, unterminated or
// invalid strings, integer overflow) go to *diags and the offending text is skipped.
std::vector<Token> Lex(std::string_view text, uint32_t file, const LexOptions& options,
                       std::vector<Diagnostic>* diags);

// Human name of a token for "expected X, found Y" messages.
std::string Describe(const Token& t);

// Parses one source file's text and appends its items to *out.
void ParseSourceInto(std::string_view text, uint32_t file, Policy* out, std::vector<Diagnostic>* diags);

// ---- Diagnostics -------------------------------------------------------------------------------

Diagnostic MakeError(const Span& span, std::string message, std::string hint = "");
Diagnostic MakeWarning(const Span& span, std::string message, std::string hint = "");
// `did you mean "x"?` for the closest candidate by edit distance, or "" when none is close. Close
// means about one edit per four characters, and at most `max_edits` when that is not 0.
std::string DidYouMean(std::string_view name, const std::vector<std::string>& candidates, size_t max_edits = 0);
bool HasErrors(const std::vector<Diagnostic>& diags);

// ---- Types -------------------------------------------------------------------------------------

// What a name used in a shorthand means inside a block.
enum class NameKind { kNone, kRole, kPermission, kRelation };

// The types a policy declares (blocks) plus the built-ins, with subtyping.
class TypeEnv {
 public:
  explicit TypeEnv(const Policy& policy);

  bool IsKnown(std::string_view type) const;
  static bool IsPrimitive(std::string_view type);  // String, Integer, Boolean
  // a <= b: equal, or b reachable through extends, actor blocks -> Actor, Actor -> Resource, and
  // every block type -> Resource. "" (unknown/any) is compatible with everything.
  bool IsSubtype(std::string_view a, std::string_view b) const;
  std::vector<std::string> TypeNames() const;  // every known type, for suggestions

  const Block* FindBlock(std::string_view type) const;  // nullptr for built-ins and unknown names
  const Block* global() const { return global_; }
  // What `name` is in `block`, looking through its extends chain; *related gets a relation's type.
  NameKind Lookup(const Block* block, std::string_view name, std::string* related = nullptr) const;
  // Every role/permission/relation name visible in `block` (for suggestions).
  std::vector<std::string> NamesIn(const Block* block, bool roles_and_permissions_only) const;

 private:
  std::map<std::string, const Block*, std::less<>> blocks_;
  const Block* global_ = nullptr;
};

// ---- Passes ------------------------------------------------------------------------------------

// Checks blocks, types, declares, fixtures and tests (everything that does not need rules desugared).
void ValidateDeclarations(const Policy& policy, const TypeEnv& env, const SourceSet& sources,
                          std::vector<Diagnostic>* diags);

// Expands the shorthands of every block into rules (skipping shorthands that do not resolve;
// ValidateDeclarations reports those). `sources` supplies the shorthand text for Rule::origin.
std::vector<Rule> DesugarBlocks(const Policy& policy, const TypeEnv& env, const SourceSet& sources);
// allow(actor: Actor, action: String, resource: Resource) if has_permission(actor, action, resource)
Rule ImplicitAllow();

// Checks the complete rule set (user rules and expanded shorthands): types, arities, `not` safety,
// recursion through `not`, policy/test/fixture facts against declared and built-in signatures, test
// assertions, unused rules (warnings).
void ValidateRules(const Policy& policy, const std::vector<Rule>& rules, const TypeEnv& env,
                   const SourceSet& sources, std::vector<Diagnostic>* diags);

// Signatures of storable facts; see the comment at the top of polar.h. With `declared_only`, just the
// built-in and declared ones (what facts are checked against during validation).
std::map<std::string, std::vector<Signature>> InferSignatures(const Policy& policy, const std::vector<Rule>& rules,
                                                               bool declared_only);

// Calls fn for every call in the bodies of `rules`, with the type of each argument as far as the
// rule says it: a parameter annotation or `matches` for a variable, the type of a literal, else "".
void ForEachTypedCall(const std::vector<Rule>& rules,
                      const std::function<void(const Expr&, std::vector<std::string>)>& fn);

// Type of a ground or annotated term ("" when it could be anything).
std::string TermType(const Term& t);

}  // namespace mandate::polar::internal

#endif  // MANDATE_POLAR_INTERNAL_H_
