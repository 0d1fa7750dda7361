# time_within(tz, days, from, to): wall-clock windows in IANA time zones. Tests fix the request time
# with `at` (RFC 3339, or Unix seconds): in `setup` for the whole test, or between assertions for the
# ones that follow. A time written with one offset is the same instant in every zone: what counts is
# the local time in the window's zone, so windows follow daylight saving time.
actor User {}

resource Account {
  permissions = ["email", "deploy", "night_ops", "weekend_ops", "review", "read"];

  # a sales agent emails customers 08:00-17:00 on weekdays, New York time
  "email" if time_within("America/New_York", "mon-fri", "08:00", "17:00");
  # deploys Monday to Thursday, 09:00-16:00 Berlin time
  "deploy" if time_within("Europe/Berlin", "mon-thu", "09:00", "16:00");
  # a night shift that crosses midnight belongs to the day it starts: Friday 22:00 to Saturday 02:00
  "night_ops" if time_within("Europe/Berlin", "fri", "22:00", "02:00");
  # whole days
  "weekend_ops" if time_within("UTC", "sat,sun", "00:00", "24:00");
  # day lists mix days and ranges; names are case-insensitive
  "review" if time_within("UTC", "Mon,wed-fri", "10:00", "12:00");
  # windows can come from facts: each user's working hours
  "read" if working_hours(actor, tz, days, from, to) and time_within(tz, days, from, to);
}

# @current_unix_time follows the test clock too
has_permission(user: User, "read", account: Account) if
  until matches Integer and grant_until(user, account, until) and @current_unix_time < until;

declare working_hours(User, String, String, String, String);

test "New York weekdays, across the start of DST (8 March 2026)" {
  # Friday before: EST (UTC-5)
  at "2026-03-06T07:59:00-05:00";
  assert_not allow(User{"sam"}, "email", Account{"a"});
  at "2026-03-06T08:00:00-05:00";
  assert allow(User{"sam"}, "email", Account{"a"});
  at "2026-03-06T16:59:00-05:00";
  assert allow(User{"sam"}, "email", Account{"a"});
  at "2026-03-06T17:00:00-05:00";
  assert_not allow(User{"sam"}, "email", Account{"a"});
  # Monday after: EDT (UTC-4). 12:30Z was 07:30 on Friday and is 08:30 now.
  at "2026-03-06T12:30:00Z";
  assert_not allow(User{"sam"}, "email", Account{"a"});
  at "2026-03-09T12:30:00Z";
  assert allow(User{"sam"}, "email", Account{"a"});
  at "2026-03-09T16:30:00-04:00";
  assert allow(User{"sam"}, "email", Account{"a"});
  at "2026-03-09T21:30:00Z";
  assert_not allow(User{"sam"}, "email", Account{"a"});
  # the weekend in between
  at "2026-03-07T12:00:00-05:00";
  assert_not allow(User{"sam"}, "email", Account{"a"});
}

test "New York weekdays, across the end of DST (1 November 2026)" {
  at "2026-10-30T12:30:00Z";  # Friday 08:30 EDT
  assert allow(User{"sam"}, "email", Account{"a"});
  at "2026-10-30T21:30:00Z";  # Friday 17:30 EDT
  assert_not allow(User{"sam"}, "email", Account{"a"});
  at "2026-11-02T13:30:00Z";  # Monday 08:30 EST
  assert allow(User{"sam"}, "email", Account{"a"});
  at "2026-11-02T12:30:00Z";  # Monday 07:30 EST
  assert_not allow(User{"sam"}, "email", Account{"a"});
  at "2026-11-02T21:30:00Z";  # Monday 16:30 EST
  assert allow(User{"sam"}, "email", Account{"a"});
}

