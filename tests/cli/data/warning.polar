actor User {}

resource Doc {
  roles = ["viewer"];
  permissions = ["read"];
  "read" if "viewer";
}

never_used(user: User, doc: Doc) if has_role(user, "viewer", doc);
