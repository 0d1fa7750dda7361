# The shared peer-benchmark scenario (/work/shared/bench/scenario/gen.js): its policy text verbatim,
# with hand-checked decisions taken from the generated small-scale data (users u1 and u2, and the
# repositories their generated queries ask about). Expected values match queries.jsonl.
#
# Mandate peer-benchmark scenario (scale small: 1000 users, 100 orgs, 10000 repos).
# Oso Cloud Polar dialect. Facts (facts.jsonl):
#   has_role(User{"u1"}, "admin" | "member", Org{"o1"})
#   has_role(User{"u1"}, "maintainer" | "reader", Repo{"r1"})
#   has_relation(Repo{"r1"}, "parent", Org{"o1"})
# Permissions on a repo:
#   read   <- org member | org admin | repo maintainer | repo reader
#   write  <- org admin | repo maintainer
#   delete <- org admin
actor User {}

resource Org {
  roles = ["member", "admin"];
}

resource Repo {
  roles = ["reader", "maintainer"];
  permissions = ["read", "write", "delete"];
  relations = { parent: Org };

  "read" if "reader";
  "write" if "maintainer";
  "reader" if "maintainer";
  "reader" if "member" on "parent";
  "reader" if "admin" on "parent";
  "maintainer" if "admin" on "parent";
  "delete" if "admin" on "parent";
}

# The facts of u1 and u2 in facts.jsonl (scale small, seed 12345), and the parents of the repos
# their queries and the tests below name (repo rN belongs to org o(N mod 100)).
test fixture scenario_slice {
  has_role(User{"u1"}, "admin", Org{"o1"});
  has_role(User{"u1"}, "member", Org{"o10"});
  has_role(User{"u1"}, "member", Org{"o18"});
  has_role(User{"u1"}, "maintainer", Repo{"r37"});
  has_role(User{"u1"}, "reader", Repo{"r118"});
  has_role(User{"u2"}, "admin", Org{"o2"});
  has_role(User{"u2"}, "member", Org{"o17"});
  has_role(User{"u2"}, "member", Org{"o31"});
  has_role(User{"u2"}, "maintainer", Repo{"r74"});
  has_role(User{"u2"}, "reader", Repo{"r219"});
  has_relation(Repo{"r1"}, "parent", Org{"o1"});
  has_relation(Repo{"r2"}, "parent", Org{"o2"});
  has_relation(Repo{"r10"}, "parent", Org{"o10"});
  has_relation(Repo{"r37"}, "parent", Org{"o37"});
  has_relation(Repo{"r74"}, "parent", Org{"o74"});
  has_relation(Repo{"r101"}, "parent", Org{"o1"});
  has_relation(Repo{"r118"}, "parent", Org{"o18"});
  has_relation(Repo{"r219"}, "parent", Org{"o19"});
  has_relation(Repo{"r302"}, "parent", Org{"o2"});
  has_relation(Repo{"r802"}, "parent", Org{"o2"});
  has_relation(Repo{"r1217"}, "parent", Org{"o17"});
  has_relation(Repo{"r1877"}, "parent", Org{"o77"});
  has_relation(Repo{"r3101"}, "parent", Org{"o1"});
  has_relation(Repo{"r4217"}, "parent", Org{"o17"});
  has_relation(Repo{"r4279"}, "parent", Org{"o79"});
  has_relation(Repo{"r6002"}, "parent", Org{"o2"});
  has_relation(Repo{"r6701"}, "parent", Org{"o1"});
  has_relation(Repo{"r7117"}, "parent", Org{"o17"});
  has_relation(Repo{"r7192"}, "parent", Org{"o92"});
  has_relation(Repo{"r7210"}, "parent", Org{"o10"});
  has_relation(Repo{"r7390"}, "parent", Org{"o90"});
  has_relation(Repo{"r9110"}, "parent", Org{"o10"});
}

test "generated queries of u1" {
  setup {
    fixture scenario_slice;
  }
  assert allow(User{"u1"}, "read", Repo{"r6701"});
  assert allow(User{"u1"}, "delete", Repo{"r3101"});
  assert allow(User{"u1"}, "write", Repo{"r37"});
  assert_not allow(User{"u1"}, "delete", Repo{"r7210"});
  assert allow(User{"u1"}, "read", Repo{"r1"});
  assert_not allow(User{"u1"}, "read", Repo{"r1877"});
  assert allow(User{"u1"}, "read", Repo{"r9110"});
  assert_not allow(User{"u1"}, "delete", Repo{"r37"});
}

test "generated queries of u2" {
  setup {
    fixture scenario_slice;
  }
  assert_not allow(User{"u2"}, "read", Repo{"r4279"});
  assert allow(User{"u2"}, "read", Repo{"r6002"});
  assert_not allow(User{"u2"}, "read", Repo{"r7390"});
  assert allow(User{"u2"}, "write", Repo{"r802"});
  assert_not allow(User{"u2"}, "delete", Repo{"r4217"});
  assert_not allow(User{"u2"}, "write", Repo{"r1217"});
  assert allow(User{"u2"}, "write", Repo{"r74"});
  assert_not allow(User{"u2"}, "delete", Repo{"r7192"});
  assert allow(User{"u2"}, "write", Repo{"r302"});
  assert_not allow(User{"u2"}, "write", Repo{"r7117"});
}

test "every path to each permission" {
  setup {
    fixture scenario_slice;
  }
  # org admin: everything
  assert allow(User{"u1"}, action: String, Repo{"r101"}) iff action in ["read", "write", "delete"];
  # org member: read only
  assert allow(User{"u1"}, action: String, Repo{"r10"}) iff action in ["read"];
  # repo maintainer: read and write
  assert allow(User{"u1"}, action: String, Repo{"r37"}) iff action in ["read", "write"];
  # repo reader (and org member): read
  assert allow(User{"u1"}, action: String, Repo{"r118"}) iff action in ["read"];
  # repo reader only
  assert allow(User{"u2"}, action: String, Repo{"r219"}) iff action in ["read"];
  # nothing
  assert_not allow(User{"u1"}, "read", Repo{"r2"});
  assert allow(User{"u2"}, "write", repo: Repo)
    iff repo in [Repo{"r2"}, Repo{"r74"}, Repo{"r302"}, Repo{"r802"}, Repo{"r6002"}];
  assert allow(user: User, "delete", Repo{"r3101"}) iff user in [User{"u1"}];
}
