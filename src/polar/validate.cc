// Validation: every check that turns a parsed policy into errors a user can act on (each with
// file:line:col, the offending name, and a hint), plus warnings for rules nothing uses.
#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "polar/internal.h"
#include "polar/polar.h"
#include "polar/time_window.h"

namespace mandate::polar::internal {
namespace {

std::string BlockLabel(const Block& b) {
  switch (b.kind) {
    case Block::Kind::kActor: return absl::StrCat("actor ", b.type_name);
    case Block::Kind::kResource: return absl::StrCat("resource ", b.type_name);
    case Block::Kind::kGlobal: return "the global block";
  }
  return "";
}

const char* KindName(NameKind k) {
  switch (k) {
    case NameKind::kRole: return "role";
    case NameKind::kPermission: return "permission";
    case NameKind::kRelation: return "relation";
    case NameKind::kNone: break;
  }
  return "name";
}

// Shared by both passes: reporting with locations and the unknown-type check.
class Reporter {
 public:
  Reporter(const TypeEnv& env, const SourceSet& sources, std::vector<Diagnostic>* diags)
      : env_(env), sources_(sources), diags_(diags) {}

  void Error(const Span& span, std::string message, std::string hint = "") {
    diags_->push_back(MakeError(span, std::move(message), std::move(hint)));
  }
  void Warning(const Span& span, std::string message, std::string hint = "") {
    diags_->push_back(MakeWarning(span, std::move(message), std::move(hint)));
  }
  std::string Where(const Span& span) const { return FormatSpan(span, sources_); }

  // Reports `type` if it names no type. `what` says where it was used.
  bool CheckType(std::string_view type, const Span& span, std::string_view what) {
    if (type.empty() || env_.IsKnown(type)) return true;
    std::string hint = DidYouMean(type, env_.TypeNames());
    if (hint.empty()) hint = absl::StrCat("declare it with `resource ", std::string(type), " {}` or `actor ", std::string(type), " {}`");
    Error(span, absl::StrCat("unknown type \"", std::string(type), "\" in ", std::string(what)), std::move(hint));
    return false;
  }
  // Instance types and annotations of a term.
  void CheckTermType(const Term& t, std::string_view what) {
    if (t.kind == Term::Kind::kInstance || t.kind == Term::Kind::kVar || t.kind == Term::Kind::kWildcard) {
      CheckType(t.type_name, t.span, t.kind == Term::Kind::kInstance ? "instance" : what);
    }
  }

  const TypeEnv& env() const { return env_; }

