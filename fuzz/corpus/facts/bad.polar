has_role(User{"alice"}, "admin" Org{"acme"});
has_role(User{alice}, "admin");
size(Repo{"big"}, 99999999999999999999);
p(x);
q("unterminated);
