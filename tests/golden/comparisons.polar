# Comparisons (=, !=, <, <=, >, >=), `or`, and parentheses, in a document-review workflow:
#  - read: the reader's clearance is at least the document's classification;
#  - approve: a reviewer who is not the author (no self-approval);
#  - edit: (the author or an owner) and only while in draft (stage below 2);
#  - archive: an owner, or anyone with clearance exactly 5 (`and` binds tighter than `or`).
actor User {}

resource Document {
  roles = ["reviewer", "owner"];
  permissions = ["read", "approve", "edit", "archive"];
  relations = { author: User };

  "read" if
    level matches Integer and needed matches Integer and
    clearance(actor, level) and classification(resource, needed) and level >= needed;

  "approve" if
    has_role(actor, "reviewer", resource) and
    has_relation(resource, "author", author) and
    author != actor;

  "edit" if
    (has_relation(resource, "author", actor) or has_role(actor, "owner", resource)) and
    stage matches Integer and doc_stage(resource, stage) and stage < 2;

  "archive" if
    has_role(actor, "owner", resource) or
    level matches Integer and clearance(actor, level) and level = 5;
}

in_range(n: Integer) if n > 10 and n <= 20;
is_negative(n: Integer) if n < 0;
same_name(a: String, b: String) if a = b;
different(a: String, b: String) if a != b;

test fixture review {
  clearance(User{"low"}, 1);
  clearance(User{"mid"}, 3);
  clearance(User{"top"}, 5);
  classification(Document{"memo"}, 1);
  classification(Document{"plan"}, 3);
  classification(Document{"secret"}, 5);
  has_relation(Document{"plan"}, "author", User{"alex"});
  has_role(User{"alex"}, "reviewer", Document{"plan"});
  has_role(User{"rae"}, "reviewer", Document{"plan"});
  has_role(User{"owen"}, "owner", Document{"plan"});
  has_relation(Document{"memo"}, "author", User{"alex"});
  has_role(User{"owen"}, "owner", Document{"memo"});
  doc_stage(Document{"plan"}, 1);
  doc_stage(Document{"memo"}, 3);
}

test ">= against a classification" {
  setup {
    fixture review;
  }
  assert allow(User{"mid"}, "read", Document{"plan"});
  assert allow(User{"mid"}, "read", Document{"memo"});
  assert_not allow(User{"mid"}, "read", Document{"secret"});
  assert allow(User{"top"}, "read", doc: Document)
    iff doc in [Document{"memo"}, Document{"plan"}, Document{"secret"}];
  assert allow(User{"low"}, "read", doc: Document) iff doc in [Document{"memo"}];
  assert_not allow(User{"nobody"}, "read", Document{"memo"});
}

test "!= forbids self-approval" {
  setup {
    fixture review;
  }
  assert allow(User{"rae"}, "approve", Document{"plan"});
  assert_not allow(User{"alex"}, "approve", Document{"plan"});
  assert allow(user: User, "approve", Document{"plan"}) iff user in [User{"rae"}];
}

test "parentheses group the or before the stage check" {
  setup {
    fixture review;
  }
  assert allow(User{"alex"}, "edit", Document{"plan"});
  assert allow(User{"owen"}, "edit", Document{"plan"});
  # memo is past draft: neither its author nor its owner may edit it
  assert_not allow(User{"alex"}, "edit", Document{"memo"});
  assert_not allow(User{"owen"}, "edit", Document{"memo"});
  assert_not allow(User{"rae"}, "edit", Document{"plan"});
}

test "and binds tighter than or" {
  setup {
    fixture review;
  }
  # owner, without any clearance
  assert allow(User{"owen"}, "archive", Document{"plan"});
  # clearance exactly 5, without being an owner
  assert allow(User{"top"}, "archive", Document{"secret"});
  assert_not allow(User{"mid"}, "archive", Document{"plan"});
  assert allow(user: User, "archive", Document{"memo"}) iff user in [User{"owen"}, User{"top"}];
}

test "integer and string comparisons" {
  assert in_range(11);
  assert in_range(20);
  assert_not in_range(10);
  assert_not in_range(21);
  assert is_negative(-5);
  assert_not is_negative(0);
  assert same_name("alice", "alice");
  assert_not same_name("Alice", "alice");
  assert different("read", "write");
  assert_not different("read", "read");
}
