actor User {}

resource Repo {
  roles = ["reader"];
  permissions = ["read", "push"];
  "read" if "reader";
}

test "readers can push (wrong on purpose)" {
  setup {
    has_role(User{"bob"}, "reader", Repo{"anvil"});
  }
  assert allow(User{"bob"}, "read", Repo{"anvil"});
  assert allow(User{"bob"}, "push", Repo{"anvil"});
}