 private:
  const TypeEnv& env_;
  const SourceSet& sources_;
  std::vector<Diagnostic>* diags_;
};

// ---- blocks --------------------------------------------------------------------------------------

void CheckBlockNames(const Block& block, Reporter& r) {
  struct Seen {
    NameKind kind;
    Span span;
  };
  std::map<std::string, Seen> seen;
  auto declare = [&](const std::string& name, NameKind kind, const Span& span) {
    auto [it, inserted] = seen.emplace(name, Seen{kind, span});
    if (inserted) return;
    std::string first = absl::StrCat("first declared as a ", KindName(it->second.kind), " at ", r.Where(it->second.span));
    if (it->second.kind == kind) {
      r.Error(span, absl::StrCat("duplicate ", KindName(kind), " \"", name, "\" in ", BlockLabel(block)), first);
    } else {
      r.Error(span, absl::StrCat("\"", name, "\" is declared as both a ", KindName(it->second.kind), " and a ",
                                 KindName(kind), " in ", BlockLabel(block)),
              first);
    }
  };
  for (const NameDecl& n : block.roles) declare(n.name, NameKind::kRole, n.span);
  for (const NameDecl& n : block.permissions) declare(n.name, NameKind::kPermission, n.span);
  for (const RelationDecl& rel : block.relations) {
    if (block.kind == Block::Kind::kGlobal) {
      r.Error(rel.span, absl::StrCat("the global block cannot declare relations (found \"", rel.name, "\")"),
              "relations belong to actor or resource blocks");
      continue;
    }
    declare(rel.name, NameKind::kRelation, rel.span);
    if (!r.CheckType(rel.type_name, rel.type_span, absl::StrCat("relation \"", rel.name, "\"")) ) continue;
    if (TypeEnv::IsPrimitive(rel.type_name)) {
      r.Error(rel.type_span, absl::StrCat("relation \"", rel.name, "\" must point to an actor or resource type, not ", rel.type_name),
              "store primitive attributes as facts, e.g. `declare is_public(Repo, Boolean);`");
    }
  }
}

// Candidates for suggestions, with a fallback hint when none is close.
std::string NameHint(std::string_view name, const std::vector<std::string>& candidates, std::string fallback) {
  std::string hint = DidYouMean(name, candidates);
  return hint.empty() ? fallback : hint;
}

void CheckShorthand(const Block& block, const Shorthand& sh, Reporter& r) {
  const TypeEnv& env = r.env();
  const bool global = block.kind == Block::Kind::kGlobal;
  const std::string label = BlockLabel(block);

  NameKind head = env.Lookup(&block, sh.head);
  if (head == NameKind::kRelation) {
    r.Error(sh.head_span, absl::StrCat("\"", sh.head, "\" is a relation of ", label, "; the head of a shorthand rule must be a role or permission"));
  } else if (head == NameKind::kNone) {
    r.Error(sh.head_span, absl::StrCat("unknown role or permission \"", sh.head, "\" in ", label),
            NameHint(sh.head, env.NamesIn(&block, true), absl::StrCat("add it to roles = [...] or permissions = [...] in ", label)));
  }

  switch (sh.kind) {
    case Shorthand::Kind::kExpr:
      return;  // the body is checked with the rules it expands into
    case Shorthand::Kind::kImplier: {
      NameKind kind = env.Lookup(&block, sh.implier);
      if (kind == NameKind::kNone || (global && kind == NameKind::kRelation)) {
        r.Error(sh.implier_span,
                absl::StrCat("\"", sh.implier, "\" is not a ", global ? "role or permission" : "role, permission or relation", " of ", label),
                NameHint(sh.implier, env.NamesIn(&block, global), absl::StrCat("declare it in ", label)));
      }
      return;
    }
    case Shorthand::Kind::kOn: {
      if (global) {
        r.Error(sh.relation_span, "`on` cannot be used in the global block", "the global block has no relations");
        return;
      }
      std::string related_type;
      NameKind rel = env.Lookup(&block, sh.relation, &related_type);
      if (rel != NameKind::kRelation) {
        r.Error(sh.relation_span,
                rel == NameKind::kNone ? absl::StrCat("unknown relation \"", sh.relation, "\" in ", label)
                                       : absl::StrCat("\"", sh.relation, "\" is a ", KindName(rel), " of ", label, ", not a relation"),
                NameHint(sh.relation, env.NamesIn(&block, false), absl::StrCat("declare it in relations = { ", sh.relation, ": Type } in ", label)));
        return;
      }
      if (!env.IsKnown(related_type)) return;  // reported at the relation's declaration
      const Block* related = env.FindBlock(related_type);
      if (related == nullptr) {
        r.Error(sh.relation_span, absl::StrCat("relation \"", sh.relation, "\" points to ", related_type,
                                               ", which has no block declaring roles or permissions"));
        return;
      }
      NameKind kind = env.Lookup(related, sh.implier);
      if (kind != NameKind::kRole && kind != NameKind::kPermission) {
        r.Error(sh.implier_span,
                absl::StrCat("\"", sh.implier, "\" is not a role or permission of ", BlockLabel(*related),
                             " (the type of relation \"", sh.relation, "\")"),
                NameHint(sh.implier, env.NamesIn(related, true), absl::StrCat("declare it in ", BlockLabel(*related))));
      }
      return;
    }
    case Shorthand::Kind::kGlobal: {
      const Block* g = env.global();
      NameKind kind = g ? env.Lookup(g, sh.implier) : NameKind::kNone;
      if (kind != NameKind::kRole && kind != NameKind::kPermission) {
        r.Error(sh.implier_span, absl::StrCat("\"", sh.implier, "\" is not a global role"),
                g ? NameHint(sh.implier, env.NamesIn(g, true), "add it to roles = [...] in the global block")
                  : absl::StrCat("declare it: global { roles = [\"", sh.implier, "\"]; }"));
      }
      return;
    }
  }
}

void CheckExtends(const Block& block, Reporter& r) {
  if (block.extends.empty()) return;
  const TypeEnv& env = r.env();
  if (!r.CheckType(block.extends, block.type_span, absl::StrCat("`extends` of ", block.type_name))) return;
  if (TypeEnv::IsPrimitive(block.extends)) {
    r.Error(block.type_span, absl::StrCat(block.type_name, " cannot extend the primitive type ", block.extends));
    return;
  }
  // A cycle: following extends from this block comes back to it.
  std::vector<std::string> path = {block.type_name};
  std::set<std::string> seen = {block.type_name};
  for (const Block* b = env.FindBlock(block.extends); b != nullptr; b = b->extends.empty() ? nullptr : env.FindBlock(b->extends)) {
    path.push_back(b->type_name);
    if (b->type_name == block.type_name) {
      r.Error(block.type_span, absl::StrCat("type ", block.type_name, " extends itself: ", absl::StrJoin(path, " extends ")));
      return;
    }
    if (!seen.insert(b->type_name).second) return;  // a cycle that does not include this block
  }
}

// ---- rules ---------------------------------------------------------------------------------------

void ForEachExpr(const Expr& e, const std::function<void(const Expr&)>& fn) {
  std::vector<const Expr*> stack = {&e};
  while (!stack.empty()) {
    const Expr* cur = stack.back();
    stack.pop_back();
    fn(*cur);
    for (auto it = cur->children.rbegin(); it != cur->children.rend(); ++it) stack.push_back(&*it);
  }
}

bool IsGround(const Term& t) {
  return t.kind != Term::Kind::kVar && t.kind != Term::Kind::kWildcard;
}

// Whether `x = other` binds the variable x when `bound` is bound before it.
bool UnificationBinds(const Term& other, const std::set<std::string>& bound) {
  return IsGround(other) || (other.kind == Term::Kind::kVar && bound.count(other.name));
}

// Adds to *bound the variables `e` binds when *bound is bound before it: calls bind all their
// variables, `x = <ground or bound>` binds x, a conjunction binds what its members bind (to a fixed
// point, since order does not matter), a disjunction what every branch binds; `not`, `matches` and
// ordering comparisons bind nothing.
void AddBindings(const Expr& e, std::set<std::string>* bound) {
  switch (e.kind) {
    case Expr::Kind::kCall:
      if (IsTimeWithin(e)) return;  // computed from its arguments: binds nothing
      for (const Term& a : e.args) {
        if (a.kind == Term::Kind::kVar) bound->insert(a.name);
      }
      return;
    case Expr::Kind::kCompare:
      if (e.op == CmpOp::kEq && e.args.size() == 2) {
        for (int i = 0; i < 2; ++i) {
          if (e.args[i].kind == Term::Kind::kVar && UnificationBinds(e.args[1 - i], *bound)) bound->insert(e.args[i].name);
        }
      }
      return;
    case Expr::Kind::kAnd:
      for (size_t before = 0; before != bound->size();) {
        before = bound->size();
        for (const Expr& c : e.children) AddBindings(c, bound);
      }
      return;
    case Expr::Kind::kOr: {
      std::optional<std::set<std::string>> common;
      for (const Expr& c : e.children) {
        std::set<std::string> b = *bound;
        AddBindings(c, &b);
        if (!common) {
          common = std::move(b);
        } else {
          std::set<std::string> both;
          std::set_intersection(common->begin(), common->end(), b.begin(), b.end(), std::inserter(both, both.end()));
          common = std::move(both);
        }
      }
      if (common) bound->insert(common->begin(), common->end());
      return;
    }
    case Expr::Kind::kNot:
    case Expr::Kind::kMatches:
      return;
  }
}

std::set<std::string> Bindings(const Expr& e, std::set<std::string> bound) {
  AddBindings(e, &bound);
  return bound;
}

// Calls fn for each variable in `e` that is not under a `not` nested inside e.
void ForEachVarOutsideNot(const Expr& e, const std::function<void(const Term&)>& fn) {
  for (const Term& a : e.args) {
    if (a.kind == Term::Kind::kVar) fn(a);
  }
  if (e.kind == Expr::Kind::kNot) return;
  for (const Expr& c : e.children) ForEachVarOutsideNot(c, fn);
}

class RuleChecker {
 public:
  RuleChecker(const Policy& policy, const std::vector<Rule>& rules, Reporter& r)
      : policy_(policy), rules_(rules), r_(r) {
    for (const BuiltinPredicate& b : BuiltinPredicates()) arities_[std::string(b.name)].insert(b.arity);
    for (const Declare& d : policy.declares) arities_[d.name].insert(static_cast<int>(d.types.size()));
    for (const Rule& rule : rules) {
      arities_[rule.name].insert(static_cast<int>(rule.params.size()));
      if (!first_rule_.count(rule.name)) first_rule_[rule.name] = &rule;
    }
  }

