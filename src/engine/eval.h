// The evaluator: answers calls and conjunctions of a compiled Program over a FactSet plus
// request-scoped context facts.
//
// Strategy. A query first runs as plain depth-first SLD resolution over slot arrays, stopping at the
// first answer when the caller only needs one. Calls to recursive predicates are checked against the
// calls in progress; if one is a variant of an ancestor (same predicate, same bound values, same
// unbound positions) SLD might not terminate, so the attempt is abandoned and the whole query re-runs
// in tabled mode: every call to a recursive predicate gets a per-request answer table, evaluated once
// per iteration, and the query is iterated until no table grows (a fixpoint). Negation is stratified:
// `not G` runs G to its own fixpoint first. A fast attempt that burns too many steps also switches to
// tabled mode (SLD can be exponential on DAG-shaped data where tabling is polynomial).
//
// The check path allocates nothing in steady state: slots, the trail and the call stack are per-thread
// buffers reused across requests, callbacks are absl::FunctionRef, and answers are arrays on the stack.
// Limits (steps, depth, 2 MiB of stack per query) and internal errors stop evaluation with a Result
// that callers turn into deny. Evaluate on threads with stacks of at least 4 MiB (the default is 8).
#ifndef MANDATE_ENGINE_EVAL_H_
#define MANDATE_ENGINE_EVAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "engine/program.h"
#include "facts/fact_set.h"
#include "mandate/mandate.h"

namespace mandate::engine {

// Symbols for request strings. Strings already interned resolve to their ids; unknown ones get
// request-local ids (which can never equal a stored value), so requests never grow the global table.
class RequestSymbols {
 public:
  static constexpr SymbolId kLocalBase = 0xC0000000u;
  SymbolId Resolve(std::string_view s);
  std::string_view Name(SymbolId id) const;
  void Clear() { local_.clear(); }
  bool has_local() const { return !local_.empty(); }
  // Continues the local ids of `base` (shared by the queries of one request; it must outlive this and
  // not change): its strings keep their ids, new ones are numbered after them. Call before Resolve.
  void SetBase(const RequestSymbols* base) { base_ = base; }

 private:
  const RequestSymbols* base_ = nullptr;
  std::vector<std::string> local_;
};

// Converts between wire values and Values. Ids of Integer/Boolean must parse.
absl::StatusOr<Value> ToValue(const TypedValue& v, RequestSymbols& symbols);
// Interns (for stored facts and policy text, which may grow the table).
absl::StatusOr<Value> ToInternedValue(const TypedValue& v);
TypedValue ToTypedValue(const Value& v, const RequestSymbols* symbols = nullptr);
std::string ValueToPolar(const Value& v, const RequestSymbols* symbols = nullptr);

// What one request brings besides the snapshot.
struct RequestContext {
  struct ContextFact {
    uint32_t pred;
    uint32_t offset;  // into values
  };
  std::vector<ContextFact> context;
  std::vector<Value> context_values;
  // When set, the context facts are shared's (converted once for several queries of one request,
  // with `symbols` based on the symbols they were converted with) and context/context_values are unused.
  const RequestContext* shared = nullptr;
  int64_t now = 0;  // Unix seconds: @current_unix_time, time_within, fact expiry
  EvalLimits limits;
  RequestSymbols* symbols = nullptr;

  // Adds context facts (predicates the program does not know are ignored: no rule can see them).
  absl::Status AddContextFacts(const Program& program, const std::vector<Fact>& facts);
  // What the evaluator reads: the context facts and the values of one of them.
  const std::vector<ContextFact>& ContextFacts() const { return shared != nullptr ? shared->context : context; }
  const Value* ContextRow(const ContextFact& cf) const {
    return (shared != nullptr ? shared->context_values : context_values).data() + cf.offset;
  }
};

class Evaluator {
 public:
  struct Result {
    enum class Code { kOk, kStepLimit, kDepthLimit, kError };
    Code code = Code::kOk;
    std::string message;
    bool ok() const { return code == Code::kOk; }
  };
  // Receives answers of a call: `arity` Values, each bound or Unbound(type) (a wildcard).
  class CallSink {
   public:
    virtual ~CallSink() = default;
    virtual bool Answer(const Value* args) = 0;  // false = stop
    virtual void Restart() {}                     // drop what was received: the query is re-run
  };
  // Receives solutions of a clause body: the clause's slot values (bound or Unbound(type)).
  class SlotSink {
   public:
    virtual ~SlotSink() = default;
    virtual bool Solution(const Value* slots) = 0;
    virtual void Restart() {}
  };
  enum class FactSource { kNone, kStored, kPolicy, kContext };

