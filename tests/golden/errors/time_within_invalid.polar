# time_within's literal arguments are checked where they are written: a zone that does not exist, an
# unknown day, a time that is not HH:MM, and an empty window.
actor User {}

resource Account {
  permissions = ["email", "deploy", "page", "call"];

  "email" if time_within("America/New_Yrok", "mon-fri", "08:00", "17:00");
  "deploy" if time_within("Europe/Berlin", "mon-fry", "09:00", "16:00");
  "page" if time_within("UTC", "*", "9:00", "25:00");
  "call" if time_within("UTC", "*", "10:00", "10:00");
}
