# Quickstart policy: organizations own repositories. A role on an organization carries over to
# every repository the organization owns; a global "admin" may do everything; public repositories
# can be read by anyone. Run its tests with:  mandate test examples/quickstart/policy.polar

actor User {}

global {
  roles = ["admin"];
}

resource Org {
  roles = ["member", "owner"];
  permissions = ["read", "create_repo", "manage_members"];

  "read" if "member";
  "create_repo" if "member";
  "manage_members" if "owner";

  "member" if "owner";           # owners are members too
  "owner" if global "admin";     # global admins own every org
}

resource Repo {
  roles = ["reader", "maintainer"];
  permissions = ["read", "push", "delete"];
  relations = { parent: Org };   # has_relation(Repo{"anvil"}, "parent", Org{"acme"})

  "reader" if "member" on "parent";
  "maintainer" if "owner" on "parent";
  "reader" if "maintainer";

  "read" if "reader";
  "push" if "maintainer";
  "delete" if "maintainer";

  "read" if is_public(resource, true);
}

test fixture acme {
  has_role(User{"alice"}, "member", Org{"acme"});
  has_role(User{"bob"}, "owner", Org{"acme"});
  has_relation(Repo{"anvil"}, "parent", Org{"acme"});
}

test "org members read the org's repositories" {
  setup {
    fixture acme;
  }
  assert allow(User{"alice"}, "read", Repo{"anvil"});
  assert_not allow(User{"alice"}, "push", Repo{"anvil"});
  assert allow(User{"alice"}, action: String, Repo{"anvil"}) iff action in ["read"];
}

test "org owners maintain the org's repositories" {
  setup {
    fixture acme;
  }
  assert allow(User{"bob"}, action: String, Repo{"anvil"}) iff action in ["read", "push", "delete"];
  assert allow(User{"bob"}, "manage_members", Org{"acme"});
  assert_not allow(User{"alice"}, "manage_members", Org{"acme"});
}

test "roles stay inside their organization" {
  setup {
    fixture acme;
    has_relation(Repo{"widget"}, "parent", Org{"globex"});
  }
  assert_not allow(User{"alice"}, "read", Repo{"widget"});
  assert_not allow(User{"bob"}, "delete", Repo{"widget"});
}

test "global admins may do everything" {
  setup {
    has_role(User{"root"}, "admin");
    has_relation(Repo{"widget"}, "parent", Org{"globex"});
  }
  assert allow(User{"root"}, "delete", Repo{"widget"});
  assert allow(User{"root"}, "manage_members", Org{"globex"});
}

test "anyone reads a public repository, nobody else writes it" {
  setup {
    is_public(Repo{"gadget"}, true);
  }
  assert allow(User{"dave"}, "read", Repo{"gadget"});
  assert_not allow(User{"dave"}, "push", Repo{"gadget"});
}
