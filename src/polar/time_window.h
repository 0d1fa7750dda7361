// The `time_within(tz, days, from, to)` built-in: parsing its four arguments into a TimeWindow and
// deciding whether an instant falls inside it. Shared by validation (literal arguments are checked
// where they are written) and the engine (arguments that come from facts are parsed per request).
//
//   tz    an IANA time zone name ("America/New_York", "Europe/Berlin", "UTC"), read from the system's
//         zoneinfo (the Debian `tzdata` package);
//   days  "*" (every day), or a comma-separated list of days and day ranges: "mon-fri", "sat,sun",
//         "mon,wed-fri"; ranges may wrap ("fri-mon"); names are the first three letters, any case;
//   from, to  "HH:MM" wall-clock times, from inclusive and to exclusive; `to` may be "24:00". A window
//         with from > to crosses midnight and belongs to the day it starts on: ("fri", "22:00",
//         "02:00") holds from Friday 22:00 to Saturday 02:00. from == to is an error.
// Times are compared in the zone's local wall-clock time of the instant, so windows follow DST: a
// 09:00-17:00 window is 09:00-17:00 local time on both sides of a transition.
#ifndef MANDATE_POLAR_TIME_WINDOW_H_
#define MANDATE_POLAR_TIME_WINDOW_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace mandate::polar {

struct TimeWindow {
  absl::TimeZone zone;
  uint8_t days = 0;     // bit d set: weekday d is listed (0 = Monday ... 6 = Sunday)
  int32_t from = 0;     // seconds after local midnight
  int32_t to = 0;       // seconds after local midnight, 1..86400

  // Whether the instant `unix_seconds` falls inside the window.
  bool Contains(int64_t unix_seconds) const;
};

// Parses the four arguments. Errors are InvalidArgument naming the argument and the expected form,
// e.g. `time zone "America/New_Yrok" is not a known IANA time zone`. Thread-safe.
absl::StatusOr<TimeWindow> ParseTimeWindow(std::string_view tz, std::string_view days, std::string_view from,
                                           std::string_view to);

// The pieces, for validation that reports each literal argument at its own position.
absl::StatusOr<absl::TimeZone> ParseTimeZone(std::string_view tz);
absl::StatusOr<uint8_t> ParseDays(std::string_view days);
// "HH:MM" as seconds after midnight; "24:00" only when `allow_end_of_day`.
absl::StatusOr<int32_t> ParseClockTime(std::string_view text, bool allow_end_of_day);

// Parses an RFC 3339 time ("2026-11-30T09:30:00-05:00", "2026-11-30T14:30:00Z") to Unix seconds.
absl::StatusOr<int64_t> ParseRfc3339(std::string_view text);

}  // namespace mandate::polar

#endif  // MANDATE_POLAR_TIME_WINDOW_H_
