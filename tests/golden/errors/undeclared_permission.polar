# The head of a shorthand is neither a declared role nor a declared permission.
actor User {}

resource Repo {
  roles = ["reader"];
  permissions = ["read"];

  "read" if "reader";
  "delete" if "reader";
}
