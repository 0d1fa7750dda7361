# The policy the integration tests serve: organizations with members and admins, repositories
# inside organizations, and public repositories.
actor User {}

resource Org {
  roles = ["member", "admin"];
  permissions = ["read", "manage"];

  "read" if "member";
  "manage" if "admin";
  "member" if "admin";
}

resource Repo {
  roles = ["reader", "writer"];
  permissions = ["read", "push"];
  relations = { parent: Org };

  "read" if "reader";
  "push" if "writer";
  "reader" if "writer";
  "reader" if "member" on "parent";
  "read" if is_public(resource, true);
}

declare audit_tag(Repo, String);

test "members of an org read its repositories" {
  setup {
    has_role(User{"alice"}, "member", Org{"acme"});
    has_relation(Repo{"anvil"}, "parent", Org{"acme"});
  }
  assert allow(User{"alice"}, "read", Repo{"anvil"});
  assert_not allow(User{"alice"}, "push", Repo{"anvil"});
}
