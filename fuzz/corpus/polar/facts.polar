has_role(User{"alice"}, "admin", Org{"acme"});
is_public(Repo{"anvil"}, true)
limit(Org{"a"}, -3)
