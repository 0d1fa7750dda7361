// Policy, Snapshot and Database: the public embedding API over the compiled program, the evaluator
// and fact sets.
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <mutex>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/api_impl.h"
#include "engine/explain.h"
#include "polar/polar.h"

namespace mandate {

using engine::Evaluator;
using engine::Program;
using engine::Unbound;
using facts::SymbolId;
using facts::SymbolTable;
using facts::Value;

// ---- Small public helpers ----------------------------------------------------------------------

absl::StatusOr<TypedValue> ParseTypedValue(std::string_view text) {
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) return TypedValue{"String", std::string(text)};
  TypedValue v{std::string(text.substr(0, colon)), std::string(text.substr(colon + 1))};
  if (v.type.empty()) return absl::InvalidArgumentError(absl::StrCat("\"", std::string(text), "\": missing type before ':'"));
  return v;
}

std::string ToString(const TypedValue& v) { return absl::StrCat(v.type, ":", v.id); }

std::string ToString(const Fact& f) {
  std::vector<std::string> args;
  for (const TypedValue& a : f.args) {
    polar::Term t;
    int64_t i;
    if (a.type == "String") {
      t.kind = polar::Term::Kind::kString;
      t.str = a.id;
    } else if (a.type == "Integer" && absl::SimpleAtoi(a.id, &i)) {
      t.kind = polar::Term::Kind::kInteger;
      t.integer = i;
    } else if (a.type == "Boolean" && (a.id == "true" || a.id == "false")) {
      t.kind = polar::Term::Kind::kBoolean;
      t.boolean = a.id == "true";
    } else {
      t.kind = polar::Term::Kind::kInstance;
      t.type_name = a.type;
      t.str = a.id;
    }
    args.push_back(polar::FormatTerm(t));
  }
  return absl::StrCat(f.predicate, "(", absl::StrJoin(args, ", "), ")");
}

std::string Diagnostic::ToString() const {
  std::string where = file;
  if (line > 0) absl::StrAppend(&where, ":", line, ":", column);
  std::string out = absl::StrCat(where, ": ", is_error ? "error" : "warning", ": ", message);
  if (!hint.empty()) absl::StrAppend(&out, " (hint: ", hint, ")");
  return out;
}

namespace {
// The word printed before a node's text: facts say where they come from; rules, `not`, `matches`,
// comparisons and built-ins read as written ("not is_banned(...)", "x matches Org").
std::string_view KindLabel(const std::string& kind) {
  if (kind == "fact") return "fact ";
  if (kind == "context_fact") return "context fact ";
  return "";
}

void AppendNode(const ExplainNode& n, int indent, std::string* out) {
  std::string pad(indent * 2, ' ');
  absl::StrAppend(out, pad, n.satisfied ? "+ " : "- ", std::string(KindLabel(n.kind)), n.text);
  if (!n.location.empty()) absl::StrAppend(out, "  [", n.location, "]");
  out->push_back('\n');
  if (!n.failed.empty()) absl::StrAppend(out, pad, "    failed: ", n.failed, "\n");
  for (const ExplainNode& c : n.children) AppendNode(c, indent + 1, out);
}
}  // namespace

std::string Explanation::ToText() const {
  std::string out;
  for (const ExplainNode& n : roots) AppendNode(n, 0, &out);
  return out;
}

int TestReport::passed() const {
  int n = 0;
  for (const TestResult& t : tests) n += t.passed;
  return n;
}

int TestReport::failed() const {
  int n = 0;
  for (const TestResult& t : tests) n += t.total - t.passed;
  return n;
}

// ---- Policy ------------------------------------------------------------------------------------

Policy::Policy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Policy::~Policy() = default;

