# The shorthand names a role the block does not declare (a typo of "reader").
actor User {}

resource Repo {
  roles = ["reader", "writer"];
  permissions = ["read", "write"];

  "read" if "reeder";
  "write" if "writer";
}