test "Berlin, across the start and end of DST" {
  at "2026-03-26T08:30:00Z";  # Thursday 09:30 CET
  assert allow(User{"dev"}, "deploy", Account{"a"});
  at "2026-03-26T14:30:00Z";  # Thursday 15:30 CET
  assert allow(User{"dev"}, "deploy", Account{"a"});
  at "2026-03-30T07:30:00Z";  # Monday 09:30 CEST (29 March: 02:00 CET became 03:00 CEST)
  assert allow(User{"dev"}, "deploy", Account{"a"});
  at "2026-03-30T14:30:00Z";  # Monday 16:30 CEST
  assert_not allow(User{"dev"}, "deploy", Account{"a"});
  at "2026-10-22T14:30:00Z";  # Thursday 16:30 CEST
  assert_not allow(User{"dev"}, "deploy", Account{"a"});
  at "2026-10-26T07:30:00Z";  # Monday 08:30 CET (25 October: 03:00 CEST became 02:00 CET)
  assert_not allow(User{"dev"}, "deploy", Account{"a"});
  at "2026-10-26T14:30:00Z";  # Monday 15:30 CET
  assert allow(User{"dev"}, "deploy", Account{"a"});
  at "2026-10-29T15:00:00+01:00";  # Thursday 15:00 CET
  assert allow(User{"dev"}, "deploy", Account{"a"});
  at "2026-10-30T10:00:00+01:00";  # Friday
  assert_not allow(User{"dev"}, "deploy", Account{"a"});
}

test "a window across midnight belongs to the day it starts" {
  at "2026-03-27T21:30:00+01:00";  # Friday 21:30
  assert_not allow(User{"ops"}, "night_ops", Account{"a"});
  at "2026-03-27T22:00:00+01:00";  # Friday 22:00
  assert allow(User{"ops"}, "night_ops", Account{"a"});
  at "2026-03-28T01:30:00+01:00";  # Saturday 01:30, still Friday's shift
  assert allow(User{"ops"}, "night_ops", Account{"a"});
  at "2026-03-28T02:00:00+01:00";  # Saturday 02:00: the shift is over
  assert_not allow(User{"ops"}, "night_ops", Account{"a"});
  at "2026-03-28T22:30:00+01:00";  # Saturday 22:30: Saturday has no shift
  assert_not allow(User{"ops"}, "night_ops", Account{"a"});
  at "2026-03-27T00:30:00+01:00";  # Friday 00:30: that would be Thursday's shift
  assert_not allow(User{"ops"}, "night_ops", Account{"a"});
}

test "day lists and whole days" {
  at "2026-11-28T00:00:00Z";  # Saturday, first second
  assert allow(User{"ops"}, "weekend_ops", Account{"a"});
  at "2026-11-29T23:59:59Z";  # Sunday, last second
  assert allow(User{"ops"}, "weekend_ops", Account{"a"});
  at "2026-11-30T00:00:00Z";  # Monday
  assert_not allow(User{"ops"}, "weekend_ops", Account{"a"});
  at "2026-11-30T10:30:00Z";  # Monday
  assert allow(User{"rev"}, "review", Account{"a"});
  at "2026-12-01T10:30:00Z";  # Tuesday: not listed
  assert_not allow(User{"rev"}, "review", Account{"a"});
  at "2026-12-02T10:30:00Z";  # Wednesday, in the range wed-fri
  assert allow(User{"rev"}, "review", Account{"a"});
  at "2026-12-04T11:59:00Z";  # Friday
  assert allow(User{"rev"}, "review", Account{"a"});
  at "2026-12-04T12:00:00Z";  # Friday, end of the window
  assert_not allow(User{"rev"}, "review", Account{"a"});
}

test "windows from facts, per user" {
  setup {
    at "2026-11-30T09:30:00-05:00";  # Monday 09:30 in New York, 15:30 in Berlin
    working_hours(User{"ny"}, "America/New_York", "mon-fri", "09:00", "17:00");
    working_hours(User{"berlin"}, "Europe/Berlin", "mon-fri", "08:00", "15:00");
    working_hours(User{"weekender"}, "America/New_York", "sat,sun", "00:00", "24:00");
  }
  assert allow(User{"ny"}, "read", Account{"a"});
  assert_not allow(User{"berlin"}, "read", Account{"a"});
  assert_not allow(User{"weekender"}, "read", Account{"a"});
  assert allow(user: User, "read", Account{"a"}) iff user in [User{"ny"}];
}

test "the test clock drives @current_unix_time" {
  setup {
    at 1796135400;  # 2026-12-01T14:30:00Z
    grant_until(User{"tmp"}, Account{"a"}, 1796135401);
    grant_until(User{"old"}, Account{"a"}, 1796135400);
  }
  assert allow(User{"tmp"}, "read", Account{"a"});
  assert_not allow(User{"old"}, "read", Account{"a"});
}
