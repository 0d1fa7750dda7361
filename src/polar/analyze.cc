// Analyze: the front end's pipeline from policy text to a DesugaredPolicy (parse, validate, desugar).
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "polar/internal.h"
#include "polar/polar.h"

namespace mandate::polar {

std::optional<DesugaredPolicy> Analyze(const SourceSet& sources, std::vector<Diagnostic>* diags) {
  std::vector<Diagnostic> found;
  Policy policy = Parse(sources, &found);
  // Semantic checks on a policy with syntax errors would mostly report the consequences of the
  // items the parser dropped, so they wait until the syntax is right.
  if (internal::HasErrors(found)) {
    diags->insert(diags->end(), found.begin(), found.end());
    return std::nullopt;
  }

  internal::TypeEnv env(policy);
  internal::ValidateDeclarations(policy, env, sources, &found);
  DesugaredPolicy out;
  out.rules = policy.rules;
  std::vector<Rule> expanded = internal::DesugarBlocks(policy, env, sources);
  out.rules.insert(out.rules.end(), std::make_move_iterator(expanded.begin()), std::make_move_iterator(expanded.end()));
  internal::ValidateRules(policy, out.rules, env, sources, &found);

  std::stable_sort(found.begin(), found.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.span.file, a.span.line, a.span.col) < std::tie(b.span.file, b.span.line, b.span.col);
  });
  diags->insert(diags->end(), found.begin(), found.end());
  if (internal::HasErrors(found)) return std::nullopt;

  out.implicit_allow = std::none_of(policy.rules.begin(), policy.rules.end(), [](const Rule& r) { return r.name == "allow"; });
  out.signatures = internal::InferSignatures(policy, out.rules, /*declared_only=*/false);
  if (out.implicit_allow) out.rules.push_back(internal::ImplicitAllow());
  for (const Block& b : policy.blocks) {
    if (b.kind == Block::Kind::kGlobal) {
      if (env.global() != &b) continue;
      for (const NameDecl& n : b.roles) out.global_roles.push_back(n.name);
      for (const NameDecl& n : b.permissions) out.global_permissions.push_back(n.name);
      continue;
    }
    if (env.FindBlock(b.type_name) != &b) continue;
    TypeInfo info;
    info.name = b.type_name;
    info.is_actor = b.kind == Block::Kind::kActor;
    info.extends = b.extends;
    for (const NameDecl& n : b.roles) info.roles.push_back(n.name);
    for (const NameDecl& n : b.permissions) info.permissions.push_back(n.name);
    for (const RelationDecl& rel : b.relations) info.relations.emplace(rel.name, rel.type_name);
    info.span = b.type_span;
    out.types.emplace(b.type_name, std::move(info));
  }
  out.sources = sources;
  out.tests = std::move(policy.tests);
  out.fixtures = std::move(policy.fixtures);
  for (const Diagnostic& d : found) {
    if (d.severity == Diagnostic::Severity::kWarning) out.warnings.push_back(d);
  }
  return out;
}

}  // namespace mandate::polar
