# Wildcards. A typed `_` in a rule head matches any value of that type, so the rule holds for
# values no fact mentions: every User may read every Announcement, and every User may read every
# public Repo. A `list` over such a rule is unbounded (the engine reports a wildcard); the tests
# below ask about fresh ids and use `iff` over the bounded variables.
actor User {}
actor Bot {}

resource Announcement {
  roles = ["editor"];
  permissions = ["read", "publish"];

  "publish" if "editor";
}

resource Repo {
  roles = ["reader"];
  permissions = ["read", "fork"];

  "read" if "reader";
  "fork" if "read";
}

has_permission(_: User, "read", _: Announcement);

has_permission(_: User, "read", repo: Repo) if is_public(repo, true);

test "a typed wildcard holds for every value of its type" {
  assert allow(User{"anyone"}, "read", Announcement{"launch"});
  assert allow(User{"anyone"}, action: String, Announcement{"launch"}) iff action in ["read"];
  assert has_permission(User{"x"}, "read", Announcement{"y"});
  assert_not allow(User{"anyone"}, "publish", Announcement{"launch"});
  # some user may read it: the answer is the wildcard, any User
  assert allow(user: User, "read", Announcement{"launch"});
  assert_not allow(bot: Bot, "read", Announcement{"launch"});
}

test "a typed wildcard does not match other types" {
  assert_not allow(Bot{"crawler"}, "read", Announcement{"launch"});
  assert_not allow(User{"anyone"}, "read", Repo{"launch"});
}

test "wildcard rules combine with roles" {
  setup {
    has_role(User{"ed"}, "editor", Announcement{"launch"});
  }
  assert allow(User{"ed"}, action: String, Announcement{"launch"}) iff action in ["read", "publish"];
  assert allow(User{"ed"}, action: String, Announcement{"other"}) iff action in ["read"];
}

test "a wildcard actor with a bound resource condition" {
  setup {
    is_public(Repo{"pub1"}, true);
    is_public(Repo{"pub2"}, true);
    is_public(Repo{"priv"}, false);
    has_role(User{"rob"}, "reader", Repo{"priv"});
  }
  assert allow(User{"anyone"}, "read", repo: Repo) iff repo in [Repo{"pub1"}, Repo{"pub2"}];
  assert allow(User{"anyone"}, action: String, Repo{"pub1"}) iff action in ["read", "fork"];
  assert_not allow(User{"anyone"}, "read", Repo{"priv"});
  assert allow(User{"rob"}, "fork", repo: Repo) iff repo in [Repo{"pub1"}, Repo{"pub2"}, Repo{"priv"}];
  assert_not allow(Bot{"crawler"}, "read", Repo{"pub1"});
}
