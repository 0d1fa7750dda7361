# The AuthZEN interop "API gateway" scenario: a gateway asks, per HTTP request, whether an identity
# may call a route template with a method (subject.type "identity", action.name the HTTP method,
# resource.type "route", resource.id the route template, e.g. "/todos/{todoId}"). The gateway cannot
# see who owns a todo, so it lets every role through that may do the action on some todo; the todo
# backend decides the rest.
# Serve it with:  mandate serve --policy policy.polar --facts facts.jsonl
# AuthZEN types map onto these by name, ignoring case: "identity" -> Identity, "route" -> Route.

actor Identity {}

global {
  roles = ["viewer", "editor", "admin", "evil_genius"];
}

resource Route {
  permissions = ["GET", "POST", "PUT", "DELETE"];
}

# Facts (facts.jsonl):
#   has_role(Identity{pid}, role)             from the identity provider
#   route_role(Route{template}, method, role) the gateway's route table: which roles may call what
declare route_role(Route, String, String);

has_permission(identity: Identity, method: String, route: Route) if
  role matches String and route_role(route, method, role) and has_role(identity, role);

test "the route table decides" {
  setup {
    has_role(Identity{"rick"}, "admin");
    has_role(Identity{"rick"}, "evil_genius");
    has_role(Identity{"beth"}, "viewer");
    route_role(Route{"/todos"}, "GET", "viewer");
    route_role(Route{"/todos"}, "GET", "admin");
    route_role(Route{"/todos"}, "POST", "admin");
    route_role(Route{"/todos/{todoId}"}, "PUT", "evil_genius");
  }
  assert allow(Identity{"beth"}, "GET", Route{"/todos"});
  assert_not allow(Identity{"beth"}, "POST", Route{"/todos"});
  assert allow(Identity{"rick"}, method: String, Route{"/todos"}) iff method in ["GET", "POST"];
  assert allow(Identity{"rick"}, "PUT", Route{"/todos/{todoId}"});
  assert_not allow(Identity{"nobody"}, "GET", Route{"/todos"});
}