  void Run() {
    for (const Rule& rule : rules_) CheckRule(rule);
    CheckNegativeCycles();
    CheckFacts();
    CheckTests();
    WarnUnused();
  }

 private:
  std::string ArityList(const std::set<int>& arities) const {
    std::vector<std::string> parts;
    for (int a : arities) parts.push_back(std::to_string(a));
    return parts.size() == 1 ? parts[0] : absl::StrCat(absl::StrJoin(parts.begin(), parts.end() - 1, ", "), " or ", parts.back());
  }

  // Arity check for a call/assertion/fact; `must_exist` reports predicates nothing defines.
  void CheckArity(const std::string& name, size_t arity, const Span& span, bool must_exist) {
    auto it = arities_.find(name);
    if (it == arities_.end() && must_exist) {
      // A predicate only read from stored facts is known by the calls rule bodies make to it.
      it = called_.find(name);
      if (it == called_.end()) {
        std::vector<std::string> names;
        for (const auto& [n, a] : arities_) names.push_back(n);
        r_.Error(span, absl::StrCat("unknown predicate ", name),
                 NameHint(name, names, absl::StrCat("define a rule ", name, "(...) or `declare ", name, "(...)`")));
        return;
      }
    }
    if (it == arities_.end()) return;
    if (it->second.count(static_cast<int>(arity))) return;
    std::string hint;
    if (auto rule = first_rule_.find(name); rule != first_rule_.end() && rule->second->span.line != 0) {
      hint = absl::StrCat(name, " is defined at ", r_.Where(rule->second->span));
    }
    r_.Error(span, absl::StrCat(name, " called with ", arity, " argument", arity == 1 ? "" : "s", ", but ", name,
                                " takes ", ArityList(it->second)),
             std::move(hint));
  }

