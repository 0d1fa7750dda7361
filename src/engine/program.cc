#include "engine/program.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "polar/polar.h"

namespace mandate::engine {
namespace {

using facts::kNoSymbol;
using facts::SymbolTable;

// Disjunctive normal form of a rule body. A conjunction is a list of NLits; a negated literal holds
// the conjunction it negates (`not (a or b)` becomes `not a and not b`).
struct NLit {
  const polar::Expr* leaf = nullptr;
  std::vector<NLit> negated;  // when leaf == nullptr
};
using Conj = std::vector<NLit>;

constexpr size_t kMaxDisjuncts = 256;

bool Dnf(const polar::Expr& e, std::vector<Conj>* out) {
  switch (e.kind) {
    case polar::Expr::Kind::kCall:
    case polar::Expr::Kind::kCompare:
    case polar::Expr::Kind::kMatches:
      out->push_back(Conj{NLit{&e, {}}});
      return true;
    case polar::Expr::Kind::kOr:
      for (const polar::Expr& c : e.children) {
        if (!Dnf(c, out) || out->size() > kMaxDisjuncts) return false;
      }
      return true;
    case polar::Expr::Kind::kAnd: {
      std::vector<Conj> acc{Conj{}};
      for (const polar::Expr& c : e.children) {
        std::vector<Conj> part;
        if (!Dnf(c, &part)) return false;
        std::vector<Conj> next;
        if (acc.size() * part.size() > kMaxDisjuncts) return false;
        for (const Conj& a : acc) {
          for (const Conj& p : part) {
            Conj x = a;
            x.insert(x.end(), p.begin(), p.end());
            next.push_back(std::move(x));
          }
        }
        acc = std::move(next);
      }
      out->insert(out->end(), acc.begin(), acc.end());
      return true;
    }
    case polar::Expr::Kind::kNot: {
      if (e.children.empty()) return false;
      std::vector<Conj> inner;
      if (!Dnf(e.children[0], &inner)) return false;
      Conj conj;
      for (Conj& d : inner) conj.push_back(NLit{nullptr, std::move(d)});
      out->push_back(std::move(conj));
      return true;
    }
  }
  return false;
}

SymbolId Intern(std::string_view s) { return SymbolTable::Global().Intern(s); }

SymbolId TypeSymbol(const std::string& name) { return name.empty() ? kNoSymbol : Intern(name); }

// Constant value of a ground term (nullopt for variables, wildcards and @current_unix_time).
std::optional<Value> ConstValue(const polar::Term& t) {
  switch (t.kind) {
    case polar::Term::Kind::kString:
      return Value::String(Intern(t.str));
    case polar::Term::Kind::kInteger:
      return Value::Integer(t.integer);
    case polar::Term::Kind::kBoolean:
      return Value::Boolean(t.boolean);
    case polar::Term::Kind::kInstance:
      return Value::Instance(Intern(t.type_name), Intern(t.str));
    default:
      return std::nullopt;
  }
}

// Call graph SCCs (Tarjan) to find recursive predicates.
class SccFinder {
 public:
  explicit SccFinder(const std::vector<std::vector<uint32_t>>& edges)
      : edges_(edges), index_(edges.size(), -1), low_(edges.size(), 0), on_stack_(edges.size(), false),
        comp_(edges.size(), -1) {
    for (uint32_t v = 0; v < edges.size(); ++v) {
      if (index_[v] < 0) Visit(v);
    }
  }
  int component(uint32_t v) const { return comp_[v]; }