namespace {

std::string Sha256Hex(const std::vector<SourceFile>& sources) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
  for (size_t i = 0; i < sources.size(); ++i) {
    if (i > 0) EVP_DigestUpdate(ctx, "\0", 1);  // file boundary
    EVP_DigestUpdate(ctx, sources[i].text.data(), sources[i].text.size());
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx, digest, &len);
  EVP_MD_CTX_free(ctx);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

Diagnostic ToPublic(const polar::Diagnostic& d, const polar::SourceSet& sources) {
  Diagnostic out;
  out.is_error = d.severity == polar::Diagnostic::Severity::kError;
  out.file = d.span.file < sources.size() ? sources[d.span.file].filename : "<builtin>";
  out.line = static_cast<int>(d.span.line);
  out.column = static_cast<int>(d.span.col);
  out.message = d.message;
  out.hint = d.hint;
  return out;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Policy>> Policy::Compile(std::vector<SourceFile> sources,
                                                             std::vector<Diagnostic>* diagnostics) {
  polar::SourceSet set;
  for (const SourceFile& s : sources) set.push_back({s.filename, s.text});
  std::vector<polar::Diagnostic> diags;
  std::optional<polar::DesugaredPolicy> desugared = polar::Analyze(set, &diags);
  absl::StatusOr<std::shared_ptr<const Program>> program =
      desugared ? Program::Compile(std::move(*desugared), &diags)
                : absl::StatusOr<std::shared_ptr<const Program>>(absl::InvalidArgumentError(""));
  std::vector<std::string> errors;
  for (const polar::Diagnostic& d : diags) {
    if (diagnostics != nullptr) diagnostics->push_back(ToPublic(d, set));
    if (d.severity == polar::Diagnostic::Severity::kError) errors.push_back(polar::FormatDiagnostic(d, set));
  }
  if (!program.ok()) {
    if (errors.empty()) errors.push_back(std::string(program.status().message()));
    return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
  }
  auto impl = std::make_unique<Impl>();
  impl->hash = Sha256Hex(sources);
  impl->sources = std::move(sources);
  impl->program = *std::move(program);
  impl->name_uses = polar::RoleAndRelationUses(impl->program->policy());
  return std::make_shared<const Policy>(std::move(impl));
}

const std::vector<SourceFile>& Policy::sources() const { return impl_->sources; }
const std::string& Policy::hash() const { return impl_->hash; }

std::map<std::string, TypeMetadata> Policy::Metadata() const {
  const polar::DesugaredPolicy& p = impl_->program->policy();
  std::map<std::string, TypeMetadata> out;
  for (const auto& [name, info] : p.types) {
    TypeMetadata& m = out[name];
    m.roles = info.roles;
    m.permissions = info.permissions;
    m.relations = info.relations;
  }
  if (!p.global_roles.empty() || !p.global_permissions.empty()) {
    out["global"] = TypeMetadata{p.global_roles, p.global_permissions, {}};
  }
  return out;
}

namespace {

// Whether a value of type `actual` may stand where a fact signature expects `expected` ("" = any).
bool TypeAccepts(const Program& prog, const std::string& expected, const std::string& actual) {
  if (expected.empty() || expected == actual) return true;
  std::optional<facts::SymbolId> t = SymbolTable::Global().Find(actual);
  std::optional<facts::SymbolId> e = SymbolTable::Global().Find(expected);
  if (!e) return false;
  if (!t) return *e == facts::kResourceType;  // a type no one has named yet is some resource type
  return prog.IsSubtype(*t, *e);
}

bool SignatureAccepts(const Program& prog, const std::vector<std::string>& types, const Fact& fact) {
  if (types.size() != fact.args.size()) return false;
  for (size_t i = 0; i < types.size(); ++i) {
    if (!TypeAccepts(prog, types[i], fact.args[i].type)) return false;
  }
  return true;
}

// What `type` (or a supertype, through extends) declares under `name`: the role list entry or the
// relation's type. Returns the kind found: 'r' role, 'p' permission, 'l' relation, 0 none.
char LookupName(const polar::DesugaredPolicy& p, const std::string& type, const std::string& name,
                std::string* related) {
  auto it = p.types.find(type);
  for (size_t steps = 0; it != p.types.end() && steps <= p.types.size(); ++steps) {
    const polar::TypeInfo& info = it->second;
    if (std::find(info.roles.begin(), info.roles.end(), name) != info.roles.end()) return 'r';
    if (std::find(info.permissions.begin(), info.permissions.end(), name) != info.permissions.end()) return 'p';
    if (auto rel = info.relations.find(name); rel != info.relations.end()) {
      if (related != nullptr) *related = rel->second;
      return 'l';
    }
    it = p.types.find(info.extends);
  }
  return 0;
}

// Every name of `kind` ('r' roles, 'l' relations) that `type` declares, for messages.
std::string NamesOf(const polar::DesugaredPolicy& p, const std::string& type, char kind) {
  std::vector<std::string> names;
  auto it = p.types.find(type);
  for (size_t steps = 0; it != p.types.end() && steps <= p.types.size(); ++steps) {
    if (kind == 'r') names.insert(names.end(), it->second.roles.begin(), it->second.roles.end());
    if (kind == 'l') {
      for (const auto& [n, t] : it->second.relations) names.push_back(absl::StrCat(n, ": ", t));
    }
    it = p.types.find(it->second.extends);
  }
  return names.empty() ? "none" : absl::StrJoin(names, ", ");
}

// has_role and has_relation facts name a role or relation: it must be one the types declare (with a
// relation's target of the declared type), one some rule reads, or fit a `declare` of the policy.
// Anything else could never be used, and is almost always a mistake (a typo, or arguments swapped).
absl::Status CheckRoleOrRelation(const Policy::Impl& policy, const Fact& fact) {
  const Program& prog = *policy.program;
  const polar::DesugaredPolicy& p = prog.policy();
  const bool role = fact.predicate == "has_role";
  if (!role && fact.predicate != "has_relation") return absl::OkStatus();
  if (fact.args.size() < 2 || fact.args[1].type != "String") return absl::OkStatus();  // the signature said no
  const std::string& name = fact.args[1].id;
  const bool global = role && fact.args.size() == 2;
  const std::string& owner = global ? std::string() : fact.args[role ? 2 : 0].type;
  auto fail = [&](size_t arg, std::string what) {
    return absl::InvalidArgumentError(
        absl::StrCat("fact ", ToString(fact), ": ", fact.predicate, " argument ", arg, ": ", what));
  };
  if (global) {
    if (std::find(p.global_roles.begin(), p.global_roles.end(), name) != p.global_roles.end()) return absl::OkStatus();
  } else {
    std::string related;
    const char kind = LookupName(p, owner, name, &related);
    if (role && kind == 'r') return absl::OkStatus();
    if (!role && kind == 'l') {
      if (TypeAccepts(prog, related, fact.args[2].type)) return absl::OkStatus();
      return fail(3, absl::StrCat("it has type ", fact.args[2].type, ", but relation \"", name, "\" of ", owner,
                                  " points to ", related));
    }
  }
  for (const polar::NameUse& u : policy.name_uses) {
    if (u.predicate == fact.predicate && (u.name.empty() || u.name == name) &&
        SignatureAccepts(prog, u.arg_types, fact)) {
      return absl::OkStatus();
    }
  }
  auto sigs = p.signatures.find(fact.predicate);
  for (const polar::Signature& s : sigs != p.signatures.end() ? sigs->second : std::vector<polar::Signature>{}) {
    if (s.span.line != 0 && SignatureAccepts(prog, s.arg_types, fact)) return absl::OkStatus();  // a declare
  }
  if (global) {
    return fail(2, absl::StrCat("\"", name, "\" is not a global role (global roles: ",
                                p.global_roles.empty() ? "none" : absl::StrJoin(p.global_roles, ", "), ")"));
  }
  if (role) {
    return fail(2, absl::StrCat("\"", name, "\" is not a role of ", owner, " (its roles: ", NamesOf(p, owner, 'r'), ")"));
  }
  return fail(2, absl::StrCat("\"", name, "\" is not a relation of ", owner, " (its relations: ", NamesOf(p, owner, 'l'),
                              ")"));
}

}  // namespace

absl::Status Policy::CheckFact(const Fact& fact) const {
  const Program& prog = *impl_->program;
  const auto& signatures = prog.policy().signatures;
  if (fact.args.empty() || fact.args.size() > polar::kMaxFactArity) {
    return absl::InvalidArgumentError(absl::StrCat("fact ", ToString(fact), " has ", fact.args.size(),
                                                   " arguments; facts have 1 to ", polar::kMaxFactArity));
  }
  auto it = signatures.find(fact.predicate);
  if (it == signatures.end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("fact ", ToString(fact), ": unknown predicate \"", fact.predicate,
                     "\" (the policy neither uses nor declares it)"));
  }
  std::vector<const polar::Signature*> same_arity;
  for (const polar::Signature& s : it->second) {
    if (s.arg_types.size() == fact.args.size()) same_arity.push_back(&s);
  }
  auto shape = [&](const polar::Signature& s) {
    std::vector<std::string> types;
    for (const std::string& t : s.arg_types) types.push_back(t.empty() ? "any" : t);
    return absl::StrCat(fact.predicate, "(", absl::StrJoin(types, ", "), ")");
  };
  if (same_arity.empty()) {
    std::vector<std::string> arities;
    for (const polar::Signature& s : it->second) arities.push_back(std::to_string(s.arg_types.size()));
    return absl::InvalidArgumentError(absl::StrCat("fact ", ToString(fact), " has ", fact.args.size(),
                                                   " arguments, but ", fact.predicate, " takes ",
                                                   absl::StrJoin(arities, " or ")));
  }
  // Value syntax (Integer/Boolean ids) first: a bad id is wrong whatever the signature.
  for (size_t i = 0; i < fact.args.size(); ++i) {
    const std::string& type = fact.args[i].type;
    if (!type.empty() && type != "Integer" && type != "Boolean") continue;  // strings and instances cannot fail
    engine::RequestSymbols scratch;
    absl::StatusOr<Value> v = engine::ToValue(fact.args[i], scratch);
    if (!v.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("fact ", ToString(fact), ": argument ", i + 1, ": ", v.status().message()));
    }
  }
  size_t best_arg = 0;
  for (const polar::Signature* s : same_arity) {
    size_t i = 0;
    while (i < fact.args.size() && TypeAccepts(prog, s->arg_types[i], fact.args[i].type)) ++i;
    if (i == fact.args.size()) return CheckRoleOrRelation(*impl_, fact);
    best_arg = std::max(best_arg, i);
  }
  std::vector<std::string> shapes;
  for (const polar::Signature* s : same_arity) shapes.push_back(shape(*s));
  return absl::InvalidArgumentError(absl::StrCat(
      "fact ", ToString(fact), ": argument ", best_arg + 1, " has type ", fact.args[best_arg].type, ", but ",
      shapes.size() == 1 ? "the policy expects " : "the policy expects one of ", absl::StrJoin(shapes, ", ")));
}

