// Desugaring: actor/resource/global block shorthands become plain rules, exactly as Oso Cloud expands
// them (reference §2.2), and the implicit allow rule; plus the fact signatures the policy accepts.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_join.h"
#include "polar/internal.h"
#include "polar/polar.h"

namespace mandate::polar::internal {
namespace {

Term Var(std::string name, std::string type, const Span& span) {
  Term t;
  t.kind = Term::Kind::kVar;
  t.name = std::move(name);
  t.type_name = std::move(type);
  t.span = span;
  return t;
}

Term Str(std::string value, const Span& span) {
  Term t;
  t.kind = Term::Kind::kString;
  t.str = std::move(value);
  t.span = span;
  return t;
}

Expr Call(std::string name, std::vector<Term> args, const Span& span) {
  Expr e;
  e.kind = Expr::Kind::kCall;
  e.name = std::move(name);
  e.args = std::move(args);
  e.span = span;
  e.name_span = span;
  return e;
}

const char* PredicateFor(NameKind kind) { return kind == NameKind::kRole ? "has_role" : "has_permission"; }

// The user's text of a span, whitespace collapsed, without a trailing ';'.
class SourceText {
 public:
  explicit SourceText(const SourceSet& sources) : sources_(sources), line_starts_(sources.size()) {
    for (size_t f = 0; f < sources.size(); ++f) {
      line_starts_[f].push_back(0);
      const std::string& text = sources[f].text;
      for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n') line_starts_[f].push_back(i + 1);
      }
    }
  }

  std::string Of(const Span& span) const {
    if (span.file >= sources_.size()) return "";
    size_t begin = Offset(span.file, span.line, span.col), end = Offset(span.file, span.end_line, span.end_col);
    if (end <= begin) return "";
    std::string_view raw = std::string_view(sources_[span.file].text).substr(begin, end - begin);
    std::string text = absl::StrJoin(absl::StrSplit(absl::string_view(raw.data(), raw.size()), absl::ByAnyChar(" \t\r\n"), absl::SkipEmpty()), " ");
    if (!text.empty() && text.back() == ';') text.pop_back();
    return text;
  }

 private:
  size_t Offset(uint32_t file, uint32_t line, uint32_t col) const {
    const std::vector<size_t>& starts = line_starts_[file];
    if (line == 0 || line > starts.size()) return sources_[file].text.size();
    return std::min(starts[line - 1] + (col > 0 ? col - 1 : 0), sources_[file].text.size());
  }

