# is_member takes two arguments but is called with one.
actor User {}

resource Org {
  roles = ["member"];
  permissions = ["read"];

  "read" if is_member(actor);
}

is_member(user: User, org: Org) if has_role(user, "member", org);