  // `views[p]` are the stored facts of program predicate p. All referenced objects must outlive this.
  Evaluator(const Program& program, const facts::RelationView* views, const RequestContext& request);
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  // All answers of pred(in...) (`in`: arity Values, bound or Unbound(type)) until the sink stops.
  Result SolveCall(uint32_t pred, const Value* in, CallSink& sink);
  // Solutions of the first `prefix` literals of c.PlanFor(mask of bound `in`) with the head bound to
  // `in` (null when the clause has no head: compiled queries).
  Result SolveClause(const Clause& c, const Value* in, size_t prefix, SlotSink& sink);
  // Where a fully bound fact comes from, if it exists.
  FactSource FindFact(uint32_t pred, const Value* tuple) const;
  // Like FindFact for a pattern (unbound positions match anything of their type); the first matching
  // fact is copied to row_out.
  FactSource MatchFact(uint32_t pred, const Value* pattern, Value* row_out) const;
  // Whether a fully bound call holds (facts or rules).
  Result Holds(uint32_t pred, const Value* in, bool* holds);

  uint64_t steps() const { return total_steps_; }
  bool used_tabling() const { return used_tabling_; }

 private:
  struct Scratch;
  struct Table;
  static Scratch* AcquireScratch();
  static void ReleaseScratch(Scratch* s);
  static thread_local std::vector<std::unique_ptr<Scratch>> pool_;
  using AnswerFn = absl::FunctionRef<bool(const Value*)>;
  using DoneFn = absl::FunctionRef<bool()>;

  template <typename Body>
  Result Run(Body&& body, absl::FunctionRef<void()> restart);
  void Reset(bool tabled);
  bool Fixpoint(absl::FunctionRef<bool()> body, absl::FunctionRef<void()> on_iteration, bool* stopped);

  bool Solve(uint32_t pred, const Value* in, AnswerFn k);
  // `mask`: bit i set when in[i] is bound.
  bool SolveDirect(uint32_t pred, const Value* in, uint32_t mask, AnswerFn k);
  bool SolveFacts(uint32_t pred, const Value* in, uint32_t mask, AnswerFn k);
  bool SolveClauses(uint32_t pred, const std::vector<uint32_t>& clauses, const Value* in, uint32_t mask,
                    AnswerFn k);
  bool SolveTabled(uint32_t pred, const Value* in, AnswerFn k);
  bool EnterClause(const Clause& c, const Value* in, uint32_t* frame);
  bool RunBody(const Literal* lits, size_t n, size_t i, uint32_t frame, DoneFn done);
  bool RunLiteral(const Literal* lits, size_t n, size_t i, uint32_t frame, DoneFn done);
  bool RunNot(const Literal& l, uint32_t frame, bool* found);
  bool Compare(polar::CmpOp op, const Value& a, const Value& b) const;
  Value HeadAnswer(const Arg& h, const Value& in, uint32_t frame) const;
  void AddAnswer(Table& t, const Value* answer);

  uint32_t AllocFrame(const Clause& c);
  void FreeFrame(uint32_t frame);
  uint32_t Deref(uint32_t s) const;
  Value ArgValue(const Arg& a, uint32_t frame) const;
  bool BindSlot(uint32_t s, const Value& v, bool trail);
  bool Unify(uint32_t s, uint32_t t);  // two slots (both dereferenced)
  void Trail(uint32_t s);
  void Undo(size_t mark);
  bool Fail(Result::Code code, std::string message);
  bool aborted() const { return result_.code != Result::Code::kOk || need_tabling_; }

  const Program& prog_;
  const facts::RelationView* views_;
  const RequestContext& req_;
  Scratch* s_;
  Result result_;
  bool tabled_ = false;
  bool need_tabling_ = false;
  bool used_tabling_ = false;
  uint64_t steps_ = 0, step_limit_ = 0, total_steps_ = 0;
  uint32_t depth_ = 0;
  uintptr_t stack_base_ = 0;  // stack position when the current run started
  uint64_t epoch_ = 0;
  uint32_t level_ = 0;
};

}  // namespace mandate::engine

#endif  // MANDATE_ENGINE_EVAL_H_
