is_public(Repo{"anvil"}, true);
has_role_with_expiry(User{"bob"}, "reader", Repo{"anvil"}, 1767225600);
size(Repo{"big"}, -9223372036854775808);
flag(Boolean{false}, Integer{42}, String{"s"});
tagged(Tag{"x \"quoted\" \\ é"});
