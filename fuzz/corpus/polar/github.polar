actor User {}
actor Team { roles = ["member", "maintainer"]; relations = { parent: Team }; "member" if "maintainer"; "member" if "member" on "parent"; }
global { roles = ["admin"]; }
resource Organization {
  roles = ["member", "owner"];
  permissions = ["read", "create_repo"];
  "member" if "owner";
  "read" if "member";
  "create_repo" if "owner";
  "owner" if global "admin";
}
resource Repository {
  roles = ["reader", "writer", "admin"];
  permissions = ["read", "push", "delete"];
  relations = { organization: Organization, creator: User };
  "reader" if "member" on "organization";
  "writer" if "admin";
  "reader" if "writer";
  "read" if "reader";
  "push" if "writer";
  "delete" if "creator";
  "read" if is_public(resource) and not is_banned(actor);
}
declare is_banned(User);
test fixture org { has_role(User{"alice"}, "owner", Organization{"acme"}); has_relation(Repository{"anvil"}, "organization", Organization{"acme"}); }
test "owners read" {
  setup { fixture org; is_public(Repository{"pub"}); }
  assert allow(User{"alice"}, "read", Repository{"anvil"});
  assert_not allow(User{"bob"}, "push", Repository{"anvil"});
  assert allow(User{"alice"}, action: String, Repository{"anvil"}) iff action in ["read", "push"];
}
