// Runs the `test` blocks of a policy: each test evaluates its assertions against only its own setup
// facts and fixtures (plus the facts stated in the policy itself).
#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/api_impl.h"
#include "polar/polar.h"

namespace mandate {
namespace {

std::string LineOf(const polar::Span& span, const polar::SourceSet& sources) {
  const std::string file = span.file < sources.size() ? sources[span.file].filename : "<builtin>";
  return span.line == 0 ? file : absl::StrCat(file, ":", span.line);
}

// The source text a span covers (the assertion as written).
std::string SpanText(const polar::Span& span, const polar::SourceSet& sources) {
  if (span.file >= sources.size() || span.line == 0) return "";
  const std::string& text = sources[span.file].text;
  auto offset = [&](uint32_t line, uint32_t col) {
    size_t pos = 0;
    for (uint32_t l = 1; l < line && pos != std::string::npos; ++l) {
      pos = text.find('\n', pos);
      if (pos != std::string::npos) ++pos;
    }
    return pos == std::string::npos ? text.size() : std::min(text.size(), pos + col - 1);
  };
  const size_t begin = offset(span.line, span.col);
  const size_t end = span.end_line == 0 ? begin : offset(span.end_line, span.end_col);
  return end > begin ? text.substr(begin, end - begin) : "";
}

std::string Render(const std::set<std::string>& values) {
  return absl::StrCat("[", absl::StrJoin(values, ", "), "]");
}

std::string ValueText(const std::optional<TypedValue>& v) {
  if (!v) return "_ (any value)";
  Fact f{"", {*v}};
  std::string s = ToString(f);  // "(value)"
  return s.substr(1, s.size() - 2);
}

// Evaluates one assertion; returns the failure message, or "" when it holds.
std::string RunAssertion(const Snapshot& snap, const polar::Assertion& a, std::optional<int64_t> now_unix,
                         const EvalLimits& limits) {
  absl::StatusOr<ConjunctiveQuery> q = engine::CallsToQuery({{a.predicate, a.args}});
  if (!q.ok()) return std::string(q.status().message());
  if (a.iff_var) {
    // The variable must be in the query so that its values are reported.
    bool used = false;
    for (const QueryArg& arg : q->calls[0].args) used = used || arg.var == *a.iff_var;
    if (!used) return absl::StrCat("iff: variable ", *a.iff_var, " does not appear in the query");
  }
  QueryOptions options;
  options.limits = limits;
  options.now_unix = now_unix;
  absl::StatusOr<QueryResult> r = snap.Query(*q, options);
  if (!r.ok()) return std::string(r.status().message());
  if (!r->reasons.empty()) return absl::StrJoin(r->reasons, "; ");
  if (!a.iff_var) {
    const bool got = !r->rows.empty();
    if (got == !a.negated) return "";
    return absl::StrCat("expected ", a.negated ? "false" : "true", ", got ", got ? "true" : "false");
  }
  const size_t col = std::find(r->vars.begin(), r->vars.end(), *a.iff_var) - r->vars.begin();
  std::set<std::string> got, expected;
  for (const auto& row : r->rows) got.insert(ValueText(row[col]));
  for (const polar::Term& t : a.iff_values) {
    std::optional<TypedValue> v = engine::TermToTypedValue(t);
    expected.insert(v ? ValueText(v) : polar::FormatTerm(t));
  }
  std::set<std::string> missing, unexpected;
  std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(), std::inserter(missing, missing.end()));
  std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(),
                      std::inserter(unexpected, unexpected.end()));
  if (a.negated) {
    // assert_not ... iff v in [...]: none of the listed values may satisfy the query.
    std::set<std::string> wrong;
    std::set_intersection(expected.begin(), expected.end(), got.begin(), got.end(), std::inserter(wrong, wrong.end()));
    return wrong.empty() ? "" : absl::StrCat("iff: expected none of ", Render(expected), ", got ", Render(wrong));
  }
  if (missing.empty() && unexpected.empty()) return "";
  return absl::StrCat("iff: missing ", Render(missing), ", unexpected ", Render(unexpected));
}

}  // namespace

TestReport RunPolicyTests(const Policy& policy, const EvalLimits& limits) {
  TestReport report;
  const polar::DesugaredPolicy& dp = policy.impl().program->policy();
  // A non-owning handle: the snapshots below live only inside this call.
  std::shared_ptr<const Policy> handle(&policy, [](const Policy*) {});
  for (const polar::Test& test : dp.tests) {
    TestResult tr;
    tr.name = test.name;
    tr.location = LineOf(test.span, dp.sources);
    std::vector<std::pair<facts::PredicateKey, std::vector<facts::Value>>> facts;
    std::string setup_error;
    auto add = [&](const polar::FactLiteral& lit) {
      Fact f{lit.predicate, {}};
      for (const polar::Term& t : lit.args) {
        if (std::optional<TypedValue> v = engine::TermToTypedValue(t)) f.args.push_back(*std::move(v));
      }
      absl::StatusOr<std::pair<facts::PredicateKey, std::vector<facts::Value>>> sf = engine::ToStoredFact(f);
      if (sf.ok() && f.args.size() == lit.args.size()) {
        facts.push_back(*std::move(sf));
      } else if (setup_error.empty()) {
        setup_error = absl::StrCat(LineOf(lit.span, dp.sources), ": invalid setup fact ", polar::FormatFact(lit));
      }
    };
    for (const polar::FactLiteral& f : test.setup_facts) add(f);
    for (const polar::NameDecl& ref : test.fixtures) {
      auto it = std::find_if(dp.fixtures.begin(), dp.fixtures.end(),
                             [&](const polar::Fixture& fx) { return fx.name == ref.name; });
      if (it == dp.fixtures.end()) {
        if (setup_error.empty()) setup_error = absl::StrCat(LineOf(ref.span, dp.sources), ": unknown fixture \"", ref.name, "\"");
        continue;
      }
      for (const polar::FactLiteral& f : it->facts) add(f);
    }
    std::shared_ptr<const Snapshot> snap = Snapshot::Impl::Make(handle, facts::FactSet::FromFacts(facts));
    for (const polar::Assertion& a : test.assertions) {
      ++tr.total;
      // The clock: the last `at` before the assertion, else the setup's `at`, else the real clock.
      std::string message =
          setup_error.empty() ? RunAssertion(*snap, a, a.now_unix ? a.now_unix : test.now_unix, limits) : setup_error;
      if (message.empty()) {
        ++tr.passed;
      } else {
        tr.failures.push_back({SpanText(a.span, dp.sources), LineOf(a.span, dp.sources), std::move(message)});
      }
    }
    report.tests.push_back(std::move(tr));
  }
  return report;
}

}  // namespace mandate