// ---- Requests ----------------------------------------------------------------------------------

namespace engine {

absl::Status RequestScope::Init(const Snapshot::Impl& snap, const QueryOptions& options) {
  const Program& program = snap.program();
  ctx.symbols = &symbols;
  ctx.limits = options.limits;
  if (program.uses_now() || snap.facts.has_expiry()) {
    ctx.now = options.now_unix ? *options.now_unix : absl::ToUnixSeconds(absl::Now());
  }
  if (const PreparedContext* p = options.prepared_context.get();
      p != nullptr && p->policy->impl().program.get() == &program &&
      (!p->symbols.has_local() || SymbolTable::Global().size() == p->global_symbols)) {
    if (!p->status.ok()) return p->status;
    symbols.SetBase(&p->symbols);
    ctx.shared = &p->ctx;
    return absl::OkStatus();
  }
  return options.context_facts.empty() ? absl::OkStatus() : ctx.AddContextFacts(program, options.context_facts);
}

absl::StatusOr<std::pair<facts::PredicateKey, std::vector<Value>>> ToStoredFact(const Fact& fact) {
  std::pair<facts::PredicateKey, std::vector<Value>> out;
  out.first = {SymbolTable::Global().Intern(fact.predicate), static_cast<uint32_t>(fact.args.size())};
  for (const TypedValue& a : fact.args) {
    absl::StatusOr<Value> v = ToInternedValue(a);
    if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat("fact ", ToString(fact), ": ", v.status().message()));
    out.second.push_back(*v);
  }
  return out;
}

}  // namespace engine