  const SourceSet& sources_;
  std::vector<std::vector<size_t>> line_starts_;
};

// The body for a shorthand, or nullopt if it does not resolve (validation reports why).
std::optional<Expr> ShorthandBody(const Block& block, const Shorthand& sh, const TypeEnv& env) {
  const bool global = block.kind == Block::Kind::kGlobal;
  switch (sh.kind) {
    case Shorthand::Kind::kExpr:
      return sh.body;
    case Shorthand::Kind::kImplier: {
      NameKind kind = env.Lookup(&block, sh.implier);
      if (kind == NameKind::kNone || (global && kind == NameKind::kRelation)) return std::nullopt;
      if (global) return Call(PredicateFor(kind), {Var("actor", "", sh.span), Str(sh.implier, sh.implier_span)}, sh.implier_span);
      if (kind == NameKind::kRelation) {
        return Call("has_relation", {Var("resource", "", sh.span), Str(sh.implier, sh.implier_span), Var("actor", "", sh.span)},
                    sh.implier_span);
      }
      return Call(PredicateFor(kind), {Var("actor", "", sh.span), Str(sh.implier, sh.implier_span), Var("resource", "", sh.span)},
                  sh.implier_span);
    }
    case Shorthand::Kind::kOn: {
      std::string related_type;
      if (global || env.Lookup(&block, sh.relation, &related_type) != NameKind::kRelation) return std::nullopt;
      const Block* related = env.FindBlock(related_type);
      NameKind kind = related ? env.Lookup(related, sh.implier) : NameKind::kNone;
      if (kind != NameKind::kRole && kind != NameKind::kPermission) return std::nullopt;
      // has_relation(resource, "rel", related) and related matches U and has_<kind>(actor, "R", related)
      Expr body;
      body.kind = Expr::Kind::kAnd;
      body.span = sh.span;
      body.children.push_back(Call(
          "has_relation", {Var("resource", "", sh.span), Str(sh.relation, sh.relation_span), Var("related", "", sh.relation_span)},
          sh.relation_span));
      Expr matches;
      matches.kind = Expr::Kind::kMatches;
      matches.args.push_back(Var("related", "", sh.relation_span));
      matches.type_name = related_type;
      matches.span = sh.relation_span;
      body.children.push_back(std::move(matches));
      body.children.push_back(Call(
          PredicateFor(kind), {Var("actor", "", sh.span), Str(sh.implier, sh.implier_span), Var("related", "", sh.relation_span)},
          sh.implier_span));
      return body;
    }
    case Shorthand::Kind::kGlobal: {
      NameKind kind = env.global() ? env.Lookup(env.global(), sh.implier) : NameKind::kNone;
      if (kind != NameKind::kRole && kind != NameKind::kPermission) return std::nullopt;
      return Call(PredicateFor(kind), {Var("actor", "", sh.span), Str(sh.implier, sh.implier_span)}, sh.implier_span);
    }
  }
  return std::nullopt;
}

std::string BlockLabel(const Block& block) {
  switch (block.kind) {
    case Block::Kind::kActor: return absl::StrCat("actor ", block.type_name);
    case Block::Kind::kResource: return absl::StrCat("resource ", block.type_name);
    case Block::Kind::kGlobal: return "global";
  }
  return "";
}

}  // namespace

std::vector<Rule> DesugarBlocks(const Policy& policy, const TypeEnv& env, const SourceSet& sources) {
  SourceText text(sources);
  std::vector<Rule> rules;
  for (const Block& block : policy.blocks) {
    const bool global = block.kind == Block::Kind::kGlobal;
    // Only the block that defines a type (the first one) or the first global block is expanded;
    // duplicates are errors.
    if (global ? env.global() != &block : env.FindBlock(block.type_name) != &block) continue;
    for (const Shorthand& sh : block.shorthands) {
      NameKind head = env.Lookup(&block, sh.head);
      if (head != NameKind::kRole && head != NameKind::kPermission) continue;
      std::optional<Expr> body = ShorthandBody(block, sh, env);
      if (!body) continue;
      Rule rule;
      rule.name = PredicateFor(head);
      rule.params.push_back(Var("actor", "Actor", sh.span));
      rule.params.push_back(Str(sh.head, sh.head_span));
      if (!global) rule.params.push_back(Var("resource", block.type_name, sh.span));
      rule.body = std::move(body);
      rule.span = sh.span;
      rule.name_span = sh.head_span;
      rule.origin = absl::StrCat(BlockLabel(block), ": ", text.Of(sh.span));
      rules.push_back(std::move(rule));
    }
  }
  return rules;
}

Rule ImplicitAllow() {
  Span none;
  Rule rule;
  rule.name = "allow";
  rule.params = {Var("actor", "Actor", none), Var("action", "String", none), Var("resource", "Resource", none)};
  rule.body = Call("has_permission", {Var("actor", "", none), Var("action", "", none), Var("resource", "", none)}, none);
  rule.origin = "implicit: allow(actor, action, resource) if has_permission(actor, action, resource)";
  return rule;
}

