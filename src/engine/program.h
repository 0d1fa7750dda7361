// The compiled form of a policy: what the evaluator runs. Desugared rules become clauses whose
// variables are numbered into slots and whose constants are interned Values; each clause body comes
// with one pre-planned literal order per binding pattern of its head (which head arguments the caller
// binds), so that a call with everything bound probes indexes instead of scanning. Predicates index
// their clauses by the constant at one head position (e.g. has_role clauses by role name). Immutable
// once built; shared by every snapshot that uses the policy.
#ifndef MANDATE_ENGINE_PROGRAM_H_
#define MANDATE_ENGINE_PROGRAM_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "facts/fact_set.h"
#include "facts/value.h"
#include "polar/ast.h"
#include "polar/time_window.h"

namespace mandate::engine {

using facts::SymbolId;
using facts::Value;

// Calls and rule heads have at most this many arguments (answers live in fixed arrays on the stack).
inline constexpr uint32_t kMaxArity = 16;
// Plans are precomputed for every binding pattern of heads up to this arity; larger heads use the
// plan that assumes nothing bound (valid for any pattern).
inline constexpr uint32_t kMaxPlannedArity = 6;
inline constexpr uint16_t kNoSlot = 0xffff;

// Room for the arguments of one call on the stack, left uninitialized (Value's default member
// initializers would otherwise zero kMaxArity values on every call).
struct ArgBuffer {
  union {
    Value v[kMaxArity];
  };
  ArgBuffer() {}
  Value& operator[](size_t i) { return v[i]; }
  const Value& operator[](size_t i) const { return v[i]; }
  Value* data() { return v; }
};

// An unbound argument is a Value with type kNoSymbol whose bits hold the type the value must have
// (kNoSymbol = any). Answers use the same encoding: an unbound answer position is a wildcard of that type.
inline Value Unbound(SymbolId type = facts::kNoSymbol) { return Value{facts::kNoSymbol, type}; }
inline SymbolId ConstraintOf(const Value& v) { return static_cast<SymbolId>(v.bits); }

// An argument of a head, call, comparison or matches.
struct Arg {
  enum class Kind : uint8_t {
    kConst,  // value
    kSlot,   // a variable: slot (type = the `: Type` annotation of a head parameter, or none)
    kAnon,   // `_`: matches anything (type = annotation in heads)
    kNow,    // @current_unix_time
  };
  Kind kind = Kind::kAnon;
  uint16_t slot = kNoSlot;
  SymbolId type = facts::kNoSymbol;
  Value value;
};

struct Literal {
  enum class Kind : uint8_t {
    kCall,     // pred(args)
    kCompare,  // args[0] op args[1]
    kMatches,  // args[0] matches type
    kNot,      // not (body...): a conjunction
    kMember,   // args[0] in members (query `ids` constraints)
    kTimeWithin,  // time_within(args[0..3]) at the request's time
  };
  Kind kind = Kind::kCall;
  polar::CmpOp op = polar::CmpOp::kEq;
  uint32_t pred = 0;
  SymbolId type = facts::kNoSymbol;
  std::vector<Arg> args;
  std::vector<Literal> body;    // kNot
  std::vector<Value> members;   // kMember
  // kTimeWithin with four literal arguments: parsed once at compile time (else per request).
  std::shared_ptr<const polar::TimeWindow> window;
  polar::Span span;
};

struct Clause {
  uint32_t pred = 0;
  uint32_t rule = 0;  // index into Program::policy().rules
  std::vector<Arg> head;
  uint16_t num_slots = 0;
  std::vector<std::string> slot_names;  // for explanations ("_" for anonymous)
  std::vector<SymbolId> slot_types;     // initial type constraint of each slot (typed `_` in bodies)
  // plans[mask]: the body ordered for a call binding the head positions in `mask` (bit i = argument i
  // bound). Heads above kMaxPlannedArity have only plans[0].
  std::vector<std::vector<Literal>> plans;
  const std::vector<Literal>& PlanFor(uint32_t mask) const { return mask < plans.size() ? plans[mask] : plans[0]; }
};

struct Predicate {
  facts::PredicateKey key;
  std::string name;
  std::vector<uint32_t> clauses;  // all clauses, in rule order
  // Clause index on the constant at head position index_pos (-1: none). by_value lists, in rule
  // order, the clauses with that constant plus those with a variable there (`unindexed`).
  int index_pos = -1;
  absl::flat_hash_map<Value, std::vector<uint32_t>> by_value;
  std::vector<uint32_t> unindexed;
  bool recursive = false;  // in a cycle of the call graph: calls need variant checks / tabling
};

class Program {
 public:
  // Compiles a validated, desugared policy. Problems the validator does not catch (too many
  // arguments, a body too large to normalize, recursion through `not`) are appended to *diags as
  // errors and make the result an InvalidArgument error.
  static absl::StatusOr<std::shared_ptr<const Program>> Compile(polar::DesugaredPolicy policy,
                                                               std::vector<polar::Diagnostic>* diags);

