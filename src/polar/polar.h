// Front end of the Polar language (the Oso Cloud dialect): parsing policies, queries and fact lines,
// validation, and desugaring of actor/resource/global blocks into plain rules for the engine.
//
// Pipeline: Parse (syntax, with error recovery) -> validation (types, blocks, arities, negation safety,
// stratification, declared fact shapes) -> desugaring (shorthands, implicit allow, signatures).
// All functions are pure and thread-compatible; none of them asserts or throws on bad input.
//
// Fact signatures (DesugaredPolicy::signatures) say which facts may be stored, per predicate:
//  - built-ins: has_role(Actor, String, Resource); has_role(Actor, String) only when the policy has
//    global roles; has_relation(Resource, String, Resource); the request-provided context(String, any)
//    and acts_for(Actor, Actor), which need no declaration;
//  - every `declare p(T, ...)` adds one signature (several declares for one predicate form a union);
//  - a predicate that is called in a rule body but defined by no rule with a body, and that has
//    neither a built-in signature nor a declare, gets one signature per distinct call site, each
//    argument typed from the call: a variable typed by a parameter annotation or `matches` gives
//    that type, a literal its primitive type, an instance its type, anything else "" (any type).
//    A declare is taken as the complete description, so call sites add nothing to declared predicates.
#ifndef MANDATE_POLAR_POLAR_H_
#define MANDATE_POLAR_POLAR_H_

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "polar/ast.h"

namespace mandate::polar {

// Parses all sources into one Policy. Syntax errors go to *diags; the parser recovers at ';' and '}'
// so that several errors are reported. Returns what was parsed (items with errors are dropped).
Policy Parse(const SourceSet& sources, std::vector<Diagnostic>* diags);

// Parse + validate + desugar. Returns nullopt when any error was reported. Every error and warning is
// appended to *diags; warnings are also in DesugaredPolicy::warnings.
std::optional<DesugaredPolicy> Analyze(const SourceSet& sources, std::vector<Diagnostic>* diags);

// A query: one or more calls joined by `and`, e.g. `allow(User{"alice"}, action, repo: Repo)`. Also
// accepts the CLI forms `User:alice` (an instance; `String:x`, `Integer:3`, `Boolean:true` give
// primitives; `User:"a b"` quotes an id), `Repo:_` (a typed wildcard: kWildcard with type_name) and bare
// identifiers as variables. Returns kCall Exprs. Errors say "column N: ...".
absl::StatusOr<std::vector<Expr>> ParseQuery(std::string_view text);

// Fact lines: `has_role(User{"alice"}, "admin", Org{"acme"});`, one or more per line, ';' optional at
// the end of a line, '#' comments. Arguments must be ground (literals or instances). Errors name
// filename:line:col; all errors found are reported, one per line of the status message.
absl::StatusOr<std::vector<FactLiteral>> ParseFacts(std::string_view text, std::string_view filename);

// "file:line:col" of a span; "<builtin>" for generated code (line 0), such as the implicit allow.
std::string FormatSpan(const Span& span, const SourceSet& sources);

// Polar text of syntax nodes, as a user would write it (strings re-escaped). Used in messages,
// explanations and tests. Rule text has no trailing ';'.
std::string FormatTerm(const Term& t);
std::string FormatExpr(const Expr& e);
std::string FormatRule(const Rule& r);
std::string FormatFact(const FactLiteral& f);

// Predicates the language gives meaning to without the policy defining them: the one table of
// built-in names and arities (validation, the engine and docs all read it).
struct BuiltinPredicate {
  enum class Kind {
    kRoot,     // entry points the engine/server call (allow, has_permission, ...): never "unused"
    kFact,     // stored facts with a built-in signature (has_role, has_relation); also roots
    kRequest,  // evaluated from the request by the engine (time_within, context, acts_for)
  };
  std::string_view name;
  int arity;
  Kind kind;
};
std::span<const BuiltinPredicate> BuiltinPredicates();
// Whether the predicate name is a root: calls from outside the policy reach it, so an uncalled rule
// with this name is not "unused" (allow, allow_field, has_permission, has_role, has_relation,
// requires_approval, can_approve, rate_limit).
bool IsRootPredicate(std::string_view name);

// A has_role or has_relation call in a rule body (the policy's own rules and those its shorthands
// expand to): the role or relation name it reads ("" when a variable) and each argument's type as
// far as the rule says ("" = any). With the names the blocks declare, these are the only
// has_role/has_relation facts that can matter; Policy::CheckFact rejects the others.
struct NameUse {
  std::string predicate;
  std::string name;
  std::vector<std::string> arg_types;
};
std::vector<NameUse> RoleAndRelationUses(const DesugaredPolicy& policy);

// The built-in the engine computes rather than looks up: time_within(tz, days, from, to) (see
// polar/time_window.h). Its arguments must be bound; it binds nothing.
inline constexpr std::string_view kTimeWithin = "time_within";
inline bool IsTimeWithin(const Expr& e) { return e.kind == Expr::Kind::kCall && e.name == kTimeWithin && e.args.size() == 4; }

// Stored and context facts have 1 to kMaxFactArity arguments (Oso Cloud's limit).
inline constexpr size_t kMaxFactArity = 5;

// Nesting limit for parenthesized/negated expressions; deeper input is a syntax error.
inline constexpr int kMaxExprNesting = 256;

}  // namespace mandate::polar

#endif  // MANDATE_POLAR_POLAR_H_
