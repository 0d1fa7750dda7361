// Explanations of decisions, built on demand (nothing on the normal check path records anything).
// An allow is explained by a proof tree: the rule that applied, with a child per condition (sub-rules,
// facts, context facts, comparisons), choosing for each sub-goal a derivation that does not go through
// one of its own ancestors, so that proofs are finite even over cyclic data. A deny is explained by the
// clauses that were tried, each with the first condition that failed, descending a few levels into
// the calls that failed.
#ifndef MANDATE_ENGINE_EXPLAIN_H_
#define MANDATE_ENGINE_EXPLAIN_H_

#include <optional>
#include <string>
#include <vector>

#include "engine/eval.h"
#include "engine/program.h"
#include "mandate/mandate.h"

namespace mandate::engine {

class Explainer {
 public:
  Explainer(const Program& program, const facts::RelationView* views, const RequestContext& request);

  // A proof of pred(in...), or nullopt when none was found (the goal does not hold, or a limit hit).
  std::optional<ExplainNode> Prove(uint32_t pred, const Value* in);
  // Why pred(in...) fails: one node per candidate clause with its first failing condition; failed
  // calls are explained `depth - 1` further levels down.
  std::vector<ExplainNode> WhyNot(uint32_t pred, const Value* in, int depth);

  // Polar text of a call with values, e.g. has_role(User{"a"}, "admin", Org{"o"}).
  std::string CallText(uint32_t pred, const Value* args) const;

 private:
  struct Goal {
    uint32_t pred;
    std::vector<Value> args;
  };
  std::optional<ExplainNode> ProveGoal(uint32_t pred, const std::vector<Value>& args, std::vector<Goal>& ancestors);
  std::optional<ExplainNode> ProveClause(const Clause& c, const std::vector<Value>& in,
                                         const std::vector<Value>& solution, std::vector<Goal>& ancestors);
  std::vector<std::vector<Value>> Solutions(const Clause& c, const Value* in, size_t prefix, size_t max);
  std::string RuleText(const Clause& c, const Value* in, const std::vector<Value>* slots) const;
  std::string Location(const polar::Span& span) const;
  std::string ArgText(const Arg& a, const Clause& c, const std::vector<Value>* slots) const;
  std::string LiteralText(const Literal& l, const Clause& c, const std::vector<Value>* slots) const;
  std::string LocalTime(const Literal& l) const;  // for time_within
  std::vector<Value> CallArgs(const Literal& l, const std::vector<Value>& slots) const;

  const Program& prog_;
  const RequestContext& req_;
  Evaluator ev_;
  int budget_ = 2000;  // clause attempts per explanation, so explaining stays cheap
};

}  // namespace mandate::engine

#endif  // MANDATE_ENGINE_EXPLAIN_H_
