// The internals behind the public Policy and Snapshot handles of include/mandate/mandate.h, for
// modules (server, agents, CLI) that need the compiled program or the fact set itself.
#ifndef MANDATE_ENGINE_API_IMPL_H_
#define MANDATE_ENGINE_API_IMPL_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/eval.h"
#include "engine/program.h"
#include "facts/fact_set.h"
#include "mandate/mandate.h"
#include "polar/ast.h"
#include "polar/polar.h"

namespace mandate {

struct Policy::Impl {
  std::vector<SourceFile> sources;
  std::string hash;
  std::shared_ptr<const engine::Program> program;
  std::vector<polar::NameUse> name_uses;  // for CheckFact on has_role / has_relation
};

struct Snapshot::Impl {
  std::shared_ptr<const Policy> policy;
  facts::FactSet facts;
  std::vector<facts::RelationView> views;  // stored facts per program predicate

  // Pairs a policy with facts; the snapshot's revision is the fact set's.
  static std::shared_ptr<const Snapshot> Make(std::shared_ptr<const Policy> policy, facts::FactSet facts);
  const engine::Program& program() const { return *policy->impl().program; }
};

// Context facts converted once (Snapshot::PrepareContext) for the queries of one request.
struct PreparedContext {
  std::shared_ptr<const Policy> policy;  // whose program the predicates index (kept alive)
  size_t global_symbols = 0;             // SymbolTable::Global().size() when converted
  engine::RequestSymbols symbols;        // the local ids the facts' unknown strings got
  engine::RequestContext ctx;            // context and context_values
  absl::Status status;                   // the conversion's error, returned by every query using it
};

namespace engine {

// Request-scoped evaluation state built from QueryOptions: local symbols, context facts, the time.
struct RequestScope {
  RequestSymbols symbols;
  RequestContext ctx;
  // The time is read (options.now_unix, else the clock) only when the policy or the facts need it.
  // Uses options.prepared_context when it gives what converting context_facts now would: the same
  // program and, if it holds request-local strings, no string interned since (one could be among them).
  absl::Status Init(const Snapshot::Impl& snap, const QueryOptions& options);
};

// The wire value of a ground Polar term (string, integer, boolean or instance literal); nullopt for
// variables, wildcards and @current_unix_time.
std::optional<TypedValue> TermToTypedValue(const polar::Term& t);
// The query form of test assertions and parsed query calls: `x: T` is a typed variable, `_: T` a hidden
// typed variable, literals are values.
absl::StatusOr<ConjunctiveQuery> CallsToQuery(const std::vector<std::pair<std::string, std::vector<polar::Term>>>& calls);

// Converts a fact to the interned form stored in a FactSet (may grow the symbol table).
absl::StatusOr<std::pair<facts::PredicateKey, std::vector<Value>>> ToStoredFact(const Fact& fact);

}  // namespace engine
}  // namespace mandate

#endif  // MANDATE_ENGINE_API_IMPL_H_
