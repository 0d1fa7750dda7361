# Time-bound access with @current_unix_time (seconds since the epoch, read once per query).
#
# has_role_with_expiry(user, role, repo, expires_at) grants a role until expires_at; posts become
# readable once their publish time has passed. The tests use times far in the past (2000-01-01,
# 946684800) and the future (2100-01-01, 4102444800) so they hold whenever they run.
actor User {}

resource Repo {
  roles = ["reader", "writer"];
  permissions = ["read", "write"];

  "reader" if "writer";
  "read" if "reader";
  "write" if "writer";
}

has_role(actor: Actor, role: String, repo: Repo) if
  expiration matches Integer and
  has_role_with_expiry(actor, role, repo, expiration) and
  expiration > @current_unix_time;

resource Post {
  roles = ["author"];
  permissions = ["read", "edit"];

  "edit" if "author";
  "read" if "author";
  "read" if published matches Integer and published_at(resource, published) and published <= @current_unix_time;
}

test "grants expire" {
  setup {
    has_role_with_expiry(User{"temp"}, "writer", Repo{"anvil"}, 4102444800);
    has_role_with_expiry(User{"former"}, "writer", Repo{"anvil"}, 946684800);
    has_role_with_expiry(User{"epoch"}, "reader", Repo{"anvil"}, 0);
    has_role_with_expiry(User{"negative"}, "reader", Repo{"anvil"}, -1);
    has_role(User{"perm"}, "reader", Repo{"anvil"});
  }
  assert allow(User{"temp"}, action: String, Repo{"anvil"}) iff action in ["read", "write"];
  assert has_role(User{"temp"}, "writer", Repo{"anvil"});
  assert_not allow(User{"former"}, "read", Repo{"anvil"});
  assert_not has_role(User{"former"}, "writer", Repo{"anvil"});
  assert_not allow(User{"epoch"}, "read", Repo{"anvil"});
  assert_not allow(User{"negative"}, "read", Repo{"anvil"});
  # an ordinary grant does not expire
  assert allow(User{"perm"}, action: String, Repo{"anvil"}) iff action in ["read"];
  assert allow(user: User, "read", Repo{"anvil"}) iff user in [User{"temp"}, User{"perm"}];
  # the expiry data itself stays queryable
  assert has_role_with_expiry(User{"former"}, "writer", Repo{"anvil"}, 946684800);
}

test "a grant is per repository" {
  setup {
    has_role_with_expiry(User{"temp"}, "writer", Repo{"anvil"}, 4102444800);
    has_role_with_expiry(User{"temp"}, "reader", Repo{"rocket"}, 946684800);
  }
  assert allow(User{"temp"}, "write", repo: Repo) iff repo in [Repo{"anvil"}];
  assert allow(User{"temp"}, "read", repo: Repo) iff repo in [Repo{"anvil"}];
  assert_not allow(User{"temp"}, "read", Repo{"rocket"});
}

test "posts appear once published" {
  setup {
    published_at(Post{"old"}, 946684800);
    published_at(Post{"scheduled"}, 4102444800);
    has_role(User{"writer"}, "author", Post{"scheduled"});
  }
  assert allow(User{"reader"}, "read", Post{"old"});
  assert_not allow(User{"reader"}, "read", Post{"scheduled"});
  assert allow(User{"writer"}, action: String, Post{"scheduled"}) iff action in ["read", "edit"];
  assert allow(User{"reader"}, "read", post: Post) iff post in [Post{"old"}];
  assert_not allow(User{"reader"}, "edit", Post{"old"});
}
