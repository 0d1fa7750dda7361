# Global roles: roles a user holds everywhere, stored as the two-argument fact
# has_role(User{"root"}, "superadmin"). Resource blocks refer to them with `global "role"`.
actor User {}

global {
  roles = ["superadmin", "support", "employee"];
  permissions = ["create_org", "view_metrics"];

  "employee" if "support";
  "employee" if "superadmin";

  "create_org" if "employee";
  "view_metrics" if "superadmin";
}

resource Org {
  roles = ["member", "admin"];
  permissions = ["read", "update", "delete"];

  "member" if "admin";
  "admin" if global "superadmin";

  "read" if "member";
  "read" if global "support";
  "update" if "admin";
  "delete" if "admin";
}

resource Ticket {
  permissions = ["read", "respond", "close"];
  relations = { org: Org, opener: User };

  "read" if "opener";
  "read" if global "employee";
  "respond" if global "support";
  "close" if global "support";
  "close" if "admin" on "org";
}

test fixture staff {
  has_role(User{"root"}, "superadmin");
  has_role(User{"sue"}, "support");
  has_role(User{"ellen"}, "employee");
  has_role(User{"mo"}, "member", Org{"acme"});
  has_role(User{"ada"}, "admin", Org{"acme"});
  has_relation(Ticket{"t1"}, "org", Org{"acme"});
  has_relation(Ticket{"t1"}, "opener", User{"mo"});
}

test "global roles imply each other" {
  setup {
    fixture staff;
  }
  assert has_role(User{"root"}, "employee");
  assert has_role(User{"sue"}, "employee");
  assert_not has_role(User{"ellen"}, "support");
  assert_not has_role(User{"mo"}, "employee");
  assert has_role(user: User, "employee") iff user in [User{"root"}, User{"sue"}, User{"ellen"}];
  assert has_permission(User{"ellen"}, "create_org");
  assert has_permission(User{"root"}, "view_metrics");
  assert_not has_permission(User{"sue"}, "view_metrics");
  assert_not has_permission(User{"mo"}, "create_org");
}

test "a global role gives resource roles everywhere" {
  setup {
    fixture staff;
  }
  assert allow(User{"root"}, action: String, Org{"acme"}) iff action in ["read", "update", "delete"];
  # any org, even one with no facts at all
  assert allow(User{"root"}, "delete", Org{"unheard_of"});
  assert has_role(User{"root"}, "member", Org{"unheard_of"});
  assert allow(User{"sue"}, action: String, Org{"acme"}) iff action in ["read"];
  assert_not allow(User{"ellen"}, "read", Org{"acme"});
  assert allow(User{"ada"}, action: String, Org{"acme"}) iff action in ["read", "update", "delete"];
  assert_not allow(User{"ada"}, "read", Org{"other"});
  assert allow(User{"mo"}, action: String, Org{"acme"}) iff action in ["read"];
}

test "global roles mixed with relations" {
  setup {
    fixture staff;
  }
  assert allow(User{"mo"}, action: String, Ticket{"t1"}) iff action in ["read"];
  assert allow(User{"ellen"}, action: String, Ticket{"t1"}) iff action in ["read"];
  assert allow(User{"sue"}, action: String, Ticket{"t1"}) iff action in ["read", "respond", "close"];
  assert allow(User{"ada"}, action: String, Ticket{"t1"}) iff action in ["close"];
  # root is an employee (read) and an admin of every org (close), but not support (respond)
  assert allow(User{"root"}, action: String, Ticket{"t1"}) iff action in ["read", "close"];
  assert_not allow(User{"nobody"}, "read", Ticket{"t1"});
}
