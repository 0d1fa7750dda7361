# The test uses fixture "acm", but the fixture is called "acme".
actor User {}

resource Org {
  roles = ["member"];
  permissions = ["read"];

  "read" if "member";
}

test fixture acme {
  has_role(User{"alice"}, "member", Org{"acme"});
}

test "members read" {
  setup {
    fixture acm;
  }
  assert allow(User{"alice"}, "read", Org{"acme"});
}
