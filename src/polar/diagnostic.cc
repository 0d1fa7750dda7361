// Diagnostics: construction, "did you mean" suggestions and formatting with file:line:col.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "polar/internal.h"
#include "polar/polar.h"

namespace mandate::polar {
namespace internal {
namespace {

// Optimal-string-alignment distance (edits and adjacent transpositions, so "raed" is one step from
// "read"), or cap + 1 when the lengths alone rule out a match within cap.
size_t EditDistance(std::string_view a, std::string_view b, size_t cap) {
  if ((a.size() > b.size() ? a.size() - b.size() : b.size() - a.size()) > cap) return cap + 1;
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// Names longer than this get no suggestion (keeps the quadratic distance cheap on hostile input).
constexpr size_t kMaxSuggestLength = 64;

}  // namespace

Diagnostic MakeError(const Span& span, std::string message, std::string hint) {
  return Diagnostic{Diagnostic::Severity::kError, span, std::move(message), std::move(hint)};
}

Diagnostic MakeWarning(const Span& span, std::string message, std::string hint) {
  return Diagnostic{Diagnostic::Severity::kWarning, span, std::move(message), std::move(hint)};
}

std::string DidYouMean(std::string_view name, const std::vector<std::string>& candidates, size_t max_edits) {
  // About one typo per four characters, between one and three (or fewer when the caller says so).
  if (name.size() > kMaxSuggestLength) return "";
  size_t cap = std::clamp<size_t>(name.size() / 4, 1, 3);
  if (max_edits > 0) cap = std::min(cap, max_edits);
  const std::string* best = nullptr;
  size_t best_distance = cap + 1;
  for (const std::string& c : candidates) {
    if (c == name || c.size() > kMaxSuggestLength) continue;
    size_t d = EditDistance(name, c, cap);
    if (d < best_distance && d < name.size()) {  // replacing every character is no suggestion
      best_distance = d;
      best = &c;
    }
  }
  return best ? absl::StrCat("did you mean \"", *best, "\"?") : "";
}

bool HasErrors(const std::vector<Diagnostic>& diags) {
  return std::any_of(diags.begin(), diags.end(),
                     [](const Diagnostic& d) { return d.severity == Diagnostic::Severity::kError; });
}

}  // namespace internal

std::string FormatSpan(const Span& span, const SourceSet& sources) {
  if (span.line == 0) return "<builtin>";
  std::string file = span.file < sources.size() ? sources[span.file].filename : "<unknown>";
  return absl::StrCat(file, ":", span.line, ":", span.col);
}

std::string FormatDiagnostic(const Diagnostic& d, const SourceSet& sources) {
  std::string out = absl::StrCat(FormatSpan(d.span, sources), ": ",
                                 d.severity == Diagnostic::Severity::kError ? "error" : "warning", ": ", d.message);
  if (!d.hint.empty()) absl::StrAppend(&out, "\n  hint: ", d.hint);
  return out;
}

}  // namespace mandate::polar
