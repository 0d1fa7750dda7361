# `org` appears only under `not`: the negation has no value to check.
actor User {}

resource Repo {
  roles = ["reader"];
  permissions = ["read"];

  "read" if "reader";
}

allow(actor: User, action: String, repo: Repo) if
  has_permission(actor, action, repo) and
  not has_role(actor, "banned", org);
