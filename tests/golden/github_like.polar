# A GitHub-like model: organizations, repositories, issues and teams.
#
# Teams are actors (they hold roles on repositories) and resources (users hold roles on them).
# A user holds every repository role their team holds. Org admins maintain every team of their org.
# Relation facts put the child first: has_relation(Repo{"anvil"}, "org", Org{"acme"}).
actor User {}

actor Team {
  roles = ["member", "maintainer"];
  permissions = ["read", "manage_members"];
  relations = { org: Org };

  "member" if "maintainer";
  "maintainer" if "admin" on "org";

  "read" if "member";
  "read" if "member" on "org";
  "manage_members" if "maintainer";
}

resource Org {
  roles = ["member", "admin"];
  permissions = ["read", "create_repo", "manage_teams"];

  "member" if "admin";

  "read" if "member";
  "create_repo" if "member";
  "manage_teams" if "admin";
}

resource Repo {
  roles = ["reader", "triager", "writer", "maintainer", "admin"];
  permissions = ["read", "triage", "push", "merge", "manage", "delete"];
  relations = { org: Org };

  "reader" if "triager";
  "triager" if "writer";
  "writer" if "maintainer";
  "maintainer" if "admin";

  "reader" if "member" on "org";
  "admin" if "admin" on "org";

  "read" if "reader";
  "triage" if "triager";
  "push" if "writer";
  "merge" if "maintainer";
  "manage" if "admin";
  "delete" if "admin";
}

resource Issue {
  permissions = ["read", "comment", "close", "edit"];
  relations = { repo: Repo, author: User };

  "read" if "reader" on "repo";
  "comment" if "reader" on "repo";
  "close" if "triager" on "repo";
  "edit" if "maintainer" on "repo";

  # a relation as the implier: has_relation(issue, "author", actor)
  "read" if "author";
  "close" if "author";
  "edit" if "author";
}

# A user holds the repository roles of every team they are a member of.
has_role(user: User, role: String, repo: Repo) if
  team matches Team and
  has_role(user, "member", team) and
  has_role(team, role, repo);

test fixture acme {
  has_role(User{"alice"}, "admin", Org{"acme"});
  has_role(User{"bob"}, "member", Org{"acme"});
  has_role(User{"carol"}, "member", Org{"acme"});
  has_role(User{"dave"}, "member", Org{"acme"});

  has_relation(Repo{"anvil"}, "org", Org{"acme"});
  has_relation(Repo{"rocket"}, "org", Org{"acme"});
  has_relation(Repo{"laser"}, "org", Org{"globex"});

  has_relation(Team{"core"}, "org", Org{"acme"});
  has_role(User{"carol"}, "maintainer", Team{"core"});
  has_role(User{"dave"}, "member", Team{"core"});
  has_role(Team{"core"}, "writer", Repo{"anvil"});

  # erin is in the docs team but not in the org
  has_relation(Team{"docs"}, "org", Org{"acme"});
  has_role(User{"erin"}, "member", Team{"docs"});
  has_role(Team{"docs"}, "triager", Repo{"rocket"});

  has_role(User{"bob"}, "maintainer", Repo{"rocket"});

  has_relation(Issue{"anvil#1"}, "repo", Repo{"anvil"});
  has_relation(Issue{"anvil#1"}, "author", User{"frank"});
}

test "org admins administer every repo of the org" {
  setup {
    fixture acme;
  }
  assert allow(User{"alice"}, action: String, Repo{"anvil"})
    iff action in ["read", "triage", "push", "merge", "manage", "delete"];
  assert allow(User{"alice"}, action: String, Repo{"rocket"})
    iff action in ["read", "triage", "push", "merge", "manage", "delete"];
  assert_not allow(User{"alice"}, "read", Repo{"laser"});
  assert allow(User{"alice"}, action: String, Org{"acme"}) iff action in ["read", "create_repo", "manage_teams"];
}

test "org members read, direct roles add more" {
  setup {
    fixture acme;
  }
  assert allow(User{"bob"}, action: String, Repo{"anvil"}) iff action in ["read"];
  assert allow(User{"bob"}, action: String, Repo{"rocket"}) iff action in ["read", "triage", "push", "merge"];
  assert_not allow(User{"bob"}, "manage", Repo{"rocket"});
  assert allow(User{"bob"}, action: String, Org{"acme"}) iff action in ["read", "create_repo"];
  assert allow(User{"bob"}, "push", repo: Repo) iff repo in [Repo{"rocket"}];
}

test "team members hold the team's repo roles" {
  setup {
    fixture acme;
  }
  assert has_role(User{"dave"}, "writer", Repo{"anvil"});
  assert allow(User{"dave"}, action: String, Repo{"anvil"}) iff action in ["read", "triage", "push"];
  # carol maintains the team, so she is a member of it
  assert allow(User{"carol"}, action: String, Repo{"anvil"}) iff action in ["read", "triage", "push"];
  assert_not allow(User{"dave"}, "merge", Repo{"anvil"});
  # erin is outside the org: only what the docs team gives her
  assert allow(User{"erin"}, action: String, Repo{"rocket"}) iff action in ["read", "triage"];
  assert_not allow(User{"erin"}, "read", Repo{"anvil"});
  assert_not allow(User{"erin"}, "read", Org{"acme"});
  assert allow(user: User, "push", Repo{"anvil"})
    iff user in [User{"alice"}, User{"carol"}, User{"dave"}];
}

test "a team itself is an actor" {
  setup {
    fixture acme;
  }
  assert allow(Team{"core"}, action: String, Repo{"anvil"}) iff action in ["read", "triage", "push"];
  assert_not allow(Team{"core"}, "read", Repo{"rocket"});
  assert has_role(Team{"core"}, "reader", Repo{"anvil"});
}

test "teams are resources too" {
  setup {
    fixture acme;
  }
  assert allow(User{"carol"}, action: String, Team{"core"}) iff action in ["read", "manage_members"];
  assert allow(User{"dave"}, action: String, Team{"core"}) iff action in ["read"];
  # org admins maintain every team of the org
  assert allow(User{"alice"}, "manage_members", Team{"docs"});
  # org members read teams of the org
  assert allow(User{"bob"}, "read", Team{"core"});
  assert_not allow(User{"bob"}, "manage_members", Team{"core"});
  assert_not allow(User{"erin"}, "read", Team{"core"});
  assert allow(User{"erin"}, "read", Team{"docs"});
}

test "issues: the author and the repository's roles" {
  setup {
    fixture acme;
  }
  assert allow(User{"frank"}, action: String, Issue{"anvil#1"}) iff action in ["read", "close", "edit"];
  assert allow(User{"dave"}, action: String, Issue{"anvil#1"}) iff action in ["read", "comment", "close"];
  assert allow(User{"bob"}, action: String, Issue{"anvil#1"}) iff action in ["read", "comment"];
  assert allow(User{"alice"}, action: String, Issue{"anvil#1"}) iff action in ["read", "comment", "close", "edit"];
  assert_not allow(User{"erin"}, "read", Issue{"anvil#1"});
  assert_not allow(User{"frank"}, "read", Repo{"anvil"});
  assert allow(user: User, "edit", Issue{"anvil#1"}) iff user in [User{"alice"}, User{"frank"}];
}

test "relation arguments: child first" {
  setup {
    fixture acme;
  }
  assert has_relation(Issue{"anvil#1"}, "repo", Repo{"anvil"});
  assert_not has_relation(Repo{"anvil"}, "repo", Issue{"anvil#1"});
  assert has_relation(repo: Repo, "org", Org{"acme"}) iff repo in [Repo{"anvil"}, Repo{"rocket"}];
}