 private:
  void Visit(uint32_t v) {
    index_[v] = low_[v] = counter_++;
    stack_.push_back(v);
    on_stack_[v] = true;
    for (uint32_t w : edges_[v]) {
      if (index_[w] < 0) {
        Visit(w);
        low_[v] = std::min(low_[v], low_[w]);
      } else if (on_stack_[w]) {
        low_[v] = std::min(low_[v], index_[w]);
      }
    }
    if (low_[v] == index_[v]) {
      while (true) {
        uint32_t w = stack_.back();
        stack_.pop_back();
        on_stack_[w] = false;
        comp_[w] = components_;
        if (w == v) break;
      }
      ++components_;
    }
  }
  const std::vector<std::vector<uint32_t>>& edges_;
  std::vector<int> index_, low_;
  std::vector<bool> on_stack_;
  std::vector<int> comp_;
  std::vector<uint32_t> stack_;
  int counter_ = 0, components_ = 0;
};

}  // namespace

class ProgramBuilder {
 public:
  ProgramBuilder(Program* p, std::vector<polar::Diagnostic>* diags) : p_(*p), diags_(diags) {}

  bool Build() {
    BuildTypes();
    for (const auto& [name, sigs] : p_.policy_.signatures) {
      for (const polar::Signature& s : sigs) {
        if (s.arg_types.size() <= kMaxArity) Pred(name, static_cast<uint32_t>(s.arg_types.size()));
      }
    }
    std::vector<std::pair<facts::PredicateKey, std::vector<Value>>> facts;
    for (uint32_t r = 0; r < p_.policy_.rules.size(); ++r) CompileRule(r, &facts);
    if (!ok_) return false;
    p_.policy_facts_ = facts::FactSet::FromFacts(facts);
    for (const Predicate& pr : p_.preds_) p_.policy_views_.push_back(p_.policy_facts_.Relation(pr.key));
    BuildIndexes();
    FindRecursion();
    p_.allow_pred_ = p_.FindPredicate(std::string_view("allow"), 3);
    return ok_;
  }

 private:
  void Error(const polar::Span& span, std::string message) {
    ok_ = false;
    if (diags_ != nullptr) diags_->push_back({polar::Diagnostic::Severity::kError, span, std::move(message), ""});
  }

  void BuildTypes() {
    // supers[t] = direct supertype by extends.
    absl::flat_hash_map<SymbolId, SymbolId> super;
    for (const auto& [name, info] : p_.policy_.types) {
      SymbolId t = Intern(name);
      if (!info.extends.empty()) super[t] = Intern(info.extends);
    }
    for (const auto& [name, info] : p_.policy_.types) {
      SymbolId t = Intern(name);
      bool actor = info.is_actor;
      // Walk the extends chain (guarding against cycles the validator should have rejected).
      SymbolId cur = t;
      for (size_t steps = 0; steps < p_.policy_.types.size(); ++steps) {
        auto it = super.find(cur);
        if (it == super.end()) break;
        cur = it->second;
        if (cur == facts::kActorType) actor = true;
        p_.extends_.insert(uint64_t{t} << 32 | cur);
        auto ti = p_.policy_.types.find(std::string(SymbolTable::Global().Name(cur)));
        if (ti != p_.policy_.types.end() && ti->second.is_actor) actor = true;
      }
      if (actor) p_.actor_types_.insert(t);
    }
    SymbolId max_type = 0;
    for (SymbolId t : p_.actor_types_) max_type = std::max(max_type, t);
    if (max_type < (1u << 20)) {
      p_.actor_flags_.assign(std::max<size_t>(max_type + 1, facts::kFirstUserSymbol), false);
      for (SymbolId t : p_.actor_types_) p_.actor_flags_[t] = true;
    }
  }

  uint32_t Pred(const std::string& name, uint32_t arity) {
    facts::PredicateKey key{Intern(name), arity};
    auto [it, inserted] = p_.pred_index_.try_emplace(key, static_cast<uint32_t>(p_.preds_.size()));
    if (inserted) {
      Predicate pr;
      pr.key = key;
      pr.name = name;
      p_.preds_.push_back(std::move(pr));
    }
    return it->second;
  }

