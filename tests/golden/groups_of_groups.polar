# Groups of groups. Facts has_group(member, group) put a user or a group into a group; a role held
# by a group holds for everyone in it, directly or through any chain of nested groups.
#
# Two recursive formulations, both LEFT-recursive (the recursive call comes first), which a naive
# top-down evaluator would loop on:
#  - has_group(user, group) for users, as in Oso's gitcloud sample: a rule with the same name as the
#    stored facts;
#  - in_group(actor, group) for any actor, users and groups alike.
actor User {}
actor Group {}

resource Project {
  roles = ["viewer", "maintainer"];
  permissions = ["view", "deploy"];

  "viewer" if "maintainer";
  "view" if "viewer";
  "deploy" if "maintainer";
}

has_group(user: User, group: Group) if
  g matches Group and
  has_group(user, g) and
  has_group(g, group);

in_group(actor: Actor, group: Group) if has_group(actor, group);
in_group(actor: Actor, group: Group) if
  in_group(actor, mid) and
  has_group(mid, group);

has_role(user: User, role: String, project: Project) if
  group matches Group and
  has_group(user, group) and
  has_role(group, role, project);

# eng is inside rnd, rnd is inside company.
test fixture company {
  has_group(Group{"eng"}, Group{"rnd"});
  has_group(Group{"rnd"}, Group{"company"});
  has_group(User{"alice"}, Group{"eng"});
  has_group(User{"bob"}, Group{"rnd"});
  has_group(User{"carol"}, Group{"company"});
  has_role(Group{"company"}, "viewer", Project{"wiki"});
  has_role(Group{"rnd"}, "maintainer", Project{"api"});
  has_role(Group{"eng"}, "maintainer", Project{"web"});
}

test "memberships are transitive" {
  setup {
    fixture company;
  }
  assert has_group(User{"alice"}, Group{"company"});
  assert has_group(User{"alice"}, group: Group) iff group in [Group{"eng"}, Group{"rnd"}, Group{"company"}];
  assert has_group(User{"bob"}, group: Group) iff group in [Group{"rnd"}, Group{"company"}];
  assert_not has_group(User{"carol"}, Group{"eng"});
  assert_not has_group(User{"bob"}, Group{"eng"});
  assert has_group(user: User, Group{"rnd"}) iff user in [User{"alice"}, User{"bob"}];
}

test "the left-recursive in_group agrees, and works for groups too" {
  setup {
    fixture company;
  }
  assert in_group(User{"alice"}, group: Group) iff group in [Group{"eng"}, Group{"rnd"}, Group{"company"}];
  assert in_group(Group{"eng"}, group: Group) iff group in [Group{"rnd"}, Group{"company"}];
  assert in_group(member: Group, Group{"company"}) iff member in [Group{"eng"}, Group{"rnd"}];
  assert_not in_group(Group{"company"}, Group{"eng"});
  assert_not in_group(User{"zed"}, Group{"company"});
}

test "roles held by a group reach nested members" {
  setup {
    fixture company;
  }
  assert allow(User{"alice"}, action: String, Project{"api"}) iff action in ["view", "deploy"];
  assert allow(User{"alice"}, "deploy", Project{"web"});
  assert allow(User{"alice"}, "view", Project{"wiki"});
  assert allow(User{"bob"}, "deploy", Project{"api"});
  assert_not allow(User{"bob"}, "view", Project{"web"});
  assert allow(User{"carol"}, action: String, Project{"wiki"}) iff action in ["view"];
  assert_not allow(User{"carol"}, "view", Project{"api"});
  assert allow(user: User, "deploy", Project{"api"}) iff user in [User{"alice"}, User{"bob"}];
  assert allow(User{"bob"}, "view", project: Project) iff project in [Project{"wiki"}, Project{"api"}];
}

test "cyclic group data terminates" {
  setup {
    has_group(Group{"a"}, Group{"b"});
    has_group(Group{"b"}, Group{"a"});
    has_group(User{"dan"}, Group{"a"});
    has_role(Group{"b"}, "viewer", Project{"wiki"});
  }
  assert in_group(User{"dan"}, group: Group) iff group in [Group{"a"}, Group{"b"}];
  assert has_group(User{"dan"}, group: Group) iff group in [Group{"a"}, Group{"b"}];
  assert in_group(Group{"a"}, Group{"a"});
  assert allow(User{"dan"}, "view", Project{"wiki"});
  assert_not allow(User{"dan"}, "deploy", Project{"wiki"});
  assert_not in_group(User{"zed"}, Group{"a"});
  assert_not allow(User{"zed"}, "view", Project{"wiki"});
}
