# Actors that are also resources. Actor blocks declare roles, permissions, relations and shorthand
# rules like resource blocks do (Actor extends Resource):
#  - a User is managed by the people above them in the reporting chain;
#  - an Agent (an AI agent acting as its own actor) is owned and operated by users, and holds roles
#    on datasets itself.
actor User {
  roles = ["manager"];
  permissions = ["view_profile", "approve_expenses"];
  relations = { reports_to: User };

  # your direct boss manages you, and so does everyone who manages your boss
  "manager" if "reports_to";
  "manager" if "manager" on "reports_to";

  "view_profile" if "manager";
  "view_profile" if actor = resource;
  "approve_expenses" if "manager";
}

actor Agent {
  roles = ["operator", "owner"];
  permissions = ["run", "configure", "delete"];

  "operator" if "owner";

  "run" if "operator";
  "configure" if "owner";
  "delete" if "owner";
}

resource Dataset {
  roles = ["reader"];
  permissions = ["read"];

  "read" if "reader";
}

test fixture org_chart {
  # ic -> lead -> director -> ceo
  has_relation(User{"ic"}, "reports_to", User{"lead"});
  has_relation(User{"lead"}, "reports_to", User{"director"});
  has_relation(User{"director"}, "reports_to", User{"ceo"});
  has_relation(User{"peer"}, "reports_to", User{"lead"});
}

test "managers up the chain" {
  setup {
    fixture org_chart;
  }
  assert has_role(User{"lead"}, "manager", User{"ic"});
  assert has_role(User{"ceo"}, "manager", User{"ic"});
  assert has_role(user: User, "manager", User{"ic"})
    iff user in [User{"lead"}, User{"director"}, User{"ceo"}];
  assert has_role(User{"lead"}, "manager", report: User) iff report in [User{"ic"}, User{"peer"}];
  assert_not has_role(User{"ic"}, "manager", User{"lead"});
  assert_not has_role(User{"peer"}, "manager", User{"ic"});
  assert allow(User{"director"}, action: String, User{"ic"}) iff action in ["view_profile", "approve_expenses"];
  assert_not allow(User{"ic"}, "approve_expenses", User{"ic"});
  assert_not allow(User{"peer"}, "view_profile", User{"ic"});
}

test "everyone views their own profile" {
  setup {
    fixture org_chart;
  }
  assert allow(User{"ic"}, action: String, User{"ic"}) iff action in ["view_profile"];
  assert allow(User{"someone"}, "view_profile", User{"someone"});
  assert_not allow(User{"someone"}, "view_profile", User{"else"});
  assert allow(user: User, "view_profile", User{"lead"}) iff user in [User{"lead"}, User{"director"}, User{"ceo"}];
}

test "agents are resources of their owners and actors on their own" {
  setup {
    has_role(User{"ann"}, "owner", Agent{"bot"});
    has_role(User{"otto"}, "operator", Agent{"bot"});
    has_role(Agent{"bot"}, "reader", Dataset{"sales"});
  }
  assert allow(User{"ann"}, action: String, Agent{"bot"}) iff action in ["run", "configure", "delete"];
  assert allow(User{"otto"}, action: String, Agent{"bot"}) iff action in ["run"];
  assert_not allow(User{"otto"}, "configure", Agent{"bot"});
  assert allow(Agent{"bot"}, "read", Dataset{"sales"});
  assert_not allow(Agent{"bot"}, "read", Dataset{"hr"});
  # the owner of an agent gets nothing of what the agent holds
  assert_not allow(User{"ann"}, "read", Dataset{"sales"});
  assert allow(actor: Agent, "read", Dataset{"sales"}) iff actor in [Agent{"bot"}];
}
