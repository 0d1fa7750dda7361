# Attributes and negation: public repositories (is_public(repo, true)), archived repositories that
# stop accepting writes (not is_archived(repo, true)), and banned users who lose everything
# (not is_banned(user)). Negation only checks that a fact is absent, so `is_public(repo, false)`
# is simply not `is_public(repo, true)`.
actor User {}

resource Org {
  roles = ["member", "admin"];
  "member" if "admin";
}

resource Repo {
  roles = ["reader", "writer"];
  permissions = ["read", "push", "star", "delete"];
  relations = { org: Org };

  "reader" if "writer";
  "reader" if "member" on "org";

  "read" if "reader";
  "read" if is_public(resource, true);
  # a permission implied by a permission
  "star" if "read";
  # writes stop once the repository is archived
  "push" if has_role(actor, "writer", resource) and not is_archived(resource, true);
  # a body with its own variable: an admin of the repository's org
  "delete" if has_relation(resource, "org", org) and has_role(actor, "admin", org);
}

# Banned users may do nothing, whatever their roles. Defining allow replaces the implicit one.
allow(actor: User, action: String, resource: Resource) if
  has_permission(actor, action, resource) and
  not is_banned(actor);

test fixture repos {
  has_role(User{"amy"}, "admin", Org{"acme"});
  has_role(User{"wes"}, "writer", Repo{"anvil"});
  has_role(User{"wes"}, "writer", Repo{"attic"});
  has_role(User{"mallory"}, "writer", Repo{"anvil"});
  has_relation(Repo{"anvil"}, "org", Org{"acme"});
  has_relation(Repo{"attic"}, "org", Org{"acme"});
  is_archived(Repo{"attic"}, true);
  is_archived(Repo{"anvil"}, false);
  is_public(Repo{"docs"}, true);
  is_public(Repo{"anvil"}, false);
}

test "public repositories are readable by anyone" {
  setup {
    fixture repos;
  }
  assert allow(User{"stranger"}, action: String, Repo{"docs"}) iff action in ["read", "star"];
  assert allow(User{"stranger"}, "read", repo: Repo) iff repo in [Repo{"docs"}];
  # is_public(anvil, false) is not is_public(anvil, true)
  assert_not allow(User{"stranger"}, "read", Repo{"anvil"});
  assert_not allow(User{"stranger"}, "push", Repo{"docs"});
}

test "archived repositories refuse pushes" {
  setup {
    fixture repos;
  }
  assert allow(User{"wes"}, action: String, Repo{"anvil"}) iff action in ["read", "star", "push"];
  assert allow(User{"wes"}, action: String, Repo{"attic"}) iff action in ["read", "star"];
  assert allow(User{"wes"}, "push", repo: Repo) iff repo in [Repo{"anvil"}];
  # an admin of the org still reads and deletes an archived repository
  assert allow(User{"amy"}, action: String, Repo{"attic"}) iff action in ["read", "star", "delete"];
}

test "banned users lose everything" {
  setup {
    fixture repos;
    is_banned(User{"mallory"});
  }
  assert allow(User{"wes"}, "push", Repo{"anvil"});
  assert_not allow(User{"mallory"}, "read", Repo{"anvil"});
  assert_not allow(User{"mallory"}, "push", Repo{"anvil"});
  # even public repositories
  assert_not allow(User{"mallory"}, "read", Repo{"docs"});
  # the permission is still there; only allow refuses
  assert has_permission(User{"mallory"}, "push", Repo{"anvil"});
  assert allow(user: User, "push", Repo{"anvil"}) iff user in [User{"wes"}];
}

test "a ban is only a ban when the fact exists" {
  setup {
    fixture repos;
  }
  assert allow(User{"mallory"}, action: String, Repo{"anvil"}) iff action in ["read", "star", "push"];
  assert allow(user: User, "push", Repo{"anvil"}) iff user in [User{"wes"}, User{"mallory"}];
}
