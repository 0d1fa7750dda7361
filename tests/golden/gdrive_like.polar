# A Google-Drive-like model: nested folders, files, and sharing with users and groups.
#
# Every role on a folder holds on everything below it ("viewer" if "viewer" on "parent"), however
# deep. Roles shared with a group hold for each of its members. Folder data may contain cycles
# (a folder moved under its own descendant by a buggy client); evaluation must still terminate.
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

resource File {
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

  # "anyone with the link can view"
  "view" if is_public(resource, true);
}

# Roles shared with a group hold for its members.
has_role(user: User, role: String, resource: Resource) if
  group matches Group and
  has_group(user, group) and
  has_role(group, role, resource);

# root > a > b > c > d > e > f > g > h, and h holds deep.txt.
test fixture deep_tree {
  has_relation(Folder{"a"}, "parent", Folder{"root"});
  has_relation(Folder{"b"}, "parent", Folder{"a"});
  has_relation(Folder{"c"}, "parent", Folder{"b"});
  has_relation(Folder{"d"}, "parent", Folder{"c"});
  has_relation(Folder{"e"}, "parent", Folder{"d"});
  has_relation(Folder{"f"}, "parent", Folder{"e"});
  has_relation(Folder{"g"}, "parent", Folder{"f"});
  has_relation(Folder{"h"}, "parent", Folder{"g"});
  has_relation(File{"deep.txt"}, "parent", Folder{"h"});
  has_relation(File{"top.txt"}, "parent", Folder{"root"});
}

test fixture sharing {
  has_role(User{"olga"}, "owner", Folder{"root"});
  has_role(User{"vic"}, "viewer", Folder{"root"});
  has_role(User{"ed"}, "editor", Folder{"c"});
  has_group(User{"gina"}, Group{"reviewers"});
  has_group(User{"gabe"}, Group{"reviewers"});
  has_role(Group{"reviewers"}, "commenter", Folder{"e"});
}

test "a role on a folder holds all the way down" {
  setup {
    fixture deep_tree;
    fixture sharing;
  }
  assert allow(User{"vic"}, "view", File{"deep.txt"});
  assert allow(User{"vic"}, "view", Folder{"h"});
  assert_not allow(User{"vic"}, "comment", File{"deep.txt"});
  assert allow(User{"olga"}, action: String, File{"deep.txt"})
    iff action in ["view", "comment", "edit", "share", "delete"];
  assert allow(User{"olga"}, "delete", Folder{"e"});
}

test "a role holds below its folder, never above it" {
  setup {
    fixture deep_tree;
    fixture sharing;
  }
  assert allow(User{"ed"}, action: String, File{"deep.txt"}) iff action in ["view", "comment", "edit"];
  assert allow(User{"ed"}, action: String, Folder{"c"}) iff action in ["view", "comment", "edit"];
  assert_not allow(User{"ed"}, "view", Folder{"b"});
  assert_not allow(User{"ed"}, "view", File{"top.txt"});
  assert allow(User{"ed"}, "edit", folder: Folder)
    iff folder in [Folder{"c"}, Folder{"d"}, Folder{"e"}, Folder{"f"}, Folder{"g"}, Folder{"h"}];
  assert allow(user: User, "edit", Folder{"d"}) iff user in [User{"olga"}, User{"ed"}];
}

test "sharing with a group" {
  setup {
    fixture deep_tree;
    fixture sharing;
  }
  assert allow(User{"gina"}, action: String, File{"deep.txt"}) iff action in ["view", "comment"];
  assert allow(User{"gabe"}, "comment", Folder{"f"});
  assert_not allow(User{"gina"}, "view", Folder{"d"});
  assert_not allow(User{"gina"}, "edit", Folder{"e"});
  # the group itself is an actor holding the role
  assert allow(Group{"reviewers"}, "comment", Folder{"h"});
  assert allow(user: User, "comment", Folder{"e"})
    iff user in [User{"olga"}, User{"ed"}, User{"gina"}, User{"gabe"}];
}

test "link sharing" {
  setup {
    fixture deep_tree;
    is_public(File{"top.txt"}, true);
    is_public(File{"deep.txt"}, false);
  }
  assert allow(User{"stranger"}, action: String, File{"top.txt"}) iff action in ["view"];
  # is_public(..., false) does not make a file public
  assert_not allow(User{"stranger"}, "view", File{"deep.txt"});
  assert_not allow(User{"stranger"}, "view", Folder{"root"});
}

test "cycles in the folder data terminate" {
  setup {
    # loop1 -> loop3 -> loop2 -> loop1 (child -> parent)
    has_relation(Folder{"loop1"}, "parent", Folder{"loop3"});
    has_relation(Folder{"loop3"}, "parent", Folder{"loop2"});
    has_relation(Folder{"loop2"}, "parent", Folder{"loop1"});
    has_relation(Folder{"self"}, "parent", Folder{"self"});
    has_relation(File{"in_loop.txt"}, "parent", Folder{"loop2"});
    has_role(User{"cy"}, "viewer", Folder{"loop2"});
    has_role(User{"ed"}, "editor", Folder{"outside"});
  }
  assert allow(User{"cy"}, "view", Folder{"loop1"});
  assert allow(User{"cy"}, "view", File{"in_loop.txt"});
  assert_not allow(User{"cy"}, "comment", Folder{"loop3"});
  # denials must explore the whole cycle and stop
  assert_not allow(User{"nobody"}, "view", Folder{"loop1"});
  assert_not allow(User{"ed"}, "view", File{"in_loop.txt"});
  assert_not allow(User{"nobody"}, "view", Folder{"self"});
  assert allow(User{"cy"}, "view", folder: Folder) iff folder in [Folder{"loop1"}, Folder{"loop2"}, Folder{"loop3"}];
  assert allow(user: User, "view", Folder{"loop3"}) iff user in [User{"cy"}];
}