  void CheckRule(const Rule& rule) {
    for (const BuiltinPredicate& b : BuiltinPredicates()) {
      if (b.kind == BuiltinPredicate::Kind::kRequest && b.name == rule.name) {
        r_.Error(rule.name_span, absl::StrCat(rule.name, " is built in and cannot be defined by a rule"),
                 "rename the rule");
        break;
      }
    }
    std::set<std::string> params;
    for (const Term& p : rule.params) {
      r_.CheckTermType(p, absl::StrCat("parameter of ", rule.name));
      if (p.kind == Term::Kind::kVar) params.insert(p.name);
    }
    if (!rule.body) return;
    ForEachExpr(*rule.body, [&](const Expr& e) {
      for (const Term& a : e.args) r_.CheckTermType(a, "condition");
      if (e.kind == Expr::Kind::kMatches) r_.CheckType(e.type_name, e.span, "`matches`");
      if (e.kind == Expr::Kind::kCall) {
        CheckArity(e.name, e.args.size(), e.span, false);
        called_[e.name].insert(static_cast<int>(e.args.size()));
        if (!arities_.count(e.name)) WarnUndefined(e);
        if (IsTimeWithin(e)) CheckTimeWithinLiterals(e);
      }
    });
    reported_vars_.clear();
    CheckBindings(*rule.body, params);
  }

  // time_within's literal arguments are checked here, each at its own position, so that a bad zone
  // or day list is a validation error rather than a deny at run time.
  void CheckTimeWithinLiterals(const Expr& call) {
    static constexpr const char* kWhat[] = {"time zone", "days", "from time", "to time"};
    std::optional<int32_t> from, to;
    for (size_t i = 0; i < 4; ++i) {
      const Term& a = call.args[i];
      if (a.kind == Term::Kind::kVar || a.kind == Term::Kind::kWildcard) continue;
      if (a.kind != Term::Kind::kString) {
        r_.Error(a.span, absl::StrCat("time_within: the ", kWhat[i], " must be a String, not ", FormatTerm(a)));
        continue;
      }
      absl::Status s;
      if (i == 0) {
        s = ParseTimeZone(a.str).status();
      } else if (i == 1) {
        s = ParseDays(a.str).status();
      } else {
        absl::StatusOr<int32_t> t = ParseClockTime(a.str, /*allow_end_of_day=*/i == 3);
        s = t.status();
        if (t.ok()) (i == 2 ? from : to) = *t;
      }
      if (!s.ok()) r_.Error(a.span, absl::StrCat("time_within: ", s.message()));
    }
    if (from && to && *from == *to) {
      r_.Error(call.args[3].span, "time_within: the window is empty (from equals to)",
               "for a whole day write \"00:00\" to \"24:00\"");
    }
  }

  // A call to a predicate no rule or declare defines reads stored facts; that is often a typo, but
  // just as often a fact-only predicate (has_group), so only a near miss of the same arity warns.
  void WarnUndefined(const Expr& call) {
    if (!warned_undefined_.insert(call.name).second) return;
    std::vector<std::string> names;
    for (const auto& [n, a] : arities_) {
      if (a.count(static_cast<int>(call.args.size()))) names.push_back(n);
    }
    std::string hint = DidYouMean(call.name, names, /*max_edits=*/1);
    if (hint.empty()) return;
    r_.Warning(call.name_span, absl::StrCat(call.name, " is not defined by any rule or declare; it will only match stored facts"),
               std::move(hint));
  }

