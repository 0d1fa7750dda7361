# Organization RBAC with role inheritance.
#
# Org roles form a ladder: owner > admin > member > guest, each role including the ones below it.
# Repositories belong to an org (has_relation(Repo, "org", Org), child first) and take roles from it:
# org members read every repo, org admins administer every repo.
actor User {}

resource Org {
  roles = ["guest", "member", "admin", "owner"];
  permissions = ["read", "create_repo", "invite", "manage_billing", "delete"];

  "guest" if "member";
  "member" if "admin";
  "admin" if "owner";

  "read" if "guest";
  "create_repo" if "member";
  "invite" if "admin";
  "manage_billing" if "owner";
  "delete" if "owner";
}

resource Repo {
  roles = ["reader", "writer", "admin"];
  permissions = ["read", "push", "delete"];
  relations = { org: Org };

  "reader" if "writer";
  "writer" if "admin";
  "reader" if "member" on "org";
  "admin" if "admin" on "org";

  "read" if "reader";
  "push" if "writer";
  "delete" if "admin";
}

test fixture acme {
  has_role(User{"olivia"}, "owner", Org{"acme"});
  has_role(User{"adam"}, "admin", Org{"acme"});
  has_role(User{"mia"}, "member", Org{"acme"});
  has_role(User{"gus"}, "guest", Org{"acme"});
  has_relation(Repo{"anvil"}, "org", Org{"acme"});
}

test fixture globex {
  has_role(User{"gina"}, "owner", Org{"globex"});
  has_relation(Repo{"laser"}, "org", Org{"globex"});
}

test "each org role includes the roles below it" {
  setup {
    fixture acme;
  }
  assert allow(User{"olivia"}, action: String, Org{"acme"})
    iff action in ["read", "create_repo", "invite", "manage_billing", "delete"];
  assert allow(User{"adam"}, action: String, Org{"acme"}) iff action in ["read", "create_repo", "invite"];
  assert allow(User{"mia"}, action: String, Org{"acme"}) iff action in ["read", "create_repo"];
  assert allow(User{"gus"}, action: String, Org{"acme"}) iff action in ["read"];
  assert has_role(User{"olivia"}, "guest", Org{"acme"});
  assert has_role(User{"adam"}, "member", Org{"acme"});
  assert_not has_role(User{"mia"}, "admin", Org{"acme"});
  assert_not has_role(User{"gus"}, "member", Org{"acme"});
  assert_not allow(User{"adam"}, "manage_billing", Org{"acme"});
  assert_not allow(User{"nobody"}, "read", Org{"acme"});
}

test "who may do what, as sets of users" {
  setup {
    fixture acme;
  }
  assert allow(user: User, "invite", Org{"acme"}) iff user in [User{"olivia"}, User{"adam"}];
  assert allow(user: User, "read", Org{"acme"})
    iff user in [User{"olivia"}, User{"adam"}, User{"mia"}, User{"gus"}];
  assert has_role(user: User, "owner", Org{"acme"}) iff user in [User{"olivia"}];
}

test "roles stay inside their org" {
  setup {
    fixture acme;
    fixture globex;
  }
  assert allow(User{"olivia"}, "delete", Org{"acme"});
  assert_not allow(User{"olivia"}, "read", Org{"globex"});
  assert_not allow(User{"gina"}, "read", Org{"acme"});
  assert_not allow(User{"olivia"}, "read", Repo{"laser"});
  assert allow(User{"gina"}, action: String, Repo{"laser"}) iff action in ["read", "push", "delete"];
  assert allow(User{"gina"}, "read", org: Org) iff org in [Org{"globex"}];
}

test "repositories take roles from their org" {
  setup {
    fixture acme;
    has_role(User{"rita"}, "writer", Repo{"anvil"});
    has_relation(Repo{"orphan"}, "org", Org{"nowhere"});
  }
  assert allow(User{"olivia"}, action: String, Repo{"anvil"}) iff action in ["read", "push", "delete"];
  assert allow(User{"adam"}, action: String, Repo{"anvil"}) iff action in ["read", "push", "delete"];
  assert allow(User{"mia"}, action: String, Repo{"anvil"}) iff action in ["read"];
  assert allow(User{"rita"}, action: String, Repo{"anvil"}) iff action in ["read", "push"];
  # a guest of the org is not a member, so gets nothing on its repos
  assert_not allow(User{"gus"}, "read", Repo{"anvil"});
  # a direct repo role gives nothing on the org
  assert_not allow(User{"rita"}, "read", Org{"acme"});
  # a repo of another org (with no members) is closed to acme's owner
  assert_not allow(User{"olivia"}, "read", Repo{"orphan"});
  assert allow(user: User, "push", Repo{"anvil"}) iff user in [User{"olivia"}, User{"adam"}, User{"rita"}];
}

test "the relation fact puts the child first" {
  setup {
    fixture acme;
  }
  assert has_relation(Repo{"anvil"}, "org", Org{"acme"});
  assert_not has_relation(Org{"acme"}, "org", Repo{"anvil"});
  assert has_relation(Repo{"anvil"}, "org", org: Org) iff org in [Org{"acme"}];
}
