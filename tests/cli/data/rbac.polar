# CLI test policy: org roles flow to the org's documents; a global admin reads and edits everything.
actor User {}

global {
  roles = ["admin"];
}

resource Org {
  roles = ["member", "owner"];
  permissions = ["read", "invite"];

  "read" if "member";
  "invite" if "owner";
  "member" if "owner";
}

resource Doc {
  permissions = ["read", "edit"];
  relations = { org: Org };

  "read" if "member" on "org";
  "edit" if "owner" on "org";
  "read" if global "admin";
  "edit" if global "admin";
}

test "members read their org's documents" {
  setup {
    has_role(User{"alice"}, "member", Org{"acme"});
    has_relation(Doc{"plan"}, "org", Org{"acme"});
  }
  assert allow(User{"alice"}, "read", Doc{"plan"});
  assert_not allow(User{"alice"}, "edit", Doc{"plan"});
}

test "admins edit everything" {
  setup {
    has_role(User{"root"}, "admin");
  }
  assert allow(User{"root"}, "edit", Doc{"anything"});
}
