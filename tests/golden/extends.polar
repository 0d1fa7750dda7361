# Type inheritance with `extends`. Document and Image extend Item:
#  - rule polymorphism: rules written for Item (including Item's shorthand rules) hold for
#    Documents and Images;
#  - inheritance: the subtypes have Item's roles, permissions and relations, and may add their own;
#  - a subtype value is not its supertype's value: Document{"x"} does not unify with Item{"x"}, and
#    a query over Item does not return Documents.
actor User {}

resource Folder {
  roles = ["viewer"];
}

resource Item {
  roles = ["viewer", "editor"];
  permissions = ["view", "edit"];
  relations = { folder: Folder };

  "viewer" if "editor";
  "viewer" if "viewer" on "folder";

  "view" if "viewer";
  "edit" if "editor";
}

resource Document extends Item {
  permissions = ["comment"];

  # uses the inherited role
  "comment" if "viewer";
}

resource Image extends Item {}

# written once for Item, holds for every subtype
is_large(item: Item) if
  bytes matches Integer and
  size_of(item, bytes) and
  bytes > 1000000;

same_item(a: Item, b: Item) if a = b;

test "shorthand rules of the supertype apply to subtypes" {
  setup {
    has_role(User{"val"}, "viewer", Document{"memo"});
    has_role(User{"eve"}, "editor", Image{"logo"});
    has_role(User{"ian"}, "editor", Item{"generic"});
  }
  assert allow(User{"val"}, action: String, Document{"memo"}) iff action in ["view", "comment"];
  assert allow(User{"eve"}, action: String, Image{"logo"}) iff action in ["view", "edit"];
  assert allow(User{"ian"}, action: String, Item{"generic"}) iff action in ["view", "edit"];
  # a role on one type says nothing about a value of another type with the same id
  assert_not allow(User{"val"}, "view", Item{"memo"});
  assert_not allow(User{"val"}, "view", Image{"memo"});
}

test "subtypes inherit relations" {
  setup {
    has_relation(Document{"spec"}, "folder", Folder{"eng"});
    has_relation(Image{"diagram"}, "folder", Folder{"eng"});
    has_role(User{"fay"}, "viewer", Folder{"eng"});
  }
  assert allow(User{"fay"}, action: String, Document{"spec"}) iff action in ["view", "comment"];
  assert allow(User{"fay"}, action: String, Image{"diagram"}) iff action in ["view"];
  assert allow(User{"fay"}, "view", doc: Document) iff doc in [Document{"spec"}];
  assert allow(User{"fay"}, "view", image: Image) iff image in [Image{"diagram"}];
}

test "rules over the supertype accept subtypes" {
  setup {
    size_of(Image{"photo"}, 5000000);
    size_of(Image{"icon"}, 2048);
    size_of(Document{"book"}, 1000001);
    size_of(Item{"blob"}, 1000000);
  }
  assert is_large(Image{"photo"});
  assert is_large(Document{"book"});
  assert_not is_large(Image{"icon"});
  assert_not is_large(Item{"blob"});
}

test "subtype values do not unify with supertype values" {
  assert same_item(Document{"x"}, Document{"x"});
  assert same_item(Item{"x"}, Item{"x"});
  assert_not same_item(Document{"x"}, Item{"x"});
  assert_not same_item(Document{"x"}, Image{"x"});
  assert_not same_item(Document{"x"}, Document{"y"});
}

test "a query over the supertype does not return subtype values" {
  setup {
    has_role(User{"ian"}, "viewer", Item{"generic"});
    has_role(User{"ian"}, "viewer", Document{"memo"});
  }
  assert allow(User{"ian"}, "view", item: Item) iff item in [Item{"generic"}];
  assert allow(User{"ian"}, "view", doc: Document) iff doc in [Document{"memo"}];
}
