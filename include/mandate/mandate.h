// Mandate's public C++ API for embedding: compile a Polar policy, hold facts, and ask check, list,
// actions and query without running the server. This header is the whole public surface; everything
// under src/ is internal.
//
// Thread safety: Policy and Snapshot are immutable and may be used from any number of threads.
// Database serializes writers internally; readers call snapshot() and never block on writers.
// Errors: functions that take user input return absl::Status / absl::StatusOr; messages name the input
// and its place (file:line:col for policy text, the fact or argument for data).
#ifndef MANDATE_MANDATE_H_
#define MANDATE_MANDATE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mandate {

// A typed value as the wire formats write it: {"type":"User","id":"alice"}. Primitives use the types
// "String", "Integer" (id is the decimal text) and "Boolean" (id is "true" or "false").
struct TypedValue {
  std::string type;
  std::string id;
  friend bool operator==(const TypedValue&, const TypedValue&) = default;
};

// Parses the CLI form "Type:id" ("User:alice", "Integer:42"); text without a colon is a String.
absl::StatusOr<TypedValue> ParseTypedValue(std::string_view text);
std::string ToString(const TypedValue& v);  // "User:alice"

struct Fact {
  std::string predicate;
  std::vector<TypedValue> args;
  friend bool operator==(const Fact&, const Fact&) = default;
};
// A fact pattern for deletes and reads: an argument without a type matches anything, one with a type
// and no id matches any value of that type.
struct FactPattern {
  std::string predicate;
  std::vector<std::optional<std::string>> arg_types;  // nullopt = any type
  std::vector<std::optional<std::string>> arg_ids;    // nullopt = any id
};
std::string ToString(const Fact& f);  // has_role(User{"alice"}, "admin", Org{"acme"})

struct SourceFile {
  std::string filename;
  std::string text;
};

struct Diagnostic {
  bool is_error = true;
  std::string file;
  int line = 0;
  int column = 0;
  std::string message;
  std::string hint;
  std::string ToString() const;  // "file:line:col: error: message (hint: ...)"
};

// Role/permission/relation metadata of one type, as /api/policy_metadata serves it.
struct TypeMetadata {
  std::vector<std::string> roles;
  std::vector<std::string> permissions;
  std::map<std::string, std::string> relations;  // name -> related type
};

// A compiled, validated policy. Immutable.
class Policy {
 public:
  // Parses, validates, desugars and compiles `sources` as one policy. On any error returns
  // InvalidArgument whose message lists every error, one per line. All errors and warnings are also
  // appended to `diagnostics` when it is not null.
  static absl::StatusOr<std::shared_ptr<const Policy>> Compile(std::vector<SourceFile> sources,
                                                              std::vector<Diagnostic>* diagnostics = nullptr);

  const std::vector<SourceFile>& sources() const;
  const std::string& hash() const;  // hex SHA-256 over the sources' text
  std::map<std::string, TypeMetadata> Metadata() const;  // by type name; "global" for the global block
  // Checks a fact against the predicates and types the policy uses or declares: unknown predicate,
  // wrong arity or wrong argument types give InvalidArgument naming the fact.
  absl::Status CheckFact(const Fact& fact) const;

  struct Impl;
  const Impl& impl() const { return *impl_; }
  explicit Policy(std::unique_ptr<Impl> impl);
  ~Policy();

 private:
  std::unique_ptr<Impl> impl_;
};

// Limits that keep one evaluation bounded. Exceeding one fails closed: the decision is deny with a
// reason, never allow.
struct EvalLimits {
  uint64_t max_steps = 1'000'000;  // rule/fact resolution steps per request
  uint32_t max_depth = 256;        // nested rule calls
};

// `context_facts` converted once to the engine's form (Snapshot::PrepareContext), for a request that
// asks several queries with the same context facts. Opaque.
struct PreparedContext;

