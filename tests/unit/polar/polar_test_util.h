// Helpers shared by the polar unit tests: analyze inline policy text and look at diagnostics.
#ifndef MANDATE_TESTS_UNIT_POLAR_POLAR_TEST_UTIL_H_
#define MANDATE_TESTS_UNIT_POLAR_POLAR_TEST_UTIL_H_

#include <optional>
#include <string>
#include <vector>

#include "polar/polar.h"

namespace mandate::polar::polar_test {

inline SourceSet One(std::string text) { return {Source{"p.polar", std::move(text)}}; }

struct Analyzed {
  std::optional<DesugaredPolicy> policy;
  std::vector<Diagnostic> diags;
  // Errors and warnings formatted as "line:col: message" (no file name), in report order.
  std::vector<std::string> Errors() const { return Format(Diagnostic::Severity::kError); }
  std::vector<std::string> Warnings() const { return Format(Diagnostic::Severity::kWarning); }
  std::vector<std::string> Format(Diagnostic::Severity severity) const {
    std::vector<std::string> out;
    for (const Diagnostic& d : diags) {
      if (d.severity == severity) {
        out.push_back(std::to_string(d.span.line) + ":" + std::to_string(d.span.col) + ": " + d.message);
      }
    }
    return out;
  }
  const Diagnostic* Find(const std::string& message_part) const {
    for (const Diagnostic& d : diags) {
      if (d.message.find(message_part) != std::string::npos) return &d;
    }
    return nullptr;
  }
};

inline Analyzed AnalyzeText(std::string text) {
  Analyzed a;
  a.policy = Analyze(One(std::move(text)), &a.diags);
  return a;
}

inline Policy ParseText(std::string text, std::vector<Diagnostic>* diags) { return Parse(One(std::move(text)), diags); }

// The rules of a desugared policy as text, one per rule.
inline std::vector<std::string> RuleTexts(const DesugaredPolicy& p) {
  std::vector<std::string> out;
  for (const Rule& r : p.rules) out.push_back(FormatRule(r));
  return out;
}

}  // namespace mandate::polar::polar_test

#endif  // MANDATE_TESTS_UNIT_POLAR_POLAR_TEST_UTIL_H_
