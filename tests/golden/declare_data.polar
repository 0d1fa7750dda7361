# Facts as data: `declare` lets the store hold facts that no rule reads (tags, sizes, contacts),
# so that applications can query them. Several declares for one predicate form a union of
# accepted shapes. A declared predicate can also be used by rules like any other.
actor User {}

resource Doc {
  roles = ["reader"];
  permissions = ["read"];

  "read" if "reader";
  # documents tagged "public" are readable by anyone
  "read" if has_tag(resource, Tag{"public"});
}

resource Folder {}
resource Tag {}

declare has_tag(Doc, Tag);
declare has_tag(Folder, Tag);
declare doc_size(Doc, Integer);
declare contact_email(User, String);
declare is_pinned(Doc, Boolean);

test fixture tagged {
  has_tag(Doc{"plan"}, Tag{"finance"});
  has_tag(Doc{"plan"}, Tag{"draft"});
  has_tag(Doc{"readme"}, Tag{"public"});
  has_tag(Folder{"shared"}, Tag{"finance"});
  doc_size(Doc{"plan"}, 42);
  contact_email(User{"alice"}, "alice@example.com");
  is_pinned(Doc{"readme"}, true);
}

test "declared facts are queryable data" {
  setup {
    fixture tagged;
  }
  assert has_tag(Doc{"plan"}, Tag{"finance"});
  assert has_tag(Doc{"plan"}, tag: Tag) iff tag in [Tag{"finance"}, Tag{"draft"}];
  assert_not has_tag(Doc{"readme"}, Tag{"finance"});
  assert doc_size(Doc{"plan"}, 42);
  assert_not doc_size(Doc{"plan"}, 43);
  assert doc_size(Doc{"plan"}, size: Integer) iff size in [42];
  assert contact_email(User{"alice"}, "alice@example.com");
  # strings compare exactly, case included
  assert_not contact_email(User{"alice"}, "Alice@example.com");
  assert is_pinned(Doc{"readme"}, true);
  assert_not is_pinned(Doc{"readme"}, false);
}

test "a union of declares accepts each shape" {
  setup {
    fixture tagged;
  }
  assert has_tag(Folder{"shared"}, Tag{"finance"});
  assert has_tag(folder: Folder, Tag{"finance"}) iff folder in [Folder{"shared"}];
  assert has_tag(doc: Doc, Tag{"finance"}) iff doc in [Doc{"plan"}];
}

test "rules read declared facts" {
  setup {
    fixture tagged;
    has_role(User{"bob"}, "reader", Doc{"plan"});
  }
  assert allow(User{"anyone"}, "read", Doc{"readme"});
  assert_not allow(User{"anyone"}, "read", Doc{"plan"});
  assert allow(User{"bob"}, "read", doc: Doc) iff doc in [Doc{"plan"}, Doc{"readme"}];
}