// ---- Snapshot ----------------------------------------------------------------------------------

Snapshot::Snapshot(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
Snapshot::~Snapshot() = default;

std::shared_ptr<const Snapshot> Snapshot::Impl::Make(std::shared_ptr<const Policy> policy, facts::FactSet facts) {
  auto impl = std::make_shared<Impl>();
  impl->policy = std::move(policy);
  impl->facts = std::move(facts);
  const Program& prog = impl->program();
  impl->views.reserve(prog.num_predicates());
  for (uint32_t p = 0; p < prog.num_predicates(); ++p) impl->views.push_back(impl->facts.Relation(prog.pred(p).key));
  return std::make_shared<const Snapshot>(std::move(impl));
}

uint64_t Snapshot::revision() const { return impl_->facts.revision(); }

std::shared_ptr<const PreparedContext> Snapshot::PrepareContext(const std::vector<Fact>& context_facts) const {
  auto p = std::make_shared<PreparedContext>();
  p->policy = impl_->policy;
  // Read before converting: a string interned meanwhile makes queries convert again.
  p->global_symbols = SymbolTable::Global().size();
  p->ctx.symbols = &p->symbols;
  p->status = p->ctx.AddContextFacts(impl_->program(), context_facts);
  p->ctx.symbols = nullptr;
  return p;
}

const std::shared_ptr<const Policy>& Snapshot::policy() const { return impl_->policy; }
size_t Snapshot::fact_count() const { return impl_->facts.size(); }

namespace {

Decision Deny(std::string reason) {
  Decision d;
  d.reasons.push_back(std::move(reason));
  return d;
}

absl::Status ResultStatus(const Evaluator::Result& r) {
  if (r.ok()) return absl::OkStatus();
  if (r.code == Evaluator::Result::Code::kError) return absl::InternalError(r.message);
  return absl::ResourceExhaustedError(r.message);
}

// Whether an answer value fits a query variable typed `exact` (see ExactType): a value of exactly
// that type, or a wildcard whose values include those of that type. A wildcard of a strict subtype
// (any Document, asked for Items) holds for no Item.
bool FitsExact(const Program& prog, SymbolId exact, const Value& v) {
  if (exact == facts::kNoSymbol) return true;
  return v.valid() ? v.type == exact : prog.IsSubtype(exact, engine::ConstraintOf(v));
}

// Query variables typed with a concrete type range over that type only, not its subtypes: a list of
// Items is ids of Items, as in Oso (an id alone could not say that it is a Document's). The abstract
// Actor and Resource stand for all their subtypes. kNoSymbol = no restriction.
SymbolId ExactType(SymbolId type) {
  return type == facts::kActorType || type == facts::kResourceType ? facts::kNoSymbol : type;
}

// Collects the distinct values at one answer position (for list and actions) that fit `exact`.
class PositionSink : public Evaluator::CallSink {
 public:
  PositionSink(const Program& prog, size_t pos, SymbolId exact) : prog_(prog), pos_(pos), exact_(exact) {}
  bool Answer(const Value* args) override {
    const Value& v = args[pos_];
    if (!FitsExact(prog_, exact_, v)) return true;
    if (v.valid()) {
      values.insert(v);
    } else {
      wildcard = true;
    }
    return true;
  }
  void Restart() override {
    values.clear();
    wildcard = false;
  }
  absl::flat_hash_set<Value> values;
  bool wildcard = false;

 private:
  const Program& prog_;
  size_t pos_;
  SymbolId exact_;
};

}  // namespace

Decision Snapshot::Check(const TypedValue& actor, std::string_view action, const TypedValue& resource,
                         const QueryOptions& options) const {
  const Program& prog = impl_->program();
  if (!prog.allow_pred()) return Deny("the policy has no allow rule");
  engine::RequestScope scope;
  if (absl::Status s = scope.Init(*impl_, options); !s.ok()) return Deny(std::string(s.message()));
  Value in[3];
  absl::StatusOr<Value> a = engine::ToValue(actor, scope.symbols);
  if (!a.ok()) return Deny(absl::StrCat("actor: ", a.status().message()));
  absl::StatusOr<Value> r = engine::ToValue(resource, scope.symbols);
  if (!r.ok()) return Deny(absl::StrCat("resource: ", r.status().message()));
  in[0] = *a;
  in[1] = Value::String(scope.symbols.Resolve(action));
  in[2] = *r;
  bool holds = false;
  Decision d;
  {
    Evaluator ev(prog, impl_->views.data(), scope.ctx);
    Evaluator::Result res = ev.Holds(*prog.allow_pred(), in, &holds);
    if (!res.ok()) {
      d.reasons.push_back(std::move(res.message));
      holds = false;
    }
  }
  d.allowed = holds;
  if (options.explain) {
    engine::Explainer ex(prog, impl_->views.data(), scope.ctx);
    Explanation e;
    if (holds) {
      if (std::optional<ExplainNode> proof = ex.Prove(*prog.allow_pred(), in)) e.roots.push_back(std::move(*proof));
    } else {
      e.roots = ex.WhyNot(*prog.allow_pred(), in, 3);
      if (e.roots.empty()) {
        ExplainNode n;
        n.kind = "rule";
        n.text = ex.CallText(*prog.allow_pred(), in);
        n.failed = "no allow rule applies to these argument types";
        e.roots.push_back(std::move(n));
      }
    }
    d.explanation = std::move(e);
  }
  return d;
}

namespace {

// Shared by List and Actions: the distinct values at position `pos` of allow(in...) answers.
absl::StatusOr<std::vector<std::string>> AllowPosition(const Snapshot::Impl& snap, engine::RequestScope& scope,
                                                      const Value* in, size_t pos, bool* wildcard) {
  const Program& prog = snap.program();
  if (wildcard != nullptr) *wildcard = false;
  if (!prog.allow_pred()) return std::vector<std::string>{};
  Evaluator ev(prog, snap.views.data(), scope.ctx);
  PositionSink sink(prog, pos, in[pos].valid() ? facts::kNoSymbol : ExactType(engine::ConstraintOf(in[pos])));
  if (absl::Status s = ResultStatus(ev.SolveCall(*prog.allow_pred(), in, sink)); !s.ok()) return s;
  std::vector<std::string> out;
  for (const Value& v : sink.values) out.push_back(engine::ToTypedValue(v, &scope.symbols).id);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  if (wildcard != nullptr) *wildcard = sink.wildcard;
  return out;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> Snapshot::List(const TypedValue& actor, std::string_view action,
                                                        std::string_view resource_type, const QueryOptions& options,
                                                        bool* wildcard) const {
  engine::RequestScope scope;
  if (absl::Status s = scope.Init(*impl_, options); !s.ok()) return s;
  absl::StatusOr<Value> a = engine::ToValue(actor, scope.symbols);
  if (!a.ok()) return absl::InvalidArgumentError(absl::StrCat("actor: ", a.status().message()));
  if (resource_type.empty()) return absl::InvalidArgumentError("resource type is empty");
  Value in[3] = {*a, Value::String(scope.symbols.Resolve(action)), Unbound(scope.symbols.Resolve(resource_type))};
  return AllowPosition(*impl_, scope, in, 2, wildcard);
}

absl::StatusOr<std::vector<std::string>> Snapshot::Actions(const TypedValue& actor, const TypedValue& resource,
                                                           const QueryOptions& options, bool* wildcard) const {
  engine::RequestScope scope;
  if (absl::Status s = scope.Init(*impl_, options); !s.ok()) return s;
  absl::StatusOr<Value> a = engine::ToValue(actor, scope.symbols);
  if (!a.ok()) return absl::InvalidArgumentError(absl::StrCat("actor: ", a.status().message()));
  absl::StatusOr<Value> r = engine::ToValue(resource, scope.symbols);
  if (!r.ok()) return absl::InvalidArgumentError(absl::StrCat("resource: ", r.status().message()));
  Value in[3] = {*a, Unbound(facts::kStringType), *r};
  return AllowPosition(*impl_, scope, in, 1, wildcard);
}

absl::StatusOr<QueryResult> Snapshot::Query(const ConjunctiveQuery& query, const QueryOptions& options) const {
  const Program& prog = impl_->program();
  engine::RequestScope scope;
  if (absl::Status s = scope.Init(*impl_, options); !s.ok()) return s;
  // Compile the query into a head-less clause: one slot per named variable.
  engine::Clause c;
  absl::flat_hash_map<std::string, uint16_t> slots;
  std::vector<uint16_t> reported;
  QueryResult result;
  // Sized once: a query has at most one variable per argument.
  size_t num_args = 0;
  for (const QueryCall& call : query.calls) num_args += call.args.size();
  c.slot_names.reserve(num_args);
  c.slot_types.reserve(num_args);
  reported.reserve(num_args);
  result.vars.reserve(num_args);
  auto slot_of = [&](const std::string& name) {
    auto [it, inserted] = slots.try_emplace(name, static_cast<uint16_t>(c.slot_names.size()));
    if (inserted) {
      c.slot_names.push_back(name);
      c.slot_types.push_back(facts::kNoSymbol);
      if (name[0] != '_') {
        reported.push_back(it->second);
        result.vars.push_back(name);
      }
    }
    return it->second;
  };
  std::vector<engine::Literal> lits;
  lits.reserve(query.calls.size() + query.constraints.size());
  for (const QueryCall& call : query.calls) {
    std::optional<uint32_t> pred = prog.FindPredicate(call.predicate, static_cast<uint32_t>(call.args.size()));
    if (!pred || call.args.size() > engine::kMaxArity) {
      return absl::InvalidArgumentError(absl::StrCat("unknown predicate ", call.predicate, " with ",
                                                     call.args.size(), " arguments"));
    }
    engine::Literal l;
    l.kind = engine::Literal::Kind::kCall;
    l.pred = *pred;
    l.args.reserve(call.args.size());
    for (const QueryArg& qa : call.args) {
      engine::Arg arg;
      if (qa.value) {
        absl::StatusOr<Value> v = engine::ToValue(*qa.value, scope.symbols);
        if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat(call.predicate, ": ", v.status().message()));
        arg.kind = engine::Arg::Kind::kConst;
        arg.value = *v;
      } else if (qa.var.empty() || qa.var == "_") {
        arg.kind = engine::Arg::Kind::kAnon;
      } else {
        arg.kind = engine::Arg::Kind::kSlot;
        arg.slot = slot_of(qa.var);
      }
      l.args.push_back(arg);
    }
    lits.push_back(std::move(l));
  }
  std::vector<std::pair<uint16_t, SymbolId>> exact;  // typed variables (see ExactType)
  for (const auto& [name, vc] : query.constraints) {
    auto it = slots.find(name);
    if (it == slots.end()) continue;  // constrains nothing the query uses
    if (!vc.type.empty()) {
      c.slot_types[it->second] = scope.symbols.Resolve(vc.type);
      if (SymbolId t = ExactType(c.slot_types[it->second]); t != facts::kNoSymbol) exact.emplace_back(it->second, t);
    }
    if (!vc.ids) continue;
    if (vc.type.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("variable ", name, " lists ids but has no type"));
    }
    engine::Literal m;
    m.kind = engine::Literal::Kind::kMember;
    m.args.push_back(engine::Arg{engine::Arg::Kind::kSlot, it->second, facts::kNoSymbol, {}});
    for (const std::string& id : *vc.ids) {
      absl::StatusOr<Value> v = engine::ToValue(TypedValue{vc.type, id}, scope.symbols);
      if (!v.ok()) return absl::InvalidArgumentError(absl::StrCat("variable ", name, ": ", v.status().message()));
      m.members.push_back(*v);
    }
    lits.push_back(std::move(m));
  }
  c.num_slots = static_cast<uint16_t>(c.slot_names.size());
  std::vector<uint32_t> occurrences(c.num_slots, 0);
  for (const engine::Literal& l : lits) Program::CountSlots(l, &occurrences);
  c.plans.push_back(Program::Plan(lits, std::vector<bool>(c.num_slots, false), occurrences));

  struct Sink : Evaluator::SlotSink {
    const Program& prog;
    const std::vector<uint16_t>& reported;
    const std::vector<std::pair<uint16_t, SymbolId>>& exact;
    absl::flat_hash_set<std::vector<Value>> seen;
    std::vector<std::vector<Value>> rows;
    Sink(const Program& p, const std::vector<uint16_t>& r, const std::vector<std::pair<uint16_t, SymbolId>>& e)
        : prog(p), reported(r), exact(e) {}
    bool Solution(const Value* slots) override {
      for (const auto& [slot, type] : exact) {
        if (!FitsExact(prog, type, slots[slot])) return true;
      }
      std::vector<Value> row;
      for (uint16_t s : reported) row.push_back(slots[s].valid() ? slots[s] : Unbound());
      if (seen.insert(row).second) rows.push_back(std::move(row));
      return true;
    }
    void Restart() override {
      seen.clear();
      rows.clear();
    }
  } sink(prog, reported, exact);
  Evaluator ev(prog, impl_->views.data(), scope.ctx);
  Evaluator::Result r = ev.SolveClause(c, nullptr, SIZE_MAX, sink);
  if (!r.ok()) result.reasons.push_back(r.message);
  for (const std::vector<Value>& row : sink.rows) {
    std::vector<std::optional<TypedValue>> out;
    for (const Value& v : row) {
      out.push_back(v.valid() ? std::optional<TypedValue>(engine::ToTypedValue(v, &scope.symbols)) : std::nullopt);
    }
    result.rows.push_back(std::move(out));
  }
  return result;
}

namespace {

// Resolves a fact pattern for `arity` arguments without interning anything. nullopt when it can match
// no stored fact (it names a type or id that was never interned, or an invalid Integer/Boolean id).
std::optional<std::vector<facts::ArgPattern>> ResolvePattern(const FactPattern& pattern, uint32_t arity) {
  std::vector<facts::ArgPattern> out(arity);
  for (size_t i = 0; i < arity; ++i) {
    const std::optional<std::string>& type = i < pattern.arg_types.size() ? pattern.arg_types[i] : std::nullopt;
    const std::optional<std::string>& id = i < pattern.arg_ids.size() ? pattern.arg_ids[i] : std::nullopt;
    if (!type) continue;
    const std::optional<facts::SymbolId> t = SymbolTable::Global().Find(*type);
    if (!t) return std::nullopt;
    out[i].type = *t;
    if (!id) continue;
    engine::RequestSymbols local;
    absl::StatusOr<Value> v = engine::ToValue(TypedValue{*type, *id}, local);
    if (!v.ok()) return std::nullopt;
    if ((v->is_string() || v->is_instance()) && v->symbol() >= engine::RequestSymbols::kLocalBase) return std::nullopt;
    out[i].has_value = true;
    out[i].bits = v->bits;
  }
  return out;
}

}  // namespace

std::vector<Fact> Snapshot::Facts(const FactPattern& pattern, size_t limit) const {
  return Facts(pattern, limit, std::nullopt);
}

std::optional<int64_t> Snapshot::ExpiresAt(const Fact& fact) const {
  if (!impl_->facts.has_expiry()) return std::nullopt;
  std::optional<facts::SymbolId> pred = SymbolTable::Global().Find(fact.predicate);
  if (!pred) return std::nullopt;
  std::vector<Value> tuple;
  for (const TypedValue& a : fact.args) {
    engine::RequestSymbols local;
    absl::StatusOr<Value> v = engine::ToValue(a, local);
    if (!v.ok() || ((v->is_string() || v->is_instance()) &&
                    (v->symbol() >= engine::RequestSymbols::kLocalBase || v->type >= engine::RequestSymbols::kLocalBase))) {
      return std::nullopt;  // names nothing stored
    }
    tuple.push_back(*v);
  }
  return impl_->facts.ExpiresAt({*pred, static_cast<uint32_t>(tuple.size())}, tuple.data());
}

std::vector<Fact> Snapshot::Facts(const FactPattern& pattern, size_t limit, std::optional<int64_t> now_unix) const {
  const int64_t now =
      !impl_->facts.has_expiry() ? 0 : now_unix ? *now_unix : absl::ToUnixSeconds(absl::Now());
  std::vector<Fact> out;
  std::vector<facts::PredicateKey> keys = impl_->facts.Predicates();
  std::sort(keys.begin(), keys.end(), [](const facts::PredicateKey& a, const facts::PredicateKey& b) {
    return std::pair(SymbolTable::Global().Name(a.name), a.arity) < std::pair(SymbolTable::Global().Name(b.name), b.arity);
  });
  const size_t n = std::max(pattern.arg_types.size(), pattern.arg_ids.size());
  for (const facts::PredicateKey& key : keys) {
    if (!pattern.predicate.empty() && SymbolTable::Global().Name(key.name) != pattern.predicate) continue;
    if (n > 0 && key.arity != n) continue;
    std::optional<std::vector<facts::ArgPattern>> args = ResolvePattern(pattern, key.arity);
    if (!args) continue;
    std::vector<Value> lookup(key.arity);
    for (uint32_t i = 0; i < key.arity; ++i) {
      if ((*args)[i].type != facts::kNoSymbol && (*args)[i].has_value) lookup[i] = Value{(*args)[i].type, (*args)[i].bits};
    }
    facts::RelationView view = impl_->facts.Relation(key);
    view.ForEach(lookup.data(), [&](const Value* row) {
      for (uint32_t i = 0; i < key.arity; ++i) {
        if (!(*args)[i].Matches(row[i])) return true;
      }
      if (!view.Live(row, now)) return true;
      Fact f{std::string(SymbolTable::Global().Name(key.name)), {}};
      for (uint32_t i = 0; i < key.arity; ++i) f.args.push_back(engine::ToTypedValue(row[i]));
      out.push_back(std::move(f));
      return out.size() < limit;
    });
    if (out.size() >= limit) break;
  }
  return out;
}

// ---- Database ----------------------------------------------------------------------------------

struct Database::Impl {
  std::mutex write_mu;  // serializes writers; readers only load `current`
  std::shared_ptr<const Policy> policy;
  facts::FactSet facts;
  std::atomic<std::shared_ptr<const Snapshot>> current;

  void Publish() { current.store(Snapshot::Impl::Make(policy, facts)); }
};

namespace {
std::shared_ptr<const Policy> EmptyPolicy() {
  static const std::shared_ptr<const Policy> empty = *Policy::Compile({});
  return empty;
}
}  // namespace

Database::Database(std::shared_ptr<const Policy> policy) : impl_(std::make_unique<Impl>()) {
  impl_->policy = policy != nullptr ? std::move(policy) : EmptyPolicy();
  impl_->Publish();
}

Database::~Database() = default;

std::shared_ptr<const Snapshot> Database::snapshot() const { return impl_->current.load(); }

absl::StatusOr<uint64_t> Database::Apply(const std::vector<Change>& changes) {
  std::lock_guard<std::mutex> lock(impl_->write_mu);
  // Validate everything before interning or applying anything.
  for (size_t i = 0; i < changes.size(); ++i) {
    const Change& c = changes[i];
    if (c.kind == Change::Kind::kInsert) {
      if (absl::Status s = impl_->policy->CheckFact(c.fact); !s.ok()) {
        return absl::InvalidArgumentError(absl::StrCat("change ", i, ": ", s.message()));
      }
      for (const polar::BuiltinPredicate& b : polar::BuiltinPredicates()) {
        if (b.kind == polar::BuiltinPredicate::Kind::kRequest && b.name == c.fact.predicate) {
          return absl::InvalidArgumentError(absl::StrCat("change ", i, ": ", c.fact.predicate,
                                                         " facts come with each request (as context facts) and are "
                                                         "not stored"));
        }
      }
    } else {
      if (c.expires_at) {
        return absl::InvalidArgumentError(absl::StrCat("change ", i, ": expires_at applies to inserts only"));
      }
      if (c.pattern.predicate.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("change ", i, ": delete pattern has no predicate"));
      }
      if (c.pattern.arg_types.size() != c.pattern.arg_ids.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("change ", i, ": delete pattern has ", c.pattern.arg_types.size(), " types but ",
                         c.pattern.arg_ids.size(), " ids"));
      }
      for (size_t a = 0; a < c.pattern.arg_ids.size(); ++a) {
        if (c.pattern.arg_ids[a] && !c.pattern.arg_types[a]) {
          return absl::InvalidArgumentError(
              absl::StrCat("change ", i, ": delete pattern argument ", a + 1, " has an id but no type"));
        }
      }
    }
  }
  std::vector<facts::FactChange> fc;
  fc.reserve(changes.size());
  for (const Change& c : changes) {
    facts::FactChange f;
    if (c.kind == Change::Kind::kInsert) {
      absl::StatusOr<std::pair<facts::PredicateKey, std::vector<Value>>> t = engine::ToStoredFact(c.fact);
      if (!t.ok()) return t.status();  // unreachable after CheckFact
      f.kind = facts::FactChange::Kind::kInsert;
      f.key = t->first;
      f.tuple = std::move(t->second);
      f.expires_at = c.expires_at;
      fc.push_back(std::move(f));
      continue;
    }
    // A pattern naming strings nobody interned matches nothing: skip it rather than intern.
    std::optional<facts::SymbolId> pred = SymbolTable::Global().Find(c.pattern.predicate);
    if (!pred) continue;
    f.kind = facts::FactChange::Kind::kDelete;
    f.key = {*pred, static_cast<uint32_t>(c.pattern.arg_types.size())};
    std::optional<std::vector<facts::ArgPattern>> args = ResolvePattern(c.pattern, f.key.arity);
    if (!args) continue;
    f.pattern = *std::move(args);
    fc.push_back(std::move(f));
  }
  bool changed = false;
  facts::FactSet next = impl_->facts.Apply(fc, &changed);
  if (changed) {
    impl_->facts = std::move(next);
    impl_->Publish();
  }
  return impl_->facts.revision();
}

absl::Status Database::SetPolicy(std::shared_ptr<const Policy> policy) {
  if (policy == nullptr) return absl::InvalidArgumentError("policy is null");
  std::lock_guard<std::mutex> lock(impl_->write_mu);
  impl_->policy = std::move(policy);
  impl_->facts = impl_->facts.WithRevision(impl_->facts.revision() + 1);
  impl_->Publish();
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Database::Clear() {
  std::lock_guard<std::mutex> lock(impl_->write_mu);
  impl_->facts = facts::FactSet().WithRevision(impl_->facts.revision() + 1);
  impl_->Publish();
  return impl_->facts.revision();
}

}  // namespace mandate
