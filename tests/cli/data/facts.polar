# The same kind of facts as .polar lines: carol is a member of globex.
has_role(User{"carol"}, "member", Org{"globex"});
