// Fuzzes the Polar front end with untrusted text: the policy pipeline (Analyze: parse, validate,
// desugar), the query parser and the fact-line parser. Any input must give a result or diagnostics,
// never a crash, hang, leak or undefined behavior. Beyond that, the printer and the parser must agree:
// a rule, query or fact that parsed, printed and parsed again must print the same.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "polar/polar.h"

namespace mandate::polar {
namespace {

void CheckRulesRoundTrip(const Policy& policy) {
  for (const Rule& rule : policy.rules) {
    const std::string text = FormatRule(rule);
    std::vector<Diagnostic> diags;
    Policy again = Parse({Source{"<roundtrip>", text + ";"}}, &diags);
    if (!diags.empty() || again.rules.size() != 1 || FormatRule(again.rules[0]) != text) std::abort();
  }
}

void CheckQueryRoundTrip(const std::vector<Expr>& calls) {
  std::string text;
  for (const Expr& call : calls) text += (text.empty() ? "" : " and ") + FormatExpr(call);
  absl::StatusOr<std::vector<Expr>> again = ParseQuery(text);
  if (!again.ok() || again->size() != calls.size()) std::abort();
  for (size_t i = 0; i < calls.size(); ++i) {
    if (FormatExpr((*again)[i]) != FormatExpr(calls[i])) std::abort();
  }
}

void CheckFactsRoundTrip(const std::vector<FactLiteral>& facts) {
  for (const FactLiteral& fact : facts) {
    const std::string text = FormatFact(fact);
    absl::StatusOr<std::vector<FactLiteral>> again = ParseFacts(text, "<roundtrip>");
    if (!again.ok() || again->size() != 1 || FormatFact(again->front()) != text) std::abort();
  }
}

}  // namespace
}  // namespace mandate::polar

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mandate::polar;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Two sources when the input holds a form feed, so that multi-file spans are exercised too.
  SourceSet sources;
  const size_t split = text.find('\f');
  sources.push_back(Source{"a.polar", std::string(text.substr(0, split))});
  if (split != std::string_view::npos) sources.push_back(Source{"b.polar", std::string(text.substr(split + 1))});

  std::vector<Diagnostic> diags;
  Policy parsed = Parse(sources, &diags);
  if (diags.empty()) CheckRulesRoundTrip(parsed);
  diags.clear();
  std::optional<DesugaredPolicy> analyzed = Analyze(sources, &diags);
  for (const Diagnostic& d : diags) (void)FormatDiagnostic(d, sources);
  if (analyzed) {
    for (const Rule& rule : analyzed->rules) (void)FormatRule(rule);
  }
  if (absl::StatusOr<std::vector<Expr>> q = ParseQuery(text); q.ok()) CheckQueryRoundTrip(*q);
  if (absl::StatusOr<std::vector<FactLiteral>> f = ParseFacts(text, "<fuzz>"); f.ok()) CheckFactsRoundTrip(*f);
  return 0;
}