  // Reports a variable use once per position (a use inside `not` may break two rules).
  void UnboundVar(const Term& var, std::string message, std::string hint) {
    if (reported_vars_.insert({var.span.file, var.span.line, var.span.col}).second) {
      r_.Error(var.span, std::move(message), std::move(hint));
    }
  }

  // Range restriction: comparisons, `matches` and `not` need their variables bound by a rule parameter
  // or a positive condition (call or unification) of their conjunction. `bound` holds what is bound
  // around `e`.
  void CheckBindings(const Expr& e, const std::set<std::string>& bound) {
    switch (e.kind) {
      case Expr::Kind::kCall:
        if (!IsTimeWithin(e)) return;
        for (const Term& a : e.args) {
          if (a.kind == Term::Kind::kVar && !bound.count(a.name)) {
            UnboundVar(a, absl::StrCat("variable ", a.name, " is not bound in time_within"),
                       absl::StrCat("time_within needs its four arguments; bind ", a.name,
                                    " first, e.g. with a fact such as work_hours(user, tz, days, from, to)"));
          }
        }
        return;
      case Expr::Kind::kCompare:
      case Expr::Kind::kMatches: {
        for (size_t i = 0; i < e.args.size(); ++i) {
          const Term& a = e.args[i];
          if (a.kind != Term::Kind::kVar || bound.count(a.name)) continue;
          if (e.kind == Expr::Kind::kCompare && e.op == CmpOp::kEq && e.args.size() == 2 &&
              UnificationBinds(e.args[1 - i], bound)) {
            continue;
          }
          UnboundVar(a,
                     absl::StrCat("variable ", a.name, " is not bound in ",
                                  e.kind == Expr::Kind::kMatches ? "`matches`" : "the comparison"),
                     absl::StrCat("give ", a.name, " a value first: a rule parameter, a call such as f(", a.name,
                                  "), or ", a.name, " = value"));
        }
        return;
      }
      case Expr::Kind::kAnd: {
        std::set<std::string> b = Bindings(e, bound);
        for (const Expr& c : e.children) CheckBindings(c, b);
        return;
      }
      case Expr::Kind::kOr:
        for (const Expr& c : e.children) CheckBindings(c, Bindings(c, bound));
        return;
      case Expr::Kind::kNot: {
        // Oso allows variables local to a negated conjunction (`not (requires(doc, role) and not
        // has(user, role))`): bound by a positive condition inside it and used there at least twice.
        // A variable used once and bound nowhere is almost always a typo, so it is an error.
        const Expr& inner = e.children[0];
        std::set<std::string> local = Bindings(inner, bound);
        std::map<std::string, int> uses;
        ForEachExpr(inner, [&](const Expr& x) {
          for (const Term& a : x.args) {
            if (a.kind == Term::Kind::kVar) ++uses[a.name];
          }
        });
        std::set<std::string> reported;
        // Nested negations are checked by the recursion below, against what this one binds.
        ForEachVarOutsideNot(inner, [&](const Term& a) {
          if (bound.count(a.name) || (local.count(a.name) && uses[a.name] > 1) || !reported.insert(a.name).second) {
            return;
          }
          UnboundVar(a, absl::StrCat("variable ", a.name, " is not bound before `not`"),
                     absl::StrCat("`not` can only check values already known: bind ", a.name,
                                  " with a rule parameter or a positive condition in the same rule, or write _ for \"any\""));
        });
        CheckBindings(inner, local);
        return;
      }
      default:
        return;
    }
  }

