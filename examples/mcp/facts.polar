has_role(User{"alice"}, "tool_writer");
has_role(User{"bob"}, "tool_user");
has_role(Agent{"claude"}, "tool_writer");
