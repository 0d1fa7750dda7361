# Several independent errors: every one must be reported, not only the first.
actor User {}

resource Org {
  roles = ["member"];
  permissions = ["read"];

  "read" if "membr";
  "write" if "member";
}

is_member(user: Usr, org: Org) if has_role(user, "member", org);

allow(actor: User, "read", org: Org) if is_member(actor, org, "extra");

test "members read" {
  setup {
    fixture missing;
  }
  assert allow(User{"alice"}, "read", Org{"acme"});
}
