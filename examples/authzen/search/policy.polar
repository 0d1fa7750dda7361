# The AuthZEN interop "search" scenario (subject, resource and action search) and the IdP scenario
# (which records may a user delete): six people in four departments, twenty records.
#   view    the owner, every member of the record's department, and every manager
#   edit    the owner, and the manager of the record's department
#   delete  the owner
# Serve it with:  mandate serve --policy policy.polar --facts facts.jsonl
# AuthZEN types map onto these by name, ignoring case: "user" -> User, "record" -> Record.

actor User {}

resource Department {
  roles = ["member", "manager", "employee", "contractor"];

  "member" if "manager";
  "member" if "employee";
  "member" if "contractor";
}

# Facts (facts.jsonl):
#   has_role(User{id}, role, Department{name})           the directory: role and department
#   has_relation(Record{id}, "owner", User{id})
#   has_relation(Record{id}, "department", Department{name})
resource Record {
  permissions = ["view", "edit", "delete"];
  relations = { owner: User, department: Department };

  "view" if "owner";
  "edit" if "owner";
  "delete" if "owner";
  "view" if "member" on "department";
  "edit" if "manager" on "department";
  "view" if is_manager(actor) and in_some_department(resource);
}

is_manager(user: User) if department matches Department and has_role(user, "manager", department);

# Every record belongs to a department. Naming it keeps "which records may a manager view?" a list
# of records rather than "every Record that could ever exist".
in_some_department(record: Record) if
  department matches Department and has_relation(record, "department", department);

test fixture company {
  has_role(User{"alice"}, "manager", Department{"Sales"});
  has_role(User{"bob"}, "employee", Department{"Legal"});
  has_role(User{"carol"}, "contractor", Department{"Legal"});
  has_relation(Record{"1"}, "owner", User{"bob"});
  has_relation(Record{"1"}, "department", Department{"Legal"});
  has_relation(Record{"2"}, "owner", User{"carol"});
  has_relation(Record{"2"}, "department", Department{"Sales"});
}

test "owners do everything, their department views, managers view all" {
  setup {
    fixture company;
  }
  assert allow(User{"bob"}, action: String, Record{"1"}) iff action in ["view", "edit", "delete"];
  assert allow(User{"carol"}, action: String, Record{"1"}) iff action in ["view"];
  assert allow(user: User, "view", Record{"1"}) iff user in [User{"alice"}, User{"bob"}, User{"carol"}];
}

test "managers edit their department's records, and delete only their own" {
  setup {
    fixture company;
  }
  assert allow(User{"alice"}, action: String, Record{"2"}) iff action in ["view", "edit"];
  assert allow(User{"alice"}, "edit", record: Record) iff record in [Record{"2"}];
  assert allow(user: User, "delete", Record{"2"}) iff user in [User{"carol"}];
}