  // Per-clause variable numbering.
  struct Vars {
    absl::flat_hash_map<std::string, uint16_t> slots;
    std::vector<std::string> names;
    std::vector<SymbolId> types;
    bool overflow = false;
    uint16_t Slot(const std::string& name) {
      auto it = slots.find(name);
      if (it != slots.end()) return it->second;
      return Fresh(name);
    }
    uint16_t Fresh(const std::string& name) {
      if (names.size() >= kNoSlot - 1) {
        overflow = true;
        return 0;
      }
      uint16_t s = static_cast<uint16_t>(names.size());
      names.push_back(name);
      types.push_back(kNoSymbol);
      if (name != "_") slots.emplace(name, s);
      return s;
    }
  };

  Arg TermArg(const polar::Term& t, Vars& vars, bool in_head) {
    Arg a;
    switch (t.kind) {
      case polar::Term::Kind::kVar:
        a.kind = Arg::Kind::kSlot;
        a.slot = vars.Slot(t.name);
        a.type = TypeSymbol(t.type_name);
        return a;
      case polar::Term::Kind::kWildcard:
        a.kind = Arg::Kind::kAnon;
        a.type = in_head ? TypeSymbol(t.type_name) : kNoSymbol;
        if (!in_head && !t.type_name.empty()) {
          // A typed `_` in a body needs a slot to carry its type through the call.
          a.kind = Arg::Kind::kSlot;
          a.slot = vars.Fresh("_");
          a.type = TypeSymbol(t.type_name);
          vars.types[a.slot] = a.type;
        }
        return a;
      case polar::Term::Kind::kCurrentUnixTime:
        a.kind = Arg::Kind::kNow;
        p_.uses_now_ = true;
        return a;
      default:
        a.kind = Arg::Kind::kConst;
        a.value = *ConstValue(t);
        return a;
    }
  }

  bool CompileLiteral(const NLit& n, Vars& vars, Literal* out) {
    if (n.leaf == nullptr) {
      out->kind = Literal::Kind::kNot;
      for (const NLit& c : n.negated) {
        Literal l;
        if (!CompileLiteral(c, vars, &l)) return false;
        out->body.push_back(std::move(l));
      }
      if (!n.negated.empty() && n.negated.front().leaf != nullptr) out->span = n.negated.front().leaf->span;
      return true;
    }
    const polar::Expr& e = *n.leaf;
    out->span = e.span;
    for (const polar::Term& t : e.args) out->args.push_back(TermArg(t, vars, false));
    switch (e.kind) {
      case polar::Expr::Kind::kCall:
        if (polar::IsTimeWithin(e)) {
          out->kind = Literal::Kind::kTimeWithin;
          p_.uses_now_ = true;
          CompileTimeWindow(e, out);
          return true;
        }
        if (e.args.size() > kMaxArity) {
          Error(e.span, absl::StrCat("call to ", e.name, " has ", e.args.size(), " arguments; at most ", kMaxArity,
                                     " are supported"));
          return false;
        }
        out->kind = Literal::Kind::kCall;
        out->pred = Pred(e.name, static_cast<uint32_t>(e.args.size()));
        return true;
      case polar::Expr::Kind::kCompare:
        out->kind = Literal::Kind::kCompare;
        out->op = e.op;
        return out->args.size() == 2;
      case polar::Expr::Kind::kMatches:
        out->kind = Literal::Kind::kMatches;
        out->type = TypeSymbol(e.type_name);
        return out->args.size() == 1;
      default:
        return false;
    }
  }

  // Literal arguments (the usual case) are parsed here, once; validation has checked them.
  void CompileTimeWindow(const polar::Expr& e, Literal* out) {
    for (const polar::Term& t : e.args) {
      if (t.kind != polar::Term::Kind::kString) return;
    }
    absl::StatusOr<polar::TimeWindow> w = polar::ParseTimeWindow(e.args[0].str, e.args[1].str, e.args[2].str, e.args[3].str);
    if (!w.ok()) {
      Error(e.span, absl::StrCat("time_within: ", w.status().message()));
      return;
    }
    out->window = std::make_shared<const polar::TimeWindow>(*std::move(w));
  }

