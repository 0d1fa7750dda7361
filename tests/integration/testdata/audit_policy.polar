# The policy of the audit integration tests: users and agents with roles on repositories.
actor User {}
actor Agent {}

resource Repo {
  roles = ["reader", "owner"];
  permissions = ["read", "delete"];

  "read" if "reader";
  "reader" if "owner";
  "delete" if "owner";
}
