# A Google-Drive-like authorization model: nested folders, documents, sharing with people and
# groups, and link sharing.
#
#  - A role on a folder holds on everything inside it, at any depth.
#  - Sharing with a group shares with its members, including members of nested groups.
#  - "Anyone with the link" can view a document whose link is public.
#  - A shared-with-you role can be time-limited (shared_until, in seconds since 1970).
#
# Facts (see facts.jsonl) put the child first: has_relation(Document{"budget"}, "parent", Folder{"finance"}).
actor User {}
actor Group {}

resource Folder {
  roles = ["viewer", "commenter", "editor", "owner"];
  permissions = ["view", "comment", "edit", "share", "delete"];
  relations = { parent: Folder };

  "commenter" if "editor";
  "viewer" if "commenter";
  "editor" if "owner";

  "viewer" if "viewer" on "parent";
  "commenter" if "commenter" on "parent";
  "editor" if "editor" on "parent";
  "owner" if "owner" on "parent";

  "view" if "viewer";
  "comment" if "commenter";
  "edit" if "editor";
  "share" if "owner";
  "delete" if "owner";
}

resource Document {
  roles = ["viewer", "commenter", "editor", "owner"];
  permissions = ["view", "comment", "edit", "share", "delete"];
  relations = { parent: Folder };

  "commenter" if "editor";
  "viewer" if "commenter";
  "editor" if "owner";

  "viewer" if "viewer" on "parent";
  "commenter" if "commenter" on "parent";
  "editor" if "editor" on "parent";
  "owner" if "owner" on "parent";

  "view" if "viewer";
  "view" if has_public_link(resource, true);
  "comment" if "commenter";
  "edit" if "editor";
  "share" if "owner";
  "delete" if "owner";
}

# Group membership is transitive. The facts say who is directly in which group.
declare has_group(User, Group);
declare has_group(Group, Group);

in_group(actor: Actor, group: Group) if has_group(actor, group);
in_group(actor: Actor, group: Group) if in_group(actor, mid) and has_group(mid, group);

# Roles shared with a group hold for everyone in it.
has_role(user: User, role: String, resource: Resource) if
  group matches Group and
  in_group(user, group) and
  has_role(group, role, resource);

# Time-limited sharing.
has_role(user: User, role: String, resource: Resource) if
  until matches Integer and
  shared_until(user, role, resource, until) and
  until > @current_unix_time;

test fixture drive {
  has_role(User{"olga"}, "owner", Folder{"company"});
  has_relation(Folder{"finance"}, "parent", Folder{"company"});
  has_relation(Folder{"reports"}, "parent", Folder{"finance"});
  has_relation(Document{"budget"}, "parent", Folder{"reports"});
  has_role(Group{"finance-team"}, "editor", Folder{"finance"});
  has_group(Group{"accountants"}, Group{"finance-team"});
  has_group(User{"fay"}, Group{"accountants"});
}

test "roles flow down the folder tree" {
  setup {
    fixture drive;
  }
  assert allow(User{"olga"}, action: String, Document{"budget"}) iff action in ["view", "comment", "edit", "share", "delete"];
  assert allow(User{"fay"}, action: String, Document{"budget"}) iff action in ["view", "comment", "edit"];
  assert_not allow(User{"fay"}, "view", Folder{"company"});
}

test "links and expiring shares" {
  setup {
    fixture drive;
    has_public_link(Document{"budget"}, true);
    shared_until(User{"auditor"}, "viewer", Folder{"reports"}, 4102444800);
    shared_until(User{"intern"}, "viewer", Folder{"reports"}, 946684800);
  }
  assert allow(User{"anyone"}, action: String, Document{"budget"}) iff action in ["view"];
  assert allow(User{"auditor"}, "view", Folder{"reports"});
  assert_not allow(User{"intern"}, "view", Folder{"reports"});
  assert_not allow(User{"anyone"}, "view", Folder{"reports"});
}