  void CompileRule(uint32_t r, std::vector<std::pair<facts::PredicateKey, std::vector<Value>>>* facts) {
    const polar::Rule& rule = p_.policy_.rules[r];
    const uint32_t arity = static_cast<uint32_t>(rule.params.size());
    if (arity > kMaxArity) {
      Error(rule.span, absl::StrCat("rule ", rule.name, " has ", arity, " parameters; at most ", kMaxArity,
                                    " are supported"));
      return;
    }
    const uint32_t pred = Pred(rule.name, arity);
    if (!rule.body) {
      std::vector<Value> tuple;
      for (const polar::Term& t : rule.params) {
        std::optional<Value> v = ConstValue(t);
        if (!v) break;
        tuple.push_back(*v);
      }
      if (tuple.size() == arity) {
        facts->emplace_back(p_.preds_[pred].key, std::move(tuple));
        return;
      }
    }
    std::vector<Conj> disjuncts;
    if (!rule.body) {
      disjuncts.push_back({});
    } else if (!Dnf(*rule.body, &disjuncts)) {
      Error(rule.span, absl::StrCat("the body of rule ", rule.name, " has more than ", kMaxDisjuncts,
                                    " alternatives once its `or`s are expanded; split it into several rules"));
      return;
    }
    for (const Conj& conj : disjuncts) {
      Clause c;
      c.pred = pred;
      c.rule = r;
      Vars vars;
      for (const polar::Term& t : rule.params) c.head.push_back(TermArg(t, vars, true));
      std::vector<Literal> lits;
      for (const NLit& n : conj) {
        Literal l;
        if (!CompileLiteral(n, vars, &l)) {
          if (ok_) Error(rule.span, absl::StrCat("cannot compile the body of rule ", rule.name));
          return;
        }
        lits.push_back(std::move(l));
      }
      if (vars.overflow) {
        Error(rule.span, absl::StrCat("rule ", rule.name, " has too many variables"));
        return;
      }
      c.num_slots = static_cast<uint16_t>(vars.names.size());
      c.slot_names = std::move(vars.names);
      c.slot_types = std::move(vars.types);
      std::vector<uint32_t> occurrences(c.num_slots, 0);
      for (const Arg& a : c.head) {
        if (a.kind == Arg::Kind::kSlot) ++occurrences[a.slot];
      }
      for (const Literal& l : lits) Program::CountSlots(l, &occurrences);
      const uint32_t masks = arity <= kMaxPlannedArity ? (1u << arity) : 1u;
      for (uint32_t mask = 0; mask < masks; ++mask) {
        std::vector<bool> bound(c.num_slots, false);
        for (uint32_t i = 0; i < arity; ++i) {
          if ((mask >> i & 1) && c.head[i].kind == Arg::Kind::kSlot) bound[c.head[i].slot] = true;
        }
        c.plans.push_back(Program::Plan(lits, std::move(bound), occurrences));
      }
      p_.preds_[pred].clauses.push_back(static_cast<uint32_t>(p_.clauses_.size()));
      p_.clauses_.push_back(std::move(c));
    }
  }

  void BuildIndexes() {
    for (Predicate& pr : p_.preds_) {
      if (pr.clauses.size() < 2) continue;
      int best = -1;
      size_t best_consts = 0, best_distinct = 0;
      for (uint32_t pos = 0; pos < pr.key.arity; ++pos) {
        absl::flat_hash_set<Value> distinct;
        size_t consts = 0;
        for (uint32_t c : pr.clauses) {
          const Arg& a = p_.clauses_[c].head[pos];
          if (a.kind == Arg::Kind::kConst) {
            ++consts;
            distinct.insert(a.value);
          }
        }
        if (distinct.size() > best_distinct || (distinct.size() == best_distinct && consts > best_consts)) {
          best = static_cast<int>(pos);
          best_consts = consts;
          best_distinct = distinct.size();
        }
      }
      if (best < 0 || best_distinct < 2) continue;
      pr.index_pos = best;
      for (uint32_t c : pr.clauses) {
        const Arg& a = p_.clauses_[c].head[best];
        if (a.kind == Arg::Kind::kConst) {
          pr.by_value[a.value];  // create the key; filled below in rule order
        } else {
          pr.unindexed.push_back(c);
        }
      }
      for (uint32_t c : pr.clauses) {
        const Arg& a = p_.clauses_[c].head[best];
        if (a.kind == Arg::Kind::kConst) {
          pr.by_value[a.value].push_back(c);
        } else {
          for (auto& [v, list] : pr.by_value) list.push_back(c);
        }
      }
    }
  }