  // Recursion through `not`: a strongly connected component of the predicate graph with a negative edge.
  void CheckNegativeCycles() {
    struct Edge {
      std::string to;
      bool negative;
      const Expr* call;
    };
    std::map<std::string, std::vector<Edge>> graph;
    for (const Rule& rule : rules_) {
      graph[rule.name];
      if (!rule.body) continue;
      std::function<void(const Expr&, bool)> walk = [&](const Expr& e, bool negative) {
        if (e.kind == Expr::Kind::kCall) graph[rule.name].push_back(Edge{e.name, negative, &e});
        for (const Expr& c : e.children) walk(c, negative || e.kind == Expr::Kind::kNot);
      };
      walk(*rule.body, false);
    }
    // Tarjan's algorithm, iterative so that long call chains cannot exhaust the stack.
    std::map<std::string, int> index, low, component;
    std::vector<std::string> stack;
    std::set<std::string> on_stack;
    int counter = 0, components = 0;
    struct Frame {
      std::string node;
      size_t next_edge;
    };
    for (const auto& [root, root_edges] : graph) {
      if (index.count(root)) continue;
      std::vector<Frame> frames = {{root, 0}};
      index[root] = low[root] = counter++;
      stack.push_back(root);
      on_stack.insert(root);
      while (!frames.empty()) {
        Frame& f = frames.back();
        const std::vector<Edge>& edges = graph[f.node];
        if (f.next_edge < edges.size()) {
          const std::string& to = edges[f.next_edge++].to;
          if (!graph.count(to)) continue;  // read from facts only: no outgoing edges
          if (!index.count(to)) {
            index[to] = low[to] = counter++;
            stack.push_back(to);
            on_stack.insert(to);
            frames.push_back({to, 0});  // invalidates f
          } else if (on_stack.count(to)) {
            low[f.node] = std::min(low[f.node], index[to]);
          }
          continue;
        }
        const std::string v = f.node;
        frames.pop_back();
        if (!frames.empty()) low[frames.back().node] = std::min(low[frames.back().node], low[v]);
        if (low[v] == index[v]) {
          while (true) {
            std::string w = stack.back();
            stack.pop_back();
            on_stack.erase(w);
            component[w] = components;
            if (w == v) break;
          }
          ++components;
        }
      }
    }
    std::set<std::string> reported;
    for (const auto& [from, edges] : graph) {
      for (const Edge& edge : edges) {
        if (!edge.negative || !component.count(edge.to) || component[edge.to] != component[from]) continue;
        if (!reported.insert(absl::StrCat(from, "->", edge.to)).second) continue;
        std::vector<std::string> path = PathWithin(graph, component, edge.to, from);
        r_.Error(edge.call->span,
                 absl::StrCat("recursion through `not`: ", from, " calls not ", edge.to,
                              path.size() > 1 ? absl::StrCat(", and ", absl::StrJoin(path, " -> ")) : ""),
                 "a rule cannot depend on its own negation; restructure it so the negated predicate does not depend on it");
      }
    }
  }

  // Shortest path from `from` to `to` inside their component (for the message).
  template <typename Graph>
  static std::vector<std::string> PathWithin(const Graph& graph, std::map<std::string, int>& component,
                                             const std::string& from, const std::string& to) {
    if (from == to) return {from};
    std::map<std::string, std::string> parent;
    std::vector<std::string> queue = {from};
    parent[from] = "";
    for (size_t i = 0; i < queue.size(); ++i) {
      auto it = graph.find(queue[i]);
      if (it == graph.end()) continue;
      for (const auto& edge : it->second) {
        if (parent.count(edge.to) || !component.count(edge.to) || component[edge.to] != component[from]) continue;
        parent[edge.to] = queue[i];
        if (edge.to == to) {
          std::vector<std::string> path = {to};
          for (std::string cur = queue[i]; !cur.empty(); cur = parent[cur]) path.push_back(cur);
          std::reverse(path.begin(), path.end());
          return path;
        }
        queue.push_back(edge.to);
      }
    }
    return {from, to};
  }

  // Facts stated in the policy, test setups and fixtures must fit a built-in or declared signature.
  void CheckFacts() {
    const auto sigs = InferSignatures(policy_, rules_, /*declared_only=*/true);
    auto check = [&](const std::string& predicate, const std::vector<Term>& args, const Span& span, std::string_view text) {
      if (args.size() > kMaxFactArity) {
        r_.Error(span, absl::StrCat("fact ", std::string(text), " has ", args.size(), " arguments; facts have 1 to ",
                                    kMaxFactArity),
                 "split it into several facts");
        return;
      }
      auto it = sigs.find(predicate);
      if (it == sigs.end()) return;
      for (const Signature& s : it->second) {
        if (s.arg_types.size() != args.size()) continue;
        bool ok = true;
        for (size_t i = 0; i < args.size() && ok; ++i) {
          // A declare naming an unknown type is reported there; do not pile a mismatch on top.
          ok = !r_.env().IsKnown(s.arg_types[i]) || r_.env().IsSubtype(TermType(args[i]), s.arg_types[i]);
        }
        if (ok) {
          CheckRoleAndRelationNames(predicate, args, span);
          return;
        }
      }
      std::vector<std::string> shapes;
      for (const Signature& s : it->second) {
        shapes.push_back(absl::StrCat(s.span.line == 0 ? "built-in " : "declare ", predicate, "(",
                                      absl::StrJoin(s.arg_types, ", "), ")",
                                      s.span.line == 0 ? "" : absl::StrCat(" at ", r_.Where(s.span))));
      }
      r_.Error(span, absl::StrCat("fact ", std::string(text), " does not match ", shapes.size() == 1 ? "" : "any of: ",
                                  absl::StrJoin(shapes, "; ")),
               "change the fact's argument types, or add a `declare` for this shape");
    };
    for (const Rule& rule : policy_.rules) {
      // A bodiless rule is a rule, not a stored fact: only the signature applies, not the fact arity limit.
      if (!rule.body && rule.params.size() <= kMaxFactArity) check(rule.name, rule.params, rule.span, FormatRule(rule));
    }
    for (const Test& t : policy_.tests) {
      for (const FactLiteral& f : t.setup_facts) check(f.predicate, f.args, f.span, FormatFact(f));
    }
    for (const Fixture& f : policy_.fixtures) {
      for (const FactLiteral& fact : f.facts) check(fact.predicate, fact.args, fact.span, FormatFact(fact));
    }
  }

