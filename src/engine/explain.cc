#include "engine/explain.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mandate::engine {
namespace {

const char* OpText(polar::CmpOp op) {
  switch (op) {
    case polar::CmpOp::kEq:
      return "=";
    case polar::CmpOp::kNe:
      return "!=";
    case polar::CmpOp::kLt:
      return "<";
    case polar::CmpOp::kLe:
      return "<=";
    case polar::CmpOp::kGt:
      return ">";
    case polar::CmpOp::kGe:
      return ">=";
  }
  return "=";
}

constexpr char kHeadMismatch[] = "the arguments do not match the rule's parameters";

uint32_t BoundMask(const Value* in, size_t n) {
  uint32_t mask = 0;
  for (size_t i = 0; i < n; ++i) {
    if (in[i].valid()) mask |= 1u << i;
  }
  return mask;
}

// Collects up to `max` solutions of a clause body.
class CollectSink : public Evaluator::SlotSink {
 public:
  CollectSink(size_t num_slots, size_t max) : num_slots_(num_slots), max_(max) {}
  bool Solution(const Value* slots) override {
    out.emplace_back(slots, slots + num_slots_);
    return out.size() < max_;
  }
  void Restart() override { out.clear(); }
  std::vector<std::vector<Value>> out;

 private:
  size_t num_slots_, max_;
};

}  // namespace

Explainer::Explainer(const Program& program, const facts::RelationView* views, const RequestContext& request)
    : prog_(program), req_(request), ev_(program, views, request) {}

std::string Explainer::Location(const polar::Span& span) const {
  const polar::SourceSet& sources = prog_.policy().sources;
  if (span.line == 0 || span.file >= sources.size()) return "";
  return absl::StrCat(sources[span.file].filename, ":", span.line);
}

std::string Explainer::CallText(uint32_t pred, const Value* args) const {
  const Predicate& p = prog_.pred(pred);
  std::string out = absl::StrCat(p.name, "(");
  for (uint32_t i = 0; i < p.key.arity; ++i) {
    if (i > 0) out += ", ";
    out += ValueToPolar(args[i], req_.symbols);
  }
  return out + ")";
}

std::string Explainer::ArgText(const Arg& a, const Clause& c, const std::vector<Value>* slots) const {
  switch (a.kind) {
    case Arg::Kind::kConst:
      return ValueToPolar(a.value, req_.symbols);
    case Arg::Kind::kNow:
      return std::to_string(req_.now);
    case Arg::Kind::kAnon:
      return "_";
    case Arg::Kind::kSlot:
      if (slots != nullptr && (*slots)[a.slot].valid()) return ValueToPolar((*slots)[a.slot], req_.symbols);
      return c.slot_names[a.slot];
  }
  return "_";
}

std::string Explainer::LiteralText(const Literal& l, const Clause& c, const std::vector<Value>* slots) const {
  auto args = [&](const std::vector<Arg>& as) {
    return absl::StrJoin(as, ", ", [&](std::string* out, const Arg& a) { out->append(ArgText(a, c, slots)); });
  };
  switch (l.kind) {
    case Literal::Kind::kCall:
      return absl::StrCat(prog_.pred(l.pred).name, "(", args(l.args), ")");
    case Literal::Kind::kCompare:
      return absl::StrCat(ArgText(l.args[0], c, slots), " ", OpText(l.op), " ", ArgText(l.args[1], c, slots));
    case Literal::Kind::kMatches:
      return absl::StrCat(ArgText(l.args[0], c, slots), " matches ", std::string(facts::SymbolTable::Global().Name(l.type)));
    case Literal::Kind::kNot: {
      std::string inner = absl::StrJoin(l.body, " and ", [&](std::string* out, const Literal& b) {
        out->append(LiteralText(b, c, slots));
      });
      return l.body.size() == 1 ? absl::StrCat("not ", inner) : absl::StrCat("not (", inner, ")");
    }
    case Literal::Kind::kTimeWithin:
      return absl::StrCat("time_within(", args(l.args), ") at ", LocalTime(l));
    case Literal::Kind::kMember: {
      std::string list = absl::StrJoin(l.members, ", ", [&](std::string* out, const Value& v) {
        out->append(ValueToPolar(v, req_.symbols));
      });
      return absl::StrCat(ArgText(l.args[0], c, slots), " in [", list, "]");
    }
  }
  return "";
}

std::string Explainer::LocalTime(const Literal& l) const {
  // The request's time in the window's zone, so that a deny shows why; UTC when the zone comes from
  // facts (it is parsed during evaluation, not here).
  const absl::TimeZone zone = l.window != nullptr ? l.window->zone : absl::UTCTimeZone();
  return absl::FormatTime("%a %Y-%m-%d %H:%M:%S %Z", absl::FromUnixSeconds(req_.now), zone);
}

std::string Explainer::RuleText(const Clause& c, const Value* in, const std::vector<Value>* slots) const {
  const polar::Rule& rule = prog_.policy().rules[c.rule];
  std::string out = absl::StrCat(rule.name, "(");
  for (size_t i = 0; i < c.head.size(); ++i) {
    if (i > 0) out += ", ";
    out += in != nullptr && in[i].valid() ? ValueToPolar(in[i], req_.symbols) : ArgText(c.head[i], c, slots);
  }
  out += ")";
  if (!rule.origin.empty()) absl::StrAppend(&out, " (from ", rule.origin, ")");
  return out;
}