std::map<std::string, std::vector<Signature>> InferSignatures(const Policy& policy, const std::vector<Rule>& rules,
                                                               bool declared_only) {
  std::map<std::string, std::vector<Signature>> sigs;
  auto add = [&sigs](const std::string& predicate, std::vector<std::string> types, const Span& span) {
    std::vector<Signature>& list = sigs[predicate];
    for (const Signature& s : list) {
      if (s.arg_types == types) return;
    }
    list.push_back(Signature{predicate, std::move(types), span});
  };
  const Span builtin;
  add("has_role", {"Actor", "String", "Resource"}, builtin);
  for (const Block& b : policy.blocks) {
    if (b.kind == Block::Kind::kGlobal && !b.roles.empty()) {
      add("has_role", {"Actor", "String"}, builtin);
      break;
    }
  }
  add("has_relation", {"Resource", "String", "Resource"}, builtin);
  // Facts each request brings (the server adds them as context facts): context(key, value) from the
  // request's context object, acts_for(actor, principal) per link of the delegation chain.
  add("context", {"String", ""}, builtin);
  add("acts_for", {"Actor", "Actor"}, builtin);
  for (const Declare& d : policy.declares) add(d.name, d.types, d.span);
  if (declared_only) return sigs;

  std::set<std::string> defined;  // predicates some rule with a body defines
  for (const Rule& r : rules) {
    if (r.body) defined.insert(r.name);
  }
  std::set<std::string> fixed;  // predicates whose signatures are built-in or declared
  for (const auto& [name, list] : sigs) fixed.insert(name);
  ForEachTypedCall(rules, [&](const Expr& call, std::vector<std::string> types) {
    if (!defined.count(call.name) && !fixed.count(call.name) && call.name != kTimeWithin) {
      add(call.name, std::move(types), call.span);
    }
  });
  return sigs;
}

void ForEachTypedCall(const std::vector<Rule>& rules,
                      const std::function<void(const Expr&, std::vector<std::string>)>& fn) {
  for (const Rule& r : rules) {
    if (!r.body) continue;
    // Variable types known in this rule: parameter annotations and `matches`.
    std::map<std::string, std::string> var_types;
    for (const Term& p : r.params) {
      if (p.kind == Term::Kind::kVar && !p.type_name.empty()) var_types[p.name] = p.type_name;
    }
    std::vector<const Expr*> stack = {&*r.body}, calls;
    while (!stack.empty()) {
      const Expr* e = stack.back();
      stack.pop_back();
      if (e->kind == Expr::Kind::kMatches && !e->args.empty() && e->args[0].kind == Term::Kind::kVar) {
        var_types.emplace(e->args[0].name, e->type_name);
      } else if (e->kind == Expr::Kind::kCall) {
        calls.push_back(e);
      }
      for (const Expr& c : e->children) stack.push_back(&c);
    }
    for (const Expr* call : calls) {
      std::vector<std::string> types;
      for (const Term& a : call->args) {
        auto it = a.kind == Term::Kind::kVar ? var_types.find(a.name) : var_types.end();
        types.push_back(it != var_types.end() ? it->second : TermType(a));
      }
      fn(*call, std::move(types));
    }
  }
}

}  // namespace mandate::polar::internal

namespace mandate::polar {

std::vector<NameUse> RoleAndRelationUses(const DesugaredPolicy& policy) {
  std::vector<NameUse> uses;
  internal::ForEachTypedCall(policy.rules, [&](const Expr& call, std::vector<std::string> types) {
    if (call.name != "has_role" && call.name != "has_relation") return;
    if (call.args.size() < 2) return;
    NameUse u{call.name, "", std::move(types)};
    const Term& name = call.args[1];
    if (name.kind == Term::Kind::kString) {
      u.name = name.str;
    } else if (name.kind != Term::Kind::kVar && name.kind != Term::Kind::kWildcard) {
      return;  // a non-string literal: matches no stored fact's name
    }
    for (const NameUse& seen : uses) {
      if (seen.predicate == u.predicate && seen.name == u.name && seen.arg_types == u.arg_types) return;
    }
    uses.push_back(std::move(u));
  });
  return uses;
}

}  // namespace mandate::polar
