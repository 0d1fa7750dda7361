# A policy whose second test has a wrong expectation (members cannot edit).
actor User {}

resource Doc {
  roles = ["viewer"];
  permissions = ["read", "edit"];
  "read" if "viewer";
}

test "viewers read" {
  setup {
    has_role(User{"alice"}, "viewer", Doc{"plan"});
  }
  assert allow(User{"alice"}, "read", Doc{"plan"});
}

test "viewers edit" {
  setup {
    has_role(User{"alice"}, "viewer", Doc{"plan"});
  }
  assert allow(User{"alice"}, "read", Doc{"plan"});
  assert allow(User{"alice"}, "edit", Doc{"plan"});
}