struct QueryOptions {
  std::vector<Fact> context_facts;  // request-scoped facts, visible only to this request
  bool explain = false;
  std::optional<int64_t> now_unix;  // value of @current_unix_time; unset = the clock
  EvalLimits limits;
  // Optional: `context_facts` as Snapshot::PrepareContext converted them; it must have been prepared
  // from exactly these context_facts. Queries use it instead of converting them again when it fits
  // (same policy, no symbol interned since, when that could change the conversion), else they
  // convert context_facts; the answers are the same either way.
  std::shared_ptr<const PreparedContext> prepared_context;
};

// One node of an explanation tree. For an allow: the rule that applied, with a child per condition
// (sub-rules, facts, comparisons) that proved it. For a deny: each rule that was tried, with
// `satisfied` false and `failed` naming the first condition that did not hold.
struct ExplainNode {
  std::string kind;      // "rule", "fact", "context_fact", "compare", "not", "matches", "builtin"
  std::string text;      // the rule head or condition with the values it was evaluated with
  std::string location;  // "file:line" of the rule or condition, when it comes from policy text
  bool satisfied = false;
  std::string failed;    // for an unsatisfied rule: the first condition that failed
  std::vector<ExplainNode> children;
};

struct Explanation {
  std::vector<ExplainNode> roots;
  std::string ToText() const;  // indented tree for people
};

struct Decision {
  bool allowed = false;
  std::vector<std::string> reasons;  // why a deny happened when it was not simply "no rule matched",
                                     // e.g. "evaluation step limit (1000000) exceeded"
  std::optional<Explanation> explanation;  // when QueryOptions::explain
};

// A conjunctive query: every call must hold. Arguments are values or named variables; a variable
// may be constrained to a type and to a set of ids.
struct QueryArg {
  std::optional<TypedValue> value;  // a constant, or
  std::string var;                  // a variable name ("_" = anonymous)
};
struct QueryCall {
  std::string predicate;
  std::vector<QueryArg> args;
};
struct VarConstraint {
  std::string type;                             // "" = any type
  std::optional<std::vector<std::string>> ids;  // nullopt = any id
};
struct ConjunctiveQuery {
  std::vector<QueryCall> calls;
  std::map<std::string, VarConstraint> constraints;
};
// Parses Polar query text with unbound variables: `allow(User{"alice"}, action, repo: Repo)`,
// also accepting the CLI forms `User:alice` and `Repo:_` (a typed anonymous variable). Calls may be
// joined with `and`.
absl::StatusOr<ConjunctiveQuery> ParseQuery(std::string_view text);

struct QueryResult {
  std::vector<std::string> vars;  // named variables, in first-appearance order
  // One row per distinct binding; nullopt = a wildcard (any value of the variable's type).
  std::vector<std::vector<std::optional<TypedValue>>> rows;
  std::vector<std::string> reasons;  // non-empty when evaluation stopped at a limit (rows incomplete)
};

// Immutable facts at a revision, paired with the policy that evaluates them.
class Snapshot {
 public:
  struct Impl;
  explicit Snapshot(std::shared_ptr<const Impl> impl);
  ~Snapshot();

  uint64_t revision() const;
  const std::shared_ptr<const Policy>& policy() const;
  size_t fact_count() const;

  Decision Check(const TypedValue& actor, std::string_view action, const TypedValue& resource,
                 const QueryOptions& options = {}) const;
  // Ids of resources of `resource_type` on which `actor` may do `action`. `*wildcard` is set when
  // every resource of the type is allowed (the result is then unbounded and `ids` holds the explicit
  // ones found).
  absl::StatusOr<std::vector<std::string>> List(const TypedValue& actor, std::string_view action,
                                                std::string_view resource_type, const QueryOptions& options = {},
                                                bool* wildcard = nullptr) const;
  // Actions `actor` may do on `resource`, sorted. `*wildcard` as in List.
  absl::StatusOr<std::vector<std::string>> Actions(const TypedValue& actor, const TypedValue& resource,
                                                   const QueryOptions& options = {}, bool* wildcard = nullptr) const;
  absl::StatusOr<QueryResult> Query(const ConjunctiveQuery& query, const QueryOptions& options = {}) const;
  // Converts context facts once for several queries on this snapshot's policy (set the result as
  // QueryOptions::prepared_context next to the same context_facts). Never fails: a fact that does not
  // convert makes every query that uses the result fail as it would have when converting it.
  std::shared_ptr<const PreparedContext> PrepareContext(const std::vector<Fact>& context_facts) const;

