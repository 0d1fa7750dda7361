// The Polar syntax tree: what the parser produces, the validator checks and desugaring rewrites into
// plain rules for the engine. Every node carries the source span it came from, so that errors and
// explanations can point at file:line:col.
#ifndef MANDATE_POLAR_AST_H_
#define MANDATE_POLAR_AST_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mandate::polar {

// One input file. Policies may span several files (`mandate test a.polar b.polar`); spans refer to a
// file by its index in the SourceSet given to the parser.
struct Source {
  std::string filename;  // as the user named it; "<inline>" for text without a file
  std::string text;
};
using SourceSet = std::vector<Source>;

// 1-based line and column (columns count bytes) of the first character; end is exclusive.
struct Span {
  uint32_t file = 0;
  uint32_t line = 0, col = 0;
  uint32_t end_line = 0, end_col = 0;
};

// A diagnostic (error or warning) with a precise position and, where we have one, a hint.
struct Diagnostic {
  enum class Severity { kError, kWarning };
  Severity severity = Severity::kError;
  Span span;
  std::string message;  // what is wrong, naming the offending thing: `unknown role "admn" in resource Repo`
  std::string hint;     // optional: what to do about it: `did you mean "admin"?`
};
// "file:line:col: error: message\n  hint: ..." using the SourceSet for file names.
std::string FormatDiagnostic(const Diagnostic& d, const SourceSet& sources);

// A term in a rule head, a call or a comparison.
struct Term {
  enum class Kind {
    kVar,              // name = variable name
    kWildcard,         // `_`
    kString,           // str
    kInteger,          // integer
    kBoolean,          // boolean
    kInstance,         // type_name{str}: `User{"alice"}`; String{..}/Integer{..}/Boolean{..} are
                       // normalized to kString/kInteger/kBoolean by the parser
    kCurrentUnixTime,  // `@current_unix_time`
  };
  Kind kind = Kind::kWildcard;
  std::string name;      // kVar
  std::string str;       // kString value, kInstance id
  int64_t integer = 0;   // kInteger
  bool boolean = false;  // kBoolean
  std::string type_name; // kInstance: the instance's type. kVar/kWildcard: the `: Type` annotation
                         // (rule parameters and test query arguments only), empty when none
  Span span;
};

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };  // `=` (unify) `!=` `<` `<=` `>` `>=`

// A rule body. Calls, comparisons and `matches` are leaves; and/or/not combine them.
struct Expr {
  enum class Kind {
    kCall,     // name(args...)
    kCompare,  // args[0] op args[1]
    kMatches,  // args[0] matches type_name
    kAnd,      // children (2 or more)
    kOr,       // children (2 or more)
    kNot,      // children[0]
  };
  Kind kind = Kind::kCall;
  std::string name;
  std::vector<Term> args;
  CmpOp op = CmpOp::kEq;
  std::string type_name;
  std::vector<Expr> children;
  Span span;  // for a call: the whole call; name_span is the predicate name only
  Span name_span;
};

// `name(params...) [if body];`. Without a body it is a fact stated in the policy.
struct Rule {
  std::string name;
  std::vector<Term> params;
  std::optional<Expr> body;
  Span span;
  Span name_span;
  // Set by desugaring for rules expanded from a resource block shorthand; the engine reports the
  // shorthand's own text in explanations. Empty for rules written as rules.
  std::string origin;  // e.g. `resource Repo: "reader" if "member" on "parent"`
};

// A shorthand rule inside an actor/resource block.
struct Shorthand {
  enum class Kind {
    kImplier,  // "X" if "Y";
    kOn,       // "X" if "Y" on "rel";
    kGlobal,   // "X" if global "Y";
    kExpr,     // "X" if <body>;   (actor and resource are in scope)
  };
  Kind kind = Kind::kImplier;
  std::string head;  // "X"
  Span head_span;
  std::string implier;  // "Y" (kImplier, kOn, kGlobal)
  Span implier_span;
  std::string relation;  // "rel" (kOn)
  Span relation_span;
  std::optional<Expr> body;  // kExpr
  Span span;
};

