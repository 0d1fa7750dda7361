# Two syntax errors in separate items: the parser recovers and reports both.
actor User {}

resource Org {
  roles = ["member" "admin"];
}

resource Repo {
  permissions = ["read"];
}

is_admin(user: User, org: Org) if has_role(user, "admin", org) and;
