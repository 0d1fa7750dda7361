# A grant that holds until a Unix time: exercises --now and integer context facts.
actor User {}

resource Doc {
  permissions = ["read"];
}

has_permission(user: User, "read", doc: Doc) if
  until matches Integer and grant_until(user, doc, until) and @current_unix_time < until;
