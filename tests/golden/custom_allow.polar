# A custom allow rule. Oso Cloud supplies
#   allow(actor, action, resource) if has_permission(actor, action, resource);
# only while the policy defines no allow rule of its own. This policy defines two, so the implicit
# rule is gone: has_permission alone no longer allows, and a resource type that no allow rule
# covers (Report) is closed even where has_permission holds.
#
# The rules: only verified users act on accounts, and support staff may view an account while
# impersonating a user who may view it (the pattern from Oso's impersonation guide).
actor User {}

resource Account {
  roles = ["viewer", "owner"];
  permissions = ["view", "transfer"];

  "viewer" if "owner";
  "view" if "viewer";
  "transfer" if "owner";
}

resource Report {
  roles = ["reader"];
  permissions = ["read"];

  "read" if "reader";
}

allow(user: User, action: String, account: Account) if
  has_permission(user, action, account) and
  is_verified(user, true);

allow(support: User, "view", account: Account) if
  target matches User and
  is_impersonating(support, target) and
  has_permission(target, "view", account);

test fixture accounts {
  has_role(User{"vera"}, "owner", Account{"savings"});
  is_verified(User{"vera"}, true);
  has_role(User{"uma"}, "owner", Account{"checking"});
  is_verified(User{"uma"}, false);
  has_role(User{"vera"}, "reader", Report{"q1"});
}

test "has_permission alone no longer allows" {
  setup {
    fixture accounts;
  }
  assert has_permission(User{"uma"}, "transfer", Account{"checking"});
  assert_not allow(User{"uma"}, "transfer", Account{"checking"});
  assert_not allow(User{"uma"}, "view", Account{"checking"});
  # no allow rule covers reports
  assert has_permission(User{"vera"}, "read", Report{"q1"});
  assert_not allow(User{"vera"}, "read", Report{"q1"});
}

test "verified users act on their accounts" {
  setup {
    fixture accounts;
  }
  assert allow(User{"vera"}, action: String, Account{"savings"}) iff action in ["view", "transfer"];
  assert_not allow(User{"vera"}, "view", Account{"checking"});
  assert allow(user: User, "transfer", Account{"savings"}) iff user in [User{"vera"}];
}

test "impersonation gives view, never transfer" {
  setup {
    fixture accounts;
    is_impersonating(User{"sam"}, User{"vera"});
    is_impersonating(User{"sid"}, User{"uma"});
  }
  assert allow(User{"sam"}, action: String, Account{"savings"}) iff action in ["view"];
  assert_not allow(User{"sam"}, "view", Account{"checking"});
  # impersonating an unverified owner still shows the account: the rule checks the target's
  # permission, not the target's allow
  assert allow(User{"sid"}, "view", Account{"checking"});
  assert_not allow(User{"sid"}, "transfer", Account{"checking"});
  assert allow(User{"sam"}, "view", account: Account) iff account in [Account{"savings"}];
}