  // Stored facts matching `pattern`, in a stable order, leaving out facts expired at `now_unix`
  // (Unix seconds; the clock when unset). See Change::expires_at.
  std::vector<Fact> Facts(const FactPattern& pattern, size_t limit = SIZE_MAX) const;
  std::vector<Fact> Facts(const FactPattern& pattern, size_t limit, std::optional<int64_t> now_unix) const;
  // The expiry of a stored fact (Unix seconds), or nullopt when the fact has none or is not stored.
  std::optional<int64_t> ExpiresAt(const Fact& fact) const;

  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// One atomic write: deletes (patterns) and inserts, applied in order.
struct Change {
  enum class Kind { kInsert, kDelete } kind = Kind::kInsert;
  Fact fact;            // kInsert
  FactPattern pattern;  // kDelete
  // kInsert only: Unix seconds from which the fact is invisible to every request whose time
  // (QueryOptions::now_unix, else the clock) is at or after it: Check, List, Actions, Query and Facts
  // all skip it, with no background job. Inserting a fact that is already present keeps the later of
  // the two expiries (no expiry = never): an insert never shortens what another one granted; to
  // shorten, delete then insert. A delete removes the fact and its expiry.
  std::optional<int64_t> expires_at = std::nullopt;
};

// Holds the current snapshot and applies writes. Thread-safe.
class Database {
 public:
  explicit Database(std::shared_ptr<const Policy> policy);
  ~Database();

  std::shared_ptr<const Snapshot> snapshot() const;  // wait-free for readers
  // Validates every change against the policy, then applies all of them or none. Returns the new
  // revision (unchanged when nothing changed).
  absl::StatusOr<uint64_t> Apply(const std::vector<Change>& changes);
  absl::Status SetPolicy(std::shared_ptr<const Policy> policy);  // keeps the facts
  absl::StatusOr<uint64_t> Clear();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Decodes facts from JSONL (one Oso wire fact per line) or from `.polar` fact lines
// (`has_role(User{"alice"}, "admin", Org{"acme"});`). Errors name file:line; every bad line is
// reported (the first 20, then a count), one per line of the message.
absl::StatusOr<std::vector<Fact>> ParseFactsJsonl(std::string_view text, std::string_view filename = "<facts>");
absl::StatusOr<std::vector<Fact>> ParseFactsPolar(std::string_view text, std::string_view filename = "<facts>");
// Reads a file and picks the decoder by extension (.jsonl/.json vs .polar).
absl::StatusOr<std::vector<Fact>> LoadFactsFile(const std::string& path);
// The same, and checks every fact with policy.CheckFact: errors name file:line (or, in a .json array,
// the element's JSON pointer) and list every bad fact (the first 20, then a count).
absl::StatusOr<std::vector<Fact>> LoadFactsFile(const std::string& path, const Policy& policy);

// Results of running a policy's `test` blocks.
struct AssertionFailure {
  std::string assertion;  // the assertion's text
  std::string location;   // file:line
  std::string message;    // e.g. "expected allow, got deny" or "iff: missing [\"edit\"], unexpected []"
};
struct TestResult {
  std::string name;
  std::string location;
  int passed = 0;
  int total = 0;
  std::vector<AssertionFailure> failures;
};
struct TestReport {
  std::vector<TestResult> tests;
  int passed() const;
  int failed() const;
};
// Runs every test block of `policy`, each against only its own setup facts and fixtures.
TestReport RunPolicyTests(const Policy& policy, const EvalLimits& limits = {});

}  // namespace mandate

#endif  // MANDATE_MANDATE_H_
