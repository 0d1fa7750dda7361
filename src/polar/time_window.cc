// time_within(tz, days, from, to): argument parsing and the membership test. See time_window.h.
#include "polar/time_window.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/civil_time.h"

namespace mandate::polar {
namespace {

constexpr std::string_view kDayNames[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
constexpr int32_t kDaySeconds = 24 * 3600;

// Abseil here has its own string_view type; the public functions take std::string_view.
absl::string_view Absl(std::string_view s) { return absl::string_view(s.data(), s.size()); }

int DayIndex(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(absl::StripAsciiWhitespace(name));
  for (int d = 0; d < 7; ++d) {
    if (lower == kDayNames[d]) return d;
  }
  return -1;
}

absl::Status DaysError(std::string_view days, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("days \"", std::string(days), "\": ", std::string(what),
                   " (expected \"*\" or days and ranges such as \"mon-fri\", \"sat,sun\", \"mon,wed-fri\")"));
}

}  // namespace

absl::StatusOr<absl::TimeZone> ParseTimeZone(std::string_view tz) {
  // Names are IANA zone names: letters, digits and _+-/ only. Checked first so that no name reaches
  // the zoneinfo loader as a path ("../x") and hostile input stays short.
  bool plain = !tz.empty() && tz.size() <= 64 && tz.front() != '/' && tz.find("..") == std::string_view::npos;
  for (char c : tz) plain = plain && (absl::ascii_isalnum(c) || c == '_' || c == '+' || c == '-' || c == '/');
  absl::TimeZone zone;
  if (!plain || tz == "localtime" || !absl::LoadTimeZone(std::string(tz), &zone)) {
    return absl::InvalidArgumentError(absl::StrCat("time zone \"", std::string(tz),
                                                   "\" is not a known IANA time zone (e.g. \"America/New_York\", \"UTC\")"));
  }
  return zone;
}

absl::StatusOr<uint8_t> ParseDays(std::string_view days) {
  if (absl::StripAsciiWhitespace(Absl(days)) == "*") return uint8_t{0x7f};
  uint8_t mask = 0;
  for (absl::string_view part : absl::StrSplit(Absl(days), ',')) {
    const std::vector<absl::string_view> ends = absl::StrSplit(part, '-');
    if (ends.size() > 2) return DaysError(days, absl::StrCat("\"", std::string(part), "\" is not a day or a range"));
    const int first = DayIndex(ends[0]);
    const int last = ends.size() == 2 ? DayIndex(ends[1]) : first;
    if (first < 0 || last < 0) {
      return DaysError(days, absl::StrCat("unknown day \"", std::string(absl::StripAsciiWhitespace(first < 0 ? ends[0] : ends[1])), "\""));
    }
    for (int d = first;; d = (d + 1) % 7) {  // a range may wrap: "fri-mon"
      mask |= uint8_t{1} << d;
      if (d == last) break;
    }
  }
  return mask;
}

absl::StatusOr<int32_t> ParseClockTime(std::string_view text, bool allow_end_of_day) {
  auto digit = [&](size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  if (text.size() == 5 && digit(0) && digit(1) && text[2] == ':' && digit(3) && digit(4)) {
    const int h = (text[0] - '0') * 10 + (text[1] - '0');
    const int m = (text[3] - '0') * 10 + (text[4] - '0');
    if (h < 24 && m < 60) return h * 3600 + m * 60;
    if (allow_end_of_day && h == 24 && m == 0) return kDaySeconds;
  }
  return absl::InvalidArgumentError(absl::StrCat("time \"", std::string(text), "\" is not HH:MM between 00:00 and ",
                                                 allow_end_of_day ? "24:00" : "23:59"));
}

absl::StatusOr<TimeWindow> ParseTimeWindow(std::string_view tz, std::string_view days, std::string_view from,
                                           std::string_view to) {
  TimeWindow w;
  absl::StatusOr<absl::TimeZone> zone = ParseTimeZone(tz);
  if (!zone.ok()) return zone.status();
  w.zone = *zone;
  absl::StatusOr<uint8_t> mask = ParseDays(days);
  if (!mask.ok()) return mask.status();
  w.days = *mask;
  absl::StatusOr<int32_t> f = ParseClockTime(from, false);
  if (!f.ok()) return f.status();
  absl::StatusOr<int32_t> t = ParseClockTime(to, true);
  if (!t.ok()) return t.status();
  if (*f == *t) {
    return absl::InvalidArgumentError(absl::StrCat("the window \"", std::string(from), "\" to \"", std::string(to),
                                                   "\" is empty (for a whole day write \"00:00\" to \"24:00\")"));
  }
  w.from = *f;
  w.to = *t;
  return w;
}

bool TimeWindow::Contains(int64_t unix_seconds) const {
  const absl::CivilSecond local = zone.At(absl::FromUnixSeconds(unix_seconds)).cs;
  const int day = static_cast<int>(absl::GetWeekday(local));  // Monday = 0
  const int32_t t = static_cast<int32_t>(local.hour() * 3600 + local.minute() * 60 + local.second());
  const bool listed = (days >> day) & 1;
  if (from < to) return listed && from <= t && t < to;
  // Crosses midnight: the evening part belongs to today, the morning part to yesterday's window.
  const bool yesterday_listed = (days >> ((day + 6) % 7)) & 1;
  return (listed && t >= from) || (yesterday_listed && t < to);
}

absl::StatusOr<int64_t> ParseRfc3339(std::string_view text) {
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, std::string(text), &t, &err)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", std::string(text),
                                                   "\" is not an RFC 3339 time such as \"2026-11-30T09:30:00-05:00\" (",
                                                   err, ")"));
  }
  return absl::ToUnixSeconds(t);
}

}  // namespace mandate::polar
