# The AuthZEN interop "Todo" scenario (decision files 1.0-00, 1.0-01 and 1.0-02): five people of the
# Rick and Morty universe with roles from the identity provider, and a todo list.
#   can_read_user    every known person
#   can_read_todos   every known person
#   can_create_todo  admins and editors
#   can_update_todo  the evil genius, and editors on their own todos
#   can_delete_todo  admins, and editors on their own todos
# Serve it with:  mandate serve --policy policy.polar --facts facts.jsonl
# AuthZEN types map onto these by name, ignoring case: "user" -> User, "todo" -> Todo.

actor User {
  permissions = ["can_read_user"];

  "can_read_user" if is_person(actor);
}

global {
  roles = ["viewer", "editor", "admin", "evil_genius"];
}

resource Todo {
  permissions = ["can_read_todos", "can_create_todo", "can_update_todo", "can_delete_todo"];
  relations = { owner: User };

  "can_read_todos" if is_person(actor);
  "can_create_todo" if person_role(actor, "admin") or person_role(actor, "editor");
  "can_update_todo" if person_role(actor, "evil_genius");
  "can_update_todo" if person_role(actor, "editor") and is_owner(actor, resource);
  "can_delete_todo" if person_role(actor, "admin");
  "can_delete_todo" if person_role(actor, "editor") and is_owner(actor, resource);
}

# Facts (facts.jsonl) come from the identity provider, keyed by each person's identity (PID):
#   has_role(User{pid}, role)          a global role
#   user_email(User{pid}, email)
#   user_alias(User{email}, User{pid}) the 1.0-00 requests name the subject by email
# and from the todo application:
#   has_relation(Todo{id}, "owner", User{pid})

declare user_email(User, String);
declare user_alias(User, User);
# A todo's owner may also come with the request, as AuthZEN resource.properties.ownerID (an email):
# Mandate turns each resource property into the request-scoped fact resource_property(resource, key, value).
declare resource_property(Todo, String, String);

# The identity a subject names: a PID itself, or the PID behind an email.
person(user: User, pid: User) if pid = user and email matches String and user_email(pid, email);
person(user: User, pid: User) if user_alias(user, pid);

is_person(user: User) if pid matches User and person(user, pid);

person_role(user: User, role: String) if pid matches User and person(user, pid) and has_role(pid, role);

is_owner(user: User, todo: Todo) if
  pid matches User and person(user, pid) and has_relation(todo, "owner", pid);
is_owner(user: User, todo: Todo) if
  pid matches User and person(user, pid) and email matches String and user_email(pid, email) and
  resource_property(todo, "ownerID", email);

test fixture people {
  has_role(User{"pid-rick"}, "admin");
  has_role(User{"pid-rick"}, "evil_genius");
  user_email(User{"pid-rick"}, "rick@the-citadel.com");
  user_alias(User{"rick@the-citadel.com"}, User{"pid-rick"});
  has_role(User{"pid-morty"}, "editor");
  user_email(User{"pid-morty"}, "morty@the-citadel.com");
  user_alias(User{"morty@the-citadel.com"}, User{"pid-morty"});
  has_role(User{"pid-beth"}, "viewer");
  user_email(User{"pid-beth"}, "beth@the-smiths.com");
  user_alias(User{"beth@the-smiths.com"}, User{"pid-beth"});
}

test "everyone known reads users and todos; strangers do not" {
  setup {
    fixture people;
  }
  assert allow(User{"pid-beth"}, "can_read_user", User{"rick@the-citadel.com"});
  assert allow(User{"beth@the-smiths.com"}, "can_read_todos", Todo{"todo-1"});
  assert_not allow(User{"stranger"}, "can_read_todos", Todo{"todo-1"});
  assert_not allow(User{"stranger"}, "can_read_user", User{"pid-beth"});
}

test "admins and editors create, viewers do not" {
  setup {
    fixture people;
  }
  assert allow(User{"pid-rick"}, "can_create_todo", Todo{"todo-1"});
  assert allow(User{"morty@the-citadel.com"}, "can_create_todo", Todo{"todo-1"});
  assert_not allow(User{"pid-beth"}, "can_create_todo", Todo{"todo-1"});
}

test "editors change their own todos, known from stored facts" {
  setup {
    fixture people;
    has_relation(Todo{"t-morty"}, "owner", User{"pid-morty"});
    has_relation(Todo{"t-rick"}, "owner", User{"pid-rick"});
    has_relation(Todo{"t-beth"}, "owner", User{"pid-beth"});
  }
  assert allow(User{"pid-morty"}, action: String, Todo{"t-morty"})
    iff action in ["can_read_todos", "can_create_todo", "can_update_todo", "can_delete_todo"];
  assert allow(User{"morty@the-citadel.com"}, "can_update_todo", Todo{"t-morty"});
  assert_not allow(User{"pid-morty"}, "can_update_todo", Todo{"t-rick"});
  assert_not allow(User{"pid-morty"}, "can_delete_todo", Todo{"t-rick"});
  assert_not allow(User{"pid-beth"}, "can_update_todo", Todo{"t-beth"});
}

test "editors change their own todos, known from the request's ownerID" {
  setup {
    fixture people;
    resource_property(Todo{"new-1"}, "ownerID", "morty@the-citadel.com");
    resource_property(Todo{"new-2"}, "ownerID", "rick@the-citadel.com");
  }
  assert allow(User{"pid-morty"}, "can_update_todo", Todo{"new-1"});
  assert allow(User{"pid-morty"}, "can_delete_todo", Todo{"new-1"});
  assert_not allow(User{"pid-morty"}, "can_update_todo", Todo{"new-2"});
}

test "the evil genius updates and the admin deletes every todo" {
  setup {
    fixture people;
    has_relation(Todo{"t-morty"}, "owner", User{"pid-morty"});
  }
  assert allow(User{"pid-rick"}, "can_update_todo", Todo{"t-morty"});
  assert allow(User{"rick@the-citadel.com"}, "can_delete_todo", Todo{"t-morty"});
  assert allow(User{"pid-rick"}, "can_update_todo", Todo{"unknown"});
}
