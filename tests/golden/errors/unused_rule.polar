# A valid policy with a rule nothing calls: a warning, not an error (exit 0).
actor User {}

resource Repo {
  roles = ["reader"];
  permissions = ["read"];

  "read" if "reader";
}

is_reader(user: User, repo: Repo) if has_role(user, "reader", repo);