  // A has_role/has_relation fact naming a role or relation its type does not declare is most likely a
  // typo. Only a warning: custom rules may give meaning to undeclared roles.
  void CheckRoleAndRelationNames(const std::string& predicate, const std::vector<Term>& args, const Span& span) {
    const TypeEnv& env = r_.env();
    auto warn = [&](const Term& name, std::string_view kind, const Block* block, std::vector<std::string> candidates) {
      r_.Warning(name.span,
                 absl::StrCat(std::string(kind), " \"", name.str, "\" is not declared in ",
                              block ? BlockLabel(*block) : std::string("the global block")),
                 NameHint(name.str, candidates, "nothing in the policy reads this fact"));
    };
    if (predicate == "has_role" && args.size() == 3 && args[1].kind == Term::Kind::kString &&
        args[2].kind == Term::Kind::kInstance) {
      const Block* block = env.FindBlock(args[2].type_name);
      if (block && env.Lookup(block, args[1].str) != NameKind::kRole) warn(args[1], "role", block, env.NamesIn(block, true));
    } else if (predicate == "has_role" && args.size() == 2 && args[1].kind == Term::Kind::kString) {
      const Block* global = env.global();
      if (global && env.Lookup(global, args[1].str) != NameKind::kRole) warn(args[1], "role", nullptr, env.NamesIn(global, true));
    } else if (predicate == "has_relation" && args.size() == 3 && args[0].kind == Term::Kind::kInstance &&
               args[1].kind == Term::Kind::kString) {
      const Block* block = env.FindBlock(args[0].type_name);
      if (block == nullptr) return;
      std::string related;
      if (env.Lookup(block, args[1].str, &related) != NameKind::kRelation) {
        warn(args[1], "relation", block, env.NamesIn(block, false));
      } else if (args[2].kind == Term::Kind::kInstance && !env.IsSubtype(args[2].type_name, related)) {
        r_.Warning(args[2].span,
                   absl::StrCat("relation \"", args[1].str, "\" of ", BlockLabel(*block), " points to ", related,
                                ", not ", args[2].type_name),
                   "shorthand rules using this relation will not match this fact");
      }
    }
  }

  void CheckTests() {
    std::map<std::string, const Fixture*> fixtures;
    std::vector<std::string> fixture_names;
    for (const Fixture& f : policy_.fixtures) {
      auto [it, inserted] = fixtures.emplace(f.name, &f);
      if (!inserted) {
        r_.Error(f.span, absl::StrCat("duplicate fixture \"", f.name, "\""), absl::StrCat("first defined at ", r_.Where(it->second->span)));
      } else {
        fixture_names.push_back(f.name);
      }
      for (const FactLiteral& fact : f.facts) {
        for (const Term& a : fact.args) r_.CheckTermType(a, "fact");
      }
    }
    for (const Test& t : policy_.tests) {
      for (const NameDecl& ref : t.fixtures) {
        if (!fixtures.count(ref.name)) {
          r_.Error(ref.span, absl::StrCat("unknown fixture \"", ref.name, "\" in test \"", t.name, "\""),
                   NameHint(ref.name, fixture_names, absl::StrCat("define it with `test fixture ", ref.name, " { ... }`")));
        }
      }
      for (const FactLiteral& fact : t.setup_facts) {
        for (const Term& a : fact.args) r_.CheckTermType(a, "fact");
      }
      for (const Assertion& a : t.assertions) {
        CheckArity(a.predicate, a.args.size(), a.span, true);
        called_[a.predicate].insert(static_cast<int>(a.args.size()));
        bool has_iff_var = false;
        for (const Term& arg : a.args) {
          r_.CheckTermType(arg, "query argument");
          if (a.iff_var && arg.kind == Term::Kind::kVar && arg.name == *a.iff_var) has_iff_var = true;
        }
        for (const Term& v : a.iff_values) r_.CheckTermType(v, "iff value");
        if (a.iff_var && !has_iff_var) {
          r_.Error(a.span, absl::StrCat("`iff` variable ", *a.iff_var, " does not appear in the query"),
                   absl::StrCat("use it as an argument, e.g. ", *a.iff_var, ": String"));
        }
      }
    }
  }