  void CollectCalls(const Literal& l, std::vector<uint32_t>* calls, std::vector<uint32_t>* negated, bool in_not) {
    if (l.kind == Literal::Kind::kCall) (in_not ? negated : calls)->push_back(l.pred);
    for (const Literal& b : l.body) CollectCalls(b, calls, negated, true);
  }

  void FindRecursion() {
    const size_t n = p_.preds_.size();
    std::vector<std::vector<uint32_t>> edges(n), neg_edges(n);
    for (const Clause& c : p_.clauses_) {
      for (const Literal& l : c.plans[0]) CollectCalls(l, &edges[c.pred], &neg_edges[c.pred], false);
    }
    std::vector<std::vector<uint32_t>> all = edges;
    for (size_t i = 0; i < n; ++i) all[i].insert(all[i].end(), neg_edges[i].begin(), neg_edges[i].end());
    SccFinder scc(all);
    std::vector<size_t> comp_size(n, 0);
    for (uint32_t v = 0; v < n; ++v) ++comp_size[scc.component(v)];
    for (uint32_t v = 0; v < n; ++v) {
      Predicate& pr = p_.preds_[v];
      pr.recursive = comp_size[scc.component(v)] > 1 ||
                     std::find(all[v].begin(), all[v].end(), v) != all[v].end();
      for (uint32_t w : neg_edges[v]) {
        if (scc.component(w) == scc.component(v)) {
          const Clause* where = nullptr;
          for (uint32_t c : pr.clauses) where = &p_.clauses_[c];
          Error(where != nullptr ? p_.policy_.rules[where->rule].span : polar::Span{},
                absl::StrCat("rule ", pr.name, " depends on itself through `not`; negation must not be recursive"));
          return;
        }
      }
    }
  }

