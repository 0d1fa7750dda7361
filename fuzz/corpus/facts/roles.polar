# Facts as Polar lines, with comments.
has_role(User{"alice"}, "admin", Org{"acme"});
has_role(User{"root"}, "superadmin");
has_relation(Repo{"anvil"}, "parent", Org{"acme"});