struct NameDecl {  // an entry of roles = [...] / permissions = [...]
  std::string name;
  Span span;
};
struct RelationDecl {  // an entry of relations = { name: Type }
  std::string name;
  std::string type_name;
  Span span;
  Span type_span;
};

// `actor T [extends S] {...}`, `resource T [extends S] {...}` or `global {...}`.
struct Block {
  enum class Kind { kActor, kResource, kGlobal };
  Kind kind = Kind::kResource;
  std::string type_name;  // empty for global
  std::string extends;    // empty when none
  Span span;
  Span type_span;
  std::vector<NameDecl> roles;
  std::vector<NameDecl> permissions;
  std::vector<RelationDecl> relations;
  std::vector<Shorthand> shorthands;
};

// `declare name(Type, Type, ...);`
struct Declare {
  std::string name;
  std::vector<std::string> types;
  std::vector<Span> type_spans;
  Span span;
};

// A ground fact in a test setup or fixture: `has_role(User{"a"}, "admin", Org{"o"})`. Arguments are
// literals or instances only.
struct FactLiteral {
  std::string predicate;
  std::vector<Term> args;
  Span span;
};

// `assert q;`, `assert_not q;`, `assert q iff var in [v, ...];`. Query arguments are literals,
// instances, typed variables (`action: String`) or `_`.
struct Assertion {
  bool negated = false;  // assert_not
  std::string predicate;
  std::vector<Term> args;
  std::optional<std::string> iff_var;  // set for `iff var in [...]`
  std::vector<Term> iff_values;
  Span span;
  // The test clock for this assertion, set by an `at TIME;` line before it in the test body (Unix
  // seconds); unset = the test's clock (Test::now_unix), else the real clock.
  std::optional<int64_t> now_unix;
};

struct Test {
  std::string name;
  std::vector<FactLiteral> setup_facts;
  std::vector<NameDecl> fixtures;  // `fixture name;` references, in order
  std::vector<Assertion> assertions;
  Span span;
  // The test clock set by `at TIME;` inside `setup { }` (Unix seconds): the request time of every
  // assertion (time_within, @current_unix_time, fact expiry) unless the assertion has its own.
  std::optional<int64_t> now_unix;
};

struct Fixture {  // `test fixture name { facts }`
  std::string name;
  std::vector<FactLiteral> facts;
  Span span;
};

// Everything parsed from a SourceSet, in source order within each kind.
struct Policy {
  std::vector<Block> blocks;
  std::vector<Rule> rules;
  std::vector<Declare> declares;
  std::vector<Test> tests;
  std::vector<Fixture> fixtures;
};

// What a declared actor/resource type offers, after desugaring. Actor types are also resources.
struct TypeInfo {
  std::string name;
  bool is_actor = false;
  std::string extends;  // direct supertype ("" = none; Actor/Resource are implicit)
  std::vector<std::string> roles;
  std::vector<std::string> permissions;
  std::map<std::string, std::string> relations;  // relation name -> related type
  Span span;
};

// A predicate signature: one allowed list of argument types (a type name; "Actor"/"Resource" match
// their subtypes). A predicate may have several (declare statements form a union).
struct Signature {
  std::string predicate;
  std::vector<std::string> arg_types;
  Span span;  // the declare or rule that implies it
};

// The output of Desugar(): the policy reduced to plain rules plus the type information that
// validation, fact checking and the engine need.
struct DesugaredPolicy {
  SourceSet sources;
  std::vector<Rule> rules;  // user rules, then expanded shorthands, then the implicit allow (if any)
  bool implicit_allow = false;  // true when the policy defines no allow rule of its own
  std::map<std::string, TypeInfo> types;  // declared actor/resource types by name
  std::vector<std::string> global_roles;
  std::vector<std::string> global_permissions;
  std::map<std::string, std::vector<Signature>> signatures;  // predicate -> accepted fact shapes
  std::vector<Test> tests;
  std::vector<Fixture> fixtures;
  std::vector<Diagnostic> warnings;
};

}  // namespace mandate::polar

#endif  // MANDATE_POLAR_AST_H_