std::vector<Value> Explainer::CallArgs(const Literal& l, const std::vector<Value>& slots) const {
  std::vector<Value> args;
  for (const Arg& a : l.args) {
    switch (a.kind) {
      case Arg::Kind::kConst:
        args.push_back(a.value);
        break;
      case Arg::Kind::kNow:
        args.push_back(Value::Integer(req_.now));
        break;
      case Arg::Kind::kAnon:
        args.push_back(Unbound());
        break;
      case Arg::Kind::kSlot:
        args.push_back(slots[a.slot]);
        break;
    }
  }
  return args;
}

std::vector<std::vector<Value>> Explainer::Solutions(const Clause& c, const Value* in, size_t prefix, size_t max) {
  CollectSink sink(c.num_slots, max);
  ev_.SolveClause(c, in, prefix, sink);  // a limit leaves fewer solutions: the explanation is partial
  return std::move(sink.out);
}

std::optional<ExplainNode> Explainer::Prove(uint32_t pred, const Value* in) {
  std::vector<Goal> ancestors;
  return ProveGoal(pred, std::vector<Value>(in, in + prog_.pred(pred).key.arity), ancestors);
}

std::optional<ExplainNode> Explainer::ProveGoal(uint32_t pred, const std::vector<Value>& args,
                                                std::vector<Goal>& ancestors) {
  if (--budget_ < 0) return std::nullopt;
  ArgBuffer row;
  const Evaluator::FactSource src = ev_.MatchFact(pred, args.data(), row.data());
  if (src != Evaluator::FactSource::kNone) {
    ExplainNode n;
    n.kind = src == Evaluator::FactSource::kContext ? "context_fact" : "fact";
    n.text = CallText(pred, row.data());
    n.satisfied = true;
    return n;
  }
  ancestors.push_back({pred, args});
  std::optional<ExplainNode> found;
  for (uint32_t ci : prog_.Candidates(pred, args.data())) {
    const Clause& c = prog_.clause(ci);
    for (const std::vector<Value>& sol : Solutions(c, args.data(), SIZE_MAX, 8)) {
      found = ProveClause(c, args, sol, ancestors);
      if (found || budget_ < 0) break;
    }
    if (found || budget_ < 0) break;
  }
  ancestors.pop_back();
  return found;
}

std::optional<ExplainNode> Explainer::ProveClause(const Clause& c, const std::vector<Value>& in,
                                                  const std::vector<Value>& solution, std::vector<Goal>& ancestors) {
  ExplainNode node;
  node.kind = "rule";
  node.text = RuleText(c, in.data(), &solution);
  node.location = Location(prog_.policy().rules[c.rule].span);
  node.satisfied = true;
  for (const Literal& l : c.PlanFor(BoundMask(in.data(), in.size()))) {
    ExplainNode child;
    child.text = LiteralText(l, c, &solution);
    child.location = Location(l.span);
    child.satisfied = true;
    switch (l.kind) {
      case Literal::Kind::kCall: {
        std::vector<Value> args = CallArgs(l, solution);
        for (const Goal& g : ancestors) {
          if (g.pred == l.pred && g.args == args) return std::nullopt;  // would prove a goal by itself
        }
        std::optional<ExplainNode> sub = ProveGoal(l.pred, args, ancestors);
        if (!sub) return std::nullopt;
        node.children.push_back(std::move(*sub));
        continue;
      }
      case Literal::Kind::kCompare:
        child.kind = "compare";
        break;
      case Literal::Kind::kMatches:
        child.kind = "matches";
        break;
      case Literal::Kind::kNot:
        child.kind = "not";
        break;
      case Literal::Kind::kMember:
      case Literal::Kind::kTimeWithin:
        child.kind = "builtin";
        break;
    }
    node.children.push_back(std::move(child));
  }
  return node;
}

std::vector<ExplainNode> Explainer::WhyNot(uint32_t pred, const Value* in, int depth) {
  std::vector<ExplainNode> nodes;
  const uint32_t arity = prog_.pred(pred).key.arity;
  for (uint32_t ci : prog_.Candidates(pred, in)) {
    if (--budget_ < 0) break;
    const Clause& c = prog_.clause(ci);
    ExplainNode node;
    node.kind = "rule";
    node.location = Location(prog_.policy().rules[c.rule].span);
    node.text = RuleText(c, in, nullptr);
    std::vector<std::vector<Value>> prev = Solutions(c, in, 0, 1);
    if (prev.empty()) {
      node.failed = kHeadMismatch;
      nodes.push_back(std::move(node));
      continue;
    }
    const std::vector<Literal>& plan = c.PlanFor(BoundMask(in, arity));
    size_t failed = plan.size();
    for (size_t k = 0; k < plan.size(); ++k) {
      std::vector<std::vector<Value>> next = Solutions(c, in, k + 1, 1);
      if (next.empty()) {
        failed = k;
        break;
      }
      prev = std::move(next);
    }
    const std::vector<Value>& sol = prev.front();
    node.text = RuleText(c, in, &sol);
    if (failed == plan.size()) {
      node.satisfied = true;  // only when evaluation stopped early (a limit) elsewhere
      nodes.push_back(std::move(node));
      continue;
    }
    const Literal& l = plan[failed];
    node.failed = LiteralText(l, c, &sol);
    if (l.kind == Literal::Kind::kCall && depth > 1) {
      std::vector<Value> args = CallArgs(l, sol);
      const Predicate& callee = prog_.pred(l.pred);
      if (prog_.policy().signatures.contains(callee.name)) {
        ExplainNode fact;
        fact.kind = "fact";
        fact.text = node.failed;
        fact.failed = "no matching fact";
        node.children.push_back(std::move(fact));
      }
      for (ExplainNode& child : WhyNot(l.pred, args.data(), depth - 1)) {
        if (child.failed != kHeadMismatch) node.children.push_back(std::move(child));
      }
    }
    nodes.push_back(std::move(node));
  }
  return nodes;
}

}  // namespace mandate::engine
