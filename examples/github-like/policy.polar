# A GitHub-like authorization model: organizations, teams, repositories and issues.
#
#  - Org members read the org's repositories; org admins administer them.
#  - Teams belong to an org and hold roles on repositories; their members hold those roles too.
#  - Public repositories are readable by anyone; archived ones accept no pushes.
#  - Issue authors may edit and close their issues; triagers close any issue of the repository.
#
# Facts (see facts.jsonl) put the child first: has_relation(Repo{"anvil"}, "org", Org{"acme"}).
actor User {}

actor Team {
  roles = ["member", "maintainer"];
  permissions = ["read", "manage_members"];
  relations = { org: Org };

  "member" if "maintainer";
  "maintainer" if "admin" on "org";
  "read" if "member" on "org";
  "manage_members" if "maintainer";
}

resource Org {
  roles = ["member", "admin"];
  permissions = ["read", "create_repo", "manage"];

  "member" if "admin";
  "read" if "member";
  "create_repo" if "member";
  "manage" if "admin";
}

resource Repo {
  roles = ["reader", "triager", "writer", "admin"];
  permissions = ["read", "triage", "push", "manage", "delete"];
  relations = { org: Org };

  "reader" if "triager";
  "triager" if "writer";
  "writer" if "admin";
  "reader" if "member" on "org";
  "admin" if "admin" on "org";

  "read" if "reader";
  "read" if is_public(resource, true);
  "triage" if "triager";
  "push" if has_role(actor, "writer", resource) and not is_archived(resource, true);
  "manage" if "admin";
  "delete" if "admin";
}

resource Issue {
  permissions = ["read", "comment", "edit", "close"];
  relations = { repo: Repo, author: User };

  "read" if "read" on "repo";
  "comment" if "read" on "repo";
  "close" if "triage" on "repo";
  "edit" if "author";
  "close" if "author";
}

# Members of a team hold the team's repository roles.
has_role(user: User, role: String, repo: Repo) if
  team matches Team and
  has_role(user, "member", team) and
  has_role(team, role, repo);

test fixture acme {
  has_role(User{"alice"}, "admin", Org{"acme"});
  has_role(User{"bob"}, "member", Org{"acme"});
  has_relation(Repo{"anvil"}, "org", Org{"acme"});
  has_relation(Repo{"rocket"}, "org", Org{"acme"});
  has_relation(Team{"backend"}, "org", Org{"acme"});
  has_role(User{"carol"}, "member", Team{"backend"});
  has_role(Team{"backend"}, "writer", Repo{"anvil"});
}

test "org roles reach every repository" {
  setup {
    fixture acme;
  }
  assert allow(User{"alice"}, action: String, Repo{"rocket"}) iff action in ["read", "triage", "push", "manage", "delete"];
  assert allow(User{"bob"}, action: String, Repo{"rocket"}) iff action in ["read"];
  assert_not allow(User{"eve"}, "read", Repo{"rocket"});
}

test "teams grant their roles to members" {
  setup {
    fixture acme;
  }
  assert allow(User{"carol"}, action: String, Repo{"anvil"}) iff action in ["read", "triage", "push"];
  assert_not allow(User{"carol"}, "read", Repo{"rocket"});
  assert allow(User{"alice"}, "manage_members", Team{"backend"});
  assert allow(User{"bob"}, action: String, Team{"backend"}) iff action in ["read"];
}

test "public and archived repositories" {
  setup {
    fixture acme;
    is_public(Repo{"website"}, true);
    is_archived(Repo{"anvil"}, true);
  }
  assert allow(User{"eve"}, "read", Repo{"website"});
  assert_not allow(User{"eve"}, "push", Repo{"website"});
  assert_not allow(User{"carol"}, "push", Repo{"anvil"});
  assert allow(User{"carol"}, "triage", Repo{"anvil"});
}

test "issues" {
  setup {
    fixture acme;
    has_relation(Issue{"anvil-1"}, "repo", Repo{"anvil"});
    has_relation(Issue{"anvil-1"}, "author", User{"bob"});
  }
  assert allow(User{"bob"}, action: String, Issue{"anvil-1"}) iff action in ["read", "comment", "edit", "close"];
  assert allow(User{"carol"}, action: String, Issue{"anvil-1"}) iff action in ["read", "comment", "close"];
  assert allow(user: User, "edit", Issue{"anvil-1"}) iff user in [User{"bob"}];
}
