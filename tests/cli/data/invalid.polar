actor User {}

resource Doc {
  roles = ["viewer"];
  permissions = ["read"];
  "read" if "editor";
  "read" if "owner" on "folder";
}
