# A multi-tenant SaaS: Tenant > Project > Environment > Secret, exercising every shorthand form:
#   "perm" if "role";             "role" if "role";            "perm" if "perm";
#   "role" if "relation";         "role" if "role" on "rel";   "perm" if "perm" on "rel";
#   "role" if global "role";      "perm" if <expression>;
actor User {}
actor ServiceAccount {}

global {
  roles = ["operator"];
}

resource Tenant {
  roles = ["member", "admin"];
  permissions = ["read", "manage"];

  "member" if "admin";
  "admin" if global "operator";

  "read" if "member";
  "manage" if "admin";
}

resource Project {
  roles = ["developer", "lead"];
  permissions = ["read", "write", "configure"];
  relations = { tenant: Tenant, creator: User };

  "developer" if "lead";
  # the creator of a project leads it
  "lead" if "creator";
  "lead" if "admin" on "tenant";

  "read" if "developer";
  # tenant members read every project: a permission implied by a permission on the related tenant
  "read" if "read" on "tenant";
  "write" if "developer";
  "configure" if "lead";
}

resource Environment {
  roles = ["deployer"];
  permissions = ["read", "deploy", "read_secrets"];
  relations = { project: Project };

  "read" if "read" on "project";
  "deployer" if "lead" on "project";
  "deploy" if "deployer";
  # production needs an explicit deployer grant, not only write access to the project
  "deploy" if
    has_relation(resource, "project", project) and
    has_permission(actor, "write", project) and
    not is_production(resource, true);
  # a permission implied by another permission of the same resource
  "read_secrets" if "deploy";
}

resource Secret {
  permissions = ["read"];
  relations = { environment: Environment };

  "read" if "read_secrets" on "environment";
}

test fixture tenants {
  has_role(User{"tara"}, "admin", Tenant{"t1"});
  has_role(User{"mel"}, "member", Tenant{"t1"});
  has_role(User{"operator"}, "operator");
  has_relation(Project{"api"}, "tenant", Tenant{"t1"});
  has_relation(Project{"api"}, "creator", User{"cal"});
  has_role(User{"dev"}, "developer", Project{"api"});
  has_relation(Environment{"staging"}, "project", Project{"api"});
  has_relation(Environment{"prod"}, "project", Project{"api"});
  is_production(Environment{"prod"}, true);
  has_relation(Secret{"db_password"}, "environment", Environment{"prod"});
  has_relation(Secret{"test_key"}, "environment", Environment{"staging"});
  has_role(ServiceAccount{"ci"}, "deployer", Environment{"prod"});
}

test "tenant roles flow down to projects" {
  setup {
    fixture tenants;
  }
  assert allow(User{"tara"}, action: String, Project{"api"}) iff action in ["read", "write", "configure"];
  assert allow(User{"mel"}, action: String, Project{"api"}) iff action in ["read"];
  assert allow(User{"cal"}, action: String, Project{"api"}) iff action in ["read", "write", "configure"];
  assert allow(User{"dev"}, action: String, Project{"api"}) iff action in ["read", "write"];
  assert allow(User{"operator"}, action: String, Tenant{"t1"}) iff action in ["read", "manage"];
  assert allow(User{"operator"}, "configure", Project{"api"});
  assert_not allow(User{"cal"}, "read", Tenant{"t1"});
}

test "deploying to production needs a deployer" {
  setup {
    fixture tenants;
  }
  assert allow(User{"dev"}, action: String, Environment{"staging"}) iff action in ["read", "deploy", "read_secrets"];
  assert allow(User{"dev"}, action: String, Environment{"prod"}) iff action in ["read"];
  # project leads are deployers everywhere
  assert allow(User{"cal"}, "deploy", Environment{"prod"});
  assert allow(User{"tara"}, "deploy", Environment{"prod"});
  assert allow(User{"mel"}, action: String, Environment{"prod"}) iff action in ["read"];
  assert allow(user: User, "deploy", Environment{"prod"}) iff user in [User{"cal"}, User{"tara"}, User{"operator"}];
  assert allow(ServiceAccount{"ci"}, action: String, Environment{"prod"}) iff action in ["deploy", "read_secrets"];
}

test "secrets follow read_secrets on their environment" {
  setup {
    fixture tenants;
  }
  assert allow(User{"dev"}, "read", Secret{"test_key"});
  assert_not allow(User{"dev"}, "read", Secret{"db_password"});
  assert allow(ServiceAccount{"ci"}, "read", Secret{"db_password"});
  assert_not allow(ServiceAccount{"ci"}, "read", Secret{"test_key"});
  assert_not allow(User{"mel"}, "read", Secret{"test_key"});
  assert allow(User{"cal"}, "read", secret: Secret) iff secret in [Secret{"db_password"}, Secret{"test_key"}];
}