  void WarnUnused() {
    std::set<std::string> warned, declared;
    for (const Declare& d : policy_.declares) declared.insert(d.name);  // declared facts are data
    for (const Rule& rule : rules_) {
      if (rule.span.line == 0 || !rule.origin.empty()) continue;  // generated rules
      const int arity = static_cast<int>(rule.params.size());
      auto called = called_.find(rule.name);
      if (called != called_.end() && called->second.count(arity)) continue;
      bool root_name = IsRootPredicate(rule.name), root = false;
      for (const BuiltinPredicate& b : BuiltinPredicates()) {
        if (b.name == rule.name && b.arity == arity && b.kind != BuiltinPredicate::Kind::kRequest) root = true;
      }
      if (root || declared.count(rule.name) || !warned.insert(absl::StrCat(rule.name, "/", arity)).second) continue;
      std::string hint = root_name ? absl::StrCat("the engine calls ", rule.name, " with ", ArityList(arities_for_builtin(rule.name)), " arguments")
                                   : "call it from another rule or a test, or remove it";
      r_.Warning(rule.name_span, absl::StrCat("rule ", rule.name, "/", arity, " is never used"), std::move(hint));
    }
  }

  static std::set<int> arities_for_builtin(const std::string& name) {
    std::set<int> out;
    for (const BuiltinPredicate& b : BuiltinPredicates()) {
      if (b.name == name) out.insert(b.arity);
    }
    return out;
  }

  const Policy& policy_;
  const std::vector<Rule>& rules_;
  Reporter& r_;
  std::map<std::string, std::set<int>> arities_;  // rules, declares and built-ins
  std::map<std::string, const Rule*> first_rule_;
  std::map<std::string, std::set<int>> called_;
  std::set<std::string> warned_undefined_;
  std::set<std::tuple<uint32_t, uint32_t, uint32_t>> reported_vars_;
};

}  // namespace

void ValidateDeclarations(const Policy& policy, const TypeEnv& env, const SourceSet& sources,
                          std::vector<Diagnostic>* diags) {
  Reporter r(env, sources, diags);
  std::map<std::string, const Block*> seen;
  const Block* first_global = nullptr;
  for (const Block& block : policy.blocks) {
    if (block.kind == Block::Kind::kGlobal) {
      if (first_global != nullptr) {
        r.Error(block.span, "more than one global block",
                absl::StrCat("merge it into the global block at ", r.Where(first_global->span)));
        continue;
      }
      first_global = &block;
    } else {
      if (TypeEnv::IsPrimitive(block.type_name) || block.type_name == "Actor" || block.type_name == "Resource") {
        r.Error(block.type_span, absl::StrCat("cannot declare a block for the built-in type ", block.type_name),
                "choose another name");
        continue;
      }
      auto [it, inserted] = seen.emplace(block.type_name, &block);
      if (!inserted) {
        r.Error(block.type_span, absl::StrCat("duplicate block for type ", block.type_name),
                absl::StrCat("merge it into the block at ", r.Where(it->second->span)));
        continue;
      }
      CheckExtends(block, r);
    }
    CheckBlockNames(block, r);
    for (const Shorthand& sh : block.shorthands) CheckShorthand(block, sh, r);
  }
  for (const Declare& d : policy.declares) {
    if (d.types.size() > kMaxFactArity) {
      r.Error(d.span, absl::StrCat("declare ", d.name, " has ", d.types.size(), " argument types; facts have 1 to ",
                                   kMaxFactArity),
              "split the fact into several facts");
    }
    for (size_t i = 0; i < d.types.size(); ++i) {
      r.CheckType(d.types[i], i < d.type_spans.size() ? d.type_spans[i] : d.span, absl::StrCat("declare ", d.name));
    }
  }
}

void ValidateRules(const Policy& policy, const std::vector<Rule>& rules, const TypeEnv& env,
                   const SourceSet& sources, std::vector<Diagnostic>* diags) {
  Reporter r(env, sources, diags);
  RuleChecker(policy, rules, r).Run();
}

}  // namespace mandate::polar::internal