  Program& p_;
  std::vector<polar::Diagnostic>* diags_;
  bool ok_ = true;
};

absl::StatusOr<std::shared_ptr<const Program>> Program::Compile(polar::DesugaredPolicy policy,
                                                               std::vector<polar::Diagnostic>* diags) {
  auto p = std::make_shared<Program>();
  p->policy_ = std::move(policy);
  std::vector<polar::Diagnostic> local;
  ProgramBuilder b(p.get(), &local);
  if (!b.Build()) {
    std::vector<std::string> lines;
    for (const polar::Diagnostic& d : local) lines.push_back(polar::FormatDiagnostic(d, p->policy_.sources));
    if (diags != nullptr) diags->insert(diags->end(), local.begin(), local.end());
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }
  return p;
}

std::optional<uint32_t> Program::FindPredicate(SymbolId name, uint32_t arity) const {
  auto it = pred_index_.find(facts::PredicateKey{name, arity});
  if (it == pred_index_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> Program::FindPredicate(std::string_view name, uint32_t arity) const {
  std::optional<SymbolId> s = SymbolTable::Global().Find(name);
  if (!s) return std::nullopt;
  return FindPredicate(*s, arity);
}

SymbolId Program::SymbolFor(std::string_view name) const {
  return SymbolTable::Global().Find(name).value_or(kNoSymbol);
}

bool Program::SubtypeSlow(SymbolId t, SymbolId c) const {
  if (t == kNoSymbol) return false;
  if (c == facts::kResourceType) {
    return t != facts::kStringType && t != facts::kIntegerType && t != facts::kBooleanType;
  }
  if (c == facts::kActorType) return actor_types_.contains(t);
  return extends_.contains(uint64_t{t} << 32 | c);
}

void Program::CountSlots(const Literal& lit, std::vector<uint32_t>* counts) {
  for (const Arg& a : lit.args) {
    if (a.kind == Arg::Kind::kSlot) ++(*counts)[a.slot];
  }
  for (const Literal& b : lit.body) CountSlots(b, counts);
}

namespace {

bool ArgBound(const Arg& a, const std::vector<bool>& bound) {
  return a.kind == Arg::Kind::kConst || a.kind == Arg::Kind::kNow || (a.kind == Arg::Kind::kSlot && bound[a.slot]);
}

void MarkBound(const Literal& l, std::vector<bool>* bound) {
  if (l.kind == Literal::Kind::kCall || l.kind == Literal::Kind::kMember ||
      (l.kind == Literal::Kind::kCompare && l.op == polar::CmpOp::kEq)) {
    for (const Arg& a : l.args) {
      if (a.kind == Arg::Kind::kSlot) (*bound)[a.slot] = true;
    }
  }
}

// Slots of a negated conjunction that are also used outside it: they must be bound before the
// `not` runs; the others are local (existential) to it.
bool NotReady(const Literal& l, const std::vector<bool>& bound, const std::vector<uint32_t>& occurrences) {
  std::vector<uint32_t> inner(occurrences.size(), 0);
  Program::CountSlots(l, &inner);
  for (size_t s = 0; s < inner.size(); ++s) {
    if (inner[s] > 0 && occurrences[s] > inner[s] && !bound[s]) return false;
  }
  return true;
}

constexpr int kFilter = 1 << 20;  // ready filters run first

// Score of running `l` next; < 0 = not ready yet.
int Score(const Literal& l, const std::vector<bool>& bound, const std::vector<uint32_t>& occurrences) {
  switch (l.kind) {
    case Literal::Kind::kMatches:
      return kFilter;
    case Literal::Kind::kNot:
      return NotReady(l, bound, occurrences) ? kFilter : -1;
    case Literal::Kind::kMember:
      return ArgBound(l.args[0], bound) ? kFilter : kFilter / 2;
    case Literal::Kind::kTimeWithin:
      for (const Arg& a : l.args) {
        if (!ArgBound(a, bound)) return -1;
      }
      return kFilter;
    case Literal::Kind::kCompare: {
      const bool a = ArgBound(l.args[0], bound), b = ArgBound(l.args[1], bound);
      if (a && b) return kFilter;
      if (l.op == polar::CmpOp::kEq) return (a || b) ? kFilter - 1 : 0;
      return -1;
    }
    case Literal::Kind::kCall: {
      int score = 1;
      for (const Arg& a : l.args) {
        if (a.kind == Arg::Kind::kSlot && bound[a.slot]) score += 2;
        if (a.kind == Arg::Kind::kConst || a.kind == Arg::Kind::kNow) score += 1;
      }
      return score;
    }
  }
  return -1;
}

}  // namespace

std::vector<Literal> Program::Plan(const std::vector<Literal>& lits, std::vector<bool> bound,
                                   const std::vector<uint32_t>& occurrences) {
  std::vector<Literal> out;
  std::vector<bool> used(lits.size(), false);
  for (size_t step = 0; step < lits.size(); ++step) {
    int best = -1, best_score = -1;
    for (size_t i = 0; i < lits.size(); ++i) {
      if (used[i]) continue;
      int s = Score(lits[i], bound, occurrences);
      if (s > best_score) {
        best = static_cast<int>(i);
        best_score = s;
      }
    }
    if (best < 0) {  // nothing is ready: keep the written order (evaluation reports unbound operands)
      for (size_t i = 0; i < lits.size(); ++i) {
        if (!used[i]) {
          best = static_cast<int>(i);
          break;
        }
      }
    }
    used[best] = true;
    Literal l = lits[best];
    if (l.kind == Literal::Kind::kNot) l.body = Plan(l.body, bound, occurrences);
    MarkBound(l, &bound);
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace mandate::engine