  const polar::DesugaredPolicy& policy() const { return policy_; }
  size_t num_predicates() const { return preds_.size(); }
  const Predicate& pred(uint32_t i) const { return preds_[i]; }
  const Clause& clause(uint32_t i) const { return clauses_[i]; }
  std::optional<uint32_t> FindPredicate(SymbolId name, uint32_t arity) const;
  std::optional<uint32_t> FindPredicate(std::string_view name, uint32_t arity) const;
  // Facts stated in the policy itself (rules without body and without variables).
  const facts::FactSet& policy_facts() const { return policy_facts_; }
  const facts::RelationView& policy_view(uint32_t pred) const { return policy_views_[pred]; }
  bool uses_now() const { return uses_now_; }
  std::optional<uint32_t> allow_pred() const { return allow_pred_; }
  // The clauses of `pred` worth trying for a call with arguments `in` (head index applied).
  const std::vector<uint32_t>& Candidates(uint32_t pred, const Value* in) const {
    const Predicate& p = preds_[pred];
    if (p.index_pos >= 0 && in[p.index_pos].valid()) {
      auto it = p.by_value.find(in[p.index_pos]);
      return it != p.by_value.end() ? it->second : p.unindexed;
    }
    return p.clauses;
  }
  SymbolId SymbolFor(std::string_view name) const;

  // Whether a value of type t may be used where type c is expected (c = kNoSymbol: anything).
  bool IsSubtype(SymbolId t, SymbolId c) const {
    if (c == facts::kNoSymbol || t == c) return true;
    if (c == facts::kActorType && t < actor_flags_.size()) return actor_flags_[t];
    return SubtypeSlow(t, c);
  }
  // The most specific of two constraints, or nullopt when no value can satisfy both.
  std::optional<SymbolId> Meet(SymbolId a, SymbolId b) const {
    if (a == facts::kNoSymbol || IsSubtype(b, a)) return b;
    if (b == facts::kNoSymbol || IsSubtype(a, b)) return a;
    return std::nullopt;
  }

  // Orders a conjunction for evaluation given which slots are already bound (see program.cc).
  // `occurrences` counts the uses of each slot in the whole clause (head and body).
  static std::vector<Literal> Plan(const std::vector<Literal>& lits, std::vector<bool> bound,
                                   const std::vector<uint32_t>& occurrences);
  static void CountSlots(const Literal& lit, std::vector<uint32_t>* counts);

 private:
  bool SubtypeSlow(SymbolId t, SymbolId c) const;

  polar::DesugaredPolicy policy_;
  std::vector<Predicate> preds_;
  absl::flat_hash_map<facts::PredicateKey, uint32_t> pred_index_;
  std::vector<Clause> clauses_;
  facts::FactSet policy_facts_;
  std::vector<facts::RelationView> policy_views_;
  absl::flat_hash_set<SymbolId> actor_types_;
  std::vector<bool> actor_flags_;  // actor_types_ as a bitmap over small symbol ids (the usual case)
  absl::flat_hash_set<uint64_t> extends_;  // (sub << 32 | super) for the transitive closure of extends
  bool uses_now_ = false;
  std::optional<uint32_t> allow_pred_;

  friend class ProgramBuilder;
};

}  // namespace mandate::engine

#endif  // MANDATE_ENGINE_PROGRAM_H_
